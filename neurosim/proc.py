"""Process hygiene: every child the suite starts dies with its parent, and Ctrl-C always ends a command.

Decisions:

* **Parent-death signal.** Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (through ``ctypes``; no new
  dependency) makes the kernel kill a child the moment the thread that started it dies, whatever
  killed the parent (SIGKILL included, where no ``finally`` and no ``atexit`` runs). It is set:

  - in every process *forked* while :func:`children_die_with_me` is active (``os.register_at_fork``):
    Lava's runtime workers and its ``SharedMemoryManager`` server; those children also ignore SIGINT,
    so a Ctrl-C sent to the whole process group (what a terminal does) reaches only the parent, which
    then stops them in a bounded way (``neurosim.backends.lava``) instead of finding them half dead;
  - by :func:`child_setup`, the initializer of the study runner's spawned pool workers, which then
    checks that its parent is still the one that started it (a parent killed before ``prctl`` ran).

  Shared-memory segments of a killed Lava run are unlinked by Python's ``resource_tracker``, which
  exits (and unlinks what its clients left) once every process holding its pipe has died.
* **Signals in the CLI** (:func:`cli_signals`): SIGTERM raises :class:`Terminated` (a
  ``KeyboardInterrupt``, so every cleanup path written for Ctrl-C runs; exit 143), SIGINT raises
  ``KeyboardInterrupt`` (exit 130); a second SIGINT or SIGTERM exits at once (``os._exit``; the
  children then die by their parent-death signal), and after the first one a watchdog thread ends
  the process if it has not exited within :data:`EXIT_GRACE_S` seconds. No traceback either way.
* :func:`descendants` walks ``/proc`` (by parent PID, not by name), for tests and diagnostics.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

PR_SET_PDEATHSIG = 1
EXIT_GRACE_S = 4.0  # after the first Ctrl-C / SIGTERM the process is gone within this many seconds

_libc = None
_active = 0
_lock = threading.Lock()
_hook_registered = False


def set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) dies. False where the
    platform has no ``prctl`` (not Linux)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _after_fork_in_child() -> None:
    if _active > 0:
        set_pdeathsig(signal.SIGKILL)
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # terminate() ends it, whatever the parent set
        except ValueError:  # not the main thread of the child (cannot happen after fork, but be safe)
            pass


@contextmanager
def children_die_with_me():
    """While active, every child forked by this process gets a parent-death SIGKILL and ignores SIGINT."""
    global _active, _hook_registered
    with _lock:
        if not _hook_registered:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _hook_registered = True
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1


def child_setup(parent_pid: int | None = None, ignore_sigint: bool = True) -> None:
    """In a freshly started child (a pool worker's initializer): die with the parent, leave Ctrl-C
    to it, and exit now if the parent is already gone."""
    set_pdeathsig(signal.SIGKILL)
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def reap(procs, grace_s: float = 1.0) -> None:
    """Terminate ``procs`` (``multiprocessing.Process``-like), wait up to ``grace_s`` in all, then kill
    those still alive. Never blocks longer than about ``2 * grace_s``."""
    import time

    procs = [p for p in procs if _alive(p)]
    for p in procs:
        try:
            p.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass
    deadline = time.monotonic() + grace_s
    for p in procs:
        _join(p, max(0.0, deadline - time.monotonic()))
    for p in procs:
        if _alive(p):
            try:
                p.kill()
            except Exception:  # noqa: BLE001
                pass
            _join(p, grace_s)


def _alive(p) -> bool:
    try:
        return p.exitcode is None
    except ValueError:  # closed
        return False


def _join(p, timeout: float) -> None:
    import multiprocessing as mp

    try:
        mp.Process.join(p, timeout)  # Lava's SystemProcess.join takes no timeout
    except Exception:  # noqa: BLE001 - closed, or not our child
        pass


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same cleanup runs; the CLI exits 143."""


_signals_seen = 0


def _on_signal(signum, frame):
    global _signals_seen
    _signals_seen += 1
    if _signals_seen > 1:
        try:
            os.write(2, b"neurosim: interrupted again, exiting now\n")
        finally:
            os._exit(130 if signum == signal.SIGINT else 143)
    _arm_exit_watchdog(130 if signum == signal.SIGINT else 143)
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def _arm_exit_watchdog(code: int) -> None:
    def _bail():
        try:
            os.write(2, b"neurosim: cleanup took too long, exiting\n")
        finally:
            os._exit(code)

    t = threading.Timer(EXIT_GRACE_S, _bail)
    t.daemon = True
    t.start()


def cli_signals() -> None:
    """Install the CLI's SIGINT/SIGTERM handlers (module docstring). Main thread only."""
    global _signals_seen
    _signals_seen = 0
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def descendants(pid: int | None = None) -> set[int]:
    """PIDs of every live (non-zombie) descendant of ``pid`` (default: this process), from ``/proc``."""
    root = os.getpid() if pid is None else int(pid)
    children: dict[int, list[int]] = {}
    state: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            rest = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state[int(d.name)] = rest[0]
        children.setdefault(int(rest[1]), []).append(int(d.name))
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return {p for p in out if state.get(p) != "Z"}
