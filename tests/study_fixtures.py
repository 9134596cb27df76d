"""Studies used only by the tests; loaded with ``--module tests/study_fixtures.py`` (never shipped).

``fixture_slow`` sleeps ``FIXTURE_SLEEP_S`` seconds per cell (default 0.25) so a test can SIGKILL a run
midway; ``fixture_numeric`` does deterministic numpy work (no torch import, so worker start-up is
cheap) for comparing executors; ``fixture_flaky`` fails on the cells listed in ``FIXTURE_FAIL``.
"""
from __future__ import annotations

import hashlib
import os
import time

from studies.registry import Sweep, study


@study("fixture_slow", sweep=Sweep(i=list(range(16))), quick=Sweep(i=[0, 1, 2]))
def fixture_slow(i: int) -> dict:
    """A slow-ish cell: sleeps, then returns values derived from its parameter."""
    time.sleep(float(os.environ.get("FIXTURE_SLEEP_S", "0.25")))
    return {"square": i * i, "digest": hashlib.sha256(str(i).encode()).hexdigest()[:16]}


@study("fixture_numeric", sweep=Sweep(n=[8, 16, 32], seed=[0, 1], where=lambda c: c["n"] * (c["seed"] + 1) <= 48),
       quick=Sweep(n=[8], seed=[0]))
def fixture_numeric(n: int, seed: int) -> list[dict]:
    """Eigenvalues of a seeded symmetric random matrix: several rows per cell."""
    import numpy as np

    a = np.random.default_rng(seed).standard_normal((n, n))
    ev = np.linalg.eigvalsh(a + a.T)
    return [{"k": k, "eigenvalue": float(ev[k]), "trace": float(np.trace(a + a.T))} for k in (0, n // 2, n - 1)]


@study("fixture_flaky", sweep=Sweep(i=[0, 1, 2, 3]))
def fixture_flaky(i: int) -> dict:
    """Fails on the cells named in ``FIXTURE_FAIL`` (comma-separated)."""
    if str(i) in os.environ.get("FIXTURE_FAIL", "").split(","):
        raise RuntimeError(f"cell {i} failed on purpose")
    return {"value": 10 * i}


@study("fixture_needs_missing", sweep=Sweep(i=[0]), requires=("neurosim_no_such_module",))
def fixture_needs_missing(i: int) -> dict:
    """Declares a dependency that is not installed."""
    return {"i": i}
