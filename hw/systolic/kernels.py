"""numba kernels of the systolic simulator: one pass over a layer's demand rows, no demand matrix in memory.

SCALE-Sim v2 materialises, per layer, three *demand matrices* (one row per cycle, one column per array
edge port, ``-1`` where nothing is read or written) and then walks them through its memory models in
Python. Here a demand row is generated on the fly from the fold geometry and walked through the same
memory models, element by element and in the same order, so every start/stop cycle, stall and DRAM
count is SCALE-Sim's own.

Geometry of one fold (``R x C`` array, ``T`` the temporal dimension; see :func:`operand_specs`): each
operand's rows are ``prefix`` null rows, a ``D``-row data block (``flip``: reversed), null rows to fill
the fold's ``F`` rows; a *skewed* operand delays column ``c`` by ``c`` cycles, so row ``i`` column ``c``
holds data row ``d = i - prefix - c``. A data element ``(a, c)`` is element ``(x, y)`` of the operand
matrix (ifmap: pixel x window, filter: window x filter, ofmap: pixel x filter) with
``x = x0 + (a if xa else c)`` and ``y = y0 + (c if xa else a)``.

Memory models (SCALE-Sim's ``memory/`` package, restated):

* CALC mode reads (``read_buffer_estimate_bw``): never stall. Distinct addresses fill *sets* of
  ``floor(words/100)``; when 50 sets are full (the active half), a prefetch is accounted and a new epoch
  of distinct addresses starts. DRAM reads are the distinct-per-epoch addresses; DRAM start/stop cycles
  follow its bookkeeping (see :func:`_calc_trigger`).
* USER mode reads (``read_buffer``): the *prefetch order* of the operand (its prefetch matrix, rolled out
  along anti-diagonals for skewed operands) is cut into lines of ``ceil(words/100)`` addresses; a window
  of ``ceil(active/line)`` lines is resident. A miss slides the window by the prefetch lines and costs a
  DRAM burst of ``ceil(prefetch_words/bw)`` cycles, chained after the previous burst; the row is served
  when the last burst lands.
* Writes (``write_buffer``): words go into lines of ``bw``; when more than the drain half is used a
  forced flush closes the partial line and ``ceil(drain_words/bw)`` lines drain, one per cycle; a write
  while a drain is running and the buffer is full stalls until the drain ends.
* The array stalls by ``max`` over the three operands of ``served - cycle - 1`` per row.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# spec columns
W_IS_R, SKEW, PREFIX, DROWS, FLIP, XA, X_FR, X_FC, Y_FR, Y_FC = range(10)
IFMAP, FILTER, OFMAP = 0, 1, 2
DF_CODE = {"os": 0, "ws": 1, "is": 2}


def operand_specs(dataflow: str, R: int, C: int, T: int, paper_os: bool = False):
    """Per-operand fold geometry ``int64[3, 10]`` and rows per fold ``F`` (see the module docstring)."""
    s = np.zeros((3, 10), dtype=np.int64)
    if dataflow == "os":
        extra = R if paper_os else 0
        s[IFMAP] = (1, 1, 0, T, 0, 0, 1, 0, 0, 0)  # pixel = fr*R + c, window = a
        s[FILTER] = (0, 1, 0, T, 0, 1, 0, 0, 0, 1)  # window = a, filter = fc*C + c
        s[OFMAP] = (0, 1, T - 1 + extra, R, 1, 1, 1, 0, 0, 1)  # pixel = fr*R + a, filter = fc*C + c
        F = T + R + C - 2 + extra
    elif dataflow == "ws":
        s[IFMAP] = (1, 1, R, T, 0, 1, 0, 0, 1, 0)  # pixel = a, window = fr*R + c
        s[FILTER] = (0, 0, 0, R, 1, 1, 1, 0, 0, 1)  # window = fr*R + a, filter = fc*C + c
        s[OFMAP] = (0, 1, 2 * R - 1, T, 0, 1, 0, 0, 0, 1)  # pixel = a, filter = fc*C + c
        F = 2 * R + C + T - 2
    elif dataflow == "is":
        s[IFMAP] = (0, 0, 0, R, 1, 0, 0, 1, 1, 0)  # pixel = fc*C + c, window = fr*R + a
        s[FILTER] = (1, 1, R, T, 0, 0, 1, 0, 0, 0)  # window = fr*R + c, filter = a
        s[OFMAP] = (0, 1, 2 * R - 1, T, 0, 0, 0, 1, 0, 0)  # pixel = fc*C + c, filter = a
        F = 2 * R + C + T - 2
    else:
        raise ValueError(dataflow)
    return s, F


def spatial_dims(dataflow: str, M: int, K: int, N: int):
    """``(Sr, Sc, T)``: what spans the array rows, the columns, and time (SCALE-Sim's mapping)."""
    return {"os": (M, N, K), "ws": (K, N, M), "is": (K, M, N)}[dataflow]


def ifmap_index_tables(ifmap_h, ifmap_w, filter_h, filter_w, channels, stride_h, stride_w, batch,
                       dilation_h=1, dilation_w=1):
    """``base[pixel] + woff[window]`` is the ifmap word of im2col element ``(pixel, window)`` (offset excluded).

    SCALE-Sim's layout: ifmap stored HWC, ``addr = (row*W + col)*C + ch``; window index ``j`` walks
    ``(filter_row, filter_col, channel)`` with the channel fastest. Batches follow one another.
    Returns ``base, woff, pos`` where ``pos = (prow, pcol, wrow, wcol, clip)``: a word is read only if
    ``prow[p] + wrow[j] < H`` and ``pcol[p] + wcol[j] < W`` (SCALE-Sim's partial last window; ``clip`` is
    False when no window is partial and the check can be skipped).
    """
    eh, ew = dilation_h * (filter_h - 1) + 1, dilation_w * (filter_w - 1) + 1
    oh = -(-(ifmap_h - eh + stride_h) // stride_h)
    ow = -(-(ifmap_w - ew + stride_w) // stride_w)
    p = np.arange(batch * oh * ow, dtype=np.int64)
    b, q = np.divmod(p, oh * ow)
    orow, ocol = np.divmod(q, ow)
    base = b * (ifmap_h * ifmap_w * channels) + (orow * stride_h * ifmap_w + ocol * stride_w) * channels
    j = np.arange(filter_h * filter_w * channels, dtype=np.int64)
    crow, k = np.divmod(j, filter_w * channels)
    ccol, ch = np.divmod(k, channels)
    crow, ccol = crow * dilation_h, ccol * dilation_w
    woff = (crow * ifmap_w + ccol) * channels + ch
    prow, pcol = orow * stride_h, ocol * stride_w
    clip = (oh - 1) * stride_h + eh > ifmap_h or (ow - 1) * stride_w + ew > ifmap_w
    return base, woff, (prow, pcol, crow, ccol, np.array([ifmap_h, ifmap_w, int(clip)], dtype=np.int64))


# ---- demand-row geometry -----------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _row_range(spec, i, rv, cv, R):
    """Columns ``[lo, hi)`` of fold row ``i`` that carry data for an operand with geometry ``spec``."""
    cval = rv if spec[W_IS_R] == 1 else cv
    d_lo = R - rv if spec[FLIP] == 1 else 0
    p = spec[PREFIX]
    if spec[SKEW] == 1:
        lo = max(0, i - p - spec[DROWS] + 1)
        hi = min(cval, i - p - d_lo + 1)
    else:
        d = i - p
        if d >= d_lo and d < spec[DROWS]:
            lo, hi = 0, cval
        else:
            lo, hi = 0, 0
    return lo, hi


# ---- memory models -------------------------------------------------------------------------------------------

# CALC-mode read-buffer state slots
C_EPOCH, C_INSET, C_SETID, C_READEND, C_DONE, C_LSTART, C_LEND, C_FIRSTREQ, C_SEEN, C_INSERTS, C_DSTART, C_NSET = range(12)
# USER-mode read-buffer state slots
U_VERSION, U_P, U_ASTART, U_ACCESS, U_NLINES, U_NACTIVE, U_NPREF, U_NREQ, U_BW, U_DSTART, U_EPS, U_NPF = range(12)
# write-buffer state slots
W_FREE, W_LIDX, W_HEAD, W_TAIL, W_DEND, W_ACCESS, W_DFIRST, W_DLAST, W_DRAINED, W_ACTIVE, W_L, W_BW, W_PUSHED, W_DMAX = range(14)


@njit(cache=True)
def _calc_trigger(st, cycle):
    """50 sets are full: account the prefetch of the buffer half and start a new epoch of distinct words."""
    n50 = 50 * st[C_NSET]
    if st[C_DONE] == 0:
        st[C_LEND] = st[C_FIRSTREQ] - 2  # the first fill lands one read-port latency before the first request
        cyc = (n50 + 9) // 10  # at the default 10 words/cycle
        st[C_LSTART] = st[C_LEND] - cyc + 1
        st[C_DSTART] = st[C_LSTART] + 1
        st[C_DONE] = 1
    st[C_READEND] += 50
    st[C_LSTART] = st[C_LEND] + 1
    st[C_LEND] = cycle
    st[C_EPOCH] += 1


@njit(cache=True, inline="always")
def _user_hit(idx, off, lines, one, s, A, NL):
    """Is word ``idx`` in one of the resident lines ``s, s+1, ..., s+A-1 (mod NL)``?"""
    l1 = one[idx]
    if l1 >= 0:  # the word sits in exactly one line
        dl = l1 - s
        if dl < 0:
            dl += NL
        return dl < A
    lo = off[idx]
    hi = off[idx + 1]
    if lo == hi:
        raise ValueError("systolic: a demanded word is missing from its prefetch order (internal error)")
    # first line id >= s
    a, b = lo, hi
    while a < b:
        m = (a + b) >> 1
        if lines[m] < s:
            a = m + 1
        else:
            b = m
    e = s + A
    if e <= NL:
        return a < hi and lines[a] < e
    return a < hi or lines[lo] < e - NL


@njit(cache=True)
def _push_line(ring, st, count):
    n = st[W_TAIL] - st[W_HEAD]
    if n == ring.shape[0]:
        bigger = np.empty(2 * ring.shape[0], dtype=ring.dtype)
        for k in range(n):
            bigger[k] = ring[(st[W_HEAD] + k) % ring.shape[0]]
        ring = bigger
        st[W_TAIL] = n
        st[W_HEAD] = 0
    ring[st[W_TAIL] % ring.shape[0]] = count
    st[W_TAIL] += 1
    st[W_PUSHED] = 1
    return ring


@njit(cache=True)
def _drain(ring, st, start):
    """Drain up to ``L`` lines starting at cycle ``start``; returns the cycle of the last line."""
    e = min(st[W_HEAD] + st[W_L], st[W_TAIL])
    num = e - st[W_HEAD]
    data = (num - 1) * st[W_BW] + ring[(e - 1) % ring.shape[0]]  # only the last line's empty slots are discounted
    st[W_ACCESS] += data
    st[W_FREE] += data
    if st[W_DRAINED] == 0:
        st[W_DFIRST] = start
        st[W_DRAINED] = 1
    st[W_DLAST] = start + num - 1
    # the final drain starts at the last row's cycle, which can precede the end of a drain still running:
    # 2.0.2 reports the last line's cycle, 3.0.0 the latest (np.amax)
    st[W_DMAX] = max(st[W_DMAX], start + num - 1)
    st[W_HEAD] = e
    return start + num - 1


# ---- the layer kernel ---------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _row_lin(spec, i, rv, cv, fr, fc, R, C):
    """Fold row ``i`` of an operand: data columns ``[lo, hi)`` and the element of column ``c`` as
    ``(x, y) = (X0 + dx*c, Y0 + dy*c)`` (the walk along a row is linear in ``c``)."""
    lo, hi = _row_range(spec, i, rv, cv, R)
    p = spec[PREFIX]
    if spec[SKEW] == 1:  # d = i - p - c
        if spec[FLIP] == 1:
            a0, da = R - 1 - (i - p), 1
        else:
            a0, da = i - p, -1
    else:
        a0 = R - 1 - (i - p) if spec[FLIP] == 1 else i - p
        da = 0
    x0 = spec[X_FR] * fr * R + spec[X_FC] * fc * C
    y0 = spec[Y_FR] * fr * R + spec[Y_FC] * fc * C
    if spec[XA] == 1:
        return lo, hi, x0 + a0, da, y0, 1
    return lo, hi, x0, 1, y0 + a0, da


@njit(cache=True, inline="always")
def _idx(mode, x, y, K, base, woff, prow, pcol, wrow, wcol, H, W):
    """Word index of element ``(x, y)``: mode 0 filter, 1 ifmap, 2 ifmap with partial windows (-1 outside)."""
    if mode == 0:
        return y * K + x
    if mode == 2:
        if prow[x] + wrow[y] >= H or pcol[x] + wcol[y] >= W:
            return -1
    return base[x] + woff[y]


@njit(cache=True)
def _calc_loop(mode, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle):
    epoch = st[C_EPOCH]
    inset = st[C_INSET]
    nset = st[C_NSET]
    inserts = st[C_INSERTS]
    anyv = False
    for c in range(lo, hi):
        idx = _idx(mode, X0 + dx * c, Y0 + dy * c, K, base, woff, prow, pcol, wrow, wcol, H, W)
        if idx < 0:
            continue
        anyv = True
        if stp[idx] == epoch:
            continue
        stp[idx] = epoch
        inserts += 1
        inset += 1
        if inset == nset:  # a set is full
            inset = 0
            st[C_SETID] += 1
            if st[C_SETID] == st[C_READEND] + 1:  # ... and with it the active half: prefetch, new epoch
                _calc_trigger(st, cycle)
                epoch = st[C_EPOCH]
    st[C_INSET] = inset
    st[C_INSERTS] = inserts
    return anyv


@njit(cache=True)
def _calc_row(stp, st, is_ifmap, K, base, woff, prow, pcol, wrow, wcol, H, W, clip, lo, hi, X0, dx, Y0, dy, cycle):
    """CALC-mode read buffer, one demand row: track distinct words per epoch; returns whether any word was read."""
    if not is_ifmap:
        anyv = _calc_loop(0, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle)
    elif clip:
        anyv = _calc_loop(2, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle)
    else:
        anyv = _calc_loop(1, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle)
    if anyv and st[C_SEEN] == 0:
        st[C_FIRSTREQ] = cycle
        st[C_SEEN] = 1
    return anyv


@njit(cache=True)
def _user_loop(mode, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle, off, lines,
               one, v3, land):
    version = st[U_VERSION]
    anyv = False
    offset = 1
    for c in range(lo, hi):
        idx = _idx(mode, X0 + dx * c, Y0 + dy * c, K, base, woff, prow, pcol, wrow, wcol, H, W)
        if idx < 0:
            continue
        anyv = True
        if stp[idx] == version:
            continue
        while not _user_hit(idx, off, lines, one, st[U_ASTART], st[U_NACTIVE], st[U_NLINES]):
            st[U_ASTART] = (st[U_ASTART] + st[U_NPREF]) % st[U_NLINES]
            st[U_VERSION] += 1
            st[U_ACCESS] += st[U_NREQ] * st[U_BW]
            st[U_P] += st[U_NREQ] + 1  # bursts chain back to back: request the cycle after the last landed
            if land.shape[0] > 0:  # landing cycles from a DRAM model (hw.systolic.dram): never before the chain's
                j = st[U_NPF]
                st[U_NPF] += 1
                nom = -1 + (j + 1) * (st[U_NREQ] + 1)
                st[U_P] = max(nom, land[j]) if j < land.shape[0] else nom
            if v3:  # SCALE-Sim 3.0.0 adds a positive wait twice (its read_buffer.py; SCALE-Sim issue #130)
                pot = st[U_P] - cycle - offset
                offset += pot
                if pot > 0:
                    offset += pot
            else:
                offset = st[U_P] - cycle
        version = st[U_VERSION]
        stp[idx] = version
    return anyv, cycle + offset


@njit(cache=True)
def _user_row(stp, st, is_ifmap, K, base, woff, prow, pcol, wrow, wcol, H, W, clip, lo, hi, X0, dx, Y0, dy, cycle,
              off, lines, one, v3, land):
    """USER-mode read buffer, one demand row: returns (any word read, cycle the row is served)."""
    if not is_ifmap:
        return _user_loop(0, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle,
                          off, lines, one, v3, land)
    if clip:
        return _user_loop(2, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle,
                          off, lines, one, v3, land)
    return _user_loop(1, stp, st, K, base, woff, prow, pcol, wrow, wcol, H, W, lo, hi, X0, dx, Y0, dy, cycle,
                      off, lines, one, v3, land)


@njit(cache=True)
def _write_row(ring, wst, n, cur):
    """Write buffer, ``n`` words of one demand row arriving at cycle ``cur``; returns (ring, served cycle)."""
    bw = wst[W_BW]
    k = 0
    while k < n:
        free = wst[W_FREE]
        rest = n - k
        # bulk: no stall and no drain can happen for the rest of the row
        if (cur < wst[W_DEND] and free - rest > 0) or (cur >= wst[W_DEND] and free - rest >= wst[W_ACTIVE]):
            wst[W_FREE] = free - rest
            lidx = wst[W_LIDX] + rest
            while lidx >= bw:
                ring = _push_line(ring, wst, bw)
                lidx -= bw
            wst[W_LIDX] = lidx
            break
        wst[W_FREE] -= 1
        wst[W_LIDX] += 1
        if wst[W_LIDX] == bw:
            ring = _push_line(ring, wst, bw)
            wst[W_LIDX] = 0
        if cur < wst[W_DEND]:
            if wst[W_FREE] <= 0:
                cur = wst[W_DEND]  # full while a drain runs: wait for it
        elif wst[W_FREE] < wst[W_ACTIVE]:
            if wst[W_LIDX] > 0:  # forced flush: the partial line goes out as it is
                ring = _push_line(ring, wst, wst[W_LIDX])
                wst[W_LIDX] = 0
            wst[W_DEND] = _drain(ring, wst, cur)
        k += 1
    return ring, cur


@njit(cache=True)
def simulate_layer(specs, F, cycles_fold, R, C, Sr, Sc, T, K, N, base, woff, pos, sizes, user, rd_bw, wr_bw, words,
                   if_off, if_lines, if_one, if_par, f_off, f_lines, f_one, f_par, row_cycles, out_i, out_f, v3, land_i,
                   land_f):
    """Run one layer's demand rows through the memory system.

    ``cycles_fold``: the cycles per fold SCALE-Sim divides by for compute utilisation; ``rd_bw``: DRAM read
    words per cycle of the ifmap and the filter buffer (``int64[2]``); ``land_i``/``land_f`` (int64, empty:
    SCALE-Sim's chain): the cycle USER-mode prefetch j+1 lands, from a DRAM model; ``v3``: SCALE-Sim 3.0.0's stall accounting
    (a positive read wait counted twice, an ofmap write's stall without 2.0.2's ``- 1``).
    ``sizes``: words of the ifmap and filter operands; ``words``: SRAM words (ifmap, filter, ofmap);
    ``*_off/_lines/_par``: USER-mode line tables (:func:`prefetch_lines`); ``row_cycles``: ``[rows, 3]``
    served cycles per row for traces (or 0 rows). Results go to ``out_i`` (int64[20]) and ``out_f``.
    """
    row_fold = (Sr + R - 1) // R
    col_fold = (Sc + C - 1) // C
    trace = row_cycles.shape[0] > 0
    prow, pcol, wrow, wcol, geo = pos
    H, W, clip = geo[0], geo[1], geo[2] == 1

    stamp_i = np.full(sizes[0], -1, dtype=np.int32)
    stamp_f = np.full(sizes[1], -1, dtype=np.int32)
    rst = np.zeros((2, 12), dtype=np.int64)
    for o in range(2):
        st = rst[o]
        if user:
            par = if_par if o == 0 else f_par
            active = (words[o] + 1) // 2
            bw = rd_bw[o]
            nl0 = min((active + bw - 1) // bw, par[3])  # the initial fill of the active half
            st[U_P] = -1  # requested before cycle 0, it lands by cycle -1
            st[U_ACCESS] = nl0 * bw
            st[U_NLINES] = par[0]
            st[U_NACTIVE] = par[1]
            st[U_NPREF] = par[2]
            st[U_NREQ] = (words[o] - active + bw - 1) // bw
            st[U_BW] = bw
            st[U_DSTART] = -nl0
        else:
            st[C_NSET] = words[o] // 100
            st[C_READEND] = 49
    st_i = rst[0]
    st_f = rst[1]
    wst = np.zeros(14, dtype=np.int64)
    wst[W_DMAX] = -(1 << 62)
    wst[W_FREE] = words[2]
    wst[W_ACTIVE] = (words[2] + 1) // 2
    wst[W_BW] = wr_bw
    wst[W_L] = (words[2] - wst[W_ACTIVE] + wr_bw - 1) // wr_bw
    ring = np.zeros(1024, dtype=np.int64)

    NONE = -(1 << 62)
    first = np.full(3, NONE, dtype=np.int64)
    last = np.zeros(3, dtype=np.int64)
    sp_i = specs[IFMAP]
    sp_f = specs[FILTER]
    sp_o = specs[OFMAP]
    stall = 0
    g = 0
    map_sum = 0.0
    util_sum = 0.0
    nfold = 0
    out_o = 0
    for fc in range(col_fold):
        cv = min(C, Sc - fc * C)
        for fr in range(row_fold):
            rv = min(R, Sr - fr * R)
            mac_used = rv * cv
            map_sum += mac_used / (R * C)
            util_sum += (mac_used * T) / (R * C * cycles_fold)
            nfold += 1
            for i in range(F):
                cycle = g + stall
                # ifmap
                lo, hi, X0, dx, Y0, dy = _row_lin(sp_i, i, rv, cv, fr, fc, R, C)
                out_a = cycle + 1
                if hi > lo:
                    if user:
                        anyv, out_a = _user_row(stamp_i, st_i, True, K, base, woff, prow, pcol, wrow, wcol, H, W,
                                                clip, lo, hi, X0, dx, Y0, dy, cycle, if_off, if_lines, if_one, v3,
                                                land_i)
                    else:
                        anyv = _calc_row(stamp_i, st_i, True, K, base, woff, prow, pcol, wrow, wcol, H, W, clip,
                                         lo, hi, X0, dx, Y0, dy, cycle)
                    if anyv:
                        if first[0] == NONE:
                            first[0] = out_a
                        last[0] = out_a
                # filter
                lo, hi, X0, dx, Y0, dy = _row_lin(sp_f, i, rv, cv, fr, fc, R, C)
                out_b = cycle + 1
                if hi > lo:
                    if user:
                        anyv, out_b = _user_row(stamp_f, st_f, False, K, base, woff, prow, pcol, wrow, wcol, H, W,
                                                False, lo, hi, X0, dx, Y0, dy, cycle, f_off, f_lines, f_one, v3,
                                                land_f)
                    else:
                        anyv = _calc_row(stamp_f, st_f, False, K, base, woff, prow, pcol, wrow, wcol, H, W, False,
                                         lo, hi, X0, dx, Y0, dy, cycle)
                    if anyv:
                        if first[1] == NONE:
                            first[1] = out_b
                        last[1] = out_b
                # ofmap
                lo, hi = _row_range(sp_o, i, rv, cv, R)
                out_o = cycle
                if hi > lo:
                    ring, out_o = _write_row(ring, wst, hi - lo, cycle)
                    if first[2] == NONE:
                        first[2] = out_o
                    last[2] = out_o
                if trace:
                    row_cycles[g, 0] = out_a
                    row_cycles[g, 1] = out_b
                    row_cycles[g, 2] = out_o
                # 2.0.2 counts a write wait as out - cycle - 1 (a row without one then reads -1, and a row whose
                # reads were served early sums to a negative stall, SCALE-Sim issue #100); 3.0.0 drops the - 1
                stall += max(out_a - cycle - 1, out_b - cycle - 1, out_o - cycle - (0 if v3 else 1))
                g += 1

    total = out_o
    # write buffer: drain everything left, line after line
    if wst[W_LIDX] > 0:
        ring = _push_line(ring, wst, wst[W_LIDX])
        wst[W_LIDX] = 0
    if wst[W_PUSHED] == 1:
        cyc = total
        while wst[W_HEAD] < wst[W_TAIL]:
            cyc = _drain(ring, wst, cyc) + 1

    out_i[0] = total
    out_i[1] = stall
    for o in range(3):
        out_i[2 + 2 * o] = first[o]
        out_i[3 + 2 * o] = last[o]
    for o in range(2):
        st = rst[o]
        if user:
            out_i[8 + 3 * o] = st[U_DSTART]
            out_i[9 + 3 * o] = st[U_P]
            out_i[10 + 3 * o] = st[U_ACCESS]
        else:
            if st[C_DONE] == 0:  # everything fitted: one fill, accounted before cycle 0
                nsets = st[C_SETID] + (1 if st[C_INSET] > 0 else 0)
                cyc = (nsets * st[C_NSET] + 9) // 10
                out_i[8 + 3 * o] = -cyc
                out_i[9 + 3 * o] = -1
            else:
                out_i[8 + 3 * o] = st[C_DSTART]
                out_i[9 + 3 * o] = st[C_LEND] + 1
            out_i[10 + 3 * o] = st[C_INSERTS]
    out_i[14] = wst[W_DFIRST]
    out_i[15] = wst[W_DMAX] if v3 and wst[W_DRAINED] == 1 else wst[W_DLAST]
    out_i[16] = wst[W_ACCESS]
    out_i[17] = g
    out_f[0] = (map_sum / nfold) * 100
    out_f[1] = (util_sum / nfold) * 100


# ---- USER mode: the prefetch order cut into lines ---------------------------------------------------------

def prefetch_geometry(dataflow, op, R, C, Sr, Sc, T):
    """The prefetch matrix of read operand ``op``: ``(blocks, block height, block width, extent, rolled,
    x takes the column)``; blocks are stacked, rolled (skewed along anti-diagonals) when ``rolled``."""
    row_fold = -(-Sr // R)
    col_fold = -(-Sc // C)
    table = {
        ("os", IFMAP): (row_fold, T, R, Sr, 1, 1), ("os", FILTER): (col_fold, T, C, Sc, 1, 0),
        ("ws", IFMAP): (row_fold, T, R, Sr, 1, 0), ("ws", FILTER): (col_fold, Sr, C, Sc, 0, 0),
        ("is", IFMAP): (col_fold, Sr, C, Sc, 0, 1), ("is", FILTER): (row_fold, T, R, Sr, 1, 1),
    }
    return table[(dataflow, op)]


@njit(cache=True, inline="always")
def _n_diagonals(nb, Bh, Wd, rolled):
    """Rows of the fetch order: anti-diagonals of the ``nb*Bh x Wd`` matrix when rolled, else its rows."""
    return nb * Bh + Wd - 1 if rolled else nb * Bh


@njit(cache=True, inline="always")
def _diagonal_length(d, nb, Bh, Wd, rolled):
    if rolled:
        return min(d, nb * Bh - 1) - max(0, d - Wd + 1) + 1
    return Wd


@njit(cache=True, inline="always")
def _cell(d, q, nb, Bh, Wd, S, rolled, xc):
    """The ``q``-th cell of fetch row ``d``: its (x, y) operand coordinates, ``(-1, -1)`` for padding (a
    partial fold, a window beyond a partial edge)."""
    if rolled:
        row = min(d, nb * Bh - 1) - q
        col = d - row
    else:
        row = d
        col = q
    b = row // Bh
    t = row - b * Bh
    if col >= min(Wd, S - b * Wd):
        return -1, -1
    u = b * Wd + col
    if xc == 1:
        return u, t
    return t, u

@njit(cache=True)
def _walk_prefetch(fill, nb, Bh, Wd, S, rolled, xc, mode, K, base, woff, pos, eps, last_line, cnt, off, lines):
    """Visit the prefetch matrix (``nb`` stacked ``Bh x Wd`` blocks) in SCALE-Sim's fetch order.

    ``fill=0`` counts the distinct lines per word, ``fill=1`` writes them (ascending) into ``lines``.
    Returns the number of words in the order.
    """
    k = 0
    for d in range(_n_diagonals(nb, Bh, Wd, rolled)):
        for q in range(_diagonal_length(d, nb, Bh, Wd, rolled)):
            x, y = _cell(d, q, nb, Bh, Wd, S, rolled, xc)
            if x < 0:
                continue
            idx = _idx(mode, x, y, K, base, woff, pos[0], pos[1], pos[2], pos[3], pos[4][0], pos[4][1])
            if idx < 0:
                continue
            line = k // eps
            if last_line[idx] != line:
                last_line[idx] = line
                if fill == 0:
                    cnt[idx] += 1
                else:
                    lines[off[idx] + cnt[idx]] = line
                    cnt[idx] += 1
            k += 1
    return k


@njit(cache=True)
def _walk(fill, nb, Bh, Wd, S, rolled, xc, op, K, base, woff, pos, eps, last_line, cnt, off, lines):
    """:func:`_walk_prefetch` with its word mode as a compile-time constant (the hot loop specialises)."""
    if op == FILTER:
        mode = 0
    elif pos[4][2] == 1:
        mode = 2
    else:
        mode = 1
    if fill == 0:
        if mode == 0:
            return _walk_prefetch(0, nb, Bh, Wd, S, rolled, xc, 0, K, base, woff, pos, eps, last_line, cnt, off, lines)
        if mode == 1:
            return _walk_prefetch(0, nb, Bh, Wd, S, rolled, xc, 1, K, base, woff, pos, eps, last_line, cnt, off, lines)
        return _walk_prefetch(0, nb, Bh, Wd, S, rolled, xc, 2, K, base, woff, pos, eps, last_line, cnt, off, lines)
    if mode == 0:
        return _walk_prefetch(1, nb, Bh, Wd, S, rolled, xc, 0, K, base, woff, pos, eps, last_line, cnt, off, lines)
    if mode == 1:
        return _walk_prefetch(1, nb, Bh, Wd, S, rolled, xc, 1, K, base, woff, pos, eps, last_line, cnt, off, lines)
    return _walk_prefetch(1, nb, Bh, Wd, S, rolled, xc, 2, K, base, woff, pos, eps, last_line, cnt, off, lines)


@njit(cache=True)
def _single_line(cnt, off, lines):
    """``cnt[w]`` (lines holding word w) -> the line of a word held by exactly one line, else -1; in place."""
    for w in range(cnt.shape[0]):
        cnt[w] = lines[off[w]] if cnt[w] == 1 else -1
    return cnt


def prefetch_lines(dataflow, op, R, C, Sr, Sc, T, K, base, woff, pos, size, sram_words, bw):
    """USER-mode line tables of one read operand: ``(off, lines, one, par)`` (``one[w]``: the line of a word
    that sits in exactly one line, else -1) with ``par = [num_lines, active_lines,
    prefetch_lines, fetch_rows]``; ``lines[off[w]:off[w+1]]`` are the lines (ascending) that hold word ``w``."""
    nb, Bh, Wd, S, rolled, xc = prefetch_geometry(dataflow, op, R, C, Sr, Sc, T)
    eps = -(-sram_words // 100)
    last_line = np.full(size, -1, dtype=np.int32)
    cnt = np.zeros(size, dtype=np.int32)
    dummy = np.zeros(1, dtype=np.int32)
    total = _walk(0, nb, Bh, Wd, S, rolled, xc, op, K, base, woff, pos, eps, last_line, cnt, dummy, dummy)
    if total >= 2 ** 31 - 1:
        raise ValueError(f"operand of {total} words is too large for USER-mode simulation")
    off = np.zeros(size + 1, dtype=np.int32)
    np.cumsum(cnt, out=off[1:])
    lines = np.empty(int(off[-1]), dtype=np.int32)
    last_line.fill(-1)
    cnt.fill(0)
    _walk(1, nb, Bh, Wd, S, rolled, xc, op, K, base, woff, pos, eps, last_line, cnt, off, lines)
    del last_line
    one = _single_line(cnt, off, lines)  # in place: cnt becomes `one`
    active = -(-sram_words // 2)
    prefetch = sram_words - active
    num_lines = total // eps + 1
    n_active = min(num_lines, -(-active // eps))
    n_pref = min(num_lines - n_active, -(-prefetch // eps))
    fetch_rows = -(-(nb * Bh * Wd) // bw)
    return off, lines, one, np.array([num_lines, n_active, n_pref, fetch_rows], dtype=np.int64)
