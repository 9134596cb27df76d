"""Mixture-of-Experts decoder transformer with top-k routing and static expert capacity.

Each layer's feed-forward is a set of ``E`` experts; a linear router sends every token to its ``k``
best experts (Switch Transformer: Fedus et al., JMLR 2022, arXiv 2101.03961, k=1; Mixtral: Jiang et
al. 2024, arXiv 2401.04088, k=2). The routing uses only static shapes, so it runs on the meta device:

1. ``probs = softmax(router(x))`` over experts; ``gate, expert = topk(probs, k)`` per token (with
   ``normalize_gates`` the k gates are renormalised to sum to 1, as Mixtral does).
2. Every expert has a fixed **capacity** ``C = ceil(capacity_factor * tokens * k / E)`` slots.
   Assignments are ordered choice-major (all first choices, then all second choices, as in Switch);
   an assignment's slot in its expert is a cumulative sum over the one-hot expert mask. Assignments
   beyond ``C`` are dropped (the token passes through that choice with weight 0; the residual keeps it).
3. Tokens are scattered into an ``[E, C, d]`` buffer, the experts run as batched matmuls on stacked
   weights (``torch.bmm`` with ``[E, d, ff]`` and ``[E, ff, d]``), and results are gathered back,
   weighted by their gates.

**Only routed experts count.** The expert matmuls cost ``E * C * (MACs of one expert per token)``;
with ``capacity_factor = 1`` (the default) and ``tokens * k`` divisible by ``E`` that is exactly
``tokens * k`` expert evaluations, the MACs of the experts the tokens are routed to, not of all ``E``
experts. A larger capacity factor costs proportionally more (padding slots are computed), as on
real hardware with static capacity.

``moe_tiny`` is a CPU-trainable toy (4 experts, top-2). ``mixtral_8x7b`` has Mixtral 8x7B's shape
(Hugging Face ``mistralai/Mixtral-8x7B-v0.1`` config: 32 layers, d_model 4096, 32 query / 8 KV heads,
8 SwiGLU experts of width 14336, top-2, vocabulary 32000, RMSNorm, RoPE, untied head):
46,702,792,704 parameters; build it on ``torch.device("meta")`` only.
Capacity couples the tokens of a batch: in choice-major order a later token's first choice can take
the slot an earlier token's second choice wanted, so with drops a token's output can depend on other
tokens, later ones included (true of Switch and GShard too). ``capacity_factor >= E / k`` never drops
(every expert can take every token) and is exactly per-token, hence causal; it costs ``E / k`` times
the expert MACs on padded slots.
Switch's load-balancing loss ``E * sum_i f_i * P_i`` of the last forward is kept in ``aux_loss``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.activations import make_activation
from models.registry import register, token_inputs
from models.transformer import SelfAttention, _check_seq, init_weights
from neurosim.errors import NeurosimError


class _RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` (Zhang & Sennrich 2019); for torch < 2.4, which lacks nn.RMSNorm."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


RMSNorm = getattr(nn, "RMSNorm", _RMSNorm)


class MoEFeedForward(nn.Module):
    """``E`` experts behind a top-k router; ``forward(x [B, T, d]) -> [B, T, d]``.

    ``expert_activation="swiglu"`` gives each expert ``w2(silu(x w1) * (x w3))`` (Mixtral); any
    activation name from :mod:`models.activations` gives ``w2(act(x w1))`` (Switch uses ReLU).
    """

    def __init__(self, d_model: int, d_ff: int, num_experts: int, top_k: int = 2, capacity_factor: float = 1.0,
                 expert_activation: str = "swiglu", normalize_gates: bool = True):
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise NeurosimError(f"moe: top_k must be in 1..num_experts={num_experts}, got {top_k}")
        if capacity_factor <= 0:
            raise NeurosimError(f"moe: capacity_factor must be positive, got {capacity_factor}")
        self.num_experts, self.top_k, self.capacity_factor = num_experts, top_k, capacity_factor
        self.normalize_gates = normalize_gates
        self.router = nn.Linear(d_model, num_experts, bias=False)
        self.swiglu = expert_activation == "swiglu"
        self.w1 = nn.Parameter(torch.empty(num_experts, d_model, d_ff))
        self.w3 = nn.Parameter(torch.empty(num_experts, d_model, d_ff)) if self.swiglu else None
        self.w2 = nn.Parameter(torch.empty(num_experts, d_ff, d_model))
        self.act = nn.SiLU() if self.swiglu else make_activation(expert_activation)
        for w in (self.w1, self.w3, self.w2):
            if w is not None:
                nn.init.normal_(w, 0.0, 0.02)
        self.aux_loss = torch.zeros(())

    def capacity(self, tokens: int) -> int:
        """Slots per expert: ``ceil(capacity_factor * tokens * k / E)``."""
        return max(1, math.ceil(self.capacity_factor * tokens * self.top_k / self.num_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # [T, d]
        n_tok, e, k = x.shape[0], self.num_experts, self.top_k
        cap = self.capacity(n_tok)

        probs = F.softmax(self.router(x), dim=-1, dtype=torch.float32)  # [T, E]
        gate, expert = probs.topk(k, dim=-1)  # [T, k]
        if self.normalize_gates and k > 1:
            gate = gate / gate.sum(dim=-1, keepdim=True)

        # choice-major order: assignment a = choice * T + token
        expert = expert.t().reshape(-1)  # [kT]
        gate = gate.t().reshape(-1).to(x.dtype)
        mask = torch.zeros(k * n_tok, e, device=x.device, dtype=torch.int32).scatter_(1, expert[:, None], 1)
        slot_in_expert = (mask.cumsum(dim=0) * mask).sum(dim=1) - 1  # [kT], 0-based position in its expert
        keep = slot_in_expert < cap
        trash = e * cap  # one spare row receives every dropped assignment
        slot = torch.where(keep, expert * cap + slot_in_expert, torch.full_like(expert, trash))

        buf = torch.zeros(e * cap + 1, shape[-1], device=x.device, dtype=x.dtype)
        buf = buf.index_add(0, slot, x.repeat(k, 1))  # kept slots are unique: this is a scatter
        h = buf[:trash].view(e, cap, shape[-1])  # [E, C, d]
        if self.swiglu:
            h = self.act(torch.bmm(h, self.w1)) * torch.bmm(h, self.w3)
        else:
            h = self.act(torch.bmm(h, self.w1))
        out = torch.bmm(h, self.w2).view(e * cap, shape[-1])  # [E*C, d]
        out = torch.cat([out, out.new_zeros(1, shape[-1])])  # the trash row reads back zeros
        y = out.index_select(0, slot) * (gate * keep.to(x.dtype))[:, None]  # [kT, d]
        y = y.view(k, n_tok, shape[-1]).sum(dim=0)

        # Switch eq. 4: fraction of first choices f_i times mean router probability P_i, times E
        frac = mask[:n_tok].to(torch.float32).mean(dim=0)
        self.aux_loss = e * (frac * probs.mean(dim=0)).sum()
        return y.view(shape)


class MoEBlock(nn.Module):
    """Pre-norm decoder layer: ``x + attn(norm(x))`` then ``x + moe(norm(x))``."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int, num_experts: int, top_k: int,
                 capacity_factor: float, expert_activation: str, norm: str, rope: bool, rope_base: float):
        super().__init__()
        Norm = RMSNorm if norm == "rmsnorm" else nn.LayerNorm
        self.norm1 = Norm(d_model, eps=1e-5)
        self.attn = SelfAttention(d_model, n_heads, causal=True, bias=False, n_kv_heads=n_kv_heads, rope=rope,
                                  rope_base=rope_base)
        self.norm2 = Norm(d_model, eps=1e-5)
        self.moe = MoEFeedForward(d_model, d_ff, num_experts, top_k, capacity_factor, expert_activation)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.moe(self.norm2(x))


class MoETransformer(nn.Module):
    """Decoder-only MoE LM: ``forward(ids [B, T])`` -> logits ``[B, T, vocab]`` (or ``[B, num_classes]``
    from the last position when ``num_classes > 0``). Positions come from RoPE (no parameters) or, with
    ``rope=False``, a learned table of ``max_seq_len`` rows."""

    def __init__(self, vocab_size: int, max_seq_len: int, d_model: int, n_layers: int, n_heads: int,
                 n_kv_heads: int, d_ff: int, num_experts: int, top_k: int, capacity_factor: float,
                 expert_activation: str, norm: str, rope: bool, rope_base: float, num_classes: int):
        super().__init__()
        if norm not in ("rmsnorm", "layernorm"):
            raise NeurosimError(f"moe: norm must be 'rmsnorm' or 'layernorm', got {norm!r}")
        self.max_seq_len, self.num_classes = max_seq_len, num_classes
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = None if rope else nn.Embedding(max_seq_len, d_model)
        self.blocks = nn.ModuleList(
            MoEBlock(d_model, n_heads, n_kv_heads, d_ff, num_experts, top_k, capacity_factor, expert_activation,
                     norm, rope, rope_base) for _ in range(n_layers))
        self.norm = RMSNorm(d_model, eps=1e-5) if norm == "rmsnorm" else nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes if num_classes > 0 else vocab_size, bias=False)
        init_weights(self)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _check_seq(ids.shape[1], self.max_seq_len, "moe")
        x = self.tok_emb(ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, -1] if self.num_classes > 0 else x)

    @property
    def aux_loss(self) -> torch.Tensor:
        """Sum of the layers' load-balancing losses from the last forward."""
        return sum(b.moe.aux_loss for b in self.blocks)


@register("moe_tiny", family="moe", inputs=token_inputs(64),
          description="tiny MoE decoder: 4 SwiGLU experts, top-2, capacity factor 1, RoPE")
@register("mixtral_8x7b", family="moe", inputs=token_inputs(2048), reference="Mixtral 8x7B (Jiang et al. 2024)",
          vocab_size=32000, max_seq_len=32768, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336,
          num_experts=8, top_k=2, rope_base=1e6,
          description="Mixtral 8x7B shape: 8 experts top-2, GQA, 46.7B parameters; build on meta only")
def moe(vocab_size: int = 256, max_seq_len: int = 128, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
        n_kv_heads: int = 4, d_ff: int = 128, num_experts: int = 4, top_k: int = 2, capacity_factor: float = 1.0,
        expert_activation: str = "swiglu", norm: str = "rmsnorm", rope: bool = True, rope_base: float = 10000.0,
        num_classes: int = 0) -> nn.Module:
    """Mixture-of-Experts decoder (top-k routing, static capacity); defaults are a tiny 4-expert top-2 model."""
    return MoETransformer(vocab_size, max_seq_len, d_model, n_layers, n_heads, n_kv_heads, d_ff, num_experts, top_k,
                          capacity_factor, expert_activation, norm, rope, rope_base, num_classes)
