"""Studies used only by the reliability tests (``--module tests/reliability_studies.py``).

``rel_lava`` runs a real Lava network long enough to be interrupted: it writes ``$REL_MARKER`` (a file
path) once Lava's runtime is running (after the first chunk of steps), then keeps running.
``rel_sleep`` sleeps ``REL_SLEEP_S`` per cell (pool tests without Lava).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from studies.registry import Sweep, study


def long_lava_run(marker: str | None = None, samples: int = 200, timesteps: int = 200):
    """A real Lava run of the tests' MLP (about ``samples * timesteps`` steps; minutes): touches
    ``marker`` once the runtime is up and the first 100 steps are done."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent))
    from backend_nets import mlp

    net = mlp(seed=3, per_channel=True)
    x = np.random.default_rng(5).uniform(0, 1, (samples, 16)).astype(np.float32)

    def progress(done, total):
        if marker and done == 100:
            Path(marker).write_text(str(os.getpid()))

    # lanes=2: two samples side by side in every process, 100 windows back to back (20,000 steps; with
    # the default, all 200 side by side, the run would end after 203 steps)
    return net.run(x, timesteps, backend="lava", chunk_steps=100, progress=progress, lanes=2)


@study("rel_lava", sweep=Sweep(i=[0, 1, 2, 3]))
def rel_lava(i: int) -> dict:
    """A Lava run that takes minutes: only ever interrupted by the tests."""
    marker = os.environ.get("REL_MARKER")
    r = long_lava_run(f"{marker}.{i}" if marker else None)
    return {"acc": float(r.predictions.mean())}


@study("rel_sleep", sweep=Sweep(i=list(range(40))))
def rel_sleep(i: int) -> dict:
    time.sleep(float(os.environ.get("REL_SLEEP_S", "0.5")))
    return {"i": i}


if __name__ == "__main__":  # a plain Python process running Lava (the SIGKILL test)
    long_lava_run(sys.argv[1])
