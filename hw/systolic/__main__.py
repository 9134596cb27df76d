"""``python -m hw.systolic``: SCALE-Sim's own command line (``python -m scalesim.scale``), answered by hw.systolic.

    python -m hw.systolic -c scale.cfg -t alexnet.csv [-i conv|gemm] [-p results/] [-l layout.csv]
                          [-s N|Y] [--scalesim-version 2|3]

The same flags as SCALE-Sim 2.0.2 / 3.0.0 (``-l`` is 3.0.0's layout file: it must exist when given, and is
not read, because custom layouts are refused in the config), the same reports in ``<-p>/<run_name>/``. Unlike
SCALE-Sim, SRAM traces are written only with ``-s Y`` (into ``<-p>/<run_name>/layer<i>/``; 3.0.0 always
writes its SRAM and DRAM traces, whatever ``-s`` says). The version of the reports follows the config's
contents unless ``--scalesim-version`` says otherwise.

This entry point imports no pandas and keeps numba from importing SciPy and PyYAML (see :func:`_lean_numba`):
start-up is most of what a small run costs. Bad input: one line on
stderr, exit code 2. ``neurosim systolic`` offers the same and more (zoo models, energy, JSON, tables).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage first)
        print(f"python -m hw.systolic: error: {message}", file=sys.stderr)
        sys.exit(2)


def _lean_numba():
    """Import numba (and the module of its CPU target that probes for a BLAS) with SciPy and PyYAML hidden:
    numba only checks SciPy's version, wants its BLAS for ``np.dot`` (no kernel here calls it) and reads an
    optional ``.numba_config.yaml``; together ~0.2 s of start-up. Nothing stays hidden afterwards."""
    hidden = [k for k in ("scipy", "scipy.linalg.cython_blas", "yaml") if k not in sys.modules]
    for k in hidden:
        sys.modules[k] = None  # `import k` raises ImportError while the entry is None
    try:
        import numba  # noqa: F401
        import numba.np.arraymath  # noqa: F401
    finally:
        for k in hidden:
            if k in sys.modules and sys.modules[k] is None:
                del sys.modules[k]


def main(argv=None) -> int:
    ap = _Parser(prog="python -m hw.systolic", description=__doc__.split("\n\n")[0])
    ap.add_argument("-c", metavar="CONFIG", required=True, help="SCALE-Sim .cfg (2.0.2 or 3.0.0)")
    ap.add_argument("-t", metavar="TOPOLOGY", required=True, help="topology CSV")
    ap.add_argument("-i", metavar="conv|gemm", default="conv", choices=["conv", "gemm"], help="topology rows")
    ap.add_argument("-p", metavar="LOGDIR", default="./results/", help="reports go to LOGDIR/<run_name>/")
    ap.add_argument("-l", metavar="LAYOUT", default=None, help="SCALE-Sim 3.0.0's layout file (checked, not read)")
    ap.add_argument("-s", metavar="Y|N", default="N", choices=["Y", "N"], help="write SRAM traces (default N)")
    ap.add_argument("--scalesim-version", type=int, choices=[2, 3], default=None,
                    help="2.0.2's or 3.0.0's reports (default: from the config's contents)")
    args = ap.parse_args(argv)
    from neurosim.errors import NeurosimError

    t0 = time.perf_counter()
    try:
        if args.l is not None and not Path(args.l).is_file():
            raise NeurosimError(f"{args.l}: layout file not found")
        out = Path(args.p)
        if out.exists() and not out.is_dir():
            raise NeurosimError(f"-p {args.p} exists and is not a folder")
        from hw.systolic.config import read_config
        from hw.systolic.topology import read_topology

        cfg = read_config(args.c, scalesim_version=args.scalesim_version)
        layers = read_topology(args.t, args.i)
        _lean_numba()
        from hw.systolic.simulator import simulate

        trace_dir = out / cfg.run_name if args.s == "Y" else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = simulate(cfg, layers, trace_dir=trace_dir, max_trace_bytes=10 * 2 ** 30)
        where = res.write(out)
    except NeurosimError as e:
        print(f"python -m hw.systolic: error: {e}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    cycles = sum(r.total_cycles for r in res.results)
    stalls = sum(r.stall_cycles for r in res.results)
    print(f"{cfg.run_name}: {len(res.results)} layers, {cycles:,} cycles ({stalls:,} stall), SCALE-Sim "
          f"{'3.0.0' if cfg.scalesim_version == 3 else '2.0.2'} reports in {where}  [{time.perf_counter() - t0:.2f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
