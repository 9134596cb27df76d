"""Lava backend: float equals the IR semantics, fixed point stays close, runtimes never leak."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from neurosim.backends.reference import reference_run
from neurosim.errors import NeurosimError
from tests.backend_nets import cnn, leaky_zero_reset, mlp

pytestmark = pytest.mark.lava
lava_ok = sys.version_info[:2] == (3, 10)
needs_lava = pytest.mark.skipif(not lava_ok, reason="lava-nc runs on Python 3.10 only")


def _children() -> set[int]:
    """PIDs of the live child processes of this process (from /proc; zombies excluded).

    Python's ``multiprocessing.resource_tracker`` is not counted: it is started once per interpreter
    on the first shared-memory use and lives until the interpreter exits, by design.
    """
    pids = set()
    me = os.getpid()
    for task in Path(f"/proc/{me}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except OSError:
            pass
    live = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if state != "Z" and "resource_tracker" not in cmd:
            live.add(p)
    return live


def test_python_version_check_is_clear():
    from neurosim.backends.lava import check_python

    check_python((3, 10, 13))
    with pytest.raises(NeurosimError, match="Python 3.10"):
        check_python((3, 11, 4))
    with pytest.raises(NeurosimError, match="snntorch"):
        check_python((3, 12))


@pytest.fixture(scope="module")
def mlp_case():
    net = mlp(seed=3, per_channel=True)
    x = np.random.default_rng(5).uniform(0, 1, (10, 16)).astype(np.float32)
    ref, counts = reference_run(net, x, 12)
    return net, x, ref, counts


@needs_lava
def test_float_mlp_matches_ir_and_leaves_no_process(mlp_case):
    net, x, ref, counts = mlp_case
    before = _children()
    r = net.run(x, 12, backend="lava", precision="float", record_trace=True, chunk_steps=40)
    assert _children() <= before, "a Lava runtime process survived a successful run"
    np.testing.assert_allclose(r.output, ref, atol=1e-4)
    assert (r.predictions == ref.argmax(1)).all()
    for k, c in counts.items():
        assert r.spike_counts[k] == c.sum()
    assert r.trace.shape == (12, 10, 5)
    np.testing.assert_allclose(r.trace[-1], r.output, atol=1e-6)
    assert r.backend == "lava" and r.batch == 10 and set(r.synops) == {"fc1", "fc2", "fc3"}
    # synops of a layer fed by spikes = spikes x fan-out, per sample
    fan = (net.nodes["fc2"].weight != 0).sum(0)
    assert r.synops["fc2"] == pytest.approx((counts["n1"].sum(0) * fan).sum() / 10)


@needs_lava
def test_float_cnn_pool_residual_maxpool_matches_ir():
    net = cnn(seed=1)
    x = np.random.default_rng(2).uniform(0, 1, (4, 1, 8, 8)).astype(np.float32)
    ref, counts = reference_run(net, x, 10)
    r = net.run(x, 10, backend="lava")
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    for k, c in counts.items():
        assert r.spike_counts[k] == c.sum(), k
    assert r.lava_processes >= 10  # source, sink, 4 populations, max-pool, 5 synapse processes, a delay


@needs_lava
def test_poisson_input_uses_the_shared_encoder():
    import torch

    from neurosim.encoding import encode

    net = mlp(seed=4, encoding="poisson")
    x = np.random.default_rng(6).uniform(-1, 1, (6, 16)).astype(np.float32)
    e, _ = encode(net.encoding, torch.as_tensor(x), 10, generator=torch.Generator().manual_seed(7))
    ref, counts = reference_run(net, x, 10, encoded=e.numpy())
    r = net.run(x, 10, backend="lava", seed=7)
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    assert r.spike_counts["n1"] == counts["n1"].sum()


@needs_lava
def test_fixed_point_close_to_float_and_reports_quantisation(mlp_case):
    net, x, ref, counts = mlp_case
    r = net.run(x, 12, backend="lava", precision="fixed")
    assert r.precision == "fixed"
    q = r.quantization
    assert list(q["layer"]) == ["n1", "n2", "readout"]
    assert (q["weights_clipped"] == 0).all() and (q["v_saturations"] == 0).all()
    assert (q["weight_rel_rms_error"] < 0.01).all()  # 8-bit weights: rms error below 1% of the largest
    # spike counts within a few percent of the exact ones, outputs within a fraction of a threshold
    for k, c in counts.items():
        assert abs(r.spike_counts[k] - c.sum()) <= 0.05 * c.sum() + 5
    assert np.abs(r.output - ref).max() < 0.25


@needs_lava
def test_fixed_point_saturation_is_counted():
    net = mlp(seed=3)
    x = np.full((2, 16), 1.0, np.float32)
    # a tiny membrane range: vth_mant = 2**16 leaves +-2 thresholds in 24 bits, and big inputs overflow it
    r = net.run(x * 40, 4, backend="lava", precision="fixed", vth_mant=2 ** 16, input_scale=1.0)
    assert r.quantization["v_saturations"].sum() > 0


@needs_lava
@pytest.mark.parametrize("exc", [RuntimeError("boom mid-run"), KeyboardInterrupt()])
def test_runtime_is_stopped_on_error_and_interrupt(mlp_case, exc):
    net, x, _, _ = mlp_case
    before = _children()
    calls = []

    def progress(done, total):
        calls.append(done)
        raise exc

    with pytest.raises(type(exc)):
        net.run(x[:3], 8, backend="lava", chunk_steps=5, progress=progress)
    assert calls == [5]  # interrupted after the first chunk, mid-run
    assert _children() <= before, "a Lava runtime process survived an interrupted run"


def test_bad_precision_is_rejected():
    from neurosim.backends import get_backend

    if not lava_ok:
        pytest.skip("lava-nc runs on Python 3.10 only")
    with pytest.raises(NeurosimError, match="valid: float, fixed"):
        mlp().run(np.zeros((1, 16)), 4, backend="lava", precision="half")
    assert get_backend("lava").precisions == ("float", "fixed")


@needs_lava
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_failing_process_model_raises_instead_of_hanging(mlp_case, monkeypatch, sigint):
    """Lava 0.10 alone deadlocks when a ProcessModel raises; the backend must raise and clean up,
    also in a process that ignores SIGINT (started in the background or under nohup)."""
    import signal

    import neurosim.loihi.processes as procs

    if sigint == "ignored":
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)

    step = procs.PyConversionNeuronsFloat._run_spk

    def failing(self):
        if self.time_step == 5:
            raise ValueError("injected model failure")
        step(self)

    monkeypatch.setattr(procs.PyConversionNeuronsFloat, "_run_spk", failing)  # inherited by the forked workers
    net, x, _, _ = mlp_case
    before = _children()
    try:
        with pytest.raises(RuntimeError, match="process model failed"):
            net.run(x[:2], 6, backend="lava")
    finally:
        if sigint == "ignored":
            signal.signal(signal.SIGINT, old)
    assert _children() <= before, "a Lava worker survived a failed process model"


@needs_lava
def test_real_sigint_during_a_run_stops_the_runtime(mlp_case):
    """A real SIGINT (what Ctrl-C delivers) arriving while the main thread waits inside Lava's run."""
    import signal
    import threading

    net, x, _, _ = mlp_case
    before = _children()
    timers = []

    def progress(done, total):  # after the first chunk: interrupt 0.15 s into the next (300 steps, >= 0.3 s)
        if not timers:
            timers.append(threading.Timer(0.15, os.kill, (os.getpid(), signal.SIGINT)))
            timers[0].start()

    with pytest.raises(KeyboardInterrupt):
        # lanes=1: 6 samples back to back, 603 steps (side by side they would be 103, one chunk)
        net.run(x[:6], 100, backend="lava", chunk_steps=300, progress=progress, lanes=1)
    timers[0].join()
    assert _children() <= before, "a Lava worker survived Ctrl-C"


@needs_lava
def test_leaky_neurons_with_zero_reset_float_exact_fixed_close():
    net, x = leaky_zero_reset()
    ref, counts = reference_run(net, x, 15)
    r = net.run(x, 15, backend="lava")
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    assert r.spike_counts["n"] == counts["n"].sum() > 0
    q = net.run(x, 15, backend="lava", precision="fixed")  # 12-bit decay dv = round(0.1 * 4096)
    assert abs(q.spike_counts["n"] - counts["n"].sum()) <= 0.05 * counts["n"].sum() + 2


# ---- signed neurons (-1 spikes; the IR's signed IF) --------------------------------------------------

@pytest.fixture(scope="module")
def signed_mlp_case():
    net = mlp(seed=3, per_channel=True, signed=True)
    x = np.random.default_rng(5).uniform(0, 1, (8, 16)).astype(np.float32)
    ref, counts, events = reference_run(net, x, 12, events=True)
    return net, x, ref, counts, events


@needs_lava
def test_signed_float_mlp_matches_ir(signed_mlp_case):
    net, x, ref, counts, events = signed_mlp_case
    assert events["n2"].sum() > counts["n2"].sum()  # -1 spikes really occur
    r = net.run(x, 12, backend="lava", precision="float")
    np.testing.assert_allclose(r.output, ref, atol=1e-4)
    assert (r.predictions == ref.argmax(1)).all()
    for k, ev in events.items():
        assert r.spike_counts[k] == ev.sum(), k  # events: -1 spikes count too
    # synops: every +1 or -1 input spike times its fan-out, per sample
    fan = (net.nodes["fc3"].weight != 0).sum(0)
    assert r.synops["fc3"] == pytest.approx((events["n2"].sum(0) * fan).sum() / 8)


def _maxpool_events(net, x, T, mp):
    """Events of SpikeMaxPool2d ``mp`` (per element, summed over the batch) and its net count, from
    the reference's per-step outputs y_t."""
    d = reference_run(net, x, T, record=(mp,))[-1][mp]
    assert set(np.unique(d)) <= {-1.0, 0.0, 1.0}
    return np.abs(d).sum(axis=(0, 1)), d.sum()


@needs_lava
def test_signed_float_cnn_pool_residual_maxpool_matches_ir():
    net = cnn(seed=1, signed=True)
    x = np.random.default_rng(2).uniform(0, 1, (3, 1, 8, 8)).astype(np.float32)
    ref, counts, events = reference_run(net, x, 10, events=True)
    assert all(events[k].sum() > counts[k].sum() for k in ("n2", "n3", "out"))
    r = net.run(x, 10, backend="lava")
    np.testing.assert_allclose(r.output, ref, atol=1e-5)
    for k, ev in events.items():
        assert r.spike_counts[k] == ev.sum(), k
    # the max-pool emits -1 when a window's max falls: its events (seen through fc's synops) exceed its net count
    mp_events, mp_net = _maxpool_events(net, x, 10, "mp")
    assert mp_events.sum() > mp_net
    fan = (net.nodes["fc"].weight != 0).sum(0)
    assert r.synops["fc"] == pytest.approx((mp_events.reshape(-1) * fan).sum() / 3)


@needs_lava
def test_signed_fixed_point_agrees_with_float():
    net = mlp(seed=3, per_channel=True, signed=True)
    x = np.random.default_rng(9).uniform(0, 1, (40, 16)).astype(np.float32)
    ref, counts, events = reference_run(net, x, 10, events=True)
    r = net.run(x, 10, backend="lava", precision="fixed")
    f = net.run(x, 10, backend="lava", precision="float")
    assert (r.predictions == f.predictions).mean() >= 0.97
    q = r.quantization
    assert (q["weights_clipped"] == 0).all() and (q["v_saturations"] == 0).all()
    for k, ev in events.items():
        assert abs(r.spike_counts[k] - ev.sum()) <= 0.05 * ev.sum() + 5, k
    assert np.abs(r.output - ref).max() < 0.25


@needs_lava
def test_fixed_point_outsized_rows_get_a_neuron_gain():
    """Per-channel normalisation can leave a few neurons with weights 100x their layer's (a channel whose
    activation scale is tiny). One weight exponent per layer would flush every other weight of that
    layer to a few levels; fixed point gives those neurons a gain g (weights, bias, v_init and threshold
    all times g: the same dynamics), so the rest keep their 8 bits and fixed agrees with float."""
    net = mlp(seed=3)
    net.nodes["fc2"].weight[:2] *= 100.0  # two outsized rows into n2
    x = np.random.default_rng(7).uniform(0, 1, (12, 16)).astype(np.float32)
    ref, counts = reference_run(net, x, 12)
    r = net.run(x, 12, backend="lava", precision="fixed")
    q = r.quantization.set_index("layer")
    # the two outsized rows and at most the top decile (3 of 24) by construction
    assert 2 <= q.loc["n2", "neurons_rescaled"] <= 3 and q.loc["n2", "vth_min"] < q.loc["n2", "vth_mant"] / 50
    assert q.loc["n1", "neurons_rescaled"] <= 3
    for k, c in counts.items():
        assert abs(r.spike_counts[k] - c.sum()) <= 0.05 * c.sum() + 5, k
    assert np.abs(r.output - ref).max() < 0.05 * np.abs(ref).max() + 0.25
