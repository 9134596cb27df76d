"""Run layers on a systolic array and produce SCALE-Sim v2's three reports (same columns, same values).

>>> from hw.systolic import read_config, read_topology, simulate
>>> res = simulate(read_config("scale.cfg"), read_topology("alexnet.csv"))
>>> res.compute_report            # pandas DataFrame, one row per layer
>>> res.write("runs/")            # runs/<run_name>/{COMPUTE,BANDWIDTH,DETAILED_ACCESS}_REPORT.csv

Per layer, with ``Sr x Sc`` the operand extent mapped onto the ``R x C`` array and ``T`` streamed in time
(os: ``M, N, K``; ws: ``K, N, M``; is: ``K, M, N``), the array runs ``ceil(Sr/R) * ceil(Sc/C)`` folds of
``F`` cycles each (os ``T+R+C-2``; ws/is ``2R+C+T-2``) plus the stalls the memory system adds. Reported
as SCALE-Sim does: total cycles is the cycle the last ofmap row is written (rows counted from 0),
``Overall Util % = 100 * MACs / (total * R * C)``, mapping efficiency and compute utilisation are fold
averages (SCALE-Sim's compute-util denominator for ws/is is ``2R+2C+T-3`` cycles per fold, and its os
SRAM ofmap write count adds ``R + C`` per fold: both reproduced as they are).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hw.systolic import kernels as K_
from hw.systolic.config import SystolicConfig
from hw.systolic.topology import Layer
from neurosim.errors import NeurosimError

COMPUTE_COLUMNS = ["LayerID", "Total Cycles", "Stall Cycles", "Overall Util %", "Mapping Efficiency %",
                   "Compute Util %"]
#: SCALE-Sim 3.0.0's COMPUTE_REPORT: a first column from the first DRAM read to the last DRAM write
COMPUTE_COLUMNS_V3 = ["LayerID", "Total Cycles (incl. prefetch)", *COMPUTE_COLUMNS[1:]]
BANDWIDTH_COLUMNS = ["LayerID", "Avg IFMAP SRAM BW", "Avg FILTER SRAM BW", "Avg OFMAP SRAM BW",
                     "Avg IFMAP DRAM BW", "Avg FILTER DRAM BW", "Avg OFMAP DRAM BW"]
#: 3.0.0's BANDWIDTH_REPORT with sparsity on: the filter metadata's SRAM bandwidth after the filter's
BANDWIDTH_COLUMNS_SPARSE = [*BANDWIDTH_COLUMNS[:3], "Avg FILTER Metadata SRAM BW", *BANDWIDTH_COLUMNS[3:]]
SPARSE_COLUMNS = ["LayerID", "Sparsity Representation", "Original Filter Storage", "New Storage (Filter+Metadata)",
                  "Filter Metadata Storage", "Avg FILTER Metadata SRAM BW"]
DETAIL_COLUMNS = ["LayerID",
                  "SRAM IFMAP Start Cycle", "SRAM IFMAP Stop Cycle", "SRAM IFMAP Reads",
                  "SRAM Filter Start Cycle", "SRAM Filter Stop Cycle", "SRAM Filter Reads",
                  "SRAM OFMAP Start Cycle", "SRAM OFMAP Stop Cycle", "SRAM OFMAP Writes",
                  "DRAM IFMAP Start Cycle", "DRAM IFMAP Stop Cycle", "DRAM IFMAP Reads",
                  "DRAM Filter Start Cycle", "DRAM Filter Stop Cycle", "DRAM Filter Reads",
                  "DRAM OFMAP Start Cycle", "DRAM OFMAP Stop Cycle", "DRAM OFMAP Writes"]
#: report columns SCALE-Sim prints as floats (cycles read back from its float trace matrices)
FLOAT_CYCLE_COLUMNS = {c for c in DETAIL_COLUMNS if c.endswith("Cycle")}


@dataclass
class LayerResult:
    """One layer's simulation: SCALE-Sim's report items plus what they came from."""

    name: str
    repeat: int
    M: int
    K: int
    N: int
    macs: int
    total_cycles: int
    stall_cycles: int
    overall_util: float
    mapping_eff: float
    compute_util: float
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    ifmap_sram_start: int
    ifmap_sram_stop: int
    filter_sram_start: int
    filter_sram_stop: int
    ofmap_sram_start: int
    ofmap_sram_stop: int
    ifmap_dram_start: int
    ifmap_dram_stop: int
    ifmap_dram_reads: int
    filter_dram_start: int
    filter_dram_stop: int
    filter_dram_reads: int
    ofmap_dram_start: int
    ofmap_dram_stop: int
    ofmap_dram_writes: int
    rows: int
    energy_pj: dict = field(default_factory=dict)
    # SCALE-Sim 3.0.0's items: cycles from the first DRAM read to the last DRAM write; with sparsity on, the
    # filter rows left after N:M compression and the filter storage (original, compressed + metadata, metadata)
    overall_cycles: int = 0
    sparse_k: int = 0
    filter_storage: tuple = ()

    @property
    def metadata_bw(self):
        return self.filter_storage[2] / self.total_cycles if self.filter_storage else 0.0

    def bandwidth_row(self, sparse=False):
        b = self.bandwidths
        return [*b[:2], self.metadata_bw, *b[2:]] if sparse else b

    # SCALE-Sim's bandwidth items
    @property
    def bandwidths(self):
        t = self.total_cycles
        return [self.ifmap_sram_reads / t, self.filter_sram_reads / t, self.ofmap_sram_writes / t,
                self.ifmap_dram_reads / float(self.ifmap_dram_stop - self.ifmap_dram_start + 1),
                self.filter_dram_reads / float(self.filter_dram_stop - self.filter_dram_start + 1),
                self.ofmap_dram_writes / float(self.ofmap_dram_stop - self.ofmap_dram_start + 1)]

    def compute_row(self, v3=False):
        row = [self.total_cycles, self.stall_cycles, self.overall_util, self.mapping_eff, self.compute_util]
        return [self.overall_cycles, *row] if v3 else row

    def detail_row(self):
        return [self.ifmap_sram_start, self.ifmap_sram_stop, self.ifmap_sram_reads,
                self.filter_sram_start, self.filter_sram_stop, self.filter_sram_reads,
                self.ofmap_sram_start, self.ofmap_sram_stop, self.ofmap_sram_writes,
                self.ifmap_dram_start, self.ifmap_dram_stop, self.ifmap_dram_reads,
                self.filter_dram_start, self.filter_dram_stop, self.filter_dram_reads,
                self.ofmap_dram_start, self.ofmap_dram_stop, self.ofmap_dram_writes]


def sram_access_counts(dataflow: str, R: int, C: int, M: int, K: int, N: int):
    """SCALE-Sim's SRAM read/write counts ``(ifmap reads, filter reads, ofmap writes)`` of one layer."""
    Sr, Sc, T = K_.spatial_dims(dataflow, M, K, N)
    rf, cf = -(-Sr // R), -(-Sc // C)
    if dataflow == "os":
        return cf * Sr * T, rf * T * Sc, Sr * Sc + rf * cf * (R + C)
    if dataflow == "ws":
        return cf * T * Sr, Sr * Sc, rf * T * Sc
    return Sr * Sc, cf * T * Sr, rf * T * Sc


def filter_storage(rep: str, layer: Layer) -> tuple:
    """SCALE-Sim 3.0.0's filter storage of an N:M sparse layer: ``(original, compressed + metadata, metadata)``
    words. The ``K x N`` filter keeps ``K'`` rows (:attr:`Layer.sparse_K`), ``nnz = K' N`` weights: CSR stores
    them with column ids and ``K + 1`` row pointers, CSC with row ids and ``N + 1`` column pointers, blocked
    ELLPACK with ``ceil(log2 M)`` bits of index per kept weight in 32-bit words (a float, as 3.0.0 reports it)."""
    K, N, Kp = layer.K, layer.N, layer.sparse_K
    nnz = Kp * N
    if rep == "csr":
        return K * N, 2 * nnz + K + 1, nnz + K + 1
    if rep == "csc":
        return K * N, 2 * nnz + N + 1, nnz + N + 1
    meta = (Kp * N * math.ceil(math.log2(layer.sparsity_m))) / 32
    return K * N, Kp * N + meta, meta


def _land(prefetch_land):
    e = np.zeros(0, dtype=np.int64)
    if prefetch_land is None:
        return e, e
    return tuple(np.ascontiguousarray(a, dtype=np.int64) for a in prefetch_land)


def simulate_layer(cfg: SystolicConfig, layer: Layer, *, row_cycles: np.ndarray | None = None,
                   prefetch_land=None) -> LayerResult:
    """Simulate one layer (one instance; ``layer.repeat`` is carried along, not multiplied in).

    ``prefetch_land``: ``(ifmap, filter)`` arrays of the cycle each USER-mode prefetch lands (from a DRAM
    model, :mod:`hw.systolic.dram`) instead of SCALE-Sim's fixed chain; ``None``: SCALE-Sim's.

    With SCALE-Sim 3.0.0's sparsity on, an ``N:M`` layer runs as 3.0.0 maps it: the filter operand keeps the
    window rows ``j`` with ``j % M < N`` and the ifmap operand the same columns, a ``K'``-deep GEMM (with the
    same addresses); its MAC count, and so ``Overall Util %``, stays the dense ``M K N`` as in 3.0.0.
    """
    R, C, df = cfg.array_rows, cfg.array_cols, cfg.dataflow
    v3 = cfg.scalesim_version == 3
    sparse_on = v3 and cfg.sparsity
    M, Kd, N = layer.M, layer.K, layer.N
    Kw = layer.sparse_K if sparse_on else Kd
    Sr, Sc, T = K_.spatial_dims(df, M, Kw, N)
    specs, F = K_.operand_specs(df, R, C, T, paper_os=(cfg.os_timing == "paper"))
    cycles_fold = F if df == "os" else F + C - 1
    base, woff, pos = K_.ifmap_index_tables(layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w,
                                       layer.channels, layer.stride_h, layer.stride_w, layer.batch,
                                       layer.dilation_h, layer.dilation_w)
    if sparse_on and layer.sparse:
        kept = layer.kept_windows
        woff = woff[kept]
        pos = (pos[0], pos[1], pos[2][kept], pos[3][kept], pos[4])
    sizes = np.array([layer.batch * layer.ifmap_h * layer.ifmap_w * layer.channels, Kw * N], dtype=np.int64)
    words = np.array([cfg.ifmap_sram_kib * 1024, cfg.filter_sram_kib * 1024, cfg.ofmap_sram_kib * 1024],
                     dtype=np.int64)
    user = cfg.user_bandwidth
    rd_bw = np.array([cfg.read_bw(0), cfg.read_bw(1)], dtype=np.int64)
    wr_bw = cfg.bandwidth_words if user else C  # CALC mode: one array row per cycle for writes
    empty_i = np.zeros(1, dtype=np.int32)
    empty_p = np.zeros(4, dtype=np.int64)
    if user:
        if_off, if_lines, if_one, if_par = K_.prefetch_lines(df, K_.IFMAP, R, C, Sr, Sc, T, Kw, base, woff, pos, int(sizes[0]),
                                                     int(words[0]), int(rd_bw[0]))
        f_off, f_lines, f_one, f_par = K_.prefetch_lines(df, K_.FILTER, R, C, Sr, Sc, T, Kw, base, woff, pos, int(sizes[1]),
                                                  int(words[1]), int(rd_bw[1]))
    else:
        if_off = if_lines = f_off = f_lines = if_one = f_one = empty_i
        if_par = f_par = empty_p
    rc = row_cycles if row_cycles is not None else np.zeros((0, 3), dtype=np.int64)
    out_i = np.zeros(20, dtype=np.int64)
    out_f = np.zeros(2, dtype=np.float64)
    K_.simulate_layer(specs, F, cycles_fold, R, C, Sr, Sc, T, Kw, N, base, woff, pos, sizes, user, rd_bw, wr_bw, words,
                      if_off, if_lines, if_one, if_par, f_off, f_lines, f_one, f_par, rc, out_i, out_f, v3,
                      *_land(prefetch_land))
    o = [int(v) for v in out_i]
    total = o[0]
    macs = M * Kd * N
    ir, fr_, ow = sram_access_counts(df, R, C, M, Kw, N)
    extra = {}
    if v3:
        extra["overall_cycles"] = o[15] - min(o[8], o[11])
    if sparse_on:
        extra.update(sparse_k=Kw, filter_storage=filter_storage(cfg.sparse_rep, layer))
        if df == "ws":  # 3.0.0 counts each ifmap word M/N times per fold (as a float, summed fold by fold)
            ratio = layer.sparsity_m / layer.sparsity_n
            ir = 0
            for _fc in range(-(-Sc // C)):
                for fr in range(-(-Sr // R)):
                    ir += T * min(R, Sr - fr * R) * ratio
    return LayerResult(**extra,
        name=layer.name, repeat=layer.repeat, M=M, K=Kw, N=N, macs=macs,
        total_cycles=total, stall_cycles=o[1], overall_util=(macs * 100) / (total * R * C),
        mapping_eff=float(out_f[0]), compute_util=float(out_f[1]),
        ifmap_sram_reads=ir, filter_sram_reads=fr_, ofmap_sram_writes=ow,
        ifmap_sram_start=o[2], ifmap_sram_stop=o[3], filter_sram_start=o[4], filter_sram_stop=o[5],
        ofmap_sram_start=o[6], ofmap_sram_stop=o[7],
        ifmap_dram_start=o[8], ifmap_dram_stop=o[9], ifmap_dram_reads=o[10],
        filter_dram_start=o[11], filter_dram_stop=o[12], filter_dram_reads=o[13],
        ofmap_dram_start=o[14], ofmap_dram_stop=o[15], ofmap_dram_writes=o[16], rows=o[17],
    )


def _fmt(col: str, v) -> str:
    if col in FLOAT_CYCLE_COLUMNS:
        return repr(float(v))
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return repr(v)
    return str(int(v))


@dataclass
class SystolicResult:
    """A run: its config, layers and per-layer results; the three reports as DataFrames; writers."""

    config: SystolicConfig
    layers: list
    results: list
    wall_s: float = 0.0

    @property
    def v3(self) -> bool:
        """Reports in SCALE-Sim 3.0.0's format (the config's ``scalesim_version``)."""
        return self.config.scalesim_version == 3

    @property
    def sparse(self) -> bool:
        return self.v3 and self.config.sparsity

    def _tables(self):
        """``(file name, columns, rows)`` of each report, in SCALE-Sim's (2.0.2's or 3.0.0's) layout."""
        v3, sp = self.v3, self.sparse
        out = [("COMPUTE_REPORT.csv", COMPUTE_COLUMNS_V3 if v3 else COMPUTE_COLUMNS,
                [r.compute_row(v3) for r in self.results]),
               ("BANDWIDTH_REPORT.csv", BANDWIDTH_COLUMNS_SPARSE if sp else BANDWIDTH_COLUMNS,
                [r.bandwidth_row(sp) for r in self.results]),
               ("DETAILED_ACCESS_REPORT.csv", DETAIL_COLUMNS, [r.detail_row() for r in self.results])]
        if sp:
            out.append(("SPARSE_REPORT.csv", SPARSE_COLUMNS,
                        [[self.config.sparse_rep, *r.filter_storage, r.metadata_bw] for r in self.results]))
        return out

    @property
    def compute_report(self):
        import pandas as pd

        _, cols, rows = self._tables()[0]
        return pd.DataFrame([[i, *r] for i, r in enumerate(rows)], columns=cols)

    @property
    def bandwidth_report(self):
        import pandas as pd

        _, cols, rows = self._tables()[1]
        return pd.DataFrame([[i, *r] for i, r in enumerate(rows)], columns=cols)

    @property
    def sparse_report(self):
        """SCALE-Sim 3.0.0's SPARSE_REPORT (None unless sparsity is on)."""
        import pandas as pd

        if not self.sparse:
            return None
        _, cols, rows = self._tables()[3]
        return pd.DataFrame([[i, *r] for i, r in enumerate(rows)], columns=cols)

    def impossible_layers(self) -> list[str]:
        """Layers whose reported ``Overall Util %`` exceeds 100 (3.0.0 divides the dense MACs of a sparse
        layer by its shorter, sparse run time; reproduced for compatibility)."""
        return [r.name for r in self.results if r.overall_util > 100]

    @property
    def detailed_report(self):
        import pandas as pd

        df = pd.DataFrame([[i, *r.detail_row()] for i, r in enumerate(self.results)], columns=DETAIL_COLUMNS)
        for c in FLOAT_CYCLE_COLUMNS:
            df[c] = df[c].astype(float)
        return df

    @property
    def reports(self) -> dict:
        d = {"COMPUTE_REPORT.csv": self.compute_report, "BANDWIDTH_REPORT.csv": self.bandwidth_report,
             "DETAILED_ACCESS_REPORT.csv": self.detailed_report}
        if self.sparse:
            d["SPARSE_REPORT.csv"] = self.sparse_report
        return d

    def report_lines(self) -> dict[str, list[str]]:
        """The reports as SCALE-Sim writes them, line by line (``"0, 121124, 0, ...,"``): 2.0.2's three, or
        3.0.0's (its COMPUTE_REPORT's first column, and with sparsity the metadata bandwidth column and
        SPARSE_REPORT.csv, whose header line ends ``", "``)."""
        out = {}
        for fname, cols, rows in self._tables():
            lines = [", ".join(cols) + (", " if fname == "SPARSE_REPORT.csv" else ",")]
            for i, row in enumerate(rows):
                lines.append(", ".join([str(i)] + [_fmt(c, v) for c, v in zip(cols[1:], row)]) + ",")
            out[fname] = lines
        return out

    def write(self, outdir: str | Path) -> Path:
        """Write the reports to ``outdir/<run_name>/`` in SCALE-Sim's exact format; returns that folder."""
        d = Path(outdir) / self.config.run_name
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NeurosimError(f"cannot create report folder {d}: {e.strerror or e}") from None
        for fname, lines in self.report_lines().items():
            (d / fname).write_text("\n".join(lines) + "\n")
        return d

    # ---- summaries beyond SCALE-Sim ----
    def to_dataframe(self):
        """One row per layer: name, repeat, GEMM shape, cycles, utilisation, SRAM and DRAM traffic (and energy)."""
        import pandas as pd

        rows = []
        for r in self.results:
            row = {"layer": r.name, "repeat": r.repeat, "M": r.M, "K": r.K, **({"K_sparse": r.sparse_k}
                                                                           if r.sparse_k else {}),
                   "N": r.N, "macs": r.macs,
                   "cycles": r.total_cycles, "stall_cycles": r.stall_cycles, "util_pct": r.overall_util,
                   "mapping_eff_pct": r.mapping_eff,
                   "sram_reads": r.ifmap_sram_reads + r.filter_sram_reads, "sram_writes": r.ofmap_sram_writes,
                   "dram_reads": r.ifmap_dram_reads + r.filter_dram_reads, "dram_writes": r.ofmap_dram_writes}
            if r.energy_pj:
                row["energy_uj"] = r.energy_pj["total"] * 1e-6
            rows.append(row)
        return pd.DataFrame(rows)

    def totals(self) -> dict:
        """Whole-run totals, each layer counted ``repeat`` times."""
        t = {"layers": len(self.results), "instances": sum(r.repeat for r in self.results),
             "cycles": sum(r.total_cycles * r.repeat for r in self.results),
             "stall_cycles": sum(r.stall_cycles * r.repeat for r in self.results),
             "macs": sum(r.macs * r.repeat for r in self.results),
             "sram_reads": sum((r.ifmap_sram_reads + r.filter_sram_reads) * r.repeat for r in self.results),
             "sram_writes": sum(r.ofmap_sram_writes * r.repeat for r in self.results),
             "dram_reads": sum((r.ifmap_dram_reads + r.filter_dram_reads) * r.repeat for r in self.results),
             "dram_writes": sum(r.ofmap_dram_writes * r.repeat for r in self.results)}
        c = self.config
        t["util_pct"] = 100.0 * t["macs"] / (t["cycles"] * c.array_rows * c.array_cols) if t["cycles"] else 0.0
        if self.results and self.results[0].energy_pj:
            keys = self.results[0].energy_pj.keys()
            t["energy_pj"] = {k: sum(r.energy_pj[k] * r.repeat for r in self.results) for k in keys}
        return t

    def to_dict(self) -> dict:
        d = {"config": asdict(self.config), "totals": self.totals(),
             "layers": [asdict(r) for r in self.results], "wall_s": self.wall_s}
        for extra in ("model", "skipped_ops"):
            if hasattr(self, extra):
                d[extra] = getattr(self, extra)
        return d


def layer_memory_bytes(cfg: SystolicConfig, layer: Layer, traces: bool = False) -> int:
    """Working memory the simulation of ``layer`` allocates (index tables over the im2col operand, USER
    mode's prefetch line tables, the per-row served cycles of a trace run), estimated before allocating."""
    R, C = cfg.array_rows, cfg.array_cols
    b = 56 * layer.M + 48 * layer.K
    if cfg.user_bandwidth:
        b += 20 * (layer.batch * layer.ifmap_h * layer.ifmap_w * layer.channels) + 20 * layer.K * layer.N
    if traces:
        b += 24 * trace_rows(cfg, layer) + 8 * 8192 * max(R, C)
    return b


def trace_rows(cfg: SystolicConfig, layer: Layer) -> int:
    """Demand rows of one operand's SRAM trace (the same count for IFMAP, FILTER and OFMAP)."""
    R, C = cfg.array_rows, cfg.array_cols
    Sr, Sc, T = K_.spatial_dims(cfg.dataflow, layer.M, layer.K, layer.N)
    _, F = K_.operand_specs(cfg.dataflow, R, C, T, paper_os=(cfg.os_timing == "paper"))
    return -(-Sr // R) * -(-Sc // C) * F


def trace_bytes(cfg: SystolicConfig, layers: list[Layer]) -> int:
    """Estimated size on disk of the SRAM traces of ``layers``: per demand row of each operand, the cycle
    and one address (or -1) per port, as decimal text (about 6 characters per field on average: addresses
    up to 8 digits and a comma, idle ports ``-1,``; measured 0.8x of this on SCALE-Sim's example layers)."""
    R, C = cfg.array_rows, cfg.array_cols
    per_field = 6
    return sum(trace_rows(cfg, layer) * (R + C + max(R, C) + 3) * per_field for layer in layers)


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:,.1f} {unit}"
        n /= 1024


def _memory_limit() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available * 0.8)
    except Exception:  # noqa: BLE001 - no psutil: the physical memory
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8)


def check_resources(config: SystolicConfig, layers: list[Layer], *, traces: bool = False,
                    max_trace_bytes: float | None = None) -> None:
    """Refuse, before anything is allocated or written, a run whose largest layer needs more memory than
    this machine has free, or (``traces``) whose SRAM traces would exceed ``max_trace_bytes``."""
    limit = _memory_limit()
    seen = set()
    for layer in layers:
        key = (layer.M, layer.K, layer.N, layer.batch, layer.ifmap_h, layer.ifmap_w, layer.channels)
        if key in seen:
            continue
        seen.add(key)
        need = layer_memory_bytes(config, layer, traces)
        if need > limit:
            raise NeurosimError(f"layer {layer.name!r} (M={layer.M:,}, K={layer.K:,}, N={layer.N:,}) needs about "
                                f"{fmt_bytes(need)} of memory to simulate; this machine has {fmt_bytes(limit)} "
                                f"to spare")
    if traces and max_trace_bytes is not None:
        need = trace_bytes(config, layers)
        if need > max_trace_bytes:
            raise NeurosimError(f"the SRAM traces of this run need about {fmt_bytes(need)} on disk; the limit is "
                                f"{fmt_bytes(max_trace_bytes)} (raise it with --max-trace-gb, or simulate without "
                                f"--trace-dir)")


def simulate(config: SystolicConfig, layers: list[Layer], *, energy=None, trace_dir: str | Path | None = None,
             progress=None, max_trace_bytes: float | None = None) -> SystolicResult:
    """Simulate ``layers`` in order on ``config``; identical layers are simulated once (results reused).

    ``energy``: an :class:`hw.systolic.energy.EnergyModel` (or a catalog device name) to add per-access
    energy to every layer. ``trace_dir``: stream SCALE-Sim-format SRAM traces to
    ``trace_dir/layer<i>/{IFMAP,FILTER,OFMAP}_SRAM_TRACE.csv`` (written chunk by chunk), refused
    beforehand when their estimated size exceeds ``max_trace_bytes``; a run whose layers need more
    memory than this machine has free is refused before anything is allocated (:func:`check_resources`).
    """
    if not layers:
        raise NeurosimError("nothing to simulate: no layers")
    if trace_dir is not None and Path(trace_dir).exists() and not Path(trace_dir).is_dir():
        raise NeurosimError(f"--trace-dir {trace_dir} exists and is not a folder")
    if trace_dir is not None and config.scalesim_version == 3 and config.sparsity:
        raise NeurosimError("SRAM traces are not written for SCALE-Sim 3.0.0 sparse runs ([sparsity] "
                            "SparsitySupport = true): simulate without --trace-dir")
    check_resources(config, layers, traces=trace_dir is not None, max_trace_bytes=max_trace_bytes)
    from hw.systolic.energy import resolve_energy

    em = resolve_energy(energy)
    t0 = time.perf_counter()
    cache: dict = {}
    results = []
    for i, layer in enumerate(layers):
        key = (layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels, layer.num_filters,
               layer.stride_h, layer.stride_w, layer.batch, layer.dilation_h, layer.dilation_w, layer.sparsity_n,
               layer.sparsity_m)
        if trace_dir is not None:
            from hw.systolic.traces import write_layer_traces

            r = write_layer_traces(config, layer, Path(trace_dir) / f"layer{i}")
        elif key in cache:
            r = LayerResult(**{**asdict(cache[key]), "name": layer.name, "repeat": layer.repeat})
        else:
            r = simulate_layer(config, layer)
            cache[key] = r
        if em is not None:
            r.energy_pj = em.layer_energy_pj(r)
        results.append(r)
        if progress is not None:
            progress(i, layer, r)
    res = SystolicResult(config, list(layers), results, time.perf_counter() - t0)
    bad = res.impossible_layers()
    if bad:
        import warnings

        warnings.warn(f"{len(bad)} layer(s) report Overall Util % above 100 ({', '.join(bad[:3])}"
                      f"{', ...' if len(bad) > 3 else ''}): SCALE-Sim 3.0.0 divides a sparse layer's dense MACs by "
                      f"its sparse run time; reproduced for compatibility", stacklevel=2)
    if not res.sparse and any(layer.sparse for layer in layers):
        import warnings

        warnings.warn("the topology has N:M Sparsity ratios but " +
                      ("the config does not enable [sparsity] SparsitySupport: simulated dense, as SCALE-Sim 3.0.0 "
                       "does" if config.scalesim_version == 3 else
                       "SCALE-Sim 2.0.2 mode has no sparsity: simulated dense (use a 3.0.0 config with [sparsity] "
                       "SparsitySupport: true)"), stacklevel=2)
    return res
