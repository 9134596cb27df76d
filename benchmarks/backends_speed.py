"""Per-sample simulation time of the same converted network on every backend at T=32.

Also shows where Lava's time goes: a Lava run compiles the process graph and forks one OS process
per Lava process, then every time step is a barrier-synchronised round of messages between them.
So the cost is ``compile+spawn`` once per run plus ``steps x (per-step sync of all processes)``.
The backend therefore (1) lowers the IR to few processes (one Dense/Conv per source->population
path, pooling folded into the following conv, biases into neurons, Add weights into synapses) and
(2) runs all samples back to back in one run (membranes restart every T steps), instead of one run
per sample. This script measures both effects: ``lava (one run per sample)`` is the naive way.

    .venv/bin/python benchmarks/backends_speed.py --model mlp --samples 100 --timesteps 32
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
    args = ap.parse_args(argv)
    net, x, y, _ = load_network(args.model, args.checkpoint)
    T, n = args.timesteps, args.samples
    rows = []

    def timed(label, xs, **kw):
        t0 = time.perf_counter()
        r = net.run(xs, T, **kw)
        wall = time.perf_counter() - t0
        rows.append((label, len(xs), wall / len(xs), getattr(r, "lava_processes", "")))
        print(f"# {label}: {wall:.1f} s", file=sys.stderr, flush=True)
        return r

    timed("snntorch (layer mode)", x[:n], backend="snntorch")
    timed("brian2 (numpy target, samples side by side)", x[:n], backend="brian2")
    timed("lava float (all samples in one run)", x[:n], backend="lava")
    timed("lava fixed (all samples in one run)", x[:n], backend="lava", precision="fixed")
    timed("lava float (one run per sample)", x[:args.naive_samples], backend="lava", batch_size=1)
    # per-step cost: the same run with twice the steps; the difference is pure stepping
    t0 = time.perf_counter()
    net.run(x[:10], T, backend="lava")
    t1 = time.perf_counter()
    net.run(x[:20], T, backend="lava")
    t2 = time.perf_counter()
    per_step = ((t2 - t1) - (t1 - t0)) / (10 * T)
    fixed = (t1 - t0) - 10 * T * per_step
    base = rows[0][2]
    print(f"\n{args.model}, T={T}, {n} MNIST-5k test images (naive Lava: {args.naive_samples})\n")
    print("| backend | samples | ms / sample | x snntorch | Lava processes |")
    print("|---|---|---|---|---|")
    for label, k, per, procs in rows:
        print(f"| {label} | {k} | {1000 * per:.2f} | {per / base:.1f} | {procs} |")
    print(f"\nLava: {1000 * per_step:.2f} ms per time step, {fixed:.1f} s per run (compile + spawn + stop); "
          f"IR nodes: {len(net.nodes)}")


if __name__ == "__main__":
    main()
