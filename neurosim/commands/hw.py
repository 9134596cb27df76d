"""`neurosim hw list|show`: the hardware catalog, every number with its source."""
from __future__ import annotations

from neurosim.cli import command, emit


def _headline(spec) -> dict:
    """A few comparable numbers per device for the list table."""
    row = {"name": spec.key, "family": spec.family, "device": spec.name, "year": spec.year}
    if spec.family == "neuromorphic":
        row.update({"peak_tflops": None, "precision": f"{spec.weight_bits}-bit w" if spec.weight_bits else "",
                    "memory_gb": None, "mem_bw_gb_s": None, "power_w": spec.chip_power_w,
                    "cores": spec.cores, "e_synop_pj": spec.e_synop_pj})
    else:
        best = next((p for p in ("bf16", "fp16", "fp32") if p in spec.peak_tflops), next(iter(spec.peak_tflops)))
        row.update({"peak_tflops": spec.peak_tflops[best], "precision": best, "memory_gb": round(spec.memory_gb, 1),
                    "mem_bw_gb_s": spec.mem_bw_gb_s, "power_w": spec.tdp_w,
                    "cores": getattr(spec, "cores", None), "e_synop_pj": None})
    return row


def _fields(spec) -> list[dict]:
    """``show``: one row per field with its value and source."""
    rows = []
    for k, v in spec.to_dict().items():
        if k in ("sources",) or v is None or v == {}:
            continue
        if isinstance(v, dict):
            for p, x in v.items():
                rows.append({"field": f"{k}.{p}", "value": x, "source": spec.source(k)})
        else:
            rows.append({"field": k, "value": v, "source": spec.source(k)})
    return rows


@command("hw", help="the hardware catalog: `hw list`, `hw show NAME` (every number with its source)")
def configure(p):
    sub = p.add_subparsers(dest="hw_cmd", metavar="{list,show}", required=True, parser_class=type(p))
    pl = sub.add_parser("list", help="all devices, one row each")
    pl.add_argument("--family", default=None, help="gpu, tpu, cpu or neuromorphic")
    pl.add_argument("--json", action="store_true", help="JSON: every field of every device")
    ps = sub.add_parser("show", help="one device: every field, its value and its source")
    ps.add_argument("name", help="device name, e.g. a100_80gb (see `neurosim hw list`)")
    ps.add_argument("--json", action="store_true", help="JSON: the device's fields and sources")

    def run(args):
        import pandas as pd

        import hw

        if args.hw_cmd == "list":
            names = hw.names(args.family)
            if args.json:
                emit(pd.DataFrame([hw.get(n).to_dict() for n in names]), True)
            else:
                emit(pd.DataFrame([_headline(hw.get(n)) for n in names]), False)
            return 0
        spec = hw.get(args.name)
        if args.json:
            import json

            print(json.dumps(spec.to_dict(), indent=2))
        else:
            emit(pd.DataFrame(_fields(spec)), False, title=f"{spec.key}: {spec.name} ({spec.family})")
        return 0

    return run
