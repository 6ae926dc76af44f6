# SPDX-License-Identifier: Apache-2.0
# tokenization_localist.py: the SentencePiece tokenizer of a localist model exported by
# `localist export` (docs/export.md), for AutoTokenizer with trust_remote_code: plain
# SentencePiece encoding of tokenizer.model — localist trains it with identity
# normalisation, no dummy prefix and byte fallback — so the ids are localist's. Id 1 is
# the document boundary (BOS/EOS), 2 padding, 0 unknown; decoding skips the first two.
# Limits: needs the `sentencepiece` package; no special tokens are added on encoding.
import os

import sentencepiece as spm
from transformers import PreTrainedTokenizer


class LocalistSentencePieceTokenizer(PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "tokenizer.model"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, **kwargs):
        self.vocab_file = vocab_file
        self.sp = spm.SentencePieceProcessor(model_file=vocab_file)
        document = self.sp.id_to_piece(self.sp.bos_id())
        pad = self.sp.id_to_piece(self.sp.pad_id())
        kwargs.setdefault("bos_token", document)
        kwargs.setdefault("eos_token", document)
        kwargs.setdefault("pad_token", pad)
        kwargs.setdefault("unk_token", self.sp.id_to_piece(self.sp.unk_id()))
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return self.sp.get_piece_size()

    def get_vocab(self):
        return {self.sp.id_to_piece(i): i for i in range(self.vocab_size)}

    def _tokenize(self, text, **kwargs):
        return self.sp.encode(text, out_type=str)

    def _convert_token_to_id(self, token):
        return self.sp.piece_to_id(token)

    def _convert_id_to_token(self, index):
        return self.sp.id_to_piece(index)

    def convert_tokens_to_string(self, tokens):
        return self.sp.decode_pieces(tokens)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        out = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "tokenizer.model")
        if os.path.abspath(self.vocab_file) != os.path.abspath(out):
            with open(self.vocab_file, "rb") as src, open(out, "wb") as dst:
                dst.write(src.read())
        return (out,)
