"""SRAM traces in SCALE-Sim's format, streamed to disk chunk by chunk.

``IFMAP_SRAM_TRACE.csv`` (and FILTER, OFMAP): one line per demand row, ``served_cycle, addr_0, ..., addr_{w-1}``
with ``-1`` where the port is idle, exactly what SCALE-Sim's ``np.savetxt`` writes when run with
``save_disk_space=False``. The simulation keeps only the served cycle of each row (3 int64 per row);
the address rows are regenerated from the fold geometry :data:`CHUNK` rows at a time, so a trace is
never in memory whole. In USER bandwidth mode the three ``*_DRAM_TRACE.csv`` are written beside them
(:mod:`hw.systolic.dram`, SCALE-Sim 2.0.2's format and content).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from hw.systolic import kernels as K_
from hw.systolic.config import SystolicConfig
from hw.systolic.topology import Layer

CHUNK = 8192


@njit(cache=True)
def fill_demand(op, spec, F, row_fold, R, C, Sr, Sc, K, N, base, woff, pos, offset, g0, out):
    """Demand rows ``g0 .. g0+len(out)-1`` of operand ``op`` as word addresses (``-1``: idle port)."""
    prow, pcol, wrow, wcol, geo = pos
    H, W, clip = geo[0], geo[1], geo[2] == 1
    out[:, :] = -1
    for r in range(out.shape[0]):
        g = g0 + r
        fold = g // F
        i = g - fold * F
        fc = fold // row_fold
        fr = fold - fc * row_fold
        rv = min(R, Sr - fr * R)
        cv = min(C, Sc - fc * C)
        lo, hi, X0, dx, Y0, dy = K_._row_lin(spec, i, rv, cv, fr, fc, R, C)
        for c in range(lo, hi):
            x = X0 + dx * c
            y = Y0 + dy * c
            if op == K_.OFMAP:
                out[r, c] = x * N + y + offset
            elif op == K_.FILTER:
                out[r, c] = y * K + x + offset
            else:
                if clip and (prow[x] + wrow[y] >= H or pcol[x] + wcol[y] >= W):
                    continue
                out[r, c] = base[x] + woff[y] + offset


def demand_matrix(cfg: SystolicConfig, layer: Layer, op: int, rows: slice | None = None) -> np.ndarray:
    """Operand ``op``'s demand matrix (or ``rows`` of it), as SCALE-Sim builds it (for tests and small layers)."""
    R, C, df = cfg.array_rows, cfg.array_cols, cfg.dataflow
    Sr, Sc, T = K_.spatial_dims(df, layer.M, layer.K, layer.N)
    specs, F = K_.operand_specs(df, R, C, T, paper_os=(cfg.os_timing == "paper"))
    base, woff, pos = K_.ifmap_index_tables(layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w,
                                            layer.channels, layer.stride_h, layer.stride_w, layer.batch,
                                            layer.dilation_h, layer.dilation_w)
    row_fold, col_fold = -(-Sr // R), -(-Sc // C)
    total = row_fold * col_fold * F
    rows = rows or slice(0, total)
    g0, g1 = rows.start or 0, min(rows.stop if rows.stop is not None else total, total)
    width = R if specs[op, K_.W_IS_R] == 1 else C
    out = np.empty((max(g1 - g0, 0), width), dtype=np.int64)
    offset = (cfg.ifmap_offset, cfg.filter_offset, cfg.ofmap_offset)[op]
    fill_demand(op, specs[op], F, row_fold, R, C, Sr, Sc, layer.K, layer.N, base, woff, pos, offset, g0, out)
    return out


def write_layer_traces(cfg: SystolicConfig, layer: Layer, folder: Path):
    """Simulate ``layer`` and stream its three SRAM traces into ``folder``; returns the :class:`LayerResult`."""
    from hw.systolic.simulator import simulate_layer

    R, C = cfg.array_rows, cfg.array_cols
    Sr, Sc, T = K_.spatial_dims(cfg.dataflow, layer.M, layer.K, layer.N)
    _, F = K_.operand_specs(cfg.dataflow, R, C, T, paper_os=(cfg.os_timing == "paper"))
    nrows = -(-Sr // R) * -(-Sc // C) * F
    row_cycles = np.zeros((nrows, 3), dtype=np.int64)
    res = simulate_layer(cfg, layer, row_cycles=row_cycles)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for op, fname in ((K_.IFMAP, "IFMAP_SRAM_TRACE.csv"), (K_.FILTER, "FILTER_SRAM_TRACE.csv"),
                      (K_.OFMAP, "OFMAP_SRAM_TRACE.csv")):
        with open(folder / fname, "w") as fh:
            for g0 in range(0, nrows, CHUNK):
                block = demand_matrix(cfg, layer, op, slice(g0, g0 + CHUNK))
                np.savetxt(fh, np.concatenate([row_cycles[g0:g0 + len(block), op:op + 1], block], axis=1),
                           fmt="%i", delimiter=",")
    if cfg.user_bandwidth and cfg.scalesim_version == 2:
        from hw.systolic.dram import write_dram_traces

        write_dram_traces(cfg, layer, folder, result=res, row_cycles=row_cycles)
    return res
