"""``simulate(preset, trace) -> DramReport``: run a request trace through a DRAM/HBM memory system.

The report is a :class:`hw.report.CostReport` (family ``"dram"``): one row per channel, totals for the
whole system, the configuration in ``assumptions``. Units: cycles are the DRAM's tCK (as DRAMsim3 and
Ramulator count them), ``*_ns`` nanoseconds, bandwidth GB/s (10^9 B/s), energy pJ / J.

Metrics (all per channel and in total):

* ``completion_cycles``: the cycle at which the last request completed (a read's data returned, a posted
  write acknowledged), counted from cycle 0 of the trace; ``drained_cycles``: the last write reached the DRAM.
* ``bandwidth_gbs`` = requests x request bytes / (completion_cycles x tCK).
* ``mean_read_latency_cycles``: from the controller accepting a read to its data returning, as DRAMsim3
  measures it; ``mean_read_latency_from_trace_cycles`` adds the time a read waited outside a full queue.
* ``read_row_hit_rate``: RD commands to an already-open row over all RD commands (DRAMsim3's
  ``num_read_row_hits / num_read_cmds``); ``row_hits`` / ``row_misses`` (ACT to a closed bank) /
  ``row_conflicts`` (a PRE to close another row first).
* energy: Micron's IDD model per command plus background (:func:`hw.memory.config.energy_per_command_pj`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.report import CostReport, _clean
from neurosim.errors import NeurosimError

from .config import DramConfig, decode, energy_per_command_pj, timing_table
from .kernel import N_STAT, simulate_kernel
from .presets import get
from .trace import Trace, read_trace


@dataclass
class DramReport(CostReport):
    """A :class:`CostReport` whose JSON also carries the totals at the top level (``completion_cycles``,
    ``mean_read_latency_cycles``, ``bandwidth_gbs``, ``read_row_hit_rate``, ...) and per-request arrays
    (``accept``, ``issue``, ``done``: not in the JSON)."""

    accept: np.ndarray | None = None
    issue: np.ndarray | None = None
    done: np.ndarray | None = None

    def to_dict(self):
        d = super().to_dict()
        d = {"preset": self.device, "trace": self.model, **_clean(self.totals), **d}
        d["channels"] = d.pop("ops")
        return d


def _arrays(cfg: DramConfig, trace: Trace):
    ch, ra, bg, ba, ro, co = decode(cfg, trace.addr)
    bank = ra * cfg.banks + bg * cfg.banks_per_group + ba
    key = (trace.addr >> np.uint64(int(cfg.request_bytes).bit_length() - 1)).astype(np.int64)
    return ch, bank, ro, co, key


def run_kernel(cfg: DramConfig, trace: Trace, engine: str = "numba"):
    """Per-request accept/issue/done arrays, per-channel stats and the final cycle."""
    ch, bank, ro, co, key = _arrays(cfg, trace)
    n = len(trace)
    accept = np.zeros(n, np.int64)
    issue = np.full(n, -1, np.int64)
    done = np.zeros(n, np.int64)
    stats = np.zeros((cfg.channels, N_STAT), np.int64)
    args = (trace.cycle, trace.is_write, ch, bank, ro, co, key, cfg.channels, cfg.ranks, cfg.banks,
            cfg.banks_per_group, timing_table(cfg), cfg.tfaw, cfg.read_delay, cfg.write_delay,
            cfg.page_policy == "closed", {"staggered": 0, "simultaneous": 1, "off": 2}[cfg.refresh], cfg.trefi,
            cfg.trans_queue_size, cfg.cmd_queue_size, cfg.write_drain_low, cfg.row_hit_cap, cfg.dual_command)
    if engine == "numba":
        end = simulate_kernel(*args, accept, issue, done, stats)
    elif engine == "reference":
        from .reference import simulate_reference
        end = simulate_reference(*args, accept, issue, done, stats)
    else:
        raise NeurosimError(f"engine {engine!r}; allowed: numba, reference")
    return accept, issue, done, stats, int(end), ch


def simulate(memory, trace, *, fmt: str | None = None, engine: str = "numba", **changes) -> DramReport:
    """Simulate ``trace`` (a :class:`Trace`, a trace file path, or ``(cycles, addrs, is_write)``) on
    ``memory`` (a preset name or :class:`DramConfig`); ``changes`` override config fields
    (``page_policy="closed"``, ``address_mapping=...``, ``bank_xor=True``, ...)."""
    cfg = get(memory)
    if changes:
        cfg = cfg.with_(**changes)
    if isinstance(trace, (str, Path)):
        trace = read_trace(trace, fmt)
    elif not isinstance(trace, Trace):
        try:
            c, a, w = trace
        except (TypeError, ValueError):
            raise NeurosimError("trace must be a Trace, a file path or (cycles, addresses, is_write)") from None
        trace = Trace(c, a, w)
    t0 = time.perf_counter()
    accept, issue, done, stats, end, ch = run_kernel(cfg, trace, engine)
    wall = time.perf_counter() - t0
    return _report(cfg, trace, accept, issue, done, stats, end, ch, wall, engine)


def _pct(x, q):
    return float(np.percentile(x, q)) if x.size else float("nan")


def _report(cfg, trace, accept, issue, done, stats, end, ch, wall, engine) -> DramReport:
    e = energy_per_command_pj(cfg)
    rb = cfg.request_bytes
    w = trace.is_write
    rows = []
    tot = {}

    def metrics(sel, st):
        rd = sel & ~w
        lat = (done[rd] - accept[rd]).astype(np.float64)
        lat_tr = (done[rd] - trace.cycle[rd]).astype(np.float64)
        comp = int(done[sel].max()) if sel.any() else 0
        wr_issued = issue[sel & w]
        wr_issued = wr_issued[wr_issued >= 0]
        drained = int(max(comp, (wr_issued.max() + cfg.write_delay) if wr_issued.size else 0))
        nreq = int(sel.sum())
        rd_cmds, rd_hits, wr_cmds, wr_hits, acts, pres, conf, refs, act_c, pre_c = (int(v) for v in st[:10])
        energy = {"act_energy_pj": acts * e["act"], "read_energy_pj": rd_cmds * e["read"],
                  "write_energy_pj": wr_cmds * e["write"], "refresh_energy_pj": refs * e["ref"],
                  "background_energy_pj": act_c * e["act_stb_cycle"] + pre_c * e["pre_stb_cycle"]}
        etot = sum(energy.values())
        m = {
            "requests": nreq, "reads": int(rd.sum()), "writes": int((sel & w).sum()),
            "completion_cycles": comp, "completion_ns": comp * cfg.tck_ns, "drained_cycles": drained,
            "bandwidth_gbs": nreq * rb / (comp * cfg.tck_ns) if comp else 0.0,
            "mean_read_latency_cycles": float(lat.mean()) if lat.size else float("nan"),
            "mean_read_latency_ns": float(lat.mean()) * cfg.tck_ns if lat.size else float("nan"),
            "p50_read_latency_cycles": _pct(lat, 50), "p95_read_latency_cycles": _pct(lat, 95),
            "p99_read_latency_cycles": _pct(lat, 99), "max_read_latency_cycles": float(lat.max()) if lat.size
            else float("nan"),
            "mean_read_latency_from_trace_cycles": float(lat_tr.mean()) if lat_tr.size else float("nan"),
            "read_row_hit_rate": rd_hits / rd_cmds if rd_cmds else float("nan"),
            "write_row_hit_rate": wr_hits / wr_cmds if wr_cmds else float("nan"),
            "row_hits": rd_hits + wr_hits, "row_misses": acts - conf, "row_conflicts": conf,
            "read_cmds": rd_cmds, "write_cmds": wr_cmds, "activates": acts, "precharges": pres, "refreshes": refs,
            "forwarded_reads": int(st[11]), "merged_requests": int(st[12]),
            **energy, "energy_pj": etot, "energy_j": etot * 1e-12,
            "power_w": etot * 1e-12 / (drained * cfg.tck_ns * 1e-9) if drained else float("nan"),
        }
        return m

    for c in range(cfg.channels):
        sel = ch == c
        rows.append({"channel": c, **metrics(sel, stats[c])})
    tot = metrics(np.ones(len(trace), bool), stats.sum(axis=0))
    tot["peak_bandwidth_gbs"] = cfg.peak_bandwidth_gbs
    tot["bandwidth_utilisation"] = tot["bandwidth_gbs"] / cfg.peak_bandwidth_gbs
    tot["sim_wall_s"] = wall
    tot["sim_ns_per_request"] = wall * 1e9 / len(trace)
    tot["simulated_cycles"] = end
    notes = []
    if "stand-in" in cfg.sources.get("power", ""):
        notes.append(f"energy: {cfg.sources['power']}")
    assumptions = {k: v for k, v in cfg.to_dict().items() if k != "sources"}
    assumptions["engine"] = engine
    assumptions["sources"] = dict(cfg.sources)
    return DramReport(model=trace.name, device=cfg.name, family="dram", mode="trace", rows=rows, totals=tot,
                      assumptions=assumptions, notes=notes, accept=accept, issue=issue, done=done)
