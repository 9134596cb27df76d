"""How many Loihi / Loihi 2 neurocores and chips a converted network needs (``neurosim loihi-map``).

Every population of the IR (and the membrane readout, as integrator compartments) is placed on cores
of its own, greedily in IR neuron order (channel-major, so a core holds whole channel planes or a
band of a dense layer). A core is full when adding one more neuron would exceed one of the catalog's
per-core limits (``hw.get("loihi")`` / ``hw.get("loihi2")``, each with its source):

* ``neurons_per_core`` (compartments);
* synaptic memory: the core's incoming synapses times the quantised weight width (8 bits, the
  width the fixed-point Lava backend uses) must fit ``synapse_capacity_per_core()`` synapses at
  the catalog's ``weight_bits`` (an upper bound that ignores index overhead, as the catalog says);
* ``input_axons_per_core``: distinct presynaptic sources (input pixels, neurons of earlier layers)
  of the core's neurons, counted exactly from the lowered connectivity;
* ``output_axons_per_core``: one axon per (neuron, destination core) pair, checked after all layers
  are placed; a core over the limit is split and the count updated.

When a single neuron needs more input axons or synaptic memory than a core has, its fan-in is
split over ``k`` cores (partial dendritic sums, joined by one extra compartment per neuron on a
further core): ``fanin_split = k`` in the report. Limits a chip's publications do not give (Loihi 2
axon routes) are not applied and are reported as ``None``.

Cores per chip come from the catalog (128 on both chips); chips = ceil(cores / cores per chip).

**Signed spikes.** A network with signed populations (``Neurons(signed=True)``: -1/0/1 spikes) needs
graded spikes with a signed payload. Loihi 2 has them (graded spikes with an integer payload: Intel's
Loihi 2 brief, 2021; Orchard et al., SiPS 2021), so its map is unchanged. Loihi 1 spikes are binary
events, so such a network does not run there as it is: the Loihi 1 map is still computed (the cores
it would take if its spikes could carry a sign, for comparison) but is marked ``supported=False``
with the reason in ``note``;
every layer fed by signed spikes says ``UNSUPPORTED on Loihi 1`` in ``limited_by`` (the column a
table reader scans) and the TOTAL row carries the note. No Loihi 1 workaround is mapped (a +/- pair
of binary populations with negated weights would roughly double those neurons and synapses, and is a
different network from the one simulated). The Poisson input's +-1 spikes come from the host-side
encoder and are not judged here.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from neurosim.errors import NeurosimError

CHIPS = ("loihi", "loihi2")
QUANT_WEIGHT_BITS = 8


@dataclass
class LayerMap:
    layer: str
    neurons: int
    synapses: int
    max_fanin: int
    cores: int
    fanin_split: int
    neurons_per_core: float
    limited_by: str


@dataclass
class LoihiMap:
    """Per-chip, per-layer core counts; ``to_dataframe()`` / ``to_dict()`` for the CLI."""

    chip: str
    chip_name: str
    layers: list[LayerMap]
    cores_per_chip: int
    limits: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    supported: bool = True  # False: the chip cannot run this network as it is (``note`` says why)
    note: str = ""

    @property
    def cores(self) -> int:
        return sum(lay.cores for lay in self.layers)

    @property
    def chips(self) -> int:
        return max(1, math.ceil(self.cores / self.cores_per_chip))

    def to_dataframe(self):
        import pandas as pd

        rows = [{"chip": self.chip, **lay.__dict__} for lay in self.layers]
        rows.append({"chip": self.chip, "layer": "TOTAL", "neurons": sum(r.neurons for r in self.layers),
                     "synapses": sum(r.synapses for r in self.layers),
                     "max_fanin": max([r.max_fanin for r in self.layers], default=0), "cores": self.cores,
                     "fanin_split": max([r.fanin_split for r in self.layers], default=1),
                     "neurons_per_core": float("nan"), "limited_by": f"{self.chips} chip(s)"
                     + (f"; UNSUPPORTED: {self.note}" if not self.supported else "")})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        return {"chip": self.chip, "chip_name": self.chip_name, "cores": self.cores, "chips": self.chips,
                "cores_per_chip": self.cores_per_chip, "supported": self.supported, "note": self.note,
                "limits": self.limits, "sources": self.sources,
                "layers": [lay.__dict__ for lay in self.layers]}


def _limits(chip: str) -> tuple[dict, dict, object]:
    import hw

    if chip not in CHIPS:
        raise NeurosimError(f"unknown Loihi chip {chip!r}; valid: {', '.join(CHIPS)}")
    spec = hw.get(chip)
    cap = spec.synapse_capacity_per_core()
    syn_bits = cap * (spec.weight_bits or QUANT_WEIGHT_BITS) if cap else None
    lim = {"neurons_per_core": spec.neurons_per_core, "synaptic_bits_per_core": syn_bits,
           "input_axons_per_core": getattr(spec, "input_axons_per_core", None),
           "output_axons_per_core": getattr(spec, "output_axons_per_core", None),
           "cores_per_chip": spec.cores}
    src = {k: spec.source(k) for k in ("neurons_per_core", "synaptic_memory_kib_per_core", "synapses_per_chip",
                                       "weight_bits", "input_axons_per_core", "output_axons_per_core", "cores")
           if spec.source(k)}
    return lim, src, spec


class _Rows:
    """Distinct presynaptic axons of every neuron: ``rows[k]`` (sorted axon ids)."""

    def __init__(self, i, bounds):
        self.i, self.bounds = i, bounds

    def __getitem__(self, k):
        return self.i[self.bounds[k]:self.bounds[k + 1]]

    def __len__(self):
        return len(self.bounds) - 1


def _coo_cache(low) -> dict:
    """Every term's synapse list ``(i, j, w)``, computed once: the connectivity and the output-axon check
    both read them (they used to be lowered twice, the larger part of the map's time)."""
    return {(tname, k): term.coo() for tname, tg in low.targets.items() for k, term in enumerate(tg.terms)}


def _connectivity(net, low, tname, coos=None):
    """``(rows, fanin, synapses, n_axons)`` of target ``tname``: distinct source axons per neuron (global
    ids over all its sources), their count, and the synapse count per neuron."""
    tg = low.targets[tname]
    n_out = int(np.prod(tg.shape))
    offsets, off = {}, 0
    for term in tg.terms:
        if term.source not in offsets:
            offsets[term.source] = off
            off += term.n_in
    syn = np.zeros(n_out, np.int64)
    keys = []
    for k, term in enumerate(tg.terms):
        i, j, _ = coos[(tname, k)] if coos is not None else term.coo()
        syn += np.bincount(j, minlength=n_out)
        keys.append(j.astype(np.int64) * max(off, 1) + i + offsets[term.source])
    key = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    j, i = np.divmod(key, max(off, 1))
    bounds = np.searchsorted(j, np.arange(n_out + 1))
    return _Rows(i, bounds), np.diff(bounds), syn, off


def map_network(net, chip: str = "loihi2", weight_bits: int = QUANT_WEIGHT_BITS) -> LoihiMap:
    """Place ``net`` (a :class:`~neurosim.ir.SpikingNetwork`) on ``chip`` (module docstring)."""
    from neurosim.ir.lowering import Lowering, signed_sources

    lim, src, spec = _limits(chip)
    low = Lowering(net)
    n_max = lim["neurons_per_core"] or 10 ** 9
    bits_max = lim["synaptic_bits_per_core"] or float("inf")
    ax_in = lim["input_axons_per_core"] or 10 ** 12
    layers = []
    core_of: dict[str, np.ndarray] = {}
    coos = _coo_cache(low)
    for tname in low.targets:
        srcs, fanin, syn, n_axons_total = _connectivity(net, low, tname, coos)
        N = len(srcs)
        bits = syn * weight_bits
        k = int(max(1, math.ceil(fanin.max(initial=0) / ax_in), math.ceil(bits.max(initial=0) / bits_max)))
        limited = {"neurons": 0, "synaptic memory": 0, "input axons": 0}
        if (fanin == n_axons_total).all() and n_axons_total <= ax_in * k:
            cores = _pack_uniform(bits / k, n_max, bits_max, limited)  # every neuron reads every source
        else:
            cores = _pack_greedy(srcs, bits / k, n_max, bits_max, ax_in * k, max(n_axons_total, 1), limited)
        n_cores = len(cores) * k + (math.ceil(N / n_max) if k > 1 else 0)
        core_of[tname] = np.repeat(np.arange(len(cores)), cores)
        why = max(limited, key=limited.get) if any(limited.values()) else "fits one core"
        if k > 1:
            why = f"fan-in split x{k}"
        name = tname if tname != "readout" else "readout (integrators)"
        layers.append(LayerMap(name, N, int(syn.sum()), int(fanin.max(initial=0)), n_cores, k,
                               float(N / max(len(cores), 1)), why))
    from neurosim.ir import SpikeMaxPool2d

    for k, n in net.nodes.items():  # spiking max-pools are gate neurons on the chip, one per output
        if isinstance(n, SpikeMaxPool2d):
            N = int(np.prod(net.shapes[k]))
            win = n.kernel_size[0] * n.kernel_size[1]
            layers.append(LayerMap(k, N, N * win, win, math.ceil(N / n_max), 1, float(min(N, n_max)),
                                   "neurons" if N > n_max else "fits one core"))
    # output axons: each neuron sends one axon per destination core it reaches
    out_lim = lim["output_axons_per_core"]
    if out_lim:
        extra = _output_axon_cores(net, low, core_of, out_lim, coos)
        for li, tname in enumerate(low.targets):
            if extra.get(tname):
                layers[li].cores += extra[tname]
                layers[li].limited_by += "; output axons"
    supported, note = True, ""
    signed = signed_sources(net, include_input=False)  # the Poisson input's signs are the host's encoding
    if signed and chip == "loihi":
        supported = False
        note = (f"signed spikes (-1) from {', '.join(sorted(signed))} need graded spikes (Loihi 2); "
                f"Loihi 1 spikes are binary")
        fed = {tname for tname, tg in low.targets.items() if any(t.source in signed for t in tg.terms)}
        fed |= {k for k in signed if isinstance(net.nodes[k], SpikeMaxPool2d)}
        for lay in layers:
            if lay.layer in fed or (lay.layer == "readout (integrators)" and "readout" in fed):
                lay.limited_by += "; UNSUPPORTED on Loihi 1: signed input spikes"
    return LoihiMap(chip, spec.name, layers, int(lim["cores_per_chip"]), limits=lim, sources=src,
                    supported=supported, note=note)


def _output_axon_cores(net, low, core_of, out_lim, coos=None) -> dict[str, int]:
    """Extra cores per source population so that no core sends more than ``out_lim`` axons (one per
    neuron and destination core it reaches)."""
    pairs: dict[str, list[np.ndarray]] = {}
    for t_index, (tname, tg) in enumerate(low.targets.items()):
        for k, term in enumerate(tg.terms):
            if term.source not in core_of:
                continue
            i, j, _ = coos[(tname, k)] if coos is not None else term.coo()
            dest = core_of[tname][j].astype(np.int64) + 1_000_000 * t_index
            pairs.setdefault(term.source, []).append(i.astype(np.int64) * 10 ** 9 + dest)
    extra = {}
    for s, keys in pairs.items():
        uniq = np.unique(np.concatenate(keys))
        axons = np.bincount(uniq // 10 ** 9, minlength=len(core_of[s]))
        per_core = np.bincount(core_of[s], weights=axons)
        need = int(sum(max(0, math.ceil(t / out_lim) - 1) for t in per_core))
        if need:
            extra[s] = need
    return extra


def _pack_uniform(bits, n_max, bits_max, limited) -> list[int]:
    """Contiguous cores under the neuron and memory limits, one searchsorted per core."""
    cum = np.concatenate([[0.0], np.cumsum(bits)])
    cores, i, N = [], 0, len(bits)
    while i < N:
        by_mem = int(np.searchsorted(cum, cum[i] + bits_max, side="right")) - 1 - i
        c = max(1, min(n_max, by_mem, N - i))
        if i + c < N:
            limited["neurons" if c == n_max else "synaptic memory"] += 1
        cores.append(c)
        i += c
    return cores


def _pack_greedy(srcs, bits, n_max, bits_max, ax_max, n_axons, limited) -> list[int]:
    """Contiguous cores under the neuron, memory and input-axon limits, neuron by neuron."""
    cores, cur, cur_bits, mask, n_set = [], 0, 0.0, np.zeros(n_axons, bool), 0
    for idx in range(len(srcs)):
        row = srcs[idx]
        n_new = int(np.count_nonzero(~mask[row])) if cur else len(row)  # axons this neuron adds to the core
        if cur:
            over = ("neurons" if cur + 1 > n_max else "synaptic memory" if cur_bits + bits[idx] > bits_max
                    else "input axons" if n_set + n_new > ax_max else None)
            if over:
                limited[over] += 1
                cores.append(cur)
                cur, cur_bits, n_set, n_new = 0, 0.0, 0, len(row)
                mask[:] = False
        cur += 1
        cur_bits += bits[idx]
        n_set += n_new
        mask[row] = True
    if cur:
        cores.append(cur)
    return cores
