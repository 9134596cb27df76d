"""Event-driven (simpy) model of a neuromorphic mesh chip, driven by the spikes a network really fires.

:mod:`hw.neuromorphic` is the fast analytic estimate (SynOps x energy per op, a step time of the slowest
layer's work plus a barrier). This module is the simulated alternative: it places a
:class:`~neurosim.ir.SpikingNetwork` on the cores of a Loihi-class chip (the ``neurosim loihi-map``
placement), routes every step's spikes through a 2-D mesh and reports where the time and energy go.

Model (one timestep; every step starts after the previous step's barrier)::

    core c  : neuron updates  n_active x t_active + n_idle x t_idle         (send unit, then)
              one message per (spike, destination core): t_spike each, e_spike each (output axon)
    mesh    : dimension-order routing (X first, then Y) between tiles; each directed link carries
              one spike per hop time (E-W 4.1 ns, N-S 6.5 ns), FIFO; chip-to-chip links the same with
              their own latency/energy (a board is a near-square grid of chips); a router buffers
              without limit (no back-pressure)
    core d  : receive unit, FIFO: per arriving spike t_axon_in + synapses x t_synop, e_synop each
    step    = last message processed (or last send) + barrier(tiles in use)

Neurons on a core are *active* in a step in proportion to the spikes it receives that step (a core that
receives ``lam >= 1`` spikes updates all its neurons as active; ``lam`` in (0, 1), a mean over samples,
interpolates; 0: all idle at the inactive cost). Energy per step: synaptic ops x e_synop + neuron updates
(active/idle) + per message e_spike + hops x e_hop (E-W/N-S) + chip crossings x e_chip + static power x
chips x step time.

The granularities give the same energy and message counts:

* ``mode="exact"``: every spike is its own message (integer spike counts only).
* ``mode="aggregate"``: one message per (source core, destination core, step) carrying ``n`` spikes (any
  non-negative real, e.g. a mean over samples). A message holds each stage for ``n`` spike-times and
  cuts through: its head moves on after one hop time, its tail leaves a stage at
  ``max(start + n t, tail_before + t)``. Without contention between messages (one flow per link and
  receiver) this is exactly the per-spike pipeline, so both modes give the same step time; where flows
  share a link or a receiver, exact interleaves spikes FIFO while aggregate serves whole messages, and
  the step time differs by at most the interleaving (tests bound it).
* ``mode="tile"``: for big boards, one message per (source tile, destination tile, step), reserving its
  whole path when its head is injected; same dynamic energies and counts, step times within 5 % of
  aggregate on small nets (tested); on resnet_tiny over 7 Loihi chips the path reservation adds 3.6 %
  against routing the same messages hop by hop. ``mode="auto"`` picks aggregate, or tile above
  ``AUTO_MESSAGES`` core-pair messages per run.

Tile mode's events are replayed by a numba kernel (:func:`_tile_kernel`) in exactly the order simpy serves
them (bit-for-bit the simpy processes' result, tested); ``engine="simpy"`` runs the processes themselves.

Chips of a board: ``chip_links="board"`` (default) joins them by chip-to-chip links with the assumed
figures below and adds a round trip over the chip grid to the barrier; ``chip_links="seamless"`` joins
their meshes into one (a crossing is an ordinary hop), which is how SANA-FE describes several chips.

Parameters (:func:`chip_params`): Loihi's per-operation figures are Davies et al., "Loihi: A Neuromorphic
Manycore Processor with On-Chip Learning", IEEE Micro 38(1), 2018, Table 2 (pre-silicon); the mesh is
8 x 4 tiles of 4 cores (128 cores; the same layout SANA-FE's Loihi architecture uses). Loihi 2 borrows
every timing and energy from Loihi (Intel has published no per-operation figures) and its layout; only
its capacity (8,192 neurons per core, via the placement) is its own. Chip-to-chip link figures are
ASSUMPTIONS (no published per-spike figure was found): say so in every report that crosses a chip.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hw.report import CostReport, _clean
from neurosim.errors import NeurosimError

CHIPS = ("loihi", "loihi2")
MAPPINGS = ("compact", "spread")
MODES = ("aggregate", "exact", "tile", "auto")
CHIP_LINKS = ("board", "seamless")
ENGINES = ("auto", "simpy")
AUTO_MESSAGES = 150_000  # mode="auto": core-pair messages per run above which spikes are bundled per tile pair
DAVIES = "Davies et al. 2018, IEEE Micro 38(1), Table 2"


@dataclass(frozen=True)
class MeshParams:
    """Per-operation time (ns) and energy (pJ) of one chip and its mesh; ``sources`` names each figure's origin."""

    chip: str
    name: str
    mesh_x: int = 8
    mesh_y: int = 4
    cores_per_tile: int = 4
    t_synop_ns: float = 3.5
    e_synop_pj: float = 23.6
    t_active_ns: float = 8.4
    e_active_pj: float = 81.0
    t_idle_ns: float = 5.3
    e_idle_pj: float = 52.0
    t_spike_ns: float = 2.1
    e_spike_pj: float = 1.7
    t_axon_in_ns: float = 0.0
    t_hop_ew_ns: float = 4.1
    e_hop_ew_pj: float = 3.0
    t_hop_ns_ns: float = 6.5
    e_hop_ns_pj: float = 4.0
    barrier_1_ns: float = 113.0
    barrier_32_ns: float = 465.0
    t_chip_ns: float = 100.0
    e_chip_pj: float = 40.0
    static_power_mw: float = 104.0
    max_chips: int = 32
    chip_links: str = "board"
    sources: dict = field(default_factory=dict, compare=False)

    @property
    def tiles(self) -> int:
        return self.mesh_x * self.mesh_y

    @property
    def cores(self) -> int:
        return self.tiles * self.cores_per_tile

    def barrier_ns(self, tiles: int, chips: int = 1, chips_x: int | None = None) -> float:
        """Barrier time for ``tiles`` tiles in use: Davies's 113 ns (1 tile) to 465 ns (32 tiles),
        interpolated in log2(tiles) (a tree-like sync wave; our assumption between the two published
        points) and held at the 32-tile figure above; on a board (``chip_links="board"``), plus a round
        trip across the grid of chips over chip-to-chip links (``"seamless"``: none, the chips are one mesh)."""
        n = min(max(int(tiles), 1), 32)
        b = self.barrier_1_ns + (self.barrier_32_ns - self.barrier_1_ns) * math.log2(n) / 5.0
        if self.chip_links == "seamless":
            return b
        chips = max(int(chips), 1)
        cx = chips_x or math.ceil(math.sqrt(chips))
        return b + 2 * ((cx - 1) + (math.ceil(chips / cx) - 1)) * self.t_chip_ns


_LOIHI_SOURCES = {
    "mesh": "Davies et al. 2018: 128 cores in a mesh of tiles of 4 cores (32 tiles, Table 2's barrier range); "
            "8 x 4 tiles as in SANA-FE's Loihi architecture description (Boyle et al., IEEE TCAD 2025)",
    "t_synop_ns": f"{DAVIES}: time per synaptic spike op (max) 3.5 ns",
    "e_synop_pj": f"{DAVIES}: energy per synaptic spike op (min) 23.6 pJ",
    "t_active_ns": f"{DAVIES}: time per neuron update, active 8.4 ns",
    "e_active_pj": f"{DAVIES}: energy per neuron update, active 81 pJ",
    "t_idle_ns": f"{DAVIES}: time per neuron update, inactive 5.3 ns",
    "e_idle_pj": f"{DAVIES}: energy per neuron update, inactive 52 pJ",
    "t_spike_ns": f"{DAVIES}: within-tile spike latency 2.1 ns (charged once per message leaving a core)",
    "e_spike_pj": f"{DAVIES}: within-tile spike energy 1.7 pJ (once per message)",
    "t_axon_in_ns": "0: Davies's synaptic op time is taken to include the input-axon lookup (assumption)",
    "t_hop_ew_ns": f"{DAVIES}: east-west tile hop latency 4.1 ns; a link carries one spike per hop time (assumption)",
    "e_hop_ew_pj": f"{DAVIES}: east-west tile hop energy 3.0 pJ",
    "t_hop_ns_ns": f"{DAVIES}: north-south tile hop latency 6.5 ns",
    "e_hop_ns_pj": f"{DAVIES}: north-south tile hop energy 4.0 pJ",
    "barrier_ns": f"{DAVIES}: mesh-wide barrier sync 113-465 ns for 1-32 tiles (log2 interpolation: ours)",
    "t_chip_ns": "ASSUMED 100 ns per chip-to-chip crossing (no published per-spike figure found)",
    "e_chip_pj": "ASSUMED 40 pJ per chip-to-chip crossing (10x an on-chip hop; no published figure found)",
    "static_power_mw": "catalog (hw.get('loihi').static_power_mw): derived from Frady et al. 2020, 104 mW per chip",
    "max_chips": "Nahuku board: 32 Loihi chips (Davies et al. 2021, Proc. IEEE); our default board limit",
    "chip_links": "board: chips joined by chip-to-chip links with the ASSUMED t_chip_ns/e_chip_pj; seamless: the "
                  "chips' meshes join into one mesh (a crossing is an ordinary hop, no chip term in the barrier), "
                  "as SANA-FE's loihi_large.yaml describes 32 Loihi chips",
}


def chip_params(chip: str, **overrides) -> MeshParams:
    """The mesh parameters of ``chip`` (``loihi`` or ``loihi2``); ``overrides`` set any field."""
    import hw

    if chip not in CHIPS:
        raise NeurosimError(f"unknown chip {chip!r} for the mesh simulator; valid: {', '.join(CHIPS)}")
    spec = hw.get(chip)
    base = hw.get("loihi")
    p = MeshParams(chip=chip, name=spec.name, static_power_mw=float(base.static_power_mw or 0.0),
                   sources=dict(_LOIHI_SOURCES))
    if chip == "loihi2":
        p = replace(p, sources={**p.sources, "borrowed": (
            "Loihi 2: Intel has published no per-operation times or energies, mesh layout or barrier time; "
            "every figure here is Loihi's (Davies et al. 2018), as the catalog's energy_proxy says. Only the "
            "capacity (8,192 neurons per core, 120M synapses per chip: Intel's 2021 brief) is Loihi 2's own.")})
    bad = sorted(set(overrides) - {f for f in MeshParams.__dataclass_fields__ if f not in ("chip", "name", "sources")})
    if bad:
        raise NeurosimError(f"unknown mesh parameter(s) {', '.join(bad)}")
    if "chip_links" in overrides and overrides["chip_links"] not in CHIP_LINKS:
        raise NeurosimError(f"unknown chip_links {overrides['chip_links']!r}; valid: {', '.join(CHIP_LINKS)}")
    for k, v in overrides.items():
        if k == "chip_links":
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise NeurosimError(f"mesh parameter {k} must be a finite number >= 0, got {v!r}")
    if overrides:
        p = replace(p, **overrides, sources={**p.sources, **{k: "user override" for k in overrides}})
    return p


# ---- placement -------------------------------------------------------------------------------------

@dataclass
class Placement:
    """Logical cores of each layer and their physical positions.

    ``blocks[layer]``: ``(start, stop, core)`` ranges of the layer's neurons (IR flat order);
    ``pos[core] = (chip, x, y, slot)`` in global tile coordinates over a near-square grid of chips
    (``chips_x`` wide; chip ``c`` sits at column ``c % chips_x``, row ``c // chips_x``). The input (host)
    enters at tile (0, 0) of chip 0.
    """

    chip: str
    mapping: str
    params: MeshParams
    blocks: dict[str, list[tuple[int, int, int]]]
    pos: list[tuple[int, int, int, int]]
    layer_of: list[str]
    neurons_of: list[int]
    chips: int
    notes: list[str] = field(default_factory=list)
    chips_x: int = 1  # chips form a grid chips_x wide

    @property
    def chips_y(self) -> int:
        return math.ceil(self.chips / self.chips_x)

    @property
    def n_cores(self) -> int:
        return len(self.pos)

    def core_index(self, layer: str, n: int) -> np.ndarray:
        """Core of each of ``layer``'s ``n`` neurons."""
        out = np.empty(n, np.int64)
        for a, b, c in self.blocks[layer]:
            out[a:b] = c
        return out

    def tile(self, core: int) -> tuple[int, int]:
        _, x, y, _ = self.pos[core]
        return x, y


INPUT_CORE = -1


def place(net, chip: str = "loihi", mapping: str = "compact", *, params: MeshParams | None = None,
          max_chips: int | None = None) -> Placement:
    """Place ``net`` on ``chip``: core counts per layer from :func:`neurosim.loihi.resources.map_network`
    (its neuron, synaptic-memory and axon limits), each layer's neurons split into that many contiguous,
    equal blocks; then logical cores onto physical ones:

    * ``compact``: in layer order, filling each tile's cores, tiles row by row (x first);
    * ``spread``: round-robin over all tiles of the chips needed (consecutive cores on different tiles).
    """
    from neurosim.loihi.resources import map_network

    if mapping not in MAPPINGS:
        raise NeurosimError(f"unknown mapping {mapping!r}; valid: {', '.join(MAPPINGS)}")
    p = params or chip_params(chip)
    m = map_network(net, chip)
    notes = [] if m.supported else [f"{chip}: {m.note} (simulated as if its spikes could carry a sign)"]
    names = [t for t in _targets(net)]
    blocks, layer_of, neurons_of = {}, [], []
    for lay, name in zip(m.layers, names):
        n, k = lay.neurons, max(int(lay.cores), 1)
        if lay.fanin_split > 1:
            notes.append(f"{name}: fan-in split x{lay.fanin_split} on the chip; simulated as {k} cores of "
                         "whole neurons (partial dendritic sums not modelled)")
        edges = np.linspace(0, n, k + 1).round().astype(int)
        blocks[name] = []
        for a, b in zip(edges[:-1], edges[1:]):
            blocks[name].append((int(a), int(b), len(layer_of)))
            layer_of.append(name)
            neurons_of.append(int(b - a))
    n_cores = len(layer_of)
    chips = max(1, math.ceil(n_cores / p.cores))
    limit = max_chips if max_chips is not None else p.max_chips
    if chips > limit:
        raise NeurosimError(f"the network needs {n_cores} {chip} cores = {chips} chips; the board has "
                            f"{limit} chip(s) of {p.cores} cores")
    pos = []
    tiles_total = chips * p.tiles
    chips_x = math.ceil(math.sqrt(chips))
    for g in range(n_cores):
        if mapping == "compact":
            tile, slot = divmod(g, p.cores_per_tile)
        else:
            slot, tile = divmod(g, tiles_total)
        c, t = divmod(tile, p.tiles)
        ty, tx = divmod(t, p.mesh_x)
        cy, cx = divmod(c, chips_x)
        pos.append((c, cx * p.mesh_x + tx, cy * p.mesh_y + ty, slot))
    if chips > 1:
        notes.append(_chip_note(chips, chips_x, p))
    return Placement(chip, mapping, p, blocks, pos, layer_of, neurons_of, chips, notes, chips_x)


def _chip_note(chips: int, chips_x: int, p: MeshParams) -> str:
    grid = f"{chips} chips in a {chips_x} x {math.ceil(chips / chips_x)} grid"
    if p.chip_links == "seamless":
        return (f"{grid} joined into one mesh (chip_links='seamless': a chip crossing is an ordinary tile hop, "
                "as in SANA-FE's loihi_large.yaml)")
    return f"{grid}; chip-to-chip links use ASSUMED figures ({p.t_chip_ns:g} ns, {p.e_chip_pj:g} pJ per crossing)"


def _targets(net):
    """Layer names in the order ``map_network`` lists them: populations and the membrane readout, then the
    spiking max-pools (gate neurons)."""
    from neurosim.ir.lowering import Lowering
    from neurosim.ir import SpikeMaxPool2d

    return list(Lowering(net).targets) + [k for k, n in net.nodes.items() if isinstance(n, SpikeMaxPool2d)]


def _maxpool_coo(node, in_shape) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)``: input element and gate neuron of every window membership of a spiking max-pool."""
    import torch
    import torch.nn.functional as F

    C, H, W = in_shape
    idx = torch.arange(1, C * H * W + 1, dtype=torch.float64).reshape(1, C, H, W)
    kh, kw = node.kernel_size
    cols = F.unfold(idx, (kh, kw), padding=node.padding, stride=node.stride)[0]
    L = cols.shape[1]
    cols = cols.reshape(C, kh * kw, L).numpy().astype(np.int64)
    c, _, pos = np.nonzero(cols > 0)
    return cols[cols > 0] - 1, c * L + pos


def _maxpool_counts(net, counts: dict) -> dict:
    """Per-sample spike counts of each spiking max-pool's gates from its source's: the max over the window
    (exact for unsigned spikes: the gate's count is the window's largest input count)."""
    import torch
    import torch.nn.functional as F

    from neurosim.ir import SpikeMaxPool2d

    out = dict(counts)
    for k, n in net.nodes.items():
        if isinstance(n, SpikeMaxPool2d):
            src = net.spike_source(n.inputs[0])
            if src not in out:
                continue
            x = torch.as_tensor(np.abs(np.asarray(out[src], np.float64)))
            x = x.reshape(x.shape[0], *net.shapes[n.inputs[0]])
            out[k] = F.max_pool2d(x, n.kernel_size, n.stride, n.padding).flatten(1).numpy()
    return out


# ---- activity --------------------------------------------------------------------------------------

@dataclass
class Activity:
    """Spikes per step and neuron for every source (``"input"`` and each population): ``rates[src]`` is
    ``[T, N_src]`` (mean spikes per sample; integers for an exact run), ``samples`` how many samples the
    mean is over."""

    rates: dict[str, np.ndarray]
    timesteps: int
    samples: int = 1
    source: str = ""


def activity_from_raster(raster: dict[str, Any], samples: int = 1) -> Activity:
    """An :class:`Activity` from per-step, per-neuron spike counts ``{source: [T, N]}``."""
    rates = {k: np.abs(np.asarray(v, np.float64).reshape(len(v), -1)) for k, v in raster.items()}
    Ts = {v.shape[0] for v in rates.values()}
    if len(Ts) != 1:
        raise NeurosimError(f"raster sources disagree on the number of steps: {sorted(Ts)}")
    return Activity(rates, Ts.pop(), samples, "raster")


def activity_from_simresult(result, net, inputs=None) -> Activity:
    """Mean per-sample spikes per step and neuron from a run with ``record_step_counts=True`` (and,
    for the split over neurons, ``record_counts=True``).

    Per sample ``b``, population events at step ``t`` (``step_counts``, exact) are spread over its
    neurons in proportion to each neuron's own count over the run (``counts``, exact); so every core's
    spikes over the run and every step's total are exact, and only the per-step split between a
    population's cores is estimated. The input: direct encoding sends every nonzero element each step
    (exact); Poisson spreads the measured events over pixels in proportion to |x|. Without ``counts``
    the split is uniform.
    """
    sc = getattr(result, "step_counts", None)
    if sc is None:
        raise NeurosimError("this result has no per-step spike counts; run with record_step_counts=True "
                            "(the snntorch backend records them)")
    from neurosim.ir import SpikeMaxPool2d

    B, T = int(result.batch), int(result.timesteps)
    rates = {}
    counts = _maxpool_counts(net, getattr(result, "counts", None) or {})
    sources = list(net.populations) + [k for k, n in net.nodes.items() if isinstance(n, SpikeMaxPool2d)]
    for k in sources:
        if k not in sc:
            raise NeurosimError(f"the result has no per-step counts for {k!r}")
        steps = np.asarray(sc[k], np.float64).reshape(T, B)
        N = int(np.prod(net.shapes[k]))
        if k in counts:
            c = np.abs(np.asarray(counts[k], np.float64).reshape(B, N))
            tot = c.sum(1, keepdims=True)
            share = np.divide(c, tot, out=np.full_like(c, 1.0 / N), where=tot > 0)
        else:
            share = np.full((B, N), 1.0 / N)
        rates[k] = steps @ share / B
    steps = np.asarray(sc["input"], np.float64).reshape(T, B)
    N = int(np.prod(net.input_shape))
    if inputs is not None:
        x = np.abs(np.asarray(inputs, np.float64).reshape(B, N))
        w = (x != 0).astype(np.float64) if net.encoding.kind != "poisson" else x
        tot = w.sum(1, keepdims=True)
        share = np.divide(w, tot, out=np.full_like(w, 1.0 / N), where=tot > 0)
    else:
        share = np.full((B, N), 1.0 / N)
    rates["input"] = steps @ share / B
    return Activity(rates, T, B, f"{result.backend or 'spiking'} run, {B} sample(s)")


# ---- traffic: what each step sends ---------------------------------------------------------------

@dataclass
class _Traffic:
    """Per step: ``spikes[t, f]`` and ``synops[t, f]`` of flow ``f = (src core, dst core)``; ``recv[t, c]``
    spikes arriving at core c."""

    flows: np.ndarray  # [F, 2] (src, dst); src -1 = the host input
    spikes: np.ndarray  # [T, F]
    synops: np.ndarray  # [T, F]


def _traffic(net, place_: Placement, act: Activity) -> _Traffic:
    import scipy.sparse as sp

    from neurosim.ir.lowering import Lowering

    low = Lowering(net)
    T = act.timesteps
    keys_all, spk_all, syn_all = [], [], []
    conns = []
    for tname, tg in low.targets.items():
        dcore = place_.core_index(tname, int(np.prod(tg.shape)))
        by_src: dict[str, list] = {}
        for term in tg.terms:
            i, j, _ = term.coo()
            by_src.setdefault(term.source, []).append((i, dcore[j]))
        conns.append(by_src)
    for k, src in low.maxpools.items():
        node = net.nodes[k]
        i, j = _maxpool_coo(node, net.shapes[node.inputs[0]])
        conns.append({src: [(i, place_.core_index(k, int(np.prod(net.shapes[k])))[j])]})
    for by_src in conns:
        for src, parts in by_src.items():
            if src not in act.rates:
                raise NeurosimError(f"activity has no spikes for source {src!r}")
            R = act.rates[src]
            if R.shape[0] != T:
                raise NeurosimError(f"activity for {src!r} has {R.shape[0]} steps, expected {T}")
            i = np.concatenate([a for a, _ in parts])
            d = np.concatenate([b for _, b in parts])
            n_src = R.shape[1]
            if i.size and i.max() >= n_src:
                raise NeurosimError(f"activity for {src!r} has {n_src} neurons, the network {i.max() + 1}+")
            pair = i * (place_.n_cores + 1) + d
            upair, syn = np.unique(pair, return_counts=True)
            pi, pd = np.divmod(upair, place_.n_cores + 1)
            scores = place_.core_index(src, n_src) if src != "input" else np.full(n_src, INPUT_CORE)
            flow_key = (scores[pi] + 1) * (place_.n_cores + 1) + pd
            ukey, fidx = np.unique(flow_key, return_inverse=True)
            M = sp.csr_matrix((np.ones(len(pi)), (np.arange(len(pi)), fidx)), shape=(len(pi), len(ukey)))
            Rp = R[:, pi]
            keys_all.append(ukey)
            spk_all.append(np.asarray((M.T @ Rp.T).T))
            syn_all.append(np.asarray((M.T @ (Rp * syn[None, :]).T).T))
    if not keys_all:
        raise NeurosimError("the network has no synaptic connections to simulate")
    keys = np.concatenate(keys_all)
    spikes = np.concatenate([np.asarray(s) for s in spk_all], 1)
    synops = np.concatenate([np.asarray(s) for s in syn_all], 1)
    ukey, inv = np.unique(keys, return_inverse=True)  # two targets fed by one source core share a flow
    S = np.zeros((T, len(ukey)))
    Y = np.zeros((T, len(ukey)))
    np.add.at(S.T, inv, spikes.T)
    np.add.at(Y.T, inv, synops.T)
    src, dst = np.divmod(ukey, place_.n_cores + 1)
    return _Traffic(np.stack([src - 1, dst], 1), S, Y)


# ---- the discrete-event step ----------------------------------------------------------------------

@dataclass
class _TileMessages:
    """Tile-mode messages of one step as arrays: per message ``g`` its source and destination tile
    indices, head and tail times, spikes, its parts ``bounds[g]:bounds[g + 1]`` (destination core, spikes,
    synops; cores ascending) and its first flow's source core, update time and emission start."""

    t0: np.ndarray
    t1: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    n: np.ndarray
    bounds: np.ndarray
    p_dst: np.ndarray
    p_n: np.ndarray
    p_syn: np.ndarray
    src: np.ndarray
    update: np.ndarray
    emit: np.ndarray


def _tile_links_py(order, head, tail, n, ptr, lid, lt, n_links):
    """Tile mode, pass 1: heads in simpy's order (``order``: by head time, then index) reserve their whole
    paths. Returns arrival times, whether each waited for its arrival, tails leaving the last link,
    queueing and hop time per message, per-link busy time and spikes, the event count and the last
    event time."""
    G = len(head)
    link_free = np.zeros(n_links)
    busy_link = np.zeros(n_links)
    spikes_link = np.zeros(n_links)
    arrive = np.empty(G)
    tail_out = np.empty(G)
    queued = np.zeros(G)
    hop_ns = np.zeros(G)
    delayed = np.zeros(G, np.int64)
    events = 0
    t_end = 0.0
    for r in range(G):
        g = order[r]
        events += 1
        now0 = head[g]
        clock = now0
        tl = tail[g]
        ng = n[g]
        q = 0.0
        h = 0.0
        for k in range(ptr[g], ptr[g + 1]):
            li = lid[k]
            t = lt[k]
            start = max(clock, link_free[li])
            q += start - clock
            new_head = start + t
            lf = max(max(new_head, start + ng * t), tl + t)
            link_free[li] = lf
            busy_link[li] += ng * t
            spikes_link[li] += ng
            tl = lf
            h += t
            clock = new_head
        if clock > now0:
            arrive[g] = now0 + (clock - now0)  # simpy's timeout arithmetic
            delayed[g] = 1
            events += 1
        else:
            arrive[g] = now0
        t_end = max(t_end, arrive[g])
        tail_out[g] = tl
        queued[g] = q
        hop_ns[g] = h
    return arrive, delayed, tail_out, queued, hop_ns, busy_link, spikes_link, events, t_end


def _tile_recv_py(order, arrive, tail_out, bounds, p_dst, p_n, p_syn, n_cores, t_synop, t_axon, last_t):
    """Tile mode, pass 2: receive units serve the messages in simpy's order (``order``). Returns per-core
    busy time, a received mask and the critical part ``[message, part, start, now, finish]`` (message -1:
    none finished after ``last_t``, the last send)."""
    recv_free = np.zeros(n_cores)
    busy_recv = np.zeros(n_cores)
    got = np.zeros(n_cores, np.bool_)
    win = np.array([-1.0, -1.0, 0.0, 0.0, 0.0])
    for r in range(len(order)):
        g = order[r]
        now = arrive[g]
        tl = tail_out[g]
        for k in range(bounds[g], bounds[g + 1]):
            d = p_dst[k]
            nd = p_n[k]
            per = (p_syn[k] / nd if nd > 0 else 0.0) * t_synop + t_axon
            start = max(now, recv_free[d])
            finish = max(start + nd * per, tl + min(nd, 1.0) * per)
            recv_free[d] = finish
            busy_recv[d] += nd * per
            got[d] = True
            if finish >= last_t:
                last_t = finish
                win[0] = g
                win[1] = k
                win[2] = start
                win[3] = now
                win[4] = finish
    return busy_recv, got, win, last_t


_KERNELS: dict = {}


def _jit(fn):
    """``fn`` compiled with numba on first use (the plain function is the readable reference)."""
    k = _KERNELS.get(fn.__name__)
    if k is None:
        from numba import njit

        k = _KERNELS[fn.__name__] = njit(cache=True)(fn)
    return k


def _tile_kernel(head, tail, n, ptr, lid, lt, bounds, p_dst, p_n, p_syn, n_links, n_cores, t_synop, t_axon, last_t):
    """Tile mode's step without simpy, in the order simpy serves its events (:meth:`_Step.run`).

    simpy pops events by (time, priority, creation). Every message's head timeout is created before the
    run, in message order, so heads are served by (head time, index); a head reserves its whole path, then
    waits for its arrival ``head + (arrival - head)`` (simpy's float arithmetic), unless it has no hop: then
    the receive units serve it at once. An arrival is created after every head, so it sorts after the heads
    of its time, and arrivals of one time go in creation (= head) order. So: pass 1 reserves links by
    (head, index); pass 2 serves receive units by (time, served at its head first, pass-1 rank)."""
    order = np.argsort(head, kind="stable")
    arrive, delayed, tail_out, queued, hop_ns, busy_link, spikes_link, events, t_end = _jit(_tile_links_py)(
        order, head, tail, n, ptr, lid, lt, n_links)
    rank = np.empty(len(head), np.int64)
    rank[order] = np.arange(len(head))
    order2 = np.lexsort((rank, delayed, arrive))
    busy_recv, got, win, last_t = _jit(_tile_recv_py)(order2, arrive, tail_out, bounds, p_dst, p_n, p_syn,
                                                     n_cores, t_synop, t_axon, last_t)
    return busy_recv, got, busy_link, spikes_link, queued, hop_ns, win, max(last_t, t_end), events


class _Step:
    """One timestep in simpy (module docstring).

    A core's send unit is a fixed sequence (neuron updates, then its messages destination by destination,
    ``n x t_spike`` each) that nothing else delays (routers buffer without limit), so its emission times
    are computed in advance; each message is then a simpy process that waits for its head time and
    crosses its links one simpy event per hop. A link and a receive unit are FIFO servers kept as the
    time they next fall free (what a ``simpy.Resource`` held from a message's start to its tail would
    give, at a third of the events). In tile mode a message reserves its whole path when its head is
    injected (links served in injection order rather than arrival order: the usual fast-NoC
    approximation), so it costs two events instead of one per hop.
    """

    def __init__(self, pl: Placement, exact: bool, tile_level: bool = False, engine: str = "simpy"):
        self.pl, self.p, self.exact, self.tile_level = pl, pl.params, exact, tile_level
        self.engine = engine if tile_level else "simpy"
        self.events = 0
        self._routes: dict = {}

    def tile_of(self, c: int) -> tuple[int, int]:
        return (0, 0) if c == INPUT_CORE else self.pl.tile(c)

    def route(self, a: int, b: int) -> list[tuple[tuple, float, float, bool]]:
        """Links from core a's tile to core b's (X first, then Y): ``(key, t_ns, e_pj, chip crossing?)``."""
        return self.route_tiles(self.tile_of(a), self.tile_of(b))

    def route_tiles(self, t0: tuple[int, int], t1: tuple[int, int]) -> list[tuple[tuple, float, float, bool]]:
        r = self._routes.get((t0, t1))
        if r is not None:
            return r
        p = self.p
        (x, y), (x1, y1) = t0, t1
        out = []
        board = p.chip_links == "board"
        while x != x1:
            nx = x + (1 if x1 > x else -1)
            cross = board and (min(x, nx) + 1) % p.mesh_x == 0
            out.append((((x, y), (nx, y)), p.t_chip_ns if cross else p.t_hop_ew_ns,
                        p.e_chip_pj if cross else p.e_hop_ew_pj, cross))
            x = nx
        while y != y1:
            ny = y + (1 if y1 > y else -1)
            cross = board and (min(y, ny) + 1) % p.mesh_y == 0
            out.append((((x, y), (x, ny)), p.t_chip_ns if cross else p.t_hop_ns_ns,
                        p.e_chip_pj if cross else p.e_hop_ns_pj, cross))
            y = ny
        self._routes[(t0, t1)] = out
        return out

    def messages(self, update_ns, flows):
        """Emission schedule: ``(src, t0_tile, t1_tile, head, tail, n, parts, update, emit_start)`` per
        message, ``parts = [(dst core, spikes, synops)]``; ``flows`` (src, dst, spikes, synops) sorted by
        source then destination."""
        t_out = self.p.t_spike_ns
        out, clock = [], {}
        for src, dst, n, syn in flows:
            t = clock.get(src, update_ns.get(src, 0.0))
            upd = update_ns.get(src, 0.0)
            if self.exact:
                k = int(round(n))
                for _ in range(k):
                    out.append((src, self.tile_of(src), self.tile_of(dst), t + t_out, t + t_out, 1.0,
                                [(dst, 1.0, syn / n)], upd, t))
                    t += t_out
            else:
                out.append((src, self.tile_of(src), self.tile_of(dst), t + t_out, t + max(n, 1.0) * t_out
                            if n >= 1 else t + t_out, n, [(dst, n, syn)], upd, t))
                t += n * t_out
            clock[src] = t
        if self.tile_level:  # one message per (source tile, destination tile): the cores' spikes bundled
            groups: dict = {}
            for m in out:
                g = groups.get((m[1], m[2]))
                if g is None:
                    groups[(m[1], m[2])] = [m[0], m[1], m[2], m[3], m[4], m[5], list(m[6]), m[7], m[8]]
                else:
                    g[3], g[4], g[5] = min(g[3], m[3]), max(g[4], m[4]), g[5] + m[5]
                    g[6].extend(m[6])
            out = [tuple(g) for g in groups.values()]
        return out, clock

    def messages_vec(self, update_ns, src, dst, n, syn):
        """:meth:`messages` for whole-message modes in numpy: the same schedule (each source core sends
        destination by destination) from arrays of flows with ``n > 0``."""
        t_out = self.p.t_spike_ns
        if not len(src):
            return [], {}
        order = np.lexsort((dst, src))
        src, dst, n, syn = src[order], dst[order], n[order], syn[order]
        C = len(self.pl.pos)
        upd_all = np.zeros(C + 1)
        for c, u in update_ns.items():
            upd_all[c + 1] = u
        upd = upd_all[src + 1]
        cs = np.cumsum(n)
        starts = np.r_[0, np.flatnonzero(np.diff(src)) + 1]
        counts = np.diff(np.r_[starts, len(src)])
        before = cs - n - np.repeat((cs - n)[starts], counts)
        t0 = upd + before * t_out
        head = t0 + t_out
        tail = np.where(n >= 1, t0 + n * t_out, head)
        ends = starts + counts - 1
        clock = {int(src[e]): float(t0[e] + n[e] * t_out) for e in ends}
        self._tile_xy()
        ts, td = self._tile_id[src + 1], self._tile_id[dst + 1]
        tiles = self._tiles
        if not self.tile_level:
            return [(int(a), tiles[x], tiles[y], float(h), float(e), float(k), [(int(b), float(k), float(w))],
                     float(u), float(q))
                    for a, b, x, y, h, e, k, w, u, q in zip(src, dst, ts, td, head, tail, n, syn, upd, t0)], clock
        NT = len(tiles)
        key = ts * NT + td
        ukey, inv = np.unique(key, return_inverse=True)
        G = len(ukey)
        g_head = np.full(G, np.inf)
        np.minimum.at(g_head, inv, head)
        g_tail = np.full(G, -np.inf)
        np.maximum.at(g_tail, inv, tail)
        g_n = np.bincount(inv, weights=n, minlength=G)
        first = np.full(G, len(src))
        np.minimum.at(first, inv, np.arange(len(src)))
        pkey, pinv = np.unique(inv.astype(np.int64) * (C + 1) + dst, return_inverse=True)
        p_n = np.bincount(pinv, weights=n)
        p_syn = np.bincount(pinv, weights=syn)
        p_g, p_dst = np.divmod(pkey, C + 1)
        bounds = np.searchsorted(p_g, np.arange(G + 1))
        tm = _TileMessages(ukey // NT, ukey % NT, g_head, g_tail, g_n, bounds, p_dst, p_n, p_syn,
                           src[first], upd[first], t0[first])
        if self.engine == "numba":
            return tm, clock
        out = []
        for g in range(G):
            a, b = bounds[g], bounds[g + 1]
            parts = list(zip(p_dst[a:b].tolist(), p_n[a:b].tolist(), p_syn[a:b].tolist()))
            out.append((int(tm.src[g]), tiles[tm.t0[g]], tiles[tm.t1[g]], float(g_head[g]), float(g_tail[g]),
                        float(g_n[g]), parts, float(tm.update[g]), float(tm.emit[g])))
        return out, clock

    def _tile_xy(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_tile_id"):
            C = len(self.pl.pos)
            xy = [self.tile_of(c) for c in range(-1, C)]
            uniq = sorted(set(xy))
            idx = {t: i for i, t in enumerate(uniq)}
            self._tile_id = np.array([idx[t] for t in xy])
            self._tiles = uniq
        if not hasattr(self, "_tx"):
            self._tx = np.array([x for x, _ in self._tiles], np.int64)
            self._ty = np.array([y for _, y in self._tiles], np.int64)
        return self._tx, self._ty

    @property
    def grid_w(self) -> int:
        return self.p.mesh_x * self.pl.chips_x

    @property
    def n_links(self) -> int:
        """Directed links, numbered ``(y * grid_w + x) * 4 + direction`` (E, W, N, S) from tile (x, y)."""
        return self.grid_w * self.p.mesh_y * self.pl.chips_y * 4

    def link_key(self, i: int) -> tuple:
        """The ``((x, y), (x1, y1))`` key of link number ``i`` (:attr:`n_links`)."""
        d, t = i % 4, i // 4
        x, y = t % self.grid_w, t // self.grid_w
        dx, dy = ((1, 0), (-1, 0), (0, 1), (0, -1))[d]
        return ((x, y), (x + dx, y + dy))

    def _route_csr(self, t0, t1):
        """:meth:`route_tiles` of tile pairs ``(t0[g], t1[g])`` (tile indices) in numpy, as CSR arrays:
        ``ptr`` [G + 1], link numbers (:attr:`n_links`) and hop times, each route X first, then Y."""
        p = self.p
        X, Y = self._tile_xy()
        x0, y0, x1, y1 = X[t0], Y[t0], X[t1], Y[t1]
        hx, hy = np.abs(x1 - x0), np.abs(y1 - y0)
        ptr = np.zeros(len(t0) + 1, np.int64)
        np.cumsum(hx + hy, out=ptr[1:])
        g = np.repeat(np.arange(len(t0)), hx + hy)
        j = np.arange(ptr[-1]) - ptr[g]
        isx = j < hx[g]
        sx, sy = np.sign(x1 - x0)[g], np.sign(y1 - y0)[g]
        cx = np.where(isx, x0[g] + sx * j, x1[g])
        cy = np.where(isx, y0[g], y0[g] + sy * (j - hx[g]))
        d = np.where(isx, np.where(sx > 0, 0, 1), np.where(sy > 0, 2, 3))
        if p.chip_links == "board":
            lo = np.where(isx, np.minimum(cx, cx + sx), np.minimum(cy, cy + sy))
            cross = (lo + 1) % np.where(isx, p.mesh_x, p.mesh_y) == 0
        else:
            cross = np.zeros(len(j), bool)
        t = np.where(cross, p.t_chip_ns, np.where(isx, p.t_hop_ew_ns, p.t_hop_ns_ns)).astype(np.float64)
        return ptr, ((cy * self.grid_w + cx) * 4 + d).astype(np.int64), t

    def flow_routes(self, src, dst):
        """Per flow (source core, destination core; -1 = the host): hops, E-W hops, N-S hops, chip
        crossings and hop energy (pJ) of its route (:meth:`route`), in numpy."""
        p = self.p
        X, Y = self._tile_xy()
        ta, tb = self._tile_id[np.asarray(src) + 1], self._tile_id[np.asarray(dst) + 1]
        x0, y0, x1, y1 = X[ta], Y[ta], X[tb], Y[tb]
        if p.chip_links == "board":
            cx = np.maximum(x0, x1) // p.mesh_x - np.minimum(x0, x1) // p.mesh_x
            cy = np.maximum(y0, y1) // p.mesh_y - np.minimum(y0, y1) // p.mesh_y
        else:
            cx = cy = np.zeros(len(ta), np.int64)
        ew, ns = np.abs(x1 - x0) - cx, np.abs(y1 - y0) - cy
        cross = cx + cy
        e = ew * p.e_hop_ew_pj + ns * p.e_hop_ns_pj + cross * p.e_chip_pj
        return (ew + ns + cross).astype(float), ew.astype(float), ns.astype(float), cross.astype(float), e

    def run_kernel(self, update_ns: dict[int, float], src, dst, n, syn):
        """:meth:`run` in tile mode without simpy: :func:`_tile_kernel` replays the same events in the order
        simpy processes them (tested equal to the simpy processes), about 100x faster."""
        tm, clock = self.messages_vec(update_ns, src, dst, n, syn)
        busy_send = {c: clock.get(c, u) for c, u in update_ns.items()}
        for c, t in clock.items():
            busy_send[c] = t
        last_t = max(busy_send.values(), default=0.0)
        c_last = max(busy_send, key=busy_send.get) if busy_send else None
        if isinstance(tm, list):  # no message this step
            path = None if c_last is None else {
                "kind": "send", "src": c_last, "dst": None, "update_ns": update_ns.get(c_last, 0.0),
                "send_ns": busy_send[c_last] - update_ns.get(c_last, 0.0), "network_ns": 0.0, "queue_ns": 0.0,
                "receive_ns": 0.0, "hops": 0, "end_ns": busy_send[c_last]}
            return last_t, busy_send, {}, {}, {}, path
        ptr, lid, lt = self._route_csr(tm.t0, tm.t1)
        C = len(self.pl.pos)
        out = _tile_kernel(tm.head, tm.tail, tm.n, ptr, lid, lt, tm.bounds, tm.p_dst.astype(np.int64), tm.p_n,
                           tm.p_syn, self.n_links, C, float(self.p.t_synop_ns), float(self.p.t_axon_in_ns),
                           float(last_t))
        busy_recv, got, busy_link, spikes_link, queued, hop_ns, win, end, events = out
        self.events += int(events)
        br = {int(c): float(busy_recv[c]) for c in np.flatnonzero(got)}
        used = np.unique(lid)
        bl = {self.link_key(i): float(busy_link[i]) for i in used.tolist()}
        sl = {self.link_key(i): float(spikes_link[i]) for i in used.tolist()}
        g, part, start, now, finish = int(win[0]), int(win[1]), win[2], win[3], win[4]
        if g < 0:
            path = None if c_last is None else {
                "kind": "send", "src": c_last, "dst": None, "update_ns": update_ns.get(c_last, 0.0),
                "send_ns": busy_send[c_last] - update_ns.get(c_last, 0.0), "network_ns": 0.0, "queue_ns": 0.0,
                "receive_ns": 0.0, "hops": 0, "end_ns": busy_send[c_last]}
        else:
            upd = float(tm.update[g])
            path = {"kind": "message", "src": int(tm.src[g]), "dst": int(tm.p_dst[part]), "update_ns": upd,
                    "send_ns": float(tm.emit[g]) + self.p.t_spike_ns - upd, "network_ns": float(hop_ns[g]),
                    "queue_ns": float(queued[g]) + (start - now), "receive_ns": finish - start,
                    "hops": int(ptr[g + 1] - ptr[g]), "end_ns": finish}
        return end, busy_send, br, bl, sl, path

    def run(self, update_ns: dict[int, float], flows):
        """``update_ns[core]``: neuron-update time; ``flows``: (src, dst, spikes, synops) tuples, or a tuple of
        four arrays (flows with spikes > 0). Returns
        ``(end_ns, send-unit busy ns, receive-unit busy ns, per-link busy ns, per-link spikes, critical path)``."""
        if self.engine == "numba" and isinstance(flows, tuple):
            return self.run_kernel(update_ns, *flows)
        import simpy

        env = simpy.Environment()
        p = self.p
        link_free: dict[tuple, float] = {}
        recv_free: dict[int, float] = {}
        busy_recv: dict[int, float] = {}
        busy_link: dict[tuple, float] = {}
        spikes_link: dict[tuple, float] = {}
        if self.exact or not isinstance(flows, tuple):
            if isinstance(flows, tuple):
                flows = list(zip(*(a.tolist() for a in flows)))
            msgs, clock = self.messages(update_ns, sorted(flows))
        else:
            msgs, clock = self.messages_vec(update_ns, *flows)
        busy_send = {c: clock.get(c, u) for c, u in update_ns.items()}
        for c, t in clock.items():
            busy_send[c] = t
        last = {"t": max(busy_send.values(), default=0.0), "path": None}
        if busy_send:
            c = max(busy_send, key=busy_send.get)
            last["path"] = {"kind": "send", "src": c, "dst": None, "update_ns": update_ns.get(c, 0.0),
                            "send_ns": busy_send[c] - update_ns.get(c, 0.0), "network_ns": 0.0,
                            "queue_ns": 0.0, "receive_ns": 0.0, "hops": 0, "end_ns": busy_send[c]}

        def deliver(m):
            src, t0, t1, head, tail, n, parts, upd, emit = m
            yield env.timeout(head)
            self.events += 1
            queued, hop_ns = 0.0, 0.0
            r = self.route_tiles(t0, t1)
            clock = env.now
            reserve = self.tile_level  # tile mode: the whole path is reserved at the head's injection
            for key, t, _, _ in r:
                now = clock if reserve else env.now
                start = max(now, link_free.get(key, 0.0))
                queued += start - now
                new_head = start + t
                link_free[key] = max(new_head, start + n * t, tail + t)
                busy_link[key] = busy_link.get(key, 0.0) + n * t
                spikes_link[key] = spikes_link.get(key, 0.0) + n
                tail = link_free[key]
                hop_ns += t
                if reserve:
                    clock = new_head
                else:
                    yield env.timeout(new_head - now)
                    self.events += 1
            if reserve and clock > env.now:
                yield env.timeout(clock - env.now)  # receive units still serve in arrival order
                self.events += 1
            now = env.now
            for dst, nd, syn in parts:
                per = (syn / nd if nd > 0 else 0.0) * p.t_synop_ns + p.t_axon_in_ns
                start = max(now, recv_free.get(dst, 0.0))
                finish = max(start + nd * per, tail + min(nd, 1.0) * per)
                recv_free[dst] = finish
                busy_recv[dst] = busy_recv.get(dst, 0.0) + nd * per
                if finish >= last["t"]:
                    last.update(t=finish, path={"kind": "message", "src": src, "dst": dst, "update_ns": upd,
                                                "send_ns": emit + p.t_spike_ns - upd, "network_ns": hop_ns,
                                                "queue_ns": queued + (start - now), "receive_ns": finish - start,
                                                "hops": len(r), "end_ns": finish})

        for m in msgs:
            env.process(deliver(m))
        env.run()
        end = max(last["t"], env.now)
        return end, busy_send, busy_recv, busy_link, spikes_link, last["path"]


# ---- the report ------------------------------------------------------------------------------------

@dataclass
class MeshReport(CostReport):
    """A :class:`~hw.report.CostReport` whose ``rows`` are timesteps, plus per-core and per-link tables."""

    cores: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    placement: Placement | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["steps"] = d.pop("ops")
        d["cores"] = [_clean(r) for r in self.cores]
        d["links"] = [_clean(r) for r in self.links]
        return d

    def heatmap(self, path) -> str:
        """A PNG of the mesh: per tile, the busiest core's busy time per inference (left) and the spikes
        routed through its outgoing links (right). Returns the path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pl = self.placement
        W, H = pl.params.mesh_x * pl.chips_x, pl.params.mesh_y * pl.chips_y
        busy = np.zeros((H, W))
        for r in self.cores:
            busy[r["y"], r["x"]] = max(busy[r["y"], r["x"]], r["busy_s"] * 1e6)
        traffic = np.zeros((H, W))
        for r in self.links:
            traffic[r["y0"], r["x0"]] += r["spikes"]
        fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.2 * W), 3 + 0.4 * H))
        for ax, data, title in ((axes[0], busy, "busiest core per tile: busy us / inference"),
                                (axes[1], traffic, "spikes leaving each router / inference")):
            im = ax.imshow(data, cmap="magma", origin="lower")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("tile x" + (f" ({pl.chips} chips)" if pl.chips > 1 else ""))
            ax.set_ylabel("tile y")
            fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle(f"{self.model} on {self.device} ({pl.mapping} mapping): "
                     f"{self.totals['latency_s'] * 1e6:.1f} us, {self.totals['energy_j'] * 1e6:.2f} uJ per inference",
                     fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return str(path)


def simulate(net, activity: Activity, chip: str = "loihi", *, mapping: str = "compact", mode: str = "aggregate",
             max_chips: int | None = None, model: str = "snn", heatmap: str | None = None,
             placement: Placement | None = None, engine: str = "auto", **params) -> MeshReport:
    """Simulate ``activity`` of ``net`` on ``chip`` (module docstring); returns a :class:`MeshReport` per
    inference (one sample's mean activity). ``params`` override :func:`chip_params` fields. ``engine``:
    ``simpy`` runs every mode as simpy processes; ``auto`` (default) replays tile mode's events with a
    numba kernel in the order simpy serves them (:func:`_tile_kernel`; equal to simpy, tested) and runs
    the other modes in simpy."""
    if mode not in MODES:
        raise NeurosimError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    if engine not in ENGINES:
        raise NeurosimError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    p = chip_params(chip, **params)
    pl = replace(placement, params=p) if placement is not None else place(net, chip, mapping, params=p,
                                                                          max_chips=max_chips)
    exact = mode == "exact"
    tr = _traffic(net, pl, activity)
    n_msgs = int((tr.spikes > 0).sum())
    tile_level = mode == "tile" or (mode == "auto" and n_msgs > AUTO_MESSAGES)
    used_mode = "exact" if exact else "tile" if tile_level else "aggregate"
    if exact:
        bad = max(np.abs(r - np.round(r)).max(initial=0.0) for r in activity.rates.values())
        if bad > 1e-9:
            raise NeurosimError("exact mode needs whole spike counts (a raster of one sample); this activity is "
                                "a mean over samples: use mode='aggregate'")
    T, C = activity.timesteps, pl.n_cores
    n_neurons = np.asarray(pl.neurons_of, np.float64)
    src, dst = tr.flows[:, 0], tr.flows[:, 1]
    recv_spk = np.zeros((T, C))
    np.add.at(recv_spk.T, dst, tr.spikes.T)
    frac_active = np.minimum(recv_spk, 1.0)
    n_active = frac_active * n_neurons
    n_idle = n_neurons - n_active
    update_ns = n_active * p.t_active_ns + n_idle * p.t_idle_ns  # [T, C]
    stepper = _Step(pl, exact, tile_level, "numba" if engine == "auto" and tile_level else "simpy")
    hops, ew, ns, cross, e_hop = stepper.flow_routes(src, dst)
    used_tiles = {pl.tile(c) for c in range(C)}
    barrier = p.barrier_ns(len(used_tiles), pl.chips, pl.chips_x)
    rows, core_busy, core_recv, link_busy, link_spk, crit = [], np.zeros(C), np.zeros(C), {}, {}, []
    t0 = time.perf_counter()
    for t in range(T):
        on = tr.spikes[t] > 0
        flows = (src[on], dst[on], tr.spikes[t, on], tr.synops[t, on])
        end, bc, br, bl, sl, path = stepper.run({c: float(update_ns[t, c]) for c in range(C)}, flows)
        for c, v in bc.items():
            if c >= 0:
                core_busy[c] += v
        for c, v in br.items():
            core_recv[c] += v
        for k, v in bl.items():
            link_busy[k] = link_busy.get(k, 0.0) + v
            link_spk[k] = link_spk.get(k, 0.0) + sl[k]
        step_ns = end + barrier
        syn = float(tr.synops[t].sum())
        msgs = float(tr.spikes[t].sum())
        e_syn = syn * p.e_synop_pj
        e_neu = float(n_active[t].sum() * p.e_active_pj + n_idle[t].sum() * p.e_idle_pj)
        e_net = float((tr.spikes[t] * (p.e_spike_pj + e_hop)).sum())
        e_sta = pl.chips * p.static_power_mw * 1e-3 * step_ns * 1e-9 * 1e12
        umax = max((v / end for v in bl.values()), default=0.0) if end > 0 else 0.0
        both = {c: max(bc.get(c, 0.0), br.get(c, 0.0)) for c in set(bc) | set(br)}
        busiest = max(both, key=both.get) if both else None  # -1: the host input
        rows.append({"step": t, "latency_s": step_ns * 1e-9, "compute_s": end * 1e-9, "barrier_s": barrier * 1e-9,
                     "synops": syn, "messages": msgs, "spike_hops": float((tr.spikes[t] * hops).sum()),
                     "energy_j": (e_syn + e_neu + e_net + e_sta) * 1e-12, "energy_synaptic_j": e_syn * 1e-12,
                     "energy_neuron_j": e_neu * 1e-12, "energy_network_j": e_net * 1e-12,
                     "energy_static_j": e_sta * 1e-12, "max_link_util": umax,
                     "bottleneck_core": busiest,
                     "critical_path": _describe(path, pl, barrier)})
        crit.append(path)
    wall = time.perf_counter() - t0
    lat = sum(r["latency_s"] for r in rows)
    energy = {k: sum(r[k] for r in rows) for k in ("energy_j", "energy_synaptic_j", "energy_neuron_j",
                                                    "energy_network_j", "energy_static_j")}
    cores = []
    for c in range(C):
        ch, x, y, slot = pl.pos[c]
        cores.append({"core": c, "layer": pl.layer_of[c], "neurons": pl.neurons_of[c], "chip": ch, "x": x, "y": y,
                      "slot": slot, "send_busy_s": core_busy[c] * 1e-9, "receive_busy_s": core_recv[c] * 1e-9,
                      "busy_s": max(core_busy[c], core_recv[c]) * 1e-9,
                      "util": max(core_busy[c], core_recv[c]) * 1e-9 / lat if lat else 0.0,
                      "spikes_received": float(recv_spk[:, c].sum()),
                      "synops": float(tr.synops[:, dst == c].sum())})
    links = [{"x0": k[0][0], "y0": k[0][1], "x1": k[1][0], "y1": k[1][1], "spikes": link_spk[k],
              "busy_s": v * 1e-9, "util": v * 1e-9 / lat if lat else 0.0} for k, v in sorted(link_busy.items())]
    bott = max(cores, key=lambda r: r["busy_s"]) if cores else None
    sent = float(tr.spikes.sum())
    received = float(recv_spk.sum())
    totals = {
        "timesteps": T, "samples": activity.samples, "cores": C, "chips": pl.chips, "tiles_used": len(used_tiles),
        "latency_s": lat, "step_s_mean": lat / T, "step_s_max": max(r["latency_s"] for r in rows),
        "barrier_s": barrier * 1e-9, **energy,
        "energy_per_synop_j": energy["energy_j"] / float(tr.synops.sum()) if tr.synops.sum() else float("nan"),
        "synops": float(tr.synops.sum()), "messages_sent": sent, "messages_received": received,
        "spike_hops": float((tr.spikes * hops[None]).sum()), "hops_ew": float((tr.spikes * ew[None]).sum()),
        "hops_ns": float((tr.spikes * ns[None]).sum()), "chip_crossings": float((tr.spikes * cross[None]).sum()),
        "mean_hops": float((tr.spikes * hops[None]).sum() / sent) if sent else 0.0,
        "max_link_util": max((r["util"] for r in links), default=0.0),
        "bottleneck_core": bott["core"] if bott else None, "bottleneck_layer": bott["layer"] if bott else None,
        "bottleneck_util": bott["util"] if bott else None,
        "sim_events": stepper.events, "sim_wall_s": wall,
        "events_per_s": stepper.events / wall if wall > 0 else float("nan"),
    }
    assumptions = {"mode": used_mode, "engine": stepper.engine, "mapping": pl.mapping, "activity": activity.source,
                   **{k: getattr(p, k) for k in MeshParams.__dataclass_fields__ if k not in ("sources", "chip", "name")},
                   "sources": p.sources}
    notes = [n for n in pl.notes if not n.startswith(f"{pl.chips} chips in a ")]
    if pl.chips > 1:
        notes.append(_chip_note(pl.chips, pl.chips_x, p))  # the parameters simulated, not those placed with
    if tile_level:
        notes.append(f"tile mode: {n_msgs:,} core-pair messages bundled per (source tile, destination tile, step) for "
                     "speed; energies and counts are exact, step times approximate the core-pair model")
    if p.chip == "loihi2":
        notes.append(p.sources["borrowed"])
    rep = MeshReport(model=model, device=chip, family="neuromorphic", mode="inference", rows=rows, totals=totals,
                     assumptions=assumptions, notes=notes, cores=cores, links=links, placement=pl)
    if heatmap:
        rep.heatmap(heatmap)
    return rep


def _describe(path, pl: Placement, barrier_ns: float) -> str:
    if not path:
        return f"barrier {barrier_ns:.0f} ns"
    name = lambda c: "host" if c == INPUT_CORE else f"core {c} ({pl.layer_of[c]})"  # noqa: E731
    s = f"{name(path['src'])}: update {path['update_ns']:.0f} ns + send {path['send_ns']:.0f} ns"
    if path["kind"] == "message":
        s += (f" -> {path['hops']} hop(s) {path['network_ns']:.0f} ns (+{path['queue_ns']:.0f} ns queued)"
              f" -> {name(path['dst'])}: synops {path['receive_ns']:.0f} ns")
    return s + f" -> barrier {barrier_ns:.0f} ns"


def run(net, inputs, timesteps: int, chip: str = "loihi", *, mapping: str = "compact", mode: str = "aggregate",
        backend: str = "snntorch", seed: int = 0, max_chips: int | None = None, heatmap: str | None = None,
        model: str = "snn", **params) -> tuple[MeshReport, Any]:
    """Run ``net`` on ``inputs`` (recording per-step spikes), then :func:`simulate` the chip on the mean
    activity. Returns ``(report, SimResult)``."""
    res = net.run(inputs, timesteps, backend=backend, seed=seed, record_step_counts=True, record_counts=True)
    act = activity_from_simresult(res, net, inputs)
    rep = simulate(net, act, chip, mapping=mapping, mode=mode, max_chips=max_chips, model=model, heatmap=heatmap,
                   **params)
    return rep, res
