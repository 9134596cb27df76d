"""Plain numpy/Python reference of the systolic simulator, for tests on small layers.

It follows SCALE-Sim v2's own formulation, independently of the numba kernels: build the im2col operand
matrices, the per-fold demand matrices (pad, flip, add null rows, skew, stack) and the prefetch matrices
(rolled out along anti-diagonals), then walk the demand rows through set-based read buffers and a
line-based write buffer in Python. Slow (Python loops over every word) and memory-hungry (whole
matrices), which is why :mod:`hw.systolic.kernels` exists; the tests assert the two agree.
"""
from __future__ import annotations

import math

import numpy as np

from hw.systolic.config import SystolicConfig
from hw.systolic.topology import Layer


def operand_matrices(layer: Layer, offsets=(0, 0, 0)):
    """im2col ifmap ``[M, K]`` (-1 where a partial window leaves the input), filter ``[K, N]``, ofmap ``[M, N]``."""
    oh, ow, B = layer.ofmap_h, layer.ofmap_w, layer.batch
    H, W, Cn = layer.ifmap_h, layer.ifmap_w, layer.channels
    p = np.arange(layer.M)[:, None]
    j = np.arange(layer.K)[None, :]
    b, q = np.divmod(p, oh * ow)
    r0, c0 = (q // ow) * layer.stride_h, (q % ow) * layer.stride_w
    fr, rest = np.divmod(j, layer.filter_w * Cn)
    fcol, ch = np.divmod(rest, Cn)
    rr, cc = r0 + fr * layer.dilation_h, c0 + fcol * layer.dilation_w
    ifmap = np.where((rr < H) & (cc < W), b * H * W * Cn + (rr * W + cc) * Cn + ch + offsets[0], -1)
    filt = np.arange(layer.N)[None, :] * layer.K + np.arange(layer.K)[:, None] + offsets[1]
    ofmap = np.arange(layer.M)[:, None] * layer.N + np.arange(layer.N)[None, :] + offsets[2]
    return ifmap.astype(np.int64), filt.astype(np.int64), ofmap.astype(np.int64)


def _pad(m, rows, cols):
    out = np.full((rows, cols), -1, dtype=np.int64)
    out[:m.shape[0], :m.shape[1]] = m
    return out


def _null(n, w):
    return np.full((n, w), -1, dtype=np.int64)


def _skew(m):
    rows, cols = m.shape
    out = np.full((rows + cols - 1, cols), -1, dtype=np.int64)
    for c in range(cols):
        out[c:c + rows, c] = m[:, c]
    return out


def demand_matrices(cfg: SystolicConfig, layer: Layer):
    """The three demand matrices (ifmap, filter, ofmap), folds stacked in SCALE-Sim's order (col fold outer)."""
    R, C, df = cfg.array_rows, cfg.array_cols, cfg.dataflow
    ifm, fil, ofm = operand_matrices(layer, (cfg.ifmap_offset, cfg.filter_offset, cfg.ofmap_offset))
    paper = R if (df == "os" and cfg.os_timing == "paper") else 0
    if df == "os":
        A, Bm, T = ifm, fil, layer.K  # Sr = M pixels (rows), Sc = N filters
        Sr, Sc = layer.M, layer.N
    elif df == "ws":
        Sr, Sc, T = layer.K, layer.N, layer.M
    else:
        Sr, Sc, T = layer.K, layer.M, layer.N
    out = ([], [], [])
    for fc in range(math.ceil(Sc / C)):
        cs = slice(fc * C, min(fc * C + C, Sc))
        for fr in range(math.ceil(Sr / R)):
            rs = slice(fr * R, min(fr * R + R, Sr))
            if df == "os":
                i = _skew(np.vstack([_pad(A[rs, :].T, T, R), _null(C - 1 + paper, R)]))
                f = _skew(np.vstack([_pad(Bm[:, cs], T, C), _null(R - 1 + paper, C)]))
                o = _skew(np.vstack([_null(T - 1 + paper, C), np.flip(_pad(ofm[rs, cs], R, C), 0)]))
            elif df == "ws":
                i = _skew(np.vstack([_null(R, R), _pad(ifm[:, rs], T, R), _null(C - 1, R)]))
                f = np.vstack([np.flip(_pad(fil[rs, cs], R, C), 0), _null(R + C + T - 2, C)])
                o = _skew(np.vstack([_null(2 * R - 1, C), _pad(ofm[:, cs], T, C)]))
            else:
                i = np.vstack([np.flip(_pad(ifm.T[rs, cs], R, C), 0), _null(R + C + T - 2, C)])
                f = _skew(np.vstack([_null(R, R), _pad(fil[rs, :].T, T, R), _null(C - 1, R)]))
                o = _skew(np.vstack([_null(2 * R - 1, C), _pad(ofm[cs, :].T, T, C)]))
            for lst, m in zip(out, (i, f, o)):
                lst.append(m)
    return tuple(np.vstack(x) for x in out)


def _rolled(m):
    M, N = m.shape
    seq = []
    for d in range(M + N):
        for row in range(min(d, M - 1), max(0, d - N + 1) - 1, -1):
            seq.append(m[row, d - row])
    return np.array(seq, dtype=np.int64)


def prefetch_orders(cfg: SystolicConfig, layer: Layer):
    """The fetch order of the ifmap and filter words (``-1`` kept: padding of partial folds)."""
    R, C, df = cfg.array_rows, cfg.array_cols, cfg.dataflow
    ifm, fil, _ = operand_matrices(layer)
    M, K, N = layer.M, layer.K, layer.N
    if df == "os":
        ip = np.vstack([_pad(ifm[f * R:f * R + R, :].T, K, R) for f in range(math.ceil(M / R))])
        fp = np.vstack([_pad(fil[:, f * C:f * C + C], K, C) for f in range(math.ceil(N / C))])
        return _rolled(ip), _rolled(fp)
    if df == "ws":
        ip = np.vstack([_pad(ifm[:, f * R:f * R + R], M, R) for f in range(math.ceil(K / R))])
        fp = np.vstack([_pad(fil[:, f * C:f * C + C], K, C) for f in range(math.ceil(N / C))])
        return _rolled(ip), fp.ravel()
    ip = np.vstack([_pad(ifm.T[:, f * C:f * C + C], K, C) for f in range(math.ceil(M / C))])
    fp = np.vstack([_pad(fil[f * R:f * R + R, :].T, N, R) for f in range(math.ceil(K / R))])
    return ip.ravel(), _rolled(fp)


def reference_layer(cfg: SystolicConfig, layer: Layer) -> dict:
    """The report items of one layer, computed the slow, literal way (offsets as in ``cfg``)."""
    ifd, fid, ofd = demand_matrices(cfg, layer)
    rows = ifd.shape[0]
    words = [cfg.ifmap_sram_kib * 1024, cfg.filter_sram_kib * 1024, cfg.ofmap_sram_kib * 1024]
    user = cfg.user_bandwidth
    rd_bw = cfg.bandwidth_words if user else 10
    wr_bw = cfg.bandwidth_words if user else cfg.array_cols
    orders = prefetch_orders(cfg, layer) if user else (None, None)
    offs = (cfg.ifmap_offset, cfg.filter_offset)
    readers = [(_UserRead if user else _CalcRead)(words[o], rd_bw, orders[o], offs[o]) for o in range(2)]
    wb = _Write(words[2], wr_bw)
    stall = 0
    served = [[], [], []]
    for i in range(rows):
        cycle = i + stall
        outs = [readers[0].row(ifd[i], cycle), readers[1].row(fid[i], cycle), wb.row(ofd[i], cycle)]
        for o in range(3):
            served[o].append(outs[o])
        stall += max(outs[0] - cycle - 1, outs[1] - cycle - 1, outs[2] - cycle - 1)
    total = served[2][-1]
    wb.finish(total)
    res = {"total_cycles": total, "stall_cycles": stall, "rows": rows}
    for o, (name, dm) in enumerate(zip(("ifmap", "filter", "ofmap"), (ifd, fid, ofd))):
        valid = np.flatnonzero((dm != -1).any(axis=1))
        res[f"{name}_sram_start"] = served[o][valid[0]]
        res[f"{name}_sram_stop"] = served[o][valid[-1]]
    for o, name in enumerate(("ifmap", "filter")):
        res[f"{name}_dram_start"], res[f"{name}_dram_stop"], res[f"{name}_dram_reads"] = readers[o].finish()
    res["ofmap_dram_start"], res["ofmap_dram_stop"], res["ofmap_dram_writes"] = wb.first, wb.last, wb.access
    return res


class _CalcRead:
    """Estimate-bandwidth read buffer: distinct words fill sets of floor(words/100); 50 full sets end an epoch."""

    def __init__(self, words, bw, order, offset):
        self.n = words // 100
        self.bw = bw
        self.seen = set()
        self.inset = 0
        self.sets = 0
        self.inserts = 0
        self.first_req = None
        self.triggers = []

    def row(self, req, cycle):
        valid = req[req != -1]
        if len(valid) and self.first_req is None:
            self.first_req = cycle
        for a in valid:
            if a in self.seen:
                continue
            self.seen.add(a)
            self.inserts += 1
            self.inset += 1
            if self.inset == self.n:
                self.inset = 0
                self.sets += 1
                if self.sets % 50 == 0:
                    self.triggers.append(cycle)
                    self.seen = set()
        return cycle + 1

    def finish(self):
        if not self.triggers:
            nsets = self.sets + (1 if self.inset else 0)
            return -math.ceil(nsets * self.n / self.bw), -1, self.inserts
        return self.first_req - math.ceil(50 * self.n / self.bw), self.triggers[-1] + 1, self.inserts


class _UserRead:
    """Double-buffered read buffer: fetch order cut in lines of ceil(words/100); a window of lines is resident."""

    def __init__(self, words, bw, order, offset):
        eps = math.ceil(words / 100)
        valid = order[order != -1] + offset
        self.lines = [set(valid[k:k + eps].tolist()) for k in range(0, len(valid) + 1, eps)]
        if len(valid) % eps == 0:
            self.lines = self.lines[:len(valid) // eps] + [set()]
        nl = len(self.lines)
        active = math.ceil(words / 2)
        self.na = min(nl, math.ceil(active / eps))
        self.np_ = min(nl - self.na, math.ceil((words - active) / eps))
        self.nreq = math.ceil((words - active) / bw)
        nl0 = min(math.ceil(active / bw), math.ceil(len(order) / bw))
        self.access = nl0 * bw
        self.start = -nl0
        self.P = -1
        self.s = 0
        self.bw = bw

    def _hit(self, a):
        nl = len(self.lines)
        return any(a in self.lines[(self.s + k) % nl] for k in range(self.na))

    def row(self, req, cycle):
        offset = 1
        for a in req[req != -1]:
            while not self._hit(a):
                self.s = (self.s + self.np_) % len(self.lines)
                self.access += self.nreq * self.bw
                self.P += self.nreq + 1
                offset = self.P - cycle
        return cycle + offset

    def finish(self):
        return self.start, self.P, self.access


class _Write:
    """Write buffer: lines of bw words; drain ceil(drain_words/bw) lines when more than the drain half is used."""

    def __init__(self, words, bw):
        self.total, self.bw = words, bw
        self.active = math.ceil(words / 2)
        self.L = math.ceil((words - self.active) / bw)
        self.free = words
        self.lines = []  # valid words per committed line
        self.part = 0
        self.head = 0
        self.dend = 0
        self.access = 0
        self.first = self.last = None

    def _drain(self, start):
        e = min(self.head + self.L, len(self.lines))
        num = e - self.head
        data = (num - 1) * self.bw + self.lines[e - 1]
        self.access += data
        self.free += data
        self.first = start if self.first is None else self.first
        self.last = start + num - 1
        self.head = e
        return start + num - 1

    def row(self, req, cycle):
        cur = cycle
        for _ in req[req != -1]:
            self.free -= 1
            self.part += 1
            if self.part == self.bw:
                self.lines.append(self.bw)
                self.part = 0
            if cur < self.dend:
                if self.free <= 0:
                    cur = self.dend
            elif self.free < self.active:
                if self.part:
                    self.lines.append(self.part)
                    self.part = 0
                self.dend = self._drain(cur)
        return cur

    def finish(self, cycle):
        if self.part:
            self.lines.append(self.part)
            self.part = 0
        while self.head < len(self.lines):
            cycle = self._drain(cycle) + 1
