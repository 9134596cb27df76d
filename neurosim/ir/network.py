"""The spiking network: nodes in topological order, the encoding and the readout; shapes and spike
sources derived from the nodes (never stale after an edit), simulation through a registered backend."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.ir.nodes import INPUT, Add, Conv2d, Encoding, Flatten, Linear, Neurons, Node, Readout, SpikeMaxPool2d

if TYPE_CHECKING:
    from neurosim.ir.result import SimResult

#: Version of the saved format (:mod:`neurosim.ir.io`); a newer file is refused.
FORMAT_VERSION = 1


# ---- the network ------------------------------------------------------------------------------------

@dataclass(eq=False)
class SpikingNetwork:
    """A converted spiking network: nodes in topological order, the input encoding and the readout.

    ``input_shape`` is the per-sample shape of ``"input"``. ``metadata`` is free-form JSON (the
    converter records the source model, normalisation and per-layer scales there).
    """

    input_shape: tuple[int, ...]
    nodes: dict[str, Node]
    readout: Readout
    encoding: Encoding = field(default_factory=Encoding)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.nodes = dict(self.nodes)
        self._shapes_key = None
        self.shapes  # noqa: B018 - computing the shapes checks the graph
        r = self.readout
        if r.node not in self.nodes:
            raise NeurosimError(f"readout node {r.node!r} is not in the network")
        is_neurons = isinstance(self.nodes[r.node], Neurons)
        if r.kind == "spike_count" and not is_neurons:
            raise NeurosimError(f"spike_count readout needs a Neurons node, {r.node!r} is {self.nodes[r.node].kind}")
        if r.kind == "membrane" and is_neurons:
            raise NeurosimError(f"membrane readout reads a synaptic node's current, {r.node!r} is Neurons")
        if len(self.shapes[r.node]) != 1:
            raise NeurosimError(f"readout node {r.node!r} must be 1-D, has shape {self.shapes[r.node]}")

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample output shape of every node (and ``"input"``), checked against each node's inputs.

        Derived from the nodes on demand and cached under the node objects themselves (nodes are frozen,
        :class:`Node`: an edit is a new object), so an added, removed or replaced node is seen at once
        (a shape that no longer fits raises here)."""
        key = (self.input_shape, self.encoding, tuple(self.nodes.items()))
        old = self._shapes_key
        if old is None or old[0] != key[0] or old[1] is not key[1] or len(old[2]) != len(key[2]) or \
                any(a[0] != b[0] or a[1] is not b[1] for a, b in zip(old[2], key[2])):
            self._shapes = self._compute_shapes()
            self._shapes_key = key
        return self._shapes

    def _compute_shapes(self) -> dict[str, tuple[int, ...]]:
        if INPUT in self.nodes:
            raise NeurosimError(f"{INPUT!r} is reserved for the network input; rename that node")
        shapes: dict[str, tuple[int, ...]] = {INPUT: self.input_shape}
        seen = {INPUT}
        for name, node in self.nodes.items():
            if not isinstance(node, Node):
                raise NeurosimError(f"node {name!r} is a {type(node).__name__}, not an IR node")
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise NeurosimError(f"node {name!r} reads {missing}, which is not defined before it "
                                    f"(nodes must be listed in topological order)")
            try:
                shapes[name] = node.out_shape([shapes[i] for i in node.inputs])
            except NeurosimError as e:
                raise NeurosimError(f"node {name!r}: {e}") from None
            if isinstance(node, SpikeMaxPool2d):
                src = self.spike_source(node.inputs[0])
                if src is None:
                    raise NeurosimError(f"SpikeMaxPool2d {name!r} must read spikes (a Neurons population), "
                                        f"not {node.inputs[0]!r}")
            seen.add(name)
        return shapes

    def spike_source(self, name: str) -> str | None:
        """The spike source node ``name`` carries: itself if it is a population or spiking max-pool, what a
        Flatten passes through, the input when it is Poisson-encoded; None for an analog value."""
        while name != INPUT:
            node = self.nodes[name]
            if isinstance(node, (Neurons, SpikeMaxPool2d)):
                return name
            if isinstance(node, Flatten):
                name = node.inputs[0]
                continue
            return None
        return INPUT if self.encoding.kind == "poisson" else None

    # -- views --
    @property
    def populations(self) -> dict[str, Neurons]:
        """The spiking Neurons populations, in order."""
        return {k: n for k, n in self.nodes.items() if isinstance(n, Neurons)}

    @property
    def num_classes(self) -> int:
        return self.shapes[self.readout.node][0]

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations.values())

    @property
    def n_params(self) -> int:
        return sum(n.n_params() for n in self.nodes.values())

    def consumers(self, name: str) -> list[str]:
        return [k for k, n in self.nodes.items() if name in n.inputs]

    def synapse_targets(self) -> dict[str, str | None]:
        """For every synaptic node (Linear, Conv2d, Add), the population its current reaches first.

        Follows the graph downstream through non-spiking nodes (pooling, Flatten, Add) to the nearest
        Neurons node; ``None`` when the current ends in the readout without a population (the
        membrane-readout output layer). A node feeding several populations maps to the first in network order.
        """
        order = list(self.nodes)
        out: dict[str, str | None] = {}
        for k, n in self.nodes.items():
            if not isinstance(n, (Linear, Conv2d, Add)):
                continue
            frontier, seen, hit = self.consumers(k), set(), None
            while frontier and hit is None:
                pops = [c for c in frontier if isinstance(self.nodes[c], Neurons)]
                if pops:
                    hit = min(pops, key=order.index)
                    break
                seen.update(frontier)
                frontier = [c for f in frontier if not isinstance(self.nodes[f], SpikeMaxPool2d)
                            for c in self.consumers(f) if c not in seen]
            out[k] = hit
        return out

    def depth(self) -> int:
        """Synaptic layers on the longest input-to-readout path (the latency a delayed backend adds)."""
        d = {INPUT: 0}
        for k, n in self.nodes.items():
            d[k] = max((d[i] for i in n.inputs), default=0) + int(isinstance(n, (Linear, Conv2d)))
        return d[self.readout.node]

    def summary(self):
        """A DataFrame: one row per node (kind, inputs, output shape, parameters)."""
        import pandas as pd

        rows = [{"node": INPUT, "kind": f"Input({self.encoding.kind})", "inputs": "", "shape": self.input_shape,
                 "params": 0}]
        for k, n in self.nodes.items():
            kind = n.kind if not isinstance(n, Neurons) else f"{'signed ' if n.signed else ''}{n.model}({n.reset})"
            rows.append({"node": k, "kind": kind, "inputs": ",".join(n.inputs), "shape": self.shapes[k],
                         "params": n.n_params()})
        return pd.DataFrame(rows)

    def __repr__(self):
        kinds = ", ".join(f"{k}:{n.kind}" for k, n in self.nodes.items())
        return (f"SpikingNetwork(input={self.input_shape}, {len(self.nodes)} nodes [{kinds}], "
                f"readout={self.readout.kind}@{self.readout.node}, encoding={self.encoding.kind})")

    # -- simulation --
    def run(self, inputs, timesteps: int, backend: str = "snntorch", precision: str = "float",
            **options) -> "SimResult":
        """Simulate ``timesteps`` steps on ``inputs`` [batch, *input_shape] with a registered backend.

        ``precision``: ``"float"`` or ``"fixed"`` where the backend supports it. ``options`` go to the
        backend (e.g. ``batch_size``, ``seed``, ``record_trace``).
        """
        from neurosim.backends import get_backend

        try:
            ok = not isinstance(timesteps, bool) and int(timesteps) == timesteps and timesteps >= 1
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise NeurosimError(f"timesteps must be a positive integer, got {timesteps!r}")
        res = get_backend(backend)(self, inputs, int(timesteps), precision, **options)
        targets = self.synapse_targets()
        res.synapse_targets = {k: targets.get(k) for k in res.synops}
        return res

    # -- equality and (de)serialisation --
    def to_dict(self) -> dict:
        """The structure as JSON (arrays listed by key; :meth:`save` writes them to an .npz)."""
        return {
            "format": "neurosim.ir", "version": FORMAT_VERSION,
            "input_shape": list(self.input_shape),
            "encoding": {"kind": self.encoding.kind, "max_value": self.encoding.max_value},
            "readout": {"node": self.readout.node, "kind": self.readout.kind, "scale": self.readout.scale},
            "nodes": [{"name": k, "type": n.kind, "params": n.params(), "arrays": sorted(n.arrays())}
                      for k, n in self.nodes.items()],
            "metadata": self.metadata,
        }

    def save(self, path: str | Path) -> Path:
        """Write the network losslessly to one ``.npz`` file (structure JSON + float32 arrays); see
        :mod:`neurosim.ir.io`."""
        from neurosim.ir.io import save

        return save(self, path)

    @classmethod
    def load(cls, path: str | Path) -> "SpikingNetwork":
        """Read a network written by :meth:`save` (a damaged or foreign file is one NeurosimError)."""
        from neurosim.ir.io import load

        return load(path)

    def equals(self, other: "SpikingNetwork", rtol: float = 0.0, atol: float = 0.0) -> bool:
        """Structural equality with array comparison (exact by default)."""
        return not self.diff(other, rtol, atol)

    def diff(self, other: "SpikingNetwork", rtol: float = 0.0, atol: float = 0.0) -> list[str]:
        """What differs between two networks (empty when equal)."""
        out = []
        a, b = self.to_dict(), other.to_dict()
        for key in ("input_shape", "encoding", "readout"):
            if a[key] != b[key]:
                out.append(f"{key}: {a[key]} != {b[key]}")
        if list(self.nodes) != list(other.nodes):
            return out + [f"nodes: {list(self.nodes)} != {list(other.nodes)}"]
        for k in self.nodes:
            n, m = self.nodes[k], other.nodes[k]
            if n.kind != m.kind or n.params() != m.params():
                out.append(f"{k}: {n.kind}{n.params()} != {m.kind}{m.params()}")
                continue
            na, ma = n.arrays(), m.arrays()
            if set(na) != set(ma):
                out.append(f"{k}: arrays {sorted(na)} != {sorted(ma)}")
                continue
            for f in na:
                if na[f].shape != ma[f].shape or not np.allclose(na[f], ma[f], rtol=rtol, atol=atol):
                    out.append(f"{k}.{f} differs")
        return out

    # -- NIR --
    def to_nir(self, dt: float = 1e-4, target: str = "nir"):
        """Export to a ``nir.NIRGraph`` (``target``: ``"nir"``, ``"snntorch"``, ``"norse"``, ``"sinabs"``,
        ``"spikingjelly"``); see
        :func:`neurosim.ir.nir.to_nir` for the mapping and what is lost."""
        from neurosim.ir.nir import to_nir

        return to_nir(self, dt=dt, target=target)

    @classmethod
    def from_nir(cls, graph, dt: float | None = None, reset: str | None = None) -> "SpikingNetwork":
        """Import a ``nir.NIRGraph`` (or a path to a NIR .h5 file); see :func:`neurosim.ir.nir.from_nir`."""
        from neurosim.ir.nir import from_nir

        return from_nir(graph, dt=dt, reset=reset)
