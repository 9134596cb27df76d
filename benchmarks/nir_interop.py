"""Our converted networks through the NIR importers of snntorch and norse, side by side with our own run.

For each model (MNIST-5k, trained once and cached under runs/convert/) and each T: the accuracy of our
network, of the network the library flavour expresses (``library_equivalent``: hard reset, v = 0 at
start), and of the library's own import of ``net.to_nir(target=...)`` run step by step, with the share
of predictions on which the library agrees with that equivalent.

    .venv/bin/python benchmarks/nir_interop.py --samples 1000 --timesteps 4,8,16,32
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import neurosim  # noqa: E402
from models.train import resolve_dataset  # noqa: E402
from neurosim.convert import train_or_load  # noqa: E402
from neurosim.ir.nir_targets import library_equivalent  # noqa: E402
from test_nir_interop import _import, _run_library  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,lenet5")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--timesteps", default="4,8,16,32")
    ap.add_argument("--json", default=None, help="also write the rows here")
    a = ap.parse_args(argv)
    ts = [int(t) for t in a.timesteps.split(",")]
    train, test = resolve_dataset("mnist5k")
    x, y = test.x[:a.samples].numpy(), test.y[:a.samples].numpy()
    rows = []
    for model in a.models.split(","):
        # the flavours write feed-forward nets without spiking max-pool: LeNet-5 with average pooling
        ann, _ = train_or_load(model, "mnist5k", {"pool": "avg"} if model == "lenet5" else {}, epochs=8, quiet=True)
        net = neurosim.convert(ann, train.x[:1000])
        for t in ts:
            ours = net.run(x, t)
            row = {"model": model, "T": t, "ours_%": 100 * float((ours.predictions == y).mean())}
            for target in ("snntorch", "norse"):
                eq, _ = library_equivalent(net, target)
                e = eq.run(x, t)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mod = _import(target, net.to_nir(target=target))
                t0 = time.perf_counter()
                theirs = _run_library(mod, x, t).argmax(1)
                row[f"{target}_%"] = 100 * float((theirs == y).mean())
                row[f"{target}_agrees_with_equivalent_%"] = 100 * float((theirs == e.predictions).mean())
                row[f"{target}_s"] = round(time.perf_counter() - t0, 2)
            row["equivalent_%"] = 100 * float((e.predictions == y).mean())
            rows.append(row)
            print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
