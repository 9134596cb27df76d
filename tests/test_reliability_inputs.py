"""Hostile inputs to the spiking backends: NaN/inf, empty batches, bad options, one outsized sample."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from backend_nets import mlp  # noqa: E402

from neurosim.backends import backend_names  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402

lava_ok = sys.version_info[:2] == (3, 10)


@pytest.fixture(scope="module")
def case():
    net = mlp(seed=3, per_channel=True)
    x = np.random.default_rng(5).uniform(0, 1, (8, 16)).astype(np.float32)
    return net, x


@pytest.mark.parametrize("backend", backend_names())
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_inputs_are_refused_on_every_backend(case, backend, bad):
    net, x = case
    x = x.copy()
    x[3, 5] = bad
    with pytest.raises(NeurosimError, match="NaN or inf.*samples 3"):
        net.run(x, 4, backend=backend)


@pytest.mark.parametrize("kwargs, match", [
    (dict(inputs="empty"), "no samples"),
    (dict(timesteps="abc"), "timesteps"),
    (dict(timesteps=float("nan")), "timesteps"),
    (dict(timesteps=float("inf")), "timesteps"),
    (dict(timesteps=0), "timesteps"),
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=-3), "batch_size"),
    (dict(inputs="text"), "numeric"),
])
def test_bad_run_arguments_are_one_clear_error(case, kwargs, match):
    net, x = case
    inputs = {"empty": np.zeros((0, 16), np.float32), "text": [["a"] * 16]}.get(kwargs.pop("inputs", None), x)
    timesteps = kwargs.pop("timesteps", 4)
    with pytest.raises(NeurosimError, match=match):
        net.run(inputs, timesteps, backend="snntorch", **kwargs)


@pytest.mark.lava
@pytest.mark.skipif(not lava_ok, reason="lava-nc runs on Python 3.10 only")
def test_lava_fixed_point_one_outsized_sample_does_not_change_the_others(case):
    """The input step is each sample's own: scaling sample 0 by 1e6 leaves every other sample's output
    bit for bit (before: the batch's max|x| set one step and the other samples fell to chance)."""
    net, x = case
    base = net.run(x, 8, backend="lava", precision="fixed")
    hostile = x.copy()
    hostile[0] *= 1e6
    r = net.run(hostile, 8, backend="lava", precision="fixed")
    np.testing.assert_array_equal(r.output[1:], base.output[1:])
    assert len(r.lava_input_steps) == 2 and len(base.lava_input_steps) == 1


def test_training_that_diverges_stops_with_one_error():
    """`train --lr inf` used to save NaN weights with exit 0: a non-finite loss stops the run, named."""
    import torch
    from torch import nn

    from models.data import Dataset
    from models.train import train

    class Blows(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):
            return self.lin(x) * float("inf")

    data = Dataset("toy", torch.rand(40, 4), torch.randint(0, 3, (40,)), 3)
    with pytest.raises(NeurosimError, match="diverged"):
        train(Blows(), data, epochs=2, progress=False)


@pytest.mark.parametrize("fill", [0.0, 0.5, float("nan")])
def test_constant_or_non_finite_calibration_data_is_refused(fill):
    """All-zero calibration data gave 13.6 % against the ANN's 43.9 % without a word."""
    import torch

    import models
    import neurosim

    m = models.create("mlp", in_features=16, hidden=(8,), num_classes=3)
    with pytest.raises(NeurosimError, match="constant" if fill == fill else "NaN"):
        neurosim.convert(m, torch.full((32, 16), fill))


@pytest.mark.parametrize("name", ["bert_tiny", "gpt_tiny", "moe_tiny"])
def test_converting_a_token_model_is_one_error_naming_the_layer(name):
    """`convert(bert_tiny)` was a torch RuntimeError from shape propagation (token ids cast to float). Token
    models convert since issue 13; without a classifier head (BERT's tuple, GPT's per-token LM logits) or with
    a router (MoE's top-k) the refusal is still one NeurosimError saying why."""
    import models
    import neurosim

    m = models.create(name)
    with pytest.raises(NeurosimError, match="Embedding|cannot trace|must return one tensor|value per sample|"
                                            "cannot convert"):
        neurosim.convert(m, models.example_inputs(name, batch=4)[0])
