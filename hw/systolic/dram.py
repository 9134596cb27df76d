"""SCALE-Sim's DRAM traces, and the systolic array's DRAM traffic run through the DRAM/HBM model (``--dram``).

**Traces** (:func:`write_dram_traces`): ``layer<i>/IFMAP_DRAM_TRACE.csv``, ``FILTER_DRAM_TRACE.csv`` (reads)
and ``OFMAP_DRAM_TRACE.csv`` (writes), as SCALE-Sim 2.0.2 writes them (``np.savetxt(fmt='%s', delimiter=',')``
of float matrices: ``cycle.0,addr.0,addr.0,...``): one line per DRAM interface transfer of ``Bandwidth``
words, its cycle first, ``-1.0`` where a slot is empty. USER bandwidth mode (the DRAM traces of CALC mode
are bookkeeping of an estimate, not written here: :class:`NeurosimError`). Reads (``read_buffer.py``): the
operand's prefetch matrix reflowed into rows of ``Bandwidth`` words (the *fetch matrix*); the first fill is
``ceil(active / bw)`` rows at cycles ``-n .. -1``; every later prefetch ``ceil(prefetch / bw)`` rows at
cycles ``P + 2 .. P + n + 1`` after the last landing ``P``. Which rows a later prefetch fetches is
SCALE-Sim's bookkeeping, reproduced as it is (``scalesim_rows=True``): its ``new_prefetch`` restarts at row
``n % rows`` every time instead of advancing (so its traces repeat the same addresses) and blanks columns
of the fetch matrix in place. ``scalesim_rows=False`` gives the rows a prefetcher really fetches (the next
``n`` rows after the previous prefetch, wrapping): the stream :func:`simulate_dram` uses. Writes
(``write_buffer.py``): the ofmap words in arrival order cut into lines of ``bw`` (a forced flush sends a
partial line), each drain its lines one per cycle from the drain's start cycle.

**In the loop** (:func:`simulate_dram`): per layer, the reads and writes of the trace (``scalesim_rows=False``)
become DRAM requests (byte address = word x ``word_bytes``; one request per distinct DRAM burst of a
prefetch, in order) entering the memory controller at their cycle converted to the DRAM clock (array clock
``clock_mhz``), as far as its queues accept them. Prefetch ``j`` lands when the DRAM returns its last read;
the array then runs again with those landing cycles in place of SCALE-Sim's fixed ``P + n + 1`` chain, so
the stalls are those of the memory named (one DRAM run per layer, no scripts, no second invocation). The
request schedule stays SCALE-Sim's (a prefetcher issuing at the interface's ``Bandwidth`` words per cycle
back to back); the first fill is requested before cycle 0 and its DRAM time is reported as
``prefill_cycles`` (SCALE-Sim does not count it either); writes are posted (they cost DRAM time that
delays reads, not array stalls), at the cycles of the fixed-bandwidth run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from hw.systolic import kernels as K_
from hw.systolic.config import SystolicConfig
from hw.systolic.topology import Layer
from neurosim.errors import NeurosimError

TRACE_FILES = ("IFMAP_DRAM_TRACE.csv", "FILTER_DRAM_TRACE.csv", "OFMAP_DRAM_TRACE.csv")
DEFAULT_CLOCK_MHZ = 1000.0


# ---- the fetch matrix -------------------------------------------------------------------------------------

@njit(cache=True)
def _fetch_order(nb, Bh, Wd, S, rolled, xc, mode, K, base, woff, pos, offset, out):
    """SCALE-Sim's prefetch matrix (``nb`` blocks of ``Bh x Wd``, rolled along anti-diagonals when skewed),
    flattened in its fetch order, ``-1`` for a null request (padding of a partial fold, a window beyond a
    partial edge): ``out`` has ``nb * Bh * Wd`` entries."""
    k = 0
    for d in range(K_._n_diagonals(nb, Bh, Wd, rolled)):
        for q in range(K_._diagonal_length(d, nb, Bh, Wd, rolled)):
            x, y = K_._cell(d, q, nb, Bh, Wd, S, rolled, xc)
            v = -1
            if x >= 0:
                idx = K_._idx(mode, x, y, K, base, woff, pos[0], pos[1], pos[2], pos[3], pos[4][0], pos[4][1])
                if idx >= 0:
                    v = idx + offset
            out[k] = v
            k += 1
    return k


def fetch_matrix(cfg: SystolicConfig, layer: Layer, op: int, bw: int) -> np.ndarray:
    """Operand ``op``'s fetch matrix (int64, ``ceil(words / bw)`` rows of ``bw``, ``-1`` padded)."""
    R, C, df = cfg.array_rows, cfg.array_cols, cfg.dataflow
    Sr, Sc, T = K_.spatial_dims(df, layer.M, layer.K, layer.N)
    base, woff, pos = K_.ifmap_index_tables(layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w,
                                            layer.channels, layer.stride_h, layer.stride_w, layer.batch,
                                            layer.dilation_h, layer.dilation_w)
    nb, Bh, Wd, S, rolled, xc = K_.prefetch_geometry(df, op, R, C, Sr, Sc, T)
    mode = 0 if op == K_.FILTER else (2 if pos[4][2] == 1 else 1)
    n = nb * Bh * Wd
    rows = -(-n // bw)
    flat = np.full(rows * bw, -1, dtype=np.int64)
    offset = cfg.ifmap_offset if op == K_.IFMAP else cfg.filter_offset
    _fetch_order(nb, Bh, Wd, S, rolled, xc, mode, layer.K, base, woff, pos, offset, flat)
    return flat.reshape(rows, bw)


@dataclass
class OperandTrace:
    """One operand's DRAM trace: ``cycles[i]`` and ``rows[i]`` (``bw`` word addresses, ``-1`` empty) per
    interface transfer; ``group[i]``: 0 for the first fill, ``j`` for prefetch ``j`` (reads) or drain ``j``."""

    cycles: np.ndarray
    rows: np.ndarray
    group: np.ndarray

    def lines(self) -> list[str]:
        """The file's lines as SCALE-Sim's ``np.savetxt(fmt='%s')`` of a float matrix writes them."""
        m = np.concatenate([self.cycles[:, None], self.rows], axis=1).astype(np.float64)
        return [",".join(str(v) for v in r.tolist()) for r in m]


def read_trace(cfg: SystolicConfig, layer: Layer, op: int, dram_reads: int, *, scalesim_rows: bool = True,
               fm: np.ndarray | None = None) -> OperandTrace:
    """USER-mode read trace of ``op`` given the layer's DRAM read count (``LayerResult.*_dram_reads``)."""
    bw = cfg.read_bw(op)
    fm = fetch_matrix(cfg, layer, op, bw) if fm is None else fm
    nrows = fm.shape[0]
    words = (cfg.ifmap_sram_kib, cfg.filter_sram_kib)[op] * 1024
    active = -(-words // 2)
    pref = words - active
    nl0 = min(-(-active // bw), nrows)
    nreq = -(-pref // bw)
    npf = (dram_reads - nl0 * bw) // (nreq * bw) if nreq else 0
    if nl0 * bw + npf * nreq * bw != dram_reads:
        raise NeurosimError(f"{layer.name}: DRAM reads {dram_reads} are not the first fill plus whole prefetches "
                            f"({nl0} + k x {nreq} lines of {bw}): internal error")
    out_rows, out_cyc, out_grp = [], [], []
    first = fm[:nl0].copy() if not scalesim_rows else fm[:nl0]   # a view: SCALE-Sim blanks in place
    next_col = 0
    if nl0 * bw > active:
        next_col = active % bw
        first[nl0 - 1, next_col:] = -1
    out_rows.append(first.copy())
    out_cyc.append(np.arange(nl0, dtype=np.int64) - nl0)
    out_grp.append(np.zeros(nl0, np.int64))
    nxt = nl0 % nrows if nl0 * bw > active else (nl0 + 1) % nrows
    P = -1
    for j in range(1, npf + 1):
        if scalesim_rows:
            start = nxt
            end = start + nreq
            if end > nrows:
                req = np.concatenate([fm[start:], fm[:min(end - nrows, start)]])
            else:
                req = fm[start:end]          # a view: SCALE-Sim's blanking below writes into the fetch matrix
            req[0, :next_col] = -1
            if nreq * bw > active:
                req[-1, active % bw:] = -1
            nxt = nreq % nrows if nreq * bw > active else (nreq + 1) % bw
            req = req.copy()
        else:
            start = (nl0 + (j - 1) * nreq) % nrows
            req = fm[(start + np.arange(nreq)) % nrows]
        if req.shape[0] != nreq:
            raise NeurosimError(f"{layer.name}: a prefetch of {nreq} lines from a {nrows}-line operand (SCALE-Sim "
                                f"fails here too)")
        out_rows.append(req)
        out_cyc.append(P + 2 + np.arange(nreq, dtype=np.int64))
        out_grp.append(np.full(nreq, j, np.int64))
        P = P + nreq + 1
    return OperandTrace(np.concatenate(out_cyc), np.concatenate(out_rows), np.concatenate(out_grp))


@njit(cache=True)
def _write_replay(nwords_row, cyc_row, total_words, bw, words, lines_start, lines_n, drains):
    """SCALE-Sim's write buffer over the ofmap demand rows (``nwords_row`` words of row g arriving at
    ``cyc_row[g]``): fills ``lines_start/lines_n`` (word index and count of each line) and ``drains``
    ``[start cycle, first line, end line]``; returns (lines, drains)."""
    active = (words + 1) // 2
    L = (words - active + bw - 1) // bw
    free = words
    lidx = 0
    w = 0          # words stored so far
    nl = 0         # lines closed
    head = 0
    nd = 0
    dend = 0
    for g in range(nwords_row.shape[0]):
        cur = cyc_row[g]
        for _ in range(nwords_row[g]):
            free -= 1
            lidx += 1
            w += 1
            if lidx == bw:
                lines_start[nl] = w - bw
                lines_n[nl] = bw
                nl += 1
                lidx = 0
            if cur < dend:
                if free <= 0:
                    cur = dend
            elif free < active:
                if lidx > 0:
                    lines_start[nl] = w - lidx
                    lines_n[nl] = lidx
                    nl += 1
                    lidx = 0
                e = min(head + L, nl)
                num = e - head
                data = (num - 1) * bw + lines_n[e - 1]
                free += data
                drains[nd, 0] = cur
                drains[nd, 1] = head
                drains[nd, 2] = e
                nd += 1
                dend = cur + num - 1
                head = e
    total = cyc_row[cyc_row.shape[0] - 1] if cyc_row.shape[0] > 0 else 0
    return nl, nd, lidx, w, head, total


def write_trace(cfg: SystolicConfig, layer: Layer, row_cycles: np.ndarray) -> OperandTrace:
    """OFMAP DRAM write trace from the per-row served cycles of a traced run (``simulate_layer(row_cycles=)``)."""
    from hw.systolic.traces import CHUNK, demand_matrix

    if cfg.scalesim_version == 3:
        raise NeurosimError("DRAM traces follow SCALE-Sim 2.0.2's buffers; this is a 3.0.0 config")
    n = row_cycles.shape[0]
    # the cycle row g+1 arrives at is the latest served cycle of row g (SCALE-Sim's stall accounting)
    cyc = np.zeros(n, np.int64)
    if n > 1:
        cyc[1:] = row_cycles[:-1].max(axis=1)
    served_o = row_cycles[:, 2]
    chunks, counts = [], []
    for g0 in range(0, n, CHUNK):
        blk = demand_matrix(cfg, layer, K_.OFMAP, slice(g0, g0 + CHUNK))
        counts.append((blk >= 0).sum(axis=1))
        chunks.append(blk[blk >= 0])
    nwords = np.concatenate(counts).astype(np.int64)
    words_arr = np.concatenate(chunks).astype(np.int64)
    bw = cfg.bandwidth_words if cfg.user_bandwidth else cfg.array_cols
    wsz = cfg.ofmap_sram_kib * 1024
    tw = int(words_arr.size)
    ls = np.zeros(tw + 2, np.int64)
    ln = np.zeros(tw + 2, np.int64)
    dr = np.zeros((tw + 2, 3), np.int64)
    nl, nd, lidx, w, head, _ = _write_replay(nwords, cyc, tw, bw, wsz, ls, ln, dr)
    if lidx > 0:
        ls[nl], ln[nl] = w - lidx, lidx
        nl += 1
    drains = [tuple(d) for d in dr[:nd]]
    # empty_all_buffers: everything left, one drain after the other from the last served cycle
    c = int(served_o[-1]) if n else 0
    L = (wsz - (wsz + 1) // 2 + bw - 1) // bw
    if nl > 0:
        while head < nl:
            e = min(head + L, nl)
            drains.append((c, head, e))
            c = c + (e - head) - 1 + 1
            head = e
    cycles, rows, grp = [], [], []
    for j, (start, a, b) in enumerate(drains):
        for k, li in enumerate(range(a, b)):
            r = np.full(bw, -1, np.int64)
            r[:ln[li]] = words_arr[ls[li]:ls[li] + ln[li]]
            rows.append(r)
            cycles.append(start + k)
            grp.append(j)
    if not rows:
        return OperandTrace(np.zeros(0, np.int64), np.zeros((0, bw), np.int64), np.zeros(0, np.int64))
    return OperandTrace(np.array(cycles, np.int64), np.array(rows, np.int64), np.array(grp, np.int64))


def _check_user(cfg: SystolicConfig, what: str):
    if not cfg.user_bandwidth:
        raise NeurosimError(f"{what} needs USER bandwidth mode (InterfaceBandwidth: USER, or --bandwidth N): "
                            "CALC mode's DRAM traffic is an estimate with no request timing")
    if cfg.scalesim_version == 3:
        raise NeurosimError(f"{what} follows SCALE-Sim 2.0.2's buffers; this is a 3.0.0 config (--scalesim-version 2)")


#: bytes of working memory per DRAM trace word (the rows, their copy per prefetch, the request expansion)
BYTES_PER_TRACE_WORD = 40


def _check_memory(cfg, layer, result=None):
    """Refuse, before building them, DRAM traces that would not fit in this machine's free memory."""
    from hw.systolic.simulator import _memory_limit, fmt_bytes, simulate_layer

    r = result if result is not None else simulate_layer(cfg, layer)
    words = r.ifmap_dram_reads + r.filter_dram_reads + r.ofmap_dram_writes
    need = words * BYTES_PER_TRACE_WORD
    have = _memory_limit()
    if need > have:
        raise NeurosimError(f"{layer.name}: its DRAM traffic of {words:,} words needs about {fmt_bytes(need)} for "
                            f"its DRAM trace / --dram stream; {fmt_bytes(have)} is free (larger SRAMs or a higher "
                            f"bandwidth make fewer prefetches)")


def layer_dram_traces(cfg: SystolicConfig, layer: Layer, *, scalesim_rows: bool = True, result=None,
                      row_cycles=None):
    """``(LayerResult, [ifmap, filter, ofmap] OperandTrace)`` of one layer (USER mode); ``result`` and
    ``row_cycles`` of a traced run of this layer are reused when given."""
    from hw.systolic.simulator import simulate_layer, trace_rows

    _check_user(cfg, "DRAM traces")
    _check_memory(cfg, layer, result)
    if result is None or row_cycles is None:
        row_cycles = np.zeros((trace_rows(cfg, layer), 3), np.int64)
        result = simulate_layer(cfg, layer, row_cycles=row_cycles)
    rc, res = row_cycles, result
    tr = [read_trace(cfg, layer, K_.IFMAP, res.ifmap_dram_reads, scalesim_rows=scalesim_rows),
          read_trace(cfg, layer, K_.FILTER, res.filter_dram_reads, scalesim_rows=scalesim_rows),
          write_trace(cfg, layer, rc)]
    return res, tr


def write_dram_traces(cfg: SystolicConfig, layer: Layer, folder, *, result=None, row_cycles=None) -> list[Path]:
    """Write the layer's three ``*_DRAM_TRACE.csv`` into ``folder`` (SCALE-Sim 2.0.2's files and format)."""
    _, tr = layer_dram_traces(cfg, layer, scalesim_rows=True, result=result, row_cycles=row_cycles)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, t in zip(TRACE_FILES, tr):
        p = folder / name
        with open(p, "w") as fh:
            for ln in t.lines():
                fh.write(ln + "\n")
        out.append(p)
    return out


# ---- in the loop: the DRAM model gives the prefetch landing cycles ----------------------------------------

def _requests(t: OperandTrace, word_bytes: int, req_bytes: int):
    """Per interface transfer -> DRAM requests: distinct bursts of each group in first-seen order."""
    cyc, addr, grp = [], [], []
    for g in np.unique(t.group):
        sel = t.group == g
        rows = t.rows[sel]
        cy = np.repeat(t.cycles[sel], rows.shape[1])
        a = rows.reshape(-1)
        ok = a >= 0
        blk = (a[ok] * word_bytes) // req_bytes
        cy = cy[ok]
        if blk.size == 0:
            continue
        u, first = np.unique(blk, return_index=True)
        order = np.argsort(first, kind="stable")
        cyc.append(cy[first[order]])
        addr.append(u[order] * req_bytes)
        grp.append(np.full(u.size, g, np.int64))
    if not cyc:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(cyc), np.concatenate(addr), np.concatenate(grp)


@dataclass
class DramLayer:
    """One layer with its DRAM traffic simulated: the fixed-bandwidth (SCALE-Sim) and the DRAM-model run."""

    name: str
    fixed_cycles: int
    fixed_stall_cycles: int
    dram_cycles: int
    dram_stall_cycles: int
    prefill_cycles: int
    requests: int
    read_requests: int
    dram_completion_cycles: int       # DRAM tCK
    mean_read_latency_cycles: float   # DRAM tCK
    read_row_hit_rate: float
    bandwidth_gbs: float
    result: object = field(default=None, repr=False)       # LayerResult with the DRAM stalls
    dram: object = field(default=None, repr=False)         # hw.memory DramReport

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "fixed_cycles", "fixed_stall_cycles", "dram_cycles",
                                              "dram_stall_cycles", "prefill_cycles", "requests", "read_requests",
                                              "dram_completion_cycles", "mean_read_latency_cycles",
                                              "read_row_hit_rate", "bandwidth_gbs")}


def _requests_of_layer(cfg, layer, dcfg, clock_mhz, word_bytes):
    from hw import memory as mem

    fixed, (ti, tf, to) = layer_dram_traces(cfg, layer, scalesim_rows=False)
    rb = dcfg.request_bytes
    parts = []
    for op, t, w in ((0, ti, False), (1, tf, False), (2, to, True)):
        c, a, g = _requests(t, word_bytes, rb)
        parts.append((op, c, a, g, w))
    shift = int(max(-ti.cycles.min(), -tf.cycles.min(), 0))      # the first fill starts at array cycle 0
    ratio = (1000.0 / clock_mhz) / dcfg.tck_ns                 # DRAM tCK per array cycle
    cyc = np.concatenate([p[1] for p in parts]) + shift
    addr = np.concatenate([p[2] for p in parts])
    wr = np.concatenate([np.full(p[1].size, p[4]) for p in parts])
    opn = np.concatenate([np.full(p[1].size, p[0]) for p in parts])
    grp = np.concatenate([p[3] for p in parts])
    order = np.argsort(cyc, kind="stable")
    t_dram = np.floor(cyc[order] * ratio).astype(np.int64)
    trace = mem.Trace(t_dram, addr[order].astype(np.uint64), wr[order], name=layer.name)
    return fixed, ti, tf, shift, ratio, opn, grp, wr, order, trace


def layer_request_trace(cfg: SystolicConfig, layer: Layer, memory="hbm2", *, clock_mhz: float = DEFAULT_CLOCK_MHZ,
                        word_bytes: int = 1):
    """The layer's DRAM request stream as :func:`simulate_layer_dram` feeds it to the memory model (a
    :class:`hw.memory.Trace` in the DRAM's tCK; ``trace.write(path)`` gives a DRAMsim3 trace file)."""
    from hw import memory as mem

    _check_user(cfg, "a DRAM request trace")
    return _requests_of_layer(cfg, layer, mem.get(memory), clock_mhz, word_bytes)[-1]


def simulate_layer_dram(cfg: SystolicConfig, layer: Layer, memory="hbm2", *, clock_mhz: float = DEFAULT_CLOCK_MHZ,
                        word_bytes: int = 1) -> DramLayer:
    """One layer in USER mode with its read/write latencies from the DRAM model ``memory`` (see the module)."""
    from hw import memory as mem
    from hw.systolic.simulator import simulate_layer

    _check_user(cfg, "--dram")
    if not (isinstance(clock_mhz, (int, float)) and math.isfinite(clock_mhz) and clock_mhz > 0):
        raise NeurosimError(f"clock_mhz must be a positive number, got {clock_mhz!r}")
    dcfg = mem.get(memory)
    fixed, ti, tf, shift, ratio, opn, grp, wr, order, trace = _requests_of_layer(cfg, layer, dcfg, clock_mhz,
                                                                              word_bytes)
    rep = mem.simulate(dcfg, trace)
    done = np.empty_like(rep.done)
    done[order] = rep.done
    # landing cycle (array clock, relative to compute cycle 0) of each read group
    land_arr = np.ceil(done / ratio).astype(np.int64) - shift
    lands = []
    prefill = 0
    for op, t in ((0, ti), (1, tf)):
        sel = (opn == op) & ~wr
        ngrp = int(t.group.max()) + 1 if t.group.size else 1
        land = np.full(ngrp, np.iinfo(np.int64).min, np.int64)
        if sel.any():
            np.maximum.at(land, grp[sel], land_arr[sel])
        prefill = max(prefill, int(land[0]) + 1 if land[0] > np.iinfo(np.int64).min else 0)
        lands.append(land[1:])
    res = simulate_layer(cfg, layer, prefetch_land=(lands[0], lands[1]))
    T = rep.totals
    return DramLayer(name=layer.name, fixed_cycles=fixed.total_cycles, fixed_stall_cycles=fixed.stall_cycles,
                     dram_cycles=res.total_cycles, dram_stall_cycles=res.stall_cycles, prefill_cycles=prefill,
                     requests=T["requests"], read_requests=T["reads"], dram_completion_cycles=T["completion_cycles"],
                     mean_read_latency_cycles=T["mean_read_latency_cycles"], read_row_hit_rate=T["read_row_hit_rate"],
                     bandwidth_gbs=T["bandwidth_gbs"], result=res, dram=rep)


@dataclass
class DramRun:
    """Layers simulated with the DRAM model: ``to_dataframe()``, ``totals()``, ``to_dict()``."""

    config: SystolicConfig
    memory: str
    clock_mhz: float
    layers: list

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([lay.row() for lay in self.layers])

    def totals(self) -> dict:
        s = lambda k: sum(getattr(x, k) for x in self.layers)  # noqa: E731
        return {"memory": self.memory, "clock_mhz": self.clock_mhz, "fixed_cycles": s("fixed_cycles"),
                "fixed_stall_cycles": s("fixed_stall_cycles"), "dram_cycles": s("dram_cycles"),
                "dram_stall_cycles": s("dram_stall_cycles"), "prefill_cycles": s("prefill_cycles"),
                "requests": s("requests")}

    def to_dict(self) -> dict:
        return {"memory": self.memory, "clock_mhz": self.clock_mhz, "totals": self.totals(),
                "layers": [x.row() for x in self.layers]}


def simulate_dram(cfg: SystolicConfig, layers: list[Layer], memory="hbm2", *, clock_mhz: float = DEFAULT_CLOCK_MHZ,
                  word_bytes: int = 1, progress=None) -> DramRun:
    """Every layer through :func:`simulate_layer_dram` (identical layers once)."""
    from hw import memory as mem

    name = mem.get(memory).name
    cache, out = {}, []
    for i, layer in enumerate(layers):
        key = (layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels, layer.num_filters,
               layer.stride_h, layer.stride_w, layer.batch, layer.dilation_h, layer.dilation_w)
        if key not in cache:
            cache[key] = simulate_layer_dram(cfg, layer, memory, clock_mhz=clock_mhz, word_bytes=word_bytes)
        r = cache[key]
        out.append(r if r.name == layer.name else DramLayer(**{**r.__dict__, "name": layer.name}))
        if progress:
            progress(i, layer, out[-1])
    return DramRun(cfg, name, float(clock_mhz), out)
