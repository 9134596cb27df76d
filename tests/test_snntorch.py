"""snntorch backend: the IR's step semantics, agreement of every execution path, statistics, registry."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.backends import backend_names, get_backend
from neurosim.backends.snntorch import population
from neurosim.errors import NeurosimError
from neurosim.ir import Flatten, Linear, Neurons, Readout, SpikeMaxPool2d, SpikingNetwork
from tests.test_ir import make_net


def probe_net(n: int, threshold=1.0, v_init=0.5, leak=1.0, reset="subtract", v_reset=0.0) -> SpikingNetwork:
    """input -> identity Linear -> Neurons -> identity Linear (membrane readout = spike count / T)."""
    eye = np.eye(n)
    return SpikingNetwork((n,), {
        "w": Linear(("input",), weight=eye),
        "pop": Neurons(("w",), shape=(n,), threshold=threshold, v_init=v_init, leak=leak, reset=reset,
                       v_reset=v_reset),
        "out": Linear(("pop",), weight=eye),
    }, Readout("out"))


def test_registry():
    assert "snntorch" in backend_names()
    b = get_backend("snntorch")
    assert b.precisions == ("float",)
    with pytest.raises(NeurosimError, match="no precision 'fixed'"):
        make_net().run(np.zeros((1, 1, 8, 8)), 4, precision="fixed")
    with pytest.raises(NeurosimError, match="unknown backend 'nest'.*snntorch"):
        get_backend("nest")
    with pytest.raises(NeurosimError, match=r"inputs must have shape \[batch, 1, 8, 8\]"):
        make_net().run(np.zeros((2, 64)), 4)
    with pytest.raises(NeurosimError, match="timesteps"):
        make_net().run(np.zeros((1, 1, 8, 8)), 0)


@settings(max_examples=30, deadline=None)
@given(a=st.floats(-0.5, 1.5), T=st.integers(1, 40))
def test_constant_input_is_a_rounding_quantiser(a, T):
    """IF + reset by subtraction + v_init = threshold/2, constant current a: count = clip(floor(aT + 1/2), 0, T).

    (The identity behind QCFS conversion, Bu et al. 2022.) Floats are drawn on a 1/1024 grid so the
    sums are exact and the floor is unambiguous.
    """
    a = round(a * 1024) / 1024
    r = probe_net(1).run(np.array([[a]], np.float32), T, dtype="float64")
    count = r.output[0, 0] * T
    # strict threshold: a sum landing exactly on the threshold does not fire, so at exact ties the
    # count is one lower than the rounding; both are "floor(aT + 1/2)" up to the tie rule
    expect = np.clip(np.ceil(a * T + 0.5) - 1, 0, T)
    # the readout is A_T / T, so output x T carries one rounding (15/22 x 22 = 14.999999999999998);
    # counts are integers, so 1e-9 cannot hide a wrong count
    assert count == pytest.approx(expect, abs=1e-9)


def test_excess_charge_is_kept_after_saturation():
    """One spike per step at most; what exceeds the threshold stays in v (reset by subtraction)."""
    net = SpikingNetwork((1,), {"pop": Neurons(("input",), shape=(1,), v_init=0.0),
                                "out": Linear(("pop",), weight=np.ones((1, 1)))}, Readout("out"))
    # a constant 2.5 saturates (one spike per step) and charge piles up: after T steps the count is T
    for impl in ("snntorch", "torch", "numba"):
        r = net.run(np.array([[2.5]], np.float32), 6, neuron_impl=impl, record_trace=True)
        counts = r.trace[:, 0, 0] * np.arange(1, 7)
        assert np.allclose(counts, np.arange(1, 7)), impl


def _pop(n, thr, bias, v0, leak=1.0, reset="subtract", v_reset=0.0, signed=False):
    return Neurons(("x",), shape=(n,), threshold=thr, bias=bias, v_init=v0, leak=leak, reset=reset, v_reset=v_reset,
                   signed=signed)


@pytest.mark.parametrize("leak, reset, v_reset", [(1.0, "subtract", 0.0), (0.8, "subtract", 0.0),
                                                  (0.9, "zero", 0.0), (0.7, "zero", -0.3)])
def test_kernel_matches_the_torch_update(leak, reset, v_reset):
    """The numba kernel (layer mode, CPU) equals our plain torch update step by step, bit for bit."""
    rng = np.random.default_rng(0)
    T, n, B = 23, 7, 5
    cur = rng.normal(0.4, 1.0, size=(T, B, n)).astype(np.float32)
    thr = rng.uniform(0.5, 1.5, n).astype(np.float32)
    bias = rng.normal(0, 0.1, n).astype(np.float32)
    v0 = rng.uniform(0, 0.5, n).astype(np.float32)
    node = _pop(n, thr, bias, v0, leak, reset, v_reset)
    for c in (cur, cur[:1]):  # time-varying and constant input
        ref, ref_counts = population(node, c, T, "torch", torch.float32)
        out, counts = population(node, c, T, "numba", torch.float32)
        assert ref.abs().sum() > 0 and torch.equal(out, ref) and torch.equal(counts.to(ref.dtype), ref_counts)


@pytest.mark.parametrize("leak", [1.0, 0.9])
def test_signed_kernel_matches_the_torch_update(leak):
    rng = np.random.default_rng(4)
    T, n = 29, 40
    cur = rng.normal(0.2, 1.5, size=(T, 1, n)).astype(np.float32)  # large swings: spikes to take back
    thr = rng.uniform(0.5, 1.5, n).astype(np.float32)
    node = _pop(n, thr, 0.0, 0.5 * thr, leak, signed=True)
    ref, ref_events = population(node, cur, T, "torch", torch.float32)
    out, events = population(node, cur, T, "numba", torch.float32)
    assert torch.equal(out, ref) and torch.equal(events.to(ref.dtype), ref_events)
    ref = ref.numpy()
    assert (ref == -1).any() and (np.cumsum(ref, 0) >= 0).all()  # negative spikes occur; counts never < 0


def test_snntorch_leaky_matches_the_torch_update():
    """Where Leaky expresses the node (IF subtract, zero reset to 0), it gives our update's spikes."""
    rng = np.random.default_rng(7)
    T, n = 31, 50
    cur = rng.normal(0.3, 1.2, size=(T, 2, n))
    thr = rng.uniform(0.5, 1.5, n)
    for leak, reset in [(1.0, "subtract"), (0.8, "zero"), (1.0, "zero")]:
        node = _pop(n, thr, 0.05, 0.4 * thr, leak, reset)
        ref, _ = population(node, cur, T, "torch")
        out, _ = population(node, cur, T, "snntorch")
        assert ref.sum() > 0 and torch.equal(out, ref), (leak, reset)


def test_signed_neuron_takes_back_early_spikes():
    """A burst then an inhibition: the signed neuron ends at the rounded total, the plain one overshoots."""
    cur = np.array([[3.0], [0.0], [-2.6], [0.0], [0.0]], np.float32).reshape(5, 1, 1)  # total 0.4, v0 = 0.5
    plain, _ = population(_pop(1, 1.0, 0.0, 0.5), cur, 5, "torch", torch.float32)
    signed, events = population(_pop(1, 1.0, 0.0, 0.5, signed=True), cur, 5, "torch", torch.float32)
    assert plain.sum() == 2  # spikes at t=1,2 that cannot be taken back
    assert signed.sum() == 0 == np.floor(0.4 + 0.5) - 0 and events.item() == 4  # +1 +1 -1 -1


@pytest.mark.parametrize("builder", ["mlp", "cnn"])
def test_signed_networks_match_the_reference_on_every_path(builder):
    """Signed populations (and a max-pool of signed spikes): every path equals the IR reference in float64."""
    from neurosim.backends.reference import reference_run
    from tests import backend_nets

    net = getattr(backend_nets, builder)(seed=2, signed=True)
    x = np.random.default_rng(5).uniform(0, 1, size=(6, *net.input_shape)).astype(np.float32)
    out, net_counts, events = reference_run(net, x, 14, events=True)
    assert sum(e.sum() for e in events.values()) > sum(c.sum() for c in net_counts.values())  # -1 spikes occur
    for mode, impl in [("step", "torch"), ("layer", "torch"), ("layer", "numba")]:
        r = net.run(x, 14, mode=mode, neuron_impl=impl, dtype="float64", record_counts=True)
        assert np.allclose(r.output, out, atol=1e-9), (mode, impl)
        for k in events:
            assert r.spike_counts[k] == events[k].sum(), (k, mode, impl)
            assert np.array_equal(r.counts[k], net_counts[k]), (k, mode, impl)
    rs = net.run(x, 14, mode="step", neuron_impl="torch", dtype="float64")
    rl = net.run(x, 14, dtype="float64")
    assert rs.synops == rl.synops


@pytest.mark.parametrize("leak, reset, encoding", [(1.0, "subtract", "direct"), (0.8, "subtract", "direct"),
                                                   (0.9, "zero", "direct"), (1.0, "subtract", "poisson")])
def test_all_execution_paths_agree_bit_for_bit(leak, reset, encoding):
    """Leaky, in-place torch and the numba kernel; layer-by-layer and step-by-step: identical in float64."""
    net = make_net(5, leak, reset, encoding=encoding)
    x = np.random.default_rng(1).uniform(0, 2, size=(4, 1, 8, 8)).astype(np.float32)
    ref = net.run(x, 16, mode="step", neuron_impl="snntorch", dtype="float64", record_trace=True)
    assert ref.total_spikes > 0
    for mode, impl in [("step", "torch"), ("layer", "snntorch"), ("layer", "torch"), ("layer", "numba")]:
        r = net.run(x, 16, mode=mode, neuron_impl=impl, dtype="float64", record_trace=True)
        assert np.array_equal(r.trace, ref.trace), (mode, impl)
        assert r.spike_counts == ref.spike_counts and r.synops == ref.synops, (mode, impl)
    # float32 gives the same spikes up to accumulation order in the readout
    r32 = net.run(x, 16)
    assert np.allclose(r32.output, ref.output, atol=1e-4)


def test_trace_equals_shorter_runs_and_batching_is_invisible():
    net = make_net(6)
    x = np.random.default_rng(2).uniform(0, 1, size=(7, 1, 8, 8)).astype(np.float32)
    long = net.run(x, 16, record_trace=True, batch_size=3)
    for t in (1, 5, 16):
        short = net.run(x, t)
        assert np.allclose(long.trace[t - 1], short.output, atol=1e-5)
    assert np.allclose(long.output, net.run(x, 16).output, atol=1e-5)


def test_spiking_max_pool_count_is_the_max_count():
    """SpikeMaxPool2d: the output count after any t equals the largest input count of its window."""
    rng = np.random.default_rng(3)
    n_in = 2 * 4 * 4
    x = rng.uniform(0, 1, size=(3, n_in)).astype(np.float32)
    counts = np.clip(np.ceil(x * 20 + 0.5) - 1, 0, 20)  # what each input neuron emits in 20 steps
    img = SpikingNetwork((2, 4, 4), {
        "pop": Neurons(("input",), shape=(2, 4, 4), v_init=0.5),
        "pool": SpikeMaxPool2d(("pop",), kernel_size=2),
        "flat": Flatten(("pool",)),
        "out": Linear(("flat",), weight=np.eye(8)),
    }, Readout("out"))
    r = img.run(x.reshape(3, 2, 4, 4), 20, dtype="float64")
    pooled = counts.reshape(3, 2, 2, 2, 2, 2).max(axis=(3, 5)).reshape(3, 8)
    assert np.allclose(r.output * 20, pooled)
    assert r.spike_counts["pop"] == counts.sum()


def test_statistics():
    net = probe_net(5)
    x = np.array([[0.1, 0.3, 0.5, 0.9, 0.0]], np.float32)
    r = net.run(x, 10)
    counts = r.output[0] * 10
    assert r.spike_counts["pop"] == pytest.approx(counts.sum())
    assert r.firing_rates["pop"] == pytest.approx(counts.sum() / 50)
    # synops: analog input counted every step (4 nonzero inputs x 1 synapse x 10 steps), spikes x fan-out 1
    assert r.synops == {"w": 40.0, "out": pytest.approx(counts.sum())}
    assert r.neurons == {"pop": 5}


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 1000), T=st.integers(1, 12))
def test_spike_counts_bounded_by_timesteps(seed, T):
    net = make_net(seed)
    x = np.random.default_rng(seed).normal(0, 3, size=(2, 1, 8, 8)).astype(np.float32)
    r = net.run(x, T)
    for k, c in r.spike_counts.items():
        assert 0 <= c <= r.neurons[k] * T * 2
        assert 0 <= r.firing_rates[k] <= 1


def test_zero_reset_to_nonzero_v_reset_runs_ours():
    """snntorch cannot reset to v_reset != 0; the backend falls back to its own update."""
    net = probe_net(1, reset="zero", v_reset=-1.0, v_init=0.0)
    r = net.run(np.array([[0.6]], np.float32), 6, record_trace=True, neuron_impl="snntorch")
    # v: 0.6, 1.2* -> -1, -0.4, 0.2, 0.8, 1.4* : spikes at steps 2 and 6
    assert np.allclose(r.trace[:, 0, 0] * np.arange(1, 7), [0, 1, 1, 1, 1, 2])


def test_gpu_free_device_argument():
    net = probe_net(2)
    r = net.run(torch.tensor([[0.5, 0.25]]), 8, device="cpu")
    assert r.output.shape == (1, 2) and r.predictions.shape == (1,)


def test_maxpool_of_poisson_input_counts_every_event():
    """A max-pool reading the Poisson input (+-1 spikes) in a network without signed populations: its
    -1 outputs are events too, so the layer it feeds gets the synops of |y_t| (the step loop and the
    reference count step by step)."""
    from neurosim.backends.reference import reference_run
    from neurosim.encoding import encode
    from neurosim.ir import Encoding

    rng = np.random.default_rng(0)
    net = SpikingNetwork(input_shape=(2, 4, 4), nodes={
        "mp": SpikeMaxPool2d("input", kernel_size=2), "flat": Flatten("mp"),
        "fc": Linear("flat", weight=rng.normal(0, 1, (3, 8))),
        "n": Neurons("fc", shape=(3,), threshold=1.0, v_init=0.5),
        "out": Linear("n", weight=rng.normal(0, 1, (4, 3)))}, readout=Readout("out"), encoding=Encoding("poisson"))
    x = rng.uniform(-1, 1, (3, 2, 4, 4)).astype(np.float32)
    e, _ = encode(net.encoding, torch.as_tensor(x), 12, generator=torch.Generator().manual_seed(9))
    _, _, rec = reference_run(net, x, 12, encoded=e.numpy(), record=("mp",))
    assert (rec["mp"] < 0).any()
    want = (np.abs(rec["mp"]).sum((0, 1)).reshape(-1) * (net.nodes["fc"].weight != 0).sum(0)).sum() / 3
    for mode in ("layer", "step"):
        r = net.run(x, 12, seed=9, mode=mode, dtype="float64")
        assert r.synops["fc"] == pytest.approx(want), mode


def test_docstring_states_the_reset_delay_the_code_uses():
    import re

    import neurosim.backends.snntorch as mod

    import snntorch

    pop = mod._Populations(Neurons(("x",), shape=(3,)), "snntorch", torch.float32)
    assert isinstance(pop.leaky, snntorch.Leaky)
    stated = re.search(r"reset_delay=(True|False)", mod.__doc__).group(1)
    assert stated == str(pop.leaky.reset_delay) == "True"
