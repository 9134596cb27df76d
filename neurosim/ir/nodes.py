"""IR nodes: one dataclass per node kind, its per-step rule in its docstring (the whole step semantics
is the package docstring, :mod:`neurosim.ir`), its checks in ``__post_init__``; the input encoding and
the readout. A new node kind is a dataclass here, a rule in :mod:`neurosim.backends.reference` and one
lowering per backend."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from neurosim.errors import NeurosimError

INPUT = "input"


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

def _set(node, name: str, value) -> None:
    """Normalise a field of a frozen node in its ``__post_init__`` (the only place a node changes)."""
    object.__setattr__(node, name, value)


@dataclass(frozen=True, eq=False)
class Node:
    """Base of all IR nodes. ``inputs`` names the nodes (or ``"input"``) this node reads at step t.

    Nodes are frozen: an edit is a new node, ``net.nodes[k] = dataclasses.replace(node, bias=...)``
    (calibration does so), which runs the checks in ``__post_init__`` again; what a network derives from
    its nodes (``SpikingNetwork.shapes``) follows the node objects, so it never goes stale. Array fields
    are numpy arrays the node does not copy; treat them as read-only (a backend that caches a lowering,
    Brian2, fingerprints their bytes).
    """

    inputs: tuple[str, ...]
    arity: ClassVar[int | None] = 1  # None: one or more inputs
    spiking: ClassVar[bool] = False  # emits 0/1 spikes

    def __post_init__(self):
        if isinstance(self.inputs, str):
            _set(self, "inputs", (self.inputs,))
        _set(self, "inputs", tuple(self.inputs))
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


@dataclass(frozen=True, eq=False)
class Linear(Node):
    """Dense synapses: ``y_t = W in_t + b``; ``weight`` [out, in], ``bias`` [out] or None."""

    weight: np.ndarray = None
    bias: np.ndarray | None = None

    def __post_init__(self):
        super().__post_init__()
        _set(self, "weight", _f32(self.weight, "weight", "Linear"))
        if self.weight.ndim != 2:
            raise NeurosimError(f"Linear weight must be 2-D [out, in], got shape {self.weight.shape}")
        if self.bias is not None:
            _set(self, "bias", _f32(self.bias, "bias", "Linear"))
            if self.bias.shape != (self.weight.shape[0],):
                raise NeurosimError(f"Linear bias must have shape ({self.weight.shape[0]},), got {self.bias.shape}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if s != (self.weight.shape[1],):
            raise NeurosimError(f"Linear expects input shape ({self.weight.shape[1]},), got {s}")
        return (self.weight.shape[0],)


def _conv_out(h: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (h + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True, eq=False)
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
        _set(self, "weight", _f32(self.weight, "weight", "Conv2d"))
        if self.weight.ndim != 4:
            raise NeurosimError(f"Conv2d weight must be 4-D [C_out, C_in/groups, kH, kW], got {self.weight.shape}")
        if self.bias is not None:
            _set(self, "bias", _f32(self.bias, "bias", "Conv2d"))
            if self.bias.shape != (self.weight.shape[0],):
                raise NeurosimError(f"Conv2d bias must have shape ({self.weight.shape[0]},), got {self.bias.shape}")
        _set(self, "stride", _pair(self.stride, "stride", "Conv2d"))
        _set(self, "padding", _pair(self.padding, "padding", "Conv2d"))
        _set(self, "dilation", _pair(self.dilation, "dilation", "Conv2d"))
        _set(self, "groups", int(self.groups))
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


@dataclass(frozen=True, eq=False)
class _Pool2d(Node):
    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self):
        super().__post_init__()
        n = type(self).__name__
        _set(self, "kernel_size", _pair(self.kernel_size, "kernel_size", n))
        _set(self, "stride", _pair(self.kernel_size if self.stride is None else self.stride, "stride", n))
        _set(self, "padding", _pair(self.padding, "padding", n))
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


@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """Window mean of the input (zero padding counted in the divisor, torch's default)."""


@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """Window sum of the input."""


@dataclass(frozen=True, eq=False)
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


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Row-major flatten of the whole per-sample shape (torch.flatten(x, 1))."""

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        return (int(np.prod(s)),)


@dataclass(frozen=True, eq=False)
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
        _set(self, "weights", tuple(_f32(x, "weights", "Add") for x in w))

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


@dataclass(frozen=True, eq=False)
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
        _set(self, "shape", tuple(int(s) for s in self.shape))
        if not self.shape or min(self.shape) < 1:
            raise NeurosimError(f"Neurons shape must be non-empty and positive, got {self.shape}")
        _set(self, "threshold", _f32(self.threshold, "threshold", "Neurons"))
        _set(self, "bias", _f32(self.bias, "bias", "Neurons"))
        _set(self, "v_init", _f32(self.v_init, "v_init", "Neurons"))
        for name in ("threshold", "bias", "v_init"):
            a = getattr(self, name)
            if not _broadcastable(a, self.shape):
                raise NeurosimError(f"Neurons {name} of shape {a.shape} does not broadcast to {self.shape}")
        if not np.all(self.threshold > 0) or not np.all(np.isfinite(self.threshold)):
            raise NeurosimError("Neurons threshold must be positive and finite")
        _set(self, "leak", float(self.leak))
        if not 0.0 <= self.leak <= 1.0:
            raise NeurosimError(f"Neurons leak must lie in [0, 1] (1 = IF), got {self.leak}")
        if self.reset not in RESETS:
            raise NeurosimError(f"Neurons reset {self.reset!r} unknown; valid: {', '.join(RESETS)}")
        _set(self, "v_reset", float(self.v_reset))
        _set(self, "signed", bool(self.signed))
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


@dataclass(frozen=True)
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
        _set(self, "max_value", float(self.max_value))
        if not self.max_value > 0:
            raise NeurosimError(f"encoding max_value must be positive, got {self.max_value}")


@dataclass(frozen=True)
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
        _set(self, "scale", float(self.scale))


# ---- Transformer operators (issue 13) -----------------------------------------------------------------
#
# Shapes are per sample as everywhere: a token sequence is [N, D] (tokens, features), attention heads
# [H, N, d]. The nodes below split in three groups:
#
# * stateless and linear (act on the step-t value, like Linear): Embedding (the token input encoding),
#   Constant, Reshape, Transpose, Slice, Concat, TokenLinear;
# * on accumulated input (stateful, nonlinear): MatMul (the product of two streams), Softmax, LayerNorm,
#   Activation. Each keeps the running sums ``S_t = sum_{s<=t} in_s`` of its inputs and emits
#
#       g_t = t * f(S_t / t),        y_t = g_t - g_{t-1},        g_0 = 0
#
#   so that ``sum_{s<=t} y_s = t * f(S_t / t)``: the time average of the output equals ``f`` of the time
#   average of the input at every t, exactly (whatever the input's timing). This is the rate-coded
#   (mean) form of SpikeZIP-TF's accumulate-and-difference operators (You et al., ICML 2024, whose
#   spike-equivalent self-attention and Spike-Softmax/LayerNorm emit f(S_t) - f(S_{t-1}) on sums, the
#   integral form). Their outputs are graded (real-valued) and dense at every step: a population of
#   Neurons after them turns them back into spikes.

def _axis(axis: int, ndim: int, node: str) -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise NeurosimError(f"{node}: axis {axis} out of range for a {ndim}-D per-sample shape")
    return axis % ndim


@dataclass(frozen=True, eq=False)
class Embedding(Node):
    """Token input encoding: ``y_t = weight[ids]`` with ``ids = in_t`` (integer token ids as floats).

    ``weight`` [vocab, D]; input [N] ids, output [N, D] (the embedded rows as direct current, every
    step). An id that is not an integer in ``[0, vocab)`` is refused by the backend at run time.
    Reads the network input with ``direct`` encoding (ids are not rates).
    """

    weight: np.ndarray = None

    def __post_init__(self):
        super().__post_init__()
        _set(self, "weight", _f32(self.weight, "weight", "Embedding"))
        if self.weight.ndim != 2:
            raise NeurosimError(f"Embedding weight must be 2-D [vocab, D], got shape {self.weight.shape}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if len(s) != 1:
            raise NeurosimError(f"Embedding reads a 1-D sequence of token ids, got shape {s}")
        return (s[0], self.weight.shape[1])


@dataclass(frozen=True, eq=False)
class Constant(Node):
    """A constant input (class token, position embedding, a bias map): ``y_t = value``; no inputs."""

    arity: ClassVar[int | None] = 0
    value: np.ndarray = None

    def __post_init__(self):
        super().__post_init__()
        _set(self, "value", _f32(self.value, "value", "Constant"))
        if self.value.ndim < 1 or self.value.size < 1:
            raise NeurosimError(f"Constant value must be a non-empty array, got shape {self.value.shape}")

    def out_shape(self, in_shapes):
        return tuple(int(s) for s in self.value.shape)


@dataclass(frozen=True, eq=False)
class Reshape(Node):
    """Row-major reshape of the per-sample value to ``shape`` (head split/merge, patch grid to tokens)."""

    shape: tuple[int, ...] = ()

    def __post_init__(self):
        super().__post_init__()
        _set(self, "shape", tuple(int(s) for s in self.shape))
        if not self.shape or min(self.shape) < 1:
            raise NeurosimError(f"Reshape shape must be non-empty and positive, got {self.shape}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if int(np.prod(s)) != int(np.prod(self.shape)):
            raise NeurosimError(f"Reshape cannot turn {s} ({int(np.prod(s))} values) into {self.shape}")
        return self.shape


@dataclass(frozen=True, eq=False)
class Transpose(Node):
    """Permutation of the per-sample axes: ``y = in.permute(perm)`` (batch excluded)."""

    perm: tuple[int, ...] = ()

    def __post_init__(self):
        super().__post_init__()
        _set(self, "perm", tuple(int(p) for p in self.perm))
        if sorted(self.perm) != list(range(len(self.perm))) or len(self.perm) < 2:
            raise NeurosimError(f"Transpose perm must be a permutation of 0..n-1 (n >= 2), got {self.perm}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if len(s) != len(self.perm):
            raise NeurosimError(f"Transpose perm {self.perm} does not fit a {len(s)}-D shape {s}")
        return tuple(s[p] for p in self.perm)


@dataclass(frozen=True, eq=False)
class Slice(Node):
    """``y = in[..., start:stop, ...]`` along per-sample ``axis`` (Q/K/V split, the class token)."""

    axis: int = 0
    start: int = 0
    stop: int = 1

    def __post_init__(self):
        super().__post_init__()
        for name in ("axis", "start", "stop"):
            _set(self, name, int(getattr(self, name)))

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        ax = _axis(self.axis, len(s), "Slice")
        if not 0 <= self.start < self.stop <= s[ax]:
            raise NeurosimError(f"Slice [{self.start}:{self.stop}] must lie within axis {ax} of size {s[ax]}")
        return s[:ax] + (self.stop - self.start,) + s[ax + 1:]


@dataclass(frozen=True, eq=False)
class Concat(Node):
    """Concatenation of the inputs along per-sample ``axis`` (class token before the patches)."""

    arity: ClassVar[int | None] = None
    axis: int = 0

    def __post_init__(self):
        super().__post_init__()
        _set(self, "axis", int(self.axis))

    def out_shape(self, in_shapes):
        nd = len(in_shapes[0])
        ax = _axis(self.axis, nd, "Concat")
        rest = {s[:ax] + s[ax + 1:] for s in in_shapes}
        if any(len(s) != nd for s in in_shapes) or len(rest) != 1:
            raise NeurosimError(f"Concat inputs {in_shapes} differ outside axis {ax}")
        s0 = in_shapes[0]
        return s0[:ax] + (sum(s[ax] for s in in_shapes),) + s0[ax + 1:]


@dataclass(frozen=True, eq=False)
class TokenLinear(Node):
    """Token-wise dense synapses: ``y_t = in_t W^T + b`` on the last axis of ``[..., in]`` (every token
    shares ``W`` [out, in]; ``b`` [out] or None is a constant current)."""

    weight: np.ndarray = None
    bias: np.ndarray | None = None

    def __post_init__(self):
        super().__post_init__()
        _set(self, "weight", _f32(self.weight, "weight", "TokenLinear"))
        if self.weight.ndim != 2:
            raise NeurosimError(f"TokenLinear weight must be 2-D [out, in], got shape {self.weight.shape}")
        if self.bias is not None:
            _set(self, "bias", _f32(self.bias, "bias", "TokenLinear"))
            if self.bias.shape != (self.weight.shape[0],):
                raise NeurosimError(f"TokenLinear bias must have shape ({self.weight.shape[0]},), "
                                    f"got {self.bias.shape}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if len(s) < 2 or s[-1] != self.weight.shape[1]:
            raise NeurosimError(f"TokenLinear expects input [..., {self.weight.shape[1]}] with at least one "
                                f"token axis, got {s}")
        return s[:-1] + (self.weight.shape[0],)


class _OnAccumulated(Node):
    """Marker base: the node keeps running sums of its inputs (see the section comment above)."""


@dataclass(frozen=True, eq=False)
class MatMul(_OnAccumulated):
    """The product of two streams: on running sums ``A_t``, ``B_t`` of the inputs,

        g_t = scale * A_t op(B_t) / t,   y_t = g_t - g_{t-1}     (op(B) = B^T if ``transpose_b``)

    so the output's time average is ``scale * mean(A) op(mean(B))`` at every t, exactly (the rate form
    of SpikeZIP-TF's y_t = A_t B_t^T - A_{t-1} B_{t-1}^T). Inputs ``a`` [..., M, K] and ``b`` [..., K, N]
    ([..., N, K] with ``transpose_b``), the same leading (head) axes. Cost per step: the increments
    ``a_t op(B_{t-1}) + A_t op(b_t)`` take ``nnz(a_t) N + nnz(b_t) M`` MACs (what SynOps counts), and the
    1/t renormalisation touches all ``M N`` outputs; the output is graded and dense.
    """

    arity: ClassVar[int | None] = 2
    transpose_b: bool = False
    scale: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        _set(self, "transpose_b", bool(self.transpose_b))
        _set(self, "scale", float(self.scale))
        if not np.isfinite(self.scale):
            raise NeurosimError(f"MatMul scale must be finite, got {self.scale}")

    def dims(self, in_shapes) -> tuple[int, int, int]:
        a, b = in_shapes
        bk, bn = (b[-1], b[-2]) if self.transpose_b else (b[-2], b[-1])
        return a[-2], a[-1], bn if bk == a[-1] else -1

    def out_shape(self, in_shapes):
        a, b = in_shapes
        if len(a) < 2 or len(a) != len(b) or a[:-2] != b[:-2]:
            raise NeurosimError(f"MatMul inputs must be [..., M, K] and [..., K, N] with equal leading axes, "
                                f"got {a} and {b}{' (b transposed)' if self.transpose_b else ''}")
        m, k, n = self.dims(in_shapes)
        if n < 0:
            raise NeurosimError(f"MatMul inner sizes differ: {a} times {b}{'^T' if self.transpose_b else ''}")
        return a[:-2] + (m, n)


@dataclass(frozen=True, eq=False)
class Softmax(_OnAccumulated):
    """Softmax over the last axis on accumulated input: ``g_t = t softmax(S_t / t)``, ``y_t = g_t - g_{t-1}``.

    ``causal``: the last two axes are [queries, keys] (square) and key ``j > i`` is masked out of query
    ``i`` (probability 0; GPT's decoder mask). Output graded in ``[0, 1]`` on average, dense.
    """

    causal: bool = False

    def __post_init__(self):
        super().__post_init__()
        _set(self, "causal", bool(self.causal))

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if self.causal and (len(s) < 2 or s[-1] != s[-2]):
            raise NeurosimError(f"causal Softmax needs square [.., queries, keys] scores, got {s}")
        return s


@dataclass(frozen=True, eq=False)
class LayerNorm(_OnAccumulated):
    """LayerNorm over the last axis on accumulated input: ``g_t = t LN(S_t / t)``, ``y_t = g_t - g_{t-1}``,
    ``LN(x) = (x - mean) / sqrt(var + eps) * weight + bias`` (biased variance, as torch)."""

    weight: np.ndarray = None
    bias: np.ndarray = None
    eps: float = 1e-5

    def __post_init__(self):
        super().__post_init__()
        _set(self, "weight", _f32(self.weight, "weight", "LayerNorm"))
        _set(self, "bias", _f32(np.zeros_like(self.weight) if self.bias is None else self.bias, "bias", "LayerNorm"))
        if self.weight.ndim != 1 or self.bias.shape != self.weight.shape:
            raise NeurosimError(f"LayerNorm weight and bias must be 1-D of one size, got {self.weight.shape} "
                                f"and {self.bias.shape}")
        _set(self, "eps", float(self.eps))
        if not self.eps > 0:
            raise NeurosimError(f"LayerNorm eps must be positive, got {self.eps}")

    def out_shape(self, in_shapes):
        (s,) = in_shapes
        if s[-1] != self.weight.shape[0]:
            raise NeurosimError(f"LayerNorm over {self.weight.shape[0]} features fed shape {s}")
        return s


ACTIVATION_FNS = ("gelu", "gelu_tanh", "silu", "tanh")


@dataclass(frozen=True, eq=False)
class Activation(_OnAccumulated):
    """An elementwise nonlinearity on accumulated input: ``g_t = t f(S_t / t)``, ``y_t = g_t - g_{t-1}``;
    ``fn`` one of :data:`ACTIVATION_FNS` (GELU erf / tanh form, SiLU, tanh). A ReLU is not this node:
    it converts to a population of IF neurons (spikes)."""

    fn: str = "gelu"

    def __post_init__(self):
        super().__post_init__()
        if self.fn not in ACTIVATION_FNS:
            raise NeurosimError(f"Activation fn {self.fn!r} unknown; valid: {', '.join(ACTIVATION_FNS)}")

    def out_shape(self, in_shapes):
        return in_shapes[0]


TRANSFORMER_NODES: dict[str, type[Node]] = {c.__name__: c for c in (
    Embedding, Constant, Reshape, Transpose, Slice, Concat, TokenLinear, MatMul, Softmax, LayerNorm, Activation)}
NODE_TYPES.update(TRANSFORMER_NODES)
ACCUMULATED = (MatMul, Softmax, LayerNorm, Activation)
