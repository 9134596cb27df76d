"""The lowering the Lava and Brian2 backends (and the mesh simulator) share: the IR as spike sources and
linear terms, and the SynOps every backend counts from source events.

Every IR node that is not a :class:`~neurosim.ir.Neurons` population or a
:class:`~neurosim.ir.SpikeMaxPool2d` is linear in its inputs plus a constant (Linear, Conv2d,
AvgPool2d, SumPool2d, Flatten, Add; biases are the constants). So the current entering a population
(or the readout) at step ``t`` is

    I_t = sum_k  L_k(src_k output at step t)  +  c

with ``src_k`` a *source* (the ``"input"`` node, a Neurons population or a SpikeMaxPool2d) and ``L_k``
the composition of the linear ops on one path from ``src_k`` (a :class:`Term`). A simulator then
needs one synapse object per term (a Dense/Conv process in Lava, a Synapses object in Brian2), one
neuron object per population, and ``c`` becomes a constant bias current. Because the IR has no
synaptic delay, the composition is exact: ``I_t`` is the IR's current to float rounding.

A term is kept as a convolution when its path is ``[AvgPool/SumPool (kernel == stride, no padding)]
-> Conv2d -> [per-channel scale] -> [Flatten]``: pooling followed by a convolution is itself a
convolution with stride ``s_conv * k`` and kernel ``K[a*k + b] = w[a] * p`` (``p`` the pool weight),
so a CNN with average pooling needs no dense matrices. A path of per-channel scales alone (a residual
shortcut weighted by an Add) is a 1x1 depthwise convolution. Any other path is materialised as a dense
matrix (by pushing the identity through the ops), which is exact but grows as ``n_in * n_out``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.errors import NeurosimError
from neurosim.ir import (INPUT, Add, AvgPool2d, Conv2d, Flatten, Linear, Neurons, SpikeMaxPool2d, SpikingNetwork,
                         SumPool2d)

MAX_DENSE_ENTRIES = 60_000_000


@dataclass
class Term:
    """One path ``source -> target`` of linear ops (no biases); ``ops`` in application order.

    ``ops`` items: ``("linear", node)``, ``("conv", node)``, ``("pool", node)``, ``("flatten", None)``,
    ``("scale", array)``. ``in_shape``/``out_shape`` are IR (C, H, W)-order shapes.
    """

    source: str
    ops: list
    in_shape: tuple
    out_shape: tuple
    _dense: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the ops to ``x`` [N, *in_shape] (float64 recommended); returns [N, *out_shape]."""
        for kind, op in self.ops:
            x = _apply_op(kind, op, x, bias=False)
        return x.reshape(x.shape[0], *self.out_shape)

    def conv_form(self):
        """``(weight [C_out, C_in/g, kH, kW], stride, padding, dilation, groups)`` if the term is one
        convolution (module docstring), else None. ``flatten`` at the end is allowed (a reshape)."""
        ops = [o for o in self.ops if o[0] != "flatten" or o is not self.ops[-1]]
        if any(k == "flatten" for k, _ in ops):
            return None
        if ops and all(k == "scale" for k, _ in ops) and len(self.in_shape) == 3:
            scale = self._channel_scale(ops, self.in_shape[0])  # a weighted shortcut: 1x1 depthwise
            return (None if scale is None else
                    (scale[:, None, None, None], (1, 1), (0, 0), (1, 1), int(self.in_shape[0])))
        pool = None
        if ops and ops[0][0] == "pool":
            pool, ops = ops[0][1], ops[1:]
        if not ops or ops[0][0] != "conv":
            return None
        conv, rest = ops[0][1], ops[1:]
        scale = self._channel_scale(rest, conv.weight.shape[0])
        if scale is None:
            return None
        w = conv.weight.astype(np.float64) * scale[:, None, None, None]
        stride, padding, dilation = conv.stride, conv.padding, conv.dilation
        if pool is not None:
            k = pool.kernel_size
            H, W = self.in_shape[1:]
            if (pool.stride != k or pool.padding != (0, 0) or dilation != (1, 1)
                    or H % k[0] or W % k[1]):
                return None
            p = 1.0 / (k[0] * k[1]) if isinstance(pool, AvgPool2d) else 1.0
            # K[a*k + b] = w[a] * p: repeat every tap k times along each axis
            w = np.repeat(np.repeat(w, k[0], axis=2), k[1], axis=3) * p
            stride = (stride[0] * k[0], stride[1] * k[1])
            padding = (padding[0] * k[0], padding[1] * k[1])
        return w, tuple(stride), tuple(padding), tuple(dilation), int(conv.groups)

    @staticmethod
    def _channel_scale(ops, channels: int) -> np.ndarray | None:
        """The product of ``("scale", s)`` ops as one factor per channel, or None if another op or a
        per-position scale is among them.

        Per-channel means shape ``(C, 1, 1)``: the IR broadcasts an Add weight against ``(C, H, W)`` from the right, so a ``(C,)`` weight scales
        along W (it only broadcasts when ``C == W``) and is a per-position scale here."""
        scale = np.ones((channels,), np.float64)
        for k, s in ops:
            if k != "scale":
                return None
            s = np.asarray(s, np.float64)
            if s.size == 1:
                scale = scale * float(s.reshape(-1)[0])
            elif s.shape == (channels, 1, 1):
                scale = scale * s.reshape(-1)
            else:
                return None
        return scale

    def dense(self) -> np.ndarray:
        """The term as a matrix [n_out, n_in] over IR-flattened (row-major C, H, W) indices (float64)."""
        if self._dense is None:
            if all(k in ("linear", "flatten") for k, _ in self.ops) and sum(k == "linear" for k, _ in self.ops) == 1:
                (node,) = [o for k, o in self.ops if k == "linear"]
                self._dense = node.weight.astype(np.float64)
            else:
                if self.n_in * self.n_out > MAX_DENSE_ENTRIES:
                    raise NeurosimError(
                        f"the path {self.describe()} would need a dense {self.n_out}x{self.n_in} matrix "
                        f"(> {MAX_DENSE_ENTRIES:,} entries); only [pool ->] conv [-> scale] paths stay convolutions")
                cols = []
                with torch.no_grad():
                    for s in range(0, self.n_in, 4096):
                        e = torch.eye(self.n_in, dtype=torch.float64)[s:s + 4096]
                        cols.append(self.apply(e.reshape(-1, *self.in_shape)).reshape(e.shape[0], -1))
                self._dense = torch.cat(cols).T.contiguous().numpy()
        return self._dense

    def coo(self):
        """``(i, j, w)``: source index, target index, weight of every nonzero synapse (IR flat order)."""
        cf = self.conv_form()
        if cf is None:
            m = self.dense()
            j, i = np.nonzero(m)
            return i.astype(np.int64), j.astype(np.int64), m[j, i]
        w, stride, padding, dilation, groups = cf
        # which input feeds which tap: convolve an index image (1-based, 0 = padding) with unit kernels
        C, H, W = self.in_shape
        Co, Cg, kh, kw = w.shape
        idx = torch.arange(1, C * H * W + 1, dtype=torch.float64).reshape(1, C, H, W)
        cols = F.unfold(idx, (kh, kw), dilation=dilation, padding=padding, stride=stride)[0]  # [C*kh*kw, L]
        L = cols.shape[1]
        cols = cols.reshape(C, kh * kw, L).numpy().astype(np.int64)
        ii, jj, ww = [], [], []
        co_per_g = Co // groups
        for co in range(Co):
            g = co // co_per_g
            src = cols[g * Cg:(g + 1) * Cg].reshape(Cg * kh * kw, L)  # [taps, L]
            wk = w[co].reshape(Cg * kh * kw)
            taps, pos = np.nonzero((src > 0) & (wk[:, None] != 0))
            ii.append(src[taps, pos] - 1)
            jj.append(co * L + pos)
            ww.append(wk[taps])
        return np.concatenate(ii), np.concatenate(jj), np.concatenate(ww)

    def describe(self) -> str:
        return " -> ".join([self.source] + [k if k != "scale" else "scale" for k, _ in self.ops])


def _apply_op(kind: str, op, x: torch.Tensor, bias: bool) -> torch.Tensor:
    dt = x.dtype
    if kind == "linear":
        return F.linear(x.reshape(x.shape[0], -1), torch.as_tensor(op.weight, dtype=dt),
                        torch.as_tensor(op.bias, dtype=dt) if bias and op.bias is not None else None)
    if kind == "conv":
        return F.conv2d(x, torch.as_tensor(op.weight, dtype=dt),
                        torch.as_tensor(op.bias, dtype=dt) if bias and op.bias is not None else None,
                        op.stride, op.padding, op.dilation, op.groups)
    if kind == "pool":
        div = 1 if isinstance(op, SumPool2d) else None
        return F.avg_pool2d(x, op.kernel_size, op.stride, op.padding, count_include_pad=True, divisor_override=div)
    if kind == "flatten":
        return x.reshape(x.shape[0], -1)
    if kind == "scale":
        return x * torch.as_tensor(np.asarray(op), dtype=dt)
    raise AssertionError(kind)  # pragma: no cover


@dataclass
class Target:
    """What drives one population (or the readout): its terms and its constant current ``const``."""

    name: str
    shape: tuple
    terms: list[Term]
    const: np.ndarray  # float64, shape ``shape``


class Lowering:
    """The IR as sources, targets and terms (module docstring), plus each source's latency for
    simulators whose synapses delay by one step.

    ``targets``: one per Neurons population and one for the readout (name ``readout``, only for a
    membrane readout; a spike-count readout reads its population's spikes). ``maxpools``: the
    SpikeMaxPool2d nodes with the source they read (through Flatten: the same spikes).
    """

    def __init__(self, net: SpikingNetwork):
        self.net = net
        self._expr: dict[str, tuple[list[Term], np.ndarray]] = {}
        self.targets: dict[str, Target] = {}
        self.maxpools: dict[str, str] = {}
        for k, n in net.nodes.items():
            if isinstance(n, Neurons):
                terms, const = self.expr(n.inputs[0])
                self.targets[k] = Target(k, n.shape, terms, const + np.broadcast_to(n.bias, n.shape))
            elif isinstance(n, SpikeMaxPool2d):
                src = net.spike_source(n.inputs[0])
                self.maxpools[k] = src
        if net.readout.kind == "membrane":
            terms, const = self.expr(net.readout.node)
            self.targets["readout"] = Target("readout", net.shapes[net.readout.node], terms, const)

    def is_source(self, name: str) -> bool:
        return name == INPUT or isinstance(self.net.nodes.get(name), (Neurons, SpikeMaxPool2d))

    def expr(self, name: str) -> tuple[list[Term], np.ndarray]:
        """Terms and constant of node ``name``'s output (its value at every step)."""
        if name in self._expr:
            return self._expr[name]
        shape = self.net.shapes[name]
        if self.is_source(name):
            out = ([Term(name, [], shape, shape)], np.zeros(shape))
        else:
            n = self.net.nodes[name]
            if isinstance(n, Add):
                terms, const = [], np.zeros(shape)
                for i, w in zip(n.inputs, n.weights):
                    ts, c = self.expr(i)
                    w64 = np.asarray(w, np.float64)
                    for t in ts:
                        ops = t.ops if w64.size == 1 and float(w64.reshape(-1)[0]) == 1.0 else t.ops + [("scale", w64)]
                        terms.append(Term(t.source, ops, t.in_shape, shape))
                    const = const + c * w64
            else:
                kind = {Linear: "linear", Conv2d: "conv", AvgPool2d: "pool", SumPool2d: "pool",
                        Flatten: "flatten"}[type(n)]
                ts, c = self.expr(n.inputs[0])
                terms = [Term(t.source, t.ops + [(kind, n)], t.in_shape, shape) for t in ts]
                with torch.no_grad():
                    const = _apply_op(kind, n, torch.as_tensor(c, dtype=torch.float64)[None], bias=True)[0]
                const = const.numpy().reshape(shape)
            out = (terms, np.asarray(const, np.float64))
        self._expr[name] = out
        return out

    # -- latency for one-step-delay synapses ----------------------------------------------------------
    def latencies(self) -> tuple[dict[str, int], dict[tuple[str, int], int]]:
        """``(latency, extra_delay)``: ``latency[node]`` is the step offset at which a simulator whose
        synapses delay one step sees sample step 0 at that node (sources, populations, ``readout``);
        ``extra_delay[(target, k)]`` the extra steps term ``k`` needs so all terms of a target align."""
        lat = {INPUT: 0}
        extra = {}
        for k, n in self.net.nodes.items():
            if k in self.targets:
                tg = self.targets[k]
                lat[k] = max([lat[t.source] + 1 for t in tg.terms], default=0)
                for i, t in enumerate(tg.terms):
                    extra[(k, i)] = lat[k] - lat[t.source] - 1
            elif k in self.maxpools:
                lat[k] = lat[self.maxpools[k]]
        if "readout" in self.targets:
            tg = self.targets["readout"]
            lat["readout"] = max([lat[t.source] + 1 for t in tg.terms], default=0)
            for i, t in enumerate(tg.terms):
                extra[("readout", i)] = lat["readout"] - lat[t.source] - 1
        else:
            lat["readout"] = lat[self.net.readout.node]
        return lat, extra


def signed_sources(net: SpikingNetwork, include_input: bool = True) -> set[str]:
    """Spike sources whose spikes can be -1: signed Neurons populations and the SpikeMaxPool2d nodes
    that read one (a max of signed counts can fall), with ``include_input`` also those reading the
    Poisson input (+-1 spikes; the input itself is not listed). Their targets need signed spikes."""
    out = {k for k, n in net.nodes.items() if isinstance(n, Neurons) and n.signed}
    if include_input:
        out.add(INPUT)
    for k, n in net.nodes.items():
        if isinstance(n, SpikeMaxPool2d) and net.spike_source(n.inputs[0]) in out:
            out.add(k)
    out.discard(INPUT)
    return out


def node_fanout(node, in_shape) -> np.ndarray | None:
    """Synapses driven by each input element of one IR synaptic node (IR flat order); None for Add."""
    if isinstance(node, Linear):
        return (node.weight != 0).sum(0).astype(np.float64)
    if isinstance(node, Add):
        return None
    x = torch.ones(1, *in_shape, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        if isinstance(node, Conv2d):
            y = F.conv2d(x, torch.as_tensor(node.weight != 0, dtype=torch.float64), None, node.stride,
                         node.padding, node.dilation, node.groups)
        else:
            y = F.avg_pool2d(x, node.kernel_size, node.stride, node.padding, count_include_pad=True,
                             divisor_override=1)
        y.sum().backward()
    return x.grad[0].reshape(-1).numpy()


def synops(net: SpikingNetwork, source_events: dict[str, np.ndarray], batch: int, timesteps: int) -> dict[str, float]:
    """Synaptic operations per sample, with the definition of :class:`~neurosim.ir.SimResult`: at every
    Linear/Conv2d, each nonzero input event times the nonzero weights it drives; at an Add, one per
    spike arriving on a spiking input (pooling, flatten and Adds of currents are not counted).

    ``source_events[src]``: nonzero output events per element of a source over the whole batch (IR
    flat order): spike counts of populations and max-pools, nonzero input values times steps for the
    input. A weight layer that reads an analog map that is not a source (e.g. an average pool of
    spikes) is counted as if every element were nonzero at every step: an upper bound, exact for
    dense accumulators; the snntorch backend counts such maps' nonzero values step by step.
    """
    out = {}
    for k, n in net.nodes.items():
        if isinstance(n, Add):
            spiking = [i for i in n.inputs if net.spike_source(i) is not None]
            if spiking:
                out[k] = sum(float(np.asarray(source_events[net.spike_source(i)]).sum()) for i in spiking) / max(batch, 1)
            continue
        if not isinstance(n, (Linear, Conv2d)):
            continue
        fo = node_fanout(n, net.shapes[n.inputs[0]])
        src = n.inputs[0]
        while src != INPUT and isinstance(net.nodes[src], Flatten):
            src = net.nodes[src].inputs[0]
        if src in source_events:
            ev = np.asarray(source_events[src], np.float64).reshape(-1)
        else:
            ev = np.full(int(np.prod(net.shapes[n.inputs[0]])), float(batch * timesteps))
        out[k] = float((ev * fo).sum()) / max(batch, 1)
    return out
