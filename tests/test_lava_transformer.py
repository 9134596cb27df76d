"""Spiking-Transformer operators on Lava (issue 13): float equals the reference backend, fixed point stays
within its derived bound, the integer kernels are what they claim, and what is unsupported is refused.

Fixed-point bound (derivation). Relative to the float run, a synaptic layer with ``weight_bits = b``
weights (one exponent per layer, ``max|q| >= 2**(b-2)`` after the exponent's ceiling) perturbs each
weight by at most half a step, ``2**-(b-1)`` of its largest weight, i.e. about ``2**-(b-1) / sqrt(3)``
RMS; through ``n`` synaptic layers these compound to about ``n 2**-(b-1)`` of the readout's largest
magnitude. Everything else is much finer (16-bit multipliers, 24-bit messages at 2x headroom: ``2**-15``
per operator), and a spike moves only where a membrane lies within that error of its threshold. So we
assert the readout within ``2 n 2**-(b-1)`` of ``max|output|`` (the factor 2 for the spike flips) and
every population's spike events within 5 % + 5 of the float run's (the Lava CNN backend's bound).
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from neurosim.errors import NeurosimError
from neurosim.ir import (Activation, Add, AvgPool2d, Concat, Constant, Conv2d, Embedding, Flatten, LayerNorm, Linear,
                         MatMul, Neurons, Readout, Reshape, Slice, Softmax, SpikingNetwork, TokenLinear, Transpose)
from tests.backend_nets import token_inputs, zoo_transformer

lava_ok = sys.version_info[:2] == (3, 10)
needs_lava = pytest.mark.skipif(not lava_ok, reason="lava-nc runs on Python 3.10 only")
T = 10


def variants(seed: int = 0) -> SpikingNetwork:
    """What zoo_transformer lacks, in one graph: a Conv2d patch embedding of an image, a class token
    concatenated in front, LayerNorm, GELU-tanh / SiLU / tanh, a LIF population with reset to v_reset != 0
    and per-feature thresholds, a signed IF population fed by spikes through a TokenLinear, an Add of four branches, MatMul without
    transpose on graded operands, a non-causal Softmax, spikes into a MatMul, Flatten and Concat of 1-D
    maps, a Linear readout."""
    rng = np.random.default_rng(seed)
    n = {
        "patch": Conv2d("input", weight=rng.normal(0, 1, (4, 1, 2, 2)), bias=rng.normal(0, .1, 4), stride=2),
        "tok": Reshape("patch", shape=(4, 4)),
        "tokT": Transpose("tok", perm=(1, 0)),
        "cls": Constant((), value=rng.normal(0, .5, (1, 4))),
        "cat": Concat(("cls", "tokT"), axis=0),
        "ln": LayerNorm("cat", weight=rng.uniform(.8, 1.2, 4), bias=rng.normal(0, .1, 4)),
        "fc": TokenLinear("ln", weight=rng.normal(0, .7, (8, 4)), bias=rng.normal(0, .1, 8)),
        "a1": Activation("fc", fn="gelu_tanh"),
        "a2": Activation("fc", fn="silu"),
        "a3": Activation("fc", fn="tanh"),
        "h": Neurons("fc", shape=(5, 8), threshold=rng.uniform(.3, .6, 8), leak=0.9, bias=0.05, reset="zero",
                     v_reset=0.1),
        "fc2": TokenLinear("h", weight=rng.normal(0, .7, (8, 8)), bias=rng.normal(0, .2, 8)),
        "hs": Neurons("fc2", shape=(5, 8), threshold=0.3, v_init=0.15, signed=True),
        "mix": Add(("a1", "a2", "h", "hs"), weights=[np.float32(1), np.float32(.5), np.float32(.7), np.float32(.3)]),
        "sl": Slice("mix", axis=1, start=0, stop=4),
        "a3s": Slice("a3", axis=1, start=0, stop=4),
        "a3t": Transpose("a3s", perm=(1, 0)),
        "m1": MatMul(("sl", "a3t"), scale=0.5),
        "sm": Softmax("m1"),
        "p": Neurons("sm", shape=(5, 5), threshold=0.2, v_init=0.1),
        "ps": Add(("p",), weights=[np.float32(0.2)]),
        "v": Slice("a2", axis=1, start=4, stop=8),
        "m2": MatMul(("ps", "v")),
        "f1": Flatten("m2"),
        "f2": Flatten("hs"),
        "res": Concat(("f1", "f2"), axis=0),
        "out": Linear("res", weight=rng.normal(0, .5, (3, 60)), bias=rng.normal(0, .1, 3)),
    }
    return SpikingNetwork(input_shape=(1, 4, 4), nodes=n, readout=Readout("out", "membrane"))


def _images(b=4, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (b, 1, 4, 4)).astype(np.float32)


CASES = {"zoo_transformer": (zoo_transformer, lambda net: token_inputs(net, 4)),
         "variants": (variants, lambda net: _images())}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    make, data = CASES[request.param]
    net = make()
    x = data(net)
    ref = net.run(x, T, backend="reference", record_trace=True)
    return request.param, net, x, ref


def test_the_cases_exercise_what_they_claim(case):
    name, net, x, ref = case
    for k, p in net.populations.items():
        assert ref.spike_counts[k] > 0, k
    if name == "variants":
        r = net.run(x, T, backend="reference", record_counts=True)
        assert r.spike_counts["hs"] > np.abs(r.counts["hs"]).sum()  # -1 spikes happen


@pytest.fixture(scope="module")
def float_run(case):
    from neurosim.backends._lava_transformer import simulate_transformer

    name, net, x, ref = case
    # 2 lanes for 4 samples: two sample windows back to back, so every state restarts between them
    return simulate_transformer(net, x, T, "float", record_trace=True, lanes=2)


@needs_lava
@pytest.mark.lava
def test_float_equals_the_reference(case, float_run):
    name, net, x, ref = case
    from tests.test_lava_backend import _children

    r = float_run
    assert not _children()  # the Lava runtime is gone
    assert r.backend == "lava" and r.precision == "float" and r.batch == len(x) and r.lava_lanes == 2
    np.testing.assert_allclose(r.output, ref.output, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r.trace, ref.trace, rtol=1e-5, atol=1e-5)
    assert (r.predictions == ref.predictions).all()
    assert r.spike_counts == ref.spike_counts and r.neurons == ref.neurons
    assert set(r.synops) == set(ref.synops)
    for k, want in ref.synops.items():
        graded = net.nodes[k].kind in ("TokenLinear", "MatMul", "Linear") and net.spike_source(net.nodes[k].inputs[0]) is None
        # a graded input is 0 at a step or not by float rounding (g_t - g_{t-1}): within a few percent
        assert r.synops[k] == pytest.approx(want, rel=0.05 if graded else 1e-9), (k, r.synops[k], want)


def _n_synaptic(net) -> int:
    """Synaptic layers (Linear, TokenLinear, Conv2d) on the longest path to the readout."""
    depth = {"input": 0}
    for k, n in net.nodes.items():
        d = max(depth[i] for i in n.inputs) if n.inputs else 0
        depth[k] = d + isinstance(n, (Linear, TokenLinear, Conv2d))
    return depth[net.readout.node]


@pytest.fixture(scope="module")
def fixed_run(case):
    from neurosim.backends._lava_transformer import simulate_transformer

    name, net, x, ref = case
    return simulate_transformer(net, x, T, "fixed", lanes=4)


@needs_lava
@pytest.mark.lava
def test_fixed_point_within_the_derived_bound(case, fixed_run):
    name, net, x, ref = case
    r = fixed_run
    bits = 8
    bound = 2 * _n_synaptic(net) * 2.0 ** -(bits - 1)
    err = np.abs(r.output - ref.output).max() / np.abs(ref.output).max()
    assert err <= bound, (err, bound)
    assert err > 0  # it is quantised: not the float result
    for k, c in ref.spike_counts.items():
        assert abs(r.spike_counts[k] - c) <= 0.05 * c + 5, (k, r.spike_counts[k], c)
    q = r.quantization
    assert set(q["node"]) == {k for k, n in net.nodes.items() if not isinstance(n, (
        Reshape, Transpose, Slice, Concat, Flatten, Constant, Add))} | {"readout", "input"}
    assert q.set_index("node").loc["input", "quantised"] == (
        "token ids (exact integers)" if name == "zoo_transformer" else "analog input (16-bit, scale 2**-15)")
    assert (q["saturations"] == 0).all()
    syn = q[q["kind"].isin(["Linear", "TokenLinear", "Conv2d"])]
    assert (syn["weight_rel_rms_error"] > 0).all() and (syn["weight_rel_rms_error"] < 2.0 ** -(bits - 1)).all()


@needs_lava
@pytest.mark.lava
def test_the_lava_run_is_its_emulation_bit_for_bit(case, float_run, fixed_run):
    """The ProcessModels do exactly the kernels and wires (``emulate=True`` steps them in this process, in
    topological order, without a runtime), for every lane count: the fixed-point run is integer arithmetic."""
    from neurosim.backends._lava_transformer import simulate_transformer

    name, net, x, ref = case
    for r, prec, lanes in ((float_run, "float", 2), (fixed_run, "fixed", 4), (fixed_run, "fixed", 1)):
        e = simulate_transformer(net, x, T, prec, record_trace=True, lanes=lanes, emulate=True)
        np.testing.assert_array_equal(e.output, r.output)
        assert e.spike_counts == r.spike_counts and e.synops == r.synops


def test_more_weight_bits_shrink_the_fixed_point_error():
    """16-bit weights: the readout error falls well below the 8-bit run's (the quantisation is real and
    the remaining error is the 16-bit multipliers and 24-bit messages); per-row exponents do no worse
    than one per layer. On the emulation (the same arithmetic as the Lava run, checked above)."""
    pytest.importorskip("lava")
    from neurosim.backends._lava_transformer import simulate_transformer

    net = variants()
    x = _images()
    ref = net.run(x, T, backend="reference")
    err = {}
    for bits, ex in ((8, "layer"), (8, "row"), (16, "row")):
        r = simulate_transformer(net, x, T, "fixed", weight_bits=bits, weight_exponent=ex, emulate=True)
        err[bits, ex] = np.abs(r.output - ref.output).max()
    assert err[16, "row"] < err[8, "row"] / 4, err
    assert err[8, "row"] <= err[8, "layer"] * 1.5, err


# ---- the integer kernels, without a Lava runtime ------------------------------------------------------------

def test_integer_helpers():
    pytest.importorskip("lava")
    from neurosim.loihi import transformer_processes as tp

    v = np.array([0, 1, 2, 3, 4, 15, 16, 17, 2 ** 40 - 1, 2 ** 40, 2 ** 61 + 12345], np.int64)
    s = tp.isqrt(v)
    assert all(int(a) == math.isqrt(int(b)) for a, b in zip(s, v))
    x = np.array([-7, -6, -5, 5, 6, 7], np.int64)
    assert tp.rdiv(x, 4).tolist() == [-2, -2, -1, 1, 2, 2]  # half away from zero
    assert tp.rshift(np.array([5, 6, -5, -6]), 2).tolist() == [1, 2, -1, -1]  # half up
    q, sh = tp.quant_mult(0.3)
    assert 2 ** 14 <= abs(q) < 2 ** 15 and abs(q * 2.0 ** -sh - 0.3) <= 2.0 ** -sh


def test_fixed_kernels_track_their_float_functions():
    """Each fixed kernel against its float kernel on the same accumulated input: Softmax within 2**-14
    (probabilities), LayerNorm and the activations within 2**-12 of the output range."""
    pytest.importorskip("lava")
    from neurosim.loihi import transformer_processes as tp

    rng = np.random.default_rng(0)
    s_in = 2.0 ** -18
    x = rng.normal(0, 2, (3, 7, 7))
    xi = np.rint(x / s_in).astype(np.int64)
    t = 3
    S, Si = [x * t], [xi * t]
    for causal in (False, True):
        f = tp.SoftmaxFloat(causal).g(S, t, 3) / t
        m, sh = tp.quant_mult(s_in * math.log2(math.e) * 2 ** 16)
        fi = tp.SoftmaxFixed(causal, m, sh, 19).g(Si, t, 3) / t * 2.0 ** -19
        assert np.abs(f - fi).max() < 2.0 ** -14
    w, b = rng.uniform(.5, 1.5, 7), rng.normal(0, .2, 7)
    f = tp.LayerNormFloat(w, b, 1e-5).g(S, t, 3) / t
    s_out = 2.0 ** -19
    _, sw = tp.quant_mult(1.5 / (s_out * 2 ** 16))
    fi = tp.LayerNormFixed(np.rint(w / (s_out * 2 ** 16) * 2.0 ** sw), sw, np.rint(b / s_out),
                           round(1e-5 / s_in ** 2 * 2 ** 12)).g(Si, t, 3) / t * s_out
    assert np.abs(f - fi).max() < 2.0 ** -12 * np.abs(f).max()
    big = x * 6  # reaches beyond the tables' [-16, 16)
    bigi = np.rint(big / s_in).astype(np.int64)
    for fn in ("gelu", "gelu_tanh", "silu", "tanh"):
        f = tp.ActivationFloat(fn).g([big * t], t, 3) / t
        m, sh = tp.quant_mult(s_in * 2.0 ** (tp.ACT_STEP_LOG2 + 16))
        im, ish = tp.quant_mult(s_in / s_out)
        fi = tp.ActivationFixed(fn, s_out, m, sh, im, ish).g([bigi * t], t, 3) / t * s_out
        assert np.abs(f - fi).max() < 2.0 ** -12 * max(1.0, np.abs(f).max()), fn


def test_fixed_matmul_of_spike_counts_is_exact_up_to_its_rescale():
    pytest.importorskip("lava")
    from neurosim.loihi import transformer_processes as tp

    rng = np.random.default_rng(1)
    A = rng.integers(-6, 7, (2, 4, 5)).astype(np.int64)
    B = rng.integers(-6, 7, (2, 3, 5)).astype(np.int64)
    t, scale = 6, 0.37
    want = scale * A @ np.swapaxes(B, -1, -2) / t
    s_out = 2.0 ** -16
    m, sh = tp.quant_mult(scale / s_out)
    got = tp.MatMulFixed(True, 0, 0, 0, m, sh).g([A, B], t, 2) * s_out
    assert np.abs(got - want).max() <= 2.0 ** -15 * np.abs(want).max() + s_out


# ---- refusals -----------------------------------------------------------------------------------------------

def _pooled():
    net = variants()
    nodes = dict(net.nodes)
    nodes["patch"] = AvgPool2d("input", kernel_size=2)
    nodes["tok"] = Reshape("patch", shape=(1, 4))
    nodes["tokT"] = Transpose("tok", perm=(1, 0))
    nodes = {k: v for k, v in nodes.items() if k in ("patch", "tok", "tokT")}
    nodes["ln"] = LayerNorm("tokT", weight=np.ones(1))
    nodes["flat"] = Flatten("ln")
    nodes["out"] = Linear("flat", weight=np.ones((2, 4)))
    return SpikingNetwork(input_shape=(1, 4, 4), nodes=nodes, readout=Readout("out", "membrane"))


def test_unsupported_is_refused_with_one_clear_error():
    pytest.importorskip("lava")
    from neurosim.backends._lava_transformer import simulate_transformer

    with pytest.raises(NeurosimError, match=r"^unsupported operator AvgPool2d \('patch'\) on lava in a network "
                                            r"with Transformer operators: pooling runs on the CNN lowering"):
        simulate_transformer(_pooled(), _images(1), 2)
    net = zoo_transformer()
    x = token_inputs(net, 2)
    with pytest.raises(NeurosimError, match=r"Embedding reads token ids, integers in \[0, 11\); got \[11.0"):
        simulate_transformer(net, np.where(x == x[0, 0], 11.0, x).astype(np.float32), 2)
    with pytest.raises(NeurosimError, match=r"timesteps must be a positive integer, got 0"):
        simulate_transformer(net, x, 0)
    with pytest.raises(NeurosimError, match=r"inputs must have shape \[batch, 4\]"):
        simulate_transformer(net, x[:, :3], 2)
    with pytest.raises(NeurosimError, match=r"no option 'vth_mant'"):
        simulate_transformer(net, x, 2, "fixed", vth_mant=64)
    with pytest.raises(NeurosimError, match=r"weight_bits must be an integer in \[2, 16\], got 0"):
        simulate_transformer(net, x, 2, "fixed", weight_bits=0)
    with pytest.raises(NeurosimError, match=r"no precision 'half'"):
        simulate_transformer(net, x, 2, "half")
    with pytest.raises(NeurosimError, match=r"lanes must be a positive integer"):
        simulate_transformer(net, x, 2, lanes=0)
    with pytest.raises(NeurosimError, match=r"weight_exponent must be 'row' or 'layer', got 'chip'"):
        simulate_transformer(net, x, 2, "fixed", weight_exponent="chip")
    from neurosim.ir import Encoding

    net.encoding = Encoding("poisson")
    with pytest.raises(NeurosimError, match=r"^Embedding \('emb'\) on lava must read the direct-encoded input"):
        simulate_transformer(net, x, 2)


@pytest.mark.parametrize("spikes", [False, True], ids=["graded-attention", "spiking-attention"])
@pytest.mark.parametrize("name", ["vit_tiny", "bert_tiny", "gpt_tiny"])
def test_converted_zoo_transformers_on_the_emulated_graph(name, spikes):
    """The small zoo Transformers of tests/test_convert_transformer.py, converted with graded (MatMul of
    two graded streams, Softmax into MatMul) or spiking attention: float equals the reference to 1e-5, fixed
    point within the derived bound, no saturation (on the emulation, equal to the Lava run as tested above)."""
    pytest.importorskip("lava")
    import neurosim
    from neurosim.backends._lava_transformer import simulate_transformer
    from tests.test_convert_transformer import CASES as CONVERT_CASES

    make, data = CONVERT_CASES[name]
    m, x = make(), data()
    net = neurosim.convert(m, x, attention_spikes=spikes)
    xx = x[:4].numpy()
    ref = net.run(xx, 4, backend="reference")
    f = simulate_transformer(net, xx, 4, "float", emulate=True)
    np.testing.assert_allclose(f.output, ref.output, rtol=1e-5, atol=1e-5)
    assert f.spike_counts == ref.spike_counts
    q = simulate_transformer(net, xx, 4, "fixed", emulate=True, calibration=x[8:16].numpy())
    err = np.abs(q.output - ref.output).max() / np.abs(ref.output).max()
    assert 0 < err <= 2 * _n_synaptic(net) * 2.0 ** -7, err
    assert int(q.quantization["saturations"].sum()) == 0


def test_the_lava_backend_runs_transformer_graphs_and_refuses_the_other_graphs_options():
    """``net.run(backend="lava")`` takes a network with Transformer operators to their processes (the
    conformance suite checks the numbers); each graph's fixed-point options are refused on the other,
    before anything is built."""
    pytest.importorskip("lava")
    from tests.backend_nets import zoo_direct

    net = zoo_transformer()
    x = token_inputs(net, 2)
    r = net.run(x, 3, backend="lava", precision="fixed", lanes=2)
    assert r.backend == "lava" and r.lava_lanes == 2 and "quantised" in r.quantization.columns
    with pytest.raises(NeurosimError, match=r"^lava option 'vth_mant' does not apply to a network with Transformer"):
        net.run(x, 3, backend="lava", precision="fixed", vth_mant=64)
    with pytest.raises(NeurosimError, match=r"chunk_steps and progress apply to networks without them"):
        net.run(x, 3, backend="lava", chunk_steps=1)
    cnn = zoo_direct()
    with pytest.raises(NeurosimError, match=r"^lava option 'weight_bits' does not apply to a network without"):
        cnn.run(np.zeros((1, *cnn.input_shape), np.float32), 3, backend="lava", precision="fixed", weight_bits=4)
