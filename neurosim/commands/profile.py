"""`neurosim profile NAME`: per-layer parameters, MACs, FLOPs and bytes of a zoo model."""
from __future__ import annotations

from neurosim.cli import POSITIVE_INT, command, emit, parse_sets
from neurosim.errors import NeurosimError


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"3x224x224"`` or ``"3,224,224"`` -> ``(3, 224, 224)`` (per sample, without the batch)."""
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.replace(",", "x").split("x") if d)
    except ValueError:
        raise NeurosimError(f"--input-shape {text!r} must be integers like 3x224x224") from None
    if not dims or any(d < 1 for d in dims):
        raise NeurosimError(f"--input-shape {text!r} must be positive integers like 3x224x224")
    return dims


@command("profile", help="parameters, MACs, FLOPs and bytes moved, per layer, of a zoo model (meta device)")
def configure(p):
    p.add_argument("model", help="zoo model name (see `neurosim models`)")
    p.add_argument("--batch", type=POSITIVE_INT, default=1, help="batch size (default 1)")
    p.add_argument("--seq", type=POSITIVE_INT, default=None, help="sequence length for token/sequence models")
    p.add_argument("--input-shape", default=None, help="per-sample input shape, e.g. 3x224x224 (default: the model's own)")
    p.add_argument("--dtype", default=None, help="fp32 (default), bf16, fp16, fp8, int8: bytes counted at this width")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model option, e.g. num_classes=10")
    p.add_argument("--by-module", action="store_true", help="one row per module instead of per op")
    p.add_argument("--json", action="store_true", help="one JSON object: totals and `layers`")

    def run(args):
        from hw.workload import profile

        from models.registry import check_seq

        check_seq(args.model, args.seq)
        w = profile(args.model, batch=args.batch, seq=args.seq, dtype=args.dtype,
                    input_shape=parse_shape(args.input_shape), **parse_sets(args.set))
        if args.json:
            emit(w, True)
            return 0
        emit(w.by_module() if args.by_module else w.to_dataframe(), False)
        t = w.totals()
        print(f"\n{t['model']}: params {t['params']:,}  MACs {t['macs']:,} ({t['macs'] / 1e9:.3f} G)  "
              f"FLOPs {t['flops']:,}  param bytes {t['param_bytes']:,}  activation bytes {t['activation_bytes']:,}  "
              f"({t['ops']} ops, batch {t['batch']}, {t['dtype']})")
        return 0

    return run
