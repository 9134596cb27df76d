"""The `neurosim` command line: a thin shell over the library.

Subcommands live one per module in :mod:`neurosim.commands`; each registers itself with
:func:`command`, so adding a subcommand never touches this file. Input errors (``NeurosimError``,
argparse errors) print one line and exit 2; tables by default, JSON with ``--json``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from typing import Callable

from neurosim.errors import NeurosimError

_COMMANDS: dict[str, tuple[str, Callable]] = {}


def command(name: str, help: str):
    """Register ``configure(parser) -> handler``; ``handler(args) -> int | None`` runs the command."""

    def deco(configure: Callable):
        if name in _COMMANDS:
            raise RuntimeError(f"CLI command {name!r} registered twice")
        _COMMANDS[name] = (help, configure)
        return configure

    return deco


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    import neurosim.commands as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    parser = _Parser(prog="neurosim", description="neuromorphic and hardware-simulation research suite")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in sorted(_COMMANDS):
        help_, configure = _COMMANDS[name]
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_handler=configure(p))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (0, 1 for failed cells, 2 for bad input, 130 Ctrl-C,
    143 SIGTERM). As the console script (``argv`` None, main thread) it also installs the signal
    handlers of :func:`neurosim.proc.cli_signals`: a second Ctrl-C exits at once."""
    import threading

    from neurosim.proc import Terminated, cli_signals

    if argv is None and threading.current_thread() is threading.main_thread():
        cli_signals()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._handler(args) or 0)
    except NeurosimError as e:
        print(f"neurosim {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"neurosim {args.command}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"neurosim {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(e: BaseException) -> str:
    """An error message on one line (a message with newlines keeps its first line and says so)."""
    msg = str(e).strip() or type(e).__name__
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    return lines[0] + (" (...)" if len(lines) > 1 else "")


def emit(report, as_json: bool, *, title: str | None = None, float_format: str = "{:,.4g}") -> None:
    """Print a report: a table (its DataFrame) by default, or its JSON with ``--json``.

    ``report`` is anything with ``to_dataframe()`` and ``to_dict()``, or a plain DataFrame.
    """
    import pandas as pd

    if as_json:
        obj = report.to_dict() if hasattr(report, "to_dict") and not isinstance(report, pd.DataFrame) \
            else report.to_dict(orient="records")
        print(json.dumps(obj, indent=2, default=_json_default))
        return
    df = report if isinstance(report, pd.DataFrame) else report.to_dataframe()
    if title:
        print(title)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        print(df.to_string(index=False, float_format=lambda v: float_format.format(v)))


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


if __name__ == "__main__":
    # `python -m neurosim.cli` runs this file as __main__, a second copy of the module: the commands
    # register with neurosim.cli, so run that one's main.
    from neurosim.cli import main as _main

    sys.exit(_main())
