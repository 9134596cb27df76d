"""The study layer: registry, runs and resume, failures, executors (local + Dask), reports, the CLI."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

import studies
from neurosim.cli import main
from studies.runner import _progress
from studies.store import Store

FIXTURES = str(Path(__file__).with_name("study_fixtures.py"))


def test_builtin_studies_are_registered_with_quick_sweeps():
    from studies.registry import builtin_modules

    names = [n for n in studies.names() if studies.get(n).module in builtin_modules()]  # not other tests' studies
    assert {"zoo_profile", "hardware_cost", "ann_vs_snn", "seed_claims", "systolic_dataflows"} <= set(names)
    for name in names:
        s = studies.get(name)
        assert s.description and s.figures, f"study {name} needs a description and at least one figure"
        assert 0 < len(s.cells(quick=True)) <= len(s.cells()) or s.missing()


def test_zoo_profile_quick_matches_the_profiler_and_resumes(tmp_path):
    from hw.workload import profile

    db = tmp_path / "z.sqlite"
    r = studies.run("zoo_profile", quick=True, db=db, workers=0, quiet=True)
    assert (r.n_cells, r.n_done, r.n_skipped, r.n_failed) == (3, 3, 0, 0)
    with Store(db, create=False) as s:
        df = s.frame("zoo_profile")
    for row in df.itertuples():
        w = profile(row.model, batch=row.batch, dtype=row.dtype)
        assert (row.params, row.macs, row.flops) == (w.params, w.macs, w.flops)
    again = studies.run("zoo_profile", quick=True, db=db, workers=0, quiet=True)
    assert (again.n_done, again.n_skipped) == (0, 3)
    one = studies.run("zoo_profile", only={"model": ["resnet_tiny"]}, quick=True, db=db, workers=0, quiet=True)
    assert (one.n_cells, one.n_done) == (1, 1)
    redo = studies.run("zoo_profile", quick=True, db=db, workers=0, quiet=True, recompute=True)
    assert (redo.n_done, redo.n_skipped) == (3, 0)
    with Store(db, create=False) as s:
        assert len(s.cells("zoo_profile")) == 4 and {c["run_id"] for c in s.cells("zoo_profile")} == {2, 3}  # a run with nothing to do records none


def test_failed_cells_are_recorded_not_stored_and_retried(tmp_path, monkeypatch, capsys):
    db = tmp_path / "f.sqlite"
    monkeypatch.setenv("FIXTURE_FAIL", "1,3")
    args = ["study", "run", "fixture_flaky", "--module", FIXTURES, "--db", str(db), "--workers", "0", "--quiet"]
    assert main(args + ["--no-report"]) == 1
    assert "cell 1 failed on purpose" in capsys.readouterr().err
    with Store(db, create=False) as s:
        assert sorted(s.frame("fixture_flaky").value) == [0, 20]
        assert [f["params"]["i"] for f in s.failures("fixture_flaky")] == [1, 3]
        assert "RuntimeError" in s.failures("fixture_flaky")[0]["traceback"]
    monkeypatch.setenv("FIXTURE_FAIL", "")
    r = studies.run("fixture_flaky", modules=[FIXTURES], db=db, workers=0, quiet=True)
    assert (r.n_skipped, r.n_done, r.n_failed) == (2, 2, 0)


def test_process_pool_and_dask_cluster_give_identical_rows(tmp_path):
    distributed = pytest.importorskip("distributed")
    db_local, db_dask = tmp_path / "local.sqlite", tmp_path / "dask.sqlite"
    local = studies.run("fixture_numeric", modules=[FIXTURES], db=db_local, workers=2, quiet=True)
    assert local.executor.startswith("processes") and local.n_done == local.n_cells == 5
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        remote = studies.run("fixture_numeric", modules=[FIXTURES], db=db_dask, scheduler=cluster.scheduler_address,
                             quiet=True)
    assert remote.executor.startswith("dask tcp://127.0.0.1") and remote.n_done == 5
    frames = []
    for db in (db_local, db_dask):
        with Store(db, create=False) as s:
            frames.append(s.frame("fixture_numeric", order=local.keys))
            workers = {c["worker"] for c in s.cells("fixture_numeric")}
        assert all(":" in w for w in workers)
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    assert len(frames[0]) == 15


def test_unreachable_scheduler_is_one_line_exit_2_and_keeps_results(tmp_path, capsys):
    db = tmp_path / "u.sqlite"
    assert studies.run("fixture_numeric", quick=True, modules=[FIXTURES], db=db, workers=0, quiet=True).n_done == 1
    rc = main(["study", "run", "fixture_numeric", "--module", FIXTURES, "--db", str(db), "--scheduler",
               "tcp://127.0.0.1:1", "--connect-timeout", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err
    with Store(db, create=False) as s:
        assert len(s.cells("fixture_numeric")) == 1 and s.integrity() == "ok"


@pytest.mark.parametrize("argv, message", [
    (["study", "run", "no_such_study"], "unknown study 'no_such_study'; valid: "),
    (["study", "run", "zoo_profile", "--only", "model=resnet9000"], "unknown model 'resnet9000'; valid: alexnet"),
    (["study", "run", "hardware_cost", "--only", "device=tpu_v9"], "unknown device 'tpu_v9'; valid: a100_40gb"),
    (["study", "run", "zoo_profile", "--only", "colour=red"], "unknown sweep axis 'colour'"),
    (["study", "run", "zoo_profile", "--only", "model"], "--only expects AXIS=VALUE"),
    (["study", "show", "zoo_profile", "--db", "{tmp}/missing.sqlite"], "no results database at"),
    (["study", "run", "fixture_slow", "--module", "{tmp}/nope.py"], "does not exist"),
    (["study", "run", "zoo_profile", "--scheduler", "nonsense"], "must look like tcp://HOST:PORT"),
    (["study", "run", "hardware_cost", "--only", "device=loihi2", "--only", "precision=bf16"], "leaves no cells"),
    (["study", "run", "zoo_profile", "--db", "{tmp}/file.txt/r.sqlite"], "cannot create the results database"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--db" not in argv:
        argv += ["--db", str(tmp_path / "bad.sqlite")]
    rc = main(argv + ["--quiet"] if argv[1] == "run" else argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err


def test_report_is_self_contained_with_command_versions_tables_and_figures(tmp_path, capsys):
    db, out = tmp_path / "r.sqlite", tmp_path / "rep"
    assert main(["study", "run", "zoo_profile", "--quick", "--db", str(db), "--workers", "0", "--quiet",
                 "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "neurosim study run zoo_profile --quick" in md or "pytest" in md  # the command that made it
    for pkg in ("python", "torch", "neurosim", "lava-nc", "brian2", "snntorch"):
        assert f" {pkg} |" in md.split("## ")[0] or f"| {pkg} |" in md
    figs = re.findall(r"!\[[^]]*\]\((figures/[^)]+\.png)\)", md)
    assert figs and all((out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figs)
    pngs = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(pngs) == len(figs) and base64.b64decode(pngs[0])[:4] == b"\x89PNG"
    assert "<table" in html and "src='figures/" not in html and "could not be drawn" not in md
    csv = pd.read_csv(out / "results.csv")
    assert sorted(csv.model) == sorted(studies.get("zoo_profile").quick.resolve()["model"])
    capsys.readouterr()
    assert main(["study", "show", "zoo_profile", "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "== Per model" in shown and "lenet5" in shown


def test_list_and_progress_quiet_off_a_terminal(capsys):
    assert main(["study", "list", "--module", FIXTURES]) == 0
    out = capsys.readouterr().out
    assert "zoo_profile" in out and "fixture_slow" in out
    assert _progress(10, 0, "x", quiet=False).disable  # stderr is captured here: not a terminal
    assert _progress(10, 0, "x", quiet=True).disable


def test_run_all_quick_writes_one_combined_report(tmp_path):
    studies.load_module(FIXTURES)
    path = studies.run_all_quick(tmp_path / "demo", names=["zoo_profile", "fixture_numeric"], workers=0)
    text = path.read_text()
    assert "## Summary" in text and "Study `zoo_profile`" in text and "Study `fixture_numeric`" in text
    assert (path.parent / "zoo_profile.csv").exists() and (path.parent / "report.html").exists()
    summary = pd.read_csv(path.parent / "summary.csv")  # what studies.demo_step returns to `neurosim demo`
    assert summary.study.tolist() == ["zoo_profile", "fixture_numeric"] and (summary.status == "ok").all()
    assert summary.ran.tolist() == [3, 1]


def test_a_study_whose_dependency_is_missing_fails_clearly_and_is_skipped_in_the_demo(tmp_path, capsys):
    rc = main(["study", "run", "fixture_needs_missing", "--module", FIXTURES, "--db", str(tmp_path / "m.sqlite"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "needs neurosim_no_such_module" in err
    studies.load_module(FIXTURES)
    path = studies.run_all_quick(tmp_path / "demo", names=["fixture_needs_missing", "fixture_numeric"], workers=0)
    assert "skipped: study 'fixture_needs_missing' needs neurosim_no_such_module" in path.read_text()


def test_a_scheduler_without_workers_is_one_line_exit_2(tmp_path, capsys):
    import asyncio

    distributed = pytest.importorskip("distributed")

    async def scenario():
        async with distributed.Scheduler(host="127.0.0.1", port=0, dashboard_address=None) as sched:
            argv = ["study", "run", "fixture_numeric", "--module", FIXTURES, "--db", str(tmp_path / "w.sqlite"),
                    "--scheduler", sched.address, "--connect-timeout", "1", "--quiet"]
            return await asyncio.get_running_loop().run_in_executor(None, main, argv)

    assert asyncio.run(scenario()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no workers" in err
