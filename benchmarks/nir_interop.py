"""Our converted networks through the NIR importers of snntorch, norse, sinabs and SpikingJelly, side by
side with our own run.

For each model (MNIST-5k, trained once and cached under runs/convert/) and each T: the accuracy of our
network, of the network each library flavour expresses (``library_equivalent``: the library's reset,
v = 0 at start), and of the library's own import of ``net.to_nir(target=...)`` run step by step, with the
share of predictions on which the library agrees with that equivalent and with our own network.
SpikingJelly runs in ``benchmarks/.venv-spikingjelly`` (one subprocess per model, ``nir_peer.py``);
sinabs also with its IAF switched to our semantics (``SingleSpike``, no clamp: ``sinabs_exact``).

    .venv/bin/python benchmarks/nir_interop.py --samples 1000 --timesteps 4,8,16,32
    .venv/bin/python benchmarks/nir_interop.py --models resnet_tiny --samples 200 --timesteps 16,64
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nir
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import neurosim  # noqa: E402
from models.train import resolve_dataset  # noqa: E402
from neurosim.convert import train_or_load  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.ir.nir_targets import library_equivalent  # noqa: E402
from test_nir_interop import _import, _run_library, _run_sinabs, peer, spikingjelly_missing  # noqa: E402

TARGETS = ("snntorch", "norse", "sinabs", "spikingjelly")


def _sinabs(graph, x, t, single_spike=False, chunk=200):
    """sinabs in chunks of images (its layers hold batch * T samples at once)."""
    return np.concatenate([_run_sinabs(graph, x[i:i + chunk], t, single_spike) for i in range(0, len(x), chunk)])


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
    sj_missing = spikingjelly_missing()
    if sj_missing:
        print(f"# spikingjelly skipped: {sj_missing}", flush=True)
    for model in a.models.split(","):
        # no library has a spiking max-pool: LeNet-5 with average pooling; resnet_tiny (residual Adds, global
        # average pool) is refused by the flavours whose importer cannot run a residual sum (norse, sinabs)
        overrides = {"lenet5": {"pool": "avg"}, "resnet_tiny": {"activation": "relu"}}.get(model, {})
        ann, _ = train_or_load(model, "mnist5k", overrides, epochs=8, quiet=True)
        net = neurosim.convert(ann, train.x[:1000])
        graphs = {}
        for target in TARGETS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    graphs[target] = net.to_nir(target=target)
            except NeurosimError as e:
                print(f"# {model} {target}: refused: {e}", flush=True)
        sj = {}
        if not sj_missing and "spikingjelly" in graphs:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:  # one SpikingJelly process for every T
                tmp = Path(tmp)
                nir.write(str(tmp / "g.nir"), graphs["spikingjelly"])
                np.save(tmp / "x.npy", x)
                peer([("run", tmp / "g.nir", tmp / "x.npy", t, tmp / f"T{t}.npy") for t in ts], tmp)
                sj = {t: np.load(tmp / f"T{t}.npy").argmax(1) for t in ts}
            sj_s = round(time.perf_counter() - t0, 2)
        for t in ts:
            ours = net.run(x, t)
            row = {"model": model, "T": t, "ours_%": 100 * float((ours.predictions == y).mean())}
            for target in graphs:
                eq, _ = library_equivalent(net, target)
                e = eq.run(x, t)
                row[f"{target}_equivalent_%"] = 100 * float((e.predictions == y).mean())
                t0 = time.perf_counter()
                if target == "spikingjelly":
                    if sj_missing:
                        continue
                    theirs = sj[t]
                elif target == "sinabs":
                    theirs = _sinabs(graphs[target], x, t).argmax(1)
                    exact = _sinabs(graphs[target], x, t, single_spike=True).argmax(1)
                    row["sinabs_exact_agrees_with_equivalent_%"] = 100 * float((exact == e.predictions).mean())
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        mod = _import(target, graphs[target])
                    theirs = _run_library(mod, x, t).argmax(1)
                row[f"{target}_%"] = 100 * float((theirs == y).mean())
                row[f"{target}_agrees_with_equivalent_%"] = 100 * float((theirs == e.predictions).mean())
                row[f"{target}_agrees_with_ours_%"] = 100 * float((theirs == ours.predictions).mean())
                row[f"{target}_s"] = sj_s if target == "spikingjelly" else round(time.perf_counter() - t0, 2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
