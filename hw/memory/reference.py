"""The plain-Python reference of :func:`hw.memory.kernel.simulate_kernel`: same controller, written for clarity.

Differences in structure, not in semantics, so that a test can hold the two to identical per-request
results: one object per channel with Python lists and dicts for the queues, every cycle ticked (no idle
stretches skipped, no wake-up bookkeeping), merged reads kept in a dict of lists. It is slow (a few
hundred thousand channel-cycles per second) and meant for small traces in tests.
"""
from __future__ import annotations

from .config import ACT, PRE, RD, RDA, REF, WR, WRA

REF_QUEUE_MAX = 64   # as the kernel: refreshes due while 64 are already waiting are dropped


class _Channel:
    def __init__(self, sim, c):
        self.sim, self.c = sim, c
        nb = sim.nb
        self.read_q: list[int] = []
        self.write_q: list[int] = []
        self.cmd_q: list[list[int]] = [[] for _ in range(nb)]
        self.q_idx = 0
        self.open_row = [-1] * nb
        self.hits = [0] * nb
        self.ready = [[0] * 7 for _ in range(nb)]
        self.faw: list[list[int]] = [[] for _ in range(sim.ranks)]
        self.ref_q: list[int] = []
        self.in_ref = False
        self.ref_rank = 0
        self.next_ref = 0
        self.drain = 0
        self.hold = False
        self.pending_rd: dict[int, list[int]] = {}   # key -> [head request, merged requests...]
        self.pending_wr: dict[int, int] = {}         # key -> request

    # ---- command selection ----
    def needed(self, b, req):
        s = self.sim
        orow = self.open_row[b]
        if orow < 0:
            return ACT
        if orow == s.row[req]:
            if s.is_write[req]:
                return WRA if s.closed else WR
            return RDA if s.closed else RD
        return PRE

    def first_ready(self, t):
        """Round-robin over the bank queues from the one after the last; (bank, position, request, command)."""
        s = self.sim
        for _ in range(s.nb):
            self.q_idx = (self.q_idx + 1) % s.nb
            b = self.q_idx
            if self.in_ref and b // s.banks == self.ref_rank:
                continue
            q = self.cmd_q[b]
            for j, req in enumerate(q):
                cmd = self.needed(b, req)
                if t < self.ready[b][cmd]:
                    continue
                if cmd == ACT:
                    w = self.faw[b // s.banks]
                    if len(w) >= 4 and t < w[0]:
                        continue
                elif cmd == PRE:
                    if j > 0:   # an older request of this bank comes first
                        continue
                    pending_hit = any(s.row[o] == self.open_row[b] for o in q[j + 1:])
                    if pending_hit and self.hits[b] < s.hit_cap:
                        continue
                elif cmd in (WR, WRA):
                    if any(not s.is_write[o] and s.row[o] == s.row[req] and s.col[o] == s.col[req] for o in q[:j]):
                        continue
                return b, j, req, cmd
        return None

    def refresh_command(self, t):
        s = self.sim
        r = self.ref_q[0]
        self.in_ref, self.ref_rank = True, r
        closed_ready = 0
        for b in range(r * s.banks, (r + 1) * s.banks):
            if self.open_row[b] >= 0:
                if t >= self.ready[b][PRE]:
                    return b, PRE
            elif t >= self.ready[b][REF]:
                closed_ready += 1
        if closed_ready == s.banks:
            self.in_ref = False
            self.ref_q.pop(0)
            return r * s.banks, REF
        return None

    # ---- issuing ----
    def issue(self, t, b, req, cmd, from_ref):
        s, st = self.sim, self.sim.stats[self.c]
        rank = b // s.banks
        if cmd in (RD, RDA):
            st[0] += 1
            st[1] += self.hits[b] != 0
            key = s.key[req]
            for r in self.pending_rd.pop(key):
                s.done[r] = t + s.read_delay
                s.issue[r] = t
        elif cmd in (WR, WRA):
            st[2] += 1
            st[3] += self.hits[b] != 0
            s.issue[req] = t
            del self.pending_wr[s.key[req]]
        elif cmd == ACT:
            st[4] += 1
        elif cmd == PRE:
            st[5] += 1
            st[6] += not from_ref
        else:
            st[7] += 1
        st[10] = t
        if cmd in (RD, WR):
            self.hits[b] += 1
        elif cmd in (RDA, WRA, PRE):
            self.open_row[b] = -1
            self.hits[b] = 0
        elif cmd == ACT:
            self.open_row[b] = s.row[req]
            w = self.faw[rank]
            if w and t >= w[0]:
                w.pop(0)
            w.append(t + s.tfaw)
        T = s.T
        if cmd == REF:
            for bb in range(rank * s.banks, (rank + 1) * s.banks):
                self._raise(bb, T[4, cmd], t)
            return
        bg = (b % s.banks) // s.bpg
        for bb in range(s.nb):
            if bb == b:
                scope = 0
            elif bb // s.banks != rank:
                scope = 3
            elif (bb % s.banks) // s.bpg == bg:
                scope = 1
            else:
                scope = 2
            self._raise(bb, T[scope, cmd], t)

    def _raise(self, bb, row, t):
        rd = self.ready[bb]
        for k in range(7):
            d = int(row[k])
            if d >= 0 and t + d > rd[k]:
                rd[k] = t + d

    def cmd_queued(self):
        return sum(len(q) for q in self.cmd_q)

    # ---- one cycle ----
    def tick(self, t, trace_done):
        s = self.sim
        if s.interval > 0 and t > 0 and t % s.interval == 0:
            due = [self.next_ref] if s.refresh_mode == 0 else list(range(s.ranks))
            if s.refresh_mode == 0:
                self.next_ref = (self.next_ref + 1) % s.ranks
            for r in due:
                if len(self.ref_q) < REF_QUEUE_MAX:
                    self.ref_q.append(r)
        pick, from_ref = None, False
        if self.ref_q:
            rc = self.refresh_command(t)
            if rc is not None:
                pick, from_ref = (rc[0], -1, -1, rc[1]), True
        if pick is None:
            pick = self.first_ready(t)
        if pick is not None:
            b, j, req, cmd = pick
            if cmd <= WRA:
                self.cmd_q[b].pop(j)
            self.issue(t, b, req, cmd, from_ref)
            if s.dual:
                second = self.first_ready(t)
                if second is not None and (second[3] <= WRA) != (cmd <= WRA):
                    b2, j2, req2, cmd2 = second
                    if cmd2 <= WRA:
                        self.cmd_q[b2].pop(j2)
                    self.issue(t, b2, req2, cmd2, False)
        # background: a rank with an open bank is in active standby
        st = s.stats[self.c]
        for r in range(s.ranks):
            if any(self.open_row[b] >= 0 for b in range(r * s.banks, (r + 1) * s.banks)):
                st[8] += 1
            else:
                st[9] += 1
        # one transaction into its bank's command queue
        if self.drain == 0 and self.hold:
            self.hold = False     # the last drain stopped at a read-write dependency: a read moves first
        elif self.drain == 0:
            nw = len(self.write_q)
            if nw >= s.tq or (nw > s.drain_low and self.cmd_queued() == 0):
                self.drain = nw
            elif trace_done and nw > 0 and not self.pending_rd:
                self.drain = nw
        if self.drain > 0:
            for k, req in enumerate(self.write_q):
                b = s.bank[req]
                if len(self.cmd_q[b]) < s.cqs:
                    if s.key[req] in self.pending_rd:
                        self.drain = 0
                        self.hold = True
                        break
                    self.drain -= 1
                    self.cmd_q[b].append(req)
                    self.write_q.pop(k)
                    break
        else:
            for k, req in enumerate(self.read_q):
                b = s.bank[req]
                if len(self.cmd_q[b]) < s.cqs:
                    self.cmd_q[b].append(req)
                    self.read_q.pop(k)
                    break

    def busy(self):
        return bool(self.read_q or self.write_q or self.cmd_queued() or self.ref_q)

    def accept(self, t, req):
        """Try to take request ``req`` at the end of cycle ``t``; False if its queue is full."""
        s = self.sim
        w = bool(s.is_write[req])
        if len(self.write_q if w else self.read_q) >= s.tq:
            return False
        a = t + 1
        s.accept[req] = a
        key = s.key[req]
        st = s.stats[self.c]
        if w:
            if key in self.pending_wr:
                st[12] += 1
                s.issue[req] = -1
            else:
                self.pending_wr[key] = req
                self.write_q.append(req)
            s.done[req] = a + 1
        elif key in self.pending_wr:
            s.done[req] = a + 1
            s.issue[req] = -1
            st[11] += 1
        elif key in self.pending_rd:
            self.pending_rd[key].append(req)
            st[12] += 1
        else:
            self.pending_rd[key] = [req]
            self.read_q.append(req)
        return True


class _Sim:
    pass


def simulate_reference(arrive, is_write, ch, bank, row, col, key, n_ch, ranks, banks, bpg, T, tfaw, read_delay,
                       write_delay, closed, refresh_mode, trefi, tq, cqs, drain_low, hit_cap, dual,
                       accept, issue, done, stats, max_cycles: int = 50_000_000):
    """Same arguments and outputs as :func:`hw.memory.kernel.simulate_kernel`."""
    s = _Sim()
    s.arrive, s.is_write, s.ch, s.bank = [int(x) for x in arrive], [bool(x) for x in is_write], list(ch), list(bank)
    s.row, s.col, s.key = [int(x) for x in row], [int(x) for x in col], [int(x) for x in key]
    s.n_ch, s.ranks, s.banks, s.bpg, s.nb = n_ch, ranks, banks, bpg, ranks * banks
    s.T, s.tfaw, s.read_delay, s.closed, s.dual = T, tfaw, read_delay, bool(closed), bool(dual)
    s.refresh_mode, s.tq, s.cqs, s.drain_low, s.hit_cap = refresh_mode, tq, cqs, drain_low, hit_cap
    s.interval = trefi // ranks if refresh_mode == 0 else trefi if refresh_mode == 1 else 0
    s.accept, s.issue, s.done, s.stats = accept, issue, done, stats
    chans = [_Channel(s, c) for c in range(n_ch)]
    n, nxt, t = len(s.arrive), 0, 0
    while t < max_cycles:
        for chan in chans:
            chan.tick(t, nxt >= n)
        while nxt < n and s.arrive[nxt] <= t:
            if not chans[s.ch[nxt]].accept(t, nxt):
                break
            nxt += 1
        t += 1
        if nxt >= n and not any(c.busy() for c in chans):
            return t
    raise RuntimeError(f"reference simulation did not finish in {max_cycles} cycles")
