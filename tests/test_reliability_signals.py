"""Signals against real Lava runs and real pool studies: the command ends in bounded time with the
right exit code and no traceback, and no descendant process and no /dev/shm segment survives.

Descendants are found by walking /proc by parent PID (never by name) while the run is going; after
the signal every one of them (identified by PID and start time) must be gone or a zombie, and every
``/dev/shm`` segment any of them mapped must be unlinked.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurosim.proc import descendants

pytestmark = [pytest.mark.lava,
              pytest.mark.skipif(sys.version_info[:2] != (3, 10) or not sys.platform.startswith("linux"),
                                 reason="Lava runs on Python 3.10 only; /proc is Linux")]

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = str(ROOT / "tests" / "reliability_studies.py")
HANG_S = 20  # generous: the guarantee is 5 s, the bound only has to tell "ends" from "hangs"


def _start_time(pid: int) -> str | None:
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if rest[0] == "Z" else rest[19]


def _snapshot(pid: int) -> tuple[dict[int, str], set[str]]:
    """Live descendants of ``pid`` (pid -> start time) and the /dev/shm segments they map."""
    procs, segs = {}, set()
    for p in descendants(pid) | {pid}:
        st = _start_time(p)
        if st is None:
            continue
        if p != pid:
            procs[p] = st
        try:
            for line in Path(f"/proc/{p}/maps").read_text().splitlines():
                if "/dev/shm/" in line and "(deleted)" not in line:
                    segs.add(line.split("/dev/shm/", 1)[1].strip())
        except OSError:
            pass
    return procs, segs


def _survivors(procs: dict[int, str], wait_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + wait_s
    while True:
        alive = [p for p, st in procs.items() if _start_time(p) == st]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    out = []
    for p in alive:
        try:
            out.append(f"{p}: {Path(f'/proc/{p}/cmdline').read_bytes().replace(bytes(1), b' ').decode()[:120]}")
        except OSError:
            pass
    return out


def _leftover_segments(segs: set[str], wait_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + wait_s
    while True:
        left = sorted(s for s in segs if (Path("/dev/shm") / s).exists())
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _launch(args: list[str], tmp_path: Path, marker: str, env_extra: dict | None = None):
    env = dict(os.environ, REL_MARKER=marker, PYTHONPATH=str(ROOT), **(env_extra or {}))
    out, err = open(tmp_path / "stdout", "w"), open(tmp_path / "stderr", "w")
    p = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=out, stderr=err, start_new_session=True)
    return p


def _wait_for(marker_glob: str, tmp_path: Path, p, n: int = 1, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while len(list(tmp_path.glob(marker_glob))) < n:
        if p.poll() is not None:
            pytest.fail(f"the run ended before Lava was running (rc {p.returncode}): "
                        f"{(tmp_path / 'stderr').read_text()[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(p.pid, signal.SIGKILL)
            pytest.fail("Lava never started")
        time.sleep(0.1)
    time.sleep(0.3)


def _end(p, t0: float) -> float:
    try:
        p.wait(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        pytest.fail(f"the process did not end within {HANG_S} s of the signal")
    return time.monotonic() - t0


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "neurosim", *args]


def _study(name: str, workers: int, tmp_path: Path) -> list[str]:
    return _cli("study", "run", name, "--module", FIXTURES, "--workers", str(workers), "--db",
                str(tmp_path / "r.sqlite"), "--no-report", "--quiet")


def _check_clean(tmp_path, procs, segs):
    assert procs, "the run had no child processes to check"
    assert _survivors(procs) == [], "processes survived the run"
    assert _leftover_segments(segs) == [], "shared-memory segments were not unlinked"


@pytest.mark.parametrize("twice", [False, True], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_during_a_lava_run_ends_it(tmp_path, twice):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while Lava runs in the CLI's own
    process: exit 130 within the bound, no traceback, nothing left (a second Ctrl-C exits at once)."""
    p = _launch(_study("rel_lava", 0, tmp_path), tmp_path, str(tmp_path / "m"))
    _wait_for("m.*", tmp_path, p)
    procs, segs = _snapshot(p.pid)
    t0 = time.monotonic()
    os.killpg(p.pid, signal.SIGINT)
    if twice:
        time.sleep(0.05)
        os.killpg(p.pid, signal.SIGINT)
    dt = _end(p, t0)
    err = (tmp_path / "stderr").read_text()
    print(f"Ctrl-C{' x2' if twice else ''}: exit {p.returncode} after {dt:.2f} s, {len(procs)} descendants, "
          f"{len(segs)} shm segments")
    assert p.returncode == 130, err
    assert "Traceback" not in err, err
    _check_clean(tmp_path, procs, segs)


def test_sigterm_during_a_lava_run_ends_it(tmp_path):
    p = _launch(_study("rel_lava", 0, tmp_path), tmp_path, str(tmp_path / "m"))
    _wait_for("m.*", tmp_path, p)
    procs, segs = _snapshot(p.pid)
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    dt = _end(p, t0)
    err = (tmp_path / "stderr").read_text()
    print(f"SIGTERM: exit {p.returncode} after {dt:.2f} s")
    assert p.returncode == 143, err
    assert "Traceback" not in err and "terminated" in err, err
    _check_clean(tmp_path, procs, segs)


def test_sigkill_of_a_python_process_running_lava_leaves_nothing(tmp_path):
    """No finally runs after SIGKILL: the workers and the shared-memory manager die by their
    parent-death signal and the resource tracker unlinks the segments."""
    p = _launch([sys.executable, FIXTURES, str(tmp_path / "m.0")], tmp_path, "")
    _wait_for("m.*", tmp_path, p)
    procs, segs = _snapshot(p.pid)
    p.kill()
    p.wait(timeout=HANG_S)
    _check_clean(tmp_path, procs, segs)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_signal_to_a_pool_study_running_lava_leaves_nothing(tmp_path, sig):
    """`study run --workers 2` with Lava cells in both workers: Ctrl-C (to the group) or SIGKILL
    (to the driver only) leaves no pool worker, no Lava worker, no shared-memory segment."""
    p = _launch(_study("rel_lava", 2, tmp_path), tmp_path, str(tmp_path / "m"))
    _wait_for("m.*", tmp_path, p, n=2)
    procs, segs = _snapshot(p.pid)
    t0 = time.monotonic()
    if sig == "SIGINT":
        os.killpg(p.pid, signal.SIGINT)
    else:
        p.send_signal(getattr(signal, sig))
    dt = _end(p, t0)
    err = (tmp_path / "stderr").read_text()
    print(f"pool {sig}: exit {p.returncode} after {dt:.2f} s, {len(procs)} descendants")
    assert p.returncode == {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -9}[sig], err
    assert "Traceback" not in err, err
    _check_clean(tmp_path, procs, segs)
