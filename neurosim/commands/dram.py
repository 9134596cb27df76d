"""`neurosim dram --list` and `neurosim dram --preset hbm2 --trace FILE [--format dramsim3|ramulator] [--json]`:
a request trace through the cycle-level DRAM/HBM model (:mod:`hw.memory`)."""
from __future__ import annotations

from neurosim.cli import command, emit
from neurosim.errors import NeurosimError

_TABLE = ["channel", "requests", "reads", "writes", "completion_cycles", "bandwidth_gbs", "mean_read_latency_cycles",
          "p99_read_latency_cycles", "read_row_hit_rate", "row_hits", "row_misses", "row_conflicts", "energy_j"]
_LIST = ["name", "protocol", "tck_ns", "channels", "ranks", "bankgroups", "banks_per_group", "rows", "bus_width",
         "peak_bandwidth_gbs", "capacity_gib"]


@command("dram", help="cycle-level DRAM/HBM timing of a request trace (DRAMsim3 / Ramulator trace formats)")
def configure(p):
    p.add_argument("--list", action="store_true", help="list the memory presets and exit")
    p.add_argument("--preset", help="memory preset (see --list), e.g. ddr4_3200, hbm2, hbm3")
    p.add_argument("--trace", help="request trace file")
    p.add_argument("--format", choices=["dramsim3", "ramulator"], default=None,
                   help="trace format (default: guessed from the first request line)")
    p.add_argument("--page-policy", choices=["open", "closed"], default=None, help="row-buffer policy (default: the preset's)")
    p.add_argument("--mapping", default=None, help="address mapping, DRAMsim3's 12 letters, e.g. rochrababgco")
    p.add_argument("--bank-xor", action="store_true", help="XOR bank/bank-group bits with the low row bits")
    p.add_argument("--json", action="store_true",
                   help="JSON: completion_cycles, mean_read_latency_cycles (tCK), bandwidth_gbs, read_row_hit_rate, "
                        "per channel and the configuration")

    def run(args):
        import pandas as pd

        from hw import memory

        if args.list:
            rows = [{k: memory.get(n).to_dict()[k] for k in _LIST} for n in memory.names()]
            if args.json:
                emit(pd.DataFrame(rows), True)
            else:
                emit(pd.DataFrame(rows), False)
            return 0
        if not args.preset or not args.trace:
            raise NeurosimError("dram needs --preset NAME and --trace FILE (or --list)")
        changes = {}
        if args.page_policy:
            changes["page_policy"] = args.page_policy
        if args.mapping:
            changes["address_mapping"] = args.mapping
        if args.bank_xor:
            changes["bank_xor"] = True
        r = memory.simulate(args.preset, args.trace, fmt=args.format, **changes)
        if args.json:
            emit(r, True)
            return 0
        df = pd.DataFrame(r.rows)
        tot = {"channel": "all", **r.totals}
        df = pd.concat([df, pd.DataFrame([tot])], ignore_index=True)
        emit(df[[c for c in _TABLE if c in df.columns]], False)
        T = r.totals
        print(f"  {r.device}: {T['requests']} requests in {T['completion_cycles']} tCK "
              f"({T['completion_ns']:.6g} ns), {T['bandwidth_gbs']:.4g} GB/s of {T['peak_bandwidth_gbs']:.4g} peak")
        for n in r.notes:
            print(f"  note: {n}")
        return 0

    return run
