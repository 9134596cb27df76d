"""Seed spread of the residual QCFS conversion test (tests/test_convert.py), to set its margins.

Trains the test's TinyResQCFS on the first 1,000 scikit-learn digits with each seed, converts it
(plain IF; signed + biases calibrated for T=4 and T=8, two passes) and prints one JSON row per seed:
ANN, plain IF at T=4/8 and calibrated accuracy at T=4/8 on the other 797 digits.

    .venv/bin/python benchmarks/convert_seed_spread.py --seeds 6
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import neurosim  # noqa: E402
from tests.test_convert import TinyResQCFS, ann_predictions  # noqa: E402


def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target)
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    return x[p[:1400]], y[p[:1400]], x[p[1400:]], y[p[1400:]]


def fit(model, data, seed, epochs=10, lr=5e-3):
    xtr, ytr = data[0][:1000], data[1][:1000]
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    return model.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    data = digits()
    xtr = data[0][:1000]
    xte = torch.cat([data[0][1000:], data[2]])
    y = torch.cat([data[1][1000:], data[3]]).numpy()
    for seed in range(args.seeds):
        t0 = time.time()
        torch.manual_seed(seed)
        model = fit(TinyResQCFS(), data, seed)
        plain = neurosim.convert(model, xtr).run(xte, 8, record_trace=True).accuracy_trace(y)
        row = {"seed": seed, "ann": float((ann_predictions(model, xte) == y).mean()),
               "plain4": float(plain[3]), "plain8": float(plain[7])}
        for T in (4, 8):
            net = neurosim.convert(model, xtr, signed=True, calibrate=T, calibration_iters=2)
            row[f"cal{T}"] = net.run(xte, T).accuracy(y)
        row["s"] = round(time.time() - t0, 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
