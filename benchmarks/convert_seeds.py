"""Seed spread of ANN-to-SNN conversion on MNIST-5k: N training seeds, accuracy per T against each seed's ANN.

For every seed the zoo model is trained (or loaded from the per-seed checkpoint cache under
``runs/convert/``, the same checkpoints ``neurosim convert MODEL --seed N`` uses), converted with each
requested recipe and simulated on the 1,000 MNIST-5k test images; one JSON row per (seed, recipe, T)
goes to stdout and to ``--out``, then a table of the mean and the worst seed of SNN - ANN (points).

Recipes: ``plain`` (IF neurons), ``signed``, ``lowlat`` (signed neurons + one-pass bias calibration for
each T: what ``neurosim convert --low-latency`` runs).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/convert_seeds.py --model resnet_tiny --activation qcfs \\
        --seeds 0,1,2,3,4 --timesteps 4,8,16,32 --recipes plain,lowlat --out runs/convert/seeds-resnet_tiny-qcfs.jsonl
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RECIPES = {"plain": {}, "signed": {"signed": True}, "lowlat": {"signed": True, "calibrate": True}}


def _ints(s):
    return [int(t) for t in s.split(",") if t.strip()]


def run_seed(model, activation, seed, ts, recipes, overrides, epochs, iters, calibration=1000):
    import neurosim
    from models.train import evaluate, resolve_dataset
    from neurosim.convert.pipeline import train_or_load

    ov = {"activation": activation, **overrides}
    ann, ckpt = train_or_load(model, "mnist5k", ov, epochs=epochs, seed=seed, quiet=True)
    train, test = resolve_dataset("mnist5k")
    ann.eval()
    ann_acc = evaluate(ann, test)
    y = test.y.numpy()
    rows = []
    for r in recipes:
        kw = dict(RECIPES[r])
        cal = kw.pop("calibrate", False)
        if not cal:  # one run at max T gives every T
            t0 = time.perf_counter()
            net = neurosim.convert(ann, train.x[:calibration], **kw)
            conv = time.perf_counter() - t0
            res = net.run(test.x, max(ts), record_trace=True)
            acc = res.accuracy_trace(y)
            for t in ts:
                rows.append({"model": model, "activation": activation, "seed": seed, "recipe": r, "T": t,
                             "ann": ann_acc, "snn": float(acc[t - 1]), "convert_s": conv, "simulate_s": res.wall_s,
                             "checkpoint": str(ckpt)})
        else:
            for t in ts:
                t0 = time.perf_counter()
                net = neurosim.convert(ann, train.x[:calibration], calibrate=t, calibration_iters=iters, **kw)
                conv = time.perf_counter() - t0
                res = net.run(test.x, t)
                rows.append({"model": model, "activation": activation, "seed": seed, "recipe": r, "T": t,
                             "ann": ann_acc, "snn": res.accuracy(y), "convert_s": conv, "simulate_s": res.wall_s,
                             "checkpoint": str(ckpt)})
    return rows


def table(rows):
    """Mean and worst (most negative) SNN - ANN in points per recipe and T, and the ANN range."""
    out = []
    keys = sorted({(r["model"], r["activation"], r["recipe"]) for r in rows})
    for m, a, rc in keys:
        sel = [r for r in rows if (r["model"], r["activation"], r["recipe"]) == (m, a, rc)]
        seeds = sorted({r["seed"] for r in sel})
        anns = [next(r["ann"] for r in sel if r["seed"] == s) for s in seeds]
        line = {"model": m, "activation": a, "recipe": rc, "seeds": len(seeds),
                "ann_mean": 100 * float(np.mean(anns)), "ann_min": 100 * min(anns), "ann_max": 100 * max(anns)}
        for t in sorted({r["T"] for r in sel}):
            d = [100 * (r["snn"] - r["ann"]) for r in sel if r["T"] == t]
            s = [100 * r["snn"] for r in sel if r["T"] == t]
            line[f"T{t}"] = f"{np.mean(s):.1f} ({np.mean(d):+.1f} / {min(d):+.1f})"
            line[f"cal_s_T{t}"] = float(np.mean([r["convert_s"] for r in sel if r["T"] == t]))
        out.append(line)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet_tiny")
    ap.add_argument("--activation", default="qcfs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model option")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--timesteps", default="4,8,16,32")
    ap.add_argument("--recipes", default="plain,lowlat")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--iters", type=int, default=1, help="calibration passes per population")
    ap.add_argument("--out", default=None, help="append the JSON rows to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurosim.cli import parse_sets

    overrides = parse_sets(args.set)
    recipes = [r for r in args.recipes.split(",") if r]
    for r in recipes:
        if r not in RECIPES:
            sys.exit(f"unknown recipe {r!r}; valid: {', '.join(RECIPES)}")
    rows = []
    for seed in _ints(args.seeds):
        rs = run_seed(args.model, args.activation, seed, _ints(args.timesteps), recipes, overrides, args.epochs,
                      args.iters)
        for r in rs:
            print(json.dumps(r), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
        rows += rs
    import pandas as pd

    print(pd.DataFrame(table(rows)).to_string(index=False))


if __name__ == "__main__":
    main()
