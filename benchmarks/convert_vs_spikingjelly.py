"""ANN-to-SNN conversion side by side with SpikingJelly 2.0's ann2snn, on the same trained ANNs and images.

For each model the zoo checkpoint (trained or loaded from the per-seed cache under ``runs/convert/``,
the one ``neurosim convert MODEL --seed N`` uses) is converted by

* neurosim's default (``neurosim.convert``: per-channel p99.9 scales, IF neurons, v(0) = 1/2), one
  simulation at the largest T read out after every step;
* neurosim's low-latency recipe (``--low-latency``: signed neurons, biases calibrated per T in one pass);
* SpikingJelly's ``RateCodingRecipe(mode="99.9%", channel_wise=True, half_threshold=True)`` (with
  ``pre_spike_maxpool=True`` on a max-pool model: its own way to convert max-pooling), its
  layer-wise ``RateCodingRecipe(mode="99.9%")`` and ``LocalThresholdBalancingRecipe`` (Bu et al., CVPR 2025),

all with the same first ``--calibration`` training images and the same first ``--test-samples`` test
images of MNIST-5k. SpikingJelly's network is stepped T times per batch (``functional.reset_net``, the
outputs summed, accuracy read after every step). Reported: accuracy per T, the ANN's accuracy, the
share of predictions identical to SpikingJelly's channel-wise recipe, conversion seconds (including
calibration) and simulation seconds at the largest T, all in one process with one torch thread.

Needs SpikingJelly 2.0 (the ``peers`` extra; here the venv ``benchmarks/.venv-spikingjelly``, which
sees the main venv's packages)::

    OMP_NUM_THREADS=1 benchmarks/.venv-spikingjelly/bin/python benchmarks/convert_vs_spikingjelly.py \\
        --models lenet5_avg,lenet5_max,resnet_tiny --timesteps 4,8,16,32 --out runs/convert/vs_spikingjelly.json
"""
import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# zoo model + overrides for each benchmark name (the "CNN, BN, avg-pool" is LeNet-5 with BatchNorm)
MODELS = {
    "lenet5_avg": ("lenet5", {"activation": "relu", "batchnorm": True, "pool": "avg"}),
    "lenet5_max": ("lenet5", {"activation": "relu", "batchnorm": True, "pool": "max"}),
    "resnet_tiny": ("resnet_tiny", {"activation": "relu"}),
    "resnet18_small": ("resnet18_small", {"activation": "relu"}),
    "vgg11_small": ("vgg11_small", {"activation": "relu"}),
}


def sj_recipes(loader, maxpool: bool):
    from spikingjelly.activation_based import ann2snn

    return {
        "sj_channelwise": lambda: ann2snn.RateCodingRecipe(dataloader=loader, mode="99.9%", channel_wise=True,
                                                           half_threshold=True, pre_spike_maxpool=maxpool),
        "sj_layerwise": lambda: ann2snn.RateCodingRecipe(dataloader=loader, mode="99.9%"),
        "sj_ltb": lambda: ann2snn.LocalThresholdBalancingRecipe(dataloader=loader),
    }


def sj_run(snn, x, T, batch):
    """Predictions after every step [T, N] and the simulation seconds."""
    from spikingjelly.activation_based import functional

    preds = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(x), batch):
            functional.reset_net(snn)
            out, p = None, []
            for _ in range(T):
                step = snn(x[s:s + batch])
                out = step if out is None else out + step
                p.append(out.argmax(1))
            preds.append(torch.stack(p))
    functional.reset_net(snn)
    return torch.cat(preds, 1).numpy(), time.perf_counter() - t0


def bench(name, ts, n_cal, n_test, seed, epochs, batch):
    import neurosim
    from models.train import evaluate, resolve_dataset
    from neurosim.convert.pipeline import train_or_load
    from spikingjelly.activation_based import ann2snn

    zoo, ov = MODELS[name]
    ann, ckpt = train_or_load(zoo, "mnist5k", ov, epochs=epochs, seed=seed, quiet=True)
    ann.eval()
    train, test = resolve_dataset("mnist5k")
    xc, yc = train.x[:n_cal], train.y[:n_cal]
    test = test.subset(torch.arange(min(n_test, len(test))))
    x, y = test.x, test.y.numpy()
    ann_acc = evaluate(ann, test)
    T = max(ts)
    rows = {}

    t0 = time.perf_counter()
    net = neurosim.convert(ann, xc)
    conv = time.perf_counter() - t0
    res = net.run(x, T, record_trace=True)
    pred = res.trace.argmax(2)  # [T, N]
    rows["neurosim_default"] = {"pred": pred, "convert_s": conv, "simulate_s": res.wall_s}

    accs, conv, sim = [], 0.0, 0.0
    for t in ts:
        t0 = time.perf_counter()
        net = neurosim.convert(ann, xc, signed=True, calibrate=t)
        conv += time.perf_counter() - t0
        r = net.run(x, t)
        sim += r.wall_s
        accs.append(r.accuracy(y))
    rows["neurosim_lowlat"] = {"acc": accs, "convert_s": conv, "simulate_s": sim}

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xc, yc), batch_size=batch)
    maxpool = ov.get("pool") == "max" or name.startswith("vgg")
    for k, make in sj_recipes(loader, maxpool).items():
        t0 = time.perf_counter()
        snn = ann2snn.Converter(recipe=make(), device="cpu").convert(copy.deepcopy(ann)).eval()
        conv = time.perf_counter() - t0
        pred, sim = sj_run(snn, x, T, batch)
        rows[k] = {"pred": pred, "convert_s": conv, "simulate_s": sim}

    ref = rows["sj_channelwise"]["pred"]
    out = {"model": name, "zoo": zoo, "overrides": ov, "checkpoint": str(ckpt), "seed": seed, "ann": ann_acc,
           "timesteps": ts, "calibration": n_cal, "test_samples": len(y), "methods": {}}
    for k, r in rows.items():
        m = {"convert_s": round(r["convert_s"], 3), "simulate_s": round(r["simulate_s"], 3)}
        if "pred" in r:
            m["acc"] = [float((r["pred"][t - 1] == y).mean()) for t in ts]
            m["same_as_sj_channelwise"] = [float((r["pred"][t - 1] == ref[t - 1]).mean()) for t in ts]
        else:
            m["acc"] = r["acc"]
        out["methods"][k] = m
    return out


def markdown(results):
    cols = ["neurosim_default", "neurosim_lowlat", "sj_channelwise", "sj_layerwise", "sj_ltb"]
    head = ["neurosim default", "neurosim `--low-latency` (calibrated per T)",
            "SpikingJelly channel-wise 99.9 % + half threshold", "SpikingJelly layer-wise 99.9 %",
            "SpikingJelly LocalThresholdBalancing"]
    lines = ["| model (ANN) | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in results:
        cells = [" / ".join(f"{100 * a:.1f}" for a in r["methods"][c]["acc"]) for c in cols]
        lines.append(f"| {r['model']} ({100 * r['ann']:.1f}) | " + " | ".join(cells) + " |")
    lines += ["", "| model | method | convert s | simulate s (all T) | predictions equal to SJ channel-wise |",
              "|---|---|---|---|---|"]
    for r in results:
        for c in cols:
            m = r["methods"][c]
            same = " / ".join(f"{100 * s:.1f}" for s in m["same_as_sj_channelwise"]) if "same_as_sj_channelwise" in m \
                else "-"
            lines.append(f"| {r['model']} | {c} | {m['convert_s']:.2f} | {m['simulate_s']:.2f} | {same} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lenet5_avg,lenet5_max,resnet_tiny")
    ap.add_argument("--timesteps", default="4,8,16,32")
    ap.add_argument("--calibration", type=int, default=1000)
    ap.add_argument("--test-samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ts = sorted({int(t) for t in args.timesteps.split(",")})
    results = []
    for m in args.models.split(","):
        if m not in MODELS:
            sys.exit(f"unknown model {m!r}; valid: {', '.join(MODELS)}")
        results.append(bench(m, ts, args.calibration, args.test_samples, args.seed, args.epochs, args.batch))
        print(json.dumps(results[-1]), flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
