"""Errors that mean "the input was wrong", as opposed to a bug.

Library code raises these at its boundaries with a message that names what was wrong and what is
allowed. The CLI turns them into one line on stderr and exit code 2; anything else is a bug (one line and
exit 1 from the CLI, its traceback with ``NEUROSIM_DEBUG=1``).
"""
from __future__ import annotations

import os
from pathlib import Path


class NeurosimError(ValueError):
    """Bad input: an unknown name, an impossible shape, a malformed file."""


class UnknownNameError(NeurosimError, KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def check_writable(path: str | os.PathLike, what: str = "output", *, directory: bool = False) -> Path:
    """Refuse, before any work starts, an output that cannot be written: ``path`` (a file, or with
    ``directory`` a folder) must exist writable or be creatable under its nearest existing folder. Writes
    and creates nothing. Returns the path."""
    p = Path(path)
    if not directory and p.is_dir():
        raise NeurosimError(f"{what} {p} is a directory; give a file path")
    if directory and p.exists() and not p.is_dir():
        raise NeurosimError(f"{what} {p} is a file; give a folder")
    if p.exists():
        ok = os.access(p, os.W_OK | (os.X_OK if p.is_dir() else 0))
    else:
        anc = p.absolute().parent
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise NeurosimError(f"{what} {p} cannot be created: {anc} is a file, not a folder")
        ok = os.access(anc, os.W_OK | os.X_OK)
    if not ok:
        raise NeurosimError(f"{what} {p} is not writable")
    return p
