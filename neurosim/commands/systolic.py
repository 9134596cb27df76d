"""`neurosim systolic`: SCALE-Sim-compatible (2.0.2 and 3.0.0) systolic-array simulation of topology files or zoo models.

    neurosim systolic -c scale.cfg -t alexnet.csv [-i conv|gemm] -p runs      # SCALE-Sim's three reports
    neurosim systolic -c v3.cfg -t sparse.csv -p runs [--scalesim-version 3]  # 3.0.0's, SPARSE_REPORT.csv too
    neurosim systolic --model resnet18 --array 128x128 --dataflow ws [--batch 4] [--json]
    neurosim systolic -c cfg -t topo --bandwidth 64 --dram hbm2 [--clock-mhz 1000]   # stalls from a DRAM model
"""
from __future__ import annotations

from neurosim.cli import POSITIVE, POSITIVE_INT, command, emit
from neurosim.errors import NeurosimError


DEFAULT_MAX_TRACE_GB = 10.0


def _progress_bar(n_layers: int, quiet: bool):
    """A per-layer tqdm bar on stderr when it is a terminal; ``(callback, close)``."""
    import sys

    from tqdm import tqdm

    bar = tqdm(total=n_layers, unit="layer", file=sys.stderr, disable=quiet or not sys.stderr.isatty(),
               dynamic_ncols=True, leave=False)

    def cb(i, layer, r):
        bar.set_postfix_str(layer.name[:24], refresh=False)
        bar.update(1)

    return cb, bar.close


@command("systolic", help="systolic-array simulation (os/ws/is), SCALE-Sim 2.0.2/3.0.0 configs, topologies and reports")
def configure(p):
    p.add_argument("-c", "--config", metavar="CFG", help="SCALE-Sim v2 .cfg (array, SRAMs, dataflow, bandwidth)")
    p.add_argument("-t", "--topology", metavar="TOPO", help="SCALE-Sim topology CSV")
    p.add_argument("-i", "--input-type", choices=["conv", "gemm"], default="conv",
                   help="topology rows are convolutions (default) or GEMMs Layer,M,N,K")
    p.add_argument("-p", "--outdir", metavar="OUTDIR", help="write the three reports to OUTDIR/<run_name>/")
    p.add_argument("--model", help="zoo model name instead of a topology (lowered through hw.workload)")
    p.add_argument("--array", help="array RxC, e.g. 128x128 (overrides the config; default 32x32 for --model)")
    p.add_argument("--dataflow", choices=["os", "ws", "is"], help="dataflow (overrides the config)")
    p.add_argument("--batch", type=POSITIVE_INT, default=1, help="batch size for --model (default 1)")
    p.add_argument("--seq", type=POSITIVE_INT, default=None, help="sequence length for token models")
    p.add_argument("--bandwidth", type=POSITIVE_INT, default=None,
                   help="USER bandwidth mode with this many words/cycle (overrides the config)")
    p.add_argument("--scalesim-version", type=int, choices=[2, 3], default=None,
                   help="reproduce SCALE-Sim 2.0.2's or 3.0.0's reports and stall accounting (default: what the "
                        "config's contents imply: 3.0.0's [layout]/[sparsity] sections and keys mean 3)")
    p.add_argument("--os-timing", choices=["scalesim", "paper"], default=None,
                   help="output-stationary fold time: SCALE-Sim's code (R+C+T-2, default) or its paper (2R+C+T-2)")
    p.add_argument("--energy", default=None, metavar="SOURCE",
                   help="add per-access energy: 'default' (Horowitz 45 nm) or a catalog device with e_*_pj fields")
    p.add_argument("--trace-dir", default=None, help="stream SRAM traces (SCALE-Sim format) into this folder")
    p.add_argument("--max-trace-gb", type=POSITIVE, default=DEFAULT_MAX_TRACE_GB, metavar="GB",
                   help=f"refuse --trace-dir runs whose traces are estimated above this size "
                        f"(GiB; default {DEFAULT_MAX_TRACE_GB:g})")
    p.add_argument("--dram", default=None, metavar="PRESET",
                   help="USER bandwidth mode with the prefetch latencies of a simulated memory (hw.memory preset: "
                        "ddr4_3200, lpddr5, hbm2, hbm2e, hbm3), reported beside the fixed-bandwidth cycles")
    p.add_argument("--clock-mhz", type=POSITIVE, default=None,
                   help="array clock for --dram (MHz, default 1000): converts array cycles to the DRAM's tCK")
    p.add_argument("--no-progress", action="store_true", help="no per-layer progress bar (shown on a terminal)")
    p.add_argument("--json", action="store_true", help="print one JSON object (config, totals, layers)")

    def run(args):
        import time

        from hw.systolic import SystolicConfig, read_config, read_topology, simulate
        from hw.systolic.workload import parse_array, simulate_model

        if args.batch < 1:
            raise NeurosimError(f"--batch must be a positive integer, got {args.batch}")
        if args.bandwidth is not None and args.bandwidth < 1:
            raise NeurosimError(f"--bandwidth must be a positive integer, got {args.bandwidth}")
        import math
        from pathlib import Path

        if not math.isfinite(args.max_trace_gb) or args.max_trace_gb <= 0:
            raise NeurosimError(f"--max-trace-gb must be a positive number, got {args.max_trace_gb}")
        if args.max_trace_gb != DEFAULT_MAX_TRACE_GB and args.trace_dir is None:
            raise NeurosimError("--max-trace-gb applies only with --trace-dir")
        if args.clock_mhz is not None and args.dram is None:
            raise NeurosimError("--clock-mhz applies only with --dram")
        if args.clock_mhz is not None and not (math.isfinite(args.clock_mhz) and 0 < args.clock_mhz <= 1e6):
            raise NeurosimError(f"--clock-mhz must be a positive number of MHz up to 1e6, got {args.clock_mhz}")
        if args.dram is not None:
            from hw import memory as _mem

            _mem.get(args.dram)   # an unknown preset is one line before any work
        if args.seq is not None and args.model is None:
            raise NeurosimError("--seq applies only with --model")
        for flag, val in (("--trace-dir", args.trace_dir), ("-p/--outdir", args.outdir)):
            if val is not None and Path(val).exists() and not Path(val).is_dir():
                raise NeurosimError(f"{flag} {val} exists and is not a folder")
        if (args.model is None) == (args.topology is None):
            raise NeurosimError("give either -t TOPOLOGY (with -c CONFIG) or --model NAME")
        changes = {}
        if args.array:
            r, c = parse_array(args.array)
            if r < 1 or c < 1:
                raise NeurosimError(f"--array must be positive, got {args.array!r}")
            changes.update(array_rows=r, array_cols=c)
        if args.dataflow:
            changes["dataflow"] = args.dataflow
        if args.bandwidth is not None:
            changes.update(bandwidth_mode="USER", bandwidth_words=args.bandwidth)
        if args.os_timing:
            changes["os_timing"] = args.os_timing
        t0 = time.perf_counter()
        if args.model:
            cfg = (read_config(args.config, scalesim_version=args.scalesim_version) if args.config
                   else SystolicConfig(run_name=args.model, scalesim_version=args.scalesim_version or 2))
            if not args.config:
                changes.setdefault("dataflow", "ws")
            from hw import workload as wl

            from models.registry import check_seq

            check_seq(args.model, args.seq)
            w = wl.profile(args.model, batch=args.batch, seq=args.seq)
            from hw.systolic.workload import layers_from_workload

            cb, close = _progress_bar(len(layers_from_workload(w)[0]), args.no_progress or args.json)
            try:
                res = simulate_model(w, array=None, dataflow=None, batch=args.batch,
                                     config=cfg.with_(**changes), energy=args.energy, trace_dir=args.trace_dir,
                                     progress=cb, max_trace_bytes=args.max_trace_gb * 2 ** 30)
            finally:
                close()
            res.model = args.model
        else:
            if not args.config:
                raise NeurosimError("-t TOPOLOGY needs -c CONFIG (a SCALE-Sim .cfg)")
            cfg = read_config(args.config, scalesim_version=args.scalesim_version, **changes)
            layers = read_topology(args.topology, args.input_type)
            if args.trace_dir:
                import sys

                from hw.systolic.simulator import check_resources, fmt_bytes, trace_bytes

                check_resources(cfg, layers, traces=True, max_trace_bytes=args.max_trace_gb * 2 ** 30)
                print(f"writing about {fmt_bytes(trace_bytes(cfg, layers))} of SRAM traces to {args.trace_dir}",
                      file=sys.stderr)
            cb, close = _progress_bar(len(layers), args.no_progress or args.json)
            import warnings

            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    res = simulate(cfg, layers, energy=args.energy, trace_dir=args.trace_dir, progress=cb,
                                   max_trace_bytes=args.max_trace_gb * 2 ** 30)
            finally:
                close()
            import sys

            for w in caught:  # one line each (3.0.0's impossible utilisations, ignored sparsity ratios)
                print(f"warning: {w.message}", file=sys.stderr)
        dram = None
        if args.dram is not None:
            from hw.systolic.dram import DEFAULT_CLOCK_MHZ, simulate_dram

            dram = simulate_dram(res.config, res.layers, args.dram,
                                 clock_mhz=args.clock_mhz if args.clock_mhz is not None else DEFAULT_CLOCK_MHZ)
        wall = time.perf_counter() - t0
        where = res.write(args.outdir) if args.outdir else None
        if args.json:
            d = res.to_dict()
            d["reports_dir"] = str(where) if where else None
            if dram is not None:
                d["dram"] = dram.to_dict()
            emit(_Dict(d), True)
            return 0
        c = res.config
        emit(res.to_dataframe(), False,
             title=f"{c.run_name}: {c.array_rows}x{c.array_cols} {c.dataflow}, {c.bandwidth_mode} bandwidth"
                   + (f" {c.bandwidth_words} words/cycle" if c.user_bandwidth else ""))
        t = res.totals()
        print(f"total: {t['cycles']:,} cycles ({t['stall_cycles']:,} stall), {t['macs']:,} MACs, "
              f"utilisation {t['util_pct']:.2f}%, DRAM {t['dram_reads']:,} reads / {t['dram_writes']:,} writes"
              + (f", energy {t['energy_pj']['total'] * 1e-6:,.3f} uJ" if "energy_pj" in t else "")
              + f"  [{wall:.2f} s]")
        if dram is not None:
            emit(dram.to_dataframe(), False, title=f"DRAM model {dram.memory} at {dram.clock_mhz:g} MHz array clock: "
                 "fixed-bandwidth (SCALE-Sim) vs simulated-memory cycles; DRAM columns in the DRAM's tCK")
            dt = dram.totals()
            print(f"with {dram.memory}: {dt['dram_cycles']:,} cycles ({dt['dram_stall_cycles']:,} stall) against "
                  f"{dt['fixed_cycles']:,} ({dt['fixed_stall_cycles']:,} stall) at the fixed bandwidth; "
                  f"first fills {dt['prefill_cycles']:,} cycles before cycle 0")
        if where:
            print(f"reports: {where}")
        return 0

    return run


class _Dict:
    def __init__(self, d):
        self.d = d

    def to_dict(self):
        return self.d
