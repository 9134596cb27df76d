"""Lava Processes (specs) and ProcessModels (float and bit-accurate fixed point) that Lava lacks.

Spec apart from implementation, as in ``lava/proc/lif/process.py`` + ``models.py``: each Process
declares ports and Vars; a ``floating_pt`` and a ``fixed_pt`` model implement it and
``Loihi2SimCfg(select_tag=...)`` picks one.

* :class:`ConversionNeurons`: IF/LIF with **reset by subtraction** (or to ``v_reset``), per-neuron
  threshold and bias, initial membrane ``v_init``, and a *sample window*: every ``period`` steps
  after ``offset`` the membrane is set back to ``v_init``, so many samples run back to back in one
  Lava run (Lava's ``LIF`` resets to zero and has one scalar ``vth``). Float::

      v <- leak * v + a_in + bias;  s = v > vth;  v <- v - vth * s

  **Signed** populations (``signed=1``, the IR's signed IF neuron) also keep each neuron's net spike
  count ``C`` (restarted with the membrane at every sample window) and emit ``s = -1`` when
  ``s == 0 and v < 0 and C > 0``; ``v <- v - vth * s`` then adds ``vth`` back and ``C <- C + s``.
  Their spikes are graded messages (-1/0/1, Loihi 2's signed graded spikes): the synapses they feed
  need ``num_message_bits > 0`` (Lava's Dense/Conv treat ``s_in`` as bool otherwise). ``spike_count``
  counts events ``|s|``.

  Fixed point (Loihi's integer datapath, as ``PyLifModelBitAcc``): 24-bit ``v``, the synaptic input
  MSB-aligned by ``a_in << 6``, threshold ``vth_mant << 6``, bias ``bias_mant << bias_exp``, 12-bit
  decay ``v <- sign(v) * ((|v| * (4096 - dv)) >> 12)``; ``v`` saturates at ``+-(2**23 - 1)`` and the
  saturations are counted (``sat_count``). A -1 spike fires only at ``v < 0`` and adds
  ``vth_mant << 6 <= 2**23 - 64``, so ``v`` stays inside its 24-bit range.
* :class:`SpikeMaxPool`: the IR's count-gated max-pool, ``y_t = maxpool(C_t) - maxpool(C_{t-1})``
  with signed running counts ``C`` (so ``y`` is -1 when a window's max falls; no delay: it sends in
  the step it receives); ``spike_count`` counts events ``|y|``.
* :class:`Delay`: holds a message for ``delay`` steps; aligns residual branches whose paths have
  fewer synaptic layers (Lava's Dense/Conv delay one step each).
* :class:`LoihiConv`: Lava's ``Conv`` with a fixed-point model that applies ``weight_exp`` (lava-nc
  0.10's ``PyConvModelFixed`` ignores it, see ``proc/conv/models.py``) exactly as ``PyDenseModelBitAcc``
  does: ``a = (W_int (*) s) << weight_exp`` (arithmetic right shift for negative exponents). The
  float model is Lava's. Weights are in Lava's (C_out, X, Y, C_in) flipped layout.

All tensors use Lava's layout: (X, Y, C) = (W, H, C) for 3-D populations.
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
from lava.proc.conv import utils as conv_utils  # noqa: F401  (signed_clamp)
from lava.proc.conv.models import AbstractPyConvModel
from lava.proc.conv.process import Conv

V_BITS = 24
V_MAX = 2 ** (V_BITS - 1) - 1
ACT_SHIFT = 6  # Loihi MSB-aligns synaptic input and threshold by 6 bits (PyLifModelBitAcc)
DECAY_SHIFT = 12


class ConversionNeurons(AbstractProcess):
    """IF/LIF population with subtractive reset and per-sample windows (module docstring).

    ``vth``, ``bias``, ``v_init``: arrays of ``shape`` (float model: real values; fixed model:
    ``vth`` is the 17-bit mantissa, ``bias`` the 13-bit mantissa with ``bias_exp``, ``v_init`` in
    24-bit state units). ``dv``: float ``1 - leak``; fixed: the 12-bit decay ``round(4096 (1 - leak))``.
    ``reset_zero``: 1 for reset to ``v_reset`` instead of subtraction. ``period``/``offset``/
    ``windows``: sample ``i`` occupies steps ``offset + i*period .. offset + (i+1)*period - 1``
    (0-based); spike events are counted (``spike_count``) only inside windows. ``signed``: 1 for
    signed neurons (-1 spikes, module docstring); ``count`` holds their net count ``C`` in the current
    window.
    """

    def __init__(self, *, shape, vth, bias, v_init, dv=0.0, bias_exp=0, reset_zero=0, v_reset=0.0,
                 period=1, offset=0, windows=1, signed=0, name=None):
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=np.array(v_init))
        self.vth = Var(shape=shape, init=np.broadcast_to(vth, shape).copy())
        self.bias = Var(shape=shape, init=np.broadcast_to(bias, shape).copy())
        self.bias_exp = Var(shape=(1,), init=int(bias_exp))
        self.v_init = Var(shape=shape, init=np.broadcast_to(v_init, shape).copy())
        self.dv = Var(shape=(1,), init=dv)
        self.reset_zero = Var(shape=(1,), init=int(reset_zero))
        self.v_reset = Var(shape=(1,), init=v_reset)
        self.period = Var(shape=(1,), init=int(period))
        self.offset = Var(shape=(1,), init=int(offset))
        self.windows = Var(shape=(1,), init=int(windows))
        self.signed = Var(shape=(1,), init=int(signed))
        self.count = Var(shape=shape, init=0)
        self.spike_count = Var(shape=shape, init=0)
        self.sat_count = Var(shape=(1,), init=0)
        self.a_max = Var(shape=(1,), init=0)


def _windows(x: np.ndarray, k, stride, padding, dilation=(1, 1)) -> np.ndarray:
    """[C, H, W] -> [C, H', W', kh, kw] sliding windows (zero padding), numpy only.

    Process models run in forked workers, where torch's thread pool (initialised in the parent)
    can deadlock; so no torch here.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, stride, padding, dilation
    x = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    return win[:, ::sh, ::sw, ::dh, ::dw]


def conv_chw(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """Cross-correlation (torch's conv2d) of x [C, H, W] with w [C_out, C_in/g, kh, kw], float64 numpy."""
    win = _windows(x.astype(np.float64), w.shape[2:], stride, padding, dilation)  # [C, H', W', kh, kw]
    co, cg = w.shape[0], w.shape[1]
    outs = []
    for g in range(groups):
        wg = w[g * (co // groups):(g + 1) * (co // groups)].astype(np.float64)
        outs.append(np.einsum("chwij,ocij->ohw", win[g * cg:(g + 1) * cg], wg, optimize=True))
    return np.concatenate(outs, 0)


def _lava_conv(model, s_in: np.ndarray) -> np.ndarray:
    """Lava's Conv semantics (utils.conv: (X, Y, C) data, flipped (C_out, X, Y, C_in) kernel) in numpy."""
    x = s_in.astype(np.float64).transpose(2, 1, 0)
    w = np.asarray(model.weight)[:, ::-1, ::-1].transpose(0, 3, 2, 1)
    return conv_chw(x, w, _ints(model.stride[::-1]), _ints(model.padding[::-1]), _ints(model.dilation[::-1]),
                    int(model.groups[0])).transpose(2, 1, 0)


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


def _window(model) -> tuple[bool, bool]:
    """(starts a sample window now, inside a window) for the current time step."""
    k = model.time_step - 1 - int(model.offset[0])
    period = int(model.period[0])
    inside = 0 <= k < period * int(model.windows[0])
    return inside and k % period == 0, inside


def _signed_spikes(model, s: np.ndarray, negative: np.ndarray, start: bool) -> np.ndarray:
    """The signed neuron's spikes: ``s`` (0/1, int) becomes -1 where ``s == 0``, the membrane is
    ``negative`` and the net count ``C > 0``; ``C`` restarts at 0 with every sample window and is
    updated here (``C <- C + s``)."""
    if start:
        model.count[:] = 0
    s = s - ((s == 0) & negative & (model.count > 0))
    model.count[:] += s
    return s


@implements(proc=ConversionNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyConversionNeuronsFloat(_FailFast):
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
    period: np.ndarray = LavaPyType(np.ndarray, int)
    offset: np.ndarray = LavaPyType(np.ndarray, int)
    windows: np.ndarray = LavaPyType(np.ndarray, int)
    signed: np.ndarray = LavaPyType(np.ndarray, int)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    spike_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    sat_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    a_max: np.ndarray = LavaPyType(np.ndarray, float)

    def _run_spk(self):
        a = self.a_in.recv().astype(np.float32)
        start, inside = _window(self)
        v = self.v_init.copy() if start else self.v
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
            self.spike_count[:] += np.abs(s)
        self.s_out.send(s.astype(float))


@implements(proc=ConversionNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyConversionNeuronsFixed(_FailFast):
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
    period: np.ndarray = LavaPyType(np.ndarray, np.int32)
    offset: np.ndarray = LavaPyType(np.ndarray, np.int32)
    windows: np.ndarray = LavaPyType(np.ndarray, np.int32)
    signed: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    spike_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    sat_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    a_max: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def _run_spk(self):
        a = self.a_in.recv().astype(np.int64)
        start, inside = _window(self)
        v = (self.v_init if start else self.v).astype(np.int64)
        dv = int(self.dv[0])
        if dv:
            d = v * ((1 << DECAY_SHIFT) - dv)
            v = np.sign(d) * np.right_shift(np.abs(d), DECAY_SHIFT)
        bias = np.left_shift(self.bias.astype(np.int64), int(self.bias_exp[0]))
        v = v + np.left_shift(a, ACT_SHIFT) + bias
        over = (v > V_MAX) | (v < -V_MAX)
        if over.any():
            self.sat_count[:] += int(over.sum())
            v = np.clip(v, -V_MAX, V_MAX)
        if a.size:
            self.a_max[:] = max(int(self.a_max[0]), int(np.abs(a).max()))
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
            self.spike_count[:] += np.abs(s)
        self.s_out.send(s.astype(np.int32))


class SpikeMaxPool(AbstractProcess):
    """Count-gated spiking max-pool over a (X, Y, C) spike map (signed spikes allowed: the output is
    -1 when a window's max falls); counts restart every ``period``."""

    def __init__(self, *, in_shape, out_shape, kernel_size, stride, padding, period=1, offset=0, windows=1,
                 name=None):
        super().__init__(name=name)
        self.s_in = InPort(shape=in_shape)
        self.s_out = OutPort(shape=out_shape)
        self.counts = Var(shape=in_shape, init=0)
        self.spike_count = Var(shape=out_shape, init=0)
        self.kernel_size = Var(shape=(2,), init=np.array(kernel_size))
        self.stride = Var(shape=(2,), init=np.array(stride))
        self.padding = Var(shape=(2,), init=np.array(padding))
        self.period = Var(shape=(1,), init=int(period))
        self.offset = Var(shape=(1,), init=int(offset))
        self.windows = Var(shape=(1,), init=int(windows))


class _PySpikeMaxPoolBase(_FailFast):
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    spike_count: np.ndarray = LavaPyType(np.ndarray, np.int64)
    kernel_size: np.ndarray = LavaPyType(np.ndarray, int)
    stride: np.ndarray = LavaPyType(np.ndarray, int)
    padding: np.ndarray = LavaPyType(np.ndarray, int)
    period: np.ndarray = LavaPyType(np.ndarray, int)
    offset: np.ndarray = LavaPyType(np.ndarray, int)
    windows: np.ndarray = LavaPyType(np.ndarray, int)

    def _pool(self, c: np.ndarray) -> np.ndarray:
        # (X, Y, C) -> torch (C, H=Y, W=X); kernel/stride/padding arrive in IR (H, W) order
        win = _windows(c.transpose(2, 1, 0), _ints(self.kernel_size), _ints(self.stride), _ints(self.padding))
        return win.max(axis=(3, 4)).transpose(2, 1, 0)

    def _run_spk(self):
        s = self.s_in.recv()
        start, inside = _window(self)
        if start:
            self.counts[:] = 0
        before = self._pool(self.counts)
        self.counts[:] += np.rint(s).astype(np.int64)  # signed: a -1 spike lowers the count
        out = self._pool(self.counts) - before
        if inside:
            self.spike_count[:] += np.abs(out).astype(np.int64)
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


class Delay(AbstractProcess):
    """Sends at step t what it received at step t - ``delay``."""

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


class LoihiConv(Conv):
    """Lava's ``Conv`` whose fixed-point model honours ``weight_exp`` (module docstring)."""


@implements(proc=LoihiConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyLoihiConvFloat(_FailFast, AbstractPyConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buf: np.ndarray = LavaPyType(np.ndarray, float)
    weight: np.ndarray = LavaPyType(np.ndarray, float)

    def _run_spk(self) -> None:
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv()
        if self.num_message_bits.item() == 0:
            s_in = s_in.astype(bool)
        self.a_buf = _lava_conv(self, s_in)


@implements(proc=LoihiConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyLoihiConvFixed(_FailFast, AbstractPyConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buf: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weight: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def _run_spk(self) -> None:
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv()
        if self.num_message_bits.item() == 0:
            s_in = s_in.astype(bool)
        # integer convolution in float64 (exact while |sum| < 2**53; Lava's utils.conv uses float32)
        acc = np.rint(_lava_conv(self, s_in)).astype(np.int64)
        e = int(self.weight_exp[0])
        acc = np.left_shift(acc, e) if e >= 0 else np.right_shift(acc, -e)
        self.a_buf = conv_utils.signed_clamp(acc, bits=24).astype(np.int32)
