"""Brian2 backend: NeuronGroups + Synapses reproduce the IR's step semantics exactly."""
from __future__ import annotations

import numpy as np
import pytest

from neurosim.backends.reference import reference_run
from neurosim.errors import NeurosimError
from tests.backend_nets import cnn, leaky_zero_reset, mlp

pytestmark = pytest.mark.brian2


def test_mlp_matches_ir_exactly_with_trace_and_batch_chunks():
    net = mlp(seed=3, per_channel=True, leak=1.0)
    x = np.random.default_rng(5).uniform(0, 1, (9, 16)).astype(np.float32)
    ref, counts = reference_run(net, x, 12)
    r = net.run(x, 12, backend="brian2", record_trace=True, batch_size=5)  # 2 chunks of side-by-side samples
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    for k, c in counts.items():
        assert r.spike_counts[k] == c.sum()
    assert r.trace.shape == (12, 9, 5)
    np.testing.assert_allclose(r.trace[-1], r.output, atol=1e-6)
    fan = (net.nodes["fc2"].weight != 0).sum(0)
    assert r.synops["fc2"] == pytest.approx((counts["n1"].sum(0) * fan).sum() / 9)
    assert r.backend == "brian2"


def test_leaky_neurons_and_zero_reset():
    net, x = leaky_zero_reset()
    ref, counts = reference_run(net, x, 15)
    r = net.run(x, 15, backend="brian2")
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    assert r.spike_counts["n"] == counts["n"].sum() > 0


def test_cnn_pooling_residual_maxpool_matches_ir():
    net = cnn(seed=2)
    x = np.random.default_rng(4).uniform(0, 1, (3, 1, 8, 8)).astype(np.float32)
    ref, counts = reference_run(net, x, 10)
    r = net.run(x, 10, backend="brian2")
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    for k, c in counts.items():
        assert r.spike_counts[k] == c.sum(), k


def test_signed_mlp_matches_ir_events_and_net_counts():
    net = mlp(seed=3, signed=True)
    x = np.random.default_rng(5).uniform(-1, 1, (4, 16)).astype(np.float32)
    ref, counts, events = reference_run(net, x, 10, events=True)
    assert sum(e.sum() for e in events.values()) > sum(c.sum() for c in counts.values())  # -1 spikes occur
    r = net.run(x, 10, backend="brian2", record_trace=True, record_counts=True, batch_size=3)  # 2 chunks
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    np.testing.assert_allclose(r.trace[-1], r.output, atol=1e-6)
    for k in counts:
        assert r.spike_counts[k] == events[k].sum(), k
        np.testing.assert_array_equal(r.counts[k], counts[k])
        assert r.firing_rates[k] == pytest.approx(events[k].sum() / (24 * 10 * 4))
    fan = (net.nodes["fc3"].weight != 0).sum(0)
    assert r.synops["fc3"] == pytest.approx((events["n2"].sum(0) * fan).sum() / 4)  # -1 spikes are synops too


def test_signed_cnn_maxpool_falls_and_spike_readout_sums_signed_spikes():
    net = cnn(seed=2, signed=True)
    x = np.random.default_rng(4).uniform(-1, 1, (3, 1, 8, 8)).astype(np.float32)
    T = 10
    ref, counts, events, rec = reference_run(net, x, T, events=True, record=("mp",))
    for k in ("n2", "n3", "out"):
        assert events[k].sum() > counts[k].sum(), k
    r = net.run(x, T, backend="brian2", record_counts=True)
    np.testing.assert_allclose(r.output, ref, atol=1e-5)  # the readout: net counts
    for k in counts:
        assert r.spike_counts[k] == events[k].sum(), k
        np.testing.assert_array_equal(r.counts[k], counts[k])
    # the max-pool's events (its window maximum of n3's net counts rises and falls) drive fc's synops
    steps = rec["mp"]  # y_t of the max-pool
    assert (steps < 0).any()
    fan = (net.nodes["fc"].weight != 0).sum(0)
    assert r.synops["fc"] == pytest.approx((np.abs(steps).sum((0, 1)).reshape(-1) * fan).sum() / 3)


def test_maxpool_of_poisson_input_follows_signed_input_counts():
    import torch

    from neurosim.encoding import encode
    from neurosim.ir import Encoding, Flatten, Linear, Neurons, Readout, SpikeMaxPool2d, SpikingNetwork

    rng = np.random.default_rng(0)
    net = SpikingNetwork(input_shape=(2, 4, 4), nodes={
        "mp": SpikeMaxPool2d("input", kernel_size=2), "flat": Flatten("mp"),
        "fc": Linear("flat", weight=rng.normal(0, 1, (3, 8))),
        "n": Neurons("fc", shape=(3,), threshold=1.0, v_init=0.5, signed=True),
        "out": Linear("n", weight=rng.normal(0, 1, (4, 3)))}, readout=Readout("out"), encoding=Encoding("poisson"))
    x = rng.uniform(-1, 1, (3, 2, 4, 4)).astype(np.float32)
    e, _ = encode(net.encoding, torch.as_tensor(x), 12, generator=torch.Generator().manual_seed(9))
    ref, counts, events = reference_run(net, x, 12, encoded=e.numpy(), events=True)
    r = net.run(x, 12, backend="brian2", seed=9)
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    assert r.spike_counts["n"] == events["n"].sum()


def test_poisson_input_uses_the_shared_encoder():
    import torch

    from neurosim.encoding import encode

    net = mlp(seed=4, encoding="poisson")
    x = np.random.default_rng(6).uniform(-1, 1, (4, 16)).astype(np.float32)
    e, _ = encode(net.encoding, torch.as_tensor(x), 10, generator=torch.Generator().manual_seed(9))
    ref, _ = reference_run(net, x, 10, encoded=e.numpy())
    r = net.run(x, 10, backend="brian2", seed=9)
    np.testing.assert_allclose(r.output, ref, atol=1e-5)


def test_bad_options_are_rejected():
    with pytest.raises(NeurosimError, match="valid: numpy, cython"):
        mlp().run(np.zeros((1, 16)), 4, backend="brian2", target="cuda")
    with pytest.raises(NeurosimError, match="inputs must have shape"):
        mlp().run(np.zeros((2, 15)), 4, backend="brian2")
    with pytest.raises(NeurosimError, match="valid: float"):
        mlp().run(np.zeros((1, 16)), 4, backend="brian2", precision="fixed")


def _cw_net():
    """A residual Add whose weight has shape (C,) on a (C, H, W) map with C == W: the IR broadcasts it
    along W (per position), not per channel."""
    from neurosim.ir import Add, Conv2d, Flatten, Linear, Neurons, Readout, SpikingNetwork

    rng = np.random.default_rng(1)
    C = 4
    return SpikingNetwork(input_shape=(1, 4, 4), nodes={
        "conv": Conv2d("input", weight=rng.normal(0, .8, (C, 1, 3, 3)), padding=1),
        "n1": Neurons("conv", shape=(C, 4, 4), threshold=1.0, v_init=0.5),
        "add": Add(("n1",), weights=[np.array([0.2, 0.6, 1.0, 1.4], np.float32)]),
        "n2": Neurons("add", shape=(C, 4, 4), threshold=0.5, v_init=0.25),
        "flat": Flatten("n2"),
        "fc": Linear("flat", weight=rng.normal(0, .5, (3, C * 16)))}, readout=Readout("fc"))


def test_channel_weight_with_c_equal_w_broadcasts_along_w():
    import torch

    from neurosim.ir.lowering import Lowering

    net = _cw_net()
    (term,) = Lowering(net).targets["n2"].terms
    xin = torch.rand(2, *term.in_shape, dtype=torch.float64)
    cf = term.conv_form()
    if cf is not None:  # a per-channel (depthwise) form must equal the IR's own broadcasting
        got = torch.nn.functional.conv2d(xin, torch.as_tensor(cf[0]), None, *cf[1:])
        assert torch.allclose(got, term.apply(xin))
    x = np.random.default_rng(2).uniform(0, 1, (3, 1, 4, 4)).astype(np.float32)
    ref, counts = reference_run(net, x, 10)
    r = net.run(x, 10, backend="brian2")
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    for k, c in counts.items():
        assert r.spike_counts[k] == c.sum(), k


def test_a_second_run_after_a_node_edit_uses_the_edited_network():
    """Calibration replaces a population by one with a new bias between runs (and a user may scale a
    weight array in place): the cached lowering must not be reused after either."""
    import dataclasses

    net = mlp(seed=3)
    x = np.random.default_rng(5).uniform(0, 1, (3, 16)).astype(np.float32)
    net.run(x, 8, backend="brian2")
    net.nodes["n1"] = dataclasses.replace(net.nodes["n1"], bias=np.full(24, 0.3, np.float32))
    r = net.run(x, 8, backend="brian2")
    np.testing.assert_allclose(r.output, reference_run(net, x, 8)[0], atol=1e-5)
    net.nodes["fc2"].weight[...] *= 0.5  # numpy's in-place multiply of the node's array
    net.nodes["fc3"].weight[:] = net.nodes["fc3"].weight * -1.0  # in place only
    r = net.run(x, 8, backend="brian2")
    np.testing.assert_allclose(r.output, reference_run(net, x, 8)[0], atol=1e-5)


def test_dt_option_only_and_global_clock_restored():
    """The clock step comes from ``dt_s`` alone (nothing writes an IR ``metadata["dt_s"]``) and Brian2's
    global ``defaultclock.dt`` is the caller's again after a run."""
    import brian2 as b2

    net = mlp(seed=1)
    net.metadata["dt_s"] = "not read"
    x = np.random.default_rng(0).uniform(0, 1, (2, 16)).astype(np.float32)
    old = b2.defaultclock.dt
    try:
        b2.defaultclock.dt = 0.1 * b2.ms
        r = net.run(x, 6, backend="brian2", dt_s=2e-3)
        assert abs(float(b2.defaultclock.dt) - 1e-4) < 1e-12
        np.testing.assert_allclose(r.output, reference_run(net, x, 6)[0], atol=1e-5)
        net.run(x, 6, backend="brian2")
        assert abs(float(b2.defaultclock.dt) - 1e-4) < 1e-12
    finally:
        b2.defaultclock.dt = old
    with pytest.raises(NeurosimError, match="dt_s must be a positive"):
        net.run(x, 6, backend="brian2", dt_s=-1.0)


def test_a_process_that_ignores_sigint_keeps_ignoring_it_after_a_brian2_run():
    """brian2 wraps the SIGINT handler it finds at import; a wrapped SIG_IGN (a process started under
    nohup or in the background) turned every later Ctrl-C into a TypeError inside brian2."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import os, signal\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "import numpy as np\n"
            "from tests.backend_nets import mlp\n"
            "mlp().run(np.ones((1, 16), np.float32), 3, backend='brian2')\n"
            "assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN, signal.getsignal(signal.SIGINT)\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "print('still here')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0 and "still here" in r.stdout, r.stderr[-2000:]


@pytest.mark.parametrize("make", ["zoo_direct", "zoo_poisson"])
def test_chunks_one_after_another_in_one_run_restart_every_state(make):
    """Chunks of side-by-side samples follow each other in time within one Brian2 run, every state
    variable restarting every T steps: with one sample per chunk (5 chunks in one run) every output,
    spike event, net count and trace step equals the reference, whatever ran in the chunk before."""
    import tests.backend_nets as nets

    net = getattr(nets, make)()
    lo = -1.0 if net.encoding.kind == "poisson" else 0.0
    x = np.random.default_rng(7).uniform(lo, 1.0, (5, *net.input_shape)).astype(np.float32)
    ref = get_reference(net, x)
    r = net.run(x, 9, backend="brian2", batch_size=1, record_counts=True, record_trace=True, seed=2)
    np.testing.assert_allclose(r.output, ref.output, atol=1e-5)
    np.testing.assert_allclose(r.trace, ref.trace, atol=1e-5)
    for k in net.populations:
        np.testing.assert_array_equal(r.counts[k], ref.counts[k])
        assert r.spike_counts[k] == ref.spike_counts[k]
    whole = net.run(x, 9, backend="brian2", seed=2)  # one chunk (analog-map layers count SynOps as an upper bound)
    assert r.synops == pytest.approx(whole.synops)


def get_reference(net, x):
    return net.run(x, 9, backend="reference", record_counts=True, record_trace=True, seed=2)
