# SPDX-License-Identifier: Apache-2.0
# modeling_localist.py: a localist language model (DESIGN.md §1 M1-M4, with M6's rules and
# M7's per-token routing as outputs) in plain PyTorch, for transformers' trust_remote_code
# loading of a `localist export --format hf` directory (docs/export.md). It computes what
# localist computes, written to be read: one module per concept, every equation named.
# Limits: recomputes the whole (cropped) context per generated token, as `localist
# generate` does (no KV cache); rules come as tensors or a domain tag, not rules files.
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from .configuration_localist import LocalistConfig


@dataclass
class LocalistRouting:
    """One layer's routing of every token (M2, M4): what the audit report shows."""
    pi: torch.Tensor      # (B, T, K) softmax over the active blocks of r_i . a_k / tau
    block: torch.Tensor   # (B, T) slot id of the block each token is assigned to (argmax pi)
    gate: torch.Tensor    # (B, T, K) g_ik = (1 - λ) + λ K pi_ik
    rule_fired: torch.Tensor  # (B, T) bool: a point rule fired for the query


@dataclass
class LocalistOutput(CausalLMOutput):
    routing: Optional[Tuple[LocalistRouting, ...]] = None  # per layer, with output_routing=True


@dataclass
class Rules:
    """Rule effects for one batch (M6), as localist's rules files produce them.
    route_block: (B, T) int64 slot a token is routed to (pi becomes one-hot), -1 for none.
    point_targets: (B, T, T) bool, row i the keys query i points to (+rho on its logits).
    point_block: (B, T) int64: query i points to every earlier key routed to this slot, -1 for none."""
    route_block: Optional[torch.Tensor] = None
    point_targets: Optional[torch.Tensor] = None
    point_block: Optional[torch.Tensor] = None


def per_layer(dial, n_layers):
    """λ as one value per layer (a scalar applies to every layer)."""
    if isinstance(dial, torch.Tensor):
        dial = dial.tolist()
    values = [float(dial)] * n_layers if isinstance(dial, (int, float)) else [float(v) for v in dial]
    if len(values) != n_layers:
        raise ValueError(f"dial has {len(values)} values for {n_layers} layers")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"dial values {values} must lie in [0, 1]")
    return values


class Router(nn.Module):
    """M2: r_i = W_r x_i (no bias); pi_ik = softmax over the active blocks k of r_i . a_k / tau."""

    def __init__(self, config):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(config.anchor_dim, config.d_model))
        self.tau = config.tau

    def forward(self, xn, anchors, route_index):
        pi = torch.softmax((xn @ self.weight.t()) @ anchors.t() / self.tau, dim=-1)
        if route_index is not None:  # route rules: pi := one-hot on the rule's block
            forced = route_index >= 0
            one_hot = F.one_hot(route_index.clamp_min(0), pi.size(-1)).to(pi.dtype)
            pi = torch.where(forced.unsqueeze(-1), one_hot, pi)
        return pi


class BlockAttention(nn.Module):
    """M3 + M4. The heads of the active blocks attend causally with logits
        z_ij = q_i . k_j / sqrt(d_h) - λ gamma (1 - pi_{j,k(h)}) + rho [j in T_rule(i)],
    so at λ = 1 a head of block k attends to the keys routed to k; each head's output is
    scaled by its block's gate g_ik = (1 - λ) + λ K pi_ik (all ones at λ = 0, where the
    layer is a standard multi-head attention over the active heads)."""

    def __init__(self, config):
        super().__init__()
        heads = config.k_max * config.heads_per_block
        width = heads * config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * width)  # rows: q | k | v, each slot by slot, head by head
        self.out = nn.Linear(width, config.d_model)
        self.config = config

    def forward(self, xn, dial, pi, active_heads, head_block, rules, hard, want_attention):
        c = self.config
        B, T, _ = xn.shape
        H, dh = active_heads.numel(), c.head_dim
        width = c.k_max * c.heads_per_block * dh
        # The active heads' rows of the q, k and v projections.
        rows = (active_heads.unsqueeze(1) * dh + torch.arange(dh, device=xn.device)).flatten()
        rows = torch.cat([rows, rows + width, rows + 2 * width])
        qkv = F.linear(xn, self.qkv.weight[rows], self.qkv.bias[rows]).view(B, T, 3, H, dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, dh)
        z = (q * (1.0 / math.sqrt(dh))) @ k.transpose(-2, -1)
        if dial != 0.0:
            key_bias = (dial * c.gamma) * (pi[..., head_block] - 1.0)  # (B, T, H): key j's bias for head h
            z = z + key_bias.permute(0, 2, 1).unsqueeze(2)
        targets = self.rule_targets(rules, hard, B, T, xn.device)
        if targets is not None:
            z = z + c.rho * targets.unsqueeze(1).to(z.dtype)
        causal = torch.ones(T, T, dtype=torch.bool, device=xn.device).triu(1)
        alpha = torch.softmax(z.masked_fill(causal, float("-inf")), dim=-1)  # (B, H, T, T)
        heads = (alpha @ v).transpose(1, 2)  # (B, T, H, dh)
        if dial != 0.0:
            gate = (1.0 - dial) + dial * pi.size(-1) * pi
            heads = heads * gate[..., head_block].unsqueeze(-1)
        cols = (active_heads.unsqueeze(1) * dh + torch.arange(dh, device=xn.device)).flatten()
        y = F.linear(heads.reshape(B, T, H * dh), self.out.weight[:, cols], self.out.bias)
        fired = targets.any(-1) if targets is not None else torch.zeros(B, T, dtype=torch.bool, device=xn.device)
        return y, (alpha if want_attention else None), fired

    @staticmethod
    def rule_targets(rules, hard, B, T, device):
        """M6's point-rule targets T_rule(i): explicit keys, and the keys routed to a query's target block."""
        if rules is None or (rules.point_targets is None and rules.point_block is None):
            return None
        targets = torch.zeros(B, T, T, dtype=torch.bool, device=device)
        if rules.point_targets is not None:
            targets = targets | rules.point_targets.to(device)
        if rules.point_block is not None:  # point_block holds indices into the active blocks here
            pb = rules.point_block.unsqueeze(2)
            targets = targets | ((pb >= 0) & hard.unsqueeze(1).eq(pb))
        return targets & torch.ones(T, T, dtype=torch.bool, device=device).tril()


class LocalistLayer(nn.Module):
    """Pre-LayerNorm: x + attention(LN x), then + FFN(LN x) with a GELU (exact, or GPT-2's tanh form)."""

    def __init__(self, config):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.router = Router(config)
        self.attention = BlockAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.fc = nn.Linear(config.d_model, config.ffn_mult * config.d_model)
        self.proj = nn.Linear(config.ffn_mult * config.d_model, config.d_model)
        self.gelu_approximate = "tanh" if getattr(config, "activation", "gelu") == "gelu_tanh" else "none"

    def forward(self, x, dial, anchors, active_heads, head_block, rules, route_index, point_index, want_attention):
        xn = self.ln1(x)
        pi = self.router(xn, anchors, route_index)
        hard = pi.argmax(-1)
        point = None if rules is None else Rules(None, rules.point_targets, point_index)
        y, alpha, fired = self.attention(xn, dial, pi, active_heads, head_block, point, hard, want_attention)
        x = x + y
        x = x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate=self.gelu_approximate))
        return x, alpha, pi, hard, fired


class LocalistPreTrainedModel(PreTrainedModel):
    config_class = LocalistConfig
    base_model_prefix = "model"
    _no_split_modules = ["LocalistLayer"]

    def _init_weights(self, module):
        # Every weight comes from the exported file; nothing here is trained from scratch.
        pass


class LocalistModel(LocalistPreTrainedModel):
    """Token + learned position embeddings, the layers, a final LayerNorm."""

    def __init__(self, config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.context, config.d_model)
        self.layers = nn.ModuleList(LocalistLayer(config) for _ in range(config.n_layers))
        self.lnf = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.post_init()

    # The anchor code and the active blocks come from config.json (exact values), made on use
    # rather than held as buffers: transformers builds models on the meta device, where
    # non-persistent buffers would be left uninitialised.
    def anchor_code(self, device):
        c = self.config
        return torch.tensor(c.anchors, dtype=torch.float64).view(c.k_max, c.anchor_dim).float().to(device)

    def active_slots(self, device):
        return torch.tensor(self.config.active_blocks, dtype=torch.long, device=device)

    def get_input_embeddings(self):
        return self.wte

    def set_input_embeddings(self, value):
        self.wte = value

    def active_index(self, slots):
        """Slot ids (-1: none) as indices into the active blocks; a slot that is not active is an error."""
        index = torch.full((self.config.k_max,), -1, dtype=torch.long, device=slots.device)
        active = self.active_slots(slots.device)
        index[active] = torch.arange(active.numel(), device=slots.device)
        mapped = torch.where(slots >= 0, index[slots.clamp_min(0)], torch.full_like(slots, -1))
        if bool(((mapped < 0) & (slots >= 0)).any()):
            raise ValueError(f"a rule names a block slot that is not active; active slots: {active.tolist()}")
        return mapped

    def forward(self, input_ids, dial=None, rules=None, domain=None, output_attentions=False,
                output_hidden_states=False):
        c = self.config
        B, T = input_ids.shape
        if T > c.context:
            raise ValueError(f"sequence of {T} tokens exceeds the model's context of {c.context}")
        dials = per_layer(c.dial if dial is None else dial, c.n_layers)
        rules = self.domain_rules(rules, domain, B, T, input_ids.device)
        route_index = None if rules is None or rules.route_block is None else self.active_index(rules.route_block)
        point_index = None if rules is None or rules.point_block is None else self.active_index(rules.point_block)
        active = self.active_slots(input_ids.device)
        hb = c.heads_per_block
        active_heads = (active.unsqueeze(1) * hb + torch.arange(hb, device=active.device)).flatten()
        head_block = torch.arange(active.numel(), device=active.device).repeat_interleave(hb)
        anchors = self.anchor_code(input_ids.device)[active]
        x = self.wte(input_ids) + self.wpe.weight[:T].unsqueeze(0)
        attentions, hidden, routing = [], [x], []
        for layer, d in zip(self.layers, dials):
            x, alpha, pi, hard, fired = layer(x, d, anchors, active_heads, head_block, rules, route_index,
                                              point_index, output_attentions)
            attentions.append(alpha)
            hidden.append(x)
            gate = (1.0 - d) + d * pi.size(-1) * pi
            routing.append(LocalistRouting(pi=pi, block=active[hard], gate=gate, rule_fired=fired))
        return self.lnf(x), (tuple(hidden) if output_hidden_states else None), \
            (tuple(attentions) if output_attentions else None), tuple(routing)

    def domain_rules(self, rules, domain, B, T, device):
        """A domain tag routes every token to the block recruited for it (rules' own routes win)."""
        if domain is None:
            return rules
        if domain not in self.config.domain_routes:
            if rules is not None:
                return rules
            return None  # no block was recruited for this domain: the learned router decides
        route = torch.full((B, T), int(self.config.domain_routes[domain]), dtype=torch.long, device=device)
        rules = rules or Rules()
        if rules.route_block is not None:
            route = torch.where(rules.route_block.to(device) >= 0, rules.route_block.to(device), route)
        return Rules(route, rules.point_targets, rules.point_block)


class LocalistForCausalLM(LocalistPreTrainedModel, GenerationMixin):
    """The language model: logits = LN(x) . wte^T (the head is tied to the token embedding)."""

    def __init__(self, config):
        super().__init__(config)
        self.model = LocalistModel(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.wte

    def forward(self, input_ids=None, attention_mask=None, labels=None, dial=None, rules=None, domain=None,
                output_attentions=None, output_hidden_states=None, output_routing=False, return_dict=None,
                **kwargs):
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError("padded batches are not supported: every row's tokens attend to all earlier ones")
        x, hidden, attentions, routing = self.model(input_ids, dial=dial, rules=rules, domain=domain,
                                                    output_attentions=bool(output_attentions),
                                                    output_hidden_states=bool(output_hidden_states))
        logits = F.linear(x, self.model.wte.weight)
        loss = None
        if labels is not None:  # next-token cross-entropy, labels shifted inside as in transformers
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1),
                                   ignore_index=-100)
        return LocalistOutput(loss=loss, logits=logits, hidden_states=hidden, attentions=attentions,
                              routing=routing if output_routing else None)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, dial=None, rules=None, domain=None,
                                      **kwargs):
        # No cache: the last `context` tokens are recomputed for every new token, as localist does.
        return {"input_ids": input_ids[:, -self.config.context:], "dial": dial, "domain": domain}

    def _supports_default_dynamic_cache(self):
        return False
