"""Running a study: pending cells -> an executor -> one committed store row per finished cell.

Decisions:

* **Executors** are ``concurrent.futures`` executors. ``workers=N`` (N >= 1, the default is the number
  of CPUs, at most 4) uses a ``ProcessPoolExecutor`` with the ``spawn`` start method (workers import
  the study module afresh: no torch/OpenMP state inherited through ``fork``) and one intra-op thread
  per worker unless ``OMP_NUM_THREADS`` says otherwise; ``workers=0`` runs the cells in this process,
  one after the other (debugging, tiny sweeps). ``scheduler="tcp://HOST:PORT"`` uses a Dask
  distributed cluster through ``Client.get_executor()``; the connection is tried for
  ``connect_timeout_s`` and an unreachable scheduler is a :class:`NeurosimError`.
* **Only the driver writes** to the store: workers return ``{rows, elapsed_s, worker}`` (or the error
  and traceback as text, never a pickled exception), and the driver commits each as it completes
  (``as_completed``), so the order of completion never matters and a remote worker needs no access
  to the database file.
* **A failing cell** does not stop the run: its error and traceback go to the ``failures`` table, it
  is not marked done (a re-run retries it), and the :class:`RunSummary` counts it.
* **Progress:** a tqdm bar on stderr (cells done of total, rate, ETA; cells already in the store count
  as done from the start), shown only when stderr is a terminal and ``quiet`` is false.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import platform
import shlex
import socket
import sys
import threading
import time
import traceback
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from neurosim.errors import NeurosimError
from studies.registry import Study, canonical_json, get, load_module
from studies.store import Store, json_rows


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result can depend on (for the store and the report)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("neurosim", "torch", "numpy", "pandas", "snntorch", "lava-nc", "brian2", "nir", "numba",
                 "matplotlib", "distributed"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def command_line() -> str:
    """The command that started this process, as a shell would need it typed."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("neurosim", "neurosim/cli.py")):
        argv[0] = "neurosim"
    return shlex.join(argv)


# ---- the cell, as a worker runs it ---------------------------------------------------------------

def execute_cell(module_ref: str, study_name: str, params: dict) -> dict:
    """Run one cell (in a worker): import the study module, call the cell, normalise its rows.

    Returns ``{"rows": json text, "elapsed_s", "worker"}`` or ``{"error", "traceback", "worker"}``;
    never raises, so that every executor brings failures back the same way.
    """
    global _in_cell
    worker = f"{socket.gethostname()}:{os.getpid()}"
    t0 = time.perf_counter()
    _in_cell = True
    try:
        load_module(module_ref)
        s = get(study_name)
        out = s.cell(**params)
        rows = _as_rows(out)
        return {"rows": json_rows(rows), "elapsed_s": time.perf_counter() - t0, "worker": worker}
    except KeyboardInterrupt:
        if _pool_worker:  # SIGTERM from the driver ending the pool: the cell's cleanup has run, now go
            os._exit(143)
        raise
    except Exception as e:  # noqa: BLE001 - reported to the driver as data
        return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(), "worker": worker,
                "elapsed_s": time.perf_counter() - t0}
    finally:
        _in_cell = False


_in_cell = False
_pool_worker = False


def _on_term(signum, frame):
    """SIGTERM in a pool worker: inside a cell, unwind it (a Lava run then stops its runtime and unlinks
    its shared memory) and exit; between cells, exit at once."""
    if _in_cell:
        raise KeyboardInterrupt()
    os._exit(143)


def _as_rows(out) -> list[dict]:
    if out is None:
        raise TypeError("a cell must return a dict, a list of dicts or a DataFrame, got None")
    if hasattr(out, "to_dict") and hasattr(out, "columns"):  # a DataFrame
        out = out.to_dict(orient="records")
    if isinstance(out, Mapping):
        out = [dict(out)]
    rows = [dict(r) for r in out]
    for r in rows:
        for k in r:
            if not isinstance(k, str):
                raise TypeError(f"result field names must be strings, got {k!r}")
    return rows


def _init_worker(threads: int, parent_pid: int | None = None) -> None:
    # die with the driver whatever kills it, and leave Ctrl-C to the driver (it ends the pool at once)
    from neurosim.proc import child_setup

    global _pool_worker
    import signal

    child_setup(parent_pid)
    _pool_worker = True
    signal.signal(signal.SIGTERM, _on_term)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))


# ---- executors -------------------------------------------------------------------------------------

class _Inline:
    """Runs the cells one after the other in this process (``workers=0``)."""

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def _results(pool, module_ref: str, study_name: str, pending: list[tuple[str, dict]]):
    """Yield ``(key, cell, result)`` as cells finish, in completion order."""
    if isinstance(pool, _Inline):
        for key, cell in pending:
            yield key, cell, execute_cell(module_ref, study_name, cell)
        return
    futures = {pool.submit(execute_cell, module_ref, study_name, c): (k, c) for k, c in pending}
    finished = 0
    for fut in cf.as_completed(futures):
        key, cell = futures[fut]
        finished += 1
        try:
            res = fut.result()
        except BrokenProcessPool as e:  # a worker was killed: every queued future fails the same way
            res = {"error": f"BrokenProcessPool: a worker process died (killed, or out of memory) while the pool "
                            f"ran this or another cell: {e}", "traceback": traceback.format_exc(), "worker": "?",
                   "pool_broken": True, "not_run": len(futures) - finished}
        except Exception as e:  # noqa: BLE001 - the cluster lost the task
            res = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(), "worker": "?"}
        yield key, cell, res


def check_timeout(connect_timeout_s) -> float:
    """``--connect-timeout``: a finite number of seconds > 0 (NaN, inf, 0 and negatives are refused)."""
    import math

    try:
        t = float(connect_timeout_s)
    except (TypeError, ValueError):
        raise NeurosimError(f"--connect-timeout must be a number of seconds, got {connect_timeout_s!r}") from None
    if not math.isfinite(t) or t <= 0 or t > 86400:
        raise NeurosimError(f"--connect-timeout must be a finite number of seconds in (0, 86400], got {t:g}")
    return t


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[1] if "://" in address else address
    proto = address.split("://", 1)[0] if "://" in address else "tcp"
    if proto not in ("tcp", "tls"):
        raise NeurosimError(f"--scheduler {address!r}: only tcp:// and tls:// addresses are supported")
    host, sep, port = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise NeurosimError(f"--scheduler {address!r} must look like tcp://HOST:PORT (PORT in 1..65535)")
    return host, int(port)


def connect_dask(address: str, connect_timeout_s: float = 10.0, *, need_workers: bool = False):
    """A ``distributed.Client`` on ``address`` or NeurosimError if it cannot be reached in time.

    Bounded by ``connect_timeout_s`` whatever the other end does: a refused port fails at once (a plain
    TCP connect first), and the Dask handshake (and, with ``need_workers``, the wait for a worker) runs
    under a hard deadline, so an endpoint that accepts and never answers, or speaks another protocol
    (an HTTP server: Dask would read its bytes as a frame length), is one error line, not a hang or a
    traceback."""
    t = check_timeout(connect_timeout_s)
    host, port = _host_port(address)
    try:
        from distributed import Client as _DaskClient
    except ImportError as e:
        raise NeurosimError(f"--scheduler needs the 'distributed' package: {e}") from None

    class Client(_DaskClient):
        """A Client that, when its constructor fails, stops its loop and marks itself closed, so that its
        ``__del__`` (at exit) does not wait for a close that times out and prints a traceback."""

        def __init__(self, *a, **k):
            try:
                super().__init__(*a, **k)
            except BaseException:
                self.status = "closed"
                try:
                    self._loop_runner.stop()
                except BaseException:  # noqa: BLE001
                    pass
                raise

    where = f"the Dask scheduler at {address}"
    deadline = time.monotonic() + t
    try:
        socket.create_connection((host, port), timeout=t).close()
    except OSError as e:
        raise NeurosimError(f"cannot reach {where}: {e.strerror or e}") from None
    box: dict = {}

    def _connect():
        try:
            c = Client(address, timeout=f"{max(0.5, deadline - time.monotonic()):.3f}s", set_as_default=False)
            box["client"] = c
            if need_workers:
                try:
                    c.wait_for_workers(1, timeout=max(0.5, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - WorkerStartTimeoutError (not a TimeoutError), a lost link
                    box["no_workers"] = True
        except BaseException as e:  # noqa: BLE001 - anything the handshake raises becomes one line below
            box["error"] = e

    th = threading.Thread(target=_connect, name="dask-connect", daemon=True)
    th.start()
    th.join(max(0.0, deadline - time.monotonic()) + 0.25)
    if th.is_alive() or "error" in box or box.get("no_workers"):
        c = box.get("client")
        if c is not None:
            threading.Thread(target=_quiet_close, args=(c,), daemon=True).start()
        if th.is_alive():
            raise NeurosimError(f"{where} accepted the connection but did not answer as a Dask scheduler "
                                f"within {t:g} s (--connect-timeout)")
        if box.get("no_workers"):
            raise NeurosimError(f"{where} has no workers (waited {t:g} s); start some with "
                                f"`dask worker {address}`")
        e = box["error"]
        if isinstance(e, (MemoryError, OverflowError, UnicodeError, EOFError)) or "deserial" in str(e).lower():
            msg = "it does not speak the Dask protocol (is it another service?)"
        else:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NeurosimError(f"cannot reach {where} within {t:g} s: {msg}")
    return box["client"]


def _quiet_close(client) -> None:
    try:
        client.close(timeout=2)
    except BaseException:  # noqa: BLE001
        pass


class Executor:
    """Context manager yielding ``(executor, description)`` for the requested kind (see the module docstring)."""

    def __init__(self, workers: int | None, scheduler: str | None, connect_timeout_s: float, module_ref: str,
                 n_cells: int):
        self.workers, self.scheduler, self.timeout, self.module_ref = workers, scheduler, connect_timeout_s, module_ref
        self.n_cells = n_cells
        self.client = None
        self.pool = None
        self.desc = ""

    def __enter__(self):
        if self.scheduler:
            self.client = connect_dask(self.scheduler, self.timeout, need_workers=True)
            if self.module_ref.endswith(".py"):
                self.client.upload_file(self.module_ref)
            n = len(self.client.scheduler_info().get("workers", {}))
            self.pool = self.client.get_executor(pure=False)
            self.desc = f"dask {self.scheduler} ({n} workers)"
            return self.pool, self.desc
        workers = default_workers() if self.workers is None else self.workers
        if workers < 0:
            raise NeurosimError(f"--workers must be >= 0, got {workers}")
        if workers == 0 or self.n_cells <= 1:
            self.pool, self.desc = _Inline(), "inline (this process)"
            return self.pool, self.desc
        import multiprocessing as mp

        workers = min(workers, self.n_cells)
        threads = max(1, (os.cpu_count() or 1) // workers)
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                           initializer=_init_worker, initargs=(threads, os.getpid()))
        self.desc = f"processes ({workers} workers)"
        return self.pool, self.desc

    def __exit__(self, exc_type, exc, tb):
        if self.pool is not None and exc_type is not None and isinstance(self.pool, cf.ProcessPoolExecutor):
            # interrupted or failed: end the workers now instead of letting queued and running cells
            # finish (their results would be thrown away); bounded: SIGTERM (a cell unwinds, a Lava run
            # stops its runtime), then SIGKILL after 2.5 s
            from neurosim.proc import reap

            procs = list((getattr(self.pool, "_processes", None) or {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            reap(procs, grace_s=2.5)
        elif self.pool is not None:
            try:
                self.pool.shutdown(wait=exc_type is None, cancel_futures=True)
            except TypeError:  # Dask's ClientExecutor.shutdown has no cancel_futures
                self.pool.shutdown(wait=exc_type is None)
        if self.client is not None:
            _quiet_close(self.client)  # bounded: a scheduler that died mid-run must not hang the exit
        return False


class _Shared:
    """An already-entered :class:`Executor`, lent to one run without shutting it down."""

    def __init__(self, ex: Executor):
        self.ex = ex

    def __enter__(self):
        return self.ex.pool, self.ex.desc

    def __exit__(self, *exc):
        return False


# ---- the run --------------------------------------------------------------------------------------

@dataclass
class RunSummary:
    """What one ``run`` did: cells in the sweep, skipped (already stored), run now, failed."""

    study: str
    code_version: str
    db: str
    executor: str
    quick: bool
    n_cells: int
    n_skipped: int
    n_done: int
    n_failed: int
    elapsed_s: float
    run_id: int | None = None
    n_elsewhere: int = 0  # pending when the run started, but stored or claimed by another run on the same db
    n_not_run: int = 0  # left pending because the worker pool broke (a re-run runs them)
    keys: list[str] = field(default_factory=list, repr=False)
    failures: list[dict] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("keys")
        return d

    def to_dataframe(self):
        import pandas as pd

        d = self.to_dict()
        d.pop("failures")
        return pd.DataFrame([d])


def _progress(total: int, initial: int, desc: str, quiet: bool):
    from tqdm import tqdm

    show = not quiet and sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit="cell", file=sys.stderr, disable=not show,
                dynamic_ncols=True, smoothing=0.1)


def run(study: str | Study, *, quick: bool = False, only: Mapping[str, Sequence] | None = None,
        db: str | Path | None = None, workers: int | None = None, scheduler: str | None = None,
        connect_timeout_s: float = 10.0, quiet: bool = False, modules: Sequence[str] = (),
        command: str | None = None, executor: "Executor | None" = None, recompute: bool = False) -> RunSummary:
    """Run every cell of ``study`` (its quick sweep with ``quick``) not already in the store.

    Cells already stored under the study's current code version are skipped; each finished cell is
    committed as it completes. Returns a :class:`RunSummary`. ``executor`` (an entered
    :class:`Executor`) lets several runs share one pool of warm workers (:func:`studies.run_all_quick`).
    ``recompute`` runs every cell again and replaces the stored rows (the code version covers the study
    module only: after a change in the code a study calls, recompute, or use a fresh ``db``).
    """
    for ref in modules:
        load_module(ref)
    s = study if isinstance(study, Study) else get(study, modules)
    s.check_available()
    cells = s.cells(quick=quick, only=only)
    if not cells:
        raise NeurosimError(f"study {s.name!r}: the selection {dict(only or {})} leaves no cells "
                            f"(the sweep's filter excludes every combination)")
    keys = [canonical_json(c) for c in cells]
    code_version = s.code_version()
    t0 = time.perf_counter()
    with Store(db) as store:
        done = set() if recompute else store.done_keys(s.name, code_version)
        pending = [(k, c) for k, c in zip(keys, cells) if k not in done]
        summary = RunSummary(s.name, code_version, str(store.path), "none (all cells stored)", quick, len(cells),
                             len(cells) - len(pending), 0, 0, 0.0, keys=keys)
        if not pending:
            summary.elapsed_s = time.perf_counter() - t0
            return summary
        ctx = _Shared(executor) if executor is not None else \
            Executor(workers, scheduler, connect_timeout_s, s.module, len(pending))
        with ctx as (pool, desc):
            summary.executor = desc
            run_id = store.begin_run(s.name, code_version, quick=quick, command=command or command_line(),
                                     versions=versions(), executor=desc, n_cells=len(cells),
                                     n_skipped=summary.n_skipped)
            summary.run_id = run_id
            status = "interrupted"
            bar = None
            try:
                mine = store.claim(s.name, code_version, [k for k, _ in pending], run_id, skip_stored=not recompute)
                summary.n_elsewhere = len(pending) - len(mine)  # stored or being run by another driver
                pending = [(k, c) for k, c in pending if k in mine]
                bar = _progress(len(cells), len(cells) - len(pending), s.name, quiet)
                for key, cell, res in _results(pool, s.module, s.name, pending):
                    if res.get("pool_broken"):  # one failure row, not one per queued cell; the rest stay pending
                        store.put_failure(s.name, key, code_version, res["error"], res["traceback"], run_id)
                        summary.n_failed += 1
                        summary.failures.append(dict(params=cell, error=res["error"]))
                        summary.n_not_run = res["not_run"]
                        status = "worker died"
                        break
                    if "error" in res:
                        store.put_failure(s.name, key, code_version, res["error"], res["traceback"], run_id)
                        summary.n_failed += 1
                        summary.failures.append(dict(params=cell, error=res["error"]))
                    else:
                        store.put(s.name, key, code_version, res["rows"], elapsed_s=res["elapsed_s"],
                                  worker=res["worker"], run_id=run_id)
                        summary.n_done += 1
                    bar.update(1)
                    if summary.n_failed:
                        bar.set_postfix(failed=summary.n_failed)
                else:
                    status = "finished" if not summary.n_failed else "finished with failures"
            finally:
                if bar is not None:
                    bar.close()
                summary.n_done = store.stored_by(run_id)  # exactly what was committed, whatever stopped the loop
                store.end_run(run_id, status, summary.n_done, summary.n_failed)
                store.release(run_id)
    summary.elapsed_s = time.perf_counter() - t0
    return summary
