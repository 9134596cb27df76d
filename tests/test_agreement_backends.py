"""Cross-backend agreement on converted networks (digits MLP and a residual CNN with max- and
average pooling, the CNN also with signed neurons and biases calibrated for T; 40 images): Lava float
predicts exactly what snntorch predicts and counts the same spikes, Brian2 agrees on >= 99% of
predictions, Lava fixed point agrees with Lava float on >= 97%."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agreement_models import converted, sample_inputs  # noqa: E402

T = 12
N = 40
lava_ok = sys.version_info[:2] == (3, 10)


@pytest.fixture(scope="module", params=["mlp", "cnn", "cnn_signed"])
def case(request):
    net = converted("cnn", signed=True, calibrate=T) if request.param == "cnn_signed" else converted(request.param)
    x, y = sample_inputs(N)
    ref = net.run(x, T, backend="snntorch")
    if request.param == "cnn_signed":  # the case must exercise -1 spikes
        counts = net.run(x, T, backend="snntorch", record_counts=True).counts
        assert sum(ref.spike_counts.values()) > sum(float(c.sum()) for c in counts.values())
    return request.param, net, x, y, ref


def _agree(a, b) -> float:
    return float((np.asarray(a) == np.asarray(b)).mean())


@pytest.mark.lava
@pytest.mark.skipif(not lava_ok, reason="lava-nc runs on Python 3.10 only")
def test_lava_float_and_fixed_agree(case):
    kind, net, x, y, ref = case
    flt = net.run(x, T, backend="lava", precision="float")
    assert _agree(flt.predictions, ref.predictions) == 1.0
    for k, c in ref.spike_counts.items():
        assert flt.spike_counts[k] == pytest.approx(c, rel=2e-3, abs=2), k  # float32 vs float64 sums at ties
    np.testing.assert_allclose(flt.output, ref.output, atol=0.02 * np.abs(ref.output).max())
    fix = net.run(x, T, backend="lava", precision="fixed")
    assert _agree(fix.predictions, flt.predictions) >= 0.97
    assert fix.accuracy(y) >= flt.accuracy(y) - 1.0 / N - 1e-9  # at most one sample of N lost
    assert (fix.quantization["weights_clipped"] == 0).all()


@pytest.mark.brian2
def test_brian2_agrees(case):
    kind, net, x, y, ref = case
    r = net.run(x, T, backend="brian2")
    assert _agree(r.predictions, ref.predictions) >= 0.99
    for k, c in ref.spike_counts.items():
        assert r.spike_counts[k] == pytest.approx(c, rel=5e-3, abs=2), k


def test_weighted_shortcut_is_a_depthwise_conv_not_a_dense_matrix():
    """The residual CNN's shortcut (max-pool spikes -> per-channel Add weight) lowers to a 1x1 depthwise
    convolution for Lava and Brian2, equal to the dense matrix it replaces; a zoo ResNet on 28x28
    inputs (12,544-neuron shortcuts) then fits, where a dense matrix would need 157M entries."""
    import torch

    from neurosim.ir.lowering import MAX_DENSE_ENTRIES, Lowering

    net = converted("cnn")
    terms = [t for tg in Lowering(net).targets.values() for t in tg.terms if [k for k, _ in t.ops] == ["scale"]]
    assert terms
    for t in terms:
        w, stride, padding, dilation, groups = t.conv_form()
        assert w.shape == (t.in_shape[0], 1, 1, 1) and groups == t.in_shape[0]
        x = torch.rand(3, *t.in_shape, dtype=torch.float64)
        conv = torch.nn.functional.conv2d(x, torch.as_tensor(w), None, stride, padding, dilation, groups)
        assert torch.allclose(conv, t.apply(x))
    import models
    import neurosim

    torch.manual_seed(0)
    res = neurosim.convert(models.create("resnet_tiny").eval(), torch.rand(16, 1, 28, 28))
    for tg in Lowering(res).targets.values():
        for t in tg.terms:
            assert t.conv_form() is not None or t.n_in * t.n_out <= MAX_DENSE_ENTRIES, t.describe()
