"""Spiking Transformers on Lava (issue 13): :func:`simulate_transformer` builds the Lava graph of a network
that holds Transformer operators (:mod:`neurosim.loihi.transformer_processes`), runs it on
``Loihi2SimCfg`` (float or bit-accurate fixed point) and returns a :class:`~neurosim.ir.SimResult` like
the Lava backend's.

Lowering. Every *operator* node (Embedding, Linear, TokenLinear, Conv2d, Neurons, MatMul, Softmax,
LayerNorm, Activation) is one Lava process; the input is a :class:`~neurosim.loihi.processes.LaneSource`
and the readout a :class:`~neurosim.loihi.transformer_processes.ReadoutOp`. Routing nodes (Reshape,
Transpose, Slice, Concat, Flatten, Constant, Add) become the operators' input *wires*: a gather from the
flat outputs of the source processes with one weight per element and a constant (what a chip's axon
tables and synapse weights do; no process, no step). Every process computes and sends in the step it
receives, so the graph has the IR's timing exactly (no synaptic delay, no latency to drop): ``W`` windows
of ``T`` steps, ``lanes`` samples side by side in each (``W = ceil(B / lanes)``; default: every sample of
the run side by side, 200 samples in one Lava run of ``T`` steps). AvgPool2d, SumPool2d and
SpikeMaxPool2d in a network with Transformer operators are refused (one error naming the node), and so
is an Embedding that does not read the direct-encoded input.

Float (``precision="float"``): float64 everywhere; equals the reference backend to float rounding
(``tests/test_lava_transformer.py``: readout to 1e-5, identical spike counts).

Fixed point (``precision="fixed"``): integer arithmetic with the widths stated in
:mod:`neurosim.loihi.transformer_processes`. The scale of every graded stream is a power of two chosen
from a float calibration run (the reference backend on ``calibration`` inputs, default the first
:data:`CALIBRATION_SAMPLES` of the run's inputs; pass your own, e.g. training samples, to make a sample's
result independent of the batch): ``2 max|y|`` fits the 24-bit messages. Spikes are exact integers; a
wire of spikes with weights ``+-lambda`` carries the exact integer count and ``lambda`` moves into the
next multiplier. ``result.quantization`` is a DataFrame, one row per operator: what was quantised, the
output scale (``log2 sigma``), weight bits and exponent, the relative RMS weight error, and the
saturations counted during the run. Fidelity bound (derived in ``tests/test_lava_transformer.py``):
relative to the float run, each graded operator adds a relative error of about ``2**-15`` (16-bit
multipliers, 24-bit messages at 2x headroom), the synapses about ``2**-(weight_bits - 1) / sqrt(12)``
RMS of their row's (``weight_exponent="row"``, default) or layer's largest weight; spikes change where a
membrane lies within that error of its threshold.
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.ir import (INPUT, Add, AvgPool2d, Conv2d, Flatten, Linear, Neurons, SimResult, SpikeMaxPool2d,
                         SpikingNetwork, SumPool2d)
from neurosim.ir.nodes import (Activation, Concat, Constant, Embedding, LayerNorm, MatMul, Reshape, Slice, Softmax,
                               TokenLinear, Transpose, TRANSFORMER_NODES)

OPERATORS = (Embedding, Linear, TokenLinear, Conv2d, Neurons, MatMul, Softmax, LayerNorm, Activation)
ROUTING = (Reshape, Transpose, Slice, Concat, Flatten, Constant, Add)
CALIBRATION_SAMPLES = 8
#: per-lane buffers the automatic lane count may use (messages in shared memory and the workers' state)
LANE_MEMORY_MIB = 1024
HEADROOM = 2.0

__all__ = ["simulate_transformer", "has_transformer_nodes", "check_supported"]


def has_transformer_nodes(net: SpikingNetwork) -> bool:
    return any(type(n).__name__ in TRANSFORMER_NODES for n in net.nodes.values())


def check_supported(net: SpikingNetwork) -> None:
    """One NeurosimError for the first node this lowering cannot run (pooling in a Transformer graph, an
    Embedding that does not read the direct input)."""
    for k, n in net.nodes.items():
        if isinstance(n, (AvgPool2d, SumPool2d, SpikeMaxPool2d)):
            raise NeurosimError(f"unsupported operator {n.kind} ({k!r}) on lava in a network with Transformer "
                                f"operators: pooling runs on the CNN lowering only (a network without Transformer "
                                f"nodes); supported here: {', '.join(c.__name__ for c in OPERATORS + ROUTING)}")
        if not isinstance(n, OPERATORS + ROUTING):
            raise NeurosimError(f"unsupported operator {n.kind} ({k!r}) on lava in a network with Transformer "
                                f"operators")
        if isinstance(n, Embedding) and (n.inputs[0] != INPUT or net.encoding.kind != "direct"):
            raise NeurosimError(f"Embedding ({k!r}) on lava must read the direct-encoded input (token ids), "
                                f"got {n.inputs[0]!r} with {net.encoding.kind} encoding")


# ---- routing: every node's value as gathers from the sources ----------------------------------------------

class _Routes:
    """``expr(name)``: the node's per-sample value as ``(terms, const)``, ``terms`` a list of
    ``(source, idx, w)`` arrays of the node's shape (``idx`` into the source's flat output, -1: none)."""

    def __init__(self, net: SpikingNetwork):
        self.net, self.shapes, self._memo = net, net.shapes, {}

    def is_source(self, name):
        return name == INPUT or isinstance(self.net.nodes[name], OPERATORS)

    def expr(self, name):
        if name in self._memo:
            return self._memo[name]
        shape = self.net.input_shape if name == INPUT else self.shapes[name]
        if self.is_source(name):
            n = int(np.prod(shape))
            out = ([(name, np.arange(n).reshape(shape), np.ones(shape))], np.zeros(shape))
        else:
            node = self.net.nodes[name]
            ins = [self.expr(i) for i in node.inputs]
            if isinstance(node, (Reshape, Flatten)):
                (terms, c), = ins
                out = ([(s, i.reshape(shape), w.reshape(shape)) for s, i, w in terms], c.reshape(shape))
            elif isinstance(node, Transpose):
                (terms, c), = ins
                out = ([(s, i.transpose(node.perm), w.transpose(node.perm)) for s, i, w in terms],
                       c.transpose(node.perm))
            elif isinstance(node, Slice):
                (terms, c), = ins
                ax = node.axis % len(c.shape)
                sl = (slice(None),) * ax + (slice(node.start, node.stop),)
                out = ([(s, i[sl], w[sl]) for s, i, w in terms], c[sl])
            elif isinstance(node, Concat):
                ax = node.axis % len(shape)
                consts = [c for _, c in ins]
                terms, start = [], 0
                for (ts, c) in ins:
                    stop = start + c.shape[ax]
                    sl = (slice(None),) * ax + (slice(start, stop),)
                    for s, i, w in ts:
                        ii, ww = np.full(shape, -1, np.int64), np.zeros(shape)
                        ii[sl], ww[sl] = i, w
                        terms.append((s, ii, ww))
                    start = stop
                out = (terms, np.concatenate(consts, ax))
            elif isinstance(node, Constant):
                out = ([], np.asarray(node.value, np.float64))
            elif isinstance(node, Add):
                terms, const = [], np.zeros(shape)
                for (ts, c), wt in zip(ins, node.weights):
                    wb = np.broadcast_to(np.asarray(wt, np.float64), shape)
                    terms += [(s, i, w * wb) for s, i, w in ts]
                    const = const + c * wb
                out = (terms, const)
            else:  # pragma: no cover - check_supported ran first
                raise AssertionError(node.kind)
        self._memo[name] = out
        return out


def _wire(routes: _Routes, name: str, ports: dict[str, int]):
    from neurosim.loihi.transformer_processes import Wire

    terms, const = routes.expr(name)
    rs, sizes = [], {}
    for s, i, w in terms:
        if s not in ports:
            ports[s] = len(ports)
        rs.append((ports[s], i.reshape(-1), w.reshape(-1)))
        sizes[ports[s]] = int(np.prod(routes.net.input_shape if s == INPUT else routes.shapes[s]))
    return Wire(const.shape, rs, const, sizes)


# ---- fixed-point scales -----------------------------------------------------------------------------------

def _pow2(amax: float, bits: int = 24) -> float:
    """The power-of-two scale at which ``HEADROOM * amax`` fills ``bits`` signed bits."""
    if not amax > 0:
        return 2.0 ** -16
    return 2.0 ** (math.ceil(math.log2(HEADROOM * amax)) - (bits - 1))


def _weights(w: np.ndarray, bits: int, per_row: bool = False):
    """``w ~= q 2**e`` with ``|q| <= 2**(bits-1) - 1``, one exponent (``per_row``: one per output row,
    the first axis): (q, e, relative RMS error against the largest weight)."""
    amax = float(np.abs(w).max()) if w.size else 0.0
    if amax == 0:
        return np.zeros(w.shape, np.int64), 0, 0.0
    top = 2 ** (bits - 1) - 1
    if per_row:
        rmax = np.abs(w.reshape(w.shape[0], -1)).max(1)
        e = np.ceil(np.log2(np.where(rmax > 0, rmax, amax) / top)).astype(np.int64)
        scale = (2.0 ** e).reshape((-1,) + (1,) * (w.ndim - 1))
    else:
        e = int(math.ceil(math.log2(amax / top)))
        scale = 2.0 ** e
    q = np.clip(np.rint(w / scale), -top, top).astype(np.int64)
    return q, e, float(np.sqrt(np.mean((q * scale - w) ** 2)) / amax)


def _calibrated_names(net: SpikingNetwork) -> set[str]:
    """The nodes whose range sets a fixed-point scale: the graded operators' outputs (not Neurons, whose
    spikes are exact, Softmax, whose scale is fixed, or Embedding, scaled by its table) and the routing
    nodes read by an operator other than Neurons (whose input is in membrane units) or by the readout, and
    every operand of a MatMul (its range sets the pre-shifts)."""
    out = set()
    for k, n in net.nodes.items():
        if isinstance(n, OPERATORS) and not isinstance(n, (Neurons, Softmax, Embedding)):
            out.add(k)
        if isinstance(n, OPERATORS) and not isinstance(n, Neurons):
            out |= {i for i in n.inputs if i != INPUT and (isinstance(net.nodes[i], ROUTING) or isinstance(n, MatMul))}
    ro = net.readout.node
    if isinstance(net.nodes[ro], ROUTING):
        out.add(ro)
    return out


def _calibrate(net: SpikingNetwork, xc: np.ndarray, T: int, names: set[str]) -> dict[str, tuple[float, float]]:
    """``{node: (max |y_t|, max |mean_{s<=t} y_s|)}`` over ``T`` steps of the reference backend on ``xc``."""
    import torch

    from neurosim.backends.reference import simulate

    out = {}
    names = sorted(names - {INPUT})
    for s in range(0, len(names), 48):  # some nodes per pass: the recorded steps stay small
        chunk = tuple(names[s:s + 48])
        r = simulate(net, xc, T, dtype=torch.float64, record=chunk)
        for k in chunk:
            y = r["steps"][k]
            avg = np.cumsum(y, 0) / np.arange(1, T + 1).reshape((T,) + (1,) * (y.ndim - 1))
            out[k] = (float(np.abs(y).max()), float(np.abs(avg).max()))
    return out


# ---- the graph ----------------------------------------------------------------------------------------------

class _Graph:
    """The Lava processes of ``net`` for ``b`` samples, ``lanes`` side by side (module docstring)."""

    def __init__(self, net, enc, T, fixed, lanes, direct, calib, weight_bits, input_sigma, row_exp=True):
        from neurosim.loihi import transformer_processes as tp
        from neurosim.loihi.processes import LaneSource, shared_array
        from neurosim.backends._transformer import token_fanout
        from neurosim.ir.lowering import node_fanout

        b = enc.shape[0]
        L = max(1, min(int(lanes), b))
        W = -(-b // L)
        self.net, self.B, self.T, self.L, self.W, self.fixed = net, b, T, L, W, fixed
        self.row_exp = bool(row_exp)
        self.total = W * T
        n_in = int(np.prod(net.input_shape))
        slots = np.zeros((W * L, *enc.shape[1:]), np.int32 if fixed else np.float32)
        slots[:b] = enc
        if direct:
            data, repeat = slots[:, 0].reshape(W, L, n_in), T
        else:
            data = slots.reshape(W, L, T, n_in).transpose(0, 2, 1, 3).reshape(W * T, L, n_in)
            repeat = 1
        self.source = LaneSource(data=data, repeat=repeat)
        routes = _Routes(net)
        self.procs, self.keys, self.stats, self.qreport = {}, [], {}, []
        out_port = {INPUT: self.source.s_out}
        sizes = {INPUT: n_in}
        sigma = {INPUT: input_sigma}
        win = dict(lanes=L, period=T, windows=W, samples=b)
        ops = [k for k, n in net.nodes.items() if isinstance(n, OPERATORS)]
        for k in ops + ["readout"]:
            n = net.nodes.get(k)
            ports: dict[str, int] = {}
            src_name = net.readout.node if k == "readout" else None
            wires = [_wire(routes, i, ports) for i in ((src_name,) if n is None else n.inputs)]
            if not ports:  # constants only: keep the process in the graph (Lava runs connected processes)
                ports[INPUT] = 0
            inv = sorted(ports, key=ports.get)
            shape = net.shapes[net.readout.node] if n is None else net.shapes[k]
            size = int(np.prod(shape))
            if fixed:
                kernel, sig, row = self._fixed(k, n, wires, [sigma[s] for s in inv], inv, calib, weight_bits, T)
                sigma[k] = sig
                self.qreport.append(row)
            else:
                kernel = self._float(k, n, wires, net)
            if isinstance(n, (Linear, Conv2d, TokenLinear)):
                ishape = net.shapes[n.inputs[0]]
                kernel.fanout = (token_fanout(n, ishape) if isinstance(n, TokenLinear)
                                 else node_fanout(n, ishape).reshape(ishape))
            nstat = 2 + (size if isinstance(n, Neurons) else 0)
            skey, st = shared_array((nstat,))
            kernel.stats = st
            self.stats[k] = (skey, st)
            if n is None:
                dkey, self.data = shared_array((L, size, self.total))
                kernel.data = self.data
                self.data_key = dkey
            key = tp.register(kernel, wires)
            self.keys.append(key)
            cls = {Embedding: tp.EmbeddingOp, Linear: tp.SynapseOp, TokenLinear: tp.SynapseOp, Conv2d: tp.SynapseOp,
                   Neurons: tp.NeuronOp, MatMul: tp.MatMulOp, Softmax: tp.SoftmaxOp, LayerNorm: tp.LayerNormOp,
                   Activation: tp.ActivationOp, type(None): tp.ReadoutOp}[type(n)]
            proc = cls(in_sizes=[sizes[s] for s in inv], out_size=size, key=key, name=k, **win)
            for i, s in enumerate(inv):
                out_port[s].connect(getattr(proc, f"in{i}"))
            if n is not None:
                out_port[k] = proc.s_out
                sizes[k] = size
            self.procs[k] = proc
        self.all_procs = [self.source, *self.procs.values()]
        if fixed:
            self.readout_sigma = sigma["readout"]

    # -- kernels
    @staticmethod
    def _float(k, n, wires, net):
        from neurosim.loihi import transformer_processes as tp

        if n is None:
            return tp.ReadoutFloat()
        if isinstance(n, Embedding):
            return tp.EmbeddingFloat(n.weight)
        if isinstance(n, (Linear, TokenLinear)):
            return tp.SynapseFloat("linear" if isinstance(n, Linear) else "token", n.weight, n.bias, None)
        if isinstance(n, Conv2d):
            return tp.SynapseFloat("conv", n.weight, n.bias, None, (n.stride, n.padding, n.dilation, n.groups))
        if isinstance(n, Neurons):
            return tp.NeuronFloat((*n.shape,), n.threshold, n.bias, n.v_init, n.leak, n.reset == "zero", n.v_reset,
                                  n.signed)
        if isinstance(n, MatMul):
            return tp.MatMulFloat(n.transpose_b, n.scale)
        if isinstance(n, Softmax):
            return tp.SoftmaxFloat(n.causal)
        if isinstance(n, LayerNorm):
            return tp.LayerNormFloat(n.weight, n.bias, n.eps)
        return tp.ActivationFloat(n.fn)

    def _wire_sigma(self, wire, name, src_sigma, inv, calib) -> float:
        """A wire's scale: its source's for a pass-through, ``lambda`` for spikes weighted +-lambda,
        else a power of two from the calibration of the node it carries."""
        p0 = wire.identity()
        if p0 is not None:
            return src_sigma[p0]
        spikes = all(inv[p] != INPUT and isinstance(self.net.nodes[inv[p]], Neurons) for p, _, _ in wire.routes)
        mags = {float(np.abs(w[i >= 0]).max()) for _, i, w in wire.routes if (i >= 0).any()}
        mags |= {float(np.abs(w[(i >= 0) & (w != 0)]).min()) for _, i, w in wire.routes if ((i >= 0) & (w != 0)).any()}
        if spikes and len(mags) == 1 and not wire.const.any():
            return mags.pop()
        return _pow2(calib[name][0])

    def _fixed(self, k, n, wires, src_sigma, inv, calib, bits, T):
        from neurosim.loihi import transformer_processes as tp

        names = (self.net.readout.node,) if n is None else n.inputs
        row = {"node": k, "kind": "Readout" if n is None else n.kind}
        if isinstance(n, Neurons):
            theta = np.broadcast_to(n.threshold, n.shape).astype(np.float64)
            s_v = float(theta.max()) / 2 ** 16
            wires[0].fix(s_v, src_sigma)
            q = lambda a: np.rint(np.broadcast_to(np.asarray(a, np.float64), n.shape) / s_v).astype(np.int64)  # noqa
            kern = tp.NeuronFixed(n.shape, q(theta), q(n.bias), q(n.v_init), int(round(4096 * (1 - n.leak))),
                                  n.reset == "zero", int(round(n.v_reset / s_v)), n.signed)
            row.update(quantised="input current, threshold (17-bit), bias, v_init in 24-bit membrane units",
                       out_log2_scale=0)
            return kern, 1.0, row
        if n is not None and not isinstance(n, Embedding):
            for w, nm in zip(wires, names):
                w.fix(self._wire_sigma(w, nm, src_sigma, inv, calib), src_sigma)
        if n is None:
            w = wires[0]
            s = self._wire_sigma(w, names[0], src_sigma, inv, calib)
            w.fix(s, src_sigma)
            row.update(quantised="readout current (24-bit)", out_log2_scale=math.log2(s))
            return tp.ReadoutFixed(), s, row
        if isinstance(n, Embedding):
            s_out = _pow2(float(np.abs(n.weight).max()) / HEADROOM)
            wires[0].fix(1.0, src_sigma)
            row.update(quantised="table entries (24-bit)", out_log2_scale=math.log2(s_out))
            return tp.EmbeddingFixed(np.rint(n.weight / s_out)), s_out, row
        s_in = [w.sigma for w in wires]
        if isinstance(n, Softmax):
            f_out = 23 - math.ceil(math.log2(T + 1))
            m, sh = tp.quant_mult(s_in[0] * math.log2(math.e) * 2 ** 16)
            row.update(quantised=f"exponent multiplier (16-bit), exp table (Q30), probabilities Q{f_out}",
                       out_log2_scale=-f_out)
            return tp.SoftmaxFixed(n.causal, m, sh, f_out), 2.0 ** -f_out, row
        s_out = _pow2(max(calib[k]))
        row["out_log2_scale"] = math.log2(s_out)
        if isinstance(n, (Linear, TokenLinear, Conv2d)):
            q, e, err = _weights(n.weight.astype(np.float64) * s_in[0] / s_out, bits, self.row_exp)
            k_in = int(np.prod(n.weight.shape[1:]))
            if k_in * 2.0 ** (23 + bits) >= 2.0 ** 53:
                raise NeurosimError(f"{k}: {k_in} inputs per output overflow the exact 53-bit product")
            b = None if n.bias is None else np.rint(n.bias / s_out).astype(np.int64)
            ex = f"exponent {e}" if np.ndim(e) == 0 else f"exponents {int(np.min(e))}..{int(np.max(e))} per row"
            row.update(quantised=f"weights ({bits}-bit, {ex}), bias, output (24-bit)",
                       weight_exp=e if np.ndim(e) == 0 else int(np.max(e)), weight_rel_rms_error=err)
            kind = "conv" if isinstance(n, Conv2d) else ("linear" if isinstance(n, Linear) else "token")
            conv = (n.stride, n.padding, n.dilation, n.groups) if kind == "conv" else None
            return tp.SynapseFixed(kind, q, e, b, None, conv), s_out, row
        if isinstance(n, MatMul):
            K = n.dims([self.net.shapes[i] for i in n.inputs])[1]

            def bits_of(w, nm):
                spikes = all(inv[p] != INPUT and isinstance(self.net.nodes[inv[p]], Neurons) for p, _, _ in w.routes)
                amax = (sum(float(np.abs(m).max()) for m in w.mult) / 2 ** 16 if spikes and w.routes
                        else calib[nm][0] / w.sigma)
                return max(1, math.ceil(math.log2(max(amax, 1.0) * T + 1)))

            ba, bb = bits_of(wires[0], names[0]), bits_of(wires[1], names[1])
            bk = math.ceil(math.log2(K + 1))
            sa = sb = 0
            while ba - sa + bb - sb + bk > 62:
                if ba - sa >= bb - sb:
                    sa += 1
                else:
                    sb += 1
            sp = max(0, ba - sa + bb - sb + bk + 16 - 62)
            m, sh = tp.quant_mult(n.scale * s_in[0] * s_in[1] * 2.0 ** (sa + sb) / s_out)
            row.update(quantised=f"operand sums >> ({sa}, {sb}), product >> {sp}, rescale (16-bit), output (24-bit)")
            return tp.MatMulFixed(n.transpose_b, sa, sb, sp, m, sh), s_out, row
        if isinstance(n, LayerNorm):
            wmax = float(np.abs(n.weight).max()) or 1.0
            _, sw = tp.quant_mult(wmax / (s_out * 2 ** 16))
            w_int = np.rint(n.weight / (s_out * 2 ** 16) * 2.0 ** sw).astype(np.int64)
            eps_int = int(round(n.eps / s_in[0] ** 2 * 2 ** (2 * tp.LN_EXTRA)))
            row.update(quantised="mean, variance, isqrt (integer), gains (16-bit), bias, output (24-bit)")
            return tp.LayerNormFixed(w_int, sw, np.rint(n.bias / s_out), eps_int), s_out, row
        m, sh = tp.quant_mult(s_in[0] * 2.0 ** (tp.ACT_STEP_LOG2 + 16))
        im, ish = tp.quant_mult(s_in[0] / s_out)
        row.update(quantised=f"{n.fn} table (1,025 entries), position multiplier (16-bit), output (24-bit)")
        return tp.ActivationFixed(n.fn, s_out, m, sh, im, ish), s_out, row

    def any_proc(self):
        return self.source

    def release(self):
        from neurosim.loihi.processes import release
        from neurosim.loihi.transformer_processes import unregister

        unregister(*self.keys)
        release(*(s[0] for s in self.stats.values()), self.data_key)

    def results(self):
        """(trace [b, T, classes] of the readout's running mean before ``scale``, events per population,
        synops per weight layer / MatMul (sum over samples), saturations per operator)."""
        T, W, L, b = self.T, self.W, self.L, self.B
        y = np.array(self.data, np.float64)  # [L, classes, W*T]
        y = y.reshape(L, -1, W, T).transpose(2, 0, 3, 1).reshape(W * L, T, -1)[:b]
        if self.fixed:
            y = y * self.readout_sigma
        acc = np.cumsum(y, axis=1) / np.arange(1, T + 1).reshape(1, T, 1)
        events = {k: np.array(st[2:]) for k, (_, st) in self.stats.items() if isinstance(self.net.nodes.get(k), Neurons)}
        syn = {k: float(st[1]) for k, (_, st) in self.stats.items()}
        sat = {k: int(st[0]) for k, (_, st) in self.stats.items()}
        return acc, events, syn, sat


def _emulate(graph: _Graph, record: tuple = ()) -> tuple:
    """The graph's processes stepped in this process, in topological order, without Lava (the same
    kernels and wires; a diagnostic): ``(results(), {node: [total steps, L, n] outputs})``."""
    from neurosim.loihi import transformer_processes as tp

    src = graph.source
    data, repeat = np.asarray(src.data.init), int(np.ravel(src.repeat.init)[0])
    port_of = {}
    for k, proc in graph.procs.items():
        ups = [getattr(proc, f"in{i}").in_connections[0].process for i in range(proc.n_in)]
        port_of[k] = ["input" if u is src else u.name for u in ups]
    out = {"input": None}
    rec = {k: [] for k in record}
    for step in range(graph.total):
        kk = step // repeat
        out["input"] = (data[kk] if kk < data.shape[0] else np.zeros(data.shape[1:])).astype(np.float64)
        w, t = step // graph.T, step % graph.T + 1
        valid = max(0, min(graph.L, graph.B - w * graph.L))
        for k, proc in graph.procs.items():
            kernel, wires = tp._CONFIG[int(np.ravel(proc.cfg_key.init)[0])]
            xs = [out[s] for s in port_of[k]]
            vals = [wi.eval_fixed(xs) if graph.fixed else wi.eval_float(xs) for wi in wires]
            y = kernel.step(vals, t, t == 1, valid)
            if isinstance(kernel, tp.ReadoutFloat):
                graph.data[:valid, :, step] = np.asarray(y, np.float64).reshape(graph.L, -1)[:valid]
            else:
                out[k] = np.asarray(y).reshape(graph.L, -1)
            if k in rec:
                rec[k].append(out.get(k, y).copy())
    return graph.results(), {k: np.stack(v) for k, v in rec.items()}


def _run_graph(graph: _Graph, precision: str):
    """Run ``graph`` to the end on Loihi2SimCfg with the Lava backend's watchdog and bounded shutdown."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from neurosim.backends.lava import (CHANNEL_SLOTS, WAKE_SIGNAL, _actors, _dead, _on_wake, _shutdown, _watchdog,
                                        _WorkerDied)
    from neurosim.loihi import processes as lp
    from neurosim.loihi import transformer_processes as tp
    from neurosim.proc import children_die_with_me
    import signal

    mm = {**lp.model_map(graph.all_procs, precision), **tp.model_map(graph.all_procs, precision)}
    cfg = Loihi2SimCfg(select_tag="floating_pt" if precision == "float" else "fixed_pt", exception_proc_model_map=mm)
    proc = graph.any_proc()
    started = clean = False
    done, failed = threading.Event(), threading.Event()
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(WAKE_SIGNAL, _on_wake) if main else None
    watch = threading.Thread(target=_watchdog, args=(proc, done, failed), kwargs={"wake": main}, daemon=True)
    watch.start()
    try:
        with children_die_with_me():
            started = True
            proc.run(condition=RunSteps(num_steps=graph.total), run_cfg=cfg,
                     compile_config={"pypy_channel_size": CHANNEL_SLOTS})
            out = graph.results()
            clean = True
            return out
    except (KeyboardInterrupt, _WorkerDied):
        if failed.is_set():
            raise RuntimeError("a Lava process model failed (its traceback is printed above); the Lava runtime "
                               "was terminated") from None
        raise
    finally:
        done.set()
        watch.join()
        if main:
            signal.signal(WAKE_SIGNAL, old)
        try:
            if started:
                _shutdown(proc, clean=clean and not failed.is_set() and not any(_dead(a) for a in _actors(proc)))
        finally:
            graph.release()


def lane_bytes(net: SpikingNetwork) -> int:
    """Bytes one lane adds: every operator's output travels as 8-byte messages (channel slots and the
    copies on both sides) and the operators on accumulated input keep sums and ``g_{t-1}``."""
    from neurosim.backends.lava import CHANNEL_SLOTS

    elems = 0
    for k, n in net.nodes.items():
        if isinstance(n, OPERATORS):
            size = int(np.prod(net.shapes[k]))
            elems += size * (CHANNEL_SLOTS + 4) + (3 * size if isinstance(n, (MatMul, Softmax, LayerNorm,
                                                                                Activation)) else 0)
    return 8 * (elems + int(np.prod(net.input_shape)) * 4)


def simulate_transformer(net: SpikingNetwork, x, T: int, precision: str = "float", *, seed: int = 0,
                         record_trace: bool = False, batch_size: int | None = None, lanes: int | None = None,
                         calibration=None, weight_bits: int = 8, weight_exponent: str = "row", input_bits: int = 16,
                         emulate: bool = False, encoded=None, **fixed_opts) -> SimResult:
    """Run ``net`` (with Transformer operators) on Lava for ``T`` steps on ``x`` [batch, *input_shape].

    ``lanes``: samples side by side in every process (default: the whole ``batch_size`` chunk, as far as
    :data:`LANE_MEMORY_MIB` allows); ``batch_size``: samples per Lava run (default all). ``seed``: Poisson
    encoding. Fixed point: ``calibration`` (inputs for the scale calibration; default the first
    :data:`CALIBRATION_SAMPLES` of ``x``), ``weight_bits`` (synaptic weights, default 8 as Loihi's),
    ``weight_exponent`` (``"row"``: one weight exponent per output neuron / channel, default; ``"layer"``:
    one per layer, as the Lava CNN backend), ``emulate``: step the same processes' kernels and wires in
    this process instead of a Lava runtime (a diagnostic: the same arithmetic, bit for bit, without the
    runtime; ``tests/test_lava_transformer.py`` checks that both agree exactly),
    ``encoded``: the input node's output per step ``[T, batch, *input_shape]`` (the backend driver's
    Poisson spikes, so the ``lava`` backend sees the same spikes as every other; default: encoded here),
    ``input_bits`` (a direct analog input, default 16; token ids are exact). The result carries
    ``quantization`` (a DataFrame per operator) for ``fixed``, and ``lava_processes``, ``lava_lanes``,
    ``lava_steps``, ``lava_runs``.
    """
    from neurosim.backends.lava import _import_lava, check_lanes

    if fixed_opts:
        raise NeurosimError(f"lava (Transformer graph) has no option {sorted(fixed_opts)[0]!r}; valid: seed, "
                            f"record_trace, batch_size, lanes, calibration, weight_bits, weight_exponent, input_bits, emulate")
    if weight_exponent not in ("row", "layer"):
        raise NeurosimError(f"weight_exponent must be 'row' or 'layer', got {weight_exponent!r}")
    if precision not in ("float", "fixed"):
        raise NeurosimError(f"lava has no precision {precision!r}; valid: float, fixed")
    for nm, v, lo, hi in (("weight_bits", weight_bits, 2, 16), ("input_bits", input_bits, 2, 24)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise NeurosimError(f"{nm} must be an integer in [{lo}, {hi}], got {v!r}")
    check_supported(net)
    lanes = check_lanes(lanes)
    _import_lava()
    import neurosim.loihi.transformer_processes  # noqa: F401  (Lava's runtime, while the start method is free)
    import torch

    from neurosim.backends import _transformer as tf
    from neurosim.encoding import encode
    from neurosim.loihi.processes import warm_up

    from neurosim.backends import batch_inputs

    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise NeurosimError(f"timesteps must be a positive integer, got {T!r}")
    x = batch_inputs(net, x)  # [batch, *input_shape]: shape, empty batch, NaN/inf checked
    B, T = x.shape[0], int(T)
    fixed = precision == "fixed"
    direct = net.encoding.kind == "direct"
    embeds = [n for n in net.nodes.values() if isinstance(n, Embedding)]
    for n in embeds:  # the ids are checked here, before anything is built
        tf.token_ids(n, torch.as_tensor(x))
    if direct:
        e = x.reshape(B, 1, -1).astype(np.float64)
    else:
        if encoded is None:
            encoded, _ = encode(net.encoding, torch.as_tensor(x), T, generator=torch.Generator().manual_seed(int(seed)))
        enc = np.asarray(encoded.numpy() if hasattr(encoded, "numpy") else encoded)
        e = enc.reshape(T, B, -1).transpose(1, 0, 2).astype(np.float64)
    calib, input_sigma, in_sat = {}, 1.0, 0
    if fixed:
        xc = x[:CALIBRATION_SAMPLES] if calibration is None else np.asarray(calibration, np.float32)
        xc = xc.reshape(-1, *net.input_shape)
        calib = _calibrate(net, xc, T, _calibrated_names(net))
        if direct and not embeds:
            input_sigma = 2.0 ** (math.ceil(math.log2(max(float(np.abs(xc).max()), 1e-30))) - (input_bits - 1))
            q = np.rint(e / input_sigma)
            in_sat = int((np.abs(q) > 2 ** 23 - 1).sum())
            e = np.clip(q, -(2 ** 23 - 1), 2 ** 23 - 1)
    bs = B if not batch_size else int(batch_size)
    if lanes is None:
        lanes = max(1, min(bs, int(LANE_MEMORY_MIB * 2 ** 20 // lane_bytes(net))))
    warm_up()
    t0 = time.perf_counter()
    trace = np.zeros((B, T, net.num_classes))
    events = {k: np.zeros(p.size) for k, p in net.populations.items()}
    synops = {}
    sats = {}
    qreport, nproc, used, steps, runs = None, 0, 1, 0, 0
    for s in range(0, B, bs):
        sel = slice(s, min(B, s + bs))
        b = sel.stop - sel.start
        nl = min(lanes, b)
        nl = -(-b // -(-b // nl))  # the samples spread evenly over the windows
        graph = _Graph(net, e[sel], T, fixed, nl, direct, calib, int(weight_bits), input_sigma,
                       weight_exponent == "row")
        nproc, used = len(graph.all_procs), max(used, graph.L)
        steps += graph.total
        runs += 1
        if emulate:
            try:
                (acc, ev, syn, sat), _ = _emulate(graph)
            finally:
                graph.release()
        else:
            acc, ev, syn, sat = _run_graph(graph, precision)
        trace[sel] = acc
        for k, v in ev.items():
            events[k] += v
        for k, v in syn.items():
            synops[k] = synops.get(k, 0.0) + v
        for k, v in sat.items():
            sats[k] = sats.get(k, 0) + v
        qreport = graph.qreport
    wall = time.perf_counter() - t0
    trace = trace * net.readout.scale
    output = trace[:, -1].astype(np.float32)
    spike_counts = {k: float(v.sum()) for k, v in events.items()}
    neurons = {k: p.size for k, p in net.populations.items()}
    syn_out = {k: synops[k] / B for k, n in net.nodes.items() if isinstance(n, (Linear, Conv2d, TokenLinear, MatMul))}
    if not direct:
        in_events = float((e != 0).sum())
    for k, n in net.nodes.items():
        if isinstance(n, Add):
            srcs = [net.spike_source(i) for i in n.inputs]
            if any(sv is not None for sv in srcs):
                syn_out[k] = sum((in_events if sv == INPUT else spike_counts[sv]) for sv in srcs
                                 if sv is not None) / B
    res = SimResult(output=output, predictions=output.argmax(1), timesteps=T, spike_counts=spike_counts,
                    neurons=neurons, firing_rates={k: spike_counts[k] / (neurons[k] * T * B) for k in neurons},
                    synops=syn_out, backend="lava", precision=precision, batch=B, wall_s=wall,
                    trace=trace.transpose(1, 0, 2).astype(np.float32) if record_trace else None)
    res.extras.update(lava_processes=nproc, lava_lanes=used, lava_steps=steps, lava_runs=runs,
                      lava_steps_per_sample=T)
    if fixed:
        import pandas as pd

        what = ("token ids (exact integers)" if embeds else
                f"analog input ({input_bits}-bit, scale 2**{int(math.log2(input_sigma))})" if direct else
                "Poisson spikes (exact, +-1)")
        df = pd.DataFrame([{"node": INPUT, "kind": "Input", "quantised": what,
                            "out_log2_scale": math.log2(input_sigma)}] + qreport)
        df["saturations"] = [in_sat if k == INPUT else sats.get(k, 0) for k in df["node"]]
        res.extras.update(quantization=df, input_saturations=in_sat, lava_input_log2_scale=math.log2(input_sigma))
    return res
