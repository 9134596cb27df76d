"""snntorch backend: lowers the IR to torch/snntorch modules and runs them batched on the CPU (or GPU).

Lowering (one module per IR node):

* :class:`~neurosim.ir.Linear` / :class:`~neurosim.ir.Conv2d` -> ``nn.Linear`` / ``nn.Conv2d``;
  AvgPool2d -> ``nn.AvgPool2d(count_include_pad=True)``; SumPool2d -> the same times the window size;
  Flatten -> ``nn.Flatten``; Add -> a weighted sum; SpikeMaxPool2d -> a running-count max (IR docs).
* :class:`~neurosim.ir.Neurons` -> ``snntorch.Leaky(beta=leak, threshold=..., reset_mechanism=
  "subtract"|"zero", reset_delay=True)`` (snntorch's default) with the bias added to its input current
  and the membrane seeded with ``v_init``. With ``reset_delay=True`` the reset of a spike at step t is
  applied at step t+1, *before* the new input but *after* the leak for the subtractive reset: that is
  the IR's update for IF (leak 1) and for the zero reset at any leak, so only those populations use
  Leaky (its ``reset_delay=False`` variant undoes the reset of a neuron whose membrane stays above
  threshold after a spike, so it is not used). A subtractive LIF, a zero reset to ``v_reset != 0``,
  a ``v_init`` above threshold and ``neuron_impl="torch"`` run our own in-place IF/LIF update, which a
  test checks equals Leaky. Signed populations (-1 spikes, :class:`~neurosim.ir.Neurons` ``signed``)
  also run our own update: Leaky has no negative spike.

Execution (``mode``):

* ``"layer"`` (default): the IR has no synaptic delay and no recurrence, so each node can be run for
  all T steps before the next: synaptic nodes see one [T*batch, ...] tensor (one big GEMM/conv instead
  of T small ones) and only the elementwise neuron update loops over t. A direct-encoded input is the
  same every step, so the first layer's current is computed once. This removes most of the per-step
  Python overhead; memory grows with T (the batch is chunked to ``max_memory_mib``).
* ``"step"``: the textbook loop over t, then over nodes (memory independent of T). Both modes give
  the same spikes (tested in float64).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurosim.backends import Activity, Batch, register_backend
from neurosim.backends import _transformer as tf
from neurosim.ir.lowering import node_fanout, signed_sources
from neurosim.errors import NeurosimError
from neurosim.ir import (INPUT, Add, AvgPool2d, Conv2d, Flatten, Linear, MatMul, Neurons, SpikeMaxPool2d,
                         SpikingNetwork, SumPool2d, TokenLinear)
from neurosim.ir.nodes import ACCUMULATED

MODES = ("layer", "step")
NEURON_IMPLS = ("auto", "snntorch", "torch", "numba")


# ---- neurons: snntorch.Leaky, our torch update, the numba kernel ------------------------------------

# Every neuron path applies a spike's reset lazily, at the start of the next step, in exactly
# snntorch.Leaky's (reset_delay=True) floating-point order, so they agree bit for bit:
#   subtract, leak 1:  v = (v + I') - s_prev * threshold         (I' = I + bias)
#   subtract, leak<1:  v = leak * (v - s_prev * threshold) + I'  (Leaky cannot: ours only)
#   zero:              v = leak * (v_reset if s_prev else v) + I'
#   s = v > threshold
#   s = -1 where signed and s == 0 and v < 0 and C > 0   (C: net count before this step; s_prev = -1
#                                                          adds the threshold back in the lines above)
# which is the IR's update (reset right after the spike) with the same spikes. Three implementations:
# snntorch's Leaky (the point of this backend, where it can express the node), our in-place torch
# update (every other node, the step mode, and any device) and the numba kernel (the fast path of the
# layer mode on the CPU); tests/test_snntorch.py checks that all three agree.


def _leaky_supports(node: Neurons) -> bool:
    """Whether ``snntorch.Leaky(reset_delay=True)`` is the IR update for ``node``: IF with the subtractive
    reset, or the zero reset to 0 at any leak; no -1 spikes; no ``v_init`` above threshold (Leaky would
    reset it). Its ``reset_delay=False`` variant undoes the reset of a neuron whose membrane stays
    above threshold after a spike, so it is never used."""
    ok_reset = (node.reset == "subtract" and node.leak == 1.0) or (node.reset == "zero" and node.v_reset == 0.0)
    return ok_reset and not node.signed and bool(np.all(node.v_init <= node.threshold))


class _Populations(nn.Module):
    """One population's update for one step: ``snntorch.Leaky`` (``self.leaky``) where it can express
    the node and ``impl`` allows it, else our in-place torch update (:meth:`torch_step`)."""

    def __init__(self, node: Neurons, impl: str, dtype):
        super().__init__()
        self.leak, self.reset, self.v_reset, self.signed = node.leak, node.reset, node.v_reset, node.signed
        self.shape = node.shape
        self.register_buffer("threshold", torch.as_tensor(node.threshold, dtype=dtype))
        self.register_buffer("bias", torch.as_tensor(node.bias, dtype=dtype))
        self.register_buffer("v_init", torch.as_tensor(node.v_init, dtype=dtype))
        self.has_bias = bool(np.any(node.bias != 0))
        self.leaky = None
        if impl in ("snntorch", "auto", "numba") and _leaky_supports(node):
            import snntorch as snn

            self.leaky = snn.Leaky(beta=node.leak, threshold=torch.as_tensor(node.threshold, dtype=dtype),
                                   reset_mechanism=node.reset, reset_delay=True)
            # snntorch keeps every neuron ever built in a class-level list (for reset_hidden); ours manage
            # their own state, and staying on that list would keep their membranes alive forever.
            try:
                snn.SpikingNeuron.instances.remove(self.leaky)
            except ValueError:
                pass

    def init_state(self, batch: int, device, dtype):
        v = self.v_init.expand(batch, *self.shape).to(device=device, dtype=dtype).clone()
        return (v, torch.zeros_like(v), torch.zeros_like(v)) if self.signed else (v, torch.zeros_like(v))

    def step(self, current, state):
        if self.has_bias:
            current = current + self.bias
        if self.leaky is not None:
            spk, mem = self.leaky(current, state[0])
            return spk.to(mem.dtype), (mem, None)  # snntorch's Heaviside returns float32 whatever the input
        return self.torch_step(current, state)

    def torch_step(self, current, state):
        """The update above as a few in-place tensor ops (``current`` already holds the bias)."""
        v, s_prev = state[:2]  # v: this population's own buffer (init_state)
        if self.reset == "subtract":
            if self.leak == 1.0:
                v.add_(current).sub_(s_prev * self.threshold)
            else:
                v.sub_(s_prev * self.threshold).mul_(self.leak).add_(current)
        else:
            v.masked_fill_(s_prev.bool(), self.v_reset)
            if self.leak != 1.0:
                v.mul_(self.leak)
            v.add_(current)
        spk = (v > self.threshold).to(v.dtype)
        if self.signed:
            net = state[2]  # the net count before this step
            spk = spk - ((spk == 0) & (v < 0) & (net > 0)).to(v.dtype)
            return spk, (v, spk, net.add_(spk))
        return spk, (v, spk)

    def layer(self, cur: torch.Tensor, T: int, numba: bool = False):
        """All ``T`` steps on currents ``cur`` [T or 1, B, *shape] (one row: the same every step):
        spikes [T, B, *shape] and spike events [B, *shape]; ``numba``: the fused CPU kernel."""
        B = cur.shape[1]
        if numba:
            return _numba_layer(self, cur, T)
        out = torch.empty(T, B, *self.shape, dtype=cur.dtype, device=cur.device)
        state = self.init_state(B, cur.device, cur.dtype)
        for t in range(T):
            out[t], state = self.step(cur[0 if cur.shape[0] == 1 else t], state)
        return out, (out.abs().sum(0) if self.signed else out.sum(0))


def population(node: Neurons, cur, T: int, impl: str = "torch", dtype=torch.float64):
    """Run population ``node`` alone on currents ``cur`` [T or 1, B, *shape] with ``impl`` (``"torch"``,
    ``"snntorch"`` or ``"numba"``): spikes [T, B, *shape] and events [B, *shape] (what the layer mode does
    for each population; the tests compare the three)."""
    pop = _Populations(node, impl, dtype)
    with torch.no_grad():
        return pop.layer(torch.as_tensor(cur, dtype=dtype), T, numba=impl == "numba")


_KERNEL = None


def _kernel():
    """The numba version of :meth:`_Populations.layer`: one pass per neuron over all T, in parallel."""
    global _KERNEL
    if _KERNEL is None:
        from numba import njit, prange

        @njit(parallel=True, cache=True)
        def if_layer(cur, thr, bias, v0, leak, subtract, v_reset, signed, out, counts):
            T, N = out.shape
            const = cur.shape[0] == 1
            n = thr.shape[0]
            zero = thr[0] - thr[0]
            for i in prange(N):
                j = i % n
                v = v0[j]
                th = thr[j]
                b = bias[j]
                s = 0  # the previous step's spike: -1, 0 or 1
                c = 0  # events
                net = 0  # net count
                for t in range(T):
                    x = (cur[0, i] if const else cur[t, i]) + b
                    if subtract:
                        if leak == 1.0:
                            v = (v + x) - (th if s == 1 else (-th if s == -1 else zero))
                        else:
                            v = leak * (v - (th if s == 1 else (-th if s == -1 else zero))) + x
                    else:
                        if s != 0:
                            v = v_reset
                        v = (leak * v + x) if leak != 1.0 else v + x
                    if v > th:
                        s = 1
                    elif signed and v < zero and net > 0:
                        s = -1
                    else:
                        s = 0
                    out[t, i] = s
                    if s != 0:
                        c += 1
                        net += s
                counts[i] = c

        _KERNEL = if_layer
    return _KERNEL


def _numba_layer(pop: _Populations, cur: torch.Tensor, T: int):
    npdt = np.float32 if cur.dtype == torch.float32 else np.float64
    B, shape = cur.shape[1], pop.shape
    full = lambda a: np.ascontiguousarray(np.broadcast_to(a.cpu().numpy(), shape).reshape(-1), dtype=npdt)  # noqa: E731
    c = np.ascontiguousarray(cur.reshape(cur.shape[0], -1).cpu().numpy(), dtype=npdt)
    out = np.empty((T, c.shape[1]), npdt)
    counts = np.empty(c.shape[1], np.int64)
    bias = pop.bias if pop.has_bias else torch.zeros(())
    _kernel()(c, full(pop.threshold), full(bias), full(pop.v_init), npdt(pop.leak),
              pop.reset == "subtract", npdt(pop.v_reset), pop.signed, out, counts)
    return torch.from_numpy(out).view(T, B, *shape), torch.from_numpy(counts).view(B, *shape)


# ---- lowering ---------------------------------------------------------------------------------------

def _lower(node, dtype) -> nn.Module | None:
    if isinstance(node, Linear):
        m = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=node.bias is not None)
    elif isinstance(node, Conv2d):
        m = nn.Conv2d(node.weight.shape[1] * node.groups, node.weight.shape[0], node.weight.shape[2:],
                      stride=node.stride, padding=node.padding, dilation=node.dilation, groups=node.groups,
                      bias=node.bias is not None)
    else:
        return None
    with torch.no_grad():
        m.weight.copy_(torch.as_tensor(node.weight))
        if node.bias is not None:
            m.bias.copy_(torch.as_tensor(node.bias))
    return m.to(dtype)


class Lowered(nn.Module):
    """The IR as torch modules: ``synapses[name]`` for Linear/Conv2d, ``neurons[name]`` for Neurons."""

    def __init__(self, net: SpikingNetwork, neuron_impl: str = "snntorch", dtype=torch.float32):
        super().__init__()
        if neuron_impl not in NEURON_IMPLS:
            raise NeurosimError(f"unknown neuron_impl {neuron_impl!r}; valid: {', '.join(NEURON_IMPLS)}")
        self.net, self.dtype, self.impl = net, dtype, neuron_impl
        self.signed = any(p.signed for p in net.populations.values())
        # max-pools whose output can hold -1 (a max of signed or Poisson +-1 counts can fall)
        self.signed_pools = {k for k in signed_sources(net) if isinstance(net.nodes[k], SpikeMaxPool2d)}
        self.synapses = nn.ModuleDict()
        self.neurons = nn.ModuleDict()
        self.key = {}
        for i, (k, n) in enumerate(net.nodes.items()):
            self.key[k] = f"n{i}"  # ModuleDict keys may not contain dots
            if isinstance(n, Neurons):
                self.neurons[self.key[k]] = _Populations(n, neuron_impl, dtype)
            elif isinstance(n, (*tf.STATELESS, *ACCUMULATED)):
                continue  # functional (neurosim.backends._transformer); weights cached in self.tf_cache
            else:
                m = _lower(n, dtype)
                if m is not None:
                    self.synapses[self.key[k]] = m
        self.tf_cache: dict = {}
        self.add_w = {k: [torch.as_tensor(w, dtype=dtype) for w in n.weights]
                      for k, n in net.nodes.items() if isinstance(n, Add)}
        self.eval()

    # the stateless part of every non-neuron node, applied to a [N, *shape] tensor
    def apply(self, k: str, xs: list[torch.Tensor]) -> torch.Tensor:
        n = self.net.nodes[k]
        if isinstance(n, (Linear, Conv2d)):
            return self.synapses[self.key[k]](xs[0])
        if isinstance(n, AvgPool2d):
            return F.avg_pool2d(xs[0], n.kernel_size, n.stride, n.padding, count_include_pad=True)
        if isinstance(n, SumPool2d):
            return F.avg_pool2d(xs[0], n.kernel_size, n.stride, n.padding, count_include_pad=True,
                                divisor_override=1)
        if isinstance(n, Flatten):
            return xs[0].flatten(1)
        if isinstance(n, tf.STATELESS):
            return tf.stateless(n, xs, xs[0].shape[0] if xs else 1, self.dtype, self.tf_cache)
        if isinstance(n, Add):
            out = None
            for x, w in zip(xs, self.add_w[k]):
                y = x if w.numel() == 1 and float(w) == 1.0 else x * w
                out = y if out is None else out + y
            return out
        raise AssertionError(f"no stateless lowering for {n.kind}")  # pragma: no cover


# ---- statistics -------------------------------------------------------------------------------------

class _Stats:
    """Spike counts per population and synaptic operations per weight layer.

    SynOps (Merolla et al. 2014; Rueckauer et al. 2017): each nonzero input element at each step
    times the nonzero weights it drives, counted at Linear/Conv2d nodes (a direct-encoded input
    counts every step, as analog MACs), plus one per spike on an identity shortcut into an Add.
    Pooling, flatten and the Add of currents are not counted: hardware folds them into the next
    weight layer or the dendritic sum.
    """

    def __init__(self, net: SpikingNetwork):
        self.net = net
        self.spikes = {k: 0.0 for k in net.populations}
        self.record_counts = False
        self.counts: dict[str, list] = {k: [] for k in net.populations}
        self.record_steps = False
        self.steps: dict[str, list] = {k: [] for k in [INPUT, *net.populations]  # [T, B] per batch chunk
                                       + [k for k, n in net.nodes.items() if isinstance(n, SpikeMaxPool2d)]}
        self.synops = {}
        self.fanout = {}
        self.inputs = {}  # node -> indices of the inputs that are counted
        for k, n in net.nodes.items():
            if isinstance(n, (Linear, Conv2d)):
                shape = net.shapes[n.inputs[0]]
                self.fanout[k] = [torch.as_tensor(node_fanout(n, shape).reshape(shape))]
                self.inputs[k] = [0]
                self.synops[k] = 0.0
            elif isinstance(n, TokenLinear):
                self.fanout[k] = [torch.as_tensor(tf.token_fanout(n, net.shapes[n.inputs[0]]))]
                self.inputs[k] = [0]
                self.synops[k] = 0.0
            elif isinstance(n, MatMul):
                self.synops[k] = 0.0  # counted by the runners (nnz of each input's step value)
            elif isinstance(n, Add):
                spk = [j for j, i in enumerate(n.inputs) if net.spike_source(i) is not None]
                if spk:
                    self.fanout[k] = [None] * len(n.inputs)
                    self.inputs[k] = spk
                    self.synops[k] = 0.0

    def events(self, k: str, j: int, nonzero_counts: torch.Tensor):
        """``nonzero_counts`` [B, *in_shape]: nonzero input steps per element for input j of node k."""
        f = self.fanout[k][j]
        if f is None:
            self.synops[k] += float(nonzero_counts.sum())
        else:
            self.synops[k] += float((nonzero_counts.to(torch.float64) * f).sum())


# ---- the two execution modes ------------------------------------------------------------------------

class _Val:
    """A node's output over T steps: ``x`` [T, B, ...], or [1, B, ...] with ``const`` when equal at all t."""

    __slots__ = ("x", "const")

    def __init__(self, x, const=False):
        self.x, self.const = x, const


def _run_layer(low: Lowered, e: torch.Tensor, const_input: bool, T: int, stats: _Stats, record: bool):
    net = low.net
    B = e.shape[1]
    vals = {INPUT: _Val(e, const_input)}
    counts: dict[str, torch.Tensor] = {}  # nonzero steps per element [B, ...], where known cheaply
    remaining = {k: len(net.consumers(k)) for k in [INPUT, *net.nodes]}
    use_numba = low.impl == "numba" or (low.impl == "auto" and e.device.type == "cpu")
    for k, n in net.nodes.items():
        ins = [vals[i] for i in n.inputs]
        if k in stats.synops:
            for j in stats.inputs.get(k, ()):
                i, v = n.inputs[j], ins[j]
                nz = counts.get(i)
                if nz is None:
                    nz = torch.count_nonzero(v.x, dim=0) * (T if v.const else 1)
                stats.events(k, j, nz)
        if isinstance(n, Neurons):
            out, cnt = low.neurons[low.key[k]].layer(ins[0].x, T, numba=use_numba)
            counts[k] = cnt  # events
            if stats.record_counts:
                stats.counts[k].append((out.sum(0) if n.signed else cnt).to(torch.int32).cpu())
            stats.spikes[k] += float(cnt.sum())
            if stats.record_steps:
                stats.steps[k].append(out.abs().flatten(2).sum(2).to(torch.float64).cpu())
            vals[k] = _Val(out)
        elif isinstance(n, SpikeMaxPool2d):
            x = ins[0].x
            c = torch.cumsum(x, 0)
            m = F.max_pool2d(c.flatten(0, 1), n.kernel_size, n.stride, n.padding).unflatten(0, (T, B))
            y = torch.diff(m, dim=0, prepend=torch.zeros_like(m[:1]))
            # events; an unsigned max only grows, by 0 or 1 a step, so its events are its final value
            counts[k] = (y != 0).sum(0) if k in low.signed_pools else m[-1]
            if stats.record_steps:
                stats.steps[k].append((y != 0).flatten(2).sum(2).to(torch.float64).cpu())
            vals[k] = _Val(y)
        elif isinstance(n, ACCUMULATED):
            vals[k] = _accumulated_layer(low, k, n, ins, T, B, stats)
        elif not n.inputs:  # Constant
            v = torch.as_tensor(n.value, dtype=low.dtype, device=e.device)
            vals[k] = _Val(v.expand(1, B, *v.shape), True)
        else:
            const = all(v.const for v in ins)
            xs = [v.x if const or not v.const else v.x.expand(T, *v.x.shape[1:]) for v in ins]
            y = low.apply(k, [x.flatten(0, 1) for x in xs])
            vals[k] = _Val(y.unflatten(0, (xs[0].shape[0], B)), const)
            if isinstance(n, Flatten) and n.inputs[0] in counts:
                counts[k] = counts[n.inputs[0]].flatten(1)
        for i in n.inputs:  # free what no later node reads
            remaining[i] -= 1
            if remaining[i] == 0 and i != net.readout.node:
                vals.pop(i, None)
                counts.pop(i, None)
    r = vals[net.readout.node]
    y = r.x.expand(T, *r.x.shape[1:]) if r.const else r.x
    if record:
        steps = torch.arange(1, T + 1, dtype=low.dtype, device=y.device).view(T, 1, 1)
        trace = torch.cumsum(y, 0) / steps
        return trace[-1], trace
    return y.sum(0) / T, None


def _accumulated_layer(low: Lowered, k: str, n, ins: list[_Val], T: int, B: int, stats: _Stats) -> _Val:
    """A node on accumulated input (:mod:`neurosim.ir.nodes`) for all T steps at once: running means by
    cumsum, ``g_t = t f(mean_t)`` in one batched call, ``y_t = g_t - g_{t-1}`` by a difference."""
    if isinstance(n, MatMul):
        a, b = ins
        m = a.x.shape[-2]
        nn_ = b.x.shape[-2] if n.transpose_b else b.x.shape[-1]
        stats.synops[k] += float(torch.count_nonzero(a.x)) * (T if a.const else 1) * nn_ \
            + float(torch.count_nonzero(b.x)) * (T if b.const else 1) * m
    if all(v.const for v in ins):  # a constant input's running mean is the input itself
        y = tf.fn(n, [v.x[0] for v in ins], low.tf_cache)
        return _Val(y.unsqueeze(0), True)
    steps = torch.arange(1, T + 1, dtype=low.dtype, device=ins[0].x.device)
    # every f acts on the last axes, so [T, B, ...] goes in as it is (a constant [1, B, ...] broadcasts)
    means = [v.x if v.const else torch.cumsum(v.x, 0).div_(steps.view(T, *([1] * (v.x.dim() - 1))))
             for v in ins]
    g = tf.fn(n, means, low.tf_cache) * steps.view(T, *([1] * (means[0].dim() - 1)))
    y = torch.empty_like(g)
    y[0] = g[0]
    torch.sub(g[1:], g[:-1], out=y[1:])
    return _Val(y)


def _run_step(low: Lowered, e: torch.Tensor, const_input: bool, T: int, stats: _Stats, record: bool):
    net = low.net
    B = e.shape[1]
    mem = {k: low.neurons[low.key[k]].init_state(B, e.device, low.dtype) for k in net.populations}
    counts = {k: torch.zeros(B, *net.shapes[n.inputs[0]], dtype=low.dtype, device=e.device)
              for k, n in net.nodes.items() if isinstance(n, SpikeMaxPool2d)}
    nonzero = {(k, j): 0 for k in stats.synops for j in stats.inputs.get(k, ())}
    pop_counts = {k: 0 for k in net.populations}
    steps: dict[str, list] = {k: [] for k in stats.steps if k != INPUT}
    sums = {k: [torch.zeros(B, *net.shapes[i], dtype=low.dtype, device=e.device) for i in n.inputs]
            for k, n in net.nodes.items() if isinstance(n, ACCUMULATED)}
    g_prev = {k: torch.zeros(B, *net.shapes[k], dtype=low.dtype, device=e.device) for k in sums}
    acc = torch.zeros(B, net.num_classes, dtype=low.dtype, device=e.device)
    trace = torch.empty(T, B, net.num_classes, dtype=low.dtype, device=e.device) if record else None
    for t in range(T):
        v = {INPUT: e[0] if const_input else e[t]}
        for k, n in net.nodes.items():
            xs = [v[i] for i in n.inputs]
            if k in stats.synops:
                for j in stats.inputs.get(k, ()):
                    nonzero[(k, j)] = nonzero[(k, j)] + (xs[j] != 0).to(torch.int64)
            if isinstance(n, Neurons):
                v[k], mem[k] = low.neurons[low.key[k]].step(xs[0], mem[k])
                stats.spikes[k] += float(v[k].abs().sum())
                if stats.record_steps:
                    steps[k].append(v[k].abs().flatten(1).sum(1).to(torch.float64).cpu())
                if stats.record_counts:
                    pop_counts[k] = pop_counts[k] + v[k].to(torch.int32)
            elif isinstance(n, SpikeMaxPool2d):
                before = F.max_pool2d(counts[k], n.kernel_size, n.stride, n.padding)
                counts[k] = counts[k] + xs[0]
                v[k] = F.max_pool2d(counts[k], n.kernel_size, n.stride, n.padding) - before
                if stats.record_steps:
                    steps[k].append((v[k] != 0).flatten(1).sum(1).to(torch.float64).cpu())
            elif isinstance(n, ACCUMULATED):
                if isinstance(n, MatMul):
                    stats.synops[k] += tf.matmul_synops(n, xs[0], xs[1])
                sums[k] = [s_ + x_ for s_, x_ in zip(sums[k], xs)]
                g = (t + 1) * tf.fn(n, [s_ / (t + 1) for s_ in sums[k]], low.tf_cache)
                v[k], g_prev[k] = g - g_prev[k], g
            elif not n.inputs:  # Constant
                c = torch.as_tensor(n.value, dtype=low.dtype, device=e.device)
                v[k] = c.expand(B, *c.shape)
            else:
                v[k] = low.apply(k, xs)
        acc = acc + v[net.readout.node]
        if record:
            trace[t] = acc / (t + 1)
    for (k, j), nz in nonzero.items():
        stats.events(k, j, nz if torch.is_tensor(nz) else torch.zeros(1))
    if stats.record_counts:
        for k, c in pop_counts.items():
            stats.counts[k].append(c.cpu())
    if stats.record_steps:
        for k, c in steps.items():
            stats.steps[k].append(torch.stack(c))
    return acc / T, trace


# ---- the seam: prepare and simulate -----------------------------------------------------------------

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class _Program:
    """The lowered network (:class:`Lowered`) with its execution mode, dtype, device and memory budget."""

    def __init__(self, low: Lowered, mode: str, device, memory_mib: float):
        self.low, self.mode, self.device, self.memory_mib = low, mode, device, memory_mib
        self.dtype = low.dtype

    def sample_elements(self, T: int) -> int:
        # the layer mode holds [T, B, ...] spikes of a few populations at once (3 x the largest sum)
        size = max(sum(p.size for p in self.low.net.populations.values()), 1)
        return 3 * size * (T if self.mode == "layer" else 1)


def prepare(net: SpikingNetwork, precision: str = "float", *, mode: str = "layer", neuron_impl: str = "auto",
            dtype: str = "float32", device: str = "cpu", max_memory_mib: float = 512.0) -> _Program:
    """snntorch Leaky neurons (beta=leak, subtractive reset), batched torch synapses.

    ``mode``: ``"layer"`` or ``"step"`` (module docstring). ``neuron_impl``: ``"snntorch"`` (Leaky, every
    step), ``"torch"`` (our in-place update), ``"numba"`` (the fused kernel; layer mode, CPU) or
    ``"auto"`` (numba in layer mode on the CPU, snntorch otherwise); all give the same spikes.
    ``dtype``: ``"float32"`` (the float precision) or ``"float64"`` (for exactness tests). ``device``:
    ``"cpu"`` or a torch device such as ``"cuda"``. ``max_memory_mib``: the chunk's memory budget when
    ``batch_size`` is not given (the driver's, per dtype)."""
    if mode not in MODES:
        raise NeurosimError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    if dtype not in _DTYPES:
        raise NeurosimError(f"unknown dtype {dtype!r}; valid: {', '.join(_DTYPES)}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise NeurosimError(f"unknown device {device!r} ({e}); valid: cpu, cuda, cuda:N, ...") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NeurosimError(f"device {device!r}: no CUDA device is available here; use device='cpu'")
    return _Program(Lowered(net, neuron_impl, _DTYPES[dtype]).to(dev), mode, dev, float(max_memory_mib))


def simulate(program: _Program, batch: Batch, *, record_trace: bool = False, record_counts: bool = False,
             record_step_counts: bool = False) -> Activity:
    """Run one chunk. ``record_trace``: the readout after every step (``SimResult.trace``);
    ``record_counts``: every neuron's net spike count (``SimResult.counts``); ``record_step_counts``: the
    spike events per step of every population, spiking max-pool and of the encoded input
    (``SimResult.step_counts``, [T, batch] each). SynOps are this backend's own count, step by step on
    analog maps too (:class:`_Stats`)."""
    low, T = program.low, batch.timesteps
    net = low.net
    stats = _Stats(net)
    stats.record_counts = record_counts
    stats.record_steps = record_step_counts
    with torch.no_grad():
        e = batch.encoded.to(device=program.device, dtype=low.dtype)
        if record_step_counts:
            nz = (e != 0).flatten(2).sum(2).to(torch.float64).cpu()
            stats.steps[INPUT].append(nz.expand(T, -1) if batch.const else nz)
        runner = _run_layer if program.mode == "layer" else _run_step
        out, tr = runner(low, e, batch.const, T, stats, record_trace)
    scale = net.readout.scale
    return Activity(output=(out * scale).cpu().numpy(), trace=(tr * scale).cpu().numpy() if record_trace else None,
                    spike_counts=dict(stats.spikes), synops=dict(stats.synops),
                    counts={k: torch.cat(v).numpy() for k, v in stats.counts.items()} if record_counts else None,
                    step_counts={k: torch.cat(v, 1).numpy() for k, v in stats.steps.items()}
                    if record_step_counts else None)


run = register_backend("snntorch", precisions=("float",),
                       description="snntorch Leaky neurons (beta=leak, subtractive reset), batched torch synapses",
                       prepare=prepare, simulate=simulate)
