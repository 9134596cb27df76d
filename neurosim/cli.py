"""The `neurosim` command line: a thin shell over the library.

Subcommands live one per module in :mod:`neurosim.commands`; each registers itself with
:func:`command`, so adding a subcommand never touches this file. Input errors (``NeurosimError``,
argparse errors) print one line and exit 2; a bug prints one line and exits 1 (``NEUROSIM_DEBUG=1`` shows
its traceback); tables by default, JSON with ``--json``. Every numeric option is finite and bounded
(:func:`number`); ``--set KEY=VALUE`` has one parser (:func:`parse_sets`).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import json
import math
import os
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


#: The largest integer any option takes (2**53: exact as a float, and no size computed from it overflows int64
#: before the command's own limits refuse it).
MAX_INT = 2 ** 53


def number(kind: type = float, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           what: str | None = None) -> Callable[[str], float | int]:
    """An argparse ``type``: a finite ``kind`` (int or float) in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``).

    NaN, inf and integers beyond :data:`MAX_INT` are always refused; the message says what is allowed.
    """

    def parse(text: str):
        try:
            v = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"takes {what or _kind_name(kind, lo, hi, lo_open)}, got {text!r}") from None
        if (kind is float and not math.isfinite(v)) or abs(v) > MAX_INT or (lo is not None and (v <= lo if lo_open else v < lo)) \
                or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"takes {what or _kind_name(kind, lo, hi, lo_open)}, got {text}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def _kind_name(kind, lo, hi, lo_open) -> str:
    noun = "an integer" if kind is int else "a finite number"
    if lo is not None and hi is not None:
        return f"{noun} in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{noun} {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{noun} <= {hi:g}"
    return f"{noun} (at most {MAX_INT:.3g} in size)" if kind is int else noun


POSITIVE_INT = number(int, 1)
POSITIVE = number(float, 0, lo_open=True)
FRACTION = number(float, 0, 1, lo_open=True)


def parse_sets(pairs: list[str] | None, flag: str = "--set") -> dict:
    """The one KEY=VALUE parser: ``["hidden=256,128", "batchnorm=true", "act=gelu"]`` ->
    ``{"hidden": (256, 128), "batchnorm": True, "act": "gelu"}``. Values are Python literals (numbers,
    tuples, lists, quoted strings), ``true``/``false``/``none`` in any case, comma lists, or else a string;
    never evaluated as code (``ast.literal_eval``)."""
    out = {}
    for pair in pairs or []:
        key, eq, raw = pair.partition("=")
        if not eq or not key.strip():
            raise NeurosimError(f"{flag} takes KEY=VALUE, got {pair!r}")
        out[key.strip()] = _literal(raw.strip())
    return out


def _literal(raw: str):
    low = raw.lower()
    if low in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[low]
    try:
        v = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if "," in raw:
            return tuple(_literal(r.strip()) for r in raw.split(",") if r.strip())
        return raw
    if isinstance(v, float) and not math.isfinite(v):
        raise NeurosimError(f"--set values must be finite, got {raw!r}")
    return v


def _guard_numbers(parser: argparse.ArgumentParser) -> None:
    """Every plain ``type=int`` / ``type=float`` option takes a finite number >= 0 of bounded size (counts,
    sizes, seeds, rates, times: what the suite's options are); an option that needs another range (a
    negative offset, an upper bound) declares it with :func:`number` itself."""
    for action in parser._actions:
        if action.type is int or action.type is float:
            action.type = number(action.type, 0)


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
        for sp in [p] + [a for act in p._actions if isinstance(act, argparse._SubParsersAction)
                         for a in act.choices.values()]:
            _guard_numbers(sp)
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2, its one line already printed)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
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
    except Exception as e:  # a bug, not bad input: one line (and exit 1) unless NEUROSIM_DEBUG asks for the traceback
        if os.environ.get("NEUROSIM_DEBUG"):
            raise
        print(f"neurosim {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
              "(please report it; NEUROSIM_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


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
