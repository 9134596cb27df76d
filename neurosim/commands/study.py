"""`neurosim study list|run|show|report|export`: comparative studies over the zoo, the catalog and the SNN side.

Results go to an SQLite store (``--db``, ``$NEUROSIM_DB``, default ``runs/neurosim.sqlite``); a re-run
skips finished cells, so an interrupted run is resumed by running the same command again.
"""
from __future__ import annotations

import sys

from neurosim.cli import command, emit, number
from neurosim.errors import NeurosimError, check_writable


def parse_only(pairs: list[str] | None) -> dict[str, list[str]]:
    """``["model=mlp,lenet5", "batch=1"]`` -> ``{"model": ["mlp", "lenet5"], "batch": ["1"]}``."""
    out: dict[str, list[str]] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise NeurosimError(f"--only expects AXIS=VALUE[,VALUE...], got {pair!r}")
        axis, values = pair.split("=", 1)
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise NeurosimError(f"--only {pair!r} names no values")
        out.setdefault(axis.strip(), []).extend(vals)
    return out


def _common(p, *, db=True, module=True):
    if db:
        p.add_argument("--db", default=None, help="results database (default $NEUROSIM_DB or runs/neurosim.sqlite)")
    if module:
        p.add_argument("--module", action="append", default=[], metavar="MOD",
                       help="also load studies from this module or .py file (repeatable)")


@command("study", help="comparative studies: list, run (resumable, local or Dask), show, report, export")
def configure(p):
    sub = p.add_subparsers(dest="study_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    pl = sub.add_parser("list", help="the registered studies and their sweeps")
    _common(pl, db=False)
    pl.add_argument("--json", action="store_true")

    pr = sub.add_parser("run", help="run a study's pending cells, then write its report")
    pr.add_argument("name", help="study name (see `neurosim study list`)")
    pr.add_argument("--quick", action="store_true", help="the small sweep (seconds to a minute)")
    pr.add_argument("--only", action="append", metavar="AXIS=V1,V2", help="restrict a sweep axis, e.g. model=mlp,lenet5")
    pr.add_argument("--workers", type=number(int, 0, 256), default=None,
                    help="local worker processes (default: CPUs, at most 4; 0 = run in this process)")
    pr.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT", help="run the cells on a Dask cluster")
    pr.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                    help="seconds to wait for the Dask scheduler (default 10)")
    pr.add_argument("--out", default=None, metavar="DIR", help="report folder (default runs/NAME)")
    pr.add_argument("--no-report", action="store_true", help="only fill the results store")
    pr.add_argument("--recompute", action="store_true",
                    help="run every cell again, replacing stored rows (after changing code the study calls)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.add_argument("--json", action="store_true")
    _common(pr)

    ps = sub.add_parser("show", help="print a study's tables from the results store")
    ps.add_argument("name")
    ps.add_argument("--quick", action="store_true", help="only the quick sweep's cells")
    ps.add_argument("--all", action="store_true", help="every stored row (all code versions), not the tables")
    ps.add_argument("--json", action="store_true")
    _common(ps)

    pp = sub.add_parser("report", help="write a study's Markdown + HTML report (tables, PNG figures, versions)")
    pp.add_argument("name")
    pp.add_argument("--quick", action="store_true", help="only the quick sweep's cells")
    pp.add_argument("--out", default=None, metavar="DIR", help="report folder (default runs/NAME)")
    _common(pp)

    pe = sub.add_parser("export", help="write a study's rows to CSV or Parquet")
    pe.add_argument("name")
    pe.add_argument("file", help="output file, .csv or .parquet")
    pe.add_argument("--all-versions", action="store_true", help="rows of every code version, with its column")
    _common(pe)

    def handler(args):
        return {"list": _list, "run": _run, "show": _show, "report": _report, "export": _export}[
            args.study_command](args)

    return handler


def _list(args):
    import pandas as pd

    import studies

    rows = []
    for name in studies.names(args.module):
        s = studies.get(name)
        why = s.missing()
        rows.append(dict(study=name, cells=_count(s, False), quick_cells=_count(s, True),
                         axes=" x ".join(s.sweep.axes), available="yes" if not why else "no",
                         description=s.description))
    emit(pd.DataFrame(rows), args.json)
    return 0


def _count(s, quick: bool):
    try:
        return len(s.cells(quick=quick))
    except Exception:  # noqa: BLE001 - an axis that needs a missing dependency: `available` says why
        return None


def _run(args):
    import sys

    import studies
    from studies.report import report
    from studies.runner import check_timeout

    check_timeout(args.connect_timeout)
    if args.out and not args.no_report:
        check_writable(args.out, "--out", directory=True)
    summary = studies.run(args.name, quick=args.quick, only=parse_only(args.only), db=args.db,
                          workers=args.workers, scheduler=args.scheduler, connect_timeout_s=args.connect_timeout,
                          quiet=args.quiet, modules=args.module, recompute=args.recompute)
    path = None
    if not args.no_report and summary.n_done + summary.n_skipped > 0:
        path = report(args.name, db=args.db, out=args.out, quick=args.quick, only=parse_only(args.only),
                      modules=args.module)
    if args.json:
        emit(summary, True)
    else:
        print(f"{summary.study}: {summary.n_cells} cells, {summary.n_skipped} already stored, {summary.n_done} run, "
              f"{summary.n_failed} failed ({summary.executor}, {summary.elapsed_s:.1f} s) -> {summary.db}")
        if summary.n_elsewhere:
            print(f"  {summary.n_elsewhere} cells were stored or are being run by another run on this database")
        if summary.n_not_run:
            print(f"  a worker process died: {summary.n_not_run} cells were not run (run the study again for them)")
        if path:
            print(f"report: {path} and {path.with_suffix('.html')}")
    for f in summary.failures[:5]:
        print(f"failed cell {f['params']}: {f['error']}", file=sys.stderr)
    return 1 if summary.n_failed else 0


def _show(args):
    import studies
    from studies.report import study_frame
    from studies.store import Store

    s = studies.get(args.name, args.module)
    with Store(args.db, create=False) as store:
        if args.all:
            df = store.frame(s.name, with_meta=True)
            if df.empty:
                raise NeurosimError(f"no results for study {s.name!r} in {store.path}")
            emit(df, args.json)
            return 0
        df = study_frame(store, s, quick=True if args.quick else None)
        if df.empty:
            others = store.code_versions(s.name)
            hint = (f"; stored code versions: {', '.join(others)} (the study changed since; see --all)"
                    if others else f"; run `neurosim study run {s.name}` first")
            raise NeurosimError(f"no results for study {s.name!r} at code version {s.code_version()} in "
                                f"{store.path}{hint}")
        stale = len(store.stale_keys(s.name, s.code_version()))
    tables = [(title, fn(df)) for title, fn in s.tables] or [(f"{s.name}: all rows", df)]
    if stale:  # on stderr, so --json stays one JSON document
        print(f"note: {stale} stored cell(s) of {s.name!r} were computed by other code versions and are stale; "
              f"`neurosim study run {s.name}` recomputes them", file=sys.stderr)
    if args.json:
        import json

        from neurosim.cli import _json_default

        print(json.dumps({t: d.to_dict(orient="records") for t, d in tables}, indent=2, default=_json_default))
        return 0
    for i, (title, d) in enumerate(tables):
        emit(d, False, title=("\n" if i else "") + f"== {title} ==")
    return 0


def _report(args):
    from studies.report import report

    if args.out:
        check_writable(args.out, "--out", directory=True)
    path = report(args.name, db=args.db, out=args.out, quick=True if args.quick else None, modules=args.module)
    print(f"report: {path} and {path.with_suffix('.html')}")
    return 0


def _export(args):
    import studies
    from studies.report import study_frame, write_frame
    from studies.store import Store

    from pathlib import Path

    s = studies.get(args.name, args.module)
    out = Path(args.file)
    if out.suffix not in (".csv", ".parquet"):
        raise NeurosimError(f"cannot export to {out.name}: use a .csv or .parquet file name")
    with Store(args.db, create=False) as store:
        df = store.frame(s.name, with_meta=True) if args.all_versions else study_frame(store, s)
    if df.empty:
        raise NeurosimError(f"no results for study {s.name!r} to export")
    write_frame(df, out)
    print(f"{len(df)} rows -> {out}")
    return 0
