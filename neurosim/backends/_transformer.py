"""The Transformer operators' functions (issue 13), shared by the reference and snntorch backends.

:func:`stateless` applies the step rule of a stateless node (Embedding, Constant, Reshape, Transpose,
Slice, Concat, TokenLinear) to batched tensors ``[N, *shape]``; :func:`fn` is the ``f`` of a node on
accumulated input (MatMul, Softmax, LayerNorm, Activation: ``g_t = t f(S_t / t)``, see
:mod:`neurosim.ir.nodes`) applied to time averages. Both take any leading batch axis, so the snntorch
backend calls them on ``[T * B, ...]`` at once and the reference on ``[B, ...]`` step by step.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.errors import NeurosimError
from neurosim.ir.nodes import (ACCUMULATED, Activation, Concat, Constant, Embedding, LayerNorm, MatMul, Reshape,
                               Slice, Softmax, TokenLinear, Transpose)

STATELESS = (Embedding, Constant, Reshape, Transpose, Slice, Concat, TokenLinear)


def token_ids(node: Embedding, x: torch.Tensor) -> torch.Tensor:
    """The ids of ``x`` as int64, refused unless every one is an integer in ``[0, vocab)``."""
    ids = torch.round(x)
    vocab = node.weight.shape[0]
    if not torch.equal(ids, x) or bool((ids < 0).any()) or bool((ids >= vocab).any()):
        bad = x[(ids != x) | (ids < 0) | (ids >= vocab)].flatten()[:3].tolist()
        raise NeurosimError(f"Embedding reads token ids, integers in [0, {vocab}); got {bad}")
    return ids.to(torch.int64)


def stateless(node, xs: list[torch.Tensor], batch: int, dtype, cache: dict | None = None) -> torch.Tensor:
    """Step output of a stateless Transformer node on ``xs`` [N, *in_shape] (N = batch for Constant)."""
    cache = {} if cache is None else cache

    def t_(name, a):
        key = (id(node), name, dtype)
        if key not in cache:
            cache[key] = torch.as_tensor(np.asarray(a), dtype=dtype)
        return cache[key]

    if isinstance(node, Constant):
        v = t_("value", node.value)
        return v.expand(batch, *v.shape)
    x = xs[0]
    n = x.shape[0]
    if isinstance(node, Embedding):
        return F.embedding(token_ids(node, x), t_("weight", node.weight).to(x.device))
    if isinstance(node, Reshape):
        return x.reshape(n, *node.shape)
    if isinstance(node, Transpose):
        return x.permute(0, *(p + 1 for p in node.perm))
    if isinstance(node, Slice):
        ax = node.axis % (x.dim() - 1) + 1
        return x.narrow(ax, node.start, node.stop - node.start)
    if isinstance(node, Concat):
        ax = node.axis % (x.dim() - 1) + 1
        return torch.cat(xs, ax)
    if isinstance(node, TokenLinear):
        w = t_("weight", node.weight).to(x.device)
        return F.linear(x, w, None if node.bias is None else t_("bias", node.bias).to(x.device))
    raise AssertionError(node.kind)  # pragma: no cover


def _causal_mask(s: torch.Tensor) -> torch.Tensor:
    q, k = s.shape[-2:]
    return torch.ones(q, k, dtype=torch.bool, device=s.device).triu(1)


def fn(node, xs: list[torch.Tensor], cache: dict | None = None) -> torch.Tensor:
    """``f`` of a node on accumulated input, on time averages ``xs`` (MatMul: the two averages)."""
    cache = {} if cache is None else cache
    x = xs[0]
    if isinstance(node, MatMul):
        b = xs[1].transpose(-1, -2) if node.transpose_b else xs[1]
        y = torch.matmul(x, b)
        return y * node.scale if node.scale != 1.0 else y
    if isinstance(node, Softmax):
        if node.causal:
            x = x.masked_fill(_causal_mask(x), -math.inf)
        return torch.softmax(x, -1)
    if isinstance(node, LayerNorm):
        key = (id(node), x.dtype)
        if key not in cache:
            cache[key] = (torch.as_tensor(node.weight, dtype=x.dtype), torch.as_tensor(node.bias, dtype=x.dtype))
        w, b = cache[key]
        return F.layer_norm(x, (x.shape[-1],), w.to(x.device), b.to(x.device), node.eps)
    if isinstance(node, Activation):
        if node.fn == "gelu":
            return F.gelu(x)
        if node.fn == "gelu_tanh":
            return F.gelu(x, approximate="tanh")
        if node.fn == "silu":
            return F.silu(x)
        return torch.tanh(x)
    raise AssertionError(node.kind)  # pragma: no cover


def matmul_synops(node: MatMul, a_t: torch.Tensor, b_t: torch.Tensor) -> float:
    """MACs of one step's increments ``a_t op(B_{t-1}) + A_t op(b_t)``: ``nnz(a_t) N + nnz(b_t) M``."""
    m = a_t.shape[-2]
    n = b_t.shape[-2] if node.transpose_b else b_t.shape[-1]
    return float((a_t != 0).sum()) * n + float((b_t != 0).sum()) * m


def token_fanout(node: TokenLinear, in_shape) -> np.ndarray:
    """Nonzero weights driven by each input element of a TokenLinear ([*in_shape])."""
    return np.broadcast_to((node.weight != 0).sum(0).astype(np.float64), tuple(in_shape)).copy()


__all__ = ["STATELESS", "ACCUMULATED", "stateless", "fn", "token_ids", "matmul_synops", "token_fanout"]


def refuse(net, backend: str) -> None:
    """One NeurosimError for the first Transformer node of ``net`` on a backend that has no lowering
    for them (Lava, Brian2): ``unsupported operator <kind> ('<node>') on <backend>``."""
    from neurosim.ir.nodes import TRANSFORMER_NODES

    for k, n in net.nodes.items():
        if type(n).__name__ in TRANSFORMER_NODES:
            raise NeurosimError(f"unsupported operator {n.kind} ({k!r}) on {backend}: the Transformer operators "
                                "(docs/transformers.md) run on the reference and snntorch backends")
