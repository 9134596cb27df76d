"""The lock file: it matches pyproject.toml, pins every package it installs, and a drift is one line."""
from __future__ import annotations

import re
import sysconfig
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def _check(*args):
    return subprocess.run([sys.executable, str(ROOT / ".ci" / "lock.py"), "check", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_lock_matches_pyproject():
    r = _check(LOCK)
    assert r.returncode == 0, r.stderr


def test_changed_dependencies_are_one_line_exit_2(tmp_path):
    changed = tmp_path / "pyproject.toml"
    changed.write_text((ROOT / "pyproject.toml").read_text().replace('"simpy>=4.1"', '"simpy>=4.2"'))
    assert changed.read_text() != (ROOT / "pyproject.toml").read_text()
    r = _check(LOCK, changed)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "no longer match requirements.lock" in r.stderr and "make lock" in r.stderr
    # a change outside the dependencies (a pytest marker) does not invalidate the lock
    other = tmp_path / "other.toml"
    other.write_text((ROOT / "pyproject.toml").read_text().replace('"slow: ', '"slow (edited): '))
    assert _check(LOCK, other).returncode == 0
    assert _check(tmp_path / "missing.lock").returncode == 2


def test_every_locked_package_is_pinned_with_hashes_and_installed_at_that_version():
    from importlib import metadata

    text = LOCK.read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", text, re.M))
    assert {"torch", "numpy", "lava-nc", "snntorch", "brian2", "numba", "simpy", "pytest"} <= set(pins)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[-1])
    assert all("--hash=sha256:" in b for b in blocks if re.match(r"[A-Za-z0-9]", b)), "a pin without a hash"
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
    # only the environment's own site-packages: once something imports setuptools, its _vendor
    # directory (older packaging, zipp, tomli, ...) is on sys.path with dist-info of its own
    site = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    installed = {norm(d.metadata["Name"]): d.version for d in metadata.distributions(path=site)}
    drift = {n: (v, installed.get(norm(n))) for n, v in pins.items() if installed.get(norm(n)) != v}
    assert not drift, f"installed versions differ from the lock (run `make venv`): {drift}"
