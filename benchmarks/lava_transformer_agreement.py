"""Lava against snntorch on the converted zoo Transformers (issue 13): prediction agreement of the Lava
float and fixed-point runs with the snntorch backend on the same test inputs, and the time per sample.

    .venv/bin/python benchmarks/lava_transformer_agreement.py                       # 3 models, 200 inputs
    .venv/bin/python benchmarks/lava_transformer_agreement.py --models gpt_tiny --samples 50 --json

One process, one Lava run per model and precision (all samples side by side in the lanes). The models are
the checkpoints ``neurosim convert`` caches under ``runs/convert`` (trained there when missing):
``vit_tiny`` on MNIST-5k with the ReLU MLP (15 epochs; the plain path of docs/transformers.md), ``bert_tiny``
and ``gpt_tiny`` on ``majority_tokens`` (3 epochs), converted with the pipeline's defaults on 1,000
training samples. Fixed point calibrates its scales on the first 8 *training* samples (so no test sample
influences another's result). Timesteps: 16 for vit_tiny, 8 for the token models (the issue's T).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {"vit_tiny": ("mnist5k", {"activation": "relu"}, 15, 16),
          "bert_tiny": ("majority_tokens", {}, 3, 8),
          "gpt_tiny": ("majority_tokens", {}, 3, 8)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--precisions", default="float,fixed")
    p.add_argument("--timesteps", type=int, default=None, help="override every model's T")
    p.add_argument("--lanes", type=int, default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    a = p.parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import neurosim
    from models.train import resolve_dataset
    from neurosim.backends._lava_transformer import simulate_transformer
    from neurosim.convert.pipeline import train_or_load

    rows = []
    for name in a.models.split(","):
        ds, overrides, epochs, T = MODELS[name]
        T = a.timesteps or T
        ann, ckpt = train_or_load(name, ds, overrides, epochs=epochs, seed=0, quiet=True)
        ann.eval()
        train, test = resolve_dataset(ds)
        net = neurosim.convert(ann, train.x[:1000])
        x, y = test.x[:a.samples].numpy(), test.y[:a.samples].numpy()
        t0 = time.perf_counter()
        ref = net.run(x, T, backend="snntorch")
        t_snn = time.perf_counter() - t0
        for prec in a.precisions.split(","):
            t0 = time.perf_counter()
            r = simulate_transformer(net, x, T, prec, lanes=a.lanes, calibration=train.x[:8].numpy())
            wall = time.perf_counter() - t0
            row = {"model": name, "checkpoint": str(ckpt), "T": T, "samples": len(x), "precision": prec,
                   "agreement": float((r.predictions == ref.predictions).mean()),
                   "lava_accuracy": float((r.predictions == y).mean()),
                   "snntorch_accuracy": float((ref.predictions == y).mean()),
                   "max_abs_output_diff": float(np.abs(r.output - ref.output).max()),
                   "max_abs_output": float(np.abs(ref.output).max()),
                   "spike_count_rel_diff": float(abs(sum(r.spike_counts.values()) - sum(ref.spike_counts.values()))
                                                 / max(1.0, sum(ref.spike_counts.values()))),
                   "lava_s": wall, "lava_sim_s": r.wall_s, "lava_s_per_sample": wall / len(x),
                   "snntorch_s": t_snn, "lava_processes": r.lava_processes, "lava_lanes": r.lava_lanes,
                   "lava_runs": r.lava_runs}
            if prec == "fixed":
                row["saturations"] = int(r.quantization["saturations"].sum())
            rows.append(row)
            if not a.json:
                print(f"{name:9s} T={T:2d} {prec:5s} agreement {100 * row['agreement']:6.2f} %  "
                      f"(lava acc {100 * row['lava_accuracy']:.1f} %, snntorch {100 * row['snntorch_accuracy']:.1f} %)  "
                      f"max|diff| {row['max_abs_output_diff']:.2e} of {row['max_abs_output']:.2f}  "
                      f"{row['lava_s_per_sample'] * 1e3:.0f} ms/sample ({row['lava_s']:.1f} s, "
                      f"{row['lava_processes']} processes, {row['lava_lanes']} lanes; snntorch {t_snn:.1f} s)",
                      flush=True)
    if a.json:
        print(json.dumps(rows, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
