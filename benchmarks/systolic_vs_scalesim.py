"""SCALE-Sim (2.0.2 or 3.0.0) against hw.systolic on the same cases, in one run: time ratio, memory, identical reports.

    .venv/bin/python benchmarks/systolic_vs_scalesim.py                 # all cases (ResNet-50 takes SCALE-Sim an hour+)
    .venv/bin/python benchmarks/systolic_vs_scalesim.py --quick         # AlexNet os32 CALC + USER, transformer GEMMs
    .venv/bin/python benchmarks/systolic_vs_scalesim.py --cases alexnet_os32_user10 resnet50_os32
    .venv/bin/python benchmarks/systolic_vs_scalesim.py --peer 3.0.0    # SCALE-Sim 3.0.0, whole processes (below)

``--peer 3.0.0``: SCALE-Sim 3.0.0 (its own venv ``benchmarks/.venv-scalesim3``, created on first use with
``python3.11 -m venv`` and ``pip install scalesim==3.0.0 'numpy<2.4'``: its USER mode calls ``int()`` on a
one-element array, a TypeError from numpy 2.4 on) runs as ``python -m scalesim.scale -c CFG -t TOPO -l LAYOUT
-i KIND -p OUT`` on the 3.0.0 configs of ``benchmarks/scalesim3/`` (dense and 2:4 sparse, CALC and USER); it
always writes its SRAM and DRAM traces (``-s`` is ignored), which is part of what it costs. Ours are measured
the same way, as whole processes from start-up to the reports on disk: ``python -m hw.systolic`` (SCALE-Sim's
own flags) and ``neurosim systolic``; the ratios are SCALE-Sim's process CPU (and wall) seconds over ours.
``small48`` runs every golden case of ``tests/golden/scalesim3`` (48 processes a side).

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
B3 = ROOT / "benchmarks" / "scalesim3"
G3 = ROOT / "tests" / "golden" / "scalesim3"
CASES3 = {  # SCALE-Sim 3.0.0 configs of the same arrays (scale.cfg, google.cfg)
    "alexnet_ws256": (B3 / "google3_ws256.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "alexnet_ws256_2of4_csr": (B3 / "google3_ws256_csr.cfg", B3 / "alexnet_2of4.csv", "conv"),
    "alexnet_ws256_user10": (B3 / "google3_ws256_user10.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "transformer_os32": (B3 / "scale3_os32.cfg", GOLD / "topologies/transformer_partial.csv", "gemm"),
    "alexnet_os32": (B3 / "scale3_os32.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "alexnet_os32_user10": (B3 / "scale3_os32_user10.cfg", GOLD / "topologies/alexnet.csv", "conv"),
    "resnet18_ws64x32": (B3 / "ws64x32.cfg", B3 / "resnet18.csv", "conv"),  # the zoo's ResNet-18 (below)
    "small48": None,  # every golden case of tests/golden/scalesim3, one process each
}
# benchmarks/scalesim3/resnet18.csv: the zoo's resnet18 (batch 1) as hw.systolic lowers it (padding folded into
# the input size), written as a SCALE-Sim topology: `neurosim systolic --model resnet18 --array 64x32` runs these.
QUICK3 = ["alexnet_ws256", "alexnet_ws256_2of4_csr", "small48"]
DEFAULT3 = ["resnet18_ws64x32", "alexnet_ws256_2of4_csr", "alexnet_ws256_user10", "small48"]
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


def scalesim3_python(given: str | None) -> Path:
    if given:
        return Path(given)
    venv = ROOT / "benchmarks" / ".venv-scalesim3"
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} with python3.11 and scalesim==3.0.0 ...", file=sys.stderr)
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "scalesim==3.0.0", "numpy<2.4"], check=True)
    return py


def small_cases():
    for d in sorted((G3 / "reports").iterdir()):
        c, t = d.name.split("__")
        yield G3 / "configs" / f"{c}.cfg", G3 / "topologies" / f"{t}.csv", "gemm" if "gemm" in t else "conv"


def _cases3(case):
    return list(small_cases()) if CASES3[case] is None else [CASES3[case]]


def _sum(runs: list[dict]) -> dict:
    return {"rc": max(r["rc"] for r in runs), "wall_s": sum(r["wall_s"] for r in runs),
            "cpu_s": sum(r["cpu_s"] for r in runs), "maxrss_mb": max(r["maxrss_mb"] for r in runs),
            "stderr": "".join(r["stderr"] for r in runs if r["rc"])[-2000:]}


def run_scalesim3(py: Path, case: str, out: Path) -> dict:
    runs = []
    for i, (cfg, topo, kind) in enumerate(_cases3(case)):
        d = out / str(i)
        d.mkdir()
        runs.append(_wait4([str(py), "-m", "scalesim.scale", "-c", str(cfg), "-t", str(topo), "-l",
                            str(B3 / "layout_unused.csv"), "-i", kind, "-p", str(d)], cwd=d))
    return _sum(runs)


def run_ours3(case: str, out: Path, how: str) -> dict:
    runs = []
    for i, (cfg, topo, kind) in enumerate(_cases3(case)):
        d = out / str(i)
        d.mkdir()
        if how == "hw.systolic":
            cmd = [sys.executable, "-m", "hw.systolic", "-c", str(cfg), "-t", str(topo), "-i", kind, "-p", str(d)]
        else:
            cmd = [sys.executable, "-m", "neurosim", "systolic", "-c", str(cfg), "-t", str(topo), "-i", kind,
                   "-p", str(d), "--no-progress"]
        runs.append(_wait4(cmd, cwd=ROOT))
    return _sum(runs)


def compare3(case: str, a: Path, b: Path) -> str:
    diffs = files = 0
    for i, (cfg, _, _) in enumerate(_cases3(case)):
        rn = next(line.split("=", 1)[1].strip() for line in cfg.read_text().splitlines()
                  if line.replace(" ", "").startswith("run_name="))
        da, db = a / str(i) / rn, b / str(i) / rn
        names = sorted(p.name for p in db.glob("*_REPORT.csv"))
        if names != sorted(p.name for p in da.glob("*_REPORT.csv")):
            return f"report files differ in {cfg.stem}"
        for f in names:
            files += 1
            la, lb = (da / f).read_text().splitlines(), (db / f).read_text().splitlines()
            diffs += sum(x != y for x, y in zip(la, lb)) + abs(len(la) - len(lb))
    return f"identical ({files} files)" if diffs == 0 else f"{diffs} lines differ"


def _x(r: float) -> str:
    return f"{r:.0f}x" if r >= 10 else f"{r:.2f}x"


def main3(args) -> int:
    cases = args.cases or (QUICK3 if args.quick else DEFAULT3)
    bad = [c for c in cases if c not in CASES3]
    if bad:
        print(f"unknown --peer 3.0.0 case(s) {', '.join(bad)}; valid: {', '.join(CASES3)}", file=sys.stderr)
        return 2
    py = None if args.skip_scalesim else scalesim3_python(args.scalesim_python)
    rows = []
    print(f"{'case':24s} {'SCALE-Sim 3.0.0 cpu s':>21s} {'wall s':>8s} {'MB':>6s} | {'hw.systolic cpu':>15s} "
          f"{'wall':>6s} | {'neurosim cpu':>12s} {'wall':>6s} | {'ratio cpu':>9s} {'wall':>6s} "
          f"{'(neurosim)':>10s}  reports")
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            dirs = {k: Path(tmp) / k for k in ("lean", "cli", "peer")}
            for d in dirs.values():
                d.mkdir()
            # warm-up, untimed: numba compiles a kernel signature once per machine and caches it on disk
            # (__pycache__, ~20 s the first time); SCALE-Sim's side has its .pyc files from its first run too
            (Path(tmp) / "warm").mkdir()
            run_ours3(case, Path(tmp) / "warm", "hw.systolic")
            lean = run_ours3(case, dirs["lean"], "hw.systolic")
            cli = run_ours3(case, dirs["cli"], "neurosim")
            for name, r in (("python -m hw.systolic", lean), ("neurosim systolic", cli)):
                if r["rc"] != 0:
                    print(f"{case}: {name} failed: {r['stderr']}")
                    return 1
            row = {"case": case, "processes": len(_cases3(case)), "ours_cpu_s": lean["cpu_s"],
                   "ours_wall_s": lean["wall_s"], "ours_peak_mb": lean["maxrss_mb"], "cli_cpu_s": cli["cpu_s"],
                   "cli_wall_s": cli["wall_s"]}
            if py is None:
                rows.append(row)
                print(f"{case:24s} {'-':>21s} {'-':>8s} {'-':>6s} | {lean['cpu_s']:15.2f} {lean['wall_s']:6.2f} | "
                      f"{cli['cpu_s']:12.2f} {cli['wall_s']:6.2f} |", flush=True)
                continue
            s = run_scalesim3(py, case, dirs["peer"])
            if s["rc"] != 0:
                print(f"{case}: SCALE-Sim 3.0.0 failed (rc {s['rc']}): {s['stderr']}")
                return 1
            row.update(scalesim_cpu_s=s["cpu_s"], scalesim_wall_s=s["wall_s"], scalesim_peak_mb=s["maxrss_mb"],
                       ratio_cpu=s["cpu_s"] / lean["cpu_s"], ratio_wall=s["wall_s"] / lean["wall_s"],
                       ratio_cpu_cli=s["cpu_s"] / cli["cpu_s"],
                       reports=compare3(case, dirs["lean"], dirs["peer"]),
                       reports_cli=compare3(case, dirs["cli"], dirs["peer"]))
            rows.append(row)
            print(f"{case:24s} {s['cpu_s']:21.1f} {s['wall_s']:8.1f} {s['maxrss_mb']:6.0f} | {lean['cpu_s']:15.2f} "
                  f"{lean['wall_s']:6.2f} | {cli['cpu_s']:12.2f} {cli['wall_s']:6.2f} | {_x(row['ratio_cpu']):>9s} "
                  f"{_x(row['ratio_wall']):>6s} {_x(row['ratio_cpu_cli']):>10s}  {row['reports']}"
                  + ("" if row["reports_cli"] == row["reports"] else f" (neurosim: {row['reports_cli']})"), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


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
    ap.add_argument("--peer", choices=["2.0.2", "3.0.0"], default="2.0.2",
                    help="which SCALE-Sim to run against (default 2.0.2; 3.0.0: whole processes, its own cases)")
    ap.add_argument("--cases", nargs="+", metavar="CASE",
                    help=f"cases to run (2.0.2: {', '.join(CASES)}; default all but ResNet-50 USER. "
                         f"3.0.0: {', '.join(CASES3)}; default {', '.join(DEFAULT3)})")
    ap.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    ap.add_argument("--scalesim-python", help="python of a venv with the peer (scalesim==2.0.2 or 3.0.0)")
    ap.add_argument("--skip-scalesim", action="store_true", help="time ours only")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--worker", nargs=4, metavar=("CFG", "TOPO", "KIND", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    if args.peer == "3.0.0":
        return main3(args)
    bad = [c for c in args.cases or [] if c not in CASES]
    if bad:
        print(f"unknown case(s) {', '.join(bad)}; valid: {', '.join(CASES)}", file=sys.stderr)
        return 2
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
