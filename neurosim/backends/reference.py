"""The reference backend: the IR's per-step semantics (:mod:`neurosim.ir` docstring) as plain code.

This is the spec in executable form, not a fast simulator: at every step ``t = 1 .. T`` it walks the
nodes in list order and applies each node's rule exactly as the IR docstring states it (float64 by
default), with no lowering, no fusion and no lazy resets. Every other backend is tested against it
(``tests/test_backend_conformance.py``), so a new node kind needs a rule here first.

Statistics follow :class:`~neurosim.ir.SimResult`'s definitions and are counted step by step, so
they are exact: ``spike_counts`` are events (a signed population's -1 spikes count), ``counts`` the
net count ``C_T`` per neuron, ``synops`` at every Linear/Conv2d the nonzero input elements at each
step times the nonzero weights each drives (a direct-encoded input counts every step, as analog
MACs) and at an Add one per spike arriving on a spiking input.

Encoding, batching and :class:`~neurosim.ir.SimResult` come from the driver
(:mod:`neurosim.backends.base`): the whole batch is encoded at once with a generator seeded with
``seed``, so Poisson runs see the same spikes on every backend and results do not depend on
``batch_size``. This module is the seam's smallest example: ``prepare`` (nothing to lower) and a
``simulate`` that returns the step rule's activity, with its own exact SynOps.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.backends import Activity, Batch, register_backend
from neurosim.backends import _transformer as tf
from neurosim.ir.lowering import node_fanout
from neurosim.errors import NeurosimError
from neurosim.ir import (INPUT, Add, AvgPool2d, Conv2d, Flatten, Linear, MatMul, Neurons, SpikeMaxPool2d,
                         SpikingNetwork, SumPool2d, TokenLinear)
from neurosim.ir.nodes import ACCUMULATED

__all__ = ["reference_run", "simulate", "prepare", "run"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def simulate(net: SpikingNetwork, x, T: int, encoded=None, dtype=torch.float64, record: tuple[str, ...] = (),
             record_trace: bool = False) -> dict:
    """Run the IR's step semantics on ``x`` [B, *input_shape] for ``T`` steps.

    ``encoded`` [T, B, *input_shape]: the input node's output per step (e.g. Poisson spikes from
    :func:`neurosim.encoding.encode`); default the direct encoding ``e_t = x``.

    Returns a dict: ``output`` [B, classes]; ``counts`` (net count ``C_T`` per population,
    [B, *shape]); ``events`` (spike events per population, [B, *shape]); ``synops`` (per weight
    layer, summed over the batch); with ``record_trace`` ``trace`` [T, B, classes]; with ``record``
    ``steps[node]`` [T, B, *shape] (each named node's output at every step).
    """
    x = torch.as_tensor(np.asarray(x), dtype=dtype)
    B = x.shape[0]
    t_ = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    shapes = net.shapes
    v = {k: t_(np.array(np.broadcast_to(n.v_init, n.shape))).expand(B, *n.shape).clone()
         for k, n in net.nodes.items() if isinstance(n, Neurons)}
    cnt = {k: torch.zeros(B, *shapes[n.inputs[0]], dtype=dtype)
           for k, n in net.nodes.items() if isinstance(n, SpikeMaxPool2d)}
    spikes = {k: torch.zeros(B, *n.shape, dtype=dtype) for k, n in net.nodes.items() if isinstance(n, Neurons)}
    n_events = {k: torch.zeros_like(s) for k, s in spikes.items()}
    # SynOps: fan-out of every input element of a weight layer; the spiking inputs of every Add
    fanout = {k: t_(node_fanout(n, shapes[n.inputs[0]])).reshape(shapes[n.inputs[0]])
              for k, n in net.nodes.items() if isinstance(n, (Linear, Conv2d))}
    add_spiking = {k: [j for j, i in enumerate(n.inputs) if net.spike_source(i) is not None]
                   for k, n in net.nodes.items() if isinstance(n, Add)}
    fanout.update({k: t_(tf.token_fanout(n, shapes[n.inputs[0]]))
                   for k, n in net.nodes.items() if isinstance(n, TokenLinear)})
    synops = {k: 0.0 for k in fanout}
    synops.update({k: 0.0 for k, n in net.nodes.items() if isinstance(n, MatMul)})
    # nodes on accumulated input: running sums S_t of each input and the last g_{t-1} = (t-1) f(S/(t-1))
    sums = {k: [torch.zeros(B, *shapes[i], dtype=dtype) for i in n.inputs]
            for k, n in net.nodes.items() if isinstance(n, ACCUMULATED)}
    g_prev = {k: torch.zeros(B, *shapes[k], dtype=dtype) for k in sums}
    cache: dict = {}
    synops.update({k: 0.0 for k, js in add_spiking.items() if js})
    acc = torch.zeros(B, net.num_classes, dtype=dtype)
    trace = [] if record_trace else None
    steps = {k: [] for k in record}
    for t in range(T):
        val = {INPUT: x if encoded is None else torch.as_tensor(np.asarray(encoded[t]), dtype=dtype)}
        for k, n in net.nodes.items():
            xs = [val[i] for i in n.inputs]
            if k in fanout:
                synops[k] += float(((xs[0] != 0).to(dtype) * fanout[k]).sum())
            if isinstance(n, Linear):
                y = xs[0] @ t_(n.weight).T
                val[k] = y + t_(n.bias) if n.bias is not None else y
            elif isinstance(n, Conv2d):
                val[k] = F.conv2d(xs[0], t_(n.weight), None if n.bias is None else t_(n.bias), n.stride, n.padding,
                                  n.dilation, n.groups)
            elif isinstance(n, AvgPool2d):
                val[k] = F.avg_pool2d(xs[0], n.kernel_size, n.stride, n.padding, count_include_pad=True)
            elif isinstance(n, SumPool2d):
                val[k] = F.avg_pool2d(xs[0], n.kernel_size, n.stride, n.padding, count_include_pad=True,
                                      divisor_override=1)
            elif isinstance(n, Flatten):
                val[k] = xs[0].reshape(B, -1)
            elif isinstance(n, Add):
                for j in add_spiking[k]:
                    synops[k] += float((xs[j] != 0).sum())
                val[k] = sum(xi * t_(w) for xi, w in zip(xs, n.weights))
            elif isinstance(n, Neurons):
                vv = n.leak * v[k] + xs[0] + t_(n.bias)
                s = (vv > t_(n.threshold)).to(dtype)
                if n.signed:
                    s = s - ((s == 0) & (vv < 0) & (spikes[k] > 0)).to(dtype)
                if n.reset == "subtract":
                    vv = vv - t_(n.threshold) * s
                else:
                    vv = torch.where(s.bool(), torch.full_like(vv, n.v_reset), vv)
                v[k] = vv
                spikes[k] += s
                n_events[k] += s.abs()
                val[k] = s
            elif isinstance(n, SpikeMaxPool2d):
                before = F.max_pool2d(cnt[k], n.kernel_size, n.stride, n.padding)
                cnt[k] = cnt[k] + xs[0]
                val[k] = F.max_pool2d(cnt[k], n.kernel_size, n.stride, n.padding) - before
            elif isinstance(n, tf.STATELESS):
                val[k] = tf.stateless(n, xs, B, dtype, cache)
            elif isinstance(n, ACCUMULATED):
                if isinstance(n, MatMul):
                    synops[k] += tf.matmul_synops(n, xs[0], xs[1])
                for j, xi in enumerate(xs):
                    sums[k][j] = sums[k][j] + xi
                g = (t + 1) * tf.fn(n, [s_ / (t + 1) for s_ in sums[k]], cache)
                val[k] = g - g_prev[k]
                g_prev[k] = g
            else:
                raise NeurosimError(f"the reference backend has no rule for node kind {n.kind} ({k!r})")
        acc += val[net.readout.node]
        if record_trace:
            trace.append((net.readout.scale * acc / (t + 1)).numpy().copy())
        for k in record:
            steps[k].append(val[k].numpy().copy())
    out = {"output": (net.readout.scale * acc / T).numpy(),
           "counts": {k: s.numpy() for k, s in spikes.items()},
           "events": {k: e.numpy() for k, e in n_events.items()},
           "synops": synops}
    if record_trace:
        out["trace"] = np.stack(trace)
    if record:
        out["steps"] = {k: np.stack(s) for k, s in steps.items()}
    return out


def reference_run(net: SpikingNetwork, x: np.ndarray, T: int, encoded: np.ndarray | None = None,
                  dtype=torch.float64, events: bool = False, record: tuple[str, ...] = ()):
    """The tuple form the backend tests use: ``(output [B, classes], net spike counts per population
    [B, *shape])``, with ``events`` also the spike events per population, and with ``record`` also
    the per-step outputs ``[T, B, *shape]`` of those nodes (last item). See :func:`simulate`."""
    r = simulate(net, x, T, encoded=encoded, dtype=dtype, record=record)
    res = (r["output"], r["counts"])
    if events:
        res += (r["events"],)
    return res + (r["steps"],) if record else res


class _Program:
    """The reference backend's program: the network itself, and the dtype it steps in."""

    def __init__(self, net: SpikingNetwork, dtype):
        self.net, self.dtype = net, dtype

    def sample_elements(self, T: int) -> int:
        # every node's value, the states beside it (membrane, counts, events) and the trace
        return 4 * sum(int(np.prod(s)) for s in self.net.shapes.values()) + T * self.net.num_classes


def prepare(net: SpikingNetwork, precision: str = "float", *, dtype: str = "float64") -> _Program:
    """The IR's step semantics as plain numpy/torch code (the spec; float64 by default).

    ``dtype``: ``"float64"`` (default) or ``"float32"``. Nothing is lowered: :func:`simulate` walks the
    nodes as the IR docstring states them."""
    if dtype not in _DTYPES:
        raise NeurosimError(f"unknown dtype {dtype!r}; valid: {', '.join(_DTYPES)}")
    return _Program(net, _DTYPES[dtype])


def _simulate(program: _Program, batch: Batch, *, record_trace: bool = False,
              record_counts: bool = False) -> Activity:
    """Step ``batch`` through :func:`simulate`; SynOps are the exact step-by-step counts (module docstring).

    ``record_trace``: ``SimResult.trace``. ``record_counts``: ``SimResult.counts`` (net count C_T per
    neuron)."""
    net, dt = program.net, program.dtype
    r = simulate(net, batch.x.to(dt), batch.timesteps, encoded=None if batch.const else batch.encoded.to(dt),
                 dtype=dt, record_trace=record_trace)
    trace = r["trace"].astype(np.float32) if record_trace else None
    return Activity(output=r["output"].astype(np.float32), trace=trace,
                    events={k: r["events"][k].sum(0).reshape(-1) for k in net.populations},
                    counts={k: r["counts"][k] for k in net.populations} if record_counts else None,
                    synops=r["synops"])


run = register_backend("reference", precisions=("float",),
                       description="the IR's step semantics as plain numpy/torch code (the spec; float64)",
                       prepare=prepare, simulate=_simulate)
