"""Helpers for the reliability tests: run the CLI in this process and check a refusal."""
from __future__ import annotations

import os
from pathlib import Path

from neurosim.cli import main


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in Path(root).rglob("*")} if Path(root).exists() else set()


def refused(capsys, *argv, cwd: Path | None = None, written_under: Path | None = None, match: str | None = None):
    """Run ``neurosim *argv`` in-process and assert: exit 2, exactly one line on stderr naming the command,
    no traceback, and (``written_under``) no file created there. Returns the error line."""
    before = files_under(written_under) if written_under is not None else None
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        capsys.readouterr()
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse usage errors exit 2 through parser.exit
        rc = e.code
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc} for {argv}; stderr: {err[-1500:]}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr for {argv}: {err[-1500:]}"
    assert "Traceback" not in err and lines[0].startswith("neurosim"), err
    if match is not None:
        assert match in lines[0], lines[0]
    if before is not None:
        assert files_under(written_under) == before, f"{argv} wrote {files_under(written_under) - before}"
    return lines[0]
