"""SCALE-Sim 2.0.2 against hw.systolic on the same cases, in one run: time ratio, peak memory, identical reports.

    .venv/bin/python benchmarks/systolic_vs_scalesim.py                 # all cases (ResNet-50 takes SCALE-Sim an hour+)
    .venv/bin/python benchmarks/systolic_vs_scalesim.py --quick         # AlexNet os32 CALC + USER, transformer GEMMs
    .venv/bin/python benchmarks/systolic_vs_scalesim.py --cases alexnet_os32_user10 resnet50_os32

SCALE-Sim runs from its own venv (``.venv-scalesim`` at the repository root; created here on first use with
``~/.pyenv/versions/3.11.7/bin/python -m venv .venv-scalesim && .venv-scalesim/bin/pip install scalesim==2.0.2``,
or pass ``--scalesim-python``) as ``python -m scalesim.scale -c CFG -t TOPO -i KIND -p OUT``.
Ours runs in a fresh worker process per case (``--worker``) that loads the numba cache first (compile time
reported apart), then times ``simulate()`` + writing the three reports. Both sides are measured as CPU
seconds of their process (user + sys, robust to a shared machine) and wall seconds; peak memory is the
process's max RSS. The ratio column is SCALE-Sim CPU / ours CPU. Reports are compared line by line.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "tests" / "golden" / "scalesim"
CASES = {  # name: (config, topology, kind)
    "alexnet_os32": (GOLD / "configs/scale.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "alexnet_os32_user10": (GOLD / "configs/os32_user10.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "alexnet_is32": (GOLD / "configs/is32.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "alexnet_ws_google": (GOLD / "configs/google.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "alexnet_eyeriss": (GOLD / "configs/eyeriss.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "transformer_os32": (GOLD / "configs/scale.cfg", GOLD / "topologies/transformer_partial.csv", "gemm"),
    "resnet50_os32": (GOLD / "configs/scale.cfg", GOLD / "topologies/resnet50.csv", "conv"),
    "resnet50_os32_user10": (GOLD / "configs/os32_user10.cfg", GOLD / "topologies/resnet50.csv", "conv"),
}
QUICK = ["alexnet_os32", "alexnet_os32_user10", "transformer_os32"]
DEFAULT = [c for c in CASES if c != "resnet50_os32_user10"]
REPORTS = ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv")


def scalesim_python(given: str | None) -> Path:
    if given:
        return Path(given)
    venv = ROOT / ".venv-scalesim"
    py = venv / "bin" / "python"
    if not py.exists():
        base = Path.home() / ".pyenv/versions/3.11.7/bin/python"
        print(f"creating {venv} with {base} and scalesim==2.0.2 ...", file=sys.stderr)
        subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "scalesim==2.0.2"], check=True)
    return py


def run_scalesim(py: Path, case: str, out: Path) -> dict:
    cfg, topo, kind = CASES[case]
    cmd = [str(py), "-m", "scalesim.scale", "-c", str(cfg), "-t", str(topo), "-i", kind, "-p", str(out)]
    return _wait4(cmd, cwd=out)


def run_ours(case: str, out: Path) -> dict:
    cfg, topo, kind = CASES[case]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(cfg), str(topo), kind, str(out)]
    r = _wait4(cmd, cwd=ROOT)
    if r["rc"] == 0:
        r.update(json.loads(r["stdout"].strip().splitlines()[-1]))
    return r


def _wait4(cmd, cwd=None) -> dict:
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        p = subprocess.Popen(cmd, cwd=cwd, stdout=so, stderr=se, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        so.seek(0)
        se.seek(0)
        return {"rc": p.returncode, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
                "maxrss_mb": ru.ru_maxrss / 1024, "stdout": so.read(), "stderr": se.read()[-2000:]}


def worker(cfg: str, topo: str, kind: str, out: str) -> None:
    """One case, in this process: warm the JIT cache, then time simulate() + writing the reports."""
    t0 = time.process_time()
    w0 = time.perf_counter()
    from hw.systolic import Layer, SystolicConfig, read_config, read_topology, simulate

    config = read_config(cfg)
    for user in (False, True):  # load (or compile) both memory-model paths on a tiny layer
        c = SystolicConfig(array_rows=4, array_cols=4, dataflow=config.dataflow,
                           bandwidth_mode="USER" if user else "CALC", bandwidth_words=2 if user else None)
        simulate(c, [Layer("w", 5, 5, 3, 3, 2, 3, 2, 2)])
    setup_cpu, setup_wall = time.process_time() - t0, time.perf_counter() - w0
    t1, w1 = time.process_time(), time.perf_counter()
    res = simulate(config, read_topology(topo, kind))
    res.write(out)
    cpu, wall = time.process_time() - t1, time.perf_counter() - w1
    print(json.dumps({"sim_cpu_s": cpu, "sim_wall_s": wall, "setup_cpu_s": setup_cpu, "setup_wall_s": setup_wall,
                      "run_name": config.run_name,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def compare(a: Path, b: Path) -> str:
    diffs = 0
    for f in REPORTS:
        la, lb = (a / f).read_text().splitlines(), (b / f).read_text().splitlines()
        diffs += sum(x != y for x, y in zip(la, lb)) + abs(len(la) - len(lb))
    return "identical" if diffs == 0 else f"{diffs} lines differ"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", choices=list(CASES), help="cases to run (default: all but ResNet-50 USER)")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--scalesim-python", help="python of a venv with scalesim==2.0.2")
    ap.add_argument("--skip-scalesim", action="store_true", help="time ours only")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--worker", nargs=4, metavar=("CFG", "TOPO", "KIND", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    cases = args.cases or (QUICK if args.quick else DEFAULT)
    py = None if args.skip_scalesim else scalesim_python(args.scalesim_python)
    rows = []
    print(f"{'case':22s} {'SCALE-Sim cpu s':>15s} {'wall s':>8s} {'MB':>7s} | {'ours cpu s':>10s} {'wall s':>7s} "
          f"{'MB':>6s} | {'ratio cpu':>9s} {'ratio wall':>10s}  reports")
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            ours_dir, ss_dir = Path(tmp) / "ours", Path(tmp) / "scalesim"
            ours_dir.mkdir()
            ss_dir.mkdir()
            o = run_ours(case, ours_dir)
            if o["rc"] != 0:
                print(f"{case}: ours failed: {o['stderr']}")
                return 1
            s = run_scalesim(py, case, ss_dir) if py else None
            row = {"case": case, "ours_sim_cpu_s": o["sim_cpu_s"], "ours_sim_wall_s": o["sim_wall_s"],
                   "ours_process_cpu_s": o["cpu_s"], "ours_setup_cpu_s": o["setup_cpu_s"],
                   "ours_peak_mb": o["maxrss_mb"]}
            if s is not None:
                if s["rc"] != 0:
                    print(f"{case}: SCALE-Sim failed (rc {s['rc']}): {s['stderr']}")
                    return 1
                row.update(scalesim_cpu_s=s["cpu_s"], scalesim_wall_s=s["wall_s"], scalesim_peak_mb=s["maxrss_mb"],
                           ratio_cpu=s["cpu_s"] / o["sim_cpu_s"], ratio_wall=s["wall_s"] / o["sim_wall_s"],
                           reports=compare(ours_dir / o["run_name"], ss_dir / o["run_name"]))
            rows.append(row)
            if s is not None:
                print(f"{case:22s} {s['cpu_s']:15.1f} {s['wall_s']:8.1f} {s['maxrss_mb']:7.0f} | {o['sim_cpu_s']:10.3f} "
                      f"{o['sim_wall_s']:7.3f} {o['maxrss_mb']:6.0f} | {row['ratio_cpu']:8.0f}x {row['ratio_wall']:9.0f}x  "
                      f"{row['reports']}", flush=True)
            else:
                print(f"{case:22s} {'-':>15s} {'-':>8s} {'-':>7s} | {o['sim_cpu_s']:10.3f} {o['sim_wall_s']:7.3f} "
                      f"{o['maxrss_mb']:6.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
