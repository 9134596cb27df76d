"""Backend conformance: every registered backend (``backend_names()``) x a library of small IR networks,
against the reference backend (the IR's step semantics as code, :mod:`neurosim.backends.reference`).

Float precision: the readout (and its trace) equals the reference to 1e-5, every population's spike
events, net counts and firing rates are identical, and SynOps are exact wherever a weight layer reads a
spike source or the input (a layer reading an analog map, such as an average pool of spikes, counts
either the exact nonzero values or the documented upper bound of every element at every step). Fixed
point: within the bound the backend's docstring states. Common options are honoured or refused with
one clear NeurosimError.

The library (``tests/backend_nets.py``) is two networks that hold every node kind, signed and unsigned
populations, IF and LIF, subtractive and zero reset (to v_reset != 0), direct and Poisson input, a
residual Add with a per-channel weight, an Add with a (C,) weight on a C == W map, spiking max-pool of
unsigned spikes, of signed spikes and of the Poisson input, membrane and spike-count readouts. A new
node kind fails ``test_library_covers_every_node_kind_and_flavour`` until a net here uses it, and then
fails on every backend that cannot lower it. The third net, ``zoo_transformer``, holds every Transformer
operator (issue 13); the backends in ``TRANSFORMER_BACKENDS`` must conform on it, every other backend must
refuse it with one "unsupported operator <Kind> ('<node>') on <backend>" error.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from neurosim.backends import COMMON_OPTIONS, backend_names, get_backend
from neurosim.ir.lowering import Lowering, node_fanout
from neurosim.errors import NeurosimError
from neurosim.ir import INPUT, NODE_TYPES, Add, Flatten, Neurons, SpikeMaxPool2d
from tests.backend_nets import token_inputs, zoo_direct, zoo_poisson, zoo_transformer

T = 12
B = 4
SEED = 3
SLOW = {"lava": pytest.mark.lava, "brian2": pytest.mark.brian2}
lava_ok = sys.version_info[:2] == (3, 10)


def _inputs(net):
    if any(n.kind == "Embedding" for n in net.nodes.values()):
        return token_inputs(net, B)
    rng = np.random.default_rng(1)
    lo = -1.0 if net.encoding.kind == "poisson" else 0.0
    return rng.uniform(lo, 1.0, (B, *net.input_shape)).astype(np.float32)


LIBRARY = {"zoo_direct": zoo_direct, "zoo_poisson": zoo_poisson, "zoo_transformer": zoo_transformer}
#: backends that claim the Transformer operators (issue 13); every other backend must refuse a network with
#: them with one "unsupported operator <node> on <backend>" error
TRANSFORMER_BACKENDS = {"reference", "snntorch", "lava"}
# batch_size per net: two chunks each; the driver encodes the whole batch once (neurosim/backends/base.py),
# so a chunked Poisson run sees the reference's spikes on every backend
BATCH = {"zoo_direct": 2, "zoo_poisson": 2, "zoo_transformer": 2}


def _backend_params():
    out = []
    for b in backend_names():
        marks = [SLOW[b]] if b in SLOW else []
        if b == "lava":
            marks.append(pytest.mark.skipif(not lava_ok, reason="lava-nc runs on Python 3.10 only"))
        out.append(pytest.param(b, marks=marks, id=b))
    return out


def _precision_params():
    """(backend, precision) for every precision other than float that a backend registers."""
    out = []
    for p in _backend_params():
        (b,) = p.values
        try:
            precisions = get_backend(b).precisions
        except NeurosimError:
            continue
        out += [pytest.param(b, prec, marks=p.marks, id=f"{b}-{prec}") for prec in precisions if prec != "float"]
    return out


@pytest.fixture(scope="module", params=list(LIBRARY))
def case(request):
    net = LIBRARY[request.param]()
    x = _inputs(net)
    ref = net.run(x, T, backend="reference", seed=SEED, record_trace=True, record_counts=True)
    return request.param, net, x, ref


def _backend(name):
    try:
        return get_backend(name)
    except NeurosimError as e:  # a registered module whose dependencies are missing here
        pytest.skip(str(e))


def _run(net, x, backend, precision, name, **extra):
    """Run with every common option asked for; an option the backend refuses must be refused with one
    NeurosimError naming it (then run without it)."""
    opts = dict(seed=SEED, record_trace=True, record_counts=True, batch_size=BATCH[name], **extra)
    refused = []
    while True:
        try:
            return net.run(x, T, backend=backend, precision=precision, **opts), refused
        except NeurosimError as e:
            bad = [k for k in opts if f"support {k}=" in str(e)]
            if not bad:
                raise
            refused.append(bad[0])
            opts.pop(bad[0])


def _source_of(net, node: str):
    """The spike source (or ``"input"``) a weight layer reads through Flatten, else None (an analog map)."""
    name = net.nodes[node].inputs[0]
    while name != INPUT and isinstance(net.nodes[name], Flatten):
        name = net.nodes[name].inputs[0]
    return name if name == INPUT or isinstance(net.nodes[name], (Neurons, SpikeMaxPool2d)) else None


def _refuses(name, backend) -> bool:
    return name == "zoo_transformer" and backend not in TRANSFORMER_BACKENDS


def _check_refusal(net, x, backend, precision="float"):
    with pytest.raises(NeurosimError, match=rf"^unsupported operator \w+ \('\w+'\) on {backend}: "):
        net.run(x, T, backend=backend, precision=precision, seed=SEED)


def _check_synops(net, r, ref, exact_only: bool):
    assert set(r.synops) == set(ref.synops)
    for k, want in ref.synops.items():
        if net.nodes[k].kind in ("TokenLinear", "MatMul") and _source_of(net, k) is None:
            # graded inputs (outputs of nodes on accumulated input): which of them are exactly 0 at a step
            # depends on float rounding (g_t - g_{t-1}); counted within a few percent of the reference
            assert r.synops[k] == pytest.approx(want, rel=0.05), (k, r.synops[k], want)
        elif isinstance(net.nodes[k], Add) or _source_of(net, k) is not None:
            assert r.synops[k] == pytest.approx(want, rel=1e-9), k
        else:  # an analog map: exact, or every element at every step (the documented upper bound)
            bound = float(node_fanout(net.nodes[k], net.shapes[net.nodes[k].inputs[0]]).sum()) * T
            ok = r.synops[k] == pytest.approx(want, rel=1e-9) or (not exact_only and r.synops[k] == pytest.approx(bound))
            assert ok, (k, r.synops[k], want, bound)


def test_library_covers_every_node_kind_and_flavour():
    nets = [b() for b in LIBRARY.values()]
    kinds = {n.kind for net in nets for n in net.nodes.values()}
    assert kinds == set(NODE_TYPES), f"no conformance net uses {sorted(set(NODE_TYPES) - kinds)}"
    pops = [p for net in nets for p in net.populations.values()]
    assert {p.signed for p in pops} == {True, False}
    assert {p.model for p in pops} == {"IF", "LIF"} and {p.reset for p in pops} == {"subtract", "zero"}
    assert any(p.reset == "zero" and p.v_reset != 0 for p in pops)
    assert any(p.signed and p.model == "LIF" for p in pops)
    assert {net.encoding.kind for net in nets} == {"direct", "poisson"}
    assert {net.readout.kind for net in nets} == {"membrane", "spike_count"}
    adds = [(net, n) for net in nets for n in net.nodes.values() if isinstance(n, Add)]
    assert any(len(n.inputs) > 1 and any(w.shape == (net.shapes[n.inputs[0]][0], 1, 1) for w in n.weights)
               for net, n in adds)  # residual Add with a per-channel weight
    assert any(any(w.ndim == 1 and w.size > 1 and len(net.shapes[n.inputs[0]]) == 3 for w in n.weights)
               for net, n in adds)  # a (C,) weight on a (C, H, W) map: broadcast along W
    pool_src = {("input" if net.spike_source(n.inputs[0]) == INPUT else
                 "signed" if net.nodes[net.spike_source(n.inputs[0])].signed else "unsigned")
                for net in nets for n in net.nodes.values() if isinstance(n, SpikeMaxPool2d)}
    assert pool_src == {"input", "signed", "unsigned"}
    # the events the conformance runs rely on actually happen
    for net in nets:
        x = _inputs(net)
        r = net.run(x, T, backend="reference", seed=SEED, record_counts=True)
        for k, p in net.populations.items():
            assert r.spike_counts[k] > 0, k
            if p.signed:
                assert r.spike_counts[k] > np.abs(r.counts[k]).sum() or k == "b_n1", k  # -1 spikes occur


def test_the_c_equal_w_weight_is_not_lowered_as_per_channel():
    import torch

    net = zoo_direct()
    for tg in Lowering(net).targets.values():
        for t in tg.terms:
            cf = t.conv_form()
            if cf is not None and len(t.in_shape) == 3:
                x = torch.rand(2, *t.in_shape, dtype=torch.float64)
                got = torch.nn.functional.conv2d(x, torch.as_tensor(cf[0]), None, *cf[1:])
                assert torch.allclose(got.reshape(2, -1), t.apply(x).reshape(2, -1)), t.describe()


# a backend's own execution paths, each of which must conform (the first, {}, is its default)
VARIANTS = {"snntorch": [{}, {"mode": "step", "neuron_impl": "torch"}, {"neuron_impl": "snntorch"},
                         {"neuron_impl": "torch"}]}


def _variant_params():
    out = []
    for p in _backend_params():
        (b,) = p.values
        for v in VARIANTS.get(b, [{}]):
            vid = b if not v else b + "-" + "-".join(f"{k}={w}" for k, w in v.items())
            out.append(pytest.param(b, v, marks=p.marks, id=vid))
    return out


@pytest.mark.parametrize("backend, variant", _variant_params())
def test_float_equals_the_reference(case, backend, variant):
    name, net, x, ref = case
    b = _backend(backend)
    if _refuses(name, backend):
        return _check_refusal(net, x, backend)
    _check_float(net, x, ref, backend, b, *_run(net, x, backend, "float", name, **variant))


def _check_float(net, x, ref, backend, b, r, refused):
    assert set(refused) <= set(COMMON_OPTIONS)
    assert r.backend == backend and r.precision == "float" and r.batch == B and r.timesteps == T
    np.testing.assert_allclose(r.output, ref.output, rtol=1e-5, atol=1e-5)
    assert (r.predictions == r.output.argmax(1)).all()
    if "record_trace" not in refused:
        assert r.trace.shape == (T, B, net.num_classes)
        np.testing.assert_allclose(r.trace, ref.trace, rtol=1e-5, atol=1e-5)
    assert r.neurons == ref.neurons
    assert r.spike_counts == ref.spike_counts  # events, identical
    for k, f in ref.firing_rates.items():
        assert r.firing_rates[k] == pytest.approx(f, rel=1e-12), k
    if "record_counts" not in refused:
        assert set(r.counts) == set(ref.counts)
        for k, c in ref.counts.items():
            np.testing.assert_array_equal(r.counts[k], c, err_msg=k)
    _check_synops(net, r, ref, exact_only=backend in ("reference", "snntorch"))
    assert b.precisions[0] == "float"


# ---- a backend written as prepare + simulate only -----------------------------------------------------

_SEAM_CHUNKS: list[int] = []  # the chunk sizes the driver handed to the tiny backend's simulate


class _SeamProgram:
    """The tiny seam backend's program; ``memory_mib`` and ``sample_elements`` drive the driver's batching."""

    def __init__(self, net, memory_mib):
        self.net, self.memory_mib, self.dtype = net, memory_mib, np.float64

    def sample_elements(self, T):
        return 2 ** 20  # 8 MiB a sample in float64: a 16 MiB budget gives chunks of 2


def _seam_prepare(net, precision, *, memory_mib: float = 512.0):
    """A tiny backend made of prepare + simulate only (the reference step rule, float64)."""
    from neurosim.backends._transformer import refuse

    refuse(net, "seam_demo")  # the driver's SynOps from source events know no Transformer operator
    return _SeamProgram(net, memory_mib)


def _seam_simulate(program, batch, *, record_trace: bool = False, record_counts: bool = False):
    from neurosim.backends import Activity
    from neurosim.backends.reference import simulate

    net = program.net
    _SEAM_CHUNKS.append(batch.size)
    pools = tuple(k for k, n in net.nodes.items() if isinstance(n, SpikeMaxPool2d))
    r = simulate(net, batch.x.double(), batch.timesteps, encoded=None if batch.const else batch.encoded.double(),
                 record=pools, record_trace=record_trace)
    events = {k: e.sum(0).reshape(-1) for k, e in r["events"].items()}
    events.update({k: (r["steps"][k] != 0).sum((0, 1)).reshape(-1) for k in pools})
    # no SynOps, no encoding, no batching, no SimResult: the driver's
    return Activity(output=r["output"], trace=r.get("trace"), events=events,
                    counts=r["counts"] if record_counts else None)


@pytest.fixture
def seam_backend():
    import neurosim.backends as nb

    b = nb.register_backend("seam_demo", prepare=_seam_prepare, simulate=_seam_simulate)
    try:
        yield b
    finally:
        nb._REGISTRY.pop("seam_demo", None)


def test_a_prepare_simulate_backend_gets_the_rest_from_the_driver(case, seam_backend):
    """A backend of two functions passes the float suite: the driver encodes (seeded, the whole batch),
    batches (batch_size, or its memory budget), assembles the SimResult and counts SynOps from the
    events its simulate reports; its extras, options and refusals follow from its signatures."""
    name, net, x, ref = case
    assert "seam_demo" in backend_names()
    if name == "zoo_transformer":
        return _check_refusal(net, x, "seam_demo")
    r, refused = _run(net, x, "seam_demo", "float", name)
    assert refused == []
    _check_float(net, x, ref, "seam_demo", seam_backend, r, refused)
    assert r.wall_s > 0 and r.extras == {}
    # batching: every batch size, and the memory budget (2 samples a chunk), give the same result
    for opts in ({"batch_size": 1}, {"batch_size": 3}, {"memory_mib": 16.0}):
        other = net.run(x, T, backend="seam_demo", seed=SEED, record_counts=True, **opts)
        np.testing.assert_array_equal(other.output, r.output)
        assert other.spike_counts == r.spike_counts and other.synops == r.synops
    _SEAM_CHUNKS.clear()
    net.run(x, T, backend="seam_demo", seed=SEED, memory_mib=16.0)
    assert _SEAM_CHUNKS == [2, 2]  # B = 4 under a budget of two samples
    _SEAM_CHUNKS.clear()
    net.run(x, T, backend="seam_demo", seed=SEED, batch_size=3)
    assert _SEAM_CHUNKS == [3, 1]
    assert seam_backend.options() == ("seed", "batch_size", "memory_mib", "record_trace", "record_counts")
    with pytest.raises(NeurosimError, match="does not support device='cuda'"):
        net.run(x, T, backend="seam_demo", device="cuda")
    with pytest.raises(NeurosimError, match="has no option 'lanes'"):
        net.run(x, T, backend="seam_demo", lanes=2)


# fixed point, each backend's docstring bound: (spike counts within rel * count + slack per population,
# readout within out_rel x its largest magnitude); lava: neurosim/backends/lava.py, "Fidelity bound"
FIXED_BOUNDS = {"lava": (0.05, 5, 0.20)}


@pytest.mark.parametrize("backend, precision", _precision_params())
def test_fixed_point_within_the_documented_bound(case, backend, precision):
    name, net, x, ref = case
    _backend(backend)
    assert backend in FIXED_BOUNDS, f"{backend} {precision}: add its documented bound to FIXED_BOUNDS"
    rel, slack, out_rel = FIXED_BOUNDS[backend]
    if _refuses(name, backend):
        return _check_refusal(net, x, backend, precision)
    r = net.run(x, T, backend=backend, precision=precision, seed=SEED)
    assert r.precision == precision
    for k, c in ref.spike_counts.items():
        assert abs(r.spike_counts[k] - c) <= rel * c + slack, (k, r.spike_counts[k], c)
    assert np.abs(r.output - ref.output).max() <= out_rel * np.abs(ref.output).max()


@pytest.mark.parametrize("backend", _backend_params())
def test_common_options_are_accepted_or_refused_with_one_clear_error(backend):
    """Every common option is a parameter of the backend's run, or accepted when it asks for nothing
    and refused with a NeurosimError naming it when it asks for something; an unknown option too.
    Nothing here starts a simulation (the driver refuses before the backend runs)."""
    b = _backend(backend)
    asks = {"seed": 5, "record_trace": True, "record_counts": True, "batch_size": 2, "device": "cuda"}
    off = {"seed": 0, "record_trace": False, "record_counts": False, "batch_size": None, "device": "cpu"}
    valid = b.options()
    for k in COMMON_OPTIONS:
        if valid is None or k in valid:
            assert b.check_options({k: asks[k]}) == {k: asks[k]}
            continue
        assert k != "seed" and k != "batch_size", f"{backend} must take {k}"
        assert b.check_options({k: off[k]}) == {}
        with pytest.raises(NeurosimError, match=f"does not support {k}="):
            b.check_options({k: asks[k]})
    net = zoo_direct()
    with pytest.raises(NeurosimError, match="has no option 'recod_trace'"):
        net.run(_inputs(net), 2, backend=backend, recod_trace=True)


@pytest.mark.lava
@pytest.mark.skipif(not lava_ok, reason="lava-nc runs on Python 3.10 only")
def test_lava_record_counts_is_a_clear_error_not_a_type_error():
    net = zoo_direct()
    with pytest.raises(NeurosimError, match="lava.*does not support record_counts=True"):
        net.run(_inputs(net), 2, backend="lava", record_counts=True)


def test_a_plain_run_function_still_registers():
    """The decorator form (a third-party backend that does everything itself): inputs are checked
    before it runs, its options come from its signature, and it is called with the checked batch."""
    import neurosim.backends as nb
    from neurosim.backends.reference import reference_run
    from neurosim.ir import SimResult

    seen = []

    @nb.register_backend("plain_demo")
    def run(net, inputs, timesteps, precision, *, seed: int = 0):
        seen.append(inputs.shape)
        out, counts = reference_run(net, inputs, timesteps)
        return SimResult(output=out, predictions=out.argmax(1), timesteps=timesteps,
                         spike_counts={k: float(np.abs(c).sum()) for k, c in counts.items()},
                         neurons={k: p.size for k, p in net.populations.items()}, firing_rates={}, synops={},
                         backend="plain_demo")

    try:
        net = zoo_direct()
        x = _inputs(net)
        assert run is nb.get_backend("plain_demo").run and nb.get_backend("plain_demo").options() == ("seed",)
        r = net.run(x[0], T, backend="plain_demo", seed=1, batch_size=None)  # one sample gains a batch axis
        assert seen == [(1, *net.input_shape)] and r.batch == 1
        with pytest.raises(NeurosimError, match="does not support record_trace=True"):
            net.run(x, T, backend="plain_demo", record_trace=True)
        with pytest.raises(NeurosimError, match="contain NaN"):
            net.run(np.full_like(x, np.nan), T, backend="plain_demo")
        assert len(seen) == 1  # refused before the backend ran
    finally:
        nb._REGISTRY.pop("plain_demo", None)
