"""Errors that mean "the input was wrong", as opposed to a bug.

Library code raises these at its boundaries with a message that names what was wrong and what is
allowed. The CLI turns them into one line on stderr and exit code 2; anything else is a bug (one line and
exit 1 from the CLI, its traceback with ``NEUROSIM_DEBUG=1``).
"""
from __future__ import annotations

import os
import tempfile
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
    ``directory`` a folder) must be creatable or writable. Creates missing parent folders (a run would);
    writes nothing else. Returns the path."""
    p = Path(path)
    folder = p if directory else p.parent
    if not directory and p.is_dir():
        raise NeurosimError(f"{what} {p} is a directory; give a file path")
    if directory and p.exists() and not p.is_dir():
        raise NeurosimError(f"{what} {p} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".neurosim-write-check-"):
            pass
    except OSError as e:
        raise NeurosimError(f"{what} {p} is not writable: {e.strerror or e}") from None
    if not directory and p.exists() and not os.access(p, os.W_OK):
        raise NeurosimError(f"{what} {p} is not writable")
    return p
