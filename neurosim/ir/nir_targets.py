"""NIR for the libraries that import it: ``to_nir(net, target="snntorch" | "norse" | "sinabs" | "spikingjelly")``.

A library's NIR importer builds only part of NIR, with its own conventions (read from their importers:
snntorch 1.0.0's ``snntorch.import_nir.import_from_nir`` with nirtorch 2.6, norse 1.1.0's
``norse.torch.from_nir``, sinabs 3.1.3's ``sinabs.nir.from_nir``, SpikingJelly 2.0's
``spikingjelly.activation_based.nir_exchange.import_from_nir``):

* **snntorch** builds ``Affine``/``Linear``/``Conv2d``/``Flatten``/``AvgPool2d`` (a sum pool is written as
  an average pool with ``k^2`` folded into the weights it feeds) and ``LIF`` (as
  ``snn.Leaky(beta=1 - dt/tau, reset_mechanism="zero", reset_delay=False)``, one scalar threshold per
  layer, input gain ``r dt / tau`` = 1). Its ``IF`` branch builds a ``Leaky(beta=0.9)`` without hidden
  state and cannot run, so an IF population is written as a LIF whose ``tau = 2^31 dt`` (``beta`` rounds
  to exactly 1 in float32). It has no ``I`` node: the readout is the last layer's current, which the
  user sums over the steps.
* **norse** builds ``Affine``/``Linear``/``Conv2d``/``Flatten``/``SumPool2d`` (as a 1-norm pool) and
  ``IF`` (``v += input``, reset to ``v_reset``); it has no ``AvgPool2d``: an average pool is written as
  a sum pool with ``1/k^2`` folded into the weights it feeds.
* **sinabs** builds ``Affine``/``Conv2d``/``SumPool2d`` (no padding)/``Flatten`` (NIR's per-sample
  ``start_dim``) and ``IF`` as ``IAFSqueeze``: ``v += input`` (it ignores ``r``: the flavour is written at
  ``dt = 1`` like sinabs' own exporter, ``r = 1``), **reset by subtraction** (sinabs' native reset; a
  reset to a value is lost), ``MultiSpike`` (``floor(v / threshold)`` spikes in one step where
  ``v >= 2 threshold``) and ``min_v_mem = -threshold`` (the membrane is clamped there). Neither of the
  last two is in our IR, so :func:`library_equivalent` cannot model them: they are named in the warning
  and their cost is measured (``benchmarks/nir_interop.py``). ``LIF`` is ``LIFSqueeze`` with
  ``alpha = exp(-1/tau)``, ``tau`` read in steps. It has no ``Linear`` and no ``AvgPool2d``; its modules
  take ``(batch * T, ...)`` tensors (``from_nir(graph, batch_size=B)``). Like SpikingJelly it fires at
  ``v >= threshold``: the threshold is written as the next float32 above 1 (below), so a spike subtracts
  ``1 + 2^-23``, a drift of at most ``T * 1.2e-7`` per neuron.
* **spikingjelly** builds ``Affine``/``Linear``/``Conv2d`` (ungrouped)/``AvgPool2d``/``Flatten`` (NIR's
  per-sample ``start_dim``) and, through nirtorch's defaults, ``SumPool2d`` (a 1-norm pool, no padding);
  ``IF`` (demands ``r = 1/dt``) and ``LIF`` (``r = tau/dt`` is ``decay_input=False``, ``v_leak =
  v_reset``) with one scalar threshold and ``v_reset`` per layer and a **hard** reset; it fires at
  ``v >= threshold`` where we fire at ``v > threshold``, so the flavour writes the threshold as the next
  float32 above 1 (``v >= 1 + 2^-23`` is ``v > 1`` exactly). SpikingJelly declares Python >= 3.11 and is
  not in the lock; it runs in ``benchmarks/.venv-spikingjelly`` (``benchmarks/nir_interop.py``).
* snntorch and norse apply ``Flatten(start_dim)`` to batched tensors, so their flavours write
  ``start_dim=1``.

None of the libraries starts from a membrane other than 0; they know no neuron bias, signed spike or spiking
max-pool, and all but sinabs need one threshold per layer. A residual Add is written as edges into the
population it feeds (NIR sums the edges that enter a node), its input weights folded into the layers that
feed it and an identity shortcut of spikes written as a 1x1 convolution (``ADD_inJ``): snntorch and
SpikingJelly build with ``nirtorch.nir_to_torch`` (torch.fx, topological order) and run it exactly; norse
and sinabs build with ``nirtorch.load``, whose executor orders nodes depth-first, so a population after a
residual sum runs before its shorter branch: refused. What can be folded is,
exactly: a population's bias and per-neuron threshold move into the layer that feeds it (weights and bias
divided by the threshold, which leaves every spike unchanged), a readout scale into the last layer. What
cannot be expressed is listed in one warning (subtractive reset becomes reset to 0, or a reset to 0
becomes subtraction for sinabs; an initial membrane is dropped; sinabs' multi-spikes and clamp), and what
would change the network beyond that (signed neurons, spiking max-pool, a residual Add for norse and
sinabs, a population fed by anything but weight layers) is refused with the node named.
:func:`library_equivalent` is the network the library then runs, in our IR, so that its loss can
be measured on our backends before the export.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.ir.network import SpikingNetwork
from neurosim.ir.nodes import INPUT, Add, AvgPool2d, Conv2d, Flatten, Linear, Neurons, Readout, SpikeMaxPool2d, SumPool2d

TARGETS = ("nir", "snntorch", "norse", "sinabs", "spikingjelly")


@dataclasses.dataclass(frozen=True)
class _Profile:
    """What one library's importer builds (module docstring)."""

    pools: tuple[str, ...]          # the pool kinds it builds: "avg", "sum"
    reset: str                      # the only reset it has: "zero" (to a value) or "subtract"
    leaky: bool                     # it builds LIF populations we can write exactly
    unpadded_sum_pool: bool = True  # its sum pool takes no padding
    grouped_conv: bool = True
    residual: bool = True           # its executor runs a DAG in topological order (nirtorch.nir_to_torch)


PROFILES = {
    "snntorch": _Profile(pools=("avg",), reset="zero", leaky=True),
    # norse and sinabs build with nirtorch.load, whose GraphExecutor orders nodes depth-first: the population
    # after a residual sum runs before the shorter branch and reads its previous step (a recurrence)
    "norse": _Profile(pools=("sum",), reset="zero", leaky=False, residual=False),
    "sinabs": _Profile(pools=("sum",), reset="subtract", leaky=True, residual=False),
    "spikingjelly": _Profile(pools=("avg", "sum"), reset="zero", leaky=True, grouped_conv=False),
}
# sinabs' IAF differs from ours in two ways our IR cannot express; every export names them
SINABS_LOSS = ("sinabs: MultiSpike emits floor(v/threshold) spikes in a step where v >= 2 thresholds (ours: one, "
               "the rest later) and min_v_mem clamps v at -threshold (not in the equivalent network, measured)")
_F32_ABOVE_1 = float(np.nextafter(np.float32(1.0), np.float32(2.0)))  # sinabs, SpikingJelly fire at v >= threshold
_IF_TAU_STEPS = 2.0 ** 31  # snntorch: beta = 1 - 2^-31 is 1.0 in float32


class NIRExportWarning(UserWarning):
    """What a library's NIR importer cannot express and the export dropped."""


def _consumers(net, name: str) -> list[str]:
    nodes = net.nodes if isinstance(net, SpikingNetwork) else net
    return [k for k, n in nodes.items() if name in n.inputs]


def _identity(src: str, shape: tuple[int, ...], w: np.ndarray, name: str):
    """A weight layer that passes ``src`` through scaled by ``w`` per unit (per channel for a (C, H, W)
    map): a residual shortcut written as the synapses every library has."""
    if len(shape) == 3:
        c = shape[0]
        return Conv2d((src,), weight=(np.eye(c, dtype=np.float32) * w.reshape(1, c)).reshape(c, c, 1, 1))
    if len(shape) == 1:
        return Linear((src,), weight=np.diag(w).astype(np.float32))
    raise NeurosimError(f"residual Add {name!r} of shape {shape}: an identity shortcut is written for (C, H, W) "
                        "maps and vectors only")


def _residuals(net: SpikingNetwork, target: str) -> dict:
    """The nodes with every residual Add's input weights folded into the weight layers that feed it alone;
    an input that is not such a layer (an identity shortcut of spikes) goes through an identity weight layer
    of its own (``ADD_inJ``, inserted before the Add). Every library sums the edges that enter a node, so the
    Add is then written as edges into the population it feeds, which must be its only consumer."""
    nodes: dict = {}
    for k, n in net.nodes.items():
        if not (isinstance(n, Add) and len(n.inputs) > 1):
            nodes[k] = n
            continue
        if not PROFILES[target].residual:
            raise NeurosimError(f"node {k!r} (Add of {len(n.inputs)} inputs): {target} imports NIR with nirtorch.load, "
                                "whose executor runs a residual sum out of order (depth-first): no residual sums")
        users = _consumers(net, k)
        if len(users) != 1 or not isinstance(net.nodes[users[0]], Neurons):
            raise NeurosimError(f"node {k!r} (Add of {len(n.inputs)} inputs) feeds {users}: the {target} flavour "
                                "writes a residual sum only into one population of neurons")
        shape, ins = net.shapes[k], []
        for j, (i, w) in enumerate(zip(n.inputs, n.weights)):
            wu = _per_unit(w, shape, k, f"input {j} weight")
            src = nodes.get(i)
            if isinstance(src, (Linear, Conv2d)) and _consumers(net, i) == [k]:
                nodes[i] = _scale_rows(src, wu)
                ins.append(i)
            else:
                nodes[f"{k}_in{j}"] = _identity(i, shape, wu, k)
                ins.append(f"{k}_in{j}")
        nodes[k] = Add(tuple(ins))
    return nodes


def _scale_rows(node, s: np.ndarray):
    """``node`` (Linear or Conv2d) with each output unit's weights and bias multiplied by ``s`` [out]."""
    s = np.asarray(s, np.float64).reshape(-1)
    w = node.weight.astype(np.float64) * s.reshape((-1,) + (1,) * (node.weight.ndim - 1))
    b = None if node.bias is None else node.bias.astype(np.float64) * s
    return dataclasses.replace(node, weight=w.astype(np.float32), bias=None if b is None else b.astype(np.float32))


def _add_bias(node, extra: np.ndarray):
    out = node.weight.shape[0]
    b = np.zeros(out, np.float64) if node.bias is None else node.bias.astype(np.float64)
    return dataclasses.replace(node, bias=(b + np.asarray(extra, np.float64).reshape(-1)).astype(np.float32))


def _per_unit(a: np.ndarray, shape: tuple[int, ...], name: str, what: str) -> np.ndarray:
    """``a`` (broadcastable to the population ``shape``) as one value per output unit of the feeding layer
    (per channel for a (C, H, W) population); refused when it varies inside a channel."""
    full = np.broadcast_to(np.asarray(a, np.float64), shape)
    if len(shape) == 3:
        per = full.reshape(shape[0], -1)
        if np.ptp(per, axis=1).max(initial=0.0) > 0:
            raise NeurosimError(f"population {name!r}: its {what} varies inside a channel, which the library "
                                "flavour cannot fold into the convolution that feeds it")
        return per[:, 0]
    return full.reshape(-1)


def library_equivalent(net: SpikingNetwork, target: str) -> tuple[SpikingNetwork, list[str]]:
    """The network ``target``'s importer will run, in our IR, and the list of what was lost on the way.

    Exact folds (bias and threshold into the feeding layer, the readout scale into the last layer, a
    pool the library lacks written as the one it has with the area factor in the next weights) keep every
    spike; the losses (the reset the library lacks, the initial membrane) are applied here too, so running
    this network on any backend gives what the library will compute. For sinabs, its multi-spikes and
    membrane clamp are named in the list but not applied (our IR has neither).
    """
    if target not in PROFILES:
        raise NeurosimError(f"unknown NIR target {target!r}; valid: {', '.join(TARGETS)}")
    prof = PROFILES[target]
    nodes = dict(net.nodes)
    lost: list[str] = []
    for k, n in net.nodes.items():
        if isinstance(n, SpikeMaxPool2d):
            raise NeurosimError(f"node {k!r} (SpikeMaxPool2d): {target} has no spiking max-pool; convert with "
                                "average pooling for this target")
        if isinstance(n, Neurons) and n.signed:
            raise NeurosimError(f"population {k!r} is signed: {target} has no negative spikes")
        if isinstance(n, Conv2d) and n.groups != 1 and not prof.grouped_conv:
            raise NeurosimError(f"node {k!r} (Conv2d with groups={n.groups}): {target} builds ungrouped "
                                "convolutions only")
    nodes = _residuals(net, target)
    for k, n in list(nodes.items()):
        if not isinstance(n, Neurons):
            continue
        (src,) = n.inputs
        feed = nodes.get(src)
        # the weight layers whose rows carry this population's threshold and bias: its own feeding layer,
        # or every layer summed by the residual Add that feeds it
        feeders = list(feed.inputs) if isinstance(feed, Add) and len(feed.inputs) > 1 else [src]
        if _consumers(nodes, src) != [k] or not all(
                isinstance(nodes.get(f), (Linear, Conv2d)) and _consumers(nodes, f) == [src if f != src else k]
                for f in feeders):
            if np.any(n.bias != 0) or np.any(n.threshold != 1):
                raise NeurosimError(f"population {k!r} is fed by {src!r} ({type(feed).__name__ if feed else 'input'}), "
                                    "not by a weight layer of its own, so its bias and threshold cannot be folded")
        else:
            thr = _per_unit(n.threshold, n.shape, k, "threshold")
            bias = _per_unit(n.bias, n.shape, k, "bias")
            for j, f in enumerate(feeders):
                nodes[f] = _scale_rows(_add_bias(nodes[f], bias) if j == 0 else nodes[f], 1.0 / thr)
            if n.reset == "zero" and n.v_reset != 0 and np.ptp(thr) > 0:
                raise NeurosimError(f"population {k!r}: reset to v_reset={n.v_reset:g} with per-neuron thresholds")
            v_init = _per_unit(n.v_init, n.shape, k, "initial membrane") / thr
            n = dataclasses.replace(n, threshold=np.ones(1, np.float32), bias=np.zeros(1, np.float32),
                                    v_init=np.full(1, float(np.mean(v_init)), np.float32) if np.any(v_init) else
                                    np.zeros(1, np.float32), v_reset=float(n.v_reset / thr[0]))
        if n.leak != 1.0 and not prof.leaky:
            raise NeurosimError(f"population {k!r} is leaky (leak={n.leak:g}): the {target} flavour writes IF neurons "
                                "only (norse's LIF importer scales the input by dt/tau)")
        if n.leak != 1.0 and target == "sinabs" and n.leak == 0.0:
            raise NeurosimError(f"population {k!r} has leak 0, which sinabs' exp(-1/tau) decay cannot write")
        if n.leak != 1.0 and target == "spikingjelly" and n.reset == "zero" and n.v_reset != 0:
            raise NeurosimError(f"population {k!r}: a LIF with v_reset={n.v_reset:g}; SpikingJelly's LIF leaks "
                                "towards v_reset, ours towards 0")
        if n.reset == "subtract" and prof.reset == "zero":
            lost.append(f"{k}: reset by subtraction becomes reset to {n.v_reset:g}")
            n = dataclasses.replace(n, reset="zero")
        elif n.reset == "zero" and prof.reset == "subtract":
            lost.append(f"{k}: reset to {n.v_reset:g} becomes reset by subtraction")
            n = dataclasses.replace(n, reset="subtract", v_reset=0.0)
        if np.any(n.v_init != 0):
            lost.append(f"{k}: initial membrane {float(np.mean(n.v_init)):.3g} (mean, in threshold units) dropped")
            n = dataclasses.replace(n, v_init=np.zeros(1, np.float32))
        nodes[k] = n
    # write a pool the library lacks as the one it has, the area factor folded into the weight layers the
    # pool feeds (through Flatten)
    for k, n in list(nodes.items()):
        if not isinstance(n, (AvgPool2d, SumPool2d)):
            continue
        kind = "avg" if isinstance(n, AvgPool2d) else "sum"
        if kind not in prof.pools:
            area = float(n.kernel_size[0] * n.kernel_size[1])
            factor = 1.0 / area if kind == "avg" else area
            new = (SumPool2d if kind == "avg" else AvgPool2d)(n.inputs, kernel_size=n.kernel_size, stride=n.stride,
                                                              padding=n.padding)
            todo = list(_consumers(nodes, k))
            while todo:
                c = todo.pop()
                if isinstance(nodes[c], Flatten):
                    todo += _consumers(nodes, c)
                elif isinstance(nodes[c], (Linear, Conv2d)):
                    m = nodes[c]
                    nodes[c] = dataclasses.replace(m, weight=(m.weight * factor).astype(np.float32))
                else:
                    raise NeurosimError(f"node {k!r} ({n.kind}) feeds {c!r} ({type(nodes[c]).__name__}), not a weight "
                                        f"layer: {target} has no {n.kind} to write it as")
            nodes[k] = n = new
        if isinstance(n, SumPool2d) and prof.unpadded_sum_pool and any(p != 0 for p in n.padding):
            raise NeurosimError(f"node {k!r} (SumPool2d with padding, as written for {target}): {target}'s sum pool "
                                "takes no padding")
    ro = net.readout
    if ro.kind == "membrane":
        node = nodes[ro.node]
        if isinstance(node, Add):  # a readout scale: fold it into the layer it scales
            (src,) = node.inputs
            feed = nodes.get(src)
            if not isinstance(feed, (Linear, Conv2d)) or _consumers(nodes, src) != [ro.node]:
                raise NeurosimError(f"readout {ro.node!r} scales {src!r}, which is not a weight layer of its own")
            nodes[src] = _scale_rows(feed, np.broadcast_to(node.weights[0], (feed.weight.shape[0],)))
            del nodes[ro.node]
            ro = Readout(src, "membrane", ro.scale)
    if target == "sinabs" and any(isinstance(n, Neurons) for n in nodes.values()):
        lost.append(SINABS_LOSS)
    if net.encoding.kind == "poisson":
        lost.append("input: Poisson encoding is not part of the graph; feed the library +-1 spike trains "
                    "(neurosim.encoding.encode) instead of images")
    return SpikingNetwork(net.input_shape, nodes, ro, net.encoding, dict(net.metadata)), lost


def to_library_nir(net: SpikingNetwork, target: str, dt: float = 1e-4):
    """A ``nir.NIRGraph`` that ``target``'s importer builds and runs (module docstring); warns once
    (:class:`NIRExportWarning`) with everything it had to drop."""
    import nir

    eq, lost = library_equivalent(net, target)
    if lost:
        warnings.warn(f"NIR for {target}: {'; '.join(lost)}", NIRExportWarning, stacklevel=3)
    if target == "sinabs":
        dt = 1.0  # sinabs ignores r and reads tau in steps; its own exporter writes r = 1
    per_sample_flatten = target in ("sinabs", "spikingjelly")  # they add the batch dim to NIR's start_dim
    nodes = {INPUT: nir.Input(input_type={"input": np.array(eq.input_shape)})}
    edges: list[tuple[str, str]] = []
    junction = {k: n.inputs for k, n in eq.nodes.items() if isinstance(n, Add)}  # residual sums: edges only
    for k, n in eq.nodes.items():
        shp = eq.shapes[k]
        if isinstance(n, Add):
            continue
        if isinstance(n, Linear):
            nodes[k] = nir.Affine(weight=n.weight, bias=n.bias if n.bias is not None
                                  else np.zeros(n.weight.shape[0], np.float32))
        elif isinstance(n, Conv2d):
            nodes[k] = nir.Conv2d(input_shape=tuple(eq.shapes[n.inputs[0]][1:]), weight=n.weight, stride=n.stride,
                                  padding=n.padding, dilation=n.dilation, groups=n.groups,
                                  bias=n.bias if n.bias is not None else np.zeros(n.weight.shape[0], np.float32))
        elif isinstance(n, (AvgPool2d, SumPool2d)):
            cls = nir.AvgPool2d if isinstance(n, AvgPool2d) else nir.SumPool2d
            nodes[k] = cls(kernel_size=np.array(n.kernel_size), stride=np.array(n.stride), padding=np.array(n.padding))
        elif isinstance(n, Flatten):
            nodes[k] = nir.Flatten(input_type={"input": np.array(eq.shapes[n.inputs[0]])},
                                   start_dim=0 if per_sample_flatten else 1, end_dim=-1)
        elif isinstance(n, Neurons):
            ones, vr = np.ones(shp, np.float32), np.full(shp, n.v_reset, np.float32)
            if target == "norse" or (n.leak == 1.0 and target in ("sinabs", "spikingjelly")):
                thr = ones if target == "norse" else np.full(shp, _F32_ABOVE_1, np.float32)
                nodes[k] = nir.IF(r=ones if target == "norse" else np.full(shp, 1.0 / dt, np.float32),
                                  v_threshold=thr, v_reset=vr)
            elif target == "sinabs":  # alpha = exp(-1/tau), tau in steps
                tau = -1.0 / np.log(n.leak)
                nodes[k] = nir.LIF(tau=np.full(shp, tau, np.float32), r=np.full(shp, tau, np.float32),
                                   v_leak=np.zeros(shp, np.float32), v_threshold=np.full(shp, _F32_ABOVE_1, np.float32),
                                   v_reset=vr)
            else:
                tau = dt * _IF_TAU_STEPS if n.leak == 1.0 else dt / (1.0 - n.leak)
                thr = np.full(shp, _F32_ABOVE_1, np.float32) if target == "spikingjelly" else ones
                nodes[k] = nir.LIF(tau=np.full(shp, tau, np.float32), r=np.full(shp, tau / dt, np.float32),
                                   v_leak=np.zeros(shp, np.float32), v_threshold=thr, v_reset=vr)
        else:  # pragma: no cover - library_equivalent leaves only the kinds above
            raise NeurosimError(f"no {target} NIR mapping for {n.kind} {k!r}")
        edges += [(j, k) for i in n.inputs for j in junction.get(i, (i,))]
    nodes["output"] = nir.Output(output_type={"output": np.array(eq.shapes[eq.readout.node])})
    edges.append((eq.readout.node, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
