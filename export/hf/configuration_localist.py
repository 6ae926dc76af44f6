# SPDX-License-Identifier: Apache-2.0
# configuration_localist.py: the configuration of a localist language model exported by
# `localist export --format hf` (docs/export.md): the model's shape (DESIGN.md §1), its
# anchor code and active blocks, the locality dial λ (one value, or one per layer) and
# the blocks recruited for a domain. Written for transformers' trust_remote_code loading.
from transformers import PretrainedConfig


class LocalistConfig(PretrainedConfig):
    model_type = "localist"

    def __init__(self, vocab_size=258, d_model=128, n_layers=2, context=128, heads_per_block=1, head_dim=32,
                 k_max=8, anchor_dim=8, ffn_mult=4, tau=1.0, gamma=8.0, rho=4.0, layer_norm_eps=1e-5, activation="gelu",
                 anchors=None, active_blocks=None, dial=0.0, domain_routes=None, document_id=None, pad_id=None,
                 **kwargs):
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.n_layers = n_layers
        self.context = context
        self.heads_per_block = heads_per_block
        self.head_dim = head_dim
        self.k_max = k_max
        self.anchor_dim = anchor_dim
        self.ffn_mult = ffn_mult
        self.tau = tau
        self.gamma = gamma
        self.rho = rho
        self.layer_norm_eps = layer_norm_eps
        self.activation = activation  # the FFN's GELU: gelu (exact, erf) or gelu_tanh (GPT-2's approximation)
        # k_max rows of anchor_dim values: the frozen anchor code a_k of M1 (exact float64 values).
        self.anchors = anchors
        # Slot ids of the blocks switched on, ascending; the others' weights are kept but unused.
        self.active_blocks = list(range(k_max)) if active_blocks is None else list(active_blocks)
        # λ: one value for every layer, or a list with one per layer. forward(dial=...) overrides it.
        self.dial = dial
        # Domain name -> slot of a block recruited for it: with forward(domain=name) every
        # token routes there, as localist's own rules do.
        self.domain_routes = dict(domain_routes or {})
        self.document_id = document_id
        self.pad_id = pad_id
        # What transformers' utilities look for.
        self.hidden_size = d_model
        self.num_hidden_layers = n_layers
        self.max_position_embeddings = context
        self.num_attention_heads = len(self.active_blocks) * heads_per_block
        kwargs.setdefault("tie_word_embeddings", True)
        super().__init__(pad_token_id=pad_id, eos_token_id=document_id, bos_token_id=document_id, **kwargs)
