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
    """Every zoo model at batch 1, fp32, through the zoo_profile study's cell (params, MACs, FLOPs, bytes)."""
    import pandas as pd

    import models
    from studies.zoo_profile import zoo_profile as cell

    return pd.DataFrame([dict(model=m, **cell(model=m, batch=1, dtype="fp32")) for m in models.names()])


@command("demo", help="the main job on bundled data: zoo profile, ANN-to-SNN conversion, quick studies + report")
def configure(p):
    p.add_argument("--out", default="runs/demo", help="where the study database and report go (runs/demo)")
    p.add_argument("--json", action="store_true")

    def run(args):
        import studies
        from neurosim.cli import emit
        from neurosim.convert.pipeline import demo_conversion
        from neurosim.errors import check_writable

        check_writable(args.out, "--out", directory=True)  # before profiling and training, not after

        steps = [("Model zoo profile (batch 1, fp32, meta device)", zoo_profile),
                 ("ANN-to-SNN conversion (MLP with ReLU and QCFS, QCFS ResNet; mnist5k; snntorch backend)", demo_conversion),
                 (f"Comparative studies, quick sweeps (report under {args.out})", lambda: studies.demo_step(args.out))]
        for title, step in steps:
            t = time.perf_counter()
            print(f"\n== {title} ==", flush=True)
            emit(step(), args.json)
            print(f"({time.perf_counter() - t:.0f} s)", flush=True)
        return 0

    return run
