"""Our workload profiler beside fvcore and ptflops on the torchvision reference models, in one run.

    .venv/bin/pip install -e '.[peers]'     # fvcore, ptflops (or: make bench)
    .venv/bin/python benchmarks/profile_vs_peers.py [--models resnet50,vit_b_16] [--json]

For each model: the published MACs (torchvision's GFLOPS column, tests/golden/param_counts.json), the
MACs each tool reports, its relative difference, and the wall time of each tool on the same machine
(ours traces on the meta device; fvcore and ptflops need real weights and a real forward pass).
Report ratios, not absolute times: the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path

import torch

import models
from hw.workload import profile

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "param_counts.json"
REFERENCES = ["alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "resnet50", "mobilenet_v2", "vit_b_16"]


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def ours(name):
    w = profile(name)
    return w.macs


def fvcore_macs(model, x):
    from fvcore.nn import FlopCountAnalysis  # counts one "flop" per MAC, like torchvision

    fca = FlopCountAnalysis(model, x)
    fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(fca.total())


def ptflops_macs(model, x):
    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(model, tuple(x.shape[1:]), as_strings=False,
                                        print_per_layer_stat=False, verbose=False, backend="pytorch")
    return int(macs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(REFERENCES))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    golden = json.loads(GOLDEN.read_text())
    torch.manual_seed(0)
    ours("resnet18")  # warm-up: the first call imports the zoo, which is not the profiler's cost
    rows = []
    for name in args.models.split(","):
        pub = golden[name]["macs"]
        m_ours, t_ours = _timed(lambda: ours(name))
        model = models.create(name).eval()
        x = models.example_inputs(name)[0]
        with torch.no_grad():
            m_fv, t_fv = _timed(lambda: fvcore_macs(model, x))
            m_pt, t_pt = _timed(lambda: ptflops_macs(model, x))
        rows.append(dict(model=name, published=pub,
                         ours=m_ours, ours_err=m_ours / pub - 1,
                         fvcore=m_fv, fvcore_err=m_fv / pub - 1,
                         ptflops=m_pt, ptflops_err=m_pt / pub - 1,
                         t_ours_s=t_ours, t_fvcore_s=t_fv, t_ptflops_s=t_pt,
                         fvcore_over_ours=t_fv / t_ours, ptflops_over_ours=t_pt / t_ours))
        del model
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| model | published GMACs | ours | fvcore | ptflops | ours s | fvcore/ours time | ptflops/ours time |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['published'] / 1e9:.3f} | {r['ours'] / 1e9:.3f} ({r['ours_err']:+.2%}) | "
              f"{r['fvcore'] / 1e9:.3f} ({r['fvcore_err']:+.2%}) | {r['ptflops'] / 1e9:.3f} ({r['ptflops_err']:+.2%}) | "
              f"{r['t_ours_s']:.2f} | {r['fvcore_over_ours']:.1f}x | {r['ptflops_over_ours']:.1f}x |")


if __name__ == "__main__":
    main()
