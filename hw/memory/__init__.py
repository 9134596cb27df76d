"""DRAM/HBM timing simulator: JEDEC timings, per-bank state, FR-FCFS controller, refresh, in numba.

>>> from hw.memory import simulate, synthetic, get
>>> r = simulate("hbm2", synthetic("stream", 4096, get("hbm2")))
>>> r.totals["completion_cycles"], r.totals["bandwidth_gbs"], r.totals["read_row_hit_rate"]

``presets.names()`` lists the memories (ddr4_3200, lpddr5, hbm2, hbm2e, hbm3); :func:`read_trace` reads
DRAMsim3 and Ramulator trace files; :func:`simulate` returns a :class:`DramReport` (a ``CostReport``);
:func:`device_memory` is a catalog device's memory (its preset x stacks, re-clocked to its bandwidth).
"""
from .config import DramConfig, decode, timing_table
from .device import DeviceMemory, device_memory
from .presets import get, names
from .simulator import DramReport, simulate
from .trace import FORMATS, Trace, read_trace, synthetic

__all__ = ["DeviceMemory", "DramConfig", "DramReport", "device_memory", "FORMATS", "Trace", "decode", "get", "names", "read_trace", "simulate",
           "synthetic", "timing_table"]
