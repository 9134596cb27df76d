"""Per-operator placement and cost of a converted network on Loihi / Loihi 2 (issue 13: spiking Transformers).

:func:`map_operators` says, for every IR node, **where** a Loihi-class system would run it and **what
travels on its output**; :func:`cost_operators` prices a real run's measured activity
(:class:`~neurosim.ir.SimResult`) with a counting rule per operator in which the product of two spike
streams is work done by a processor, not a free synaptic addition. ``neurosim loihi-map NET.npz`` prints
the map for a network with Transformer operators; ``neurosim snn-cost NET.npz`` prints the cost beside the
ANN on a GPU and a TPU.

What the chips can do (the sources the placement rests on):

* **Loihi 2 neuro cores** run neuron models written in microcode and send *graded spikes* (an integer
  payload per spike); a synapse scales the payload by its weight. Sources: Orchard et al., "Efficient
  Neuromorphic Signal Processing with Loihi 2", SiPS 2021 (arXiv:2111.03746: programmable neuron
  dynamics); Shrestha et al., "Efficient Video and Audio Processing with Loihi 2", ICASSP 2024
  (arXiv:2310.03251: sigma-delta neurons and integer-valued spikes on feed-forward and conv nets);
  Intel's Loihi 2 technology brief (2021: 128 neuro cores and 6 embedded x86 cores per chip, graded
  spikes, microcoded neurons); lava-dl 0.3.0 release notes (graded spikes and convolutional weight
  compression used for inference on Loihi 2). Synaptic weights are static state of a core between
  learning epochs (the three-factor learning engine updates them, not the spike path).
* **Loihi 2 embedded x86 cores** ("Lakemont", 6 per chip) run C code for data I/O, encoding/decoding
  and management (Intel brief; open-neuromorphic.org's Loihi 2 page; Lava runs "custom C code on the
  LMTs"). Whatever the neuro cores cannot compute goes there or to the host.
* **Loihi 1** spikes carry one bit (Davies et al., IEEE Micro 2018; Ars Technica's 2021 comparison of
  the two chips: "the original processor's spikes only carried a single bit"); it has 3 x86 cores.

The placement per IR node (``where``), for Loihi 2:

======================  ==============================================  ============================
node                    Loihi 2                                          output
======================  ==============================================  ============================
Neurons                 neuro cores: microcoded IF, subtractive reset    binary spikes (signed:
                                                                         ternary, a +-1 payload)
Linear, TokenLinear,    neuro cores: synapses; graded input -> graded    a current; where its reader
Conv2d                  spikes scale the weights; output compartments    is not a population, graded
                        of their own where no population reads them      spikes of relay compartments
                        (sigma-delta style relays)
Add, Reshape,           routing: dendritic sums of the receiving         what the inputs carry
Transpose, Slice,       compartments and axon addressing; no cores
Concat, Flatten
Constant                a bias of the receiving compartments             (a constant current)
Embedding               host: the input encoding (token ids -> rows)     graded, every step
MatMul (two streams)    x86 cores or host: no neuro-core primitive       graded, dense
                        multiplies two dynamic streams (each step's
                        weights would be the other operand's running
                        sums)
Softmax, LayerNorm,     x86 cores or host: exp, division, rsqrt,         graded, dense
Activation (GELU ...)   erf are not neuro-core operations
======================  ==============================================  ============================

On Loihi 1 every node whose input or output is graded or ternary is marked unsupported (binary
spikes only); its binary populations and the synapses they drive are supported.

Cores for what maps on neuro cores: per node, ``max(ceil(compartments / neurons_per_core),
ceil(synapses x weight_bits / synaptic bits per core))`` with the catalog's limits (``hw.get``); a
token-wise Linear's synapses are unrolled per token (``tokens x in x out``, the conservative count;
Loihi 2's weight sharing would store ``in x out``, reported as ``shared_synapses``). This is a capacity
bound per operator, not a placement: ``neurosim.loihi.resources.map_network`` places plain SNNs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neurosim.errors import NeurosimError

NEURO, ROUTING, BIAS, HOST, X86 = "neuro cores", "routing", "bias", "host", "x86 cores or host"
_ROUTING_KINDS = ("Add", "Reshape", "Transpose", "Slice", "Concat", "Flatten")
_SYNAPTIC_KINDS = ("Linear", "TokenLinear", "Conv2d")
_PROCESSOR_KINDS = ("MatMul", "Softmax", "LayerNorm", "Activation")
_POOL_KINDS = ("AvgPool2d", "SumPool2d", "SpikeMaxPool2d")


def carries(net, name: str) -> str:
    """What travels on node ``name``'s output: ``binary``, ``ternary`` (spikes with a +-1 payload, or a
    +/- pair of binary trains summed), ``graded`` (a real value every step), ``current`` (a synaptic
    current, consumed where it arrives) or ``constant``."""
    from neurosim.ir import INPUT

    memo: dict[str, str] = {}

    def rec(k: str) -> str:
        if k in memo:
            return memo[k]
        if k == INPUT:
            out = "binary" if net.encoding.kind == "poisson" else "graded"
            if net.encoding.kind == "poisson" and signed_input(net):
                out = "ternary"
            return out
        n = net.nodes[k]
        kind = n.kind
        if kind == "Neurons":
            out = "ternary" if n.signed else "binary"
        elif kind == "SpikeMaxPool2d":
            out = rec(n.inputs[0])
        elif kind == "Constant":
            out = "constant"
        elif kind in _SYNAPTIC_KINDS or kind in ("AvgPool2d", "SumPool2d"):
            out = "current"
        elif kind in ("Reshape", "Transpose", "Slice", "Flatten"):
            out = rec(n.inputs[0])
        elif kind in ("Add", "Concat"):
            ins = [rec(i) for i in n.inputs]
            if all(c in ("binary", "ternary") for c in ins):
                # a +/- pair (weights of both signs) of binary trains is a ternary stream
                signs = set()
                if kind == "Add":
                    for w in n.weights:
                        signs |= set(np.sign(np.asarray(w)).ravel().tolist())
                out = "ternary" if ("ternary" in ins or {-1.0, 1.0} <= signs) else "binary"
            elif "graded" in ins:
                out = "graded"
            elif all(c == "constant" for c in ins):
                out = "constant"
            else:  # currents, constants and spikes summed in a dendrite
                out = "current"
        else:  # Embedding and the operators on accumulated input
            out = "graded"
        memo[k] = out
        return out

    return rec(name)


def signed_input(net) -> bool:
    return net.encoding.kind == "poisson"  # the encoder's +-1 spikes (host side)


@dataclass
class OperatorRow:
    node: str
    kind: str
    carries: str  # what its output carries
    reads: str  # what its (first) input carries
    where: str  # on this chip
    supported: bool
    compartments: int
    synapses: int
    shared_synapses: int
    cores: int
    ops_per_step: float  # processor operations per step and sample (x86/host nodes), module docstring
    why: str = ""


@dataclass
class OperatorMap:
    """Per-node placement on one chip (``to_dataframe()`` / ``to_dict()`` for the CLI)."""

    chip: str
    chip_name: str
    rows: list[OperatorRow]
    cores_per_chip: int
    x86_cores_per_chip: int
    limits: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    @property
    def cores(self) -> int:
        return sum(r.cores for r in self.rows)

    @property
    def chips(self) -> int:
        return max(1, math.ceil(self.cores / self.cores_per_chip))

    @property
    def supported(self) -> bool:
        return all(r.supported for r in self.rows)

    def unsupported(self) -> list[OperatorRow]:
        return [r for r in self.rows if not r.supported]

    def summary(self) -> list[dict]:
        """One row per (node kind, placement): nodes, compartments, synapses, cores, x86 ops per step."""
        out: dict[tuple, dict] = {}
        for r in self.rows:
            key = (r.kind, r.where, r.carries, r.supported)
            s = out.setdefault(key, {"chip": self.chip, "kind": r.kind, "where": r.where, "carries": r.carries,
                                     "supported": r.supported, "nodes": 0, "compartments": 0, "synapses": 0,
                                     "cores": 0, "ops_per_step": 0.0})
            s["nodes"] += 1
            s["compartments"] += r.compartments
            s["synapses"] += r.synapses
            s["cores"] += r.cores
            s["ops_per_step"] += r.ops_per_step
        return list(out.values())

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([{"chip": self.chip, **r.__dict__} for r in self.rows])

    def to_dict(self) -> dict:
        return {"chip": self.chip, "chip_name": self.chip_name, "cores": self.cores, "chips": self.chips,
                "cores_per_chip": self.cores_per_chip, "x86_cores_per_chip": self.x86_cores_per_chip,
                "supported": self.supported, "limits": self.limits, "sources": self.sources,
                "summary": self.summary(), "operators": [r.__dict__ for r in self.rows]}


def has_processor_ops(net) -> bool:
    """True when ``net`` holds an operator a neuro core cannot run (a Transformer operator)."""
    from neurosim.ir.nodes import TRANSFORMER_NODES

    return any(type(n).__name__ in TRANSFORMER_NODES for n in net.nodes.values())


# processor operations per output element and step (adds, multiplies, memory accesses); the counting
# rule of the module docstring and docs/transformers.md ("Cost")
PROCESSOR_OPS = {
    # accumulate S (1 add), mean S/t (1 mul), exp as a degree-7 polynomial (8 mul + 8 add), row sum (1 add),
    # normalise (1 mul by the reciprocal), x t (1 mul), difference g_t - g_{t-1} (1 add); S and g read/written
    "Softmax": (11, 12, 4),
    # accumulate (1 add), /t (1 mul), mean and variance (2 add, 1 mul), normalise (1 add, 1 mul), affine
    # (1 add, 1 mul), x t (1 mul), difference (1 add); the per-row rsqrt is amortised over D
    "LayerNorm": (6, 5, 4),
    # accumulate (1 add), /t (1 mul), f (erf/exp by a degree-7 polynomial: 8 mul + 8 add), x t, difference
    "Activation": (10, 10, 4),
    # per output element: renormalise g_t = scale P_t / t (1 mul), difference (1 add), P_t and g read/written
    "MatMul": (1, 1, 4),
}
# per increment of a product of two streams (nnz(a_t) N + nnz(b_t) M of them, the MatMul's SynOps): one
# multiply of the arriving value by a running sum read from memory, one accumulate, two accesses
MATMUL_INCREMENT_OPS = (1, 1, 2)


def _numel(shape) -> int:
    return int(np.prod(shape))


def _limits(chip: str):
    import hw

    from neurosim.loihi.resources import CHIPS, QUANT_WEIGHT_BITS

    if chip not in CHIPS:
        raise NeurosimError(f"unknown Loihi chip {chip!r}; valid: {', '.join(CHIPS)}")
    spec = hw.get(chip)
    cap = spec.synapse_capacity_per_core()
    syn_bits = cap * (spec.weight_bits or QUANT_WEIGHT_BITS) if cap else None
    return spec, {"neurons_per_core": spec.neurons_per_core, "synaptic_bits_per_core": syn_bits,
                  "cores_per_chip": spec.cores}


def map_operators(net, chip: str = "loihi2", weight_bits: int = 8) -> OperatorMap:
    """Where each node of ``net`` runs on ``chip`` (module docstring), with compartments, synapses and cores
    of what runs on neuro cores and the processor work per step of what does not."""
    spec, lim = _limits(chip)
    npc = lim["neurons_per_core"] or 10 ** 9
    bits_core = lim["synaptic_bits_per_core"] or float("inf")
    consumers: dict[str, list[str]] = {}
    for k, n in net.nodes.items():
        for i in n.inputs:
            consumers.setdefault(i, []).append(k)
    rows = []
    for k, n in net.nodes.items():
        kind = n.kind
        out = carries(net, k)
        reads = carries(net, n.inputs[0]) if n.inputs else "-"
        size = _numel(net.shapes[k])
        comp = syn = shared = 0
        ops = 0.0
        why = ""
        if kind == "Neurons":
            where, comp = NEURO, size
            why = "microcoded IF neurons, reset by subtraction" + ("; -1 spikes as a graded payload" if n.signed else "")
        elif kind in _SYNAPTIC_KINDS:
            where = NEURO
            w = n.weight
            if kind == "TokenLinear":
                tokens = _numel(net.shapes[n.inputs[0]][:-1])
                syn, shared = int(tokens * np.count_nonzero(w)), int(np.count_nonzero(w))
            elif kind == "Linear":
                syn = shared = int(np.count_nonzero(w))
            else:
                from neurosim.ir.lowering import node_fanout

                syn = int(node_fanout(n, net.shapes[n.inputs[0]]).sum())
                shared = int(np.count_nonzero(w))
            readers = [net.nodes[c] for c in consumers.get(k, [])]
            feeds_pop = readers and all(_feeds_population(net, c, consumers) for c in consumers.get(k, []))
            if not feeds_pop:
                comp = size  # relay compartments that send the current on as graded spikes
            why = ("graded input spikes scale the weights" if reads in ("graded", "current") else
                   f"{reads} input spikes") + ("" if feeds_pop else "; relay compartments send graded spikes")
        elif kind in _ROUTING_KINDS:
            where, why = ROUTING, "dendritic sum / axon addressing in the receiving cores"
        elif kind in _POOL_KINDS:
            where = NEURO
            comp = size if kind == "SpikeMaxPool2d" else 0
            why = "gate neurons" if kind == "SpikeMaxPool2d" else "folded into the next synapses"
        elif kind == "Constant":
            where, why = BIAS, "a constant current: the receiving compartments' bias"
        elif kind == "Embedding":
            where, why = HOST, "token ids -> embedded rows: the input encoding, sent as graded spikes"
        elif kind in _PROCESSOR_KINDS:
            where = X86
            adds, muls, _acc = PROCESSOR_OPS[kind]
            ops = float(size * (adds + muls))
            if kind == "MatMul":
                a, b = (net.shapes[i] for i in n.inputs)
                m, kk, nn = n.dims([a, b])
                heads = _numel(a[:-2])
                inc = heads * (m * kk * nn + m * kk * nn)  # every input element nonzero: the dense bound
                ops += float(inc * sum(MATMUL_INCREMENT_OPS[:2]))
                why = ("product of two streams: each step's increments multiply arriving spikes by the "
                       "other operand's running sums, which no static synapse holds")
            elif kind == "Softmax":
                why = "exp and division" + (" (causal mask)" if n.causal else "")
            elif kind == "LayerNorm":
                why = "mean, variance, rsqrt over the features"
            else:
                why = f"{n.fn}: not a neuro-core function"
        else:
            raise NeurosimError(f"no Loihi placement rule for node kind {kind} ({k!r})")
        supported = True
        if chip == "loihi":
            needs = [c for c in {out, reads} if c in ("graded", "ternary")]
            if where in (X86, HOST) or (where == NEURO and needs) or (where == ROUTING and needs):
                supported = False
                why = (f"UNSUPPORTED on Loihi 1: {'/'.join(sorted(needs)) or 'graded'} values need graded "
                       f"spikes (Loihi 1 spikes are binary); " + why)
        cores = 0
        if where == NEURO and (comp or syn):
            cores = max(math.ceil(comp / npc) if comp else 0,
                        math.ceil(syn * weight_bits / bits_core) if syn else 0, 1)
        rows.append(OperatorRow(k, kind, out, reads, where, supported, int(comp), int(syn), int(shared), cores,
                                ops, why))
    src = {f: spec.source(f) for f in ("cores", "neurons_per_core", "synapses_per_chip", "weight_bits",
                                       "synaptic_memory_kib_per_core") if spec.source(f)}
    return OperatorMap(chip, spec.name, rows, int(lim["cores_per_chip"]), 6 if chip == "loihi2" else 3,
                       limits=lim, sources=src)


def _feeds_population(net, k: str, consumers) -> bool:
    """True when node ``k``'s value ends in a population's (or the readout's) dendrite through routing only."""
    n = net.nodes[k]
    if n.kind == "Neurons":
        return True
    if n.kind in _ROUTING_KINDS:
        cs = consumers.get(k, [])
        return bool(cs) and all(_feeds_population(net, c, consumers) for c in cs)
    return False


# ---- cost from measured activity ------------------------------------------------------------------------

def _processor_energies() -> dict[str, float]:
    """Horowitz 45 nm ALU energies and an SRAM access (hw/catalog/energy45nm.toml), in pJ."""
    from hw.specs import energy45nm

    t = energy45nm()
    return {"add_fp32_pj": t["add_pj"]["fp32"], "mult_fp32_pj": t["mult_pj"]["fp32"],
            "add_int32_pj": t["add_pj"]["int32"], "mult_int32_pj": t["mult_pj"]["int32"],
            "access_pj": t["memory_64bit_pj"]["sram_32kb"]}


def operator_work(net, result) -> list[dict]:
    """Per node, the work of one sample over all ``result.timesteps`` steps, from measured activity.

    Counting rule (docs/transformers.md, "Cost"):

    * synaptic nodes (Linear/TokenLinear/Conv2d, and an Add with spiking inputs): ``result.synops`` -
      ``synops`` when the input is binary/ternary spikes (an accumulate of a stored weight),
      ``graded_synops`` when it is graded (payload x weight: a multiply-accumulate);
    * Neurons: ``neurons x T`` updates and the measured spike events as messages;
    * relay compartments (a synaptic node no population reads): ``size x T`` updates and graded messages;
    * MatMul: its SynOps (``nnz(a_t) N + nnz(b_t) M`` per step, measured) are **multiply-accumulates with
      a dynamic operand** on a processor (``MATMUL_INCREMENT_OPS`` each), plus the ``M N`` renormalisation
      per step; Softmax / LayerNorm / Activation: ``PROCESSOR_OPS`` per element and step; the graded,
      dense outputs of these nodes are ``size x T`` messages to whoever reads them;
    * routing nodes and constants: no work.
    """
    T = int(result.timesteps)
    batch = max(int(result.batch or 1), 1)
    omap = map_operators(net, "loihi2")
    rows = []
    for r in omap.rows:
        n = net.nodes[r.node]
        w = {"node": r.node, "kind": r.kind, "where": r.where, "carries": r.carries, "synops": 0.0,
             "graded_synops": 0.0, "neuron_updates": 0.0, "messages": 0.0, "proc_adds": 0.0, "proc_mults": 0.0,
             "proc_accesses": 0.0, "product_macs": 0.0}
        so = float(result.synops.get(r.node, 0.0))
        size = _numel(net.shapes[r.node])
        if r.kind == "Neurons":
            w["neuron_updates"] = float(size * T)
            w["messages"] = float(result.spike_counts.get(r.node, 0.0)) / batch
        elif r.kind in _SYNAPTIC_KINDS or (r.kind == "Add" and so):
            w["graded_synops" if r.reads in ("graded", "current") else "synops"] = so
            if r.compartments:
                w["neuron_updates"] = float(r.compartments * T)
                w["messages"] = float(r.compartments * T)
        elif r.kind in _PROCESSOR_KINDS:
            adds, muls, acc = PROCESSOR_OPS[r.kind]
            w["proc_adds"], w["proc_mults"], w["proc_accesses"] = size * T * adds, size * T * muls, size * T * acc
            if r.kind == "MatMul":
                ia, im, iacc = MATMUL_INCREMENT_OPS
                w["product_macs"] = so
                w["proc_adds"] += so * ia
                w["proc_mults"] += so * im
                w["proc_accesses"] += so * iacc
            w["messages"] = float(size * T)
        elif r.kind == "Embedding":
            w["messages"] = float(size * T)
        elif r.kind == "SpikeMaxPool2d":
            w["neuron_updates"] = float(size * T)
        rows.append(w)
    return rows


def cost_operators(net, result, chip: str = "loihi2", *, mean_hops: float | None = None, model: str = "snn",
                   ann_devices: tuple[str, ...] = (), ann=None, **energies):
    """Energy per inference of ``net``'s measured activity (``result``: a :class:`~neurosim.ir.SimResult`
    of ``net``) on ``chip``, operator by operator (:func:`operator_work`'s counting rule).

    Neuro-core work is priced with the chip's per-event energies (``e_synop_pj``, ``e_neuron_update_pj``,
    ``e_spike_pj`` + ``mean_hops x e_hop_pj``; Loihi 2 publishes none, so Loihi's stand in, as in
    :mod:`hw.neuromorphic`); a graded synop adds one int32 multiply (the payload scales the weight).
    Processor work (x86 cores or host) is priced with Horowitz's 45 nm ALU energies plus one SRAM access
    per operand access (``hw/catalog/energy45nm.toml``): fp32 for Softmax/LayerNorm/Activation, int32 for
    the products of spike counts. That is a lower bound for an x86 core (no instruction fetch, decode or
    register file; Intel publishes no Lakemont energy). ``energies`` override any of ``e_synop_pj``,
    ``e_neuron_update_pj``, ``e_spike_pj``, ``e_hop_pj``, ``add_fp32_pj``, ``mult_fp32_pj``,
    ``add_int32_pj``, ``mult_int32_pj``, ``access_pj``.

    ``ann`` (an ``nn.Module``, possibly on the meta device) and ``ann_devices`` add the ANN's energy per
    inference on those catalog devices (``hw.cost`` at batch 1) to the totals, for the comparison.
    Returns a :class:`hw.report.CostReport` (rows per node, totals per sample).
    """
    import hw
    from hw.neuromorphic import mean_mesh_hops
    from hw.report import CostReport

    spec = hw.get(chip)
    if spec.family != "neuromorphic":
        raise NeurosimError(f"{chip} is a {spec.family}, not a neuromorphic chip")
    proxy = hw.get(spec.energy_proxy) if spec.energy_proxy else spec
    e = {f: getattr(spec, f, None) if getattr(spec, f, None) is not None else getattr(proxy, f, None)
         for f in ("e_synop_pj", "e_neuron_update_pj", "e_spike_pj", "e_hop_pj")}
    e.update(_processor_energies())
    bad = sorted(set(energies) - set(e))
    if bad:
        raise NeurosimError(f"unknown energy option(s) {', '.join(bad)}; allowed: {', '.join(sorted(e))}")
    for k, v in energies.items():
        v = float(v)
        if not (math.isfinite(v) and v >= 0):
            raise NeurosimError(f"{k} must be a finite number >= 0 pJ, got {v}")
        e[k] = v
    if e["e_synop_pj"] is None:
        raise NeurosimError(f"{chip}: no per-event energy published (and no proxy); pass e_synop_pj=")
    hops = mean_mesh_hops(proxy.tiles) if mean_hops is None else float(mean_hops)
    e_msg = (e["e_spike_pj"] or 0.0) + hops * (e["e_hop_pj"] or 0.0)
    work = operator_work(net, result)
    rows = []
    for w in work:
        fp = w["kind"] != "MatMul"
        add_pj = e["add_fp32_pj"] if fp else e["add_int32_pj"]
        mul_pj = e["mult_fp32_pj"] if fp else e["mult_int32_pj"]
        e_neuro = (w["synops"] * e["e_synop_pj"] + w["graded_synops"] * (e["e_synop_pj"] + e["mult_int32_pj"])
                   + w["neuron_updates"] * (e["e_neuron_update_pj"] or 0.0))
        e_proc = w["proc_adds"] * add_pj + w["proc_mults"] * mul_pj + w["proc_accesses"] * e["access_pj"]
        e_comm = w["messages"] * e_msg
        rows.append({**w, "neuro_energy_j": e_neuro * 1e-12, "processor_energy_j": e_proc * 1e-12,
                     "message_energy_j": e_comm * 1e-12, "energy_j": (e_neuro + e_proc + e_comm) * 1e-12})
    tot = {k: sum(r[k] for r in rows) for k in ("synops", "graded_synops", "product_macs", "neuron_updates",
                                                  "messages", "proc_adds", "proc_mults", "proc_accesses",
                                                  "neuro_energy_j", "processor_energy_j", "message_energy_j",
                                                  "energy_j")}
    tot["energy_per_sample_j"] = tot["energy_j"]
    tot["timesteps"] = int(result.timesteps)
    tot["batch"] = int(result.batch)
    tot["product_energy_j"] = sum(r["processor_energy_j"] for r in rows if r["kind"] == "MatMul")
    notes = [f"activity measured by the {result.backend or 'spiking'} backend ({result.timesteps} steps, "
             f"batch {result.batch}); per sample",
             "processor energies are Horowitz 45 nm ALU + SRAM-access figures: a lower bound for the x86 cores "
             "(no instruction overhead; no Lakemont energy is published)"]
    if proxy is not spec:
        notes.append(f"{spec.key} publishes no per-event energies; {proxy.key}'s stand in (catalog energy_proxy)")
    if ann is not None and ann_devices:
        from hw.workload import trace

        import torch

        x = torch.zeros(1, *net.input_shape, device="meta")
        if "Embedding" in {n.kind for n in net.nodes.values()}:
            x = torch.zeros(1, *net.input_shape, dtype=torch.long, device="meta")
        wl = trace(ann, (x,))
        tot["ann_macs"] = float(wl.macs)
        for d in ann_devices:
            r = hw.cost(wl, d)
            tot[f"ann_{d}_energy_j"] = float(r["energy_j"])
    assumptions = {**e, "mean_hops": hops, "message_pj": e_msg,
                   "counting_rule": "neurosim.loihi.operators.operator_work (docs/transformers.md, Cost)"}
    return CostReport(model=model, device=spec.key, family="neuromorphic", mode="inference", rows=rows,
                      totals=tot, assumptions=assumptions, notes=notes)
