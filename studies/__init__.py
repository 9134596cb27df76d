"""Comparative studies: declared sweeps, a results store that never loses a finished cell, plots, reports.

>>> import studies
>>> studies.names()                                  # the registered studies
>>> summary = studies.run("zoo_profile", quick=True, workers=2)   # resumes: finished cells are skipped
>>> studies.report("zoo_profile", quick=True)         # runs/zoo_profile/report.md + report.html
>>> studies.run_all_quick("runs/demo")                # every study's quick sweep, one combined report
>>> studies.demo_step("runs/demo")                    # the same, returning a summary table (neurosim demo)

A study module (``studies/<name>.py``) declares a :class:`Sweep` and one cell function with the
:func:`study` decorator; see :mod:`studies.registry`. Results: :mod:`studies.store` (SQLite, WAL, one
transaction per finished cell). Execution: :mod:`studies.runner` (local processes or Dask).
Reports: :mod:`studies.report` (Markdown + self-contained HTML, matplotlib PNGs).
"""
from studies.registry import Study, Sweep, canonical_json, get, load_module, names, study  # noqa: F401


def run(name, **options):
    """Run a study's pending cells; see :func:`studies.runner.run`."""
    from studies.runner import run as _run

    return _run(name, **options)


def report(name, **options):
    """Write a study's report from the store; see :func:`studies.report.report`."""
    from studies.report import report as _report

    return _report(name, **options)


def run_all_quick(out_dir, **options):
    """Every study's quick sweep and one combined report (``neurosim demo``); returns the report path."""
    from studies.report import run_all_quick as _all

    return _all(out_dir, **options)


def demo_step(out_dir="runs/demo"):
    """``neurosim demo``'s step: :func:`run_all_quick` into ``out_dir``, then a summary DataFrame."""
    from studies.report import demo_step as _step

    return _step(out_dir)


__all__ = ["demo_step", "Study", "Sweep", "study", "names", "get", "load_module", "canonical_json", "run", "report",
           "run_all_quick"]
