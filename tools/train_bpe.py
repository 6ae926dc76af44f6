#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""train_bpe.py: a GPT-2-style byte-level BPE (GPT-2's pre-tokenizer and byte alphabet,
<|endoftext|> as its one special token) trained by Hugging Face tokenizers on text files,
saved as tokenizer.json — what `data.tokenizer: {kind: bpe, model: FILE}` reads. For a
pretraining run of your own when GPT-2's vocabulary is not at hand (no registry package
ships it).
Usage: train_bpe.py OUT.json VOCAB_SIZE FILE [FILE ...]"""
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

if len(sys.argv) < 4:
    sys.exit(__doc__)
out, vocab, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
t.decoder = decoders.ByteLevel()
t.train(files, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>"], show_progress=False,
                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
t.save(out)
print(f"train_bpe: {t.get_vocab_size()} ids from {', '.join(files)} -> {out}")
