"""Request traces: (cycle, byte address, read/write), from DRAMsim3's and Ramulator's text formats or arrays.

Formats (``#`` starts a comment; blank lines are skipped; addresses are hexadecimal, ``0x`` optional):

* ``dramsim3``: ``ADDRESS OP CYCLE`` per line, e.g. ``0x1f40 READ 12`` (DRAMsim3's ``TraceBasedCPU``; OP is
  READ / WRITE, or the gem5 names P_MEM_RD, P_FETCH / P_MEM_WR, BOFF). Cycles are in the DRAM's tCK and
  must not decrease.
* ``ramulator``: Ramulator 1's DRAM trace ``ADDRESS R|W`` or Ramulator 2's ``LD|ST ADDRESS``
  (ReadWriteTrace). These carry no time: every request is ready at cycle 0 and enters the controller as
  soon as its queue has room (a closed-loop, back-to-back stream).

Bad lines stop the read with one line naming the file, the line number and the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurosim.errors import NeurosimError

FORMATS = ("dramsim3", "ramulator")
_READS = {"READ", "RD", "P_MEM_RD", "P_FETCH", "R", "LD", "LOAD"}
_WRITES = {"WRITE", "WR", "P_MEM_WR", "BOFF", "W", "ST", "STORE"}
MAX_ADDR = 2**63 - 1


@dataclass
class Trace:
    """``cycle`` (int64, non-decreasing), ``addr`` (uint64 byte addresses), ``is_write`` (bool)."""

    cycle: np.ndarray
    addr: np.ndarray
    is_write: np.ndarray
    name: str = "trace"

    def __post_init__(self):
        self.cycle = _as_int_array(self.cycle, "cycle", self.name)
        a = np.asarray(self.addr)
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)):
                raise NeurosimError(f"{self.name}: addr: NaN or infinite address")
            if np.any(a != np.floor(a)):
                raise NeurosimError(f"{self.name}: addr: fractional address")
        if a.size and (a.dtype.kind in "if") and np.any(a < 0):
            raise NeurosimError(f"{self.name}: addr: negative address {int(a[a < 0][0])}")
        self.addr = a.astype(np.uint64)
        w = np.asarray(self.is_write)
        if w.dtype.kind not in "biu":
            raise NeurosimError(f"{self.name}: is_write: must be booleans, got dtype {w.dtype}")
        self.is_write = w.astype(bool)
        n = self.cycle.shape[0]
        if self.addr.shape != (n,) or self.is_write.shape != (n,):
            raise NeurosimError(f"{self.name}: cycle, addr and is_write must be 1-D of one length, got "
                                f"{self.cycle.shape}, {self.addr.shape}, {self.is_write.shape}")
        if n == 0:
            raise NeurosimError(f"{self.name}: the trace has no requests")
        if np.any(self.cycle < 0):
            raise NeurosimError(f"{self.name}: cycle: negative cycle {int(self.cycle[self.cycle < 0][0])}")
        if n > 1 and np.any(np.diff(self.cycle) < 0):
            i = int(np.argmax(np.diff(self.cycle) < 0)) + 1
            raise NeurosimError(f"{self.name}: cycle: request {i} at cycle {int(self.cycle[i])} is before the "
                                f"previous one ({int(self.cycle[i - 1])}); traces must be in time order")

    def __len__(self):
        return int(self.cycle.shape[0])

    @property
    def reads(self) -> int:
        return int((~self.is_write).sum())

    @property
    def writes(self) -> int:
        return int(self.is_write.sum())

    def write(self, path, fmt: str = "dramsim3") -> Path:
        """Write in DRAMsim3's format (``0xADDR READ|WRITE CYCLE``) or Ramulator 2's (``LD|ST 0xADDR``)."""
        path = Path(path)
        if fmt == "dramsim3":
            ops = np.where(self.is_write, "WRITE", "READ")
            lines = [f"0x{int(a):x} {o} {int(c)}" for a, o, c in zip(self.addr, ops, self.cycle)]
        elif fmt == "ramulator":
            lines = [f"{'ST' if w else 'LD'} 0x{int(a):x}" for a, w in zip(self.addr, self.is_write)]
        else:
            raise NeurosimError(f"trace format {fmt!r}; allowed: {', '.join(FORMATS)}")
        path.write_text("\n".join(lines) + "\n")
        return path


def _as_int_array(x, field, name):
    a = np.asarray(x)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise NeurosimError(f"{name}: {field}: NaN or infinite value")
        if np.any(a != np.floor(a)):
            raise NeurosimError(f"{name}: {field}: fractional value")
    elif a.dtype.kind not in "iub":
        raise NeurosimError(f"{name}: {field}: must be integers, got dtype {a.dtype}")
    return a.astype(np.int64)


def _hex(tok: str, where: str) -> int:
    t = tok.lower()
    if t.startswith("0x"):
        t = t[2:]
    try:
        v = int(t, 16)
    except ValueError:
        raise NeurosimError(f"{where}: address: {tok!r} is not a hexadecimal address") from None
    if v > MAX_ADDR:
        raise NeurosimError(f"{where}: address: {tok} is beyond 2^63")
    return v


def read_trace(path, fmt: str | None = None) -> Trace:
    """Read a trace file; ``fmt`` is ``dramsim3`` or ``ramulator`` (default: guessed from the first line)."""
    p = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise NeurosimError(f"trace format {fmt!r}; allowed: {', '.join(FORMATS)}")
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise NeurosimError(f"{p}: no such trace file") from None
    except IsADirectoryError:
        raise NeurosimError(f"{p}: is a directory, not a trace file") from None
    except UnicodeDecodeError as e:
        raise NeurosimError(f"{p}: not a text trace ({e.reason} at byte {e.start})") from None
    cycles, addrs, writes = [], [], []
    last = 0
    for ln, line in enumerate(text.splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        tok = s.replace(",", " ").split()
        where = f"{p}:{ln}"
        if fmt is None:
            fmt = "dramsim3" if len(tok) == 3 else "ramulator"
        if fmt == "dramsim3":
            if len(tok) != 3:
                raise NeurosimError(f"{where}: expected 'ADDRESS READ|WRITE CYCLE' (DRAMsim3 format), got "
                                    f"{len(tok)} fields: {s!r}")
            a, op, cyc = tok
            try:
                c = int(cyc, 10)
            except ValueError:
                raise NeurosimError(f"{where}: cycle: {cyc!r} is not a non-negative integer") from None
            if c < 0:
                raise NeurosimError(f"{where}: cycle: {c} is negative")
            if c > MAX_ADDR:
                raise NeurosimError(f"{where}: cycle: {c} is beyond 2^63")
            if c < last:
                raise NeurosimError(f"{where}: cycle: {c} is before the previous request's {last}; "
                                    f"traces must be in time order")
            last = c
        else:
            if len(tok) != 2:
                raise NeurosimError(f"{where}: expected 'ADDRESS R|W' (Ramulator 1) or 'LD|ST ADDRESS' "
                                    f"(Ramulator 2), got {len(tok)} fields: {s!r}")
            if tok[0].upper() in _READS | _WRITES:
                op, a = tok
            else:
                a, op = tok
            c = 0
        u = op.upper()
        if u in _READS:
            w = False
        elif u in _WRITES:
            w = True
        else:
            raise NeurosimError(f"{where}: operation: {op!r}; allowed: READ, WRITE (DRAMsim3), R, W "
                                f"(Ramulator 1), LD, ST (Ramulator 2)")
        addrs.append(_hex(a, where))
        cycles.append(c)
        writes.append(w)
    if not addrs:
        raise NeurosimError(f"{p}: the trace has no requests")
    return Trace(np.array(cycles, np.int64), np.array(addrs, np.uint64), np.array(writes, bool), name=p.name)


# ---- synthetic traces (the benchmark's four patterns) ----

def synthetic(kind: str, n: int, cfg, *, seed: int = 0, gap: int = 0, write_fraction: float | None = None) -> Trace:
    """Synthetic request streams for a memory ``cfg`` (:class:`~hw.memory.config.DramConfig`):

    * ``stream``: sequential 64 B-aligned reads over consecutive requests (row-buffer friendly);
    * ``random``: uniform random addresses over the capacity, 1/3 writes (DRAMsim3's RandomCPU ratio);
    * ``strided``: reads jumping by one row of one bank each time (every access a row conflict);
    * ``interleaved``: four sequential streams (3 read, 1 write) round-robin, as a STREAM triad.

    ``gap`` cycles between requests (0: all ready at once, the closed-loop limit).
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise NeurosimError(f"synthetic trace: n must be a positive integer, got {n!r}")
    if not isinstance(gap, (int, np.integer)) or gap < 0:
        raise NeurosimError(f"synthetic trace: gap must be a non-negative integer, got {gap!r}")
    rng = np.random.default_rng(seed)
    rb = cfg.request_bytes
    cap = int(cfg.capacity_gib * 2**30)
    idx = np.arange(n, dtype=np.int64)
    if kind == "stream":
        addr = idx * rb
        w = np.zeros(n, bool)
    elif kind == "random":
        addr = rng.integers(0, cap // rb, n) * rb
        wf = 1 / 3 if write_fraction is None else write_fraction
        w = rng.random(n) < wf
    elif kind == "strided":
        # one row of one bank further every request: the row field's least significant bit
        from .config import _log2, parse_mapping
        widths = {"ch": _log2(cfg.channels), "ra": _log2(cfg.ranks), "bg": _log2(cfg.bankgroups),
                  "ba": _log2(cfg.banks_per_group), "ro": _log2(cfg.rows), "co": _log2(cfg.columns) - _log2(cfg.bl)}
        pos = 0
        for f in reversed(parse_mapping(cfg.address_mapping)):
            if f == "ro":
                break
            pos += widths[f]
        stride = rb << pos
        addr = (idx * stride) % cap
        w = np.zeros(n, bool)
    elif kind == "interleaved":
        streams = 4
        base = (rng.integers(0, cap // rb // 4, streams) * rb).astype(np.int64)
        k = idx // streams
        s = idx % streams
        addr = (base[s] + k * rb) % cap
        w = s == streams - 1
    else:
        raise NeurosimError(f"synthetic trace kind {kind!r}; allowed: stream, random, strided, interleaved")
    if write_fraction is not None and kind != "random":
        w = rng.random(n) < write_fraction
    if write_fraction is not None and not (0 <= write_fraction <= 1 and math.isfinite(write_fraction)):
        raise NeurosimError(f"synthetic trace: write_fraction must be in [0, 1], got {write_fraction}")
    return Trace(idx * gap, addr.astype(np.uint64), w, name=f"{kind}_{cfg.name}_{n}")
