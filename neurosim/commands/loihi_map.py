"""`neurosim loihi-map NET.npz`: neurocores and chips a converted network needs on Loihi / Loihi 2."""
from __future__ import annotations

from neurosim.cli import command, emit, number


class _Maps:
    """Several chips' maps as one report (a table with a `chip` column; JSON keyed by chip)."""

    def __init__(self, maps):
        self.maps = maps

    def to_dataframe(self):
        import pandas as pd

        return pd.concat([m.to_dataframe() for m in self.maps], ignore_index=True)

    def to_dict(self):
        return {m.chip: m.to_dict() for m in self.maps}


@command("loihi-map", help="neurocores and chips per layer a converted network (IR .npz) needs on Loihi and Loihi 2")
def configure(p):
    p.add_argument("network", help="a converted network saved as .npz (`neurosim convert ... --save-ir NET.npz`)")
    p.add_argument("--chip", default="loihi,loihi2", help="comma-separated: loihi, loihi2 (default both)")
    p.add_argument("--weight-bits", type=number(int, 1, 32), default=8, help="quantised weight width for synaptic memory (default 8)")
    p.add_argument("--json", action="store_true", help="JSON: per chip, totals, limits with their sources, layers")

    def run(args):
        from neurosim.errors import NeurosimError
        from neurosim.ir import SpikingNetwork
        from neurosim.loihi.resources import map_network

        net = SpikingNetwork.load(args.network)
        maps = [map_network(net, chip.strip(), weight_bits=args.weight_bits) for chip in args.chip.split(",") if chip.strip()]
        emit(_Maps(maps), args.json)
        if not args.json:
            for m in maps:
                print(f"{m.chip_name}: {m.cores} neurocores -> {m.chips} chip(s) of {m.cores_per_chip} cores"
                      + ("" if m.supported else f"; UNSUPPORTED: {m.note}"))

    return run
