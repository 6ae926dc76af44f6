# SPDX-License-Identifier: Apache-2.0
# check_bpe_ids.py: localist's GPT-2 byte-level BPE against Hugging Face tokenizers.
#   train DIR VOCAB FILE...   a byte-level BPE trained by tokenizers on FILEs, written as
#                             DIR/tokenizer.json and DIR/files/{vocab.json,merges.txt}
#   compare TOKENIZER_JSON SHARD_DIR NAME=TEXT...
#                             each shard NAME.h5 (one document, split: file) must hold
#                             <|endoftext|> then exactly tokenizers' ids of TEXT
# Prints one line per text; exits 1 at the first difference, with where it is.
import sys

import h5py
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers


def train(out, vocab, files):
    import os
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train(files, trainers.BpeTrainer(vocab_size=int(vocab), special_tokens=["<|endoftext|>"], show_progress=False,
                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    os.makedirs(os.path.join(out, "files"), exist_ok=True)
    t.save(os.path.join(out, "tokenizer.json"))
    t.model.save(os.path.join(out, "files"))
    print(f"trained a byte-level BPE of {t.get_vocab_size()} ids")


def compare(tokenizer_json, shard_dir, pairs):
    t = Tokenizer.from_file(tokenizer_json)
    doc = t.token_to_id("<|endoftext|>")
    total = 0
    for pair in pairs:
        name, path = pair.split("=", 1)
        text = open(path, encoding="utf-8", newline="").read()
        want = [doc] + t.encode(text, add_special_tokens=False).ids
        with h5py.File(f"{shard_dir}/{name}.h5", "r") as f:
            got = np.asarray(f["tokens"][:]).astype(np.int64).tolist()
        if got != want:
            i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
            print(f"FAIL {name}: {len(got)} ids, tokenizers {len(want)}; first difference at id {i}: "
                  f"localist {got[i:i + 5]} tokenizers {want[i:i + 5]} "
                  f"({[t.id_to_token(x) for x in want[i:i + 5]]})")
            sys.exit(1)
        total += len(got)
        print(f"ok   {name}: {len(got)} ids equal ({len(text.encode())} bytes)")
    print(f"ok   {len(pairs)} texts, {total} ids, all equal to tokenizers'")


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        compare(sys.argv[2], sys.argv[3], sys.argv[4:])
