"""`study run --scheduler` against endpoints that are not a healthy Dask scheduler, all real sockets on
loopback: a port that refuses, one that accepts and never answers, an HTTP server. Each must fail in
one line with exit 2 within the connect timeout (plus a generous margin), with no traceback."""
from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from neurosim.cli import main

FIXTURES = str(Path(__file__).parent / "study_fixtures.py")
TIMEOUT_S = 2.0


class _Server:
    """A TCP server on 127.0.0.1 that accepts and then either says nothing or answers like HTTP."""

    def __init__(self, mode: str):
        self.mode, self.conns = mode, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            if self.mode == "http":
                try:
                    c.settimeout(1.0)
                    c.recv(4096)
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
                              b"bad request")
                except OSError:
                    pass

    def close(self):
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


def _refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run(tmp_path, capsys, address, timeout=str(TIMEOUT_S)):
    db = tmp_path / "r.sqlite"
    t0 = time.monotonic()
    rc = main(["study", "run", "fixture_numeric", "--module", FIXTURES, "--scheduler", address,
               "--connect-timeout", timeout, "--db", str(db), "--no-report", "--quiet"])
    dt = time.monotonic() - t0
    err = capsys.readouterr().err
    return rc, dt, err, db


@pytest.mark.parametrize("mode", ["refused", "hang", "http"])
def test_a_bad_scheduler_fails_in_one_line_within_the_timeout(tmp_path, capsys, mode):
    server = None if mode == "refused" else _Server(mode)
    port = _refused_port() if server is None else server.port
    try:
        rc, dt, err, db = _run(tmp_path, capsys, f"tcp://127.0.0.1:{port}")
    finally:
        if server:
            server.close()
    print(f"{mode}: exit {rc} after {dt:.2f} s: {err.strip()}")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "scheduler" in err
    assert dt < TIMEOUT_S + 15, f"took {dt:.1f} s with --connect-timeout {TIMEOUT_S}"
    if db.exists():  # no run was recorded against a scheduler that was never reached
        assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_connect_timeout_must_be_finite_and_positive(tmp_path, capsys, value):
    rc, _, err, db = _run(tmp_path, capsys, "tcp://127.0.0.1:1", timeout=value)
    assert rc == 2 and "--connect-timeout" in err and len(err.strip().splitlines()) == 1, err
    assert not db.exists()


@pytest.mark.parametrize("address", ["tcp://127.0.0.1", "tcp://:80", "tcp://host:99999", "http://127.0.0.1:80"])
def test_malformed_scheduler_addresses_are_refused(tmp_path, capsys, address):
    rc, dt, err, _ = _run(tmp_path, capsys, address)
    assert rc == 2 and "--scheduler" in err and len(err.strip().splitlines()) == 1, err
