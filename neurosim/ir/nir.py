"""NIR export and import (``SpikingNetwork.to_nir`` / ``from_nir``)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.ir.network import FORMAT_VERSION, SpikingNetwork
from neurosim.ir.nodes import (INPUT, NODE_TYPES, Add, AvgPool2d, Conv2d, Encoding, Flatten, Linear, Neurons, Node,
                               Readout, SpikeMaxPool2d, SumPool2d, _Pool2d)


# ---- NIR export / import ------------------------------------------------------------------------------
#
# NIR (Pedersen et al., Nat. Commun. 2024) describes continuous-time nodes; a simulator discretises
# them with its own dt. We map our unit steps to dt as snntorch does: IF  v' = R I  with R = 1/dt
# (so Euler gives v += I); LIF  tau v' = (v_leak - v) + R I  with tau = dt / (1 - leak), R = tau / dt,
# v_leak = 0 (Euler gives v = leak v + I). NIR neurons reset to v_reset and cannot express: reset by
# subtraction, negative (signed) spikes, the initial membrane, a neuron bias, a max-pool, per-input Add weights, the input
# encoding and the readout. All of these are carried in the graph's metadata under "neurosim" (one
# JSON string) and restored exactly by from_nir; a NIR tool that ignores the metadata sees hard-reset
# neurons, a SumPool2d where we max-pool, and Scale nodes for the Add weights.

_NIR_OUTPUT = "output"


def _full(a, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, np.float32), shape).copy()


def to_nir(net: SpikingNetwork, dt: float = 1e-4, target: str = "nir"):
    """Export ``net`` to a ``nir.NIRGraph``.

    ``target="nir"`` (default): the faithful graph, everything NIR cannot hold in its metadata (see the
    comment above), restored exactly by :func:`from_nir`. ``target="snntorch"`` / ``"norse"`` / ``"sinabs"`` /
    ``"spikingjelly"``: a graph that library's importer builds and runs, exact folds applied and every loss named in one warning
    (:mod:`neurosim.ir.nir_targets`).
    """
    import nir

    if not dt > 0:
        raise NeurosimError(f"dt must be positive, got {dt}")
    if target != "nir":
        from neurosim.ir.nir_targets import to_library_nir

        return to_library_nir(net, target, dt)
    for reserved in (_NIR_OUTPUT, "readout"):
        if reserved in net.nodes:
            raise NeurosimError(f"node name {reserved!r} is reserved in NIR export; rename the node")
    nodes = {INPUT: nir.Input(input_type={"input": np.array(net.input_shape)})}
    edges: list[tuple[str, str]] = []
    extra: dict[str, dict] = {}
    for k, n in net.nodes.items():
        shp = net.shapes[k]
        ins = [net.shapes[i] for i in n.inputs]
        if isinstance(n, Linear):
            nodes[k] = nir.Affine(weight=n.weight, bias=n.bias) if n.bias is not None else nir.Linear(weight=n.weight)
        elif isinstance(n, Conv2d):
            bias = n.bias if n.bias is not None else np.zeros(n.weight.shape[0], np.float32)
            nodes[k] = nir.Conv2d(input_shape=tuple(ins[0][1:]), weight=n.weight, stride=n.stride,
                                  padding=n.padding, dilation=n.dilation, groups=n.groups, bias=bias)
            if n.bias is None:
                extra[k] = {"no_bias": True}
        elif isinstance(n, _Pool2d):
            cls = nir.AvgPool2d if isinstance(n, AvgPool2d) else nir.SumPool2d
            nodes[k] = cls(kernel_size=np.array(n.kernel_size), stride=np.array(n.stride),
                           padding=np.array(n.padding))
            if isinstance(n, SpikeMaxPool2d):
                extra[k] = {"type": "SpikeMaxPool2d"}
                nodes[k].metadata = {"neurosim_type": "SpikeMaxPool2d"}
        elif isinstance(n, Flatten):
            nodes[k] = nir.Flatten(input_type={"input": np.array(ins[0])}, start_dim=0, end_dim=-1)
        elif isinstance(n, Add):
            # NIR sums all edges that enter a node: an identity Scale is the junction, and inputs with
            # a weight other than 1 go through a Scale node of their own.
            nodes[k] = nir.Scale(scale=np.ones(shp, np.float32))
            extra[k] = {"type": "Add"}
            for j, (i, w) in enumerate(zip(n.inputs, n.weights)):
                if np.all(w == 1.0):
                    edges.append((i, k))
                else:
                    sk = f"{k}.in{j}"
                    nodes[sk] = nir.Scale(scale=_full(w, shp))
                    edges += [(i, sk), (sk, k)]
                    extra[k].setdefault("scaled", []).append([j, list(w.shape)])
            continue
        elif isinstance(n, Neurons):
            thr, vr = _full(n.threshold, shp), np.full(shp, n.v_reset, np.float32)
            if n.leak == 1.0:
                nodes[k] = nir.IF(r=np.full(shp, 1.0 / dt, np.float32), v_threshold=thr, v_reset=vr)
            else:
                tau = dt / (1.0 - n.leak) if n.leak < 1.0 else dt
                nodes[k] = nir.LIF(tau=np.full(shp, tau, np.float32), r=np.full(shp, tau / dt, np.float32),
                                   v_leak=np.zeros(shp, np.float32), v_threshold=thr, v_reset=vr)
            extra[k] = {"type": "Neurons", "leak": n.leak, "reset": n.reset, "signed": n.signed,
                        "threshold_shape": list(n.threshold.shape),
                        "bias": {"shape": list(n.bias.shape), "values": n.bias.reshape(-1).tolist()},
                        "v_init": {"shape": list(n.v_init.shape), "values": n.v_init.reshape(-1).tolist()}}
            nodes[k].metadata = {"neurosim_reset": n.reset}
        else:  # pragma: no cover - every IR node type is handled above
            raise NeurosimError(f"no NIR mapping for {n.kind}")
        edges += [(i, k) for i in n.inputs]
    r = net.readout
    out_shape = np.array(net.shapes[r.node])
    if r.kind == "membrane":
        nodes["readout"] = nir.I(r=np.full(net.shapes[r.node], 1.0 / dt, np.float32))
        edges += [(r.node, "readout"), ("readout", _NIR_OUTPUT)]
    else:
        edges.append((r.node, _NIR_OUTPUT))
    nodes[_NIR_OUTPUT] = nir.Output(output_type={"output": out_shape})
    meta = {"format": "neurosim.ir", "version": FORMAT_VERSION, "dt": dt, "order": list(net.nodes),
            "input_shape": list(net.input_shape), "nodes": extra,
            "encoding": {"kind": net.encoding.kind, "max_value": net.encoding.max_value},
            "readout": {"node": r.node, "kind": r.kind, "scale": r.scale}, "metadata": net.metadata}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neurosim": json.dumps(meta)}, type_check=False)


def _topo(nodes: dict, edges: list[tuple[str, str]]) -> list[str]:
    preds = {k: [a for a, b in edges if b == k] for k in nodes}
    order, done = [], set()
    pending = list(nodes)
    while pending:
        progressed = False
        for k in list(pending):
            if all(p in done for p in preds[k]):
                order.append(k)
                done.add(k)
                pending.remove(k)
                progressed = True
        if not progressed:
            raise NeurosimError(f"NIR graph has a cycle through {pending}; only feed-forward graphs import")
    return order


def from_nir(graph, dt: float | None = None, reset: str | None = None) -> SpikingNetwork:
    """Import a ``nir.NIRGraph`` (or the path of a NIR HDF5 file) as a :class:`SpikingNetwork`.

    A graph written by :func:`to_nir` is restored exactly from its metadata. A foreign graph maps
    Affine/Linear -> Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, IF/LIF -> Neurons (reset to
    ``v_reset``, discretised with ``dt``, default 1e-4 like snntorch and SpikingJelly), several edges into
    one node -> an Add, I before Output -> membrane readout; anything else raises an error naming the node.
    One scalar parameter per layer (snntorch) is broadcast to the layer; a LIF whose input gain
    ``r dt / tau`` is not 1 (SpikingJelly's ``decay_input=True`` writes ``r = 1``) has the gain folded into
    the weight layer that feeds it. ``reset``: override the reset of every foreign population
    (``"subtract"`` for graphs from sinabs, whose exporter writes NIR's reset to a value for its IAF that
    subtracts; sinabs also writes ``r = 1`` for ``v += input``: pass ``dt=1``).
    """
    import nir

    if reset is not None and reset not in ("subtract", "zero"):
        raise NeurosimError(f"reset must be 'subtract' or 'zero' (or None: what the graph says), got {reset!r}")

    if isinstance(graph, (str, Path)):
        if not Path(graph).is_file():
            raise NeurosimError(f"no NIR file at {graph}")
        path = graph
        try:
            graph = nir.read(str(path))
        except Exception as e:  # noqa: BLE001 - h5py/nir raise many types on a file that is not NIR
            raise NeurosimError(f"{path} is not a readable NIR file ({type(e).__name__}: "
                                f"{(str(e).strip().splitlines() or [''])[0][:200]})") from None
    md = graph.metadata if isinstance(getattr(graph, "metadata", None), dict) else {}
    raw = md.get("neurosim")
    if raw is not None:
        try:
            raw = raw.decode() if isinstance(raw, bytes) else str(raw)
            return _from_own_nir(graph, json.loads(raw))
        except NeurosimError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, StopIteration) as e:
            raise NeurosimError(f"the NIR graph's 'neurosim' metadata does not describe its nodes "
                                f"({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}); drop it "
                                "to import the graph as a foreign one") from None
    if dt is not None and not (isinstance(dt, (int, float)) and np.isfinite(dt) and dt > 0):
        raise NeurosimError(f"dt must be a positive number of seconds, got {dt!r}")
    return _from_foreign_nir(graph, 1e-4 if dt is None else float(dt), reset)


def _arr(x) -> np.ndarray:
    return np.asarray(x, np.float32)


def _from_own_nir(graph, meta: dict) -> SpikingNetwork:
    nodes_in, extra = graph.nodes, meta["nodes"]
    preds = {}
    for a, b in graph.edges:
        preds.setdefault(b, []).append(a)
    out = {}
    for k in meta["order"]:
        g, x = nodes_in[k], extra.get(k, {})
        typ = x.get("type", type(g).__name__)
        ins = tuple(preds.get(k, []))
        if typ in ("Affine", "Linear"):
            out[k] = Linear(ins, weight=_arr(g.weight), bias=_arr(g.bias) if typ == "Affine" else None)
        elif typ == "Conv2d":
            out[k] = Conv2d(ins, weight=_arr(g.weight), bias=None if x.get("no_bias") else _arr(g.bias),
                            stride=tuple(g.stride), padding=tuple(g.padding), dilation=tuple(g.dilation),
                            groups=int(g.groups))
        elif typ in ("AvgPool2d", "SumPool2d", "SpikeMaxPool2d"):
            out[k] = NODE_TYPES[typ](ins, kernel_size=tuple(np.ravel(g.kernel_size)), stride=tuple(np.ravel(g.stride)),
                                     padding=tuple(np.ravel(g.padding)))
        elif typ == "Flatten":
            out[k] = Flatten(ins)
        elif typ == "Add":
            scaled = {j: shp for j, shp in x.get("scaled", [])}
            n_in = len(ins)
            srcs = []
            for p in ins:
                if p.startswith(f"{k}.in") and p[len(k) + 3:].isdigit():
                    j = int(p[len(k) + 3:])
                    (src,) = preds[p]
                    full = _arr(nodes_in[p].scale)
                    shp = tuple(scaled[j])
                    idx = tuple(slice(0, 1) if s == 1 else slice(None) for s in (1,) * (full.ndim - len(shp)) + shp)
                    w = full[idx].reshape(shp) if shp else full.reshape(-1)[0]
                    srcs.append((j, src, np.asarray(w, np.float32)))
                else:
                    srcs.append((None, p, np.float32(1.0)))
            # restore the original input order: scaled inputs carry their index, the rest fill the gaps
            order = [None] * n_in
            for j, src, w in srcs:
                if j is not None:
                    order[j] = (src, w)
            rest = iter([(s, w) for j, s, w in srcs if j is None])
            order = [o if o is not None else next(rest) for o in order]
            out[k] = Add(tuple(s for s, _ in order), weights=[w for _, w in order])
        elif typ == "Neurons":
            thr = _arr(g.v_threshold)
            tshape = tuple(x["threshold_shape"])
            idx = tuple(slice(0, 1) if s == 1 else slice(None) for s in (1,) * (thr.ndim - len(tshape)) + tshape)
            thr = thr[idx].reshape(tshape)
            vr = float(np.ravel(g.v_reset)[0])
            out[k] = Neurons(ins, shape=tuple(np.shape(g.v_threshold)), threshold=thr, leak=x["leak"],
                             reset=x["reset"], v_reset=vr, signed=x.get("signed", False),
                             bias=np.array(x["bias"]["values"], np.float32).reshape(x["bias"]["shape"]),
                             v_init=np.array(x["v_init"]["values"], np.float32).reshape(x["v_init"]["shape"]))
        else:
            raise NeurosimError(f"NIR node {k!r} has type {typ}, which neurosim's IR cannot hold")
    return SpikingNetwork(input_shape=tuple(meta["input_shape"]), nodes=out, readout=Readout(**meta["readout"]),
                          encoding=Encoding(**meta["encoding"]), metadata=meta.get("metadata", {}))


def _per_sample(shape: tuple[int, ...], consumers) -> tuple[int, ...]:
    """The Input's shape without a batch dimension: snntorch's exporter writes the example's batch of 1
    (``[1, 16]`` before an ``Affine`` of 16 inputs, ``[1, C, H, W]`` before a ``Conv2d``); a leading 1 is
    dropped only when the first layer says the rest is one sample."""
    import nir

    if len(shape) < 2 or shape[0] != 1:
        return shape
    for c in consumers:
        if isinstance(c, (nir.Affine, nir.Linear)) and np.shape(c.weight)[-1] == int(np.prod(shape[1:])):
            return shape[1:]
        if isinstance(c, nir.Conv2d) and len(shape) == 4:
            return shape[1:]
    return shape


def _from_foreign_nir(graph, dt: float, reset: str | None = None) -> SpikingNetwork:
    import nir

    nodes, edges = graph.nodes, list(graph.edges)
    order = _topo(nodes, edges)
    preds = {k: [a for a, b in edges if b == k] for k in nodes}
    inputs = [k for k in order if isinstance(nodes[k], nir.Input)]
    if len(inputs) != 1:
        raise NeurosimError(f"NIR graph must have exactly one Input node, has {inputs}")
    input_shape = _per_sample(tuple(int(s) for s in np.ravel(nodes[inputs[0]].input_type["input"])),
                              [nodes[b] for a, b in edges if a == inputs[0]])
    rename = {inputs[0]: INPUT}
    out: dict[str, Node] = {}
    shapes: dict[str, tuple[int, ...]] = {INPUT: input_shape}  # per-sample shapes, to size scalar parameters
    readout = None

    def src(k):
        ps = [rename[p] for p in preds[k]]
        if len(ps) > 1:
            out[f"{k}.sum"] = Add(tuple(ps))
            shapes[f"{k}.sum"] = out[f"{k}.sum"].out_shape([shapes[p] for p in ps])
            return (f"{k}.sum",)
        return tuple(ps)

    supported = "Input, Output, Affine, Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, IF, LIF, I, Scale"
    for k in order:
        g = nodes[k]
        name = k if k != INPUT else "input_node"
        if isinstance(g, nir.Input):
            continue
        if isinstance(g, nir.Output):
            (p,) = preds[k]
            pnode = out.get(rename[p])
            if isinstance(nodes[p], nir.I):
                readout = Readout(rename[p], "membrane")
            elif isinstance(pnode, Neurons):
                readout = Readout(rename[p], "spike_count")
            else:
                readout = Readout(rename[p], "membrane")
            continue
        ins = src(k)
        if isinstance(g, nir.I):  # the integrating readout: transparent, the readout reads its input
            rename[k] = ins[0]
            continue
        if isinstance(g, nir.Affine):
            out[name] = Linear(ins, weight=_arr(g.weight), bias=_arr(g.bias))
        elif isinstance(g, nir.Linear):
            out[name] = Linear(ins, weight=_arr(g.weight))
        elif isinstance(g, nir.Conv2d):
            out[name] = Conv2d(ins, weight=_arr(g.weight), bias=_arr(g.bias), stride=tuple(np.ravel(g.stride)),
                               padding=tuple(np.ravel(g.padding)), dilation=tuple(np.ravel(g.dilation)),
                               groups=int(g.groups))
        elif isinstance(g, (nir.AvgPool2d, nir.SumPool2d)):
            cls = AvgPool2d if isinstance(g, nir.AvgPool2d) else SumPool2d
            out[name] = cls(ins, kernel_size=tuple(np.ravel(g.kernel_size)), stride=tuple(np.ravel(g.stride)),
                            padding=tuple(np.ravel(g.padding)))
        elif isinstance(g, nir.Flatten):
            out[name] = Flatten(ins)
        elif isinstance(g, nir.Scale):
            # one input (several edges into the Scale were summed by src() first): y = scale * x, one
            # Add input, so each arriving spike is one synaptic event
            out[name] = Add(ins, weights=[_arr(g.scale)])
        elif isinstance(g, (nir.IF, nir.LIF)):
            r = _arr(g.r)
            if isinstance(g, nir.IF):
                leak, gain = 1.0, r * dt
            else:
                tau = _arr(g.tau)
                if np.any(_arr(g.v_leak) != 0):
                    raise NeurosimError(f"NIR LIF {k!r} has v_leak != 0, which neurosim's Neurons cannot hold")
                leaks = 1.0 - dt / tau
                if np.ptp(leaks) > 1e-6:
                    raise NeurosimError(f"NIR LIF {k!r} has per-neuron time constants; neurosim needs one leak")
                leak, gain = float(leaks.reshape(-1)[0]), r * dt / tau
            if not np.allclose(gain, 1.0, rtol=1e-4):
                feed = out.get(ins[0])
                foldable = (leak != 1.0 and isinstance(feed, (Linear, Conv2d)) and len(preds[k]) == 1
                            and [b for a, b in edges if a == preds[k][0]] == [k] and np.ptp(gain) <= 1e-6 * np.max(gain))
                if not foldable:
                    raise NeurosimError(f"NIR {type(g).__name__} {k!r}: input gain R*dt{'/tau' if leak != 1 else ''} = "
                                        f"{float(np.mean(gain)):.4g} != 1 at dt={dt}; pass the dt it was exported with"
                                        + ("" if leak == 1.0 else " (a LIF gain is folded only into a weight layer "
                                           "that feeds this population alone)"))
                # a LIF that scales its input (SpikingJelly's decay_input=True: r = 1): the gain moves into
                # the weights and bias that feed it, which leaves every spike unchanged
                gscale = np.float32(np.ravel(gain)[0])
                out[ins[0]] = dataclasses.replace(feed, weight=(feed.weight * gscale).astype(np.float32),
                                                  bias=None if feed.bias is None else
                                                  (feed.bias * gscale).astype(np.float32))
            thr = _arr(g.v_threshold)
            shape = shapes[ins[0]]  # libraries (snntorch's exporter) write one scalar per layer: broadcast it
            if thr.size != 1 and thr.shape != shape and thr.reshape(-1).shape != (int(np.prod(shape)),):
                raise NeurosimError(f"NIR {type(g).__name__} {k!r}: v_threshold has shape {thr.shape}, but its input "
                                    f"{ins[0]!r} has shape {shape}; expected that shape or one value")
            vr = np.ravel(g.v_reset)
            if np.ptp(vr) > 0:
                raise NeurosimError(f"NIR {type(g).__name__} {k!r}: per-neuron v_reset; neurosim needs one value")
            out[name] = Neurons(ins, shape=shape, threshold=thr.reshape(shape) if thr.size > 1 else thr.reshape(1),
                                leak=leak, reset=reset or "zero", v_reset=float(vr[0]))
        else:
            raise NeurosimError(f"NIR node {k!r} of type {type(g).__name__} is not supported; supported: {supported}")
        rename[k] = name
        shapes[name] = out[name].out_shape([shapes[i] for i in out[name].inputs])
    if readout is None:
        raise NeurosimError("NIR graph has no Output node")
    return SpikingNetwork(input_shape=input_shape, nodes=out, readout=readout)
