"""Cross-backend agreement and the accuracy cost of Loihi fixed point on MNIST-5k.

Converts a zoo model trained on mnist5k (``--checkpoint``, or trained here and saved under
``runs/backends/``), runs the same IR on the same test images with snntorch (the reference), Brian2,
Lava float and Lava fixed point, and prints a markdown table: accuracy, agreement of predictions
with snntorch and with Lava float, and seconds per sample.

    .venv/bin/python benchmarks/backends_agreement.py --model mlp --samples 1000 --timesteps 32
    .venv/bin/python benchmarks/backends_agreement.py --model resnet_tiny --checkpoint CKPT --signed --calibrate \
        --samples 100 --timesteps 8          # signed neurons, biases calibrated for T=8

``--signed`` / ``--calibrate`` convert with signed neurons / biases calibrated for ``--timesteps``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load_network(model: str, checkpoint: str | None, epochs: int = 4, calibration: int = 1000, **convert_kw):
    """``(net, test_x, test_y, ann_accuracy)`` for ``model`` on mnist5k."""
    import torch

    import models
    import neurosim
    from models.data import load_dataset
    from models.qcfs import register

    register()
    from models.train import train_model

    train, test = load_dataset("mnist5k")
    path = Path(checkpoint) if checkpoint else Path("runs/backends") / f"{model}-mnist5k.pt"
    if path.is_file():
        ann = models.load(path)
    else:
        ann, _ = train_model(model, "mnist5k", out=path, epochs=epochs)
    ann.eval()
    with torch.no_grad():
        acc = float((ann(test.x).argmax(1) == test.y).float().mean())
    net = neurosim.convert(ann, train.x[:calibration], **convert_kw)
    return net, test.x.numpy(), test.y.numpy(), acc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--timesteps", type=int, default=32)
    ap.add_argument("--backends", default="snntorch,brian2,lava:float,lava:fixed")
    ap.add_argument("--signed", action="store_true", help="convert with signed neurons")
    ap.add_argument("--calibrate", action="store_true", help="calibrate the biases for --timesteps")
    args = ap.parse_args(argv)
    net, x, y, ann_acc = load_network(args.model, args.checkpoint, signed=args.signed,
                                      calibrate=args.timesteps if args.calibrate else None)
    x, y = x[:args.samples], y[:args.samples]
    T = args.timesteps
    results = {}
    for spec in args.backends.split(","):
        backend, _, precision = spec.partition(":")
        t0 = time.perf_counter()
        r = net.run(x, T, backend=backend, precision=precision or "float")
        results[spec] = (r, time.perf_counter() - t0)
        print(f"# {spec}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    ref = results["snntorch"][0].predictions if "snntorch" in results else None
    lf = results["lava:float"][0].predictions if "lava:float" in results else None
    how = ("signed neurons" if args.signed else "") + (", biases calibrated for T" if args.calibrate else "")
    print(f"\n{args.model} on MNIST-5k, first {len(y)} test images, T={T} (ANN accuracy {100 * ann_acc:.2f}% on all "
          f"{1000} test images){'; ' + how.strip(', ') if how else ''}\n")
    print("| backend | precision | accuracy | agrees with snntorch | agrees with Lava float | s / sample |")
    print("|---|---|---|---|---|---|")
    for spec, (r, wall) in results.items():
        a = f"{100 * (r.predictions == ref).mean():.1f}%" if ref is not None else "-"
        b = f"{100 * (r.predictions == lf).mean():.1f}%" if lf is not None else "-"
        print(f"| {r.backend} | {r.precision} | {100 * r.accuracy(y):.2f}% | {a} | {b} | {wall / len(y):.4f} |")
    if "lava:fixed" in results:
        q = results["lava:fixed"][0].quantization
        print("\nLava fixed point, per layer:\n")
        print(q.to_markdown(index=False) if hasattr(q, "to_markdown") else q.to_string(index=False))


if __name__ == "__main__":
    main()
