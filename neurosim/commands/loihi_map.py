"""`neurosim loihi-map NET.npz`: neurocores and chips a converted network needs on Loihi / Loihi 2.

A network with Transformer operators (MatMul, Softmax, LayerNorm, ...) gets the per-operator map of
:mod:`neurosim.loihi.operators` instead: per node kind, where it runs (neuro cores, routing, x86 cores
or host), what its output carries, and the cores of what maps (``--per-node`` for every node).
"""
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
    p.add_argument("--per-node", action="store_true", help="Transformer networks: one row per IR node, not per kind")
    p.add_argument("--json", action="store_true", help="JSON: per chip, totals, limits with their sources, layers")

    def run(args):
        from neurosim.errors import NeurosimError
        from neurosim.ir import SpikingNetwork
        from neurosim.loihi.resources import map_network

        net = SpikingNetwork.load(args.network)
        from neurosim.loihi.operators import has_processor_ops

        if has_processor_ops(net):
            return _operator_maps(net, args)
        maps = [map_network(net, chip.strip(), weight_bits=args.weight_bits) for chip in args.chip.split(",") if chip.strip()]
        emit(_Maps(maps), args.json)
        if not args.json:
            for m in maps:
                print(f"{m.chip_name}: {m.cores} neurocores -> {m.chips} chip(s) of {m.cores_per_chip} cores"
                      + ("" if m.supported else f"; UNSUPPORTED: {m.note}"))

    return run


class _OpMaps(_Maps):
    def __init__(self, maps, per_node):
        super().__init__(maps)
        self.per_node = per_node

    def to_dataframe(self):
        import pandas as pd

        if self.per_node:
            return super().to_dataframe()
        return pd.DataFrame([row for m in self.maps for row in m.summary()])


def _operator_maps(net, args):
    from neurosim.cli import emit
    from neurosim.loihi.operators import X86, map_operators

    chips = [c.strip() for c in args.chip.split(",") if c.strip()]
    maps = [map_operators(net, c, weight_bits=args.weight_bits) for c in chips]
    emit(_OpMaps(maps, args.per_node), args.json)
    if args.json:
        return
    for m in maps:
        proc = [r for r in m.rows if r.where == X86]
        ops = sum(r.ops_per_step for r in proc)
        line = (f"{m.chip_name}: {m.cores} neuro cores -> {m.chips} chip(s) of {m.cores_per_chip} for the "
                f"populations and synapses; {len(proc)} operator(s) need the {m.x86_cores_per_chip} x86 cores per "
                f"chip or a host ({ops:,.0f} operations per step and sample, dense bound)")
        bad = m.unsupported()
        if bad:
            kinds = sorted({r.kind for r in bad})
            line += f"; UNSUPPORTED: {len(bad)} node(s) ({', '.join(kinds)}) need graded spikes (Loihi 1 spikes are binary)"
        print(line)
