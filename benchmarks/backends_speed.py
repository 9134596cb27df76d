"""Per-sample simulation time of the same converted network on every backend at T=32, and how Lava scales
with lanes.

Also shows where Lava's time goes: a Lava run compiles the process graph and forks one OS process
per Lava process, then every time step is a barrier-synchronised round of messages between them.
So the cost is ``compile+spawn`` once per run plus ``steps x (per-step sync of all processes +
compute)``. The backend therefore (1) lowers the IR to few processes (one Dense/Conv per
source->population path, pooling folded into the following conv, biases into neurons, Add weights
into synapses), (2) runs samples back to back in one run (membranes restart every T steps) instead
of one run per sample, and (3) runs ``lanes`` samples side by side in every process, so one round of
messages serves ``lanes`` samples and a run of B samples takes ``ceil(B / lanes) * T + depth`` steps.
Every backend runs once on 2 samples before anything is timed (imports, numba
compilation). ``lava (one run per sample)`` is the naive way; the lanes table runs ``--scaling-samples`` samples
at each of ``--lanes`` (``lanes=1``: back to back only, the backend before lanes).

    .venv/bin/python benchmarks/backends_speed.py --model mlp --samples 1000 --timesteps 32
    .venv/bin/python benchmarks/backends_speed.py --model mlp --samples 1000 --timesteps 32 --skip brian2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None):
    from backends_agreement import load_network

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--naive-samples", type=int, default=4, help="samples for the one-run-per-sample Lava case")
    ap.add_argument("--timesteps", type=int, default=32)
    ap.add_argument("--lanes", default="1,8,32,128", help="comma-separated lane counts for the scaling table "
                    "('' for none); the main rows use the default (automatic) lanes")
    ap.add_argument("--scaling-samples", type=int, default=128, help="samples per run of the lanes table")
    ap.add_argument("--skip", default="", help="comma-separated rows to leave out: brian2, naive, fixed")
    ap.add_argument("--code", default=None, help="time the neurosim of another checkout (e.g. `git worktree add "
                    "/tmp/old REV`), same protocol: before/after in one table each")
    args = ap.parse_args(argv)
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
    skip = {k.strip() for k in args.skip.split(",") if k.strip()}
    import inspect

    from neurosim.backends import get_backend

    one_lane = {"lanes": 1} if "lanes" in inspect.signature(get_backend("lava").run).parameters else {}
    if not one_lane:  # a checkout before lanes: one Lava process per sample is its only mode
        skip, args.lanes = skip | {"naive"}, ""
    lanes_list = [int(v) for v in args.lanes.split(",") if v.strip()]
    net, x, y, _ = load_network(args.model, args.checkpoint)
    T, n = args.timesteps, args.samples
    rows = []

    def timed(label, xs, **kw):
        t0 = time.perf_counter()
        r = net.run(xs, T, **kw)
        wall = time.perf_counter() - t0
        rows.append((label, len(xs), wall / len(xs), getattr(r, "lava_processes", ""), getattr(r, "lava_lanes", ""),
                     getattr(r, "lava_runs", ""), getattr(r, "lava_steps", ""),
                     float((r.predictions == y[:len(xs)]).mean())))
        print(f"# {label}: {wall:.1f} s", file=sys.stderr, flush=True)
        return r

    # one-time costs (imports, numba compilation) out of the way: every backend once on 2 samples
    for b in ["snntorch", "lava"] + ([] if "brian2" in skip else ["brian2"]):
        net.run(x[:2], 4, backend=b)
    timed("snntorch (layer mode)", x[:n], backend="snntorch")
    if "brian2" not in skip:
        timed("brian2 (numpy target, samples side by side)", x[:n], backend="brian2")
    mode = "lanes: default" if one_lane else "back to back, before lanes"
    timed(f"lava float ({mode})", x[:n], backend="lava")
    if "fixed" not in skip:
        timed(f"lava fixed ({mode})", x[:n], backend="lava", precision="fixed")
    if "naive" not in skip:
        timed("lava float (one run per sample)", x[:args.naive_samples], backend="lava", batch_size=1, lanes=1)
    # per-step cost of one lane: the same run with twice the steps; the difference is pure stepping
    t0 = time.perf_counter()
    net.run(x[:10], T, backend="lava", **one_lane)
    t1 = time.perf_counter()
    net.run(x[:20], T, backend="lava", **one_lane)
    t2 = time.perf_counter()
    per_step = ((t2 - t1) - (t1 - t0)) / (10 * T)
    fixed = (t1 - t0) - 10 * T * per_step
    base = rows[0][2]
    import neurosim

    print(f"\n{args.model}, T={T}, {n} MNIST-5k test images (naive Lava: {args.naive_samples}); "
          f"code: {Path(neurosim.__file__).parents[1]}\n")
    print("| backend | samples | ms / sample | x snntorch | Lava processes | lanes | Lava runs | Lava steps | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, k, per, procs, lanes, runs, steps, acc in rows:
        print(f"| {label} | {k} | {1000 * per:.2f} | {per / base:.2f} | {procs} | {lanes} | {runs} | {steps} | "
              f"{100 * acc:.1f}% |")
    print(f"\nLava, one lane: {1000 * per_step:.2f} ms per time step, {fixed:.1f} s per run (compile + spawn + stop; "
          f"from 10 and 20 samples at lanes=1, noisy on a loaded machine); "
          f"IR nodes: {len(net.nodes)}")
    if not lanes_list:
        return
    m = args.scaling_samples
    print(f"\nLava lanes scaling: {m} samples per run, T={T} (x snntorch: against the snntorch row above)\n")
    print("| precision | lanes | Lava runs | Lava steps | s | ms / sample | x snntorch |")
    print("|---|---|---|---|---|---|---|")
    for precision in ("float",) + (() if "fixed" in skip else ("fixed",)):
        for lanes in lanes_list:
            t0 = time.perf_counter()
            r = net.run(x[:m], T, backend="lava", precision=precision, lanes=lanes)
            wall = time.perf_counter() - t0
            print(f"| {precision} | {r.lava_lanes} | {r.lava_runs} | {r.lava_steps} | {wall:.1f} | {1000 * wall / m:.2f} | "
                  f"{wall / m / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
