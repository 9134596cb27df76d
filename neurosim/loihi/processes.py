"""Lava Processes (specs) and ProcessModels (float and bit-accurate fixed point) that Lava lacks.

Spec apart from implementation, as in ``lava/proc/lif/process.py`` + ``models.py``: each Process
declares ports and Vars; a ``floating_pt`` and a ``fixed_pt`` model implement it and
``Loihi2SimCfg(select_tag=...)`` picks one.

**Lanes.** Every process here carries ``lanes`` samples side by side: its ports and state have a
leading lane axis, ``(lanes, *shape)``, while its parameters (weights, thresholds, biases) have the
per-sample shape and are shared by the lanes. So one Lava time step (one synchronised round of
messages between the OS processes) advances ``lanes`` samples. Sample windows (below) still run
samples back to back in time: with ``W`` windows of ``period`` steps, lane ``l`` of window ``w``
holds sample ``w * lanes + l``; the lanes past the last sample (``samples``) of the last window are
padding and are never counted. Every lane is computed by the same code on the same shapes, whatever
the number of lanes, so a run with ``lanes=k`` gives exactly the result of ``lanes=1``: the synaptic
sums run over the inputs in one fixed order per lane (:func:`dense_lanes`, a numba kernel; a BLAS
matrix product over the lanes would sum in an order that depends on the number of lanes), and a
convolution is one BLAS product per lane of the same shape (``np.matmul`` over a stack).

* :class:`ConversionNeurons`: IF/LIF with **reset by subtraction** (or to ``v_reset``), per-neuron
  threshold and bias, initial membrane ``v_init``, and a *sample window*: every ``period`` steps
  after ``offset`` the membrane is set back to ``v_init``, so many samples run back to back in one
  Lava run (Lava's ``LIF`` resets to zero and has one scalar ``vth``). Float::

      v <- leak * v + a_in + bias;  s = v > vth;  v <- v - vth * s

  **Signed** populations (``signed=1``, the IR's signed IF neuron) also keep each neuron's net spike
  count ``C`` (restarted with the membrane at every sample window) and emit ``s = -1`` when
  ``s == 0 and v < 0 and C > 0``; ``v <- v - vth * s`` then adds ``vth`` back and ``C <- C + s``.
  Their spikes are graded messages (-1/0/1, Loihi 2's signed graded spikes): the synapses they feed
  need ``num_message_bits > 0`` (with 0 a synapse reads ``s_in`` as bool, as Lava's Dense/Conv do).
  ``spike_count`` counts events ``|s|``, summed over the real lanes.

  Fixed point (Loihi's integer datapath, as ``PyLifModelBitAcc``): 24-bit ``v``, the synaptic input
  MSB-aligned by ``a_in << 6``, threshold ``vth_mant << 6``, bias ``bias_mant << bias_exp``, 12-bit
  decay ``v <- sign(v) * ((|v| * (4096 - dv)) >> 12)``; ``v`` saturates at ``+-(2**23 - 1)`` and the
  saturations inside sample windows are counted (``sat_count``). A -1 spike fires only at ``v < 0``
  and adds ``vth_mant << 6 <= 2**23 - 64``, so ``v`` stays inside its 24-bit range.
* :class:`SpikeMaxPool`: the IR's count-gated max-pool, ``y_t = maxpool(C_t) - maxpool(C_{t-1})``
  with signed running counts ``C`` (so ``y`` is -1 when a window's max falls; no delay: it sends in
  the step it receives); ``spike_count`` counts events ``|y|``.
* :class:`Delay`: holds a message for ``delay`` steps; aligns residual branches whose paths have
  fewer synaptic layers (synapses delay one step each).
* :class:`LaneDense`: Lava's ``Dense`` (``proc/dense/models.py``) with lanes: sends at step t what it
  computed from the input of step t-1; float ``a = W s``; fixed point ``a = (W_int s) << weight_exp``
  (arithmetic right shift for negative exponents) on 8-bit weights clipped and truncated by Lava's
  own ``weightutils`` as ``PyDenseModelBitAcc`` does. A lane whose input equals the previous step's
  (a direct-current input holds for a whole window) keeps its previous sum.
* :class:`LaneConv`: Lava's ``Conv`` with lanes; the fixed-point model applies ``weight_exp``
  (lava-nc 0.10's ``PyConvModelFixed`` ignores it, see ``proc/conv/models.py``) as ``PyDenseModelBitAcc``
  does and wraps to 24 bits (``signed_clamp``). Weights are in Lava's (C_out, X, Y, C_in) flipped layout.
* :class:`LaneSource`: the encoded input, one message per step: ``data[k]`` for ``k = (t - 1) //
  repeat`` (a direct-current input is stored once per window, ``repeat = period``), zeros after.

All tensors use Lava's layout behind the lane axis: (X, Y, C) = (W, H, C) for 3-D maps.
"""
from __future__ import annotations

import os
import sys
import traceback

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.conv import utils as conv_utils

V_BITS = 24
V_MAX = 2 ** (V_BITS - 1) - 1
ACT_SHIFT = 6  # Loihi MSB-aligns synaptic input and threshold by 6 bits (PyLifModelBitAcc)
DECAY_SHIFT = 12


# ---- results in shared memory ---------------------------------------------------------------------------

_SHARED: dict[int, np.ndarray] = {}
_NEXT_KEY = [1]


def shared_array(shape, dtype=np.float64) -> tuple[int, np.ndarray]:
    """``(key, array)``: a zeroed array in an anonymous shared mapping (``MAP_SHARED``, no file and no
    ``/dev/shm`` name, so nothing can be left behind) that the Lava workers forked after this call
    write and this process reads. Lava 0.10 reads a Var back one scalar per message
    (``PyLoihiProcessModel._get_var``: "FIXME: send a whole vector"), about 50 us each: reading the
    readout of 1,000 samples that way took longer than simulating them. :func:`release` frees it."""
    import mmap

    n = int(np.prod(shape))
    buf = mmap.mmap(-1, max(1, n * np.dtype(dtype).itemsize), flags=mmap.MAP_SHARED)
    arr = np.frombuffer(buf, dtype, count=n).reshape(shape)
    key = _NEXT_KEY[0]
    _NEXT_KEY[0] += 1
    _SHARED[key] = arr
    return key, arr


def shared(key) -> np.ndarray:
    """The shared array ``key`` (in a worker: the one its parent created before forking it)."""
    return _SHARED[int(np.ravel(key)[0])]


def release(*keys) -> None:
    for k in keys:
        _SHARED.pop(int(k), None)


# ---- lane kernels (numpy and numba; no torch: see _windows) -------------------------------------------

_KERNELS: dict = {}


def _dense_py(s, wt, out):  # s [L, n_in], wt [n_in, n_out] -> out [L, n_out]; compiled by numba
    L, n_in = s.shape
    n_out = wt.shape[1]
    for lane in range(L):
        for i in range(n_out):
            out[lane, i] = 0
        for j in range(n_in):
            v = s[lane, j]
            if v != 0:
                for i in range(n_out):
                    out[lane, i] += v * wt[j, i]
    return out


def _dense_kernel():
    """:func:`_dense_py` compiled by numba on first use (so importing this module, which Lava's
    compiler does, stays cheap); cached on disk like the systolic kernels."""
    k = _KERNELS.get("dense")
    if k is None:
        import numba

        k = _KERNELS["dense"] = numba.njit(nogil=True, cache=True)(_dense_py)
    return k


def dense_lanes(s: np.ndarray, wt: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``out[l] = wt.T @ s[l]`` for every lane ``l`` (``s`` [L, n_in], ``wt`` [n_in, n_out], one dtype:
    float64 or int64), summed over the nonzero inputs in index order: the same additions in the same
    order for every lane and every ``L`` (bitwise reproducible), and proportional to the number of
    spikes rather than to ``n_in``."""
    if out is None:
        out = np.empty((s.shape[0], wt.shape[1]), wt.dtype)
    return _dense_kernel()(np.ascontiguousarray(s, wt.dtype), wt, out)


def warm_up() -> None:
    """Compile the lane kernels in this process, before Lava forks its workers (they inherit them)."""
    for dt in (np.float64, np.int64):
        dense_lanes(np.ones((1, 2), dt), np.ones((2, 2), dt))


def _windows(x: np.ndarray, k, stride, padding, dilation=(1, 1)) -> np.ndarray:
    """[..., C, H, W] -> [..., C, H', W', kh, kw] sliding windows (zero padding), numpy only.

    Process models run in forked workers, where torch's thread pool (initialised in the parent)
    can deadlock; so no torch here.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, stride, padding, dilation
    x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)])
    win = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(-2, -1))
    return win[..., ::sh, ::sw, ::dh, ::dw]


def conv_lanes(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """Cross-correlation (torch's conv2d) of every lane of x [L, C, H, W] with w [C_out, C_in/g, kh, kw],
    float64: one matrix product per lane and group, each of the same shape whatever ``L`` (``np.matmul``
    over a stack), so a lane's result does not depend on the number of lanes."""
    win = _windows(x.astype(np.float64), w.shape[2:], stride, padding, dilation)  # [L, C, H', W', kh, kw]
    L, _, ho, wo = win.shape[:4]
    co, cg = w.shape[0], w.shape[1]
    og = co // groups
    out = np.empty((L, co, ho, wo))
    for g in range(groups):
        wg = w[g * og:(g + 1) * og].astype(np.float64).reshape(og, -1)  # [og, cg*kh*kw]
        cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(L, ho * wo, -1)
        out[:, g * og:(g + 1) * og] = np.matmul(cols, wg.T).transpose(0, 2, 1).reshape(L, og, ho, wo)
    return out


class _FailFast(PyLoihiProcessModel):
    """Lava 0.10 deadlocks when a ProcessModel raises (the runtime waits for the healthy workers,
    which wait for the failed one). Ours print the traceback and end their worker instead, which
    the Lava backend's watchdog detects (``neurosim.backends.lava._watchdog``)."""

    def run_spk(self):
        try:
            self._run_spk()
        except Exception:  # noqa: BLE001 - any failure of the model ends the worker loudly
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(70)


def _ints(a) -> tuple[int, ...]:
    return tuple(int(v) for v in np.ravel(a))


def _window(model) -> tuple[bool, bool, int]:
    """(starts a sample window now, inside a window, real lanes in this window) for the current step."""
    k = model.time_step - 1 - int(model.offset[0])
    period = int(model.period[0])
    if not 0 <= k < period * int(model.windows[0]):
        return False, False, 0
    lanes = int(model.lanes[0])
    valid = min(lanes, int(model.samples[0]) - (k // period) * lanes)
    return k % period == 0, True, valid


def _window_vars(proc, lanes, samples, period, offset, windows) -> None:
    proc.lanes = Var(shape=(1,), init=int(lanes))
    proc.samples = Var(shape=(1,), init=int(samples if samples is not None else lanes * windows))
    proc.period = Var(shape=(1,), init=int(period))
    proc.offset = Var(shape=(1,), init=int(offset))
    proc.windows = Var(shape=(1,), init=int(windows))


_WINDOW_TYPES = dict(lanes=LavaPyType(np.ndarray, int), samples=LavaPyType(np.ndarray, int),
                     period=LavaPyType(np.ndarray, int), offset=LavaPyType(np.ndarray, int),
                     windows=LavaPyType(np.ndarray, int))


# ---- neurons ------------------------------------------------------------------------------------------

class ConversionNeurons(AbstractProcess):
    """IF/LIF population with subtractive reset and per-sample windows (module docstring), ``lanes``
    samples side by side.

    ``shape``: one sample's population shape (Lava layout); ports and ``v``/``count`` are
    ``(lanes, *shape)``. ``vth``, ``bias``, ``v_init``: arrays of ``shape`` (float model: real values;
    fixed model: ``vth`` is the 17-bit mantissa, ``bias`` the 13-bit mantissa with ``bias_exp``,
    ``v_init`` in 24-bit state units). ``dv``: float ``1 - leak``; fixed: the 12-bit decay
    ``round(4096 (1 - leak))``. ``reset_zero``: 1 for reset to ``v_reset`` instead of subtraction.
    ``period``/``offset``/``windows``: window ``w`` occupies steps ``offset + w*period .. offset +
    (w+1)*period - 1`` (0-based) and holds samples ``w*lanes .. w*lanes + lanes - 1`` (those below
    ``samples``); spike events are counted (``spike_count``, per neuron over the real lanes) only
    inside windows. ``signed``: 1 for signed neurons (-1 spikes, module docstring); ``count`` holds
    their net count ``C`` in the current window.
    """

    def __init__(self, *, shape, vth, bias, v_init, dv=0.0, bias_exp=0, reset_zero=0, v_reset=0.0,
                 period=1, offset=0, windows=1, signed=0, lanes=1, samples=None, name=None):
        shape = tuple(shape)
        lane_shape = (int(lanes), *shape)
        super().__init__(shape=lane_shape, name=name)
        self.a_in = InPort(shape=lane_shape)
        self.s_out = OutPort(shape=lane_shape)
        self.v = Var(shape=lane_shape, init=np.broadcast_to(v_init, lane_shape).copy())
        self.vth = Var(shape=shape, init=np.broadcast_to(vth, shape).copy())
        self.bias = Var(shape=shape, init=np.broadcast_to(bias, shape).copy())
        self.bias_exp = Var(shape=(1,), init=int(bias_exp))
        self.v_init = Var(shape=shape, init=np.broadcast_to(v_init, shape).copy())
        self.dv = Var(shape=(1,), init=dv)
        self.reset_zero = Var(shape=(1,), init=int(reset_zero))
        self.v_reset = Var(shape=(1,), init=v_reset)
        _window_vars(self, lanes, samples, period, offset, windows)
        self.signed = Var(shape=(1,), init=int(signed))
        self.count = Var(shape=lane_shape, init=0)
        n = int(np.prod(shape))
        self._shape = shape
        # spike events per neuron (Lava layout, summed over the real lanes), v saturations, largest |a_in|
        self.key, self.stats = shared_array((n + 2,))
        self.stats_key = Var(shape=(1,), init=self.key)

    @property
    def spike_count(self) -> np.ndarray:
        return self.stats[:-2].reshape(self._shape)

    @property
    def sat_count(self) -> int:
        return int(self.stats[-2])

    @property
    def a_max(self) -> float:
        return float(self.stats[-1])


def _signed_spikes(model, s: np.ndarray, negative: np.ndarray, start: bool) -> np.ndarray:
    """The signed neuron's spikes: ``s`` (0/1, int) becomes -1 where ``s == 0``, the membrane is
    ``negative`` and the net count ``C > 0``; ``C`` restarts at 0 with every sample window and is
    updated here (``C <- C + s``)."""
    if start:
        model.count[:] = 0
    s = s - ((s == 0) & negative & (model.count > 0))
    model.count[:] += s
    return s


class _NeuronTypes(_FailFast):
    period: np.ndarray = _WINDOW_TYPES["period"]
    offset: np.ndarray = _WINDOW_TYPES["offset"]
    windows: np.ndarray = _WINDOW_TYPES["windows"]
    lanes: np.ndarray = _WINDOW_TYPES["lanes"]
    samples: np.ndarray = _WINDOW_TYPES["samples"]
    count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    stats_key: np.ndarray = LavaPyType(np.ndarray, int)
    _stats = None

    def _count(self, s: np.ndarray, valid: int) -> None:
        """Spike events of the real lanes into the shared ``stats`` (parent reads it, :func:`shared_array`)."""
        if self._stats is None:
            self._stats = shared(self.stats_key)
        self._stats[:-2] += np.abs(s[:valid]).sum(0).reshape(-1)


@implements(proc=ConversionNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyConversionNeuronsFloat(_NeuronTypes):
    """Float32 update, the IR's equations verbatim."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, np.float32)
    vth: np.ndarray = LavaPyType(np.ndarray, np.float32)
    bias: np.ndarray = LavaPyType(np.ndarray, np.float32)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, int)
    v_init: np.ndarray = LavaPyType(np.ndarray, np.float32)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    reset_zero: np.ndarray = LavaPyType(np.ndarray, int)
    v_reset: np.ndarray = LavaPyType(np.ndarray, float)
    signed: np.ndarray = LavaPyType(np.ndarray, int)

    def _run_spk(self):
        a = self.a_in.recv().astype(np.float32)
        start, inside, valid = _window(self)
        v = self.v_init if start else self.v  # v_init broadcasts over the lanes
        leak = np.float32(1.0 - self.dv[0])
        v = (v * leak if leak != 1 else v) + a + self.bias
        s = (v > self.vth).astype(np.int64)
        if self.signed[0]:
            s = _signed_spikes(self, s, v < 0, start)
        if self.reset_zero[0]:
            v = np.where(s > 0, np.float32(self.v_reset[0]), v)
        else:
            v = v - self.vth * s.astype(np.float32)
        self.v[:] = v
        if inside:
            self._count(s, valid)
        self.s_out.send(s.astype(float))


@implements(proc=ConversionNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyConversionNeuronsFixed(_NeuronTypes):
    """Loihi's integer datapath (module docstring), bit-compatible with ``PyLifModelBitAcc`` for the
    same parameters up to the reset (subtractive here, to zero there)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=2)  # -1/0/1 (2 bits, signed)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=3)
    v_init: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    dv: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=12)
    reset_zero: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    v_reset: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    signed: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)

    def _run_spk(self):
        a = self.a_in.recv().astype(np.int64)
        start, inside, valid = _window(self)
        v = np.broadcast_to(self.v_init, a.shape) if start else self.v
        v = v.astype(np.int64)
        dv = int(self.dv[0])
        if dv:
            d = v * ((1 << DECAY_SHIFT) - dv)
            v = np.sign(d) * np.right_shift(np.abs(d), DECAY_SHIFT)
        bias = np.left_shift(self.bias.astype(np.int64), int(self.bias_exp[0]))
        v = v + np.left_shift(a, ACT_SHIFT) + bias
        over = (v > V_MAX) | (v < -V_MAX)
        if inside:
            if self._stats is None:
                self._stats = shared(self.stats_key)
            self._stats[-2] += int(over[:valid].sum())
            if a.size:
                self._stats[-1] = max(self._stats[-1], float(np.abs(a[:valid]).max()))
        if over.any():
            v = np.clip(v, -V_MAX, V_MAX)
        vth = np.left_shift(self.vth.astype(np.int64), ACT_SHIFT)
        s = (v > vth).astype(np.int64)
        if self.signed[0]:
            s = _signed_spikes(self, s, v < 0, start)
        if self.reset_zero[0]:
            v = np.where(s > 0, int(self.v_reset[0]), v)
        else:
            v = v - vth * s  # a -1 spike (only at v < 0) adds vth <= 2**23 - 64 back: no overflow
        self.v[:] = v
        if inside:
            self._count(s, valid)
        self.s_out.send(s.astype(np.int32))


# ---- spiking max-pool ---------------------------------------------------------------------------------

class SpikeMaxPool(AbstractProcess):
    """Count-gated spiking max-pool over ``lanes`` (X, Y, C) spike maps (signed spikes allowed: the
    output is -1 when a window's max falls); counts restart every ``period`` (windows as in
    :class:`ConversionNeurons`)."""

    def __init__(self, *, in_shape, out_shape, kernel_size, stride, padding, period=1, offset=0, windows=1,
                 lanes=1, samples=None, name=None):
        super().__init__(name=name)
        self.s_in = InPort(shape=(int(lanes), *in_shape))
        self.s_out = OutPort(shape=(int(lanes), *out_shape))
        self.counts = Var(shape=(int(lanes), *in_shape), init=0)
        self.key, self.stats = shared_array((int(np.prod(out_shape)),))  # events per output element
        self.stats_key = Var(shape=(1,), init=self.key)
        self._out_shape = tuple(out_shape)
        self.kernel_size = Var(shape=(2,), init=np.array(kernel_size))
        self.stride = Var(shape=(2,), init=np.array(stride))
        self.padding = Var(shape=(2,), init=np.array(padding))
        _window_vars(self, lanes, samples, period, offset, windows)

    @property
    def spike_count(self) -> np.ndarray:
        return self.stats.reshape(self._out_shape)


class _PySpikeMaxPoolBase(_FailFast):
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    stats_key: np.ndarray = LavaPyType(np.ndarray, int)
    _stats = None
    kernel_size: np.ndarray = LavaPyType(np.ndarray, int)
    stride: np.ndarray = LavaPyType(np.ndarray, int)
    padding: np.ndarray = LavaPyType(np.ndarray, int)
    period: np.ndarray = _WINDOW_TYPES["period"]
    offset: np.ndarray = _WINDOW_TYPES["offset"]
    windows: np.ndarray = _WINDOW_TYPES["windows"]
    lanes: np.ndarray = _WINDOW_TYPES["lanes"]
    samples: np.ndarray = _WINDOW_TYPES["samples"]

    _pooled = None  # maxpool(C) of the previous step

    def _pool(self, c: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw), (ph, pw) = _ints(self.kernel_size), _ints(self.stride), _ints(self.padding)
        L, X, Y, C = c.shape
        if (kh, kw) == (sh, sw) and ph == pw == 0 and X % kw == 0 and Y % kh == 0:  # tiles: one reshape
            return c.reshape(L, X // kw, kw, Y // kh, kh, C).max(axis=(2, 4))
        # (L, X, Y, C) -> (L, C, H=Y, W=X); kernel/stride/padding arrive in IR (H, W) order
        win = _windows(c.transpose(0, 3, 2, 1), (kh, kw), (sh, sw), (ph, pw))
        return win.max(axis=(-2, -1)).transpose(0, 3, 2, 1)

    def _run_spk(self):
        s = self.s_in.recv()
        start, inside, valid = _window(self)
        if start:
            self.counts[:] = 0
        before = self._pool(self.counts) if start or self._pooled is None else self._pooled
        self.counts[:] += np.rint(s).astype(np.int64)  # signed: a -1 spike lowers the count
        self._pooled = self._pool(self.counts)
        out = self._pooled - before
        if inside:
            if self._stats is None:
                self._stats = shared(self.stats_key)
            self._stats += np.abs(out[:valid]).sum(0).reshape(-1)
        self.s_out.send(out.astype(self._out_dtype))


@implements(proc=SpikeMaxPool, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeMaxPoolFloat(_PySpikeMaxPoolBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    _out_dtype = float


@implements(proc=SpikeMaxPool, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySpikeMaxPoolFixed(_PySpikeMaxPoolBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=2)  # -1/0/1
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=2)
    _out_dtype = np.int32


# ---- delay --------------------------------------------------------------------------------------------

class Delay(AbstractProcess):
    """Sends at step t what it received at step t - ``delay`` (``shape`` includes the lane axis)."""

    def __init__(self, *, shape, delay: int, name=None):
        super().__init__(name=name)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buffer = Var(shape=(int(delay), *shape), init=0)


class _PyDelayBase(_FailFast):
    def _run_spk(self):
        x = self.s_in.recv()
        d = self.buffer.shape[0]
        i = (self.time_step - 1) % d
        self.s_out.send(self.buffer[i].copy())
        self.buffer[i] = x


@implements(proc=Delay, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDelayFloat(_PyDelayBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    buffer: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=Delay, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyDelayFixed(_PyDelayBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    buffer: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)


# ---- synapses -----------------------------------------------------------------------------------------

class LaneDense(AbstractProcess):
    """Dense synapses ``weights`` [n_out, n_in] (Lava's flat C order of ``in_shape``/``out_shape``)
    applied to every lane; ``s_in`` is ``(lanes, *in_shape)``, ``a_out`` ``(lanes, *out_shape)``."""

    def __init__(self, *, weights, in_shape, out_shape, lanes=1, weight_exp=0, num_message_bits=0, name=None):
        super().__init__(name=name)
        w = np.asarray(weights)
        if w.shape != (int(np.prod(out_shape)), int(np.prod(in_shape))):
            raise ValueError(f"LaneDense: weights {w.shape} do not map {tuple(in_shape)} to {tuple(out_shape)}")
        self.s_in = InPort(shape=(int(lanes), *in_shape))
        self.a_out = OutPort(shape=(int(lanes), *out_shape))
        self.weights = Var(shape=w.shape, init=w)
        self.weight_exp = Var(shape=(1,), init=int(weight_exp))
        self.num_message_bits = Var(shape=(1,), init=int(num_message_bits))
        self.a_buff = Var(shape=(int(lanes), *out_shape), init=0)


class _PyLaneDenseBase(_FailFast):
    weight_exp: np.ndarray = LavaPyType(np.ndarray, int)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, int)
    _wt = None
    _last = None
    _acc = None

    def _weights_t(self) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(self.weights, np.float64).T)

    def _scale(self, acc: np.ndarray) -> np.ndarray:
        return acc

    def _run_spk(self):
        self.a_out.send(self.a_buff)  # what the input of the previous step produced (Lava's Dense)
        raw = self.s_in.recv()
        if self._last is not None and np.array_equal(raw, self._last):
            return  # the same input as the step before: the same sums (a direct input holds all window)
        self._last = raw
        s = raw.reshape(raw.shape[0], -1)
        if self.num_message_bits[0] == 0:
            s = s != 0  # binary spikes, as Lava's Dense reads s_in.astype(bool)
        if self._wt is None:
            self._wt = self._weights_t()
        s = s.astype(self._wt.dtype)
        self._acc = dense_lanes(s, self._wt, self._acc)
        self.a_buff = self._scale(self._acc).reshape(self.a_buff.shape)


@implements(proc=LaneDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLaneDenseFloat(_PyLaneDenseBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)

    def _scale(self, acc):
        return acc.copy()


@implements(proc=LaneDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLaneDenseFixed(_PyLaneDenseBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def _weights_t(self):
        # PyDenseModelBitAcc: 8-bit weights clipped and LSB-truncated by Lava's own rules
        from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

        mode = determine_sign_mode(self.weights)
        w = truncate_weights(clip_weights(self.weights, mode, num_bits=8), mode, 8)
        return np.ascontiguousarray(np.asarray(w, np.int64).T)

    def _scale(self, acc):
        e = int(self.weight_exp[0])
        return (np.left_shift(acc, e) if e > 0 else np.right_shift(acc, -e)).astype(np.int32)


class LaneConv(AbstractProcess):
    """Lava's ``Conv`` (weights (C_out, X, Y, C_in/groups), flipped; stride/padding/dilation in (X, Y)
    order) applied to every lane: ``s_in`` ``(lanes, *in_shape)``, ``a_out`` ``(lanes, *out_shape)``."""

    def __init__(self, *, weight, in_shape, out_shape, stride, padding, dilation, groups, lanes=1,
                 weight_exp=0, num_message_bits=0, name=None):
        super().__init__(name=name)
        self.s_in = InPort(shape=(int(lanes), *in_shape))
        self.a_out = OutPort(shape=(int(lanes), *out_shape))
        self.weight = Var(shape=np.shape(weight), init=np.asarray(weight))
        self.stride = Var(shape=(2,), init=np.array(stride))
        self.padding = Var(shape=(2,), init=np.array(padding))
        self.dilation = Var(shape=(2,), init=np.array(dilation))
        self.groups = Var(shape=(1,), init=int(groups))
        self.weight_exp = Var(shape=(1,), init=int(weight_exp))
        self.num_message_bits = Var(shape=(1,), init=int(num_message_bits))
        self.a_buf = Var(shape=(int(lanes), *out_shape), init=0)


class _PyLaneConvBase(_FailFast):
    stride: np.ndarray = LavaPyType(np.ndarray, int)
    padding: np.ndarray = LavaPyType(np.ndarray, int)
    dilation: np.ndarray = LavaPyType(np.ndarray, int)
    groups: np.ndarray = LavaPyType(np.ndarray, int)
    weight_exp: np.ndarray = LavaPyType(np.ndarray, int)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, int)
    _last = None

    def _conv(self, s: np.ndarray) -> np.ndarray:
        """Lava's Conv semantics (utils.conv: (X, Y, C) data, flipped (C_out, X, Y, C_in) kernel) per lane."""
        x = s.astype(np.float64).transpose(0, 3, 2, 1)  # (L, C, H, W)
        w = np.asarray(self.weight)[:, ::-1, ::-1].transpose(0, 3, 2, 1)
        return conv_lanes(x, w, _ints(self.stride[::-1]), _ints(self.padding[::-1]), _ints(self.dilation[::-1]),
                          int(self.groups[0])).transpose(0, 3, 2, 1)

    def _run_spk(self) -> None:
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv()
        if self.num_message_bits[0] == 0:
            s_in = s_in != 0
        if self._last is not None and np.array_equal(s_in, self._last):
            return  # the same input as the step before: the same currents
        self._last = s_in.copy()
        self.a_buf = self._finish(self._conv(s_in))


@implements(proc=LaneConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLaneConvFloat(_PyLaneConvBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buf: np.ndarray = LavaPyType(np.ndarray, float)
    weight: np.ndarray = LavaPyType(np.ndarray, float)

    def _finish(self, acc):
        return acc


@implements(proc=LaneConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLaneConvFixed(_PyLaneConvBase):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weight: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def _finish(self, acc):
        # integer convolution in float64 (exact while |sum| < 2**53; Lava's utils.conv uses float32)
        acc = np.rint(acc).astype(np.int64)
        e = int(self.weight_exp[0])
        acc = np.left_shift(acc, e) if e >= 0 else np.right_shift(acc, -e)
        return conv_utils.signed_clamp(acc, bits=24).astype(np.int32)  # Lava's 24-bit wrap-around


# ---- readout ------------------------------------------------------------------------------------------

class LaneSink(AbstractProcess):
    """Records what arrives at ``a_in`` (``shape``, lanes first) at every step ``t <= buffer`` into the
    shared array ``data`` [*shape, buffer] (Lava's ``io.sink.RingBuffer``, read without Lava's
    one-scalar-per-message Var transfer: :func:`shared_array`)."""

    def __init__(self, *, shape, buffer: int, name=None):
        super().__init__(name=name)
        self.a_in = InPort(shape=tuple(shape))
        self.key, self.data = shared_array((*shape, int(buffer)))
        self.data_key = Var(shape=(1,), init=self.key)


class _PyLaneSinkBase(_FailFast):
    data_key: np.ndarray = LavaPyType(np.ndarray, int)
    _data = None

    def _run_spk(self):
        x = self.a_in.recv()
        if self._data is None:
            self._data = shared(self.data_key)
        if self.time_step <= self._data.shape[-1]:
            self._data[..., self.time_step - 1] = x


@implements(proc=LaneSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLaneSinkFloat(_PyLaneSinkBase):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=LaneSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLaneSinkFixed(_PyLaneSinkBase):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)


# ---- input --------------------------------------------------------------------------------------------

class LaneSource(AbstractProcess):
    """Sends ``data[(t - 1) // repeat]`` at step ``t`` (``data`` [S, lanes, *shape]) and zeros after the
    last of them (module docstring)."""

    def __init__(self, *, data, repeat=1, name=None):
        super().__init__(name=name)
        data = np.asarray(data)
        self.s_out = OutPort(shape=data.shape[1:])
        self.data = Var(shape=data.shape, init=data)
        self.repeat = Var(shape=(1,), init=int(repeat))


class _PyLaneSourceBase(_FailFast):
    repeat: np.ndarray = LavaPyType(np.ndarray, int)

    def _run_spk(self):
        k = (self.time_step - 1) // int(self.repeat[0])
        self.s_out.send(self.data[k] if k < self.data.shape[0] else np.zeros(self.data.shape[1:], self.data.dtype))


@implements(proc=LaneSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLaneSourceFloat(_PyLaneSourceBase):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    data: np.ndarray = LavaPyType(np.ndarray, np.float32)


@implements(proc=LaneSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLaneSourceFixed(_PyLaneSourceBase):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    data: np.ndarray = LavaPyType(np.ndarray, np.int32)


def model_map(procs, precision: str) -> dict:
    """``{process: ProcessModel class}`` for ``Loihi2SimCfg(exception_proc_model_map=...)``: Lava's
    compiler then skips its search for models, which re-imports (compiles from source) every module
    next to each Process's module for every Process (about 0.1 s per Process here)."""
    fixed = precision == "fixed"
    models = {ConversionNeurons: (PyConversionNeuronsFloat, PyConversionNeuronsFixed),
              SpikeMaxPool: (PySpikeMaxPoolFloat, PySpikeMaxPoolFixed), Delay: (PyDelayFloat, PyDelayFixed),
              LaneDense: (PyLaneDenseFloat, PyLaneDenseFixed), LaneConv: (PyLaneConvFloat, PyLaneConvFixed),
              LaneSink: (PyLaneSinkFloat, PyLaneSinkFixed), LaneSource: (PyLaneSourceFloat, PyLaneSourceFixed)}
    return {p: models[type(p)][fixed] for p in procs if type(p) in models}
