"""The results store: every finished cell is one committed SQLite row, so a killed run loses nothing.

Decisions:

* **Engine:** the standard library's ``sqlite3`` (embedded, no server), one file, default
  ``runs/neurosim.sqlite`` (``runs/`` is git-ignored), overridden by ``--db`` or ``NEUROSIM_DB``.
* **Durability:** ``journal_mode=WAL`` and ``synchronous=FULL``; every finished cell is written in its
  own ``BEGIN IMMEDIATE ... COMMIT`` transaction by the driver process (workers never write), so a
  SIGKILL at any moment leaves every committed cell in the file and SQLite's rollback of the
  uncommitted tail keeps it consistent (``PRAGMA integrity_check`` = ok; tested with a real SIGKILL).
* **Key:** ``(study, params, code_version)`` where ``params`` is the canonical JSON of the cell's
  parameters (sorted keys, no spaces) and ``code_version`` is ``<neurosim version>+<hash of the study
  module, the suite's code and the lock>`` (``studies.registry``); a re-run skips every key already
  present at the current code version; cells of older versions are kept and counted as stale.
* **Rows:** a cell returns one or more result rows; they are stored as a JSON list in the cell's
  ``rows`` column and flattened to ``params + row`` when read back (:meth:`Store.frame`).
* **Schema version:** table ``meta`` holds ``schema_version``; a file written by another schema
  version (or a file that is not a results store) is refused with :class:`NeurosimError` naming the
  file and both versions, *before* anything is written to it.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from neurosim.errors import NeurosimError

SCHEMA_VERSION = 1
DEFAULT_DB = Path("runs") / "neurosim.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study TEXT NOT NULL, code_version TEXT NOT NULL, quick INTEGER NOT NULL,
    command TEXT NOT NULL, versions TEXT NOT NULL, executor TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
    n_cells INTEGER NOT NULL, n_skipped INTEGER NOT NULL, n_done INTEGER, n_failed INTEGER);
CREATE TABLE IF NOT EXISTS results (
    study TEXT NOT NULL, params TEXT NOT NULL, code_version TEXT NOT NULL,
    rows TEXT NOT NULL, elapsed_s REAL NOT NULL, worker TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id), finished_at TEXT NOT NULL,
    PRIMARY KEY (study, params, code_version));
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study TEXT NOT NULL, params TEXT NOT NULL, code_version TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id), error TEXT NOT NULL, traceback TEXT NOT NULL,
    at TEXT NOT NULL);
"""

#: Cells a running driver has taken (added to existing databases on first use: no schema version change).
_CLAIMS = """CREATE TABLE IF NOT EXISTS claims (
    study TEXT NOT NULL, params TEXT NOT NULL, code_version TEXT NOT NULL, run_id INTEGER NOT NULL,
    host TEXT NOT NULL, pid INTEGER NOT NULL, claimed_at TEXT NOT NULL,
    PRIMARY KEY (study, params, code_version))"""


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_path() -> Path:
    """``$NEUROSIM_DB`` if set, else ``runs/neurosim.sqlite`` (relative to the working directory)."""
    return Path(os.environ.get("NEUROSIM_DB") or DEFAULT_DB)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def json_rows(rows) -> str:
    """Serialise a cell's rows (numpy scalars allowed) to JSON text."""
    return json.dumps(rows, default=_json_default, separators=(",", ":"))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray) and o.size == 1:
        return o.item()
    raise TypeError(f"a result value of type {type(o).__name__} is not a JSON scalar: {o!r}")


class Store:
    """A results database. ``Store(path)`` opens (or, with ``create=True``, creates) it.

    Use as a context manager or call :meth:`close`. Only one process should write (the driver);
    any number may read concurrently (WAL).
    """

    def __init__(self, path: str | Path | None = None, *, create: bool = True):
        self.path = Path(path) if path is not None else default_path()
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists and not create:
            raise NeurosimError(f"no results database at {self.path}; run `neurosim study run NAME` "
                                "first (or pass --db / set NEUROSIM_DB)")
        if self.path.is_dir():
            raise NeurosimError(f"results database path {self.path} is a directory")
        if not exists:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise NeurosimError(f"cannot create the results database's folder {self.path.parent}: {e}") from None
        try:
            self.con = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        except sqlite3.Error as e:
            raise NeurosimError(f"cannot open results database {self.path}: {e}") from None
        try:
            if exists:
                self._check_version()
                self._check_integrity()
            self.con.execute("PRAGMA busy_timeout=60000")
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=FULL")
            if not exists:
                self._create()
        except sqlite3.Error as e:
            self.con.close()
            raise NeurosimError(f"cannot use results database {self.path}: {e}") from None
        except BaseException:
            self.con.close()
            raise

    # -- schema -----------------------------------------------------------------------------------
    def _check_version(self) -> None:
        try:
            tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise NeurosimError(f"{self.path} is not a neurosim results database (SQLite: {e})") from None
        if not tables:
            self._create()
            return
        if "meta" not in tables:
            raise NeurosimError(f"{self.path} is an SQLite file but not a neurosim results database "
                                f"(tables: {', '.join(sorted(tables))})")
        meta = dict(self.con.execute("SELECT key, value FROM meta"))
        found = meta.get("schema_version")
        if found != str(SCHEMA_VERSION):
            raise NeurosimError(
                f"{self.path} holds results-store schema version {found} (written by neurosim "
                f"{meta.get('neurosim_version', '?')}); this neurosim reads schema version {SCHEMA_VERSION}. "
                "Open it with the neurosim that wrote it (and export to CSV/Parquet), or use another --db")

    def _check_integrity(self) -> None:
        """Refuse a damaged file before anything is written into it (``PRAGMA quick_check``: every page and
        index is readable and consistent; O(size), milliseconds for a study database)."""
        try:
            problems = [r[0] for r in self.con.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as e:
            problems = [str(e)]
        if problems != ["ok"]:
            raise NeurosimError(f"results database {self.path} is damaged ({problems[0]}); nothing was written. "
                                "Restore it from a copy, or `neurosim study export` what still reads and use "
                                "another --db")

    def _create(self) -> None:
        import neurosim

        with self._tx():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.con.execute(statement)
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('neurosim_version', ?)", (neurosim.__version__,))
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('created_at', ?)", (_now(),))

    def _tx(self):
        return _Transaction(self.con)

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing ----------------------------------------------------------------------------------
    def begin_run(self, study: str, code_version: str, *, quick: bool, command: str, versions: dict,
                  executor: str, n_cells: int, n_skipped: int) -> int:
        with self._tx():
            cur = self.con.execute(
                "INSERT INTO runs (study, code_version, quick, command, versions, executor, started_at, status,"
                " n_cells, n_skipped) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)",
                (study, code_version, int(quick), command, json.dumps(versions), executor, _now(), n_cells,
                 n_skipped))
            return int(cur.lastrowid)

    def end_run(self, run_id: int, status: str, n_done: int, n_failed: int) -> None:
        with self._tx():
            self.con.execute("UPDATE runs SET finished_at=?, status=?, n_done=?, n_failed=? WHERE id=?",
                             (_now(), status, n_done, n_failed, run_id))

    def put(self, study: str, params: str, code_version: str, rows_json: str, *, elapsed_s: float,
            worker: str = "", run_id: int | None = None) -> None:
        """Commit one finished cell (its own transaction: durable once this returns)."""
        with self._tx():
            self.con.execute(
                "INSERT OR REPLACE INTO results (study, params, code_version, rows, elapsed_s, worker, run_id,"
                " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (study, params, code_version, rows_json, float(elapsed_s), worker or socket.gethostname(),
                 run_id, _now()))

    def put_failure(self, study: str, params: str, code_version: str, error: str, traceback: str,
                    run_id: int | None = None) -> None:
        with self._tx():
            self.con.execute("INSERT INTO failures (study, params, code_version, run_id, error, traceback, at)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (study, params, code_version, run_id, error, traceback, _now()))

    # -- claims: concurrent runs on one database share the work --------------------------------------
    def claim(self, study: str, code_version: str, keys: Iterable[str], run_id: int, *,
              skip_stored: bool = True) -> set[str]:
        """Claim the cells ``keys`` for run ``run_id`` and return those this run got: a cell stored meanwhile,
        (unless ``skip_stored`` is false: a recompute) or claimed by another run that is alive, is left out. A claim is stale (taken over) when its run has
        ended or its process is gone from this host; a live run on another host keeps its claims. One
        transaction, so two drivers never get the same cell."""
        host, now = socket.gethostname(), _now()
        got = set()
        with self._tx():
            self.con.execute(_CLAIMS)
            done = self.done_keys(study, code_version) if skip_stored else set()
            held = {p: (h, pid, st) for p, h, pid, st in self.con.execute(
                "SELECT c.params, c.host, c.pid, r.status FROM claims c LEFT JOIN runs r ON r.id = c.run_id"
                " WHERE c.study=? AND c.code_version=?", (study, code_version))}
            for key in keys:
                if key in done:
                    continue
                if key in held:
                    h, pid, status = held[key]
                    if status == "running" and (h != host or _alive(pid)):
                        continue
                self.con.execute("INSERT OR REPLACE INTO claims (study, params, code_version, run_id, host, pid,"
                                 " claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (study, key, code_version, run_id, host, os.getpid(), now))
                got.add(key)
        return got

    def release(self, run_id: int) -> None:
        """Drop run ``run_id``'s claims (finished, failed or interrupted: the cells are stored or pending)."""
        with self._tx():
            self.con.execute(_CLAIMS)
            self.con.execute("DELETE FROM claims WHERE run_id=?", (run_id,))

    def stored_by(self, run_id: int) -> int:
        """Cells that run ``run_id`` committed (what its ``n_done`` is, whatever interrupted it)."""
        return int(self.con.execute("SELECT COUNT(*) FROM results WHERE run_id=?", (run_id,)).fetchone()[0])

    # -- reading ----------------------------------------------------------------------------------
    def done_keys(self, study: str, code_version: str) -> set[str]:
        return {r[0] for r in self.con.execute(
            "SELECT params FROM results WHERE study=? AND code_version=?", (study, code_version))}

    def stale_keys(self, study: str, code_version: str) -> set[str]:
        """Cells stored only under other code versions: what a run at ``code_version`` would recompute."""
        return {r[0] for r in self.con.execute(
            "SELECT DISTINCT params FROM results WHERE study=? AND code_version<>? AND params NOT IN "
            "(SELECT params FROM results WHERE study=? AND code_version=?)", (study, code_version, study, code_version))}

    def code_versions(self, study: str) -> list[str]:
        return [r[0] for r in self.con.execute(
            "SELECT code_version, MAX(finished_at) AS t FROM results WHERE study=? GROUP BY code_version "
            "ORDER BY t DESC", (study,))]

    def cells(self, study: str, code_version: str | None = None, keys: Iterable[str] | None = None):
        """Raw cell records: dicts with params (dict), rows (list), code_version, elapsed_s, run_id..."""
        q = ("SELECT params, code_version, rows, elapsed_s, worker, run_id, finished_at FROM results "
             "WHERE study=?")
        args: list = [study]
        if code_version is not None:
            q += " AND code_version=?"
            args.append(code_version)
        q += " ORDER BY rowid"
        wanted = set(keys) if keys is not None else None
        out = []
        for params, cv, rows, elapsed, worker, run_id, at in self.con.execute(q, args):
            if wanted is not None and params not in wanted:
                continue
            out.append(dict(params=json.loads(params), key=params, code_version=cv, rows=json.loads(rows),
                            elapsed_s=elapsed, worker=worker, run_id=run_id, finished_at=at))
        return out

    def frame(self, study: str, code_version: str | None = None, keys: Iterable[str] | None = None,
              order: list[str] | None = None, with_meta: bool = False):
        """All result rows of ``study`` as a DataFrame: cell parameters, then the cell's row fields.

        ``order`` (a list of canonical keys) sorts cells in sweep order; ``with_meta`` adds
        ``code_version``, ``elapsed_s`` and ``run_id`` columns.
        """
        import pandas as pd

        cells = self.cells(study, code_version, keys)
        if order is not None:
            rank: dict[str, int] = {}
            for i, k in enumerate(order):
                rank.setdefault(k, i)
            cells.sort(key=lambda c: rank.get(c["key"], len(rank)))
        records = []
        for c in cells:
            meta = dict(code_version=c["code_version"], elapsed_s=c["elapsed_s"], run_id=c["run_id"]) \
                if with_meta else {}
            for row in c["rows"]:
                records.append({**c["params"], **row, **meta})
        return pd.DataFrame.from_records(records)

    def failures(self, study: str, run_id: int | None = None) -> list[dict]:
        q, args = "SELECT params, error, traceback, run_id FROM failures WHERE study=?", [study]
        if run_id is not None:
            q += " AND run_id=?"
            args.append(run_id)
        return [dict(params=json.loads(p), error=e, traceback=t, run_id=r)
                for p, e, t, r in self.con.execute(q + " ORDER BY id", args)]

    def runs(self, study: str | None = None):
        import pandas as pd

        q = "SELECT id, study, code_version, quick, executor, started_at, finished_at, status, n_cells, " \
            "n_skipped, n_done, n_failed, command FROM runs"
        args = []
        if study:
            q += " WHERE study=?"
            args.append(study)
        return pd.read_sql_query(q + " ORDER BY id", self.con, params=args)

    def summary(self):
        """One row per (study, code_version): cells and rows stored, last finished."""
        import pandas as pd

        recs = []
        for study, cv, n, last, rows in self.con.execute(
                "SELECT study, code_version, COUNT(*), MAX(finished_at), GROUP_CONCAT(json_array_length(rows))"
                " FROM results GROUP BY study, code_version ORDER BY study, MAX(finished_at)"):
            recs.append(dict(study=study, code_version=cv, cells=n,
                             rows=sum(int(x) for x in (rows or "").split(",") if x), last_finished=last))
        return pd.DataFrame.from_records(recs, columns=["study", "code_version", "cells", "rows", "last_finished"])

    def integrity(self) -> str:
        return self.con.execute("PRAGMA integrity_check").fetchone()[0]


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on an exception) on an autocommit connection."""

    def __init__(self, con):
        self.con = con

    def __enter__(self):
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.con.execute("COMMIT")
        else:
            self.con.execute("ROLLBACK")
        return False


def export(frame, path: str | Path) -> Path:
    """Write a results DataFrame to ``.csv`` or ``.parquet`` (by the file's suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        raise NeurosimError(f"cannot export to {path.name}: use a .csv or .parquet file name")
    return path
