"""The results store: durability under SIGKILL, resume, schema-version refusal, export."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from neurosim.cli import main
from neurosim.errors import NeurosimError, UnknownNameError
from studies.registry import Sweep, canonical_json, get, load_module
from studies.store import SCHEMA_VERSION, Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = str(Path(__file__).with_name("study_fixtures.py"))


def test_put_commit_and_reopen(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store(db) as s:
        run = s.begin_run("st", "v1", quick=False, command="x", versions={}, executor="inline", n_cells=2,
                          n_skipped=0)
        s.put("st", canonical_json({"b": 2, "a": 1}), "v1", json.dumps([{"y": 1.5}, {"y": 2.5}]), elapsed_s=0.1,
              run_id=run)
        assert s.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Store(db, create=False) as s:
        assert s.done_keys("st", "v1") == {'{"a":1,"b":2}'}
        assert s.done_keys("st", "v2") == set()
        df = s.frame("st", "v1")
        assert list(df.columns) == ["a", "b", "y"] and df.y.tolist() == [1.5, 2.5]
        assert s.integrity() == "ok"
        assert s.summary().to_dict("records")[0]["rows"] == 2


def test_canonical_json_is_order_free_and_rejects_non_scalars():
    assert canonical_json({"b": 1, "a": "x"}) == canonical_json({"a": "x", "b": 1}) == '{"a":"x","b":1}'
    with pytest.raises(NeurosimError, match="JSON|str, int"):
        canonical_json({"a": [1, 2]})


def test_sweep_product_filter_and_only():
    sw = Sweep(m=["a", "b"], n=[1, 2, 3], where=lambda c: not (c["m"] == "b" and c["n"] == 3))
    cells = sw.cells()
    assert len(cells) == 5 and cells[0] == {"m": "a", "n": 1} and {"m": "b", "n": 3} not in cells
    assert sw.cells(only={"n": ["2"]}) == [{"m": "a", "n": 2}, {"m": "b", "n": 2}]  # CLI strings match ints
    with pytest.raises(UnknownNameError, match="unknown m 'zz'; valid: a, b"):
        sw.cells(only={"m": ["zz"]})
    with pytest.raises(UnknownNameError, match="sweep axis"):
        sw.cells(only={"nope": ["1"]})


def test_incompatible_schema_version_is_refused_and_file_untouched(tmp_path, capsys):
    db = tmp_path / "old.sqlite"
    with Store(db) as s:
        s.put("fixture_slow", canonical_json({"i": 0}), "v", "[]", elapsed_s=0)
        s.con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    before = db.read_bytes()
    with pytest.raises(NeurosimError) as e:
        Store(db)
    assert str(db) in str(e.value) and "999" in str(e.value) and f"version {SCHEMA_VERSION}" in str(e.value)
    rc = main(["study", "run", "fixture_slow", "--quick", "--module", FIXTURES, "--db", str(db), "--workers", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "schema version 999" in err
    assert db.read_bytes() == before


def test_a_file_that_is_not_a_store_is_refused_untouched(tmp_path, capsys):
    junk = tmp_path / "notes.sqlite"
    junk.write_bytes(b"these are my notes, not a database" * 100)
    rc = main(["study", "show", "fixture_slow", "--module", FIXTURES, "--db", str(junk)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "not a neurosim results database" in err
    assert junk.read_bytes() == b"these are my notes, not a database" * 100
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(NeurosimError, match="tables: t"):
        Store(other)


def test_edited_study_gets_a_new_code_version(tmp_path):
    src = tmp_path / "my_study.py"
    src.write_text(Path(FIXTURES).read_text().replace("fixture_", "edited_"))
    load_module(str(src))
    s = get("edited_numeric")
    v1 = s.code_version()
    src.write_text(src.read_text() + "\n# a changed comment changes the source hash\n")
    assert s.code_version() != v1 and s.code_version().split("+")[0] == v1.split("+")[0]


def test_code_digest_covers_code_data_and_the_lock_not_caches(tmp_path):
    from studies.registry import environment_digest, tree_digest

    for rel, text in {"neurosim/a.py": "x = 1", "hw/catalog/gpu.toml": "[a]", "hw/data/f.json": "{}",
                      "hw/__pycache__/a.cpython-310.pyc": "junk", "models/notes.png": "png"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "studies").mkdir()
    d0 = tree_digest(tmp_path)
    (tmp_path / "hw/__pycache__/a.cpython-310.pyc").write_text("other junk")
    (tmp_path / "models/notes.png").write_text("other png")
    assert tree_digest(tmp_path) == d0  # caches and images are not code
    for rel in ("neurosim/a.py", "hw/catalog/gpu.toml", "hw/data/f.json"):
        (tmp_path / rel).write_text((tmp_path / rel).read_text() + " ")
        assert tree_digest(tmp_path) != d0, rel
        d0 = tree_digest(tmp_path)
    (tmp_path / "requirements.lock").write_text("torch==2.14.1\n")
    e0 = environment_digest(tmp_path)
    (tmp_path / "requirements.lock").write_text("torch==2.13.0\n")
    assert environment_digest(tmp_path) != e0
    (tmp_path / "requirements.lock").unlink()
    assert len(environment_digest(tmp_path)) == 64  # installed versions stand in for the lock


def test_changed_suite_code_recomputes_and_show_counts_stale_cells(tmp_path, monkeypatch, capsys):
    """A cell's key follows the code it can reach: with a different suite digest (an edited cost model,
    backend, converter, or a new lock) stored cells no longer match, a run recomputes them and
    `study show` says how many stored cells are stale."""
    import studies
    from studies import registry

    load_module(FIXTURES)
    db = tmp_path / "r.sqlite"
    first = studies.run("fixture_numeric", db=db, workers=0, quiet=True, modules=[FIXTURES])
    assert first.n_done == 5
    assert main(["study", "show", "fixture_numeric", "--module", FIXTURES, "--db", str(db)]) == 0
    assert "stale" not in capsys.readouterr().err
    v1 = get("fixture_numeric").code_version()
    monkeypatch.setattr(registry, "code_digest", lambda: "an edited hw/gpu.py")
    assert get("fixture_numeric").code_version() != v1
    again = studies.run("fixture_numeric", db=db, workers=0, quiet=True, modules=[FIXTURES],
                        only={"n": [8]})
    assert (again.n_done, again.n_skipped) == (2, 0)  # nothing reused from the other code version
    capsys.readouterr()
    assert main(["study", "show", "fixture_numeric", "--module", FIXTURES, "--db", str(db)]) == 0
    assert "3 stored cell(s) of 'fixture_numeric' were computed by other code versions" in capsys.readouterr().err


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM results WHERE study='fixture_slow'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_loses_nothing_and_rerun_runs_only_missing_cells(tmp_path):
    """A real `neurosim study run` subprocess killed with SIGKILL mid-run; then resumed."""
    db = tmp_path / "kill.sqlite"
    cmd = [sys.executable, "-c", "import sys; from neurosim.cli import main; sys.exit(main())", "study", "run", "fixture_slow", "--module", FIXTURES,
           "--db", str(db), "--workers", "1", "--quiet", "--no-report"]
    env = {**os.environ, "FIXTURE_SLEEP_S": "0.3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _count(db) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never stored 3 cells"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:  # the pool's worker process, orphaned by the kill
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = dict(con.execute("SELECT params, rows FROM results WHERE study='fixture_slow'"))
        runs = con.execute("SELECT status FROM runs").fetchall()
    assert 3 <= len(kept) < 16, "kill came after the run finished: the test did not test anything"
    assert runs == [("running",)]  # the killed run never got to record its end
    for key, rows in kept.items():  # every stored cell is complete and right
        i = json.loads(key)["i"]
        assert json.loads(rows)[0]["square"] == i * i

    env["FIXTURE_SLEEP_S"] = "0"
    out = subprocess.run(cmd + ["--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["n_skipped"] == len(kept) and summary["n_done"] == 16 - len(kept)
    with Store(db, create=False) as s:
        assert s.integrity() == "ok"
        cells = s.cells("fixture_slow")
        assert len(cells) == 16
        by_run = {c["key"]: c["run_id"] for c in cells}
        assert all(by_run[k] == 1 for k in kept)  # the survivors were not recomputed
        assert sorted(c["params"]["i"] for c in cells if c["run_id"] == 2) == \
            sorted(set(range(16)) - {json.loads(k)["i"] for k in kept})
        df = s.frame("fixture_slow")
    assert sorted(df.square) == sorted(i * i for i in range(16))


def test_export_csv_and_parquet_roundtrip(tmp_path, capsys):
    db = tmp_path / "e.sqlite"
    assert main(["study", "run", "fixture_numeric", "--module", FIXTURES, "--db", str(db), "--workers", "0",
                 "--quiet", "--no-report"]) == 0
    capsys.readouterr()
    for ext in ("csv", "parquet"):
        f = tmp_path / f"out.{ext}"
        assert main(["study", "export", "fixture_numeric", str(f), "--module", FIXTURES, "--db", str(db)]) == 0
        back = pd.read_csv(f, float_precision="round_trip") if ext == "csv" else pd.read_parquet(f)
        assert len(back) == 3 * len(get("fixture_numeric").cells()) and list(back.columns[:2]) == ["n", "seed"]
        with Store(db, create=False) as s:
            ref = s.frame("fixture_numeric", order=[canonical_json(c) for c in get("fixture_numeric").cells()])
        pd.testing.assert_series_equal(back.eigenvalue, ref.eigenvalue, check_exact=True)  # in sweep order
    assert main(["study", "export", "fixture_numeric", str(tmp_path / "x.xlsx"), "--module", FIXTURES,
                 "--db", str(db)]) == 2
