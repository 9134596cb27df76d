"""The spiking-network IR: one backend-neutral description that every simulator consumes.

A :class:`SpikingNetwork` is a directed acyclic graph of nodes kept in topological order, an input
:class:`Encoding` and a :class:`Readout`. The converter (:mod:`neurosim.convert`) produces it; each
backend (:mod:`neurosim.backends`) lowers it and returns a :class:`SimResult`. Conversion never knows
which simulator runs the result and a backend never knows which ANN it came from.

Shapes exclude the batch dimension: a Conv2d node maps ``(C_in, H, W) -> (C_out, H', W')``; a backend
prepends the batch. All arrays are float32 numpy arrays.

Exact discrete-time semantics (every backend must reproduce these; "float" precision bit-for-bit
up to float32 rounding, "fixed" up to its quantisation)
-----------------------------------------------------------------------------------------------------
Time runs ``t = 1 .. T`` in unit steps (dimensionless; ``dt`` only matters for NIR export). At
``t = 0`` every :class:`Neurons` membrane is ``v = v_init``, every :class:`SpikeMaxPool2d` count is
0 and the readout accumulator is 0. Each step:

1. **Encoding.** The input node ``"input"`` emits ``e_t`` (:class:`Encoding`): ``direct``: ``e_t = x``
   (the analog sample, every step); ``poisson``: ``e_t = sign(x) * [u_t < min(|x| / max_value, 1)]``
   with ``u_t ~ U[0, 1)`` (spikes of +-1); the weights reading the input were multiplied by
   ``max_value`` at conversion so that ``E[W e_t] = W x``. Backends that need reproducible spike trains
   take them from :func:`neurosim.encoding.encode`.
2. **Nodes in list order** (topological): every node computes its step-``t`` output from its inputs'
   step-``t`` outputs. **There is no synaptic delay**: a spike emitted by a population at step ``t``
   is summed into the next population's membrane in the same step ``t``. A backend whose synapses
   buffer one step (Lava's ``Dense``) adds one step of latency per synaptic layer; it must run
   ``T + depth`` steps and drop the first ``depth`` steps of the readout (or document the shift).

   * :class:`Linear`, :class:`Conv2d`: ``y_t = W * in_t + b`` (the bias is a constant current injected
     every step).
   * :class:`AvgPool2d` / :class:`SumPool2d`: window mean / sum of ``in_t`` (zero padding counted).
   * :class:`Flatten`: row-major reshape to 1-D.
   * :class:`Add`: ``y_t = sum_k w_k * in_t^(k)`` with per-input weights (scalar or per-channel).
   * :class:`Neurons` (IF when ``leak == 1``, LIF otherwise), elementwise::

         v   <- leak * v + I_t + bias          # I_t: the input node's step-t output
         s_t  = 1 if v > threshold else 0      # strict comparison, like snntorch, Lava and NIR
         s_t  = -1 if signed and s_t == 0 and v < 0 and C_{t-1} > 0
         v   <- v - threshold * s_t            # reset="subtract"  (reset by subtraction)
         v   <- v_reset where s_t == 1         # reset="zero"      (hard reset, value v_reset)
         C_t  = C_{t-1} + s_t                  # the neuron's net spike count, C_0 = 0

     The population outputs ``s_t`` (0/1, or -1/0/1 when ``signed``); its synaptic targets see
     ``s_t``, never ``threshold``-scaled spikes (the converter folds the scale into the next weights).
     A **signed** neuron (Wang et al., "Signed neuron with memory", IJCAI 2022) takes back a spike it
     emitted too early: when its membrane falls below 0 while its net count is positive it emits a
     negative spike and gains ``threshold``, so ``C_T = floor((sum_t I_t + v_init) / threshold)``
     whenever ``0 <= v_T <= threshold`` and spikes never overshoot for good. It needs
     ``reset="subtract"`` and a target that carries spike signs (Loihi 2's graded spikes, not Loihi 1).
   * :class:`SpikeMaxPool2d` (the spiking form of max-pooling, a count-based gate): keeps each input
     neuron's spike count ``C_t = C_{t-1} + in_t`` and emits
     ``y_t = maxpool(C_t) - maxpool(C_{t-1})``. Because counts change by at most 1 per step the output
     is again a 0/1 spike train (-1/0/1 for signed inputs), and its count after any ``t`` equals the
     largest input count in the window: the rate of max-pooled rates, exactly.
3. **Readout** (:class:`Readout`) accumulates ``A <- A + y_t`` of its node: ``membrane`` reads a
   synaptic node's current (a non-spiking integrator, which NIR calls ``I``); ``spike_count`` reads
   a Neurons population's spikes. After ``T`` steps ``output = scale * A / T`` (the time-average,
   on the ANN's logit scale for ``membrane``; a rate times ``scale`` for ``spike_count``) and
   ``prediction = argmax(output)`` (first index on ties).

For conversion (IF, reset by subtraction, ``v_init = threshold/2``) the spike count of a population
after ``T`` steps is ``floor(T * a / threshold + 1/2)`` clipped to ``[0, T]`` when its input current
``a`` is constant: a uniform quantiser of the ANN activation (Bu et al., ICLR 2022).

What NIR cannot hold (subtractive reset, initial membrane, neuron bias, SpikeMaxPool2d, per-input
Add weights, the encoding and readout) is carried in the NIR graph's metadata; see :meth:`to_nir`.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from neurosim.errors import NeurosimError

__all__ = [
    "Node", "Linear", "Conv2d", "AvgPool2d", "SumPool2d", "SpikeMaxPool2d", "Flatten", "Add", "Neurons",
    "Encoding", "Readout", "SpikingNetwork", "SimResult", "NODE_TYPES", "INPUT",
]

INPUT = "input"
FORMAT_VERSION = 1


def _f32(a, name: str, node: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise NeurosimError(f"{node}: {name} must be numeric, got {type(a).__name__}") from e
    if not np.all(np.isfinite(arr)) and name not in ("threshold",):
        raise NeurosimError(f"{node}: {name} contains NaN or inf")
    return arr


def _pair(v, name: str, node: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    v = tuple(int(x) for x in v)
    if len(v) != 2:
        raise NeurosimError(f"{node}: {name} must be an int or a pair, got {v}")
    return v


def _broadcastable(arr: np.ndarray, shape: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(arr.shape, shape) == tuple(shape)
    except ValueError:
        return False


# ---- nodes ------------------------------------------------------------------------------------------

_REVISION = itertools.count(1)


@dataclass(eq=False)
class Node:
    """Base of all IR nodes. ``inputs`` names the nodes (or ``"input"``) this node reads at step t.

    Nodes are mutable (calibration reassigns a population's ``bias``): every attribute assignment
    gives the node a new, globally unique ``revision``, so what a network derives from its nodes
    (``SpikingNetwork.shapes``) is recomputed after an edit instead of going stale.
    """

    inputs: tuple[str, ...]
    arity: ClassVar[int | None] = 1  # None: one or more inputs
    spiking: ClassVar[bool] = False  # emits 0/1 spikes

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        object.__setattr__(self, "revision", next(_REVISION))

    def __post_init__(self):
        if isinstance(self.inputs, str):
            self.inputs = (self.inputs,)
        self.inputs = tuple(self.inputs)
        n = len(self.inputs)
        if self.arity is None and n < 1:
            raise NeurosimError(f"{type(self).__name__} needs at least one input, got none")
        if self.arity is not None and n != self.arity:
            raise NeurosimError(f"{type(self).__name__} takes {self.arity} input(s), got {list(self.inputs)}")

    @property
    def kind(self) -> str:
        return type(self).__name__

    def out_shape(self, in_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The node's array-valued fields (for save/load and equality)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def params(self) -> dict[str, Any]:
        """The node's scalar fields (JSON-able)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, np.ndarray) and v is not None:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def n_params(self) -> int:
        return int(sum(a.size for a in self.arrays().values()))


@dataclass(eq=False)
class Linear(Node):
    """Dense synapses: ``y_t = W in_t + b``; ``weight`` [out, in], ``bias`` [out] or None."""

    weight: np.ndarray = None
    bias: np.ndarray | None = None

    def __post_init__(self):
        super().__post_init__()
        self.weight = _f32(self.weight, "weight", "Linear")
        if self.weight.ndim != 2:
            raise NeurosimError(f"Linear weight must be 2-D [out, in], got shape {self.weight.shape}")
        if self.bias is not None:
            self.bias = _f32(self.bias, "bias", "Linear")
            if self.bias.shape != (self.weight.shape[0],):
                raise NeurosimError(f"Linear bias must have shape ({self.weight.shape[0]},), got {self.bias.shape}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if s != (self.weight.shape[1],):
            raise NeurosimError(f"Linear expects input shape ({self.weight.shape[1]},), got {s}")
        return (self.weight.shape[0],)


def _conv_out(h: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (h + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(eq=False)
class Conv2d(Node):
    """2-D convolution synapses: ``y_t = W (*) in_t + b``; weight [C_out, C_in/groups, kH, kW]."""

    weight: np.ndarray = None
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        super().__post_init__()
        self.weight = _f32(self.weight, "weight", "Conv2d")
        if self.weight.ndim != 4:
            raise NeurosimError(f"Conv2d weight must be 4-D [C_out, C_in/groups, kH, kW], got {self.weight.shape}")
        if self.bias is not None:
            self.bias = _f32(self.bias, "bias", "Conv2d")
            if self.bias.shape != (self.weight.shape[0],):
                raise NeurosimError(f"Conv2d bias must have shape ({self.weight.shape[0]},), got {self.bias.shape}")
        self.stride = _pair(self.stride, "stride", "Conv2d")
        self.padding = _pair(self.padding, "padding", "Conv2d")
        self.dilation = _pair(self.dilation, "dilation", "Conv2d")
        self.groups = int(self.groups)
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise NeurosimError(f"Conv2d groups={self.groups} must divide C_out={self.weight.shape[0]}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if len(s) != 3 or s[0] != self.weight.shape[1] * self.groups:
            raise NeurosimError(f"Conv2d expects input (C={self.weight.shape[1] * self.groups}, H, W), got {s}")
        kh, kw = self.weight.shape[2:]
        h = _conv_out(s[1], kh, self.stride[0], self.padding[0], self.dilation[0])
        w = _conv_out(s[2], kw, self.stride[1], self.padding[1], self.dilation[1])
        if h < 1 or w < 1:
            raise NeurosimError(f"Conv2d output would be empty for input {s}")
        return (self.weight.shape[0], h, w)


@dataclass(eq=False)
class _Pool2d(Node):
    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self):
        super().__post_init__()
        n = type(self).__name__
        self.kernel_size = _pair(self.kernel_size, "kernel_size", n)
        self.stride = _pair(self.kernel_size if self.stride is None else self.stride, "stride", n)
        self.padding = _pair(self.padding, "padding", n)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise NeurosimError(f"{n}: kernel_size and stride must be >= 1 and padding >= 0")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise NeurosimError(f"{n}: padding {self.padding} must be at most half of kernel_size {self.kernel_size}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if len(s) != 3:
            raise NeurosimError(f"{type(self).__name__} expects input (C, H, W), got {s}")
        h = _conv_out(s[1], self.kernel_size[0], self.stride[0], self.padding[0])
        w = _conv_out(s[2], self.kernel_size[1], self.stride[1], self.padding[1])
        if h < 1 or w < 1:
            raise NeurosimError(f"{type(self).__name__} output would be empty for input {s}")
        return (s[0], h, w)


@dataclass(eq=False)
class AvgPool2d(_Pool2d):
    """Window mean of the input (zero padding counted in the divisor, torch's default)."""


@dataclass(eq=False)
class SumPool2d(_Pool2d):
    """Window sum of the input."""


@dataclass(eq=False)
class SpikeMaxPool2d(_Pool2d):
    """Spiking max-pool: ``y_t = maxpool(C_t) - maxpool(C_{t-1})``, ``C_t`` the input spike counts.

    The input must be spikes (a :class:`Neurons` population, possibly through Flatten or another
    SpikeMaxPool2d); the output count always equals the largest input count of the window, so the
    output rate is the max of the input rates (count-gated max-pooling, cf. Rueckauer et al.,
    Front. Neurosci. 2017, who gate by the running count; ours emits the max's increment instead,
    which needs no tie-breaking). Padding counts as a silent input. NIR has no max-pool: exported as
    a SumPool2d whose true type is in the graph metadata.
    """

    spiking: ClassVar[bool] = True


@dataclass(eq=False)
class Flatten(Node):
    """Row-major flatten of the whole per-sample shape (torch.flatten(x, 1))."""

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        return (int(np.prod(s)),)


@dataclass(eq=False)
class Add(Node):
    """Weighted sum of one or more same-shaped inputs: ``y_t = sum_k weights[k] * in_t^(k)``.

    ``weights[k]`` is a scalar or an array broadcastable to the input shape (per-channel [C, 1, 1]);
    the converter uses them to bring residual branches to a common scale, and a one-input Add to
    rescale a signal (NIR: ``Scale``).
    """

    arity: ClassVar[int | None] = None
    weights: tuple = None

    def __post_init__(self):
        super().__post_init__()
        w = self.weights if self.weights is not None else [1.0] * len(self.inputs)
        if len(w) != len(self.inputs):
            raise NeurosimError(f"Add has {len(self.inputs)} inputs but {len(w)} weights")
        self.weights = tuple(_f32(x, "weights", "Add") for x in w)

    def out_shape(self, in_shapes):
        if len(set(in_shapes)) != 1:
            raise NeurosimError(f"Add inputs {list(self.inputs)} have different shapes {in_shapes}")
        for k, w in enumerate(self.weights):
            if not _broadcastable(w, in_shapes[0]):
                raise NeurosimError(f"Add weight {k} of shape {w.shape} does not broadcast to {in_shapes[0]}")
        return in_shapes[0]

    def arrays(self):
        return {f"weights.{k}": w for k, w in enumerate(self.weights)}

    def params(self):
        return {"inputs": list(self.inputs)}


RESETS = ("subtract", "zero")


@dataclass(eq=False)
class Neurons(Node):
    """A population of IF (``leak == 1``) or LIF neurons; see the module docstring for the update.

    ``shape``: the population's per-sample shape (equal to its input's).
    ``threshold``, ``bias``, ``v_init``: arrays broadcastable to ``shape`` (scalar, per-channel
    ``[C, 1, 1]`` or full). ``leak``: the fraction of ``v`` kept per step (LIF ``beta``; 1 = IF).
    ``reset``: ``"subtract"`` (v -= threshold on a spike; what rate conversion needs) or ``"zero"``
    (v = v_reset). ``v_reset`` is used by the zero reset only. ``signed``: also emit -1 spikes
    (module docstring; subtractive reset only).
    """

    spiking: ClassVar[bool] = True
    shape: tuple[int, ...] = ()
    threshold: np.ndarray = 1.0
    leak: float = 1.0
    bias: np.ndarray = 0.0
    reset: str = "subtract"
    v_reset: float = 0.0
    v_init: np.ndarray = 0.0
    signed: bool = False

    def __post_init__(self):
        super().__post_init__()
        self.shape = tuple(int(s) for s in self.shape)
        if not self.shape or min(self.shape) < 1:
            raise NeurosimError(f"Neurons shape must be non-empty and positive, got {self.shape}")
        self.threshold = _f32(self.threshold, "threshold", "Neurons")
        self.bias = _f32(self.bias, "bias", "Neurons")
        self.v_init = _f32(self.v_init, "v_init", "Neurons")
        for name in ("threshold", "bias", "v_init"):
            a = getattr(self, name)
            if not _broadcastable(a, self.shape):
                raise NeurosimError(f"Neurons {name} of shape {a.shape} does not broadcast to {self.shape}")
        if not np.all(self.threshold > 0) or not np.all(np.isfinite(self.threshold)):
            raise NeurosimError("Neurons threshold must be positive and finite")
        self.leak = float(self.leak)
        if not 0.0 <= self.leak <= 1.0:
            raise NeurosimError(f"Neurons leak must lie in [0, 1] (1 = IF), got {self.leak}")
        if self.reset not in RESETS:
            raise NeurosimError(f"Neurons reset {self.reset!r} unknown; valid: {', '.join(RESETS)}")
        self.v_reset = float(self.v_reset)
        self.signed = bool(self.signed)
        if self.signed and self.reset != "subtract":
            raise NeurosimError("signed Neurons need reset='subtract' (a negative spike adds the threshold back)")

    @property
    def model(self) -> str:
        return "IF" if self.leak == 1.0 else "LIF"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if s != self.shape:
            raise NeurosimError(f"Neurons of shape {self.shape} fed an input of shape {s}")
        return self.shape


NODE_TYPES: dict[str, type[Node]] = {c.__name__: c for c in
                                      (Linear, Conv2d, AvgPool2d, SumPool2d, SpikeMaxPool2d, Flatten, Add, Neurons)}


# ---- encoding and readout ---------------------------------------------------------------------------

ENCODINGS = ("direct", "poisson")
READOUTS = ("membrane", "spike_count")


@dataclass
class Encoding:
    """How a sample ``x`` becomes the input node's output ``e_t`` (module docstring, step 1).

    ``direct``: ``e_t = x`` every step (the first synaptic layer does MACs on analog values).
    ``poisson``: signed Bernoulli spikes with probability ``min(|x| / max_value, 1)``; the converter
    has already multiplied the weights that read the input by ``max_value``.
    """

    kind: str = "direct"
    max_value: float = 1.0

    def __post_init__(self):
        if self.kind not in ENCODINGS:
            raise NeurosimError(f"unknown encoding {self.kind!r}; valid: {', '.join(ENCODINGS)}")
        self.max_value = float(self.max_value)
        if not self.max_value > 0:
            raise NeurosimError(f"encoding max_value must be positive, got {self.max_value}")


@dataclass
class Readout:
    """What the network's output is: ``scale * A_T / T`` with ``A`` accumulating node ``node``.

    ``membrane``: ``node`` is a synaptic node (its current is integrated by a non-spiking readout;
    the output is on the ANN's logit scale). ``spike_count``: ``node`` is a Neurons population.
    """

    node: str
    kind: str = "membrane"
    scale: float = 1.0

    def __post_init__(self):
        if self.kind not in READOUTS:
            raise NeurosimError(f"unknown readout {self.kind!r}; valid: {', '.join(READOUTS)}")
        self.scale = float(self.scale)


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

        Derived from the nodes on demand and cached under their revisions (:class:`Node`), so an
        edited, added or replaced node is seen at once (a shape that no longer fits raises here)."""
        key = (self.input_shape, self.encoding.kind, tuple((k, id(n), getattr(n, "revision", 0))
                                                           for k, n in self.nodes.items()))
        if self._shapes_key != key:
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
            d[k] = max(d[i] for i in n.inputs) + int(isinstance(n, (Linear, Conv2d)))
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
        """Write the network losslessly to one ``.npz`` file (structure JSON + float32 arrays)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{k}/{a}": v for k, n in self.nodes.items() for a, v in n.arrays().items()}
        np.savez(path, __ir__=np.array(json.dumps(self.to_dict())), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SpikingNetwork":
        """Read a network written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise NeurosimError(f"no IR file at {path}")
        import zipfile

        try:  # a text, empty, truncated, bit-flipped or foreign file is named, never a numpy/zip traceback
            z = np.load(path, allow_pickle=False)
            if not hasattr(z, "files"):
                raise NeurosimError(f"{path} is not a neurosim IR file (a single .npy array, not an .npz)")
            with z:
                if "__ir__" not in z:
                    raise NeurosimError(f"{path} is not a neurosim IR file (no __ir__ entry)")
                spec = json.loads(str(z["__ir__"]))
                arrays = {k: z[k] for k in z.files if k != "__ir__"}
            return cls._from_spec(spec, arrays)
        except NeurosimError:
            raise
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError, TypeError, AttributeError,
                IndexError, json.JSONDecodeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise NeurosimError(f"{path} is not a readable neurosim IR file ({type(e).__name__}: {msg}); "
                                "write one with `neurosim convert ... --save-ir NET.npz`") from None

    @classmethod
    def _from_spec(cls, spec: dict, arrays: dict[str, np.ndarray]) -> "SpikingNetwork":
        if spec.get("format") != "neurosim.ir" or spec.get("version", 0) > FORMAT_VERSION:
            raise NeurosimError(f"unsupported IR format {spec.get('format')!r} version {spec.get('version')}")
        nodes = {}
        for nd in spec["nodes"]:
            typ = NODE_TYPES.get(nd["type"])
            if typ is None:
                raise NeurosimError(f"unknown IR node type {nd['type']!r}; valid: {', '.join(NODE_TYPES)}")
            kw = dict(nd["params"])
            if typ is Add:
                kw["weights"] = [arrays[f"{nd['name']}/weights.{k}"] for k in range(len(kw["inputs"]))]
            else:
                for a in nd["arrays"]:
                    kw[a] = arrays[f"{nd['name']}/{a}"]
            nodes[nd["name"]] = typ(**kw)
        return cls(input_shape=tuple(spec["input_shape"]), nodes=nodes, readout=Readout(**spec["readout"]),
                   encoding=Encoding(**spec["encoding"]), metadata=spec.get("metadata", {}))

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
    def to_nir(self, dt: float = 1e-4):
        """Export to a ``nir.NIRGraph``; see :func:`to_nir` for the mapping and what is lost."""
        return to_nir(self, dt=dt)

    @classmethod
    def from_nir(cls, graph, dt: float | None = None) -> "SpikingNetwork":
        """Import a ``nir.NIRGraph`` (or a path to a NIR .h5 file); see :func:`from_nir`."""
        return from_nir(graph, dt=dt)


# ---- simulation results -----------------------------------------------------------------------------

@dataclass
class SimResult:
    """What a backend returns from :meth:`SpikingNetwork.run`.

    ``output`` [batch, classes]: the readout (module docstring, step 3). ``predictions`` [batch].
    Per population (keyed by node name, in network order): ``spike_counts`` (total spike events over
    the batch and all steps; a signed population's -1 spikes count as events too), ``neurons``
    (neurons per sample), ``firing_rates`` (events per neuron per step, averaged over the batch). Per weight layer (Linear/Conv2d, and Add nodes with a spiking
    input, keyed by name): ``synops``, synaptic operations per sample over all steps: every nonzero
    input element at every step times the nonzero weights it drives (an Add: one per input spike);
    for a direct-encoded input these are analog MACs, counted every step.
    ``trace`` (optional) [T, batch, classes]: the readout after each step ``t`` (``scale * A_t / t``),
    equal to what a ``t``-step run would return, so one run gives accuracy at every ``t <= T``.
    """

    output: np.ndarray
    predictions: np.ndarray
    timesteps: int
    spike_counts: dict[str, float]
    neurons: dict[str, int]
    firing_rates: dict[str, float]
    synops: dict[str, float]
    backend: str = ""
    precision: str = "float"
    batch: int = 0
    wall_s: float = 0.0
    trace: np.ndarray | None = None
    counts: dict[str, np.ndarray] | None = None  # optional: net spike count C_T per neuron [batch, *shape]
    # optional (record_step_counts=True): spike events per step, per population, per spiking max-pool and
    # for "input" (nonzero encoded input elements), as [T, batch] float64 arrays (row t = step t, column = sample)
    step_counts: dict[str, np.ndarray] | None = None
    # synaptic node -> the population its current drives (None: the readout); SpikingNetwork.run fills it
    synapse_targets: dict[str, str | None] | None = None

    def __post_init__(self):
        self.output = np.asarray(self.output)
        self.predictions = np.asarray(self.predictions)
        if not self.batch:
            self.batch = int(self.output.shape[0])

    @property
    def total_spikes(self) -> float:
        return float(sum(self.spike_counts.values()))

    @property
    def total_synops(self) -> float:
        """Synaptic operations per sample, all layers, all steps."""
        return float(sum(self.synops.values()))

    def accuracy(self, labels) -> float:
        labels = np.asarray(labels).reshape(-1)
        return float((self.predictions == labels).mean())

    def accuracy_trace(self, labels) -> np.ndarray:
        """Accuracy after each step ``t = 1..T`` (needs ``trace``)."""
        if self.trace is None:
            raise NeurosimError("this result has no trace; run with record_trace=True")
        labels = np.asarray(labels).reshape(-1)
        return (self.trace.argmax(-1) == labels[None]).mean(axis=1)

    def to_dataframe(self):
        """One row per layer: neurons, spikes per sample, firing rate, synops per sample."""
        import pandas as pd

        rows = []
        for k in self.neurons:
            rows.append({"layer": k, "kind": "neurons", "neurons": self.neurons[k],
                         "spikes_per_sample": self.spike_counts[k] / max(self.batch, 1),
                         "firing_rate": self.firing_rates[k], "synops_per_sample": float("nan")})
        for k, v in self.synops.items():
            rows.append({"layer": k, "kind": "synapses", "neurons": 0, "spikes_per_sample": float("nan"),
                         "firing_rate": float("nan"), "synops_per_sample": v})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "precision": self.precision, "timesteps": self.timesteps,
            "batch": self.batch, "wall_s": self.wall_s,
            "output": self.output.tolist(), "predictions": self.predictions.tolist(),
            "spike_counts": dict(self.spike_counts), "neurons": dict(self.neurons),
            "firing_rates": dict(self.firing_rates), "synops": dict(self.synops),
            "total_spikes": self.total_spikes, "total_synops": self.total_synops,
            "synapse_targets": dict(self.synapse_targets or {}),
        }


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


def to_nir(net: SpikingNetwork, dt: float = 1e-4):
    """Export ``net`` to a ``nir.NIRGraph`` (see the comment above this function for the mapping)."""
    import nir

    if not dt > 0:
        raise NeurosimError(f"dt must be positive, got {dt}")
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


def from_nir(graph, dt: float | None = None) -> SpikingNetwork:
    """Import a ``nir.NIRGraph`` (or the path of a NIR HDF5 file) as a :class:`SpikingNetwork`.

    A graph written by :func:`to_nir` is restored exactly from its metadata. A foreign graph maps
    Affine/Linear -> Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, IF/LIF -> Neurons (reset to
    ``v_reset``, discretised with ``dt``, default 1e-4 like snntorch), several edges into one node ->
    an Add, I before Output -> membrane readout; anything else raises an error naming the node.
    """
    import nir

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
    return _from_foreign_nir(graph, 1e-4 if dt is None else dt)


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
            srcs, weights = [], []
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


def _from_foreign_nir(graph, dt: float) -> SpikingNetwork:
    import nir

    nodes, edges = graph.nodes, list(graph.edges)
    order = _topo(nodes, edges)
    preds = {k: [a for a, b in edges if b == k] for k in nodes}
    inputs = [k for k in order if isinstance(nodes[k], nir.Input)]
    if len(inputs) != 1:
        raise NeurosimError(f"NIR graph must have exactly one Input node, has {inputs}")
    input_shape = tuple(int(s) for s in np.ravel(nodes[inputs[0]].input_type["input"]))
    rename = {inputs[0]: INPUT}
    out: dict[str, Node] = {}
    readout = None

    def src(k):
        ps = [rename[p] for p in preds[k]]
        if len(ps) > 1:
            out[f"{k}.sum"] = Add(tuple(ps))
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
                raise NeurosimError(f"NIR {type(g).__name__} {k!r}: input gain R*dt{'/tau' if leak != 1 else ''} = "
                                    f"{float(np.mean(gain)):.4g} != 1 at dt={dt}; pass the dt it was exported with")
            thr = _arr(g.v_threshold)
            out[name] = Neurons(ins, shape=thr.shape, threshold=thr, leak=leak, reset="zero",
                                v_reset=float(np.ravel(g.v_reset)[0]))
        else:
            raise NeurosimError(f"NIR node {k!r} of type {type(g).__name__} is not supported; supported: {supported}")
        rename[k] = name
    if readout is None:
        raise NeurosimError("NIR graph has no Output node")
    return SpikingNetwork(input_shape=input_shape, nodes=out, readout=readout)
