"""The results store under damage and contention (issue 15): a corrupted database is refused before
anything is written; two drivers on one database share the cells instead of computing each twice; a
killed pool worker is one failure row, not one per queued cell; ``n_done`` is what was stored, whatever
stopped the run. Real SQLite files, real process pools, real subprocess drivers."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from reliability_cli import refused  # noqa: E402

import studies  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.proc import descendants  # noqa: E402
from studies.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = str(ROOT / "tests" / "study_fixtures.py")
REL = str(ROOT / "tests" / "reliability_studies.py")


def _filled_db(tmp_path) -> Path:
    db = tmp_path / "r.sqlite"
    studies.run("fixture_numeric", db=db, workers=0, quiet=True, modules=[FIXTURES])
    return db


def test_a_damaged_database_is_refused_before_anything_is_written(tmp_path, capsys):
    db = _filled_db(tmp_path)
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    raw = bytearray(db.read_bytes())
    page = 4096
    assert len(raw) >= 3 * page
    for start in range(page, len(raw) - page + 1, page):  # scribble over every b-tree page's header
        raw[start:start + 12] = b"\xa5" * 12
    db.write_bytes(bytes(raw))
    before = db.read_bytes()
    with pytest.raises(NeurosimError, match="damaged"):
        Store(db)
    refused(capsys, "study", "run", "fixture_numeric", "--module", FIXTURES, "--db", db, "--workers", "0",
            "--no-report", match="damaged")
    assert db.read_bytes() == before


def test_two_drivers_on_one_database_share_the_cells(tmp_path):
    """Two `study run` processes started together on one database: every cell is computed once."""
    db = tmp_path / "r.sqlite"
    Store(db).close()  # both find the schema in place
    env = dict(os.environ, FIXTURE_SLEEP_S="0.3", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "neurosim", "study", "run", "fixture_slow", "--module", FIXTURES, "--db", str(db),
           "--workers", "0", "--no-report", "--quiet"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    con = sqlite3.connect(db)
    per_run = dict(con.execute("SELECT id, n_done FROM runs WHERE study='fixture_slow'"))
    stored = con.execute("SELECT COUNT(*) FROM results WHERE study='fixture_slow'").fetchone()[0]
    by_run = dict(con.execute("SELECT run_id, COUNT(*) FROM results WHERE study='fixture_slow' GROUP BY run_id"))
    assert stored == 16 and sum(per_run.values()) == 16, (per_run, outs)  # no cell computed twice
    assert by_run == {k: v for k, v in per_run.items() if v}, (by_run, per_run)
    assert con.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # released


def test_claims_of_a_dead_driver_are_taken_over(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store(db) as s:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        rid = s.begin_run("fixture_slow", "v", quick=False, command="x", versions={}, executor="x", n_cells=2,
                          n_skipped=0)
        s.con.execute("UPDATE runs SET status='running' WHERE id=?", (rid,))
        assert s.claim("fixture_slow", "v", ["a", "b"], rid) == {"a", "b"}
        s.con.execute("UPDATE claims SET pid=?", (dead.pid,))  # its driver was SIGKILLed
        rid2 = s.begin_run("fixture_slow", "v", quick=False, command="x", versions={}, executor="x", n_cells=2,
                           n_skipped=0)
        assert s.claim("fixture_slow", "v", ["a", "b"], rid2) == {"a", "b"}
        rid3 = s.begin_run("fixture_slow", "v", quick=False, command="x", versions={}, executor="x", n_cells=2,
                           n_skipped=0)
        assert s.claim("fixture_slow", "v", ["a", "b", "c"], rid3) == {"c"}  # rid2 (this process) is alive


def test_a_killed_pool_worker_is_one_failure_not_a_flood(tmp_path):
    db = tmp_path / "r.sqlite"
    env = dict(os.environ, REL_SLEEP_S="0.4", PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "neurosim", "study", "run", "rel_sleep", "--module", REL, "--db",
                          str(db), "--workers", "2", "--no-report", "--quiet"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the pool has committed a few cells
        time.sleep(0.3)
        try:
            n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.Error:
            n = 0
        if n >= 3:
            break
    workers = sorted(descendants(p.pid))
    assert workers, "no pool workers"
    victim = next(w for w in workers if b"multiprocessing" in Path(f"/proc/{w}/cmdline").read_bytes()
                  and b"resource_tracker" not in Path(f"/proc/{w}/cmdline").read_bytes())
    os.kill(victim, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1, (out, err)
    con = sqlite3.connect(db)
    failures = con.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
    stored = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    (n_done, status), = con.execute("SELECT n_done, status FROM runs")
    assert failures == 1 and status == "worker died", (failures, status, err)
    assert n_done == stored < 40
    assert "were not run" in out and "Traceback" not in err
    (cv,), = con.execute("SELECT code_version FROM runs")
    again = studies.run("rel_sleep", db=db, workers=0, quiet=True, modules=[REL])  # the rest is still pending
    assert again.code_version == cv  # (differs only if the sources changed during the test)
    assert again.n_skipped == stored and again.n_done == 40 - stored


def test_n_done_is_what_was_stored_after_ctrl_c(tmp_path):
    db = tmp_path / "r.sqlite"
    env = dict(os.environ, FIXTURE_SLEEP_S="0.2", PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "neurosim", "study", "run", "fixture_slow", "--module", FIXTURES,
                          "--db", str(db), "--workers", "0", "--no-report", "--quiet"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            if sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0] >= 2:
                break
        except sqlite3.Error:
            pass
    os.killpg(p.pid, signal.SIGINT)
    p.communicate(timeout=30)
    assert p.returncode == 130
    con = sqlite3.connect(db)
    (rid, n_done, status), = con.execute("SELECT id, n_done, status FROM runs")
    assert status == "interrupted"
    assert n_done == con.execute("SELECT COUNT(*) FROM results WHERE run_id=?", (rid,)).fetchone()[0] < 16
