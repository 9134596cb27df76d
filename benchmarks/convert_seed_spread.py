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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import neurosim  # noqa: E402
from tests.test_convert import TinyResQCFS, ann_predictions, digits_split, fit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    data = digits_split()
    xtr = data[0][:1000]
    xte = torch.cat([data[0][1000:], data[2]])
    y = torch.cat([data[1][1000:], data[3]]).numpy()
    for seed in range(args.seeds):
        t0 = time.time()
        torch.manual_seed(seed)
        model = fit(TinyResQCFS(), data, epochs=10, seed=seed)
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
