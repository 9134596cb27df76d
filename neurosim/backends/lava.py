"""Lava backend: the IR as real Lava processes, run on Lava's CPU simulator in float or bit-accurate
Loihi fixed point (``Loihi2SimCfg(select_tag="floating_pt" | "fixed_pt")``).

Lowering (see :mod:`neurosim.ir.lowering` for how the IR becomes sources and terms):

* input: a :class:`~neurosim.loihi.processes.LaneSource` sending the encoded input every step (direct
  current as graded messages, stored once per sample; Poisson spikes as +-1 graded messages);
* every Neurons population: one :class:`neurosim.loihi.processes.ConversionNeurons` (subtractive
  reset, per-neuron threshold and bias; Lava's ``LIF`` resets to zero with one scalar ``vth``);
  **signed** populations too (float and fixed): the model keeps each neuron's net count ``C``
  (restarted with the membrane at every sample) and emits -1 spikes as the IR states;
* every linear path between a source and a population (Linear, Conv2d, pooling, Flatten, Add
  weights, composed): one :class:`~neurosim.loihi.processes.LaneDense` (Lava's ``Dense`` with lanes,
  bit for bit: ``tests/test_lava_lanes.py``), or a :class:`~neurosim.loihi.processes.LaneConv`
  (Lava's ``Conv``) when the path is a convolution (an average pool before a convolution folds into
  it); biases become neuron biases;
* SpikeMaxPool2d: :class:`~neurosim.loihi.processes.SpikeMaxPool`; residual adds: several Dense/Conv
  into one ``a_in`` port (Lava sums them), the shorter branch behind a
  :class:`~neurosim.loihi.processes.Delay`;
* readout: a :class:`~neurosim.loihi.processes.LaneSink` (Lava's ``io.sink.RingBuffer``) recording the
  summed readout current (membrane) or the output spikes (spike_count; signed spikes sum with their
  sign). Results come back through memory shared with the forked workers, not through Lava's Var
  ``get``, which sends one scalar per message (:func:`neurosim.loihi.processes.shared_array`).

Signed spikes. A signed population's spikes (-1/0/1), and those of a SpikeMaxPool reading one, are
sent as graded messages (Loihi 2's graded spikes with an integer payload; Loihi 1 has only binary
spikes, see ``neurosim loihi-map``): every Dense/Conv they feed gets ``num_message_bits=24`` like the
input, because with ``num_message_bits=0`` a Dense (Lava's, float and bit-accurate, and ours) reads
``s_in`` as bool and a -1 would act as +1. ``spike_counts`` are events (``|s|`` summed), synops count -1 spikes
like +1 spikes.

Timing. Lava's Dense and Conv send at step t what they computed at t-1, so a population ``d``
synaptic layers from the input sees sample step 0 at global step ``d`` (its *latency*); the IR has
no delay. Samples run in ONE Lava run, ``lanes`` side by side and windows of ``T`` steps back to
back: sample ``i`` is lane ``i % lanes`` of window ``w = i // lanes``, entering at step ``w*T``; every
population restarts its membrane (``v_init``) at ``latency + w*T`` and the readout of sample ``i`` is
summed over steps ``latency_readout + w*T .. + T - 1``. So a run takes ``ceil(B / lanes) * T + depth``
steps and the results equal the IR's (the first ``depth`` steps are dropped, not simulated twice).

Lanes. Every Lava time step is a barrier-synchronised round of messages between the OS processes
(about 4 ms for the MNIST MLP's 7 processes on our machines), whatever a message holds; so each of
our processes carries ``lanes`` samples (ports and state ``(lanes, *shape)``, parameters shared) and a
round serves them all. ``lanes=None`` (default) puts the whole run's batch side by side, as far as
:data:`LANE_MEMORY_MIB` of per-lane buffers allows (:func:`auto_lanes`); the lanes past the last
sample are padding and never counted. A lane's arithmetic does not depend on how many lanes run
(:mod:`neurosim.loihi.processes`), so every ``lanes`` gives the result of ``lanes=1`` bit for bit,
float and fixed (``tests/test_lava_lanes.py``). Lava keeps ``CHANNEL_SLOTS`` messages per channel
(its default is 64, which with lanes would be most of a run's memory).

Fixed point (``precision="fixed"``): each population is normalised to threshold 1 (per-channel
thresholds fold into its incoming weights) and given the threshold mantissa ``vth_mant``
(default 1024: 24-bit ``v`` then spans +-128 thresholds). Each Dense/Conv gets 8-bit weights
(Lava's mixed-sign weights are even numbers in [-256, 254]) and its own exponent
``weight_exp = ceil(log2(max|w| vth_mant / 254))``; biases become a 13-bit mantissa and a 3-bit
exponent; a direct-current input is quantised to ``input_bits`` (graded messages) with a step taken
from each sample alone (its own grid, or its range rounded up to a power of two), never from the
batch. Lava's models then
add ``a_in << 6`` to ``v`` and compare with ``vth << 6``. Neurons whose largest incoming weight exceeds
the layer's 90th percentile (a channel with a tiny activation scale after per-channel normalisation)
get a gain ``g < 1`` on their weights, bias, initial membrane and threshold (``vth = g * vth_mant``,
an integer; the same dynamics), so a few outsized rows do not set the layer's one exponent and flush
every other weight (:func:`_neuron_gains`); a row still outsized at ``vth = 1`` (a dead channel whose
scale is ~0) does not set the exponent either and its largest weights clip (``weights_clipped``). ``result.quantization`` is a DataFrame per layer:
exponents, neurons given a gain and the smallest ``vth``, clipped weights and biases, relative weight
error, membrane saturations and the largest synaptic input seen.

Fidelity bound of fixed point (what ``tests/test_backend_conformance.py`` asserts on its networks,
T = 12): every population's spike count within 5% (+5 spikes) of the exact count, and the readout
within 0.2 x its largest magnitude (a few output-layer spikes' worth); predictions may differ where
two classes are that close. Float precision equals the IR (the reference backend) to float rounding.

Every run stops its Lava runtime in a ``finally``: on success, on an exception and on Ctrl-C no
process is left behind (``tests/test_lava_backend.py`` checks the children of the test process).
Lava (lava-nc 0.10) runs on Python 3.10 only; elsewhere this backend raises a NeurosimError.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
from dataclasses import dataclass, field

import numpy as np

from neurosim.backends import Activity, register_backend
from neurosim.errors import NeurosimError
from neurosim.ir import Neurons, SpikeMaxPool2d, SpikingNetwork
from neurosim.ir.lowering import INPUT, Lowering, signed_sources


# ---- Lava's layout: (C, H, W) tensors as (X=W, Y=H, C) --------------------------------------------

def ir_to_lava_perm(shape: tuple) -> np.ndarray:
    """``perm[i_lava] = i_ir`` for a tensor of IR shape ``shape``: Lava stores (C, H, W) as (X=W, Y=H, C)."""
    n = int(np.prod(shape))
    if len(shape) != 3:
        return np.arange(n)
    return np.arange(n).reshape(shape).transpose(2, 1, 0).reshape(-1)


def lava_shape(shape: tuple) -> tuple:
    return (shape[2], shape[1], shape[0]) if len(shape) == 3 else tuple(shape)


def lava_conv_weight(w: np.ndarray) -> np.ndarray:
    """IR/torch correlation kernel [C_out, C_in, kH, kW] -> Lava Conv kernel (C_out, X=kW, Y=kH, C_in).

    Lava's ``conv`` (``proc/conv/utils.py``) flips the kernel (a true convolution) and reads it as
    ``weight[:, ::-1, ::-1].transpose(0, 3, 2, 1)`` in torch layout, so we store the flip.
    """
    return np.ascontiguousarray(w.transpose(0, 3, 2, 1)[:, ::-1, ::-1])


W_MAX_MIXED, W_MIN_MIXED = 254, -256  # Lava MIXED sign mode: 8-bit, LSB dropped (weightutils.truncate_weights)
BIAS_MANT_MAX = 4095                   # 13-bit signed bias mantissa (PyLifModelBitAcc)
BIAS_EXP_MAX = 7                       # 3-bit bias exponent
VTH_MANT_MAX = 2 ** 17 - 1             # 17-bit threshold mantissa
V_UNIT_SHIFT = 6                       # v units per threshold mantissa unit (vth << 6)


def check_python(version_info=None) -> None:
    """Raise a NeurosimError unless this is Python 3.10 (lava-nc 0.10 declares >=3.10,<3.11)."""
    v = tuple(sys.version_info[:2] if version_info is None else tuple(version_info)[:2])
    if v != (3, 10):
        raise NeurosimError(f"the lava backend needs Python 3.10 (lava-nc 0.10 supports only 3.10; this is "
                            f"{v[0]}.{v[1]}); use backend='snntorch' or 'brian2', or a 3.10 environment")


def _import_lava():
    check_python()
    try:
        import multiprocessing as mp

        if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules \
                and mp.get_start_method(allow_none=True) is not None:
            # Lava calls mp.set_start_method('fork') when its runtime is imported, which raises if
            # anything chose a start method before (torch's DataLoader; a process pool's spawned
            # worker inherits 'spawn'). Its runtime needs fork, so clear the choice and let it set fork.
            mp.set_start_method(None, force=True)
        import lava.magma  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise NeurosimError(f"the lava backend needs lava-nc 0.10 (pip install lava-nc==0.10.0): {e}") from e


# ---- lanes --------------------------------------------------------------------------------------------

#: per-lane buffers the automatic lane count may use (channel slots, messages, state, conv windows)
LANE_MEMORY_MIB = 512


def check_lanes(lanes):
    """``lanes`` as an int, or None (automatic); anything else is one NeurosimError."""
    if lanes is None:
        return None
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise NeurosimError(f"lanes must be a positive integer (samples side by side in each Lava process) "
                            f"or None (automatic), got {lanes!r}")
    return int(lanes)


def lane_bytes(net: SpikingNetwork) -> int:
    """Bytes one lane adds to a Lava run of ``net``: every node's map travels as float64 messages
    (``CHANNEL_SLOTS`` in shared memory plus the copies on each side) and each convolution unfolds
    its input windows (:func:`neurosim.loihi.processes.conv_lanes`)."""
    from neurosim.ir import Conv2d

    elems = int(np.prod(net.input_shape))
    conv = 0
    for k, n in net.nodes.items():
        size = int(np.prod(net.shapes[k]))
        elems += 2 * size if isinstance(n, Neurons) else size
        if isinstance(n, Conv2d):
            conv += size // n.weight.shape[0] * int(np.prod(n.weight.shape[1:]))
    return 8 * (elems * (CHANNEL_SLOTS + 4) + 2 * conv)


def auto_lanes(net: SpikingNetwork, batch: int, memory_mib: float = LANE_MEMORY_MIB) -> int:
    """The default lane count for a run of ``batch`` samples: all of them side by side (a run is
    then ``T + depth`` Lava steps) unless their buffers would exceed ``memory_mib``. Measured
    (``benchmarks/backends_speed.py``, docs/backends.md "Lava lanes"): the time per sample falls with
    the lanes until the per-step compute outweighs the per-step message round, and more lanes never
    cost time there, so the most that fit is the choice."""
    return max(1, min(int(batch), int(memory_mib * 2 ** 20 // lane_bytes(net))))


# ---- fixed-point quantisation -------------------------------------------------------------------------

@dataclass
class _QTerm:
    weights: np.ndarray      # Lava layout, int (fixed) or float
    weight_exp: int = 0
    clipped: int = 0
    rel_error: float = 0.0


@dataclass
class _QPop:
    vth: np.ndarray
    bias: np.ndarray
    v_init: np.ndarray
    bias_exp: int = 0
    dv: float | int = 0.0
    v_reset: float | int = 0.0
    bias_clipped: int = 0
    terms: list = field(default_factory=list)


def _quant_weights(m: np.ndarray, scale: float, rows: np.ndarray | None = None) -> _QTerm:
    """8-bit Loihi weights with a shared exponent for ``m * scale``: ``W_int * 2**e ~= m * scale``.
    ``rows`` (bool over the first axis): only these rows set the exponent; the others may clip."""
    a = m * scale
    ref = a if rows is None or not rows.any() else a[rows]
    amax = float(np.abs(ref).max()) if ref.size else 0.0
    if amax == 0.0:
        return _QTerm(np.zeros(m.shape, np.int32), 0)
    mixed = a.min() < 0 < a.max()
    top = W_MAX_MIXED if mixed else 255
    e = int(math.ceil(math.log2(amax / top)))
    q = a / 2.0 ** e
    if mixed:
        w = 2 * np.round(q / 2)
        lo, hi = W_MIN_MIXED, W_MAX_MIXED
    else:
        w = np.round(q)
        lo, hi = (0, 255) if a.max() > 0 else (-255, 0)
    clipped = int(((w < lo) | (w > hi)).sum())
    w = np.clip(w, lo, hi)
    err = float(np.sqrt(np.mean((np.clip(w * 2.0 ** e, -amax, amax) - np.clip(a, -amax, amax)) ** 2)) / amax)
    return _QTerm(w.astype(np.int32), e, clipped, err)


GAIN_PERCENTILE = 90  # neurons whose largest input weight exceeds this percentile of the layer's get a gain


def _neuron_gains(tg, theta: np.ndarray, vth_mant: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron gains ``g <= 1`` (IR flat order) with ``g * vth_mant`` an integer: a neuron's dynamics
    do not change when its input weights, bias, initial membrane and threshold all scale by ``g``.
    Neurons whose largest incoming weight (over all terms, relative to their threshold) exceeds the
    ``GAIN_PERCENTILE``-th percentile of the population's get ``g = percentile / largest``, so a few
    outsized rows (a channel with a tiny activation scale after per-channel normalisation) no longer
    set the layer's one weight exponent and flush everyone else's weights to zero. Per channel for
    conv-shaped populations (conv kernels are shared across positions). Also returns which neurons
    stay outsized even at the smallest threshold (``vth = 1``; a dead channel whose scale is ~0): they
    do not set the exponent and their largest weights clip (counted in ``weights_clipped``)."""
    n_out = int(np.prod(tg.shape))
    rowmax = np.zeros(n_out)
    for term in tg.terms:
        cf = term.conv_form()
        if cf is not None and len(term.in_shape) == 3 and len(tg.shape) == 3:
            per_c = np.abs(cf[0]).reshape(cf[0].shape[0], -1).max(1)
            r = np.repeat(per_c, n_out // per_c.size)
        else:
            r = np.abs(term.dense()).max(1) if term.n_in else np.zeros(n_out)
        rowmax = np.maximum(rowmax, r / theta.reshape(-1))
    if len(tg.shape) == 3:  # one gain per channel
        rowmax = np.repeat(rowmax.reshape(tg.shape[0], -1).max(1), n_out // tg.shape[0])
    live = rowmax[rowmax > 0]
    if live.size == 0:
        return np.ones(n_out), np.zeros(n_out, bool)
    ref = float(np.percentile(live, GAIN_PERCENTILE))
    g = np.where(rowmax > ref, ref / np.maximum(rowmax, 1e-300), 1.0)
    g = np.maximum(np.floor(g * vth_mant), 1.0) / vth_mant
    return g, rowmax * g > 2.0 * ref


def _sample_step(x: np.ndarray, levels: int) -> float:
    """Quantisation step of ONE sample's direct-current input, from that sample alone. ``p2 =
    2**ceil(log2(max|x|)) / levels`` (the sample's range rounded up to a power of two: samples of
    similar range share a step, hence a Lava run) when every value lies exactly on that grid (8-bit
    images, binary ones: all of MNIST-5k's test set shares one step); else the sample's own grid when
    it lies on one with at most ``levels`` steps (the 17-level digits; quantising it again would only
    add error); else ``p2`` (at most one bit of resolution lost). Rounded to 6 significant digits so
    that float32 noise does not split a data set's samples into several Lava runs. An all-zero sample
    has no step of its own (``run`` puts it in the largest run)."""
    a = np.unique(np.abs(x).astype(np.float64))
    top = float(a.max()) if a.size else 0.0
    if top == 0.0:
        return 1.0
    p2 = float(f"{2.0 ** math.ceil(math.log2(top)) / levels:.6g}")  # 6 digits too: 1/255 either way
    k = a / p2
    if np.abs(k - np.round(k)).max() < 1e-3:  # exact on the power-of-two grid (8-bit images, binary ones)
        return p2
    step = _input_step(x, levels)
    if step != top / levels:  # the data's own grid
        return float(f"{step:.6g}")
    return p2


def _input_step(x: np.ndarray, levels: int) -> float:
    """Quantisation step of a direct-current input: the data's own grid when it already is one with at
    most ``levels`` steps (8-bit images, the 17-level digits: quantising them again would only add
    error), else ``max|x| / levels``."""
    a = np.unique(np.abs(x[np.isfinite(x)]).astype(np.float64))
    top = float(a.max()) if a.size else 0.0
    if top == 0.0:
        return 1.0
    if 1 < a.size <= levels + 1:
        step = float(np.diff(a).min())
        k = a / step
        if top / step <= levels + 1e-6 and np.abs(k - np.round(k)).max() < 1e-3:
            return step
    return top / levels


def _quant_bias(b_v: np.ndarray) -> tuple[np.ndarray, int, int]:
    """13-bit mantissa and 3-bit exponent for biases ``b_v`` in membrane units."""
    bmax = float(np.abs(b_v).max()) if b_v.size else 0.0
    e = 0
    while e < BIAS_EXP_MAX and bmax / 2 ** e > BIAS_MANT_MAX:
        e += 1
    m = np.round(b_v / 2 ** e)
    clipped = int(((m > BIAS_MANT_MAX) | (m < -BIAS_MANT_MAX - 1)).sum())
    return np.clip(m, -BIAS_MANT_MAX - 1, BIAS_MANT_MAX).astype(np.int32), e, clipped


# ---- the lowered Lava graph ---------------------------------------------------------------------------

class _Graph:
    """Builds the Lava processes for ``net`` (module docstring) and reads the results back.

    ``enc`` [b, T, n_lava]: the encoded input of ``b`` samples (Lava's flat order; fixed point: the
    quantised integers). ``lanes`` samples run side by side in every process, ``windows`` of them
    back to back; sample ``i`` is lane ``i % lanes`` of window ``i // lanes``."""

    def __init__(self, net: SpikingNetwork, enc: np.ndarray, T: int, fixed: bool, vth_mant: int,
                 input_step: float, graded_input: bool, lanes: int, direct: bool):
        from neurosim.loihi.processes import (ConversionNeurons, Delay, LaneConv, LaneDense, LaneSink, LaneSource,
                                              SpikeMaxPool)

        b = enc.shape[0]
        L = max(1, min(int(lanes), b))
        W = -(-b // L)
        self.net, self.B, self.T, self.fixed, self.L, self.W = net, b, T, fixed, L, W
        self.low = low = Lowering(net)
        self.lat, extra = low.latencies()
        self.total = W * T + self.lat["readout"]
        self.readout_unit = float(vth_mant)
        self.qreport = []
        # input: one message [L, *shape] per step; a direct input is stored once per window
        src_shape = lava_shape(net.input_shape)
        slots = np.zeros((W * L, *enc.shape[1:]), np.int32 if fixed else np.float32)
        slots[:b] = enc
        if direct:
            data, repeat = slots[:, 0].reshape(W, L, *src_shape), T
        else:
            data = slots.reshape(W, L, T, -1).transpose(0, 2, 1, 3).reshape(W * T, L, *src_shape)
            repeat = 1
        self.source = LaneSource(data=data, repeat=repeat)
        self.all_procs = [self.source]
        self.out_port = {INPUT: self.source.s_out}
        self.procs = {}
        win = dict(period=T, windows=W, lanes=L, samples=b)
        q = self._quantise(vth_mant, input_step) if fixed else None
        for k, n in net.nodes.items():
            if isinstance(n, Neurons):
                shp = lava_shape(n.shape)
                perm = ir_to_lava_perm(n.shape)
                if fixed:
                    p = q[k]
                    proc = ConversionNeurons(shape=shp, vth=p.vth.reshape(shp), bias=p.bias.reshape(shp),
                                             v_init=p.v_init.reshape(shp), dv=p.dv, bias_exp=p.bias_exp,
                                             reset_zero=int(n.reset == "zero"), v_reset=p.v_reset,
                                             offset=self.lat[k], signed=int(n.signed), name=k, **win)
                else:
                    full = lambda a: np.broadcast_to(a, n.shape).reshape(-1)[perm].reshape(shp)  # noqa: E731
                    bias = np.broadcast_to(low.targets[k].const, n.shape).reshape(-1)[perm].reshape(shp)
                    proc = ConversionNeurons(shape=shp, vth=full(n.threshold), bias=bias, v_init=full(n.v_init),
                                             dv=1.0 - n.leak, reset_zero=int(n.reset == "zero"),
                                             v_reset=n.v_reset, offset=self.lat[k], signed=int(n.signed),
                                             name=k, **win)
                self.procs[k] = proc
                self.out_port[k] = proc.s_out
            elif isinstance(n, SpikeMaxPool2d):
                src = low.maxpools[k]
                proc = SpikeMaxPool(in_shape=lava_shape(net.shapes[src]), out_shape=lava_shape(net.shapes[k]),
                                    kernel_size=n.kernel_size, stride=n.stride, padding=n.padding,
                                    offset=self.lat[src], name=k, **win)
                self.out_port[src].connect(proc.s_in)
                self.procs[k] = proc
                self.out_port[k] = proc.s_out
        ro = net.readout
        self.sink = LaneSink(shape=(L, net.num_classes), buffer=self.total)
        self.all_procs += [*self.procs.values(), self.sink]
        if ro.kind == "membrane":
            self.readout_const = low.targets["readout"].const
        else:
            self.out_port[ro.node].connect(self.sink.a_in)
        # synapses: one LaneDense/LaneConv per term; signed spikes travel as graded messages (module docstring)
        signed_src = signed_sources(net)
        self.n_synapse_procs = 0
        for tname, tg in low.targets.items():
            dst = self.procs[tname].a_in if tname != "readout" else self.sink.a_in
            dst_shape = lava_shape(tg.shape)
            for i, term in enumerate(tg.terms):
                port = self.out_port[term.source]
                in_shape = lava_shape(term.in_shape)
                d = extra[(tname, i)]
                if d > 0:
                    dl = Delay(shape=(L, *in_shape), delay=d)
                    self.all_procs.append(dl)
                    port.connect(dl.s_in)
                    port = dl.s_out
                graded = (term.source == INPUT and graded_input) or term.source in signed_src
                nmb = 24 if graded else 0
                cf = term.conv_form()
                use_conv = cf is not None and len(term.in_shape) == 3 and len(tg.shape) == 3
                if fixed:
                    qt = q[tname].terms[i]
                    w, wexp = qt.weights, qt.weight_exp
                else:
                    w, wexp = (lava_conv_weight(cf[0]) if use_conv else self._dense_lava(term)), 0
                if use_conv:
                    _, stride, padding, dilation, groups = cf
                    syn = LaneConv(weight=w, weight_exp=wexp, in_shape=in_shape, out_shape=dst_shape,
                                   padding=padding[::-1], stride=stride[::-1], dilation=dilation[::-1],
                                   groups=groups, num_message_bits=nmb, lanes=L, name=f"{tname}.{i}")
                else:
                    syn = LaneDense(weights=w, weight_exp=wexp, in_shape=in_shape, out_shape=dst_shape,
                                    num_message_bits=nmb, lanes=L, name=f"{tname}.{i}")
                port.connect(syn.s_in)
                syn.a_out.connect(dst)
                self.all_procs.append(syn)
                self.n_synapse_procs += 1

    def _dense_lava(self, term) -> np.ndarray:
        m = term.dense()
        return m[ir_to_lava_perm(term.out_shape)][:, ir_to_lava_perm(term.in_shape)]

    def _quantise(self, vth_mant: int, input_step: float) -> dict[str, _QPop]:
        net, low = self.net, self.low
        if not 1 <= vth_mant <= VTH_MANT_MAX:
            raise NeurosimError(f"vth_mant must lie in [1, {VTH_MANT_MAX}] (17 bits), got {vth_mant}")
        unit = float(vth_mant) * 2 ** V_UNIT_SHIFT  # membrane units per threshold
        out = {}
        for tname, tg in low.targets.items():
            if tname == "readout":
                theta = np.ones(tg.shape)
                n = None
            else:
                n = net.nodes[tname]
                theta = np.broadcast_to(n.threshold, n.shape).astype(np.float64)
            gain, outsized = np.ones(int(np.prod(tg.shape))), None
            if n is not None and (n.reset == "subtract" or n.v_reset == 0):
                gain, outsized = _neuron_gains(tg, theta, vth_mant)
            theta = theta / gain.reshape(theta.shape)  # weights, bias and v_init scale by gain with vth
            th_flat = theta.reshape(-1)
            perm_out = ir_to_lava_perm(tg.shape)
            terms = []
            for term in tg.terms:
                scale = vth_mant * (input_step if term.source == INPUT else 1.0)
                cf = term.conv_form()
                if cf is not None and len(term.in_shape) == 3 and len(tg.shape) == 3:
                    w = cf[0]
                    # per-channel threshold: a conv term needs one threshold per output channel
                    th_c = theta.reshape(theta.shape[0], -1)
                    if np.ptp(th_c, axis=1).max() > 0:
                        raise NeurosimError(f"{tname}: per-position thresholds under a convolution cannot be "
                                            f"folded into its kernel")
                    keep = None if outsized is None else ~outsized.reshape(th_c.shape).any(1)
                    qt = _quant_weights(w / th_c[:, 0][:, None, None, None], scale, keep)
                    qt.weights = lava_conv_weight(qt.weights).astype(np.int32)
                else:
                    m = term.dense() / th_flat[:, None]
                    qt = _quant_weights(m, scale, None if outsized is None else ~outsized)
                    qt.weights = qt.weights[perm_out][:, ir_to_lava_perm(term.in_shape)]
                terms.append(qt)
            const = np.broadcast_to(tg.const, tg.shape).reshape(-1) / th_flat
            if n is None:
                self.readout_const_q = np.round(const * vth_mant) / vth_mant
                out[tname] = _QPop(vth=np.ones(1), bias=np.zeros(1), v_init=np.zeros(1), terms=terms)
                self.qreport.append(self._row(tname, terms, None, 0, vth_mant))
                continue
            bias, bexp, bclip = _quant_bias(const[perm_out] * unit)
            v_init = np.broadcast_to(n.v_init, n.shape).reshape(-1)[perm_out] / th_flat[perm_out]
            v_init = np.clip(np.round(v_init * unit), -(2 ** 23 - 1), 2 ** 23 - 1).astype(np.int32)
            if n.reset == "zero" and n.v_reset != 0 and np.ptp(theta) > 0:
                raise NeurosimError(f"{tname}: reset to v_reset={n.v_reset} with per-neuron thresholds has no "
                                    f"fixed-point form; use reset='subtract' or one threshold")
            v_reset = int(round(n.v_reset / float(th_flat[0]) * unit))
            dv = int(round((1.0 - n.leak) * 4096))
            vth = np.rint(gain * vth_mant).astype(np.int32)[perm_out]
            out[tname] = _QPop(vth=vth, bias=bias, v_init=v_init,
                               bias_exp=bexp, dv=dv, v_reset=v_reset, bias_clipped=bclip, terms=terms)
            self.qreport.append(self._row(tname, terms, bexp, bclip, vth_mant, int((gain < 1).sum()), int(vth.min())))
        return out

    @staticmethod
    def _row(name, terms, bexp, bclip, vth_mant, rescaled=0, vth_min=None):
        return {"layer": name, "vth_mant": vth_mant, "neurons_rescaled": rescaled,
                "vth_min": vth_mant if vth_min is None else vth_min, "weight_exp": [t.weight_exp for t in terms],
                "weights_clipped": sum(t.clipped for t in terms),
                "weight_rel_rms_error": max([t.rel_error for t in terms], default=0.0),
                "bias_exp": bexp, "bias_clipped": bclip}

    def any_proc(self):
        return self.source

    def release(self) -> None:
        """Free the shared result arrays (after :meth:`results`, or when the run failed)."""
        from neurosim.loihi.processes import release

        release(self.sink.key, *(p.key for p in self.procs.values()))

    def results(self, record_trace: bool):
        net, B, T, L, W = self.net, self.B, self.T, self.L, self.W
        R = self.lat["readout"]
        data = np.array(self.sink.data[:, :, R:R + W * T], np.float64)  # [L, classes, W*T]
        y = data.reshape(L, -1, W, T).transpose(2, 0, 3, 1).reshape(W * L, T, -1)[:B]  # sample w*L + l
        if net.readout.kind == "membrane":
            if self.fixed:
                y = y / self.readout_unit + self.readout_const_q[None, None]
            else:
                y = y + self.low.targets["readout"].const.reshape(1, 1, -1)
        acc = np.cumsum(y, axis=1)
        trace = acc / np.arange(1, T + 1).reshape(1, T, 1) * net.readout.scale
        output = trace[:, -1]
        counts, events = {}, {}
        for k, p in self.procs.items():
            c = np.array(p.spike_count, np.float64).reshape(-1)
            c_ir = np.empty_like(c)
            c_ir[ir_to_lava_perm(net.shapes[k])] = c
            events[k] = c_ir
            if isinstance(net.nodes[k], Neurons):
                counts[k] = float(c.sum())
        sat = {k: p.sat_count for k, p in self.procs.items()
               if isinstance(net.nodes[k], Neurons)}
        amax = {k: p.a_max for k, p in self.procs.items()
                if isinstance(net.nodes[k], Neurons)}
        return output, (trace.transpose(1, 0, 2) if record_trace else None), counts, events, sat, amax


def _actors(proc) -> list:
    """The OS processes (multiprocessing actors) of ``proc``'s Lava runtime, if it has started."""
    mi = getattr(getattr(proc, "runtime", None), "_messaging_infrastructure", None)
    return list(getattr(mi, "actors", None) or [])


def _dead(actor) -> bool:
    try:
        return actor.exitcode is not None
    except ValueError:  # already joined and closed
        return True


WAKE_SIGNAL = signal.SIGUSR1  # how the watchdog wakes the main thread out of a Lava wait


class _WorkerDied(Exception):
    """Raised in the main thread by the watchdog's WAKE_SIGNAL."""


def _on_wake(signum, frame):
    raise _WorkerDied()


def _watchdog(proc, done: threading.Event, failed: threading.Event, grace_s: float = 1.0,
              wake: bool = False) -> None:
    """Lava 0.10 deadlocks when a ProcessModel raises: the runtime waits for every worker, and the
    healthy ones wait forever for the failed one's messages. Our models end their worker on an error
    (``neurosim.loihi.processes._FailFast``); when a worker dies mid-run this terminates the rest and
    interrupts the main thread, which ``_run_lava`` turns into a RuntimeError."""
    while not done.wait(0.25):
        actors = _actors(proc)
        if actors and any(_dead(a) for a in actors):
            if done.wait(grace_s):
                return
            failed.set()
            for a in actors:
                if not _dead(a):
                    a.terminate()
            # the main thread waits on a Lava channel that will never be written: interrupt it (with
            # WAKE_SIGNAL where _run_lava installed its handler: SIGINT may be ignored, as under nohup)
            if not done.is_set():
                os.kill(os.getpid(), WAKE_SIGNAL if wake else signal.SIGINT)
            return


def _run_lava(graph: _Graph, precision: str, chunk_steps: int | None, progress, record_trace: bool):
    """Run the graph to the end and read the results back; the runtime is stopped in every case.

    Lava's workers are forked under :func:`neurosim.proc.children_die_with_me`: they die with this
    process whatever kills it, and they ignore SIGINT, so a Ctrl-C sent to the whole process group
    reaches only this process, which then ends them in a bounded time (:func:`_shutdown`)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from neurosim.proc import children_die_with_me

    from neurosim.loihi.processes import model_map, warm_up

    cfg = Loihi2SimCfg(select_tag="floating_pt" if precision == "float" else "fixed_pt",
                       exception_proc_model_map=model_map(graph.all_procs, precision))
    warm_up()  # the lane kernels compiled here once, inherited by the forked workers
    proc = graph.any_proc()
    total = graph.total
    chunk = total if not chunk_steps else max(1, int(chunk_steps))
    started = False
    clean = False
    done, failed = threading.Event(), threading.Event()
    main = threading.current_thread() is threading.main_thread()
    old_wake = signal.signal(WAKE_SIGNAL, _on_wake) if main else None
    watch = threading.Thread(target=_watchdog, args=(proc, done, failed), kwargs={"wake": main}, daemon=True)
    watch.start()
    try:
        with children_die_with_me():
            n_done = 0
            while n_done < total:
                n = min(chunk, total - n_done)
                started = True
                proc.run(condition=RunSteps(num_steps=n), run_cfg=cfg,
                         compile_config={"pypy_channel_size": CHANNEL_SLOTS})
                n_done += n
                if progress is not None:
                    progress(n_done, total)
            out = graph.results(record_trace)
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
            signal.signal(WAKE_SIGNAL, old_wake)
        try:
            if started:
                _shutdown(proc, clean=clean and not failed.is_set() and not any(_dead(a) for a in _actors(proc)))
        finally:
            graph.release()


# Messages in flight per Lava channel. Lava preallocates 64 in shared memory per channel, but every step
# of the Loihi protocol is a barrier: a channel never holds more than one message, and with lanes a
# message is lanes x a layer (64 slots of it would be most of the memory of a run).
CHANNEL_SLOTS = 2
STOP_TIMEOUT_S = 10.0  # a clean ``stop()`` that takes longer than this is abandoned for terminate + kill


def _shutdown(proc, clean: bool, stop_timeout_s: float = STOP_TIMEOUT_S) -> None:
    """End ``proc``'s Lava runtime in a bounded time and release its shared memory.

    After a complete run (``clean``) Lava's own ``stop()`` runs, in a thread, for at most
    ``stop_timeout_s``; on an interrupt, an error or a stop that does not return, the workers are
    terminated (then killed after a second), and the shared-memory manager is shut down (it unlinks
    every ``/dev/shm`` segment of the run). ``stop()`` is never called on a runtime whose workers may
    be gone: it waits for their answers forever."""
    rt = getattr(proc, "runtime", None)
    if clean:
        box = {}

        def _stop():
            try:
                proc.stop()
                box["ok"] = True
            except BaseException as e:  # noqa: BLE001 - a failed stop must not mask the first error
                box["error"] = e

        t = threading.Thread(target=_stop, name="lava-stop", daemon=True)
        t.start()
        try:
            t.join(stop_timeout_s)
        except KeyboardInterrupt:  # Ctrl-C while the workers stop: end them now, then let it through
            _hard_stop(rt)
            raise
        if box.get("ok"):
            return
    _hard_stop(rt)


def _hard_stop(rt) -> None:
    from neurosim.proc import reap

    mi = getattr(rt, "_messaging_infrastructure", None)
    reap(list(getattr(mi, "actors", None) or []), grace_s=1.0)
    smm = getattr(mi, "smm", None)
    if smm is not None:
        try:
            smm.shutdown()  # the manager's server unlinks the segments; bounded (join 1 s, then terminate)
        except Exception:  # noqa: BLE001
            mgr = getattr(smm, "_manager", None)
            p = getattr(mgr, "_process", None)
            if p is not None:
                reap([p], grace_s=0.5)
    if rt is not None:
        # Runtime.__del__ calls stop() on a started runtime, which would wait for the dead workers
        rt._is_started = False
        rt._is_running = False
        try:
            if rt._watchdog_manager is not None:
                rt._watchdog_manager.stop()
        except Exception:  # noqa: BLE001
            pass


class _Program:
    """What ``prepare`` settles for a Lava run: the network, the precision and its fixed-point and lane
    parameters. The Lava graph itself depends on the samples (lanes, windows, fixed-point input steps),
    so :func:`simulate` builds one per run."""

    def __init__(self, net: SpikingNetwork, precision: str, vth_mant: int, input_bits: int,
                 input_scale: float | None, lanes: int | None):
        self.net, self.precision, self.fixed = net, precision, precision == "fixed"
        self.vth_mant, self.input_bits, self.input_scale, self.lanes = vth_mant, input_bits, input_scale, lanes
        self.batch_size = None
        self.dtype = np.float32

    def plan(self, B: int, T: int, batch_size: int | None) -> int:
        # Lava batches itself: samples are grouped by their fixed-point input step first, then each group
        # runs in Lava runs of batch_size samples (simulate); the driver hands over the whole batch
        self.batch_size = batch_size
        return B


class _TransformerProgram:
    """A network with Transformer operators: run by :func:`neurosim.backends._lava_transformer.simulate_transformer`
    (its own processes per operator); the whole batch goes to it, it batches itself."""

    def __init__(self, net: SpikingNetwork, precision: str, lanes: int | None, options: dict):
        self.net, self.precision, self.lanes, self.options = net, precision, lanes, options
        self.batch_size = None

    def plan(self, B: int, T: int, batch_size: int | None) -> int:
        self.batch_size = batch_size
        return B


#: options of the CNN/MLP graph only, and of the Transformer graph only (their defaults: not asked for)
_CNN_ONLY = {"vth_mant": 1024, "input_scale": None}
_TRANSFORMER_ONLY = {"weight_bits": 8, "weight_exponent": "row", "calibration": None}


def prepare(net: SpikingNetwork, precision: str = "float", *, vth_mant: int = 1024, input_bits: int | None = None,
            input_scale: float | None = None, lanes: int | None = None, weight_bits: int = 8,
            weight_exponent: str = "row", calibration=None) -> _Program:
    """Lava processes (Dense/Conv + subtractive-reset neurons) on Loihi2SimCfg, float or bit-accurate
    fixed point.

    ``lanes``: samples side by side in every Lava process (module docstring, "Lanes"); default
    (None): the whole run's batch, or as many as :data:`LANE_MEMORY_MIB` of per-lane buffers allow
    (:func:`auto_lanes`). A run of ``b`` samples takes ``ceil(b / lanes) * T + depth`` Lava steps; the
    result is the same for every ``lanes``. ``batch_size``: samples per Lava run (default: all; each run
    is one compile + one runtime).
    Fixed point: ``vth_mant`` (threshold mantissa, 17 bits), ``input_bits`` and ``input_scale`` (the
    direct-current input quantisation step, one for every sample; default: each sample's own step from
    that sample alone (:func:`_sample_step`; signed samples one bit less), so no sample changes another's
    result; samples with one step share a Lava run, ``result.lava_input_steps`` lists the steps). The
    result carries ``quantization`` (a DataFrame per layer, of the largest run) for ``fixed``.

    A network with Transformer operators runs on their own processes
    (:func:`neurosim.backends._lava_transformer.simulate_transformer`): ``weight_bits``,
    ``weight_exponent``, ``calibration`` and ``input_bits`` (default 16 there) are its fixed-point options;
    ``vth_mant`` and ``input_scale`` are the CNN/MLP graph's. Asking one graph for the other's options is
    one clear error.
    """
    from neurosim.backends._lava_transformer import check_supported, has_transformer_nodes

    given = dict(vth_mant=vth_mant, input_scale=input_scale, weight_bits=weight_bits,
                 weight_exponent=weight_exponent, calibration=calibration)
    transformer = has_transformer_nodes(net)
    other = _CNN_ONLY if transformer else _TRANSFORMER_ONLY
    for k, default in other.items():
        if given[k] is not default and given[k] != default:
            kind = "a network with Transformer operators" if transformer else "a network without Transformer operators"
            raise NeurosimError(f"lava option {k!r} does not apply to {kind}; its fixed-point options: "
                                f"{', '.join(k2 for k2 in given if k2 not in other)}, input_bits")
    if transformer:
        check_supported(net)  # one clear error before anything is built
        _import_lava()
        opts = dict(weight_bits=weight_bits, weight_exponent=weight_exponent, calibration=calibration)
        if input_bits is not None:
            opts["input_bits"] = input_bits
        return _TransformerProgram(net, precision, check_lanes(lanes), opts)
    _import_lava()
    return _Program(net, precision, vth_mant, 8 if input_bits is None else input_bits, input_scale, check_lanes(lanes))


def simulate(program: _Program, batch, *, record_trace: bool = False, chunk_steps: int | None = None,
             progress=None) -> Activity:
    """Run the batch on Lava. ``record_trace``: the readout after every step. ``chunk_steps``: run in
    pieces of this many steps and call ``progress(done, total)`` between them. Poisson spikes are the
    driver's (the same as every backend's for the same seed).

    Fixed point quantises each direct-current sample with its own step and groups the samples that share
    one (:func:`prepare`); the input SynOps count the quantised input's nonzero values."""
    if isinstance(program, _TransformerProgram):
        return _simulate_transformer(program, batch, record_trace, chunk_steps, progress)
    net, T, fixed = program.net, batch.timesteps, program.fixed
    vth_mant, input_bits, input_scale, lanes = program.vth_mant, program.input_bits, program.input_scale, program.lanes
    x = batch.x.numpy().astype(np.float32)  # [batch, *input_shape], checked by the driver
    B = x.shape[0]
    perm_in = ir_to_lava_perm(net.input_shape)
    direct = batch.const
    if direct:  # [B, 1, n]: the same current at every step
        e = x.reshape(B, 1, -1)[:, :, perm_in]
    else:
        e = batch.encoded.numpy().astype(np.float32).reshape(T, B, -1).transpose(1, 0, 2)[:, :, perm_in]
    # fixed point: each sample's own quantisation step (never the batch's: one outsized sample must not
    # flush the others to zero); samples that share a step share a Lava run
    groups = [(1.0, np.arange(B))]
    if fixed and direct:
        e = np.array(e, dtype=np.float64)
        steps = np.empty(B)
        for i in range(B):
            signed = bool((x[i] < 0).any())
            levels = 2 ** (input_bits - 1) - 1 if signed else 2 ** input_bits - 1
            steps[i] = float(input_scale) if input_scale else _sample_step(x[i], levels)
            e[i] = np.clip(np.round(e[i] / steps[i]), -levels if signed else 0, levels)
        if not input_scale:  # an all-zero sample quantises to zero under any step: it joins the largest run
            zero = ~np.abs(x.reshape(B, -1)).any(1)
            if zero.any() and not zero.all():
                u, c = np.unique(steps[~zero], return_counts=True)
                steps[zero] = u[c.argmax()]
        groups = [(float(st), np.flatnonzero(steps == st)) for st in np.unique(steps)]
    bs = B if not program.batch_size else int(program.batch_size)
    auto = lanes is None
    if auto:
        lanes = auto_lanes(net, bs)
    outs = np.zeros((B, net.num_classes), np.float64)
    traces = np.zeros((T, B, net.num_classes), np.float64) if record_trace else None
    counts, events, sats, amaxes = {}, {}, {}, {}
    qreport, nproc, used, lava_steps, runs = None, 0, 1, 0, 0
    for input_step, idx in groups:
        for s in range(0, len(idx), bs):
            sel = idx[s:s + bs]
            b = len(sel)
            nl = min(lanes, b)
            nl = -(-b // -(-b // nl))  # as many windows as nl lanes need, the samples spread evenly over them
            graph = _Graph(net, e[sel], T, fixed, vth_mant, input_step, graded_input=True, lanes=nl, direct=direct)
            nproc = 2 + len(graph.procs) + graph.n_synapse_procs
            used = max(used, graph.L)
            lava_steps += graph.total
            runs += 1
            out, tr, c, ev, sat, amax = _run_lava(graph, program.precision, chunk_steps, progress, record_trace)
            outs[sel] = out
            if record_trace:
                traces[:, sel] = tr
            for k, v in c.items():
                counts[k] = counts.get(k, 0.0) + v
            for k, v in ev.items():
                events[k] = events.get(k, 0.0) + v
            for k, v in sat.items():
                sats[k] = sats.get(k, 0) + v
            for k, v in amax.items():
                amaxes[k] = max(amaxes.get(k, 0.0), v)
            if qreport is None or len(sel) > qreport[1]:
                qreport = (graph.qreport, len(sel))
    qreport = qreport[0] if qreport else None
    nz = (e != 0).sum(axis=(0, 1)).astype(np.float64) * (T if direct else 1)
    events[INPUT] = nz[np.argsort(perm_in)]  # the quantised input's events (fixed point), in IR order
    extras = {"lava_processes": nproc,
              "lava_steps_per_sample": T,
              "lava_lanes": used,  # samples side by side per process (the largest run's)
              "lava_steps": lava_steps,  # Lava time steps simulated, all runs
              "lava_runs": runs,  # Lava runtimes started (one per batch_size chunk and fixed-point input step)
              "lava_input_steps": [g[0] for g in groups] if fixed and direct else None}
    if fixed:
        import pandas as pd

        df = pd.DataFrame(qreport)
        df["v_saturations"] = [sats.get(r, 0) for r in df["layer"]]
        df["max_abs_a_in"] = [amaxes.get(r, float("nan")) for r in df["layer"]]
        df["a_in_over_16bit"] = df["max_abs_a_in"] > 2 ** 15 - 1
        extras["quantization"] = df
    return Activity(output=outs.astype(np.float32), trace=traces.astype(np.float32) if record_trace else None,
                    events=events, spike_counts=counts, extras=extras)


def _simulate_transformer(program: _TransformerProgram, batch, record_trace: bool, chunk_steps, progress) -> Activity:
    from neurosim.backends._lava_transformer import simulate_transformer

    if chunk_steps is not None or progress is not None:
        raise NeurosimError("lava runs a network with Transformer operators in one piece: chunk_steps and progress "
                            "apply to networks without them")
    res = simulate_transformer(program.net, batch.x.numpy(), batch.timesteps, program.precision,
                               record_trace=record_trace, batch_size=program.batch_size, lanes=program.lanes,
                               encoded=None if batch.const else batch.encoded, **program.options)
    return Activity(output=res.output, trace=res.trace, spike_counts=res.spike_counts,
                    synops={k: v * res.batch for k, v in res.synops.items()}, extras=res.extras)


run = register_backend("lava", precisions=("float", "fixed"),
                       description="Lava processes (Dense/Conv + subtractive-reset neurons) on Loihi2SimCfg, "
                                   "float or bit-accurate fixed point", prepare=prepare, simulate=simulate)
