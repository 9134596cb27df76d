"""Lava Processes and ProcessModels (float and bit-accurate fixed point) for the spiking-Transformer
operators of the IR (issue 13): what one Loihi-2-style core would do per operator, ``lanes`` samples
side by side.

Spec apart from implementation, as in :mod:`neurosim.loihi.processes`: each operator is a Process
(:class:`EmbeddingOp`, :class:`SynapseOp` for Linear / TokenLinear / Conv2d, :class:`NeuronOp`,
:class:`MatMulOp`, :class:`SoftmaxOp`, :class:`LayerNormOp`, :class:`ActivationOp`,
:class:`ReadoutOp`) whose step rule is a *kernel* (:class:`Kernel` subclasses, plain numpy, one float64
and one integer version per operator); the ProcessModels (``floating_pt`` / ``fixed_pt``) receive the
messages, route them, call the kernel and send. Kernels are plain objects so that they are tested
without a Lava runtime, and they are handed to the forked Lava workers through :data:`_CONFIG` (created
in the parent before the fork, like :func:`neurosim.loihi.processes.shared_array`).

**Routing is addresses, not operators.** Reshape, Transpose, Slice, Concat, Flatten, Constant and Add
have no process: every logical input of an operator is a :class:`Wire`, a gather from the flat outputs
of its *source* processes with a weight per element plus a constant (``x[j] = c[j] + sum_r w_r[j] *
src_r[idx_r[j]]``): on a chip the axon tables route each value to its destination synapse and the
weight (an Add's scale, the ``lambda`` of a spike population) sits on that synapse.

**No synaptic delay.** Every process here receives, computes and sends in the same step (as
``SpikeMaxPool`` does), so the graph has the IR's timing exactly: a run of ``W`` windows of ``T`` steps
takes ``W * T`` Lava steps, sample ``i`` is lane ``i % lanes`` of window ``i // lanes``, and every state
(membranes, running sums ``S_t``, ``g_{t-1}``) restarts at each window's first step.

What travels on the output of each process (per lane and step)
------------------------------------------------------------------
* ``NeuronOp``: spikes, 0/1 (binary) or -1/0/1 (signed, Loihi 2's graded spikes with a 2-bit payload).
* ``EmbeddingOp``, ``SynapseOp``: graded values (float64; fixed: 24-bit integers).
* ``MatMulOp``, ``SoftmaxOp``, ``LayerNormOp``, ``ActivationOp``: graded, dense increments
  ``y_t = g_t - g_{t-1}`` of ``g_t = t f(S_t / t)`` (float64; fixed: 24-bit integers).

Fixed point (``fixed_pt``): every stream is an integer with a real scale ``sigma`` chosen at build time
(spikes: ``sigma = 1``; graded streams: a power of two from a calibration run with 2x headroom, so the
24-bit messages hold ``max |y|``); scales fold into the next multipliers, as Loihi folds a population's
scale into its weights. Widths: messages 24-bit signed (saturated, counted); wire multipliers 32-bit
with a 16-bit fraction (exact for unit and ``+-lambda`` spike weights); synaptic weights ``weight_bits``
(default 8) signed with one exponent per layer; accumulators and running sums 64-bit integers; membrane
24-bit (saturated, counted), threshold 17-bit; MatMul rescale multiplier 16-bit; exp a 257-entry Q30 table
of ``2^(-i/256)`` with linear interpolation; GELU/SiLU/tanh a 1,025-entry table over [-16, 16) (step
1/32) with linear interpolation; LayerNorm an integer square root and 16-bit gains. Every kernel uses
integer operations only (``numpy`` int64; the products of 24-bit values with 8-bit weights run as
float64 matrix products, exact below 2**53, checked at build time).
"""
from __future__ import annotations

import math

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurosim.loihi.processes import _FailFast, conv_lanes, shared

MSG_BITS = 24                       # graded message payload (signed)
MSG_MAX = 2 ** (MSG_BITS - 1) - 1
V_MAX = 2 ** 23 - 1                 # 24-bit membrane
WIRE_FRAC = 16                      # fraction bits of the wire multipliers
EXP_LUT_BITS = 8                    # 2^(-i/256), i = 0..256, Q30
EXP_Q = 30
ACT_RANGE = 16.0                    # activation table covers [-16, 16)
ACT_STEP_LOG2 = 5                   # step 1/32
LN_EXTRA = 6                        # LayerNorm: variance shifted left by 2*LN_EXTRA before the square root

# ---- integer helpers ------------------------------------------------------------------------------------


def rshift(x: np.ndarray, s: int) -> np.ndarray:
    """``x * 2**-s`` rounded half up (arithmetic shift; ``s < 0`` shifts left), int64."""
    s = int(s)
    if s > 0:
        return (x + (1 << (s - 1))) >> s
    return x << -s if s < 0 else x


def rshift_rows(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """:func:`rshift` with one shift per element of ``s`` (broadcast against ``x``)."""
    s = np.asarray(s, np.int64)
    pos, neg = np.maximum(s, 0), np.maximum(-s, 0)
    return ((x + ((np.int64(1) << pos) >> 1)) >> pos) << neg


def rdiv(x: np.ndarray, d: int) -> np.ndarray:
    """``x / d`` rounded half away from zero, for int64 ``x`` and a positive integer ``d``."""
    d = int(d)
    if d == 1:
        return x
    q = (np.abs(x) + d // 2) // d
    return np.where(x < 0, -q, q)


def isqrt(v: np.ndarray) -> np.ndarray:
    """``floor(sqrt(v))`` of non-negative int64 ``v`` (< 2**62), exact: a float estimate corrected
    by integer comparisons."""
    s = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    for _ in range(3):
        s = np.where(s * s > v, s - 1, s)
        s = np.where((s + 1) * (s + 1) <= v, s + 1, s)
    return s


def saturate(x: np.ndarray, limit: int, stats: np.ndarray | None, valid: int) -> np.ndarray:
    """Clip to ``+-limit``; the clipped elements of the real lanes are added to ``stats[0]``."""
    over = (x > limit) | (x < -limit)
    if over.any():
        if stats is not None:
            stats[0] += int(over[:valid].sum())
        x = np.clip(x, -limit, limit)
    return x


def quant_mult(m: float, bits: int = 16) -> tuple[int, int]:
    """``m ~= q * 2**-sh`` with ``|q| < 2**(bits-1)`` (``(0, 0)`` for ``m == 0``)."""
    if m == 0:
        return 0, 0
    sh = bits - 1 - int(math.floor(math.log2(abs(m)))) - 1
    q = int(round(m * 2.0 ** sh))
    if abs(q) >= 2 ** (bits - 1):
        sh -= 1
        q = int(round(m * 2.0 ** sh))
    return q, sh


# ---- wires: routing + Add weights + constants -------------------------------------------------------------

class Wire:
    """One logical input of an operator: ``x[j] = const[j] + sum_r w_r[j] * src_{port_r}[idx_r[j]]``
    over the flat outputs of the source processes (``idx = -1``: nothing). ``shape``: the per-sample
    shape of ``x``. Fixed point: ``mult`` (int64, 16-bit fraction) replace ``w`` and ``const_int`` the
    constant, the result is an integer at the wire's scale ``sigma``."""

    def __init__(self, shape, routes, const, src_sizes=None):
        self.shape = tuple(shape)
        self.src_sizes = dict(src_sizes or {})  # port -> flat size of that source
        self.n = int(np.prod(self.shape))
        self.routes = [(int(p), np.asarray(i, np.int64), np.asarray(w, np.float64)) for p, i, w in routes]
        self.const = np.asarray(const, np.float64).reshape(-1)
        self.sigma = 1.0
        self.mult = None
        self.const_int = None

    def identity(self) -> int | None:
        """The port this wire passes through unchanged, or None."""
        if len(self.routes) == 1 and not self.const.any():
            p, i, w = self.routes[0]
            if self.src_sizes.get(p) == self.n and (i == np.arange(self.n)).all() and (w == 1.0).all():
                return p
        return None

    def fix(self, sigma: float, src_sigma: list[float]) -> None:
        """Fixed point: the wire's integer at scale ``sigma`` from sources at ``src_sigma``."""
        self.sigma = float(sigma)
        self.mult = [np.rint(w * src_sigma[p] / sigma * 2.0 ** WIRE_FRAC).astype(np.int64)
                     for p, _, w in self.routes]
        self.const_int = np.rint(self.const / sigma).astype(np.int64)

    def eval_float(self, xs: list[np.ndarray]) -> np.ndarray:
        p0 = self.identity()
        L = xs[0].shape[0]
        if p0 is not None:
            return xs[p0].reshape(L, *self.shape)
        out = np.broadcast_to(self.const, (L, self.n)).copy()
        for p, i, w in self.routes:
            src = xs[p]
            out += np.where(i >= 0, src[:, np.maximum(i, 0)], 0.0) * w
        return out.reshape(L, *self.shape)

    def eval_fixed(self, xs: list[np.ndarray]) -> np.ndarray:
        p0 = self.identity()
        L = xs[0].shape[0]
        if p0 is not None and self.mult[0][0] == 1 << WIRE_FRAC and (self.mult[0] == 1 << WIRE_FRAC).all():
            return xs[p0].astype(np.int64).reshape(L, *self.shape)
        acc = np.zeros((L, self.n), np.int64)
        for (p, i, _), m in zip(self.routes, self.mult):
            src = xs[p].astype(np.int64)
            acc += np.where(i >= 0, src[:, np.maximum(i, 0)], 0) * m
        return (rshift(acc, WIRE_FRAC) + self.const_int).reshape(L, *self.shape)


# ---- kernels (one per operator; float64 and integer) ------------------------------------------------------

class Kernel:
    """The step rule of one operator on ``lanes`` samples: ``step(xs, t, start, valid) -> y`` with ``xs``
    the evaluated wires ``[L, *shape]``, ``t`` the step inside the sample window (1-based), ``start``
    True at a window's first step, ``valid`` the real lanes. ``stats`` (a shared array, set in the
    worker) receives the kernel's counters: ``[saturations, synops, events per element...]``."""

    fixed = False
    stats = None

    def step(self, xs, t, start, valid):  # pragma: no cover - abstract
        raise NotImplementedError


class _Accumulated(Kernel):
    """``S_t = S_{t-1} + x_t`` per input, ``g_t = t f(S_t / t)``, ``y_t = g_t - g_{t-1}``."""

    def step(self, xs, t, start, valid):
        if start or getattr(self, "_S", None) is None:
            self._S = [np.zeros_like(x, dtype=np.int64 if self.fixed else np.float64) for x in xs]
            self._g = None
        for S, x in zip(self._S, xs):
            S += x
        g = self.g(self._S, t, valid)
        y = g if self._g is None else g - self._g
        self._g = g
        if self.fixed:
            y = saturate(y, MSG_MAX, self.stats, valid)
        return y


# -- float

class EmbeddingFloat(Kernel):
    def __init__(self, weight):
        self.weight = np.asarray(weight, np.float64)

    def step(self, xs, t, start, valid):
        return self.weight[np.rint(xs[0]).astype(np.int64)]


class SynapseFloat(Kernel):
    """``y = W x + b``: ``kind`` "linear" (x [L, K]), "token" (x [L, ..., K]) or "conv" (x [L, C, H, W])."""

    def __init__(self, kind, weight, bias, fanout, conv=None):
        self.kind, self.weight = kind, np.asarray(weight, np.float64)
        self.bias = None if bias is None else np.asarray(bias, np.float64)
        self.fanout, self.conv = fanout, conv
        self._last = self._y = None

    def _apply(self, x):
        if self.kind == "conv":
            y = conv_lanes(x, self.weight, *self.conv)
            return y if self.bias is None else y + self.bias[:, None, None]
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def step(self, xs, t, start, valid):
        x = xs[0]
        if self.stats is not None:
            self.stats[1] += float(((x[:valid] != 0) * self.fanout).sum())
        if self._last is not None and np.array_equal(x, self._last):
            return self._y  # a direct input holds for the window: the same currents
        self._last, self._y = x.copy(), self._apply(x)
        return self._y


class NeuronFloat(Kernel):
    """The IR's IF/LIF update (``neurosim.ir``), float64: ``v <- leak v + I + bias; s = v > theta``
    (signed: -1 where ``s == 0``, ``v < 0`` and the net count ``C > 0``); subtractive or zero reset."""

    def __init__(self, shape, threshold, bias, v_init, leak, reset_zero, v_reset, signed):
        b = lambda a: np.broadcast_to(np.asarray(a, np.float64), shape).copy()  # noqa: E731
        self.theta, self.bias, self.v_init = b(threshold), b(bias), b(v_init)
        self.leak, self.reset_zero, self.v_reset, self.signed = float(leak), bool(reset_zero), float(v_reset), bool(signed)

    def step(self, xs, t, start, valid):
        I = xs[0]
        if start or getattr(self, "_v", None) is None:
            self._v = np.broadcast_to(self.v_init, I.shape).copy()
            self._C = np.zeros(I.shape)
        v = self.leak * self._v + I + self.bias
        s = (v > self.theta).astype(np.float64)
        if self.signed:
            s = s - ((s == 0) & (v < 0) & (self._C > 0))
            self._C += s
        v = np.where(s > 0, self.v_reset, v) if self.reset_zero else v - self.theta * s
        self._v = v
        if self.stats is not None:
            self.stats[2:] += np.abs(s[:valid]).sum(0).reshape(-1)
        return s


class MatMulFloat(_Accumulated):
    def __init__(self, transpose_b, scale):
        self.transpose_b, self.scale = bool(transpose_b), float(scale)

    def step(self, xs, t, start, valid):
        if self.stats is not None:
            a, b = xs
            n = b.shape[-2] if self.transpose_b else b.shape[-1]
            self.stats[1] += float((a[:valid] != 0).sum()) * n + float((b[:valid] != 0).sum()) * a.shape[-2]
        return super().step(xs, t, start, valid)

    def g(self, S, t, valid):
        A, B = S[0] / t, S[1] / t  # the reference's order of operations: t * scale * (A/t) op(B/t)
        y = A @ (np.swapaxes(B, -1, -2) if self.transpose_b else B)
        return t * (y * self.scale if self.scale != 1.0 else y)


def _softmax(u, causal):
    if causal:
        n = u.shape[-1]
        u = np.where(np.triu(np.ones((n, n), bool), 1), -np.inf, u)
    e = np.exp(u - u.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class SoftmaxFloat(_Accumulated):
    def __init__(self, causal):
        self.causal = bool(causal)

    def g(self, S, t, valid):
        return t * _softmax(S[0] / t, self.causal)


class LayerNormFloat(_Accumulated):
    def __init__(self, weight, bias, eps):
        self.w, self.b, self.eps = np.asarray(weight, np.float64), np.asarray(bias, np.float64), float(eps)

    def g(self, S, t, valid):
        u = S[0] / t
        m = u.mean(-1, keepdims=True)
        var = ((u - m) ** 2).mean(-1, keepdims=True)
        return t * ((u - m) / np.sqrt(var + self.eps) * self.w + self.b)


def activation(fn: str, u: np.ndarray) -> np.ndarray:
    """GELU (erf), GELU (tanh form), SiLU or tanh in float64, as torch defines them."""
    if fn == "gelu":
        from scipy.special import erf

        return 0.5 * u * (1.0 + erf(u / math.sqrt(2.0)))
    if fn == "gelu_tanh":
        return 0.5 * u * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u ** 3)))
    if fn == "silu":
        return u / (1.0 + np.exp(-u))
    if fn == "tanh":
        return np.tanh(u)
    raise ValueError(fn)


class ActivationFloat(_Accumulated):
    def __init__(self, fn):
        self.fn = fn

    def g(self, S, t, valid):
        return t * activation(self.fn, S[0] / t)


class ReadoutFloat(Kernel):
    """Writes the readout current (or spikes) of every step into the shared ``data`` [L, n, steps]."""

    data = None

    def step(self, xs, t, start, valid):
        return xs[0]


# -- fixed point

class EmbeddingFixed(EmbeddingFloat):
    """The table ``W_int = round(W / sigma_out)`` (24-bit entries) indexed by the integer ids."""

    fixed = True

    def __init__(self, weight_int):
        self.weight = np.asarray(weight_int, np.int64)

    def step(self, xs, t, start, valid):
        return self.weight[xs[0].astype(np.int64)]


class SynapseFixed(SynapseFloat):
    """``y = round((W_int x) 2**E) + b_int``: ``weight_bits`` signed weights with one exponent ``E``
    per layer, or one per output row (``exp`` an array: per neuron, per conv output channel), 64-bit
    accumulation (a float64 product, exact: |x| < 2**24, |W_int| < 2**7, and the
    builder checks ``K 2**31 < 2**53``), result saturated to 24 bits."""

    fixed = True

    def __init__(self, kind, weight_int, exp, bias_int, fanout, conv=None):
        super().__init__(kind, weight_int, None, fanout, conv)
        self.exp = np.asarray(exp, np.int64)
        self.bias_int = None if bias_int is None else np.asarray(bias_int, np.int64)

    def _apply(self, x):
        acc = np.rint(super()._apply(x.astype(np.float64))).astype(np.int64)
        if self.exp.ndim == 0:
            y = rshift(acc, -int(self.exp))
        else:
            y = rshift_rows(acc, -(self.exp[:, None, None] if self.kind == "conv" else self.exp))
        if self.bias_int is not None:
            y = y + (self.bias_int[:, None, None] if self.kind == "conv" else self.bias_int)
        return y

    def step(self, xs, t, start, valid):
        y = super().step(xs, t, start, valid)
        return saturate(y, MSG_MAX, self.stats, valid)


class NeuronFixed(Kernel):
    """Integer IF/LIF: 24-bit ``v`` (saturated, counted), threshold ``theta_int`` (17-bit), bias and
    ``v_init`` in membrane units, 12-bit decay ``v <- sign(v) ((|v| (4096 - dv)) >> 12)``."""

    fixed = True

    def __init__(self, shape, theta_int, bias_int, v_init_int, dv, reset_zero, v_reset_int, signed):
        b = lambda a: np.broadcast_to(np.asarray(a, np.int64), shape).copy()  # noqa: E731
        self.theta, self.bias, self.v_init = b(theta_int), b(bias_int), b(v_init_int)
        self.dv, self.reset_zero, self.v_reset, self.signed = int(dv), bool(reset_zero), int(v_reset_int), bool(signed)

    def step(self, xs, t, start, valid):
        I = xs[0]
        if start or getattr(self, "_v", None) is None:
            self._v = np.broadcast_to(self.v_init, I.shape).copy()
            self._C = np.zeros(I.shape, np.int64)
        v = self._v
        if self.dv:
            d = v * (4096 - self.dv)
            v = np.sign(d) * (np.abs(d) >> 12)
        v = saturate(v + I + self.bias, V_MAX, self.stats, valid)
        s = (v > self.theta).astype(np.int64)
        if self.signed:
            s = s - ((s == 0) & (v < 0) & (self._C > 0))
            self._C += s
        v = np.where(s > 0, self.v_reset, v) if self.reset_zero else v - self.theta * s
        self._v = v
        if self.stats is not None:
            self.stats[2:] += np.abs(s[:valid]).sum(0).reshape(-1)
        return s


class MatMulFixed(MatMulFloat):
    """On integer running sums: ``P = (A_t >> sa) op(B_t >> sb)`` (int64, exact: the builder picks
    ``sa``, ``sb`` so that ``|P| < 2**62``; 0 for spike operands), then
    ``g_t = round(round(P / 2**sp) * M / 2**(sh - sp) / t)`` with a 16-bit multiplier ``M`` for
    ``scale sigma_a sigma_b 2**(sa+sb) / sigma_out``."""

    fixed = True

    def __init__(self, transpose_b, sa, sb, sp, mult, sh):
        super().__init__(transpose_b, 1.0)
        self.sa, self.sb, self.sp, self.mult, self.sh = int(sa), int(sb), int(sp), int(mult), int(sh)

    def g(self, S, t, valid):
        A, B = rshift(S[0], self.sa), rshift(S[1], self.sb)
        P = A @ (np.swapaxes(B, -1, -2) if self.transpose_b else B)
        return rdiv(rshift(rshift(P, self.sp) * self.mult, self.sh - self.sp), t)


def exp2_table() -> np.ndarray:
    """``round(2**30 * 2**(-i/256))``, i = 0..256 (a 257-entry ROM)."""
    return np.rint(2.0 ** EXP_Q * 2.0 ** (-np.arange(2 ** EXP_LUT_BITS + 1) / 2 ** EXP_LUT_BITS)).astype(np.int64)


class SoftmaxFixed(SoftmaxFloat):
    """``u = round(S_t / t)``; ``z = (u - max u) sigma_in log2(e)`` in Q16 by a 16-bit multiplier;
    ``e = 2**z`` from :func:`exp2_table` with linear interpolation, shifted by the integer part;
    ``p = round(e 2**f_out / sum e)``; ``g_t = t p`` (output scale ``2**-f_out``)."""

    fixed = True

    def __init__(self, causal, mult, sh, f_out):
        super().__init__(causal)
        self.mult, self.sh, self.f_out = int(mult), int(sh), int(f_out)
        self.lut = exp2_table()

    def g(self, S, t, valid):
        u = rdiv(S[0], t)
        n = u.shape[-1]
        mask = np.triu(np.ones((n, n), bool), 1) if self.causal else None
        if mask is not None:
            u = np.where(mask, np.iinfo(np.int64).min // 4, u)
        d = u - u.max(-1, keepdims=True)                       # <= 0
        d = np.maximum(d, -(2 ** 40))                          # anything below is exp = 0 anyway
        q = -rshift(d * self.mult, self.sh)                    # -z in Q16, >= 0
        ip, r = q >> 16, q & 0xFFFF
        i, fr = r >> 8, r & 0xFF
        e0 = self.lut[i] + (((self.lut[i + 1] - self.lut[i]) * fr) >> 8)
        e = np.where(ip > 40, 0, e0 >> np.minimum(ip, 62))
        if mask is not None:
            e = np.where(mask, 0, e)
        tot = e.sum(-1, keepdims=True)
        p = (e << self.f_out) // np.maximum(tot, 1)            # floor
        p = np.where(2 * ((e << self.f_out) - p * tot) >= tot, p + 1, p)  # round half up
        return t * p


class LayerNormFixed(LayerNormFloat):
    """``u = round(S_t / t)``, ``c = u - round(mean u)``, ``var = sum c^2 // D``,
    ``std = isqrt(var 2**12 + eps_int)`` (scale ``sigma_in 2**-6``), ``z = round(c 2**22 / std)``
    (Q16), ``LN = round(z W_int / 2**sw) + B_int`` with 16-bit gains; ``g_t = t LN``."""

    fixed = True

    def __init__(self, w_int, sw, b_int, eps_int):
        self.w, self.sw, self.b = np.asarray(w_int, np.int64), int(sw), np.asarray(b_int, np.int64)
        self.eps = int(eps_int)

    def g(self, S, t, valid):
        u = rdiv(S[0], t)
        D = u.shape[-1]
        c = u - rdiv(u.sum(-1, keepdims=True), D)
        var = (c * c).sum(-1, keepdims=True) // D
        std = np.maximum(isqrt((var << (2 * LN_EXTRA)) + self.eps), 1)
        z = rdiv_arr(c << (16 + LN_EXTRA), std)
        return t * (rshift(z * self.w, self.sw) + self.b)


def rdiv_arr(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``x / d`` rounded half away from zero, elementwise, ``d > 0`` (int64)."""
    q = (np.abs(x) + d // 2) // d
    return np.where(x < 0, -q, q)


def activation_table(fn: str, sigma_out: float) -> np.ndarray:
    """``round(f(-16 + i/32) / sigma_out)``, i = 0..1024 (a ROM of the activation)."""
    xs = -ACT_RANGE + np.arange(int(2 * ACT_RANGE * 2 ** ACT_STEP_LOG2) + 1) / 2 ** ACT_STEP_LOG2
    return np.rint(activation(fn, xs) / sigma_out).astype(np.int64)


class ActivationFixed(ActivationFloat):
    """``u = round(S_t / t)``; position ``q = u sigma_in 32 + 512`` in Q16 by a 16-bit multiplier;
    ``f = L[i] + (L[i+1] - L[i]) frac`` from :func:`activation_table`; outside [-16, 16): GELU/SiLU
    0 below and ``u`` (rescaled) above, tanh -1 / +1; ``g_t = t f``."""

    fixed = True

    def __init__(self, fn, sigma_out, mult, sh, id_mult, id_sh):
        super().__init__(fn)
        self.lut = activation_table(fn, sigma_out)
        self.mult, self.sh, self.id_mult, self.id_sh = int(mult), int(sh), int(id_mult), int(id_sh)
        self.n = self.lut.size - 1

    def g(self, S, t, valid):
        u = rdiv(S[0], t)
        u = np.clip(u, -(2 ** 40), 2 ** 40)
        q = rshift(u * self.mult, self.sh) + (self.n // 2 << 16)
        qc = np.clip(q, 0, (self.n << 16) - 1)
        i, fr = qc >> 16, qc & 0xFFFF
        f = self.lut[i] + (((self.lut[i + 1] - self.lut[i]) * fr) >> 16)
        if self.fn == "tanh":
            f = np.where(q < 0, self.lut[0], np.where(q >= self.n << 16, self.lut[-1], f))
        else:
            f = np.where(q < 0, 0, np.where(q >= self.n << 16, rshift(u * self.id_mult, self.id_sh), f))
        return t * f


class ReadoutFixed(ReadoutFloat):
    fixed = True


# ---- Lava processes ------------------------------------------------------------------------------------------

#: key -> (kernel, wires) of every operator process; filled in the parent before Lava forks its workers
_CONFIG: dict[int, tuple] = {}
_NEXT = [1]


def register(kernel: Kernel, wires: list[Wire]) -> int:
    key = _NEXT[0]
    _NEXT[0] += 1
    _CONFIG[key] = (kernel, wires)
    return key


def unregister(*keys) -> None:
    for k in keys:
        _CONFIG.pop(int(k), None)


class _TransformerOp(AbstractProcess):
    """Base of the operator processes: ``n_in`` in-ports ``in0..`` (one per source process, flat
    ``(lanes, n_src)``), an out-port ``s_out`` ``(lanes, n_out)`` (none for the readout), the sample
    windows and the key of its kernel and wires in :data:`_CONFIG`."""

    has_out = True

    def __init__(self, *, in_sizes, out_size, lanes, period, windows, samples, key, stats_key=0, name=None):
        super().__init__(name=name)
        L = int(lanes)
        self.n_in = len(in_sizes)
        for i, n in enumerate(in_sizes):
            setattr(self, f"in{i}", InPort(shape=(L, int(n))))
        if self.has_out:
            self.s_out = OutPort(shape=(L, int(out_size)))
        self.lanes = Var(shape=(1,), init=L)
        self.period = Var(shape=(1,), init=int(period))
        self.windows = Var(shape=(1,), init=int(windows))
        self.samples = Var(shape=(1,), init=int(samples))
        self.cfg_key = Var(shape=(1,), init=int(key))
        self.stats_key = Var(shape=(1,), init=int(stats_key))


class EmbeddingOp(_TransformerOp):
    """Token embedding: integer ids in (graded messages from the input), the table row of each id out
    (graded). A lookup table in the core's memory."""


class SynapseOp(_TransformerOp):
    """Dense synapses of Linear, TokenLinear (one weight matrix shared by every token) or Conv2d:
    ``y_t = W x_t + b``; graded out. SynOps: nonzero inputs times the weights each drives."""


class NeuronOp(_TransformerOp):
    """IF/LIF population with subtractive (or zero) reset, signed or not: spikes out."""


class MatMulOp(_TransformerOp):
    """The product of two streams on running sums: ``g_t = scale A_t op(B_t) / t``, ``y_t = g_t -
    g_{t-1}``; the increments ``a_t op(B_{t-1}) + A_t op(b_t)`` are what the synapses do (SynOps:
    ``nnz(a_t) N + nnz(b_t) M``), graded dense out."""


class SoftmaxOp(_TransformerOp):
    """Softmax (optionally causal) on accumulated input; graded dense out."""


class LayerNormOp(_TransformerOp):
    """LayerNorm on accumulated input; graded dense out."""


class ActivationOp(_TransformerOp):
    """GELU / SiLU / tanh on accumulated input; graded dense out."""


class ReadoutOp(_TransformerOp):
    """The readout: records its wire (the readout current, or spikes) at every step into shared memory."""

    has_out = False


OPS = (EmbeddingOp, SynapseOp, NeuronOp, MatMulOp, SoftmaxOp, LayerNormOp, ActivationOp, ReadoutOp)


class _PyOpBase(_FailFast):
    lanes: np.ndarray = LavaPyType(np.ndarray, int)
    period: np.ndarray = LavaPyType(np.ndarray, int)
    windows: np.ndarray = LavaPyType(np.ndarray, int)
    samples: np.ndarray = LavaPyType(np.ndarray, int)
    cfg_key: np.ndarray = LavaPyType(np.ndarray, int)
    stats_key: np.ndarray = LavaPyType(np.ndarray, int)
    n_ports = 0
    fixed = False
    _kernel = None

    def _run_spk(self):
        xs = [getattr(self, f"in{i}").recv() for i in range(self.n_ports)]
        if self._kernel is None:
            self._kernel, self._wires = _CONFIG[int(self.cfg_key[0])]
            if int(self.stats_key[0]):
                self._kernel.stats = shared(self.stats_key)
        T, L = int(self.period[0]), int(self.lanes[0])
        k = self.time_step - 1
        w, t = k // T, k % T + 1
        valid = max(0, min(L, int(self.samples[0]) - w * L)) if w < int(self.windows[0]) else 0
        ins = [wi.eval_fixed(xs) if self.fixed else wi.eval_float(xs) for wi in self._wires]
        y = self._kernel.step(ins, t, t == 1, valid)
        if isinstance(self._kernel, ReadoutFloat):
            if valid:
                self._kernel.data[:valid, :, w * T + t - 1] = np.asarray(y, np.float64).reshape(L, -1)[:valid]
            return
        y = np.asarray(y).reshape(L, -1)
        self.s_out.send(y.astype(np.int32) if self.fixed else y.astype(np.float64))


_MODELS: dict = {}


def model_class(proc: _TransformerOp, fixed: bool):
    """The ProcessModel class of ``proc`` (its operator, port count and precision; created once)."""
    key = (type(proc), proc.n_in, bool(fixed))
    if key not in _MODELS:
        dt = (np.int32, MSG_BITS) if fixed else (float, None)
        mk = lambda port: (LavaPyType(port, dt[0], precision=dt[1]) if fixed  # noqa: E731
                           else LavaPyType(port, dt[0]))
        attrs = {f"in{i}": mk(PyInPort.VEC_DENSE) for i in range(proc.n_in)}
        if type(proc).has_out:
            attrs["s_out"] = mk(PyOutPort.VEC_DENSE)
        attrs.update(n_ports=proc.n_in, fixed=bool(fixed))
        name = f"Py{type(proc).__name__}{'Fixed' if fixed else 'Float'}{proc.n_in}"
        cls = type(name, (_PyOpBase,), attrs)
        cls = implements(proc=type(proc), protocol=LoihiProtocol)(cls)
        cls = requires(CPU)(cls)
        cls = (tag("bit_accurate_loihi", "fixed_pt") if fixed else tag("floating_pt"))(cls)
        _MODELS[key] = cls
    return _MODELS[key]


def model_map(procs, precision: str) -> dict:
    """``{process: ProcessModel}`` for the operator processes among ``procs``."""
    return {p: model_class(p, precision == "fixed") for p in procs if isinstance(p, _TransformerOp)}
