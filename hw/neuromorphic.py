"""Neuromorphic cost from spiking activity: synaptic ops, neuron updates and spike traffic per timestep.

Two entry points share one model:

* :func:`cost_from_activity` takes activity counts directly - per layer ``neurons``, ``synapses``, ``synops``
  and ``spikes`` summed over ``timesteps`` for ONE sample - so a spiking simulator's result (``SimResult``:
  synops per layer, spike counts, neuron counts, timesteps) plugs in as plain numbers;
  :func:`cost_from_simresult` does that conversion for ``neurosim.ir.SimResult``.
* :func:`cost_from_workload` estimates that activity from an ANN :class:`~hw.workload.Workload` until a
  converted SNN exists, with a stated firing-rate assumption you can set: for every conv/linear op,

      synops  = MACs x input_rate x timesteps       (each input spike drives its fan-out synapses)
      spikes  = neurons x firing_rate x timesteps    (neurons = the op's output elements)

  Other ops (norms, softmax, attention score products, pooling, embeddings) have no synaptic mapping; the
  report lists them. Defaults: ``firing_rate = 0.1`` spikes per neuron per step and ``timesteps = 32`` -
  assumptions, not measurements (rate-converted CNNs typically need tens to hundreds of steps, Rueckauer
  et al. 2017, Front. Neurosci. 11:682).

The model, per sample:

    E = synops x e_synop + neurons x T x e_neuron_update + spikes x (e_spike + hops x e_hop) + E_static
    E_static = chips x static_power x latency          (Loihi: measured static power)
             = chips x chip_power x latency            (only when no per-event energy is published: SpiNNaker)
    step     = the chip's real-time tick where it has one (TrueNorth, SpiNNaker: 1 ms)
             = max over layers (synops/core x t_synop + neurons/core x t_neuron) + barrier sync   (Loihi)
    latency  = batch x timesteps x step                 (samples run one after another)

Capacity: a layer takes ``max(neurons / neurons_per_core, synapses / synapses_per_core)`` cores (cores hold
one layer's neurons); ``chips = ceil(cores / cores_per_chip)``. Conv synapses are unrolled per connection
(= MACs per sample) unless ``weight_sharing=True``. Spikes travel ``mean_hops`` router hops: by default the
mean Manhattan distance between two random tiles of a square mesh, ``2 (k^2 - 1) / 3k`` for ``k^2`` tiles.
All neuron updates are counted as active (a conservative choice; Loihi's idle update is 52 vs 81 pJ).

The simulated alternative: :func:`simulate_mesh` (``hw.neuromorphic_mesh``) places the network on the
cores of a Loihi-class mesh and replays its measured per-step spikes event by event in simpy (per-hop
latency and energy, link contention, barrier per step), for where this estimate is not enough.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

from neurosim.errors import NeurosimError

DEFAULT_FIRING_RATE = 0.1
DEFAULT_TIMESTEPS = 32
MAPPED_KINDS = ("conv", "linear")
_ENERGY_FIELDS = ("e_synop_pj", "e_neuron_update_pj", "e_spike_pj", "e_hop_pj")
_TIME_FIELDS = ("t_synop_ns", "t_neuron_update_ns", "barrier_sync_ns")


def mean_mesh_hops(tiles: int | None) -> float:
    """Mean Manhattan distance between two uniformly random tiles of a square ``k x k`` mesh: 2(k^2-1)/(3k)."""
    if not tiles or tiles <= 1:
        return 0.0
    k = math.sqrt(tiles)
    return 2 * (k * k - 1) / (3 * k)


def activity_from_workload(workload, *, firing_rate: float = DEFAULT_FIRING_RATE, timesteps: int = DEFAULT_TIMESTEPS,
                           input_rate: float | None = None, weight_sharing: bool = False) -> tuple[list[dict], list[str]]:
    """Per-layer activity (one sample, summed over ``timesteps``) estimated from an ANN workload.

    Returns ``(layers, unmapped)``: the layer dicts :func:`cost_from_activity` takes, and a description of
    the ops that have no synaptic mapping.
    """
    from hw.specs import BYTES_PER_ELEMENT, canonical_precision

    _check_rate("firing_rate", firing_rate)
    rin = firing_rate if input_rate is None else _check_rate("input_rate", input_rate)
    if int(timesteps) < 1:
        raise NeurosimError(f"timesteps must be a positive integer, got {timesteps}")
    b = max(int(workload.batch), 1)
    elt = BYTES_PER_ELEMENT[canonical_precision(workload.dtype)]
    layers, unmapped = [], {}
    for op in workload.ops:
        if op.kind not in MAPPED_KINDS or op.param_bytes == 0:
            if op.kind not in ("memory",) and op.flops > 0:
                unmapped[op.kind] = unmapped.get(op.kind, 0) + 1
            continue
        macs = op.macs / b
        neurons = math.prod(op.output_shape) / b
        synapses = op.param_bytes / elt if weight_sharing else macs
        layers.append({"name": op.name or "(root)", "kind": op.kind, "neurons": neurons, "synapses": synapses,
                       "synops": macs * rin * timesteps, "spikes": neurons * firing_rate * timesteps})
    notes = [f"{n} {k} op(s) have no synaptic mapping and are not costed" for k, n in sorted(unmapped.items())]
    return layers, notes


def activity_from_simresult(result, synapses: dict[str, float] | None = None) -> tuple[list[dict], int, int]:
    """Per-layer activity from a spiking simulator's result (``neurosim.ir.SimResult`` or anything with its fields).

    Reads ``neurons`` (per sample) and ``spike_counts`` (over the batch and all steps) per population,
    ``synops`` (per sample, all steps) per synaptic node, ``timesteps`` and ``batch``. Each synaptic
    node's synops go to the population it drives, as ``synapse_targets`` names it (the graph, filled by
    ``SpikingNetwork.run``); synaptic nodes without a population (the readout layer) or results without
    targets keep their synops in a layer of their own, so totals stay exact either way.
    ``synapses`` optionally gives each synaptic node's synapse count for the capacity model.
    Returns ``(layers, timesteps, batch)`` for :func:`cost_from_activity`.
    """
    batch = max(int(getattr(result, "batch", 1) or 1), 1)
    T = int(result.timesteps)
    synapses = synapses or {}
    targets = getattr(result, "synapse_targets", None) or {}
    layers = {name: {"name": name, "kind": "population", "neurons": float(n),
                     "spikes": float(result.spike_counts.get(name, 0.0)) / batch, "synops": 0.0, "synapses": 0.0}
              for name, n in result.neurons.items()}
    sources: dict[str, list[str]] = {}
    unpaired = []
    for sname, so in result.synops.items():
        layer = layers.get(targets.get(sname))
        if layer is None:
            unpaired.append({"name": sname, "kind": "synapses", "neurons": 0.0, "spikes": 0.0,
                             "synops": float(so), "synapses": float(synapses.get(sname, 0.0))})
            continue
        layer["synops"] += float(so)
        layer["synapses"] += float(synapses.get(sname, 0.0))
        sources.setdefault(layer["name"], []).append(sname)
    for name, srcs in sources.items():
        layers[name]["kind"] = f"{'+'.join(srcs)} -> {name}"
    return list(layers.values()) + unpaired, T, batch


def cost_from_simresult(result, spec, *, synapses: dict[str, float] | None = None, model: str = "snn", **options):
    """Cost a spiking simulation's measured activity on ``spec``: :func:`activity_from_simresult` then
    :func:`cost_from_activity` (``options`` as there)."""
    layers, T, batch = activity_from_simresult(result, synapses)
    notes = [f"activity measured by the {getattr(result, 'backend', '') or 'spiking'} simulator "
             f"({T} steps, batch {batch})"]
    return cost_from_activity(spec, layers, timesteps=T, batch=batch, model=model, notes=notes, **options)


def _check_rate(name, r) -> float:
    r = float(r)
    if not 0.0 <= r <= 1.0:
        raise NeurosimError(f"{name} must be in [0, 1] spikes per neuron per timestep, got {r}")
    return r


def _params(spec, names: Iterable[str], overrides: Mapping[str, float], notes: list[str]) -> dict[str, float | None]:
    """The chip's per-event constants, falling back to its ``energy_proxy`` chip (noted) and user overrides."""
    import hw

    proxy = hw.get(spec.energy_proxy) if spec.energy_proxy else None
    out, proxied = {}, []
    for f in names:
        v = overrides.get(f, getattr(spec, f, None))
        if v is None and proxy is not None and getattr(proxy, f, None) is not None:
            v = getattr(proxy, f)
            proxied.append(f)
        out[f] = v
    if proxied:
        notes.append(f"{spec.key} publishes no {', '.join(proxied)}; using {proxy.key}'s ({proxy.source(proxied[0]) or proxy.name})"
                     " as a stand-in - see the catalog's energy_proxy note")
    return out


def cost_from_activity(spec, layers: list[Mapping], *, timesteps: int, batch: int = 1, model: str = "snn",
                       mean_hops: float | None = None, timestep_us: float | None = None,
                       notes: list[str] | None = None, extra_assumptions: dict | None = None, **overrides):
    """Cost spiking activity on neuromorphic chip ``spec`` (a catalog entry or its name).

    ``layers``: dicts with ``neurons``, ``synops`` and ``spikes`` (summed over ``timesteps``, one sample), and
    optionally ``name``, ``kind`` and ``synapses`` (defaults to 0: no capacity check for that layer).
    ``overrides`` may set any per-event constant (``e_synop_pj=``, ``t_synop_ns=``, ``static_power_mw=``,
    ``chip_power_w=`` ...). Returns a :class:`hw.report.CostReport`.
    """
    import hw
    from hw.report import CostReport

    if isinstance(spec, str):
        spec = hw.get(spec)
    if spec.family != "neuromorphic":
        raise NeurosimError(f"{spec.key} is a {spec.family}, not a neuromorphic chip")
    allowed = set(_ENERGY_FIELDS + _TIME_FIELDS + ("static_power_mw", "chip_power_w", "neurons_per_core", "synapses_per_core"))
    bad = sorted(set(overrides) - allowed)
    if bad:
        raise NeurosimError(f"unknown neuromorphic option(s) {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")
    T = int(timesteps)
    if T < 1 or int(batch) < 1:
        raise NeurosimError(f"timesteps and batch must be positive integers, got {timesteps}, {batch}")
    notes = list(notes or [])
    e = _params(spec, _ENERGY_FIELDS, overrides, notes)
    t = _params(spec, _TIME_FIELDS, overrides, notes)
    static_mw = overrides.get("static_power_mw", spec.static_power_mw)
    chip_w = overrides.get("chip_power_w", spec.chip_power_w)
    npc = overrides.get("neurons_per_core", spec.neurons_per_core)
    spc = overrides.get("synapses_per_core", spec.synapse_capacity_per_core())
    hops = mean_mesh_hops(spec.tiles) if mean_hops is None else float(mean_hops)
    tick_us = timestep_us if timestep_us is not None else spec.timestep_us

    rows, cores_total, layer_step_s = [], 0, []
    for i, L in enumerate(layers):
        n, syn, so, sp = (float(L.get(k, 0.0)) for k in ("neurons", "synapses", "synops", "spikes"))
        if min(n, syn, so, sp) < 0:
            raise NeurosimError(f"layer {L.get('name', i)}: activity counts must be >= 0")
        cores = max(math.ceil(n / npc) if npc else 0, math.ceil(syn / spc) if (spc and syn) else 0, 1)
        cores_total += cores
        e_syn = so * e["e_synop_pj"] if e["e_synop_pj"] is not None else float("nan")
        e_neu = n * T * (e["e_neuron_update_pj"] or 0.0)
        e_spk = sp * ((e["e_spike_pj"] or 0.0) + hops * (e["e_hop_pj"] or 0.0))
        step = float("nan")
        if t["t_synop_ns"] is not None:
            step = (so / T / cores * t["t_synop_ns"] + n / cores * (t["t_neuron_update_ns"] or 0.0)) * 1e-9
        layer_step_s.append(step)
        rows.append({"layer": L.get("name", f"layer{i}"), "kind": L.get("kind", ""), "neurons": n, "synapses": syn,
                     "cores": cores, "synops": so, "spikes": sp, "neuron_updates": n * T,
                     "energy_j": (e_syn + e_neu + e_spk) * 1e-12 * batch, "step_time_s": step})
    chips = math.ceil(cores_total / spec.cores) if rows else 0

    if tick_us is not None:
        step_s, step_src = tick_us * 1e-6, f"real-time tick of {tick_us:g} us"
        compute = max(layer_step_s, default=float("nan"))
        if math.isfinite(compute) and compute > step_s:
            notes.append(f"per-step processing ({compute * 1e6:.1f} us) exceeds the {tick_us:g} us tick: not real-time")
    elif t["t_synop_ns"] is not None:
        step_s = max(layer_step_s, default=0.0) + (t["barrier_sync_ns"] or 0.0) * 1e-9
        step_src = "slowest core's synaptic + neuron work per step, plus barrier sync"
    else:
        step_s, step_src = float("nan"), "no timing published"
        notes.append(f"{spec.key}: no per-op timing or tick published; latency is NaN unless timestep_us= is given")
    latency = batch * T * step_s

    dynamic = sum(r["energy_j"] for r in rows)
    if e["e_synop_pj"] is not None:
        static = chips * (static_mw or 0.0) * 1e-3 * latency if not spec.static_included else 0.0
        energy_src = "per-event energies" + (" + static power x time" if static_mw and not spec.static_included else "")
        if spec.static_included:
            energy_src += " (static power already included in the per-event figure)"
    elif chip_w is not None:
        dynamic, static = 0.0, chips * chip_w * latency
        energy_src = "chip power x wall time (no per-event energy published)"
    else:
        dynamic = static = float("nan")
        energy_src = "none published"
        notes.append(f"{spec.key}: no per-event energy or chip power published; energy is NaN unless e_synop_pj= "
                     "or chip_power_w= is given")
    energy = dynamic + static
    syn_total = sum(r["synops"] for r in rows)
    totals = {
        "timesteps": T, "batch": int(batch), "synops": syn_total * batch, "spikes": sum(r["spikes"] for r in rows) * batch,
        "neuron_updates": sum(r["neuron_updates"] for r in rows) * batch, "neurons": sum(r["neurons"] for r in rows),
        "synapses": sum(r["synapses"] for r in rows), "cores": cores_total, "chips": chips,
        "step_s": step_s, "latency_s": latency, "bound_s": float("nan"),
        "throughput_samples_s": batch / latency if latency and math.isfinite(latency) else float("nan"),
        "energy_j": energy, "energy_dynamic_j": dynamic, "energy_static_j": static,
        "energy_per_sample_j": energy / batch, "energy_per_synop_j": energy / (syn_total * batch) if syn_total else float("nan"),
    }
    assumptions = {"mean_hops": hops, "step_source": step_src, "energy_source": energy_src,
                   "neurons_per_core": npc, "synapses_per_core": spc, "static_power_mw": static_mw,
                   "chip_power_w": chip_w, **{k: v for k, v in {**e, **t}.items()}, **(extra_assumptions or {})}
    return CostReport(model=model, device=spec.key, family=spec.family, mode="inference", rows=rows,
                      totals=totals, assumptions=assumptions, notes=notes)


def cost_from_workload(workload, spec, *, firing_rate: float = DEFAULT_FIRING_RATE, timesteps: int = DEFAULT_TIMESTEPS,
                       input_rate: float | None = None, weight_sharing: bool = False, precision: str | None = None,
                       **options):
    """Cost an ANN workload as a rate-coded SNN on ``spec`` (see the module docstring for the assumption).

    ``precision`` is accepted for a uniform call signature and ignored beyond a note: the chip's own weight
    precision (``weight_bits``) applies.
    """
    layers, notes = activity_from_workload(workload, firing_rate=firing_rate, timesteps=timesteps,
                                           input_rate=input_rate, weight_sharing=weight_sharing)
    if not layers:
        raise NeurosimError(f"{workload.model}: no conv/linear layers to map onto {spec.key}")
    if precision is not None:
        notes.append(f"precision={precision} ignored: {spec.key} uses {spec.weight_bits or '?'}-bit weights")
    return cost_from_activity(spec, layers, timesteps=timesteps, batch=workload.batch, model=workload.model, notes=notes,
                              extra_assumptions={"firing_rate": firing_rate, "input_rate": input_rate if input_rate is not None
                                                 else firing_rate, "weight_sharing": weight_sharing}, **options)


def simulate_mesh(net, inputs=None, timesteps: int = DEFAULT_TIMESTEPS, chip: str = "loihi", *, activity=None,
                  **options):
    """The simulated alternative to :func:`cost_from_simresult`: :func:`hw.neuromorphic_mesh.run` (runs
    ``net`` on ``inputs`` and simulates the chip) or, given ``activity`` (a ``neuromorphic_mesh.Activity``),
    :func:`hw.neuromorphic_mesh.simulate`. Returns a ``MeshReport`` (a :class:`~hw.report.CostReport`)."""
    from hw import neuromorphic_mesh

    if activity is not None:
        return neuromorphic_mesh.simulate(net, activity, chip, **options)
    if inputs is None:
        raise NeurosimError("simulate_mesh needs inputs (to run the network) or an activity")
    return neuromorphic_mesh.run(net, inputs, timesteps, chip, **options)[0]
