"""An op's memory traffic run through the DRAM model: ``op_memory_s(memory, param, read, write) -> seconds``.

Used by the cost models' ``memory="simulated"`` (:func:`hw.gpu.roofline`, ``neurosim cost --memory simulated``).
One op moves three streams concurrently, as a DMA engine or the SMs' load/store units would: its weights
(``param_bytes``, read once, streamed), its input activations (``read_bytes``, read) and its output
(``write_bytes``, written), each sequential in its own region, interleaved in proportion to their sizes.
The device's memory is ``stacks`` independent copies of its preset (:mod:`hw.memory.device`), addresses
interleaved over them, so one stack carries ``1 / stacks`` of every stream; the op's memory time is that
stack's completion time. Consecutive bursts go round-robin over the stack's channels (:func:`interleaved`).
All requests are ready at the op's start (closed loop: the controller's queues pace
them), so the time includes the first access's latency, row misses, refresh and read/write turnarounds.

Speed: a stream longer than ``2 W`` requests (``W = window``, at least 4096 per channel) is *sampled*: the
first ``W`` and ``2W`` requests of the same interleaving are simulated (refresh included: ``2W`` spans
several tREFI) and the time extrapolated at the second window's rate,

    t(n) = t(W) + (t(2W) - t(W)) x (n - W) / W

(steady streaming, the same mix of reads and writes throughout). Measured against the full stream on
300 000-request ops (weights/in/out mixes 1:3:2, 0:3:1, 1:0:0) on a100_80gb, h100_sxm and xeon_8380: within
3 % (worst -2.9 %); ``tests/test_cost_memory.py`` holds it to 5 %. Results are cached per (memory, mix
rounded to 0.01, window).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from neurosim.errors import NeurosimError

DEFAULT_WINDOW = 8192


def op_stream(cfg, n_param: int, n_read: int, n_write: int):
    """The interleaved request trace of one stack (request counts per stream) -> :class:`hw.memory.Trace`."""
    from .trace import Trace

    rb = cfg.request_bytes
    region = int(cfg.capacity_gib * 2**30) // 4 // rb * rb   # three regions a quarter of the stack apart
    parts = []
    for k, (n, w) in enumerate(((n_param, False), (n_read, False), (n_write, True))):
        if n <= 0:
            continue
        i = np.arange(n, dtype=np.int64)
        pos = (i + 0.5) / n               # where in the op this request falls (proportional interleave)
        addr = (k * region + (i * rb) % region).astype(np.uint64)
        parts.append((pos, addr, np.full(n, w), np.full(n, k)))
    pos = np.concatenate([p[0] for p in parts])
    order = np.lexsort((np.concatenate([p[3] for p in parts]), pos))
    addr = np.concatenate([p[1] for p in parts])[order]
    wr = np.concatenate([p[2] for p in parts])[order]
    return Trace(np.zeros(addr.size, np.int64), addr, wr, name="op")


def _sim_cycles(cfg, n_param, n_read, n_write) -> tuple[int, int]:
    """(completion tCK, tCK of the first completed request) of a full stream on one stack."""
    from .simulator import run_kernel

    tr = op_stream(cfg, n_param, n_read, n_write)
    accept, issue, done, stats, end, ch = run_kernel(cfg, tr)
    return int(done.max()), int(done.min())


@lru_cache(maxsize=4096)
def _window_cycles(cfg, fp: float, fr: float, window: int):
    n = [int(round(f * window)) for f in (fp, fr, 1 - fp - fr)]
    n[2] = max(window - n[0] - n[1], 0)
    return _sim_cycles(cfg, *n)


def interleaved(cfg):
    """The config with the channel and then the bank-group bits lowest: consecutive bursts round-robin over
    the channels and, within one, over bank groups (tCCD_S apart, not tCCD_L), as GPUs and TPUs hash
    consecutive lines over their memory channels (the presets keep their peers' mappings)."""
    m = cfg.address_mapping
    parts = [m[i:i + 2] for i in range(0, 12, 2)]
    parts.remove("ch")
    parts.remove("bg")
    return cfg.with_(address_mapping="".join(parts) + "bgch")


def stream_cycles(cfg, n_param: int, n_read: int, n_write: int, *, window: int = DEFAULT_WINDOW,
                  exact: bool = False) -> float:
    """tCK one stack needs for the interleaved streams (sampled beyond ``window`` requests unless ``exact``)."""
    n = n_param + n_read + n_write
    if n <= 0:
        return 0.0
    window = max(int(window), 4096 * cfg.channels)   # enough requests per channel to reach steady state
    if exact or n <= window:
        return float(_sim_cycles(cfg, n_param, n_read, n_write)[0])
    # the mix, rounded so that ops of similar shape share a sampled window
    fp = round(n_param / n, 2)
    fr = round(min(n_read / n, 1 - fp), 2)
    if n <= 2 * window:
        return float(_sim_cycles(cfg, n_param, n_read, n_write)[0])
    t1, _ = _window_cycles(cfg, fp, fr, window)
    t2, _ = _window_cycles(cfg, fp, fr, 2 * window)
    # the first window carries the start-up (first latency, queues filling); the second the steady rate
    return t1 + (t2 - t1) * (n - window) / window


def op_memory_s(mem, param_bytes: float, read_bytes: float, write_bytes: float, *,
                window: int = DEFAULT_WINDOW, exact: bool = False) -> float:
    """Seconds the device memory ``mem`` (:class:`~hw.memory.device.DeviceMemory`) needs for one op's traffic."""
    for k, v in (("param_bytes", param_bytes), ("read_bytes", read_bytes), ("write_bytes", write_bytes)):
        if not (math.isfinite(v) and v >= 0):
            raise NeurosimError(f"{k} must be a non-negative number of bytes, got {v!r}")
    cfg = interleaved(mem.config)
    rb = cfg.request_bytes
    per = [int(math.ceil(b / mem.stacks / rb)) for b in (param_bytes, read_bytes, write_bytes)]
    return stream_cycles(cfg, *per, window=window, exact=exact) * cfg.tck_ns * 1e-9
