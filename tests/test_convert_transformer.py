"""Transformer conversion (issue 13): the zoo's ViT, BERT and GPT convert end to end; the converted graph
is the ANN exactly where nothing spikes, and tracks it where the attention operands and MLPs spike."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import models
import neurosim
from neurosim.errors import NeurosimError


def _vit(activation="gelu", seed=0):
    torch.manual_seed(seed)
    return models.create("vit_tiny", image_size=8, d_model=16, n_layers=2, n_heads=2, d_ff=32,
                         activation=activation).eval()


def _tokens(name, seed=0):
    torch.manual_seed(seed)
    kw = dict(vocab_size=7, num_classes=3, d_model=16, n_layers=2, n_heads=2, d_ff=32)
    if name == "gpt_tiny":
        kw.update(max_seq_len=16)
    return models.create(name, **kw).eval()


def _images(n=48, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def _ids(n=48, seed=0):
    return torch.randint(0, 7, (n, 8), generator=torch.Generator().manual_seed(seed))


CASES = {"vit_tiny": (_vit, _images), "bert_tiny": (lambda: _tokens("bert_tiny"), _ids),
         "gpt_tiny": (lambda: _tokens("gpt_tiny"), _ids)}


@pytest.mark.parametrize("name", list(CASES))
def test_without_spikes_the_converted_graph_is_the_ann_at_every_T(name):
    """attention_spikes=False and a GELU/tanh model: every IR node is graded and exact in time average,
    so the SNN's readout equals the ANN's logits at T = 1 and T = 3 (float32 rounding only)."""
    make, data = CASES[name]
    m, x = make(), data()
    net = neurosim.convert(m, x, attention_spikes=False)
    assert not net.populations
    with torch.no_grad():
        want = m(x[:6]).numpy()
    for T in (1, 3):
        r = net.run(x[:6].numpy(), T, backend="snntorch")
        np.testing.assert_allclose(r.output, want, rtol=1e-4, atol=1e-4)
    kinds = {n.kind for n in net.nodes.values()}
    assert {"TokenLinear", "MatMul", "Softmax", "LayerNorm", "Activation"} <= kinds
    assert ("Embedding" in kinds) == (name != "vit_tiny")
    if name == "gpt_tiny":
        assert all(n.causal for n in net.nodes.values() if n.kind == "Softmax")


@pytest.mark.parametrize("name", list(CASES))
def test_spiking_attention_tracks_the_ann_and_backends_agree(name):
    make, data = CASES[name]
    m, x = make(), data()
    net = neurosim.convert(m, x)
    pops = net.populations
    assert len(pops) == 2 * 7  # per layer: Q, K, V as +/- pairs of populations, the probabilities
    with torch.no_grad():
        want = m(x[:8]).numpy()
    ref = net.run(x[:4].numpy(), 6, backend="reference")
    snn = net.run(x[:4].numpy(), 6, backend="snntorch")
    np.testing.assert_allclose(snn.output, ref.output, rtol=1e-4, atol=1e-4)
    assert snn.spike_counts == ref.spike_counts
    err = {T: np.abs(net.run(x[:8].numpy(), T, backend="snntorch").output - want).mean() for T in (4, 64)}
    assert err[64] < 0.5 * err[4], err  # more steps, closer to the ANN


def test_vit_relu_mlp_spikes_and_converges():
    m, x = _vit("relu"), _images(64)
    net = neurosim.convert(m, x)
    assert any(k.endswith("mlp_act") for k in net.populations)
    with torch.no_grad():
        want = m(x[:16]).numpy()
    r = net.run(x[:16].numpy(), 128, backend="snntorch")
    assert np.abs(r.output - want).mean() < 0.1 * np.abs(want).mean() + 0.02


def test_qcfs_mlp_reads_its_thresholds():
    from models.qcfs import register

    register()
    m = _vit("qcfs")
    net = neurosim.convert(m, _images(32))
    for k, o in m.named_modules():
        if getattr(o, "neurosim_activation", None) == "qcfs":
            pop = k.replace(".", "_")
            assert net.metadata["scales"][pop] == pytest.approx(float(o.threshold.detach()))


def test_unsupported_op_is_one_error_naming_it_and_its_place():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = nn.LayerNorm(4)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(torch.sin(self.ln(x)))[:, 0]

    with pytest.raises(NeurosimError, match=r"cannot convert function sin at \(graph node 'sin', reads \['ln'\]"):
        neurosim.convert(Odd(), torch.rand(8, 5, 4))


def test_a_language_model_head_is_one_clear_error():
    torch.manual_seed(0)
    m = models.create("gpt_tiny", vocab_size=7, d_model=16, n_layers=1, n_heads=2, d_ff=32, max_seq_len=16).eval()
    with pytest.raises(NeurosimError, match=r"returns a \(8, 7\) value per sample.*num_classes"):
        neurosim.convert(m, _ids())


def test_transformer_options_that_do_not_apply_are_refused():
    with pytest.raises(NeurosimError, match="does not take encoding='poisson'"):
        neurosim.convert(_vit(), _images(), encoding="poisson")


def test_quantised_attention_is_the_quantised_ann_at_T_equal_L_for_one_layer_fed_constants():
    """A quantised ViT (QCFS MLP, signed QCFS on Q/K/V, QCFS on the probabilities, L = 4): no population
    is inserted by calibration, every one reads its learned threshold, and a one-layer model whose first
    quantisers see constant currents matches the quantised ANN closely at T = L and better than at T = L+1."""
    torch.manual_seed(0)
    m = models.create("vit_tiny", image_size=8, d_model=16, n_layers=1, n_heads=2, d_ff=32, activation="qcfs",
                      quant_levels=4).eval()
    x = _images(32)
    net = neurosim.convert(m, None, example_input=x[:1])
    assert len(net.populations) == 7 + 1  # Q, K, V pairs, probabilities, the MLP
    with torch.no_grad():
        want = m(x[:16]).numpy()
    r = net.run(x[:16].numpy(), 4, backend="reference")
    # Q, K, V read constants (exact at T = L); the probabilities and the MLP read uneven inputs, so the
    # match is close, not exact
    assert (r.output.argmax(1) == want.argmax(1)).mean() >= 0.9
    q_pos = [k for k in net.populations if k.endswith("q_quant_pos")][0]
    assert net.metadata["scales"][q_pos] == pytest.approx(float(m.blocks[0].attn.q_quant.threshold.detach()))


def test_cli_converts_a_quantised_vit_and_saves_the_ir(tmp_path, capsys):
    import json

    from neurosim.cli import main
    from neurosim.ir import SpikingNetwork

    for model, data, extra in (("vit_tiny", "digits", ["--activation", "qcfs", "--set", "quant_levels=4",
                                                       "--set", "d_model=16", "--set", "n_layers=1"]),):
        ir = tmp_path / f"{model}.npz"
        args = ["convert", model, "--dataset", data, "--timesteps", "2,4", "--epochs", "1", "--test-samples", "20",
                "--checkpoint", str(tmp_path / f"{model}.pt"), "--plot", str(tmp_path / f"{model}.png"),
                "--save-ir", str(ir), "--json", *extra]
        assert main(args) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["timesteps"] == [2, 4] and all(0 <= a <= 1 for a in rep["snn_accuracy"])
        net = SpikingNetwork.load(ir)
        assert any(n.kind == "MatMul" for n in net.nodes.values()) and net.populations


def test_explicit_attention_converts_like_sdpa():
    """softmax(q @ k.transpose(-2, -1) * c) @ v written out: the same populations as the fused op (signed
    pairs on q, k, v; one unsigned population on the probabilities) and the ANN when nothing spikes."""

    class Att(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln = nn.LayerNorm(8)
            self.qkv = nn.Linear(8, 24)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            q, k, v = self.qkv(self.ln(x)).chunk(3, dim=-1)
            att = torch.softmax(q @ k.transpose(-2, -1) * 0.35, dim=-1)
            return self.head((att @ v)[:, 0])

    torch.manual_seed(0)
    m, x = Att().eval(), torch.randn(32, 5, 8)
    net = neurosim.convert(m, x)
    assert len(net.populations) == 7
    assert sum(k.endswith("_spk") for k in net.populations) == 1
    exact = neurosim.convert(m, x, attention_spikes=False)
    with torch.no_grad():
        np.testing.assert_allclose(exact.run(x[:4].numpy(), 2, backend="reference").output, m(x[:4]).numpy(),
                                   rtol=1e-5, atol=1e-5)
