"""Speed of a converted spiking Transformer (issue 13): the snntorch backend at T steps against the ANN.

    .venv/bin/python benchmarks/transformer_speed.py                    # vit_tiny, batch 64, T=16
    .venv/bin/python benchmarks/transformer_speed.py --timesteps 16 --batch 64 --repeats 3 --json

In one process, on the same MNIST-5k test images: the ANN's batched forward, the conversion
(``neurosim.convert``), and the SNN for T steps in the snntorch backend's ``layer`` mode (every node run
for all T at once: token-wise GEMMs over [T*batch], the accumulated-input operators by cumsum and one
batched call, the neurons in the fused numba kernel) and, for reference, its ``step`` mode (the loop
over t). The best of ``--repeats`` runs each; the ratio is the number to quote (absolute times depend on
the machine and its load). Uses the checkpoint ``neurosim convert`` cached under ``runs/convert`` for
the given activation when present (untrained weights otherwise: the speed hardly changes).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _best(fn, repeats):
    """(best wall seconds, best CPU seconds of this process) over ``repeats`` calls; on a shared machine the
    CPU time is the steadier of the two (it does not count time spent waiting for a core)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_tiny")
    p.add_argument("--activation", default="relu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=INT", help="model option, e.g. quant_levels=4")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--timesteps", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-step", action="store_true", help="skip the step-mode run")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    import torch

    import models
    import neurosim
    from models.train import fit_config, resolve_dataset
    from neurosim.convert.pipeline import checkpoint_path

    overrides = {"activation": a.activation, **{k: int(v) for k, v in (s.split("=") for s in a.set)}}
    train, test = resolve_dataset("mnist5k")
    ck = checkpoint_path(a.model, "mnist5k", overrides, a.epochs, 0)
    if ck.is_file():
        ann = models.load(ck, expect=a.model)
    else:
        torch.manual_seed(0)
        ann = models.create(a.model, **{**fit_config(a.model, train), **overrides})
    ann.eval()
    x = test.x[:a.batch]
    with torch.no_grad():
        ann(x)
        t_ann = _best(lambda: ann(x), max(10, a.repeats))  # cheap: more tries against load noise
    t0 = time.perf_counter()
    net = neurosim.convert(ann, train.x[:512])
    t_conv = time.perf_counter() - t0
    xn = x.numpy()
    net.run(xn[:2], 2, backend="snntorch")  # compile the numba kernels
    t_layer = _best(lambda: net.run(xn, a.timesteps, backend="snntorch"), a.repeats)
    t_step = None if a.no_step else _best(lambda: net.run(xn, a.timesteps, backend="snntorch", mode="step",
                                                          neuron_impl="torch"), 1)
    row = {"model": a.model, "overrides": overrides, "trained": ck.is_file(), "batch": a.batch,
           "timesteps": a.timesteps, "torch_threads": torch.get_num_threads(), "ann_s": t_ann[0], "ann_cpu_s": t_ann[1],
           "convert_s": t_conv, "snn_layer_s": t_layer[0], "snn_layer_cpu_s": t_layer[1],
           "snn_step_s": None if t_step is None else t_step[0],
           "snn_over_ann": t_layer[0] / t_ann[0], "snn_over_ann_cpu": t_layer[1] / t_ann[1],
           "step_over_layer": None if t_step is None else t_step[0] / t_layer[0],
           "neurons": net.n_neurons, "nodes": len(net.nodes)}
    if a.json:
        print(json.dumps(row))
    else:
        for k, v in row.items():
            print(f"{k:>16}: {v:.4g}" if isinstance(v, float) else f"{k:>16}: {v}")
    return row


if __name__ == "__main__":
    main()
