# SPDX-License-Identifier: Apache-2.0
# make_gpt2.py: a small random GPT-2 written by transformers (GPT2LMHeadModel
# .save_pretrained), the source the import tests start from, and damaged variants of it.
# Weights are drawn wider than GPT-2's 0.02 so that the logits are far from uniform.
# Usage: make_gpt2.py DIR [--variant ok|llama|missing|shape] [--bad-variants] [--tokenizer TEXT]
#        (--bad-variants: also DIR-llama, DIR-missing and DIR-shape, in one process;
#         --tokenizer: a byte-level BPE trained on TEXT by tokenizers, saved with the model
#         as GPT2TokenizerFast saves GPT-2's, and the model's vocabulary is its size)
import argparse
import json
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--variant", default="ok", choices=["ok", "llama", "missing", "shape"])
p.add_argument("--bad-variants", action="store_true")
p.add_argument("--tokenizer", metavar="TEXT")
a = p.parse_args()
torch.manual_seed(3)
vocab, eot, tokenizer = 258, 256, None
if a.tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.train([a.tokenizer], trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = GPT2TokenizerFast(tokenizer_object=t, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>")
    vocab, eot = t.get_vocab_size(), t.token_to_id("<|endoftext|>")
config = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.15,
                    activation_function="gelu_new", layer_norm_epsilon=1e-5, bos_token_id=eot, eos_token_id=eot)
model = GPT2LMHeadModel(config)
with torch.no_grad():  # LayerNorms and biases away from their trivial initial values
    for name, t in model.named_parameters():
        if name.endswith("bias") or ".ln_" in name:
            t.add_(torch.randn_like(t) * 0.1)


def write(directory, variant):
    model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    weights = os.path.join(directory, "model.safetensors")
    if variant == "llama":
        cfg = json.load(open(os.path.join(directory, "config.json")))
        cfg["model_type"] = "llama"
        json.dump(cfg, open(os.path.join(directory, "config.json"), "w"))
    elif variant in ("missing", "shape"):
        t = load_file(weights)
        if variant == "missing":
            del t["transformer.h.1.mlp.c_fc.bias"]
        else:
            t["transformer.h.0.attn.c_proj.weight"] = t["transformer.h.0.attn.c_proj.weight"][:, :16].contiguous()
        save_file(t, weights, metadata={"format": "pt"})


write(a.dir, a.variant)
if a.bad_variants:
    for v in ("llama", "missing", "shape"):
        write(f"{a.dir}-{v}", v)
