"""`neurosim demo`: the main job on bundled data (what `make demo` runs).

1. profile every zoo model on the meta device (params, MACs, FLOPs, bytes);
2. train an MLP on MNIST-5k with ReLU and with QCFS and a QCFS ResNet, convert them to SNNs (the ResNet
   with signed neurons and biases calibrated per T), ANN vs SNN accuracy per T;
3. run every study's ``--quick`` sweep into ``OUT/results.sqlite`` and write the combined report.

Each step is resumable: checkpoints and study rows are reused on a second run.
"""
from __future__ import annotations

import time
from neurosim.cli import command


def zoo_profile():
    """Profile every zoo model on the meta device: params, MACs, FLOPs, bytes."""
    import pandas as pd

    import models
    from hw.workload import profile

    rows = []
    for name in models.names():
        t = time.perf_counter()
        w = profile(name)
        rows.append(dict(model=name, family=models.entry(name).family, params=w.params, GMACs=w.macs / 1e9,
                         GFLOPs=w.flops / 1e9, param_MB=w.param_bytes / 1e6,
                         activation_MB=w.activation_bytes / 1e6, ops=len(w.ops),
                         trace_s=time.perf_counter() - t))
    return pd.DataFrame(rows)


def conversion():
    """MLP on MNIST-5k, ReLU and QCFS training: ANN vs SNN accuracy per timestep (snntorch backend)."""
    from neurosim.commands.convert import demo_step

    return demo_step()


@command("demo", help="the main job on bundled data: zoo profile, ANN-to-SNN conversion, quick studies + report")
def configure(p):
    p.add_argument("--out", default="runs/demo", help="where the study database and report go (runs/demo)")
    p.add_argument("--json", action="store_true")

    def run(args):
        import studies
        from neurosim.cli import emit
        from neurosim.errors import check_writable

        check_writable(args.out, "--out", directory=True)  # before profiling and training, not after

        steps = [("Model zoo profile (batch 1, fp32, meta device)", zoo_profile),
                 ("ANN-to-SNN conversion (mlp on mnist5k; snntorch backend)", conversion),
                 (f"Comparative studies, quick sweeps (report under {args.out})", lambda: studies.demo_step(args.out))]
        for title, step in steps:
            t = time.perf_counter()
            print(f"\n== {title} ==", flush=True)
            emit(step(), args.json)
            print(f"({time.perf_counter() - t:.0f} s)", flush=True)
        return 0

    return run
