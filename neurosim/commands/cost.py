"""`neurosim cost MODEL --hw a100_80gb,h100_sxm,tpu_v4,loihi2`: latency, energy and carbon on catalog devices."""
from __future__ import annotations

from neurosim.cli import FRACTION, POSITIVE, POSITIVE_INT, command, emit, number, parse_sets
from neurosim.errors import NeurosimError

#: Columns of the comparison table (JSON carries everything).
_INFER_COLS = ["device", "family", "precision", "batch", "latency_s", "bound_s", "throughput_samples_s",
               "energy_j", "carbon_kg", "chips"]
_TRAIN_COLS = ["device", "devices", "precision", "flops", "flops_method", "time_days", "device_hours",
               "energy_mwh", "carbon_t"]


@command("cost", help="latency, energy and carbon of a zoo model on catalog devices (inference or training)")
def configure(p):
    p.add_argument("model", help="zoo model name (see `neurosim models`)")
    p.add_argument("--hw", required=True, help="comma-separated device names (see `neurosim hw list`)")
    p.add_argument("--batch", type=POSITIVE_INT, default=1, help="batch size (default 1)")
    p.add_argument("--seq", type=POSITIVE_INT, default=None, help="sequence length for token/sequence models")
    p.add_argument("--precision", default=None, help="fp32, tf32, bf16, fp16, fp8, int8 (default: fp32 inference, "
                                                      "bf16 training where the device has it)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model option, e.g. num_classes=10")
    g = p.add_argument_group("roofline (gpu/cpu/tpu)")
    g.add_argument("--efficiency", type=FRACTION, default=None, help="compute efficiency of tensor ops (default 0.7)")
    g.add_argument("--memory-efficiency", type=FRACTION, default=None, help="fraction of peak bandwidth (default 0.8)")
    g.add_argument("--memory", choices=["roofline", "simulated"], default=None,
                   help="memory term: bytes / (bandwidth x efficiency) (roofline, default) or each op's access "
                        "stream through the DRAM/HBM model of the device's memory (simulated; hw.memory)")
    g.add_argument("--sparse", action="store_true", help="2:4 structured sparsity tensor peak (A100 and later)")
    g.add_argument("--power-w", type=POSITIVE, default=None, help="busy power per device in W (default: measured or TDP)")
    n = p.add_argument_group("neuromorphic")
    n.add_argument("--firing-rate", type=number(float, 0, 1), default=None, help="spikes per neuron per step (default 0.1)")
    n.add_argument("--timesteps", type=POSITIVE_INT, default=None, help="SNN timesteps (default 32)")
    t = p.add_argument_group("training (--train)")
    t.add_argument("--train", action="store_true", help="cost a training run instead of one forward pass")
    t.add_argument("--tokens", type=POSITIVE, default=None, help="training tokens (or samples), e.g. 300e9")
    t.add_argument("--devices", type=POSITIVE_INT, default=None, help="number of devices (data parallel, default 1)")
    t.add_argument("--mfu", type=FRACTION, default=None, help="model FLOPs utilisation (default 0.4)")
    t.add_argument("--scaling-efficiency", type=FRACTION, default=None, help="data-parallel efficiency (default 0.9)")
    t.add_argument("--six-nd", action="store_true", help="FLOPs = 6 x params x tokens instead of 3 x traced forward")
    c = p.add_argument_group("carbon")
    c.add_argument("--region", default=None, help="grid region (default us_average; see hw/catalog/regions.toml)")
    c.add_argument("--pue", type=number(float, 1), default=None, help="datacenter PUE (default 1.58)")
    p.add_argument("--per-op", action="store_true", help="print each device's per-op table too")
    p.add_argument("--json", action="store_true", help="JSON: every report with totals, assumptions, notes, ops")

    def run(args):
        import hw
        from hw import carbon
        from hw.report import CostComparison
        from hw.workload import profile

        devices = [d.strip() for d in args.hw.split(",") if d.strip()]
        if not devices:
            raise NeurosimError("--hw needs at least one device name")
        specs = [hw.get(d) for d in devices]  # unknown names fail here, before any profiling
        _refuse_flags_that_do_not_apply(args, specs)
        if args.region is not None:
            carbon.intensity(args.region)
        from models.registry import check_seq

        check_seq(args.model, args.seq)
        w = profile(args.model, batch=args.batch, seq=args.seq, dtype=None, **parse_sets(args.set))
        reports = []
        for spec in specs:
            if args.train:
                reports.append(_train(args, spec, w))
            else:
                reports.append(hw.cost(w, spec.key, pue=args.pue, region=args.region, **_options(args, spec)))
        comp = CostComparison(reports)
        if args.json:
            emit(comp, True)
            return 0
        df = comp.to_dataframe()
        cols = [c for c in (_TRAIN_COLS if args.train else _INFER_COLS) if c in df.columns]
        emit(df[cols], False, title=f"{args.model} ({w.params:,} params, {w.flops:,} forward FLOPs at batch {w.batch})")
        for r in reports:
            for note in r.notes:
                print(f"  note [{r.device}]: {note}")
            if args.per_op and r.rows:
                emit(r.to_dataframe(), False, title=f"\n{r.device}: per op")
        a = reports[0].assumptions
        print(f"  carbon: PUE {a['pue']:g}, grid {a['grid_kg_per_kwh']:g} kg CO2e/kWh ({a['region']})")
        return 0

    return run


#: Flags and what they need: training flags need --train; roofline flags a GPU/CPU/TPU in --hw; neuromorphic
#: flags a neuromorphic device. A flag that applies to nothing is refused (it would be silently ignored).
_TRAIN_FLAGS = ("tokens", "devices", "mfu", "scaling_efficiency", "six_nd")
_ROOFLINE_FLAGS = ("precision", "efficiency", "memory_efficiency", "sparse", "power_w", "memory")
_NEURO_FLAGS = ("firing_rate", "timesteps")


def _given(args, names) -> list[str]:
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n) not in (None, False)]


def _refuse_flags_that_do_not_apply(args, specs) -> None:
    neuro = [s.key for s in specs if s.family == "neuromorphic"]
    other = [s.key for s in specs if s.family != "neuromorphic"]
    if not args.train and _given(args, _TRAIN_FLAGS):
        raise NeurosimError(f"{', '.join(_given(args, _TRAIN_FLAGS))} apply only with --train")
    if not other and _given(args, _ROOFLINE_FLAGS):
        raise NeurosimError(f"{', '.join(_given(args, _ROOFLINE_FLAGS))} do not apply to neuromorphic devices "
                            f"({', '.join(neuro)}); their knobs are --firing-rate and --timesteps")
    if not neuro and _given(args, _NEURO_FLAGS):
        raise NeurosimError(f"{', '.join(_given(args, _NEURO_FLAGS))} apply only to neuromorphic devices "
                            f"(none in --hw {','.join(other)})")
    if args.train and args.memory is not None:
        raise NeurosimError("--memory applies to a forward pass; --train costs from MFU (drop one of them)")
    if args.train and _given(args, _NEURO_FLAGS):
        raise NeurosimError(f"{', '.join(_given(args, _NEURO_FLAGS))} do not apply to --train")


def _options(args, spec) -> dict:
    opts = {}
    if spec.family == "neuromorphic":
        if args.firing_rate is not None:
            opts["firing_rate"] = args.firing_rate
        if args.timesteps is not None:
            opts["timesteps"] = args.timesteps
        return opts
    if args.precision:
        opts["precision"] = args.precision
    for k, v in (("compute_efficiency", args.efficiency), ("memory_efficiency", args.memory_efficiency),
                 ("power_w", args.power_w)):
        if v is not None:
            opts[k] = v
    if args.sparse:
        opts["sparse"] = True
    if args.memory is not None:
        if args.memory == "simulated" and args.memory_efficiency is not None:
            raise NeurosimError("--memory-efficiency applies to the roofline memory term, not to --memory simulated")
        opts["memory"] = args.memory
    return opts


def _train(args, spec, w):
    from hw.training import train

    if args.tokens is None:
        raise NeurosimError("--train needs --tokens N (training tokens, or samples for non-token models)")
    work = {"params": w.params, "tokens": args.tokens} if args.six_nd else {"workload": w, "tokens": args.tokens}
    return train(spec.key, devices=args.devices or 1, mfu=args.mfu, scaling_efficiency=args.scaling_efficiency,
                 precision=args.precision, power_w=args.power_w, pue=args.pue, region=args.region,
                 model=args.model, **work)
