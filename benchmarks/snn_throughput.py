"""Throughput and peak memory of the snntorch backend at T=32, beside the ANN it was converted from.

    .venv/bin/python benchmarks/snn_throughput.py                       # mlp, lenet5, resnet_tiny
    .venv/bin/python benchmarks/snn_throughput.py --models mlp --samples 512 --timesteps 32

Each configuration runs in its own process (so its peak RSS is its own) on the same MNIST-5k test
images: the ANN (one batched forward), then the converted SNN for T steps with

* ``layer/auto``: the default: layer by layer, synapses as one [T*batch] GEMM/conv, the neurons as
  one fused numba pass per population;
* ``layer/snntorch``: layer by layer, neurons stepped through ``snntorch.Leaky`` (T calls per layer);
* ``layer/torch``: layer by layer, our in-place torch neuron update;
* ``step/snntorch``: the textbook loop (for t: for layer: ...) with ``snntorch.Leaky``, which is what
  an snntorch user writes;
* ``layer/auto/signed``, ``step/torch/signed``: the same network converted with signed neurons
  (``neurosim.convert(..., signed=True)``; Leaky has no negative spike, so the textbook loop runs our
  torch update): what taking back spikes costs in the fused kernel and in the loop.

The four unsigned configurations give identical spikes (``tests/test_snntorch.py``). Reported: samples/s, the SNN's slowdown
against the ANN, the speed-up over the textbook loop, peak RSS of the process and what the run added
to it (``added_rss_mib``: above the RSS after imports, data and model). Ratios from one run are the
numbers to quote; absolute times depend on the machine and its load. Uses the checkpoints that
``neurosim convert`` caches under ``runs/convert`` when present (else untrained weights, which
changes spike counts but hardly the speed).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {"mlp": {}, "lenet5": {"batchnorm": True, "pool": "max"}, "resnet_tiny": {}}
CONFIGS = [("layer", "auto"), ("layer", "snntorch"), ("layer", "torch"), ("step", "snntorch"),
           ("layer", "auto", "signed"), ("step", "torch", "signed")]


def _model(name: str):
    import torch

    import models
    from models.qcfs import register

    register()
    ckpts = sorted(Path("runs/convert").glob(f"{name}-relu-mnist5k-*.pt"))
    if ckpts:
        return models.load(ckpts[0]).eval(), str(ckpts[0])
    torch.manual_seed(0)
    return models.create(name, **MODELS[name]).eval(), "untrained"


def _worker(q, name, what, samples, T, threads, repeat):
    import torch

    torch.set_num_threads(threads)
    import neurosim
    from models.data import load_dataset

    train, test = load_dataset("mnist5k")
    x = test.x[:samples]
    model, src = _model(name)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if what == "ann":
        with torch.no_grad():
            model(x[:8])
            dt = float("inf")
            for _ in range(repeat):  # best of `repeat`: the machine is shared
                t = time.perf_counter()
                model(x)
                dt = min(dt, time.perf_counter() - t)
        q.put({"model": name, "config": "ANN", "samples_per_s": samples / dt, "weights": src,
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "added_rss_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024})
        return
    mode, impl, *flags = what
    net = neurosim.convert(model, train.x[:500], signed="signed" in flags)
    net.run(x[:2], 2, mode=mode, neuron_impl=impl)  # warm-up (numba compiles or loads its cache)
    dt = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        r = net.run(x, T, mode=mode, neuron_impl=impl)
        dt = min(dt, time.perf_counter() - t)
    q.put({"model": name, "config": "/".join(what), "samples_per_s": samples / dt, "weights": src,
           "spikes_per_sample": r.total_spikes / samples, "synops_per_sample": r.total_synops,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "added_rss_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024})


def measure(name, what, samples, T, threads, repeat=3):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(q, name, what, samples, T, threads, repeat))
    p.start()
    out = q.get()
    p.join()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--timesteps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="best of N timings per configuration")
    ap.add_argument("--configs", default=",".join("/".join(c) for c in CONFIGS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import pandas as pd

    rows = []
    configs = [tuple(c.split("/")) for c in args.configs.split(",")]
    for name in args.models.split(","):
        ann = measure(name, "ann", args.samples, args.timesteps, args.threads, args.repeat)
        rows.append(ann)
        for cfg in configs:
            r = measure(name, cfg, args.samples, args.timesteps, args.threads, args.repeat)
            r["slowdown_vs_ann"] = ann["samples_per_s"] / r["samples_per_s"]
            rows.append(r)
            print(f"  {name} {r['config']}: {r['samples_per_s']:.1f} samples/s", file=sys.stderr)
    df = pd.DataFrame(rows)
    for name in df["model"].unique():
        m = df["model"] == name
        base = df[m & (df["config"] == "step/snntorch")]["samples_per_s"]
        if len(base):
            df.loc[m & (df["config"] != "ANN"), "speedup_vs_textbook"] = df[m]["samples_per_s"] / float(base.iloc[0])
    cols = ["model", "config", "samples_per_s", "slowdown_vs_ann", "speedup_vs_textbook", "peak_rss_mib", "added_rss_mib",
            "spikes_per_sample", "synops_per_sample"]
    df = df[[c for c in cols if c in df]]
    if args.json:
        print(json.dumps(df.to_dict(orient="records"), indent=2))
    else:
        print(f"T={args.timesteps}, {args.samples} MNIST-5k test images, torch threads={args.threads}, "
              f"best of {args.repeat}")
        print(df.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else df.to_string(index=False))


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
