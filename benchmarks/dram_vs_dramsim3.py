"""hw.memory side by side with DRAMsim3 (umd-memsys/DRAMsim3) on the same request traces.

    benchmarks/dramsim3/build.sh                      # once: DRAMsim3 + our trace driver, offline
    .venv/bin/python benchmarks/dram_vs_dramsim3.py [-n 20000] [--json out.json] [--golden tests/golden/dram]

For each preset both simulators have (ddr4_3200 = DRAMsim3 configs/DDR4_8Gb_x8_3200.ini, hbm2 =
configs/HBM2_8Gb_x128.ini) and each trace (streaming reads, random 1/3 writes, strided row conflicts, four
interleaved streams; each closed-loop (all requests at cycle 0) and open-loop at about half the peak rate),
the same DRAMsim3-format trace file goes through DRAMsim3 (benchmarks/dramsim3/driver.cc: requests enter in
trace order as the controller accepts them, as hw.memory's front end) and through hw.memory.simulate.
Reported: completion cycle, mean read latency (accept -> data, tCK), read row-hit rate
(num_read_row_hits / num_read_cmds from DRAMsim3's own stats), and the per-request speed ratio
(DRAMsim3's simulation loop time over hw.memory's simulate time, both excluding process start-up, after one
warm-up run of ours so that numba's compile/cache load is not counted).

``--systolic`` adds the request streams the systolic simulator feeds the DRAM model for real layers
(``hw.systolic.dram.layer_request_trace``: ResNet-18's conv2_x and a conv3_x 3x3 convolution on a
32x32 ws array, 64 KiB SRAMs, USER bandwidth 32 words/cycle at a 1 GHz array clock).

``--golden DIR`` also writes small traces (``--golden-n``, 600 requests) and DRAMsim3's numbers for them into DIR, the
files tests/test_dram.py compares against.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw.memory import get, read_trace, simulate, synthetic  # noqa: E402

BUILD = ROOT / "benchmarks" / "dramsim3" / "build"
DRIVER = BUILD / "driver"
PRESETS = {"ddr4_3200": "DDR4_8Gb_x8_3200.ini", "hbm2": "HBM2_8Gb_x128.ini"}
KINDS = ("stream", "random", "strided", "interleaved")


def open_loop_gap(cfg) -> int:
    """Cycles between requests for about half the data-bus peak (one request per 2 bursts per channel)."""
    return max(1, round(2 * cfg.burst_cycles / cfg.channels))


def run_dramsim3(ini: str, trace_file: Path, workdir: Path) -> dict:
    if not DRIVER.exists():
        raise SystemExit(f"{DRIVER} missing: run benchmarks/dramsim3/build.sh first")
    out = workdir / (trace_file.stem + "_ds3")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    p = subprocess.run([str(DRIVER), str(BUILD / "src" / "configs" / ini), str(trace_file), str(out)],
                       capture_output=True, text=True, check=True)
    proc_s = time.perf_counter() - t0
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{\"completion_cycles\"")][-1]
    r = json.loads(line)
    stats = json.loads((out / "dramsim3.json").read_text())
    hits = sum(v["num_read_row_hits"] for v in stats.values())
    cmds = sum(v["num_read_cmds"] for v in stats.values())
    r["read_row_hit_rate"] = hits / cmds if cmds else float("nan")
    r["process_s"] = proc_s
    return r


def run_ours(preset: str, trace_file: Path, repeat: int = 3) -> dict:
    tr = read_trace(trace_file, "dramsim3")
    best = None
    for _ in range(repeat):
        r = simulate(preset, tr)
        best = r if best is None or r.totals["sim_wall_s"] < best.totals["sim_wall_s"] else best
    return best.totals


def cases(n: int):
    for preset in PRESETS:
        cfg = get(preset)
        for kind in KINDS:
            for load, gap in (("closed", 0), ("open", open_loop_gap(cfg))):
                yield preset, kind, load, synthetic(kind, n, cfg, gap=gap, seed=1)


SYSTOLIC_TOPOLOGY = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
rn18_conv2_1,58,58,3,3,64,64,1,
rn18_conv3_2,30,30,3,3,128,128,1,
"""


def systolic_cases(workdir: Path):
    from hw.systolic import SystolicConfig, read_topology
    from hw.systolic.dram import layer_request_trace

    topo = workdir / "rn18.csv"
    topo.write_text(SYSTOLIC_TOPOLOGY)
    cfg = SystolicConfig(run_name="rn18_ws32", array_rows=32, array_cols=32, dataflow="ws", bandwidth_mode="USER",
                         bandwidth_words=32)
    for layer in read_topology(topo, "conv"):
        for preset in PRESETS:
            yield preset, layer.name, "systolic", layer_request_trace(cfg, layer, preset, clock_mhz=1000.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000, help="requests per trace (default 20000)")
    ap.add_argument("--json", type=Path, help="write the table as JSON here")
    ap.add_argument("--golden", type=Path, help="also write small golden traces + DRAMsim3 results here")
    ap.add_argument("--golden-n", type=int, default=600, help="requests per golden trace (default 600)")
    ap.add_argument("--systolic", action="store_true", help="also the systolic simulator's streams of real layers")
    a = ap.parse_args(argv)
    simulate("hbm2", synthetic("random", 200, get("hbm2")))   # numba: compile / load the cache once
    rows = []
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        import itertools

        allc = itertools.chain(cases(a.n), systolic_cases(td) if a.systolic else ())
        for preset, kind, load, tr in allc:
            f = td / f"{preset}_{kind}_{load}.trc"
            tr.write(f, "dramsim3")
            d = run_dramsim3(PRESETS[preset], f, td)
            o = run_ours(preset, f)
            n = len(tr)
            row = {"preset": preset, "trace": kind, "load": load, "requests": n,
                   "ds3_completion": d["completion_cycles"], "our_completion": o["completion_cycles"],
                   "completion_err_pct": 100 * (o["completion_cycles"] - d["completion_cycles"]) / d["completion_cycles"],
                   "ds3_read_lat": d["mean_read_latency_cycles"], "our_read_lat": o["mean_read_latency_cycles"],
                   "read_lat_err_pct": 100 * (o["mean_read_latency_cycles"] - d["mean_read_latency_cycles"])
                   / d["mean_read_latency_cycles"],
                   "ds3_row_hit": d["read_row_hit_rate"], "our_row_hit": o["read_row_hit_rate"],
                   "row_hit_diff_pts": 100 * (o["read_row_hit_rate"] - d["read_row_hit_rate"]),
                   "ds3_ns_per_req": d["wall_s"] * 1e9 / n, "our_ns_per_req": o["sim_ns_per_request"],
                   "speed_ratio": (d["wall_s"] * 1e9 / n) / o["sim_ns_per_request"]}
            rows.append(row)
            print(f"{preset:9s} {kind:12s} {load:8s} {n:>7d} req  completion {d['completion_cycles']:>8d} vs {o['completion_cycles']:>8d} "
                  f"({row['completion_err_pct']:+.2f}%)  read lat {d['mean_read_latency_cycles']:8.2f} vs "
                  f"{o['mean_read_latency_cycles']:8.2f} ({row['read_lat_err_pct']:+.2f}%)  row hit "
                  f"{d['read_row_hit_rate']:.4f} vs {o['read_row_hit_rate']:.4f}  "
                  f"{row['ds3_ns_per_req']:7.0f} vs {row['our_ns_per_req']:6.0f} ns/req (x{row['speed_ratio']:.1f})",
                  flush=True)
        if a.golden:
            a.golden.mkdir(parents=True, exist_ok=True)
            gold = {}
            for preset, kind, load, tr in cases(a.golden_n):
                name = f"{preset}_{kind}_{load}.trc"
                tr.write(a.golden / name, "dramsim3")
                d = run_dramsim3(PRESETS[preset], a.golden / name, td)
                gold[name] = {"preset": preset, "dramsim3_ini": PRESETS[preset],
                              **{k: d[k] for k in ("completion_cycles", "mean_read_latency_cycles", "reads",
                                                   "requests", "read_row_hit_rate")}}
            (a.golden / "dramsim3_results.json").write_text(json.dumps(gold, indent=1, sort_keys=True) + "\n")
            print(f"golden: {len(gold)} traces and dramsim3_results.json in {a.golden}")
    worst = {k: max(abs(r[k]) for r in rows) for k in ("completion_err_pct", "read_lat_err_pct", "row_hit_diff_pts")}
    ratios = sorted(r["speed_ratio"] for r in rows)
    print(f"worst |error|: completion {worst['completion_err_pct']:.3f} %, mean read latency "
          f"{worst['read_lat_err_pct']:.3f} %, row hit {worst['row_hit_diff_pts']:.3f} points; speed ratio "
          f"(DRAMsim3 / ours per request) min {ratios[0]:.2f}, median {ratios[len(ratios) // 2]:.2f}, max {ratios[-1]:.2f}")
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "worst": worst}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
