"""Lava lanes: several samples side by side in every Lava process give exactly the results of one sample
per process (float and fixed point), the option is validated, and our lane synapses are Lava's Dense."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from neurosim.errors import NeurosimError
from tests.backend_nets import mlp, zoo_direct, zoo_poisson

pytestmark = [pytest.mark.lava,
              pytest.mark.skipif(sys.version_info[:2] != (3, 10), reason="lava-nc runs on Python 3.10 only")]

T = 8
B = 7  # not a multiple of the lanes: the last window has padding lanes, which must never count


def _inputs(net):
    lo = -1.0 if net.encoding.kind == "poisson" else 0.0
    return np.random.default_rng(4).uniform(lo, 1.0, (B, *net.input_shape)).astype(np.float32)


@pytest.mark.parametrize("precision", ["float", "fixed"])
@pytest.mark.parametrize("make", [zoo_direct, zoo_poisson], ids=["direct", "poisson"])
def test_lanes_equal_one_sample_per_process(make, precision):
    """zoo_direct: direct input, signed IF and LIF, zero reset, residual Add, max-pool of spikes;
    zoo_poisson: +-1 Poisson input, max-pool of the input and of signed spikes, spike-count readout."""
    net = make()
    x = _inputs(net)
    one = net.run(x, T, backend="lava", precision=precision, seed=3, record_trace=True, lanes=1)
    many = net.run(x, T, backend="lava", precision=precision, seed=3, record_trace=True, lanes=3)
    assert (one.lava_lanes, many.lava_lanes) == (1, 3)
    depth = one.lava_steps - B * T
    assert depth > 0 and many.lava_steps == 3 * T + depth  # ceil(7 / 3) windows of T steps
    np.testing.assert_array_equal(many.output, one.output)
    np.testing.assert_array_equal(many.trace, one.trace)
    assert many.spike_counts == one.spike_counts and all(v > 0 for v in one.spike_counts.values())
    assert many.synops == one.synops
    if precision == "fixed":
        cols = ["weight_exp", "weights_clipped", "v_saturations", "max_abs_a_in"]
        assert many.quantization[cols].equals(one.quantization[cols])


def test_default_lanes_take_the_batch_and_respect_the_memory_budget():
    from neurosim.backends.lava import auto_lanes, lane_bytes

    net = zoo_direct()
    assert auto_lanes(net, 7) == 7
    per = lane_bytes(net)
    assert per > 8 * int(np.prod(net.input_shape))
    assert auto_lanes(net, 10 ** 9) == int(512 * 2 ** 20 // per)
    assert auto_lanes(net, 10 ** 9, memory_mib=per / 2 ** 20 * 5) == 5
    assert auto_lanes(net, 10 ** 9, memory_mib=1e-9) == 1
    r = mlp(seed=3).run(np.random.default_rng(0).uniform(0, 1, (5, 16)), 4, backend="lava")
    assert r.lava_lanes == 5 and r.lava_steps == 4 + 3  # one window; three synaptic layers of latency


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "4", np.float32(3)])
def test_bad_lanes_is_one_clear_error(bad):
    with pytest.raises(NeurosimError, match=r"^lanes must be a positive integer .* got "):
        mlp().run(np.zeros((2, 16)), 4, backend="lava", lanes=bad)


def test_more_lanes_than_samples_is_the_batch():
    net = mlp(seed=3)
    x = np.random.default_rng(1).uniform(0, 1, (3, 16)).astype(np.float32)
    a = net.run(x, 5, backend="lava", lanes=64)
    b = net.run(x, 5, backend="lava", lanes=1)
    assert a.lava_lanes == 3
    np.testing.assert_array_equal(a.output, b.output)


@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_lane_dense_is_lavas_dense(precision):
    """LaneDense against lava.proc.dense's own Dense models (PyDenseModelFloat / PyDenseModelBitAcc),
    fed by one source in one Lava run: graded messages (num_message_bits=24) with a negative weight
    exponent and the same messages read as binary spikes (0) with a positive one; fixed point bit for
    bit."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink

    from neurosim.backends.lava import _shutdown
    from neurosim.loihi.processes import LaneDense, LaneSource, warm_up

    fixed = precision == "fixed"
    rng = np.random.default_rng(0)
    n_in, n_out, steps = 9, 6, 6
    if fixed:
        w = 2 * rng.integers(-128, 128, (n_out, n_in))
        data = rng.integers(-200, 200, (steps, 1, n_in))
    else:
        w = rng.normal(0, 1, (n_out, n_in))
        data = rng.normal(0, 2, (steps, 1, n_in))
    data = data * (rng.uniform(size=data.shape) < 0.6)  # some silent inputs
    src = LaneSource(data=data)
    pairs = []
    for nmb, e in ((24, -2), (0, 1)):
        e = e if fixed else 0
        lane = LaneDense(weights=w, in_shape=(n_in,), out_shape=(n_out,), lanes=1, weight_exp=e, num_message_bits=nmb)
        ref = Dense(weights=w, weight_exp=e, num_message_bits=nmb)
        lane_sink, ref_sink = Sink(shape=(1, n_out), buffer=steps), Sink(shape=(n_out,), buffer=steps)
        src.s_out.connect(lane.s_in)
        src.s_out.reshape((n_in,)).connect(ref.s_in)
        lane.a_out.connect(lane_sink.a_in)
        ref.a_out.connect(ref_sink.a_in)
        pairs.append((lane_sink, ref_sink))
    warm_up()
    try:
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt"))
        got = [(np.asarray(a.data.get())[0], np.asarray(b.data.get())) for a, b in pairs]
    finally:
        _shutdown(src, clean=True)
    for lane_out, ref_out in got:
        assert np.abs(ref_out).max() > 0
        if fixed:
            np.testing.assert_array_equal(lane_out, ref_out)
        else:
            np.testing.assert_allclose(lane_out, ref_out, rtol=1e-12, atol=1e-12)


def test_fixed_point_an_all_zero_sample_joins_the_others_run():
    """An all-zero direct input quantises to zero under any step, so it shares the Lava run (and the
    lanes) of the others instead of starting a runtime of its own; its result is the one it has alone."""
    net = mlp(seed=3)
    x = np.random.default_rng(2).uniform(0, 1, (4, 16)).astype(np.float32)
    x[2] = 0.0
    r = net.run(x, 6, backend="lava", precision="fixed")
    alone = net.run(x[2:3], 6, backend="lava", precision="fixed")
    assert r.lava_runs == 1 and len(r.lava_input_steps) == 1 and r.lava_lanes == 4
    np.testing.assert_array_equal(r.output[2], alone.output[0])
