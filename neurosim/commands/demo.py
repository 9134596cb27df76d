"""`neurosim demo`: the main job on bundled data (what `make demo` runs)."""
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


STEPS = [("Model zoo profile (batch 1, fp32, meta device)", zoo_profile)]


@command("demo", help="the main job on bundled data: profile the zoo (more steps as the suite grows)")
def configure(p):
    p.add_argument("--json", action="store_true")

    def run(args):
        from neurosim.cli import emit

        for title, step in STEPS:
            print(f"\n== {title} ==")
            emit(step(), args.json)
        return 0

    return run
