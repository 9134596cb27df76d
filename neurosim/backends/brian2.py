"""Brian2 backend: the IR as NeuronGroups and Synapses, clock-driven, numpy (default) or cython target.

Lowering (sources and terms from :mod:`neurosim.ir.lowering`):

* every Neurons population: a ``NeuronGroup`` with ``v``, per-neuron ``vth`` and ``bias`` and the net
  spike count ``count`` (C), ``threshold="v > vth"`` (strict, as the IR) and
  ``reset="v -= vth; count += 1"`` (subtractive) or ``"v = v_reset; ..."``; the leak and the constant
  currents are one ``run_regularly`` ``v = leak * v + I + bias`` per step;
* a **signed** population also has a custom event ``negspike`` with condition
  ``v < 0 and count > 0`` (the IR's ``v < 0 and C_{t-1} > 0``; it cannot coincide with a spike since
  ``vth > 0``), run on the same updated ``v`` right after the spike threshold and before both resets,
  and its own reset ``v += vth; count -= 1; nneg += 1`` (``run_on_event``). So ``count`` is the net
  count C and a neuron's events are ``count + 2 * nneg``;
* every term (a linear path from a source): one ``Synapses`` object with index arrays ``(i, j)`` and
  weights ``w`` (dense or convolutional connectivity; an average pool before a convolution is folded
  into the kernel): ``on_pre="v_post += w"`` from spiking sources (from a signed source also a
  pathway ``neg: v_post -= w`` with ``on_event={"neg": "negspike"}``), a summed variable
  ``I_k_post = w * x_pre (summed)`` from the (analog) input group;
* the input: a ``NeuronGroup`` whose ``x`` is set every step from a 2-D ``TimedArray`` (direct current
  or the shared Poisson spikes of :func:`neurosim.encoding.encode`); a max-pool reading the Poisson
  input directly also gets the input's running count ``count += x``;
* SpikeMaxPool2d, unsigned source (counts only grow): a group holding the running window maximum of
  its source's counts (``on_pre: mx_post = clip(count_pre, mx_post, inf)``) that spikes when the
  maximum grows, ``threshold="mx > emitted"``, ``reset="emitted += 1"``. Signed source (the Poisson
  input, a signed population or a max-pool of one): a count can fall and so can the maximum, by at
  most 1 per step, so the group's net count ``count`` (= the window maximum of the source's counts
  before the step) follows two summed variables over the window, ``nup = #(count_pre > count_post)``
  and ``nat = #(count_pre >= count_post)``: a spike when ``nup > 0`` (``count += 1``), a ``negspike``
  when ``nat == 0`` (``count -= 1``);
* readout: a group accumulating the readout current (membrane) or the population's own net counts
  (spike count: signed spikes summed).

Step order. Brian2's default schedule runs all groups, then all thresholds, then all synapses, then
all resets, so a spike would reach the next layer one step late. The IR has no synaptic delay, so
every object is put in the ``groups`` slot and ordered by the IR's node order: for each population,
its summed inputs, its update, its incoming spike pathways (positive, then negative), its threshold,
its ``negspike`` condition, its reset, its ``negspike`` reset; then the next population. A spike
emitted at step ``t`` is integrated downstream in step ``t``, as in the IR.

Batching: samples are independent, so a chunk of ``nb`` samples is simulated side by side (every
group and synapse replicated per sample), and chunks follow each other in time within one
``Network.run``: chunk ``k`` occupies steps ``kT .. kT+T-1`` of the input ``TimedArray``, and every
``T`` steps (``run_regularly`` with ``dt = T dt`` in the ``start`` slot) each state variable returns to
its initial value after a ``StateMonitor`` of the same clock has recorded what the chunk ended with.
A Brian2 run costs about as much to prepare (code objects, a garbage collection) as a chunk of the MLP
costs to simulate, so it is paid once per run, not once per chunk; runs hold at most
``MAX_INPUT_BYTES`` of input. The network is built once; a further run restores the stored initial state
(``Network.restore``).
"""
from __future__ import annotations

import hashlib
import json
import weakref

import numpy as np

from neurosim.backends import Activity, register_backend
from neurosim.ir.lowering import INPUT, Lowering
from neurosim.errors import NeurosimError
from neurosim.ir import Neurons, SpikeMaxPool2d, SpikingNetwork

TARGETS = ("numpy", "cython")


def _import_brian2():
    """``import brian2``, keeping the SIGINT disposition of a process that ignores Ctrl-C (nohup, a
    background job): brian2 wraps the handler it finds at import, and calling a wrapped ``SIG_IGN``
    makes every later SIGINT a TypeError inside brian2."""
    import signal
    import sys
    import threading

    if "brian2" in sys.modules or threading.current_thread() is not threading.main_thread():
        import brian2
        return brian2
    before = signal.getsignal(signal.SIGINT)
    import brian2
    if before in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, before)
    return brian2


def _tile_coo(i, j, w, n_src, n_tgt, nb):
    b = np.arange(nb)
    ii = (i[None, :] + b[:, None] * n_src).reshape(-1)
    jj = (j[None, :] + b[:, None] * n_tgt).reshape(-1)
    return ii, jj, np.tile(w, nb)


MAX_INPUT_BYTES = 256 * 2 ** 20  # the input TimedArray of one Brian2 run (float64)


class _Chunked:
    """The Brian2 network for ``nb`` samples side by side, built once; :meth:`run` simulates chunks of
    ``nb`` samples one after the other in one ``Network.run``."""

    def __init__(self, net: SpikingNetwork, low: Lowering, nb: int, n_in: int, T: int, dt_s: float,
                 record_trace: bool, record_counts: bool = False):
        import brian2 as b2

        self.b2, self.nb, self.n_in, self.T = b2, nb, n_in, T
        self.dt = dt_s * b2.second
        b2.defaultclock.dt = self.dt  # restored by run()
        self.record_counts = record_counts
        (self.bnet, self.var_grp, self.var, self.mon, self.groups, self.net, self.signed,
         self.ends) = _build(net, low, nb, T, record_trace, self.dt)
        self.bnet.store("start")

    def chunks_per_run(self) -> int:
        return max(1, MAX_INPUT_BYTES // (8 * self.T * self.nb * self.n_in))

    def run(self, e: np.ndarray):
        """``e`` [T, b, n_in], any b: ``ceil(b / nb)`` chunks in one run; returns (readout [b, C],
        trace [T, b, C] or None, events per source, net counts per population [b, *shape] or None)."""
        b2, nb, T = self.b2, self.nb, self.T
        b = e.shape[1]
        K = -(-b // nb)
        full = np.zeros((K, T, nb, self.n_in))
        pad = np.zeros((T, K * nb, self.n_in))
        pad[:, :b] = e
        full[:] = pad.reshape(T, K, nb, self.n_in).transpose(1, 0, 2, 3)
        ta = b2.TimedArray(full.reshape(K * T, nb * self.n_in), dt=self.dt)
        self.bnet.restore("start")
        self.bnet.run(K * T * self.dt, namespace={"e_in": ta, "inf": np.inf})

        def per_chunk(grp, var):
            """[K, nb * size]: what each chunk ended with (recorded at the next chunk's first step; the
            last chunk's values are the final state)."""
            rec = np.asarray(getattr(self.ends[grp.name], var), np.float64)  # [size * nb, K]
            last = np.asarray(getattr(grp, var)[:], np.float64)
            return np.concatenate([rec[:, 1:K].T, last[None]], 0)

        net, ro = self.net, self.net.readout
        C = net.num_classes
        acc = per_chunk(self.var_grp, self.var).reshape(K * nb, C)[:b]
        trace = None
        if self.mon is not None:
            tr = np.asarray(getattr(self.mon, self.var), np.float64)  # [nb*C, K*T]
            tr = tr.T.reshape(K, T, nb, C).transpose(1, 0, 2, 3).reshape(T, K * nb, C)[:, :b]
            trace = tr / np.arange(1, T + 1).reshape(T, 1, 1) * ro.scale
        events, counts = {}, {}
        for k, g in self.groups.items():
            if k == INPUT:
                continue
            c = per_chunk(g, "count")
            ev = c + 2 * per_chunk(g, "nneg") if k in self.signed else c  # events = net count + 2 x negative
            events[k] = ev.reshape(K * nb, -1)[:b].sum(0)
            if self.record_counts and k in net.populations:
                counts[k] = c.reshape(K * nb, *net.shapes[k])[:b].astype(np.int32)
        return acc * ro.scale / T, trace, events, counts if self.record_counts else None


def _build(net: SpikingNetwork, low: Lowering, nb: int, T: int, record_trace: bool, dt):
    import brian2 as b2

    order = iter(range(10 ** 6))
    objs = []
    n_in = int(np.prod(net.input_shape))
    if INPUT in low.maxpools.values():  # a max-pool of the (Poisson) input needs the input's counts
        inp = b2.NeuronGroup(nb * n_in, "x : 1\ncount : 1", name="inp")
        inp.run_regularly("x = e_in(t, i)\ncount += x", when="groups", order=next(order), name="inp_set")
    else:
        inp = b2.NeuronGroup(nb * n_in, "x : 1", name="inp")
        inp.run_regularly("x = e_in(t, i)", when="groups", order=next(order), name="inp_set")
    objs.append(inp)
    groups = {INPUT: inp}
    # sources that emit -1 spikes (a ``negspike`` event; the input's -1 are values of x, not events)
    signed = set()
    sizes = {k: int(np.prod(s)) for k, s in net.shapes.items()}
    linked = " (linked)" if net.encoding.kind == "direct" else ""  # see add_target

    def schedule(*runners):
        """Put code objects in the ``groups`` slot, in this order, after everything scheduled so far."""
        for r in runners:
            r.when, r.order = "groups", next(order)

    def connect(src_name, tgt_group, term, code_target, k, summed=False):
        i, j, w = term.coo()
        ii, jj, ww = _tile_coo(i, j, w, sizes[src_name], int(np.prod(term.out_shape)), nb)
        if summed:
            syn = b2.Synapses(groups[src_name], tgt_group, model=f"w : 1\n{code_target}_post = w * x_pre : 1 (summed)",
                              name=f"syn_{tgt_group.name}_{k}")
        elif src_name in signed:
            syn = b2.Synapses(groups[src_name], tgt_group, model="w : 1",
                              on_pre={"pre": f"{code_target}_post += w", "neg": f"{code_target}_post -= w"},
                              on_event={"pre": "spike", "neg": "negspike"}, name=f"syn_{tgt_group.name}_{k}")
        else:
            syn = b2.Synapses(groups[src_name], tgt_group, model="w : 1", on_pre=f"{code_target}_post += w",
                              name=f"syn_{tgt_group.name}_{k}")
        syn.connect(i=ii.astype(np.int32), j=jj.astype(np.int32))
        syn.w = ww
        return syn

    def pathways(syn, src_name):
        """The event pathways of a synapse from ``src_name``: ``pre`` (spikes), then ``neg`` (-1 spikes)."""
        return [syn.pre, syn.neg] if src_name in signed else [syn.pre]

    def schedule_events(grp):
        """Threshold, ``negspike`` condition (same updated state), reset, ``negspike`` reset."""
        if "negspike" in grp.events:
            schedule(grp.thresholder["spike"], grp.thresholder["negspike"], grp.resetter["spike"],
                     grp.resetter["negspike"])
        else:
            schedule(grp.thresholder["spike"], grp.resetter["spike"])

    def add_target(tname, grp, var, nmax):
        """Terms of target ``tname`` into ``grp``: summed analog inputs first, pathways after."""
        tg = low.targets[tname]
        summed, spiking = [], []
        for k, term in enumerate(tg.terms):
            (summed if term.source == INPUT else spiking).append((k, term))
        for k, term in summed:
            if linked:
                # a direct current is the same at every step of a chunk: its synaptic sum is computed at
                # a chunk's first step only, into a group on a clock of T steps (a summed variable runs
                # on its target's clock), which the population reads as a linked variable
                hold = b2.NeuronGroup(nb * nmax, "I : 1", dt=T * dt, name=f"hold_{grp.name}_{k}")
                syn = connect(term.source, hold, term, "I", k, summed=True)
                setattr(grp, f"I{k}", b2.linked_var(hold, "I"))
                objs.append(hold)
            else:
                syn = connect(term.source, grp, term, f"I{k}", k, summed=True)
            for upd in syn.summed_updaters.values():
                upd.when, upd.order = "groups", next(order)
            objs.append(syn)
        return [f"I{k}" for k, _ in summed], spiking

    for name, n in net.nodes.items():
        if isinstance(n, Neurons):
            N = sizes[name]
            tg = low.targets[name]
            isum = [f"I{k}" for k, t in enumerate(tg.terms) if t.source == INPUT]
            model = ("v : 1\nv0 : 1 (constant)\nvth : 1 (constant)\nbias : 1 (constant)\ncount : 1\n"
                     + "".join(f"{s} : 1{linked}\n" for s in isum))
            reset = ("v -= vth" if n.reset == "subtract" else f"v = {n.v_reset!r}") + "\ncount += 1"
            if n.signed:
                # -1 spike: v < 0 with a positive net count (count is C_{t-1}: tested before the resets);
                # v < 0 < vth, so it never coincides with a +1 spike
                grp = b2.NeuronGroup(nb * N, model + "nneg : 1\n", threshold="v > vth", reset=reset,
                                     events={"negspike": "v < 0 and count > 0"}, name=f"pop_{len(groups)}")
                grp.run_on_event("negspike", "v += vth\ncount -= 1\nnneg += 1")
                signed.add(name)
            else:
                grp = b2.NeuronGroup(nb * N, model, threshold="v > vth", reset=reset, name=f"pop_{len(groups)}")
            grp.vth = np.tile(np.broadcast_to(n.threshold, n.shape).reshape(-1), nb)
            grp.bias = np.tile(np.broadcast_to(tg.const, n.shape).reshape(-1), nb)
            grp.v0 = np.tile(np.broadcast_to(n.v_init, n.shape).reshape(-1), nb)
            grp.v = grp.v0[:]
            groups[name] = grp
            objs.append(grp)
            _, spiking = add_target(name, grp, "v", N)
            upd = f"v = {n.leak!r} * v + bias" + "".join(f" + {s}" for s in isum)
            grp.run_regularly(upd, when="groups", order=next(order), name=f"{grp.name}_update")
            for k, term in spiking:
                syn = connect(term.source, grp, term, "v", k)
                schedule(*pathways(syn, term.source))
                objs.append(syn)
            schedule_events(grp)
        elif isinstance(n, SpikeMaxPool2d):
            src = low.maxpools[name]
            N = sizes[name]
            src_signed = src in signed or src == INPUT
            if src_signed:
                grp = b2.NeuronGroup(nb * N, "count : 1\nnneg : 1\nnup : 1\nnat : 1", threshold="nup > 0",
                                     reset="count += 1", events={"negspike": "nat == 0"},
                                     name=f"maxpool_{len(groups)}")
                grp.run_on_event("negspike", "count -= 1\nnneg += 1")
                signed.add(name)
            else:
                grp = b2.NeuronGroup(nb * N, "mx : 1\nemitted : 1\ncount : 1", threshold="mx > emitted",
                                     reset="emitted += 1\ncount += 1", name=f"maxpool_{len(groups)}")
            # which inputs each output reads: the window of a max-pool (padding reads nothing)
            import torch
            import torch.nn.functional as F

            C, H, W = net.shapes[src]
            idx = torch.arange(1, C * H * W + 1, dtype=torch.float64).reshape(C, 1, H, W)
            cols = F.unfold(idx, n.kernel_size, padding=n.padding, stride=n.stride)  # [C, k, L]
            L = cols.shape[2]
            c_, k_, l_ = np.nonzero(cols.numpy() > 0)
            i = cols.numpy()[c_, k_, l_].astype(np.int64) - 1
            j = c_ * L + l_
            ii, jj, _ = _tile_coo(i, j, np.zeros(len(i)), sizes[src], N, nb)
            if src_signed:
                # window inputs above / at the maximum so far (the source's counts are already updated)
                syn = b2.Synapses(groups[src], grp, model="nup_post = int(count_pre > count_post) : 1 (summed)\n"
                                                          "nat_post = int(count_pre >= count_post) : 1 (summed)",
                                  name=f"syn_{grp.name}")
            else:
                syn = b2.Synapses(groups[src], grp, on_pre="mx_post = clip(count_pre, mx_post, inf)",
                                  name=f"syn_{grp.name}")
            syn.connect(i=ii.astype(np.int32), j=jj.astype(np.int32))
            if src_signed:
                schedule(syn.summed_updaters["nup_post"], syn.summed_updaters["nat_post"])
            else:
                schedule(syn.pre)
            schedule_events(grp)
            groups[name] = grp
            objs += [grp, syn]
    ro = net.readout
    C = net.num_classes
    if ro.kind == "membrane":
        tg = low.targets["readout"]
        isum = [f"I{k}" for k, t in enumerate(tg.terms) if t.source == INPUT]
        model = "acc : 1\nc : 1 (constant)\n" + "".join(f"{s} : 1{linked}\n" for s in isum)
        rgrp = b2.NeuronGroup(nb * C, model, name="readout")
        rgrp.c = np.tile(tg.const.reshape(-1), nb)
        objs.append(rgrp)
        _, spiking = add_target("readout", rgrp, "acc", C)
        rgrp.run_regularly("acc += c" + "".join(f" + {s}" for s in isum), when="groups", order=next(order),
                           name="readout_update")
        for k, term in spiking:
            syn = connect(term.source, rgrp, term, "acc", k)
            schedule(*pathways(syn, term.source))
            objs.append(syn)
        var_grp, var = rgrp, "acc"
    else:
        var_grp, var = groups[ro.node], "count"
    mon = None
    if record_trace:
        mon = b2.StateMonitor(var_grp, var, record=True, when="end", name="trace")
        objs.append(mon)
    # every T steps, in the start slot: record what the chunk ended with, then restart the state
    restart = {g.name: (g, r) for g, r in _restarts(net, groups, signed, var_grp, var)}
    ends = {}
    for name, (g, (recorded, code)) in restart.items():
        if recorded:
            ends[name] = b2.StateMonitor(g, recorded, record=True, dt=T * dt, when="start", order=0,
                                         name=f"{name}_end")
            objs.append(ends[name])
        g.run_regularly(code, dt=T * dt, when="start", order=1, name=f"{name}_restart")
    return b2.Network(*objs), var_grp, var, mon, groups, net, signed, ends


def _restarts(net: SpikingNetwork, groups: dict, signed: set, var_grp, var):
    """(group, (variables recorded at a chunk's end, code that restores its initial state)) for every
    group with state."""
    for k, g in groups.items():
        n = net.nodes.get(k)
        if k == INPUT:
            if "count" in g.variables:
                yield g, ([], "count = 0")
        elif isinstance(n, Neurons):
            rec = ["count", "nneg"] if k in signed else ["count"]
            yield g, (rec, "v = v0\ncount = 0" + ("\nnneg = 0" if k in signed else ""))
        elif k in signed:  # a max-pool of a signed source
            yield g, (["count", "nneg"], "count = 0\nnneg = 0")
        else:
            yield g, (["count"], "mx = 0\nemitted = 0\ncount = 0")
    if var == "acc":
        yield var_grp, (["acc"], "acc = 0")


class _Program:
    """A Brian2 run's program: the lowering (cached per network, :func:`_lowering`), the target and the
    clock step; the side-by-side network (:class:`_Chunked`) is built on the first chunk."""

    def __init__(self, net: SpikingNetwork, low: Lowering, target: str, dt_s: float, max_synapses: int):
        self.net, self.low, self.target, self.dt_s, self.max_synapses = net, low, target, dt_s, max_synapses
        self.nb = 1
        self.sim = None
        self.dtype = np.float64

    def plan(self, B: int, T: int, batch_size: int | None) -> int:
        """Samples per ``simulate`` call: ``nb`` side by side (``batch_size``, default as many as keep the
        replicated synapses under ``max_synapses``) times the chunks one ``Network.run`` holds."""
        if batch_size is None:
            per_sample = sum(len(t.coo()[0]) for tg in self.low.targets.values() for t in tg.terms) + 1
            batch_size = int(max(1, self.max_synapses // per_sample))
        self.nb = max(1, min(int(batch_size), B))
        n_in = int(np.prod(self.net.input_shape))
        return self.nb * max(1, MAX_INPUT_BYTES // (8 * T * self.nb * n_in))


def prepare(net: SpikingNetwork, precision: str = "float", *, target: str = "numpy", dt_s: float | None = None,
            max_synapses: int = 4_000_000) -> _Program:
    """Brian2 NeuronGroups + Synapses (subtractive reset), same-step propagation.

    ``target``: Brian2 code generation target, ``"numpy"`` (default, no compiler) or ``"cython"``.
    ``dt_s``: the clock step in seconds (default 1 ms; results do not depend on it, every update is
    per step; Brian2's global ``defaultclock.dt`` is restored afterwards). ``batch_size``: samples
    simulated side by side (default: as many as keep the replicated synapses under ``max_synapses``).
    """
    from neurosim.backends._transformer import refuse

    refuse(net, "brian2")  # Transformer operators: one clear error before anything is built
    _import_brian2()
    if target not in TARGETS:
        raise NeurosimError(f"unknown Brian2 target {target!r}; valid: {', '.join(TARGETS)}")
    dt_s = 1e-3 if dt_s is None else dt_s
    if isinstance(dt_s, bool) or not isinstance(dt_s, (int, float, np.integer, np.floating)) or not dt_s > 0:
        raise NeurosimError(f"dt_s must be a positive number of seconds, got {dt_s!r}")
    return _Program(net, _lowering(net), target, float(dt_s), max_synapses)


def simulate(program: _Program, batch, *, record_trace: bool = False, record_counts: bool = False) -> Activity:
    """Run one chunk (``program.plan``: several chunks of ``nb`` side-by-side samples in one
    ``Network.run``). ``record_counts``: every neuron's net spike count C_T (``SimResult.counts``).
    Brian2's code-generation target and ``defaultclock.dt`` are restored after every chunk."""
    b2 = _import_brian2()
    net, T = program.net, batch.timesteps
    e = batch.encoded.numpy().astype(np.float64, copy=False).reshape(batch.encoded.shape[0], batch.size, -1)
    if batch.const:
        e = np.broadcast_to(e, (T, batch.size, e.shape[2]))
    old_target, old_dt = b2.prefs.codegen.target, b2.defaultclock.dt
    b2.prefs.codegen.target = program.target
    try:
        if program.sim is None:
            b2.start_scope()
            program.sim = _Chunked(net, program.low, program.nb, e.shape[2], T, program.dt_s, record_trace,
                                   record_counts)
        else:
            b2.defaultclock.dt = program.sim.dt
        out, tr, ev, cn = program.sim.run(e)
    finally:
        b2.prefs.codegen.target = old_target
        b2.defaultclock.dt = old_dt
    return Activity(output=out.astype(np.float32), trace=tr.astype(np.float32) if record_trace else None,
                    events=ev, counts=cn)


run = register_backend("brian2", precisions=("float",),
                       description="Brian2 NeuronGroups + Synapses (subtractive reset), same-step propagation",
                       prepare=prepare, simulate=simulate)


_LOWERINGS: "weakref.WeakKeyDictionary[SpikingNetwork, tuple[str, Lowering]]" = weakref.WeakKeyDictionary()


def _fingerprint(net: SpikingNetwork) -> str:
    """A digest of everything the lowering reads: the structure and every array's bytes. Nodes are
    frozen, but a network's node may be replaced (calibration: ``dataclasses.replace``) and a user may
    edit a weight array in place, so the cached lowering is reused only while this digest is unchanged."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(net.to_dict(), sort_keys=True, default=str).encode())
    for k, n in net.nodes.items():
        for a, v in sorted(n.arrays().items()):
            v = np.ascontiguousarray(v)
            h.update(f"{k}/{a}{v.shape}{v.dtype}".encode())
            h.update(v.tobytes())
    return h.hexdigest()


def _lowering(net: SpikingNetwork) -> Lowering:
    """The network's Lowering, cached per network (its dense/COO terms are costly to build) and rebuilt
    when any node has changed since (:func:`_fingerprint`)."""
    key = _fingerprint(net)
    hit = _LOWERINGS.get(net)
    if hit is None or hit[0] != key:
        hit = (key, Lowering(net))
        _LOWERINGS[net] = hit
    return hit[1]
