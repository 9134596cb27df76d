"""The cycle-level DRAM controller + device model in numba, on preallocated arrays.

One call simulates every channel of a memory system on one request trace, tCK by tCK (idle stretches
with nothing queued and no refresh due are skipped, which changes nothing: the state is absolute-time
stamped). Per channel and cycle, in this order (the controller of DRAMsim3, whose semantics we follow so
that the two can be compared request by request; :mod:`hw.memory.reference` is the same in plain Python,
ticking every cycle):

1. refresh: every ``tREFI / ranks`` cycles the next rank is due (staggered); a due refresh first closes
   that rank's open banks (PRE), then issues REF once every bank is ready; its queues are skipped meanwhile.
2. otherwise the per-bank command queues are visited round-robin from the one after the last issuer; in a
   queue, the first entry whose next command (ACT if the bank is closed, RD/WR on a row hit, PRE on a
   conflict) meets every timing constraint issues (first-ready, first-come-first-served). A PRE only issues
   for the oldest entry of its bank and only if no younger entry hits the open row (or the row has served
   ``row_hit_cap`` hits); a WR never overtakes an older RD to the same column; ACTs obey tFAW.
   With ``dual_command`` (HBM) a second command of the other kind (row vs column) may issue in the cycle.
3. one transaction moves from the read queue (or from the write buffer while draining) into its bank's
   command queue. Draining starts when the write buffer is full, or holds more than ``write_drain_low``
   writes and no command is queued, and lasts for the writes it held; it stops early at a write whose
   address a queued read still waits for. Deviation from DRAMsim3: after such a stop the next cycle moves a
   read instead of starting a drain again. DRAMsim3 restarts at once (full buffer), meets the same write,
   stops, and never moves the read that write waits for: a livelock (controller.cc ScheduleTransaction);
   traces without a read and a write to one address while the write buffer is full never see the difference.

Requests enter the controller at the end of their trace cycle, in trace order, as long as their channel's
read queue / write buffer has room (a full queue blocks the requests behind it). A read to an address with
a queued write is answered from the write buffer one cycle later; reads to the same address merge; a read
completes ``RL + burst`` after its RD command; writes are posted (complete one cycle after acceptance) and
the model records when each reaches the DRAM.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .config import ACT, N_CMD, PRE, RD, RDA, REF, WR, WRA

STAT_NAMES = ("rd_cmds", "rd_hits", "wr_cmds", "wr_hits", "acts", "pres", "pres_conflict", "refs",
              "act_stb_cycles", "pre_stb_cycles", "last_cmd_cycle", "fwd_reads", "merged")
N_STAT = len(STAT_NAMES)


@njit(cache=True)
def _find(lst, n, key, keys):
    for k in range(n):
        if keys[lst[k]] == key:
            return k
    return -1


@njit(cache=True)
def _issue(c, t, cmd, b, req, from_ref, nb_rank, banks, bpg, ranks, T, ready, open_row, hits, faw, faw_n,
           tfaw, row, is_write, done, issue, mnext, read_delay, pend, pend_n, stats):
    # stats and request bookkeeping
    if cmd == RD or cmd == RDA:
        stats[c, 0] += 1
        if hits[c, b] != 0:
            stats[c, 1] += 1
        r = req
        while r >= 0:
            done[r] = t + read_delay
            issue[r] = t
            r = mnext[r]
    elif cmd == WR or cmd == WRA:
        stats[c, 2] += 1
        if hits[c, b] != 0:
            stats[c, 3] += 1
        issue[req] = t
    elif cmd == ACT:
        stats[c, 4] += 1
    elif cmd == PRE:
        stats[c, 5] += 1
        if not from_ref:
            stats[c, 6] += 1
    else:
        stats[c, 7] += 1
    stats[c, 10] = t
    # bank state
    rank = b // banks
    if cmd == RD or cmd == WR:
        hits[c, b] += 1
    elif cmd == RDA or cmd == WRA or cmd == PRE:
        open_row[c, b] = -1
        hits[c, b] = 0
    elif cmd == ACT:
        open_row[c, b] = row[req]
        # tFAW window: drop the oldest entry once it has expired, record this ACT
        n = faw_n[c, rank]
        if n > 0 and t >= faw[c, rank, 0]:
            for k in range(n - 1):
                faw[c, rank, k] = faw[c, rank, k + 1]
            n -= 1
        faw[c, rank, n] = t + tfaw
        faw_n[c, rank] = n + 1
    # timing
    if cmd == REF:
        for bb in range(rank * banks, rank * banks + banks):
            for k in range(N_CMD):
                d = T[4, cmd, k]
                if d >= 0 and t + d > ready[c, bb, k]:
                    ready[c, bb, k] = t + d
    else:
        bg = (b % banks) // bpg
        for bb in range(nb_rank):
            rk = bb // banks
            if bb == b:
                s = 0
            elif rk != rank:
                s = 3
            elif (bb % banks) // bpg == bg:
                s = 1
            else:
                s = 2
            for k in range(N_CMD):
                d = T[s, cmd, k]
                if d >= 0 and t + d > ready[c, bb, k]:
                    ready[c, bb, k] = t + d


@njit(cache=True)
def _pick(c, t, filt, nq, cq, cq_n, q_idx, in_ref, ref_rank, banks, open_row, hits, ready, faw, faw_n,
          row, col, is_write, closed, hit_cap, out):
    """Round-robin over bank queues; first ready command (DRAMsim3's GetCommandToIssue).
    Writes (queue, request, command, -, index in the queue) into out; returns True if found. The caller
    removes an issued column command with :func:`_take`.
    When nothing is found, out[3] holds the earliest cycle at which a waiting entry's timing clears."""
    for _ in range(nq):
        q = q_idx[c] + 1
        if q == nq:
            q = 0
        q_idx[c] = q
        if in_ref[c] and q // banks == ref_rank[c]:
            continue
        n = cq_n[c, q]
        for j in range(n):
            req = cq[c, q, j]
            orow = open_row[c, q]
            if orow < 0:
                need = ACT
            elif orow == row[req]:
                if is_write[req]:
                    need = WRA if closed else WR
                else:
                    need = RDA if closed else RD
            else:
                need = PRE
            if t < ready[c, q, need]:
                if ready[c, q, need] < out[3]:
                    out[3] = ready[c, q, need]
                continue
            isrw = need <= WRA
            if need == ACT:
                rank = q // banks
                if faw_n[c, rank] >= 4 and t < faw[c, rank, 0]:
                    if faw[c, rank, 0] < out[3]:
                        out[3] = faw[c, rank, 0]
                    continue
            elif need == PRE:
                if j > 0:
                    continue
                pending = False
                for k in range(j + 1, n):
                    if row[cq[c, q, k]] == orow:
                        pending = True
                        break
                if pending and hits[c, q] < hit_cap:
                    continue
            elif need == WR or need == WRA:
                dep = False
                for k in range(j):
                    o = cq[c, q, k]
                    if not is_write[o] and row[o] == row[req] and col[o] == col[req]:
                        dep = True
                        break
                if dep:
                    continue
            out[0] = q
            out[1] = req
            out[2] = need
            out[4] = j
            return True
    return False


@njit(cache=True)
def _take(c, q, j, cq, cq_n):
    n = cq_n[c, q]
    for k in range(j, n - 1):
        cq[c, q, k] = cq[c, q, k + 1]
    cq_n[c, q] = n - 1


@njit(cache=True)
def _remove(lst, n, val):
    for k in range(n):
        if lst[k] == val:
            lst[k] = lst[n - 1]
            return n - 1
    return n


@njit(cache=True)
def simulate_kernel(arrive, is_write, ch, bank, row, col, key, n_ch, ranks, banks, bpg, T, tfaw, read_delay,
                    write_delay, closed, refresh_mode, trefi, tq, cqs, drain_low, hit_cap, dual,
                    accept, issue, done, stats):
    """Simulate the trace. Inputs per request (trace order): arrival cycle, write flag, channel, bank index
    (rank * banks + bank group * banks_per_group + bank), row, column, address key (merging). Outputs per
    request: accept (cycle it entered the controller), issue (its RD/WR command), done (data returned for a
    read; accepted + 1 for a posted write). ``stats`` [channel, N_STAT]. Returns the last simulated cycle."""
    n = arrive.shape[0]
    nb = ranks * banks
    P = tq + nb * cqs + 1
    rq = np.zeros((n_ch, tq), np.int64)
    rq_n = np.zeros(n_ch, np.int64)
    wq = np.zeros((n_ch, tq), np.int64)
    wq_n = np.zeros(n_ch, np.int64)
    cq = np.zeros((n_ch, nb, cqs), np.int64)
    cq_n = np.zeros((n_ch, nb), np.int64)
    cq_tot = np.zeros(n_ch, np.int64)
    q_idx = np.zeros(n_ch, np.int64)
    open_row = np.full((n_ch, nb), -1, np.int64)
    hits = np.zeros((n_ch, nb), np.int64)
    ready = np.zeros((n_ch, nb, N_CMD), np.int64)
    faw = np.zeros((n_ch, ranks, 5), np.int64)
    faw_n = np.zeros((n_ch, ranks), np.int64)
    ref_q = np.zeros((n_ch, 64), np.int64)
    ref_n = np.zeros(n_ch, np.int64)
    in_ref = np.zeros(n_ch, np.bool_)
    ref_rank = np.zeros(n_ch, np.int64)
    next_ref = np.zeros(n_ch, np.int64)
    drain = np.zeros(n_ch, np.int64)
    hold = np.zeros(n_ch, np.bool_)     # skip one drain start after a dependency stop
    pend = np.zeros((n_ch, 2, P), np.int64)   # [.,0,.] pending reads (group heads), [.,1,.] pending writes
    pend_n = np.zeros((n_ch, 2), np.int64)
    mnext = np.full(n, -1, np.int64)
    mtail = np.arange(n)
    out = np.zeros(5, np.int64)
    BIG = np.int64(1) << 62
    wake = np.zeros(n_ch, np.int64)     # next cycle at which a channel can change state
    bg_t = np.zeros(n_ch, np.int64)     # background energy accounted up to this cycle
    if refresh_mode == 0:
        interval = trefi // ranks
    elif refresh_mode == 1:
        interval = trefi
    else:
        interval = 0
    nxt = 0
    t = 0
    while True:
        for c in range(n_ch):
            if wake[c] > t:
                continue
            # background of the skipped cycles (state unchanged since the last tick)
            if bg_t[c] < t:
                _background(c, t - bg_t[c], ranks, banks, open_row, stats)
            bg_t[c] = t + 1
            active = False
            # 1. refresh
            if interval > 0 and t > 0 and t % interval == 0:
                active = True
                if refresh_mode == 0:
                    if ref_n[c] < 64:   # refreshes due while 64 wait are dropped (the reference does the same)
                        ref_q[c, ref_n[c]] = next_ref[c]
                        ref_n[c] += 1
                    next_ref[c] = (next_ref[c] + 1) % ranks
                else:
                    for r in range(ranks):
                        if ref_n[c] < 64:
                            ref_q[c, ref_n[c]] = r
                            ref_n[c] += 1
            found = False
            from_ref = False
            out[3] = BIG
            if ref_n[c] > 0:
                r = ref_q[c, 0]
                in_ref[c] = True
                ref_rank[c] = r
                nready = 0
                for bb in range(r * banks, r * banks + banks):
                    if open_row[c, bb] >= 0:
                        if t >= ready[c, bb, PRE]:
                            out[0] = bb
                            out[1] = -1
                            out[2] = PRE
                            found = True
                            from_ref = True
                            break
                        elif ready[c, bb, PRE] < out[3]:
                            out[3] = ready[c, bb, PRE]
                    elif t >= ready[c, bb, REF]:
                        nready += 1
                    elif ready[c, bb, REF] < out[3]:
                        out[3] = ready[c, bb, REF]
                if not found and nready == banks:
                    out[0] = r * banks
                    out[1] = -1
                    out[2] = REF
                    found = True
                    from_ref = True
                    in_ref[c] = False
                    for k in range(ref_n[c] - 1):
                        ref_q[c, k] = ref_q[c, k + 1]
                    ref_n[c] -= 1
            if not found:
                found = _pick(c, t, 0, nb, cq, cq_n, q_idx, in_ref, ref_rank, banks, open_row, hits, ready, faw,
                              faw_n, row, col, is_write, closed, hit_cap, out)
            if found:
                active = True
                b, req, cmd = out[0], out[1], out[2]
                if cmd <= WRA:
                    _take(c, b, out[4], cq, cq_n)
                _issue(c, t, cmd, b, req, from_ref, nb, banks, bpg, ranks, T, ready, open_row, hits, faw, faw_n,
                       tfaw, row, is_write, done, issue, mnext, read_delay, pend, pend_n, stats)
                if cmd <= WRA:
                    cq_tot[c] -= 1
                    w = 1 if cmd >= WR else 0
                    pend_n[c, w] = _remove(pend[c, w], pend_n[c, w], req)
                # DRAMsim3's HBM dual issue: the next ready command (round-robin goes on), issued only if it
                # is of the other kind (row vs column); otherwise nothing more this cycle
                if dual and _pick(c, t, 0, nb, cq, cq_n, q_idx, in_ref, ref_rank, banks, open_row, hits, ready,
                                  faw, faw_n, row, col, is_write, closed, hit_cap, out):
                    if (out[2] <= WRA) != (cmd <= WRA):
                        b, req, cmd = out[0], out[1], out[2]
                        if cmd <= WRA:
                            _take(c, b, out[4], cq, cq_n)
                        _issue(c, t, cmd, b, req, False, nb, banks, bpg, ranks, T, ready, open_row, hits, faw,
                               faw_n, tfaw, row, is_write, done, issue, mnext, read_delay, pend, pend_n, stats)
                        if cmd <= WRA:
                            cq_tot[c] -= 1
                            w = 1 if cmd >= WR else 0
                            pend_n[c, w] = _remove(pend[c, w], pend_n[c, w], req)
            # background of this cycle: a rank with an open bank is in active standby
            _background(c, 1, ranks, banks, open_row, stats)
            # 3. one transaction into its bank's command queue
            if drain[c] == 0 and hold[c]:
                hold[c] = False   # a drain stopped at a read-write dependency: move a read first
                active = True     # ... in the next cycle: the channel must not sleep past it
            elif drain[c] == 0:
                if wq_n[c] >= tq or (wq_n[c] > drain_low and cq_tot[c] == 0):
                    drain[c] = wq_n[c]
                    active = True
                elif nxt >= n and wq_n[c] > 0 and pend_n[c, 0] == 0:
                    drain[c] = wq_n[c]   # end of trace, no read left: write the rest back
                    active = True
            if drain[c] > 0:
                for k in range(wq_n[c]):
                    req = wq[c, k]
                    b = bank[req]
                    if cq_n[c, b] < cqs:
                        active = True
                        if _find(pend[c, 0], pend_n[c, 0], key[req], key) >= 0:
                            drain[c] = 0
                            hold[c] = True
                            break
                        drain[c] -= 1
                        cq[c, b, cq_n[c, b]] = req
                        cq_n[c, b] += 1
                        cq_tot[c] += 1
                        for m in range(k, wq_n[c] - 1):
                            wq[c, m] = wq[c, m + 1]
                        wq_n[c] -= 1
                        break
            else:
                for k in range(rq_n[c]):
                    req = rq[c, k]
                    b = bank[req]
                    if cq_n[c, b] < cqs:
                        active = True
                        cq[c, b, cq_n[c, b]] = req
                        cq_n[c, b] += 1
                        cq_tot[c] += 1
                        for m in range(k, rq_n[c] - 1):
                            rq[c, m] = rq[c, m + 1]
                        rq_n[c] -= 1
                        break
            if active:
                wake[c] = t + 1
            else:
                # nothing can change before a timing constraint clears or the next refresh is due
                wk = out[3]
                if interval > 0:
                    nr = (t // interval + 1) * interval
                    if nr < wk:
                        wk = nr
                wake[c] = wk
        # requests of this cycle enter their controllers (accepted at t + 1, the controller's clock)
        while nxt < n and arrive[nxt] <= t:
            c = ch[nxt]
            w = is_write[nxt]
            if w:
                if wq_n[c] >= tq:
                    break
            elif rq_n[c] >= tq:
                break
            a = t + 1
            accept[nxt] = a
            wake[c] = a
            if w:
                if _find(pend[c, 1], pend_n[c, 1], key[nxt], key) < 0:
                    pend[c, 1, pend_n[c, 1]] = nxt
                    pend_n[c, 1] += 1
                    wq[c, wq_n[c]] = nxt
                    wq_n[c] += 1
                else:
                    stats[c, 12] += 1
                    issue[nxt] = -1
                done[nxt] = a + 1
            else:
                if _find(pend[c, 1], pend_n[c, 1], key[nxt], key) >= 0:
                    done[nxt] = a + 1
                    issue[nxt] = -1
                    stats[c, 11] += 1
                else:
                    h = _find(pend[c, 0], pend_n[c, 0], key[nxt], key)
                    if h >= 0:
                        head = pend[c, 0, h]
                        mnext[mtail[head]] = nxt
                        mtail[head] = nxt
                        stats[c, 12] += 1
                    else:
                        pend[c, 0, pend_n[c, 0]] = nxt
                        pend_n[c, 0] += 1
                        rq[c, rq_n[c]] = nxt
                        rq_n[c] += 1
            nxt += 1
            if nxt == n:
                for cc in range(n_ch):   # the end-of-trace write-back may start anywhere
                    wake[cc] = t + 1
        t += 1
        # finished? (nothing queued anywhere and no refresh due)
        busy = False
        for c in range(n_ch):
            if rq_n[c] or wq_n[c] or cq_tot[c] or ref_n[c]:
                busy = True
                break
        if not busy and nxt >= n:
            for c in range(n_ch):
                if bg_t[c] < t:
                    _background(c, t - bg_t[c], ranks, banks, open_row, stats)
            return t
        # jump to the next cycle at which anything can happen
        t2 = BIG
        for c in range(n_ch):
            if wake[c] < t2:
                t2 = wake[c]
        if nxt < n and arrive[nxt] < t2:
            cn = ch[nxt]
            blocked = (wq_n[cn] >= tq) if is_write[nxt] else (rq_n[cn] >= tq)
            if not blocked:
                t2 = arrive[nxt]
        if t2 > t:
            t = t2


@njit(cache=True)
def _background(c, cycles, ranks, banks, open_row, stats):
    for r in range(ranks):
        anyopen = False
        for bb in range(r * banks, r * banks + banks):
            if open_row[c, bb] >= 0:
                anyopen = True
                break
        if anyopen:
            stats[c, 8] += cycles
        else:
            stats[c, 9] += cycles
