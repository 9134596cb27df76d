"""ANN -> SNN conversion: graph extraction, BatchNorm folding, normalisation, agreement with the ANN.

Models are tiny and trained on scikit-learn's 8x8 digits for a few epochs (seconds), once per session.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neurosim
from models.qcfs import QCFS
from neurosim.convert import extract
from neurosim.errors import NeurosimError
from neurosim.ir import Add, Neurons, SpikeMaxPool2d


def digits_split():
    """scikit-learn's digits in [0, 1], shuffled once: (train x, train y, test x, test y), 1,400 / 397."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target)
    g = torch.Generator().manual_seed(0)
    p = torch.randperm(len(y), generator=g)
    return x[p[:1400]], y[p[:1400]], x[p[1400:]], y[p[1400:]]


@pytest.fixture(scope="session")
def digits():
    return digits_split()


def fit(model: nn.Module, digits, epochs: int = 4, lr: float = 5e-3, seed: int = 0) -> nn.Module:
    xtr, ytr = digits[0][:1000], digits[1][:1000]
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    return model.eval()


class TinyRes(nn.Module):
    """Residual CNN written with a custom forward: F.relu, + (identity and 1x1 downsample), torch.flatten."""

    def __init__(self, act=F.relu):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c3, self.b3 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c4, self.b4 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16)
        self.c5, self.b5 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.down, self.bd = nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16)
        self.pool = nn.AvgPool2d(4)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        h = F.relu(self.b2(self.c2(x)))
        x = F.relu(self.b3(self.c3(h)) + x)
        h = F.relu(self.b4(self.c4(x)))
        x = F.relu(self.b5(self.c5(h)) + self.bd(self.down(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class TinyResQCFS(TinyRes):
    """TinyRes with a QCFS activation (L=4) in place of every ReLU."""

    def __init__(self):
        super().__init__()
        self.acts = nn.ModuleList(QCFS(levels=4, threshold=2.0) for _ in range(5))

    def forward(self, x):
        a = self.acts
        x = a[0](self.b1(self.c1(x)))
        h = a[1](self.b2(self.c2(x)))
        x = a[2](self.b3(self.c3(h)) + x)
        h = a[3](self.b4(self.c4(x)))
        x = a[4](self.b5(self.c5(h)) + self.bd(self.down(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def lenet(act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), act(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.MaxPool2d(2), act(),
                         nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 32), act(), nn.Linear(32, 10))


@pytest.fixture(scope="session")
def trained(digits):
    torch.manual_seed(0)
    return {
        "mlp": fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)), digits),
        "lenet": fit(lenet(), digits),
        "res": fit(TinyRes(), digits),
        "mlp_qcfs": fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 64), QCFS(levels=4, threshold=2.0),
                                      nn.Linear(64, 10)), digits, epochs=6),
        "res_qcfs": fit(TinyResQCFS(), digits, epochs=10),
    }


def ann_predictions(model, x):
    with torch.no_grad():
        return model(x).argmax(1).numpy()


def test_batchnorm_folding_equals_the_unfolded_ann(trained, digits):
    x = digits[2][:64]
    for name in ("lenet", "res"):
        model = trained[name]
        g = extract(model, x)
        assert not any(o.kind == "bn" for o in g.ops.values())
        assert sum(o.folded_bn is not None for o in g.ops.values()) >= 2
        with torch.no_grad():
            assert torch.allclose(g(x), model(x), atol=1e-4), name
    # max-pool before the activation was moved after it (the spiking max-pool reads spikes)
    kinds = [o.kind for o in extract(trained["lenet"], x).ops.values()]
    assert kinds[:6] == ["input", "linear", "act", "maxpool", "linear", "act"]


def test_conversion_leaves_the_model_alone(trained, digits):
    model = trained["lenet"]
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    neurosim.convert(model, digits[0][:100])
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.eval()


@pytest.mark.parametrize("name, per_channel, norm, min_agree", [
    ("mlp", True, "p99.9", 0.97), ("lenet", False, "p99.9", 0.95), ("lenet", True, "max", 0.95),
    ("res", True, "p99.9", 0.95),
])
def test_snn_agrees_with_ann_at_T64(trained, digits, name, per_channel, norm, min_agree):
    xtr, _, xte, yte = digits
    xte, yte = xte[:200], yte[:200]
    model = trained[name]
    net = neurosim.convert(model, xtr[:500], norm=norm, per_channel=per_channel)
    r = net.run(xte, 64)
    agree = (r.predictions == ann_predictions(model, xte)).mean()
    assert agree >= min_agree, f"{name}: SNN agrees with the ANN on {agree:.3f} of the test set"
    ann_acc = (ann_predictions(model, xte) == yte.numpy()).mean()
    assert r.accuracy(yte) >= ann_acc - 0.03


@pytest.mark.parametrize("per_channel", [False, True])
def test_residual_scales_are_aligned(trained, digits, per_channel):
    """Each Add weighs its inputs by (input scale) / (output activation scale), per channel or per layer."""
    net = neurosim.convert(trained["res"], digits[0][:300], per_channel=per_channel)
    scales = {k: np.asarray(v) for k, v in net.metadata["scales"].items()}
    adds = [(k, n) for k, n in net.nodes.items() if isinstance(n, Add) and len(n.inputs) == 2]
    assert len(adds) == 2
    k, add = adds[0]
    # first residual: conv current (weight 1) + identity spikes of the block input
    (out_act,) = net.consumers(k)
    shortcut = [i for i in add.inputs if isinstance(net.nodes[i], Neurons)][0]
    w = dict(zip(add.inputs, add.weights))
    assert scales[out_act].shape == ((8,) if per_channel else ())
    expect = (scales[shortcut] / scales[out_act]).reshape(-1)
    assert np.allclose(np.ravel(w[shortcut]), expect, rtol=1e-5)
    other = [i for i in add.inputs if i != shortcut][0]
    assert float(w[other]) == 1.0
    # second residual: both inputs are conv currents scaled into the output's units, so weights are 1
    k2, add2 = adds[1]
    assert all(np.all(np.asarray(x) == 1.0) for x in add2.weights)


def test_rates_converge_to_the_ann(trained, digits):
    """With max normalisation nothing is clipped: the readout error falls roughly as 1/T."""
    xtr, _, xte, _ = digits
    model = trained["mlp"]
    net = neurosim.convert(model, xtr, norm="max")
    x = xte[:100]
    with torch.no_grad():
        ann = model(x).numpy()
    r = net.run(x, 256, record_trace=True, dtype="float64")
    err = [np.abs(r.trace[t - 1] - ann).mean() for t in (8, 32, 128, 256)]
    assert err[0] > err[1] > err[2] > err[3]
    assert err[3] < 0.05 * np.abs(ann).mean()


def test_qcfs_is_exact_at_T_equal_L(trained, digits):
    """QCFS (Bu et al. 2022): one hidden layer driven by a constant current fires exactly h(z) * L / lambda
    spikes in L steps, so at T = L the SNN readout equals the ANN output."""
    model = trained["mlp_qcfs"]
    xte = digits[2][:200]
    net = neurosim.convert(model, None, example_input=xte[:1])
    assert net.metadata["norm"] == "qcfs-threshold"
    r = net.run(xte, 4, dtype="float64")
    with torch.no_grad():
        ann = model(xte).double().numpy()
    assert np.allclose(r.output, ann, atol=1e-4)
    r8 = net.run(xte, 8)
    assert (r8.predictions == ann.argmax(1)).mean() >= 0.97


def test_signed_neurons_and_bias_calibration_make_a_residual_qcfs_net_low_latency(trained, digits):
    """The issue's low-T targets on a residual QCFS net (digits; the README's MNIST-5k table has the
    full-size numbers): signed neurons with biases calibrated for T stay near the ANN at T=4 and T=8,
    and at T=4 they beat plain IF neurons.

    Margins come from the seed spread, not from one run (``benchmarks/convert_seed_spread.py --seeds 6``,
    torch 2.14.1, 797 test digits, one digit = 0.125 point): calibrated - ANN at T=4 ranged -0.9 .. +0.9
    points, at T=8 -0.4 .. +1.1; calibrated - plain IF at T=4 +1.4 .. +4.4 points. At T=8 plain IF is
    already within a point of the ANN for most seeds (-0.4 .. +2.3 behind calibration), so there is no
    claim against it at T=8. Tolerances: 2 points at T=4, 0.75 at T=8 (worst seed + 3 digits), and a
    gain over plain IF of at least 0.5 point at T=4 (a third of the smallest gain measured).
    """
    xtr = digits[0][:1000]  # what the model was trained on; the other 797 digits are the test set
    xte, y = torch.cat([digits[0][1000:], digits[2]]), torch.cat([digits[1][1000:], digits[3]]).numpy()
    model = trained["res_qcfs"]
    ann = (ann_predictions(model, xte) == y).mean()
    plain = neurosim.convert(model, xtr).run(xte, 4).accuracy(y)
    signed = neurosim.convert(model, xtr, signed=True)
    assert all(n.signed for n in signed.populations.values())
    for T, tol in ((4, 0.02), (8, 0.0075)):
        cal = neurosim.convert(model, xtr, signed=True, calibrate=T, calibration_iters=2)
        assert cal.metadata["calibrated_T"] == T and "bias calibration" in cal.metadata["method"]
        acc = cal.run(xte, T).accuracy(y)
        assert acc >= ann - tol, (T, acc, ann)
        if T == 4:
            assert acc >= plain + 0.005, (T, acc, plain)
        assert any(np.any(n.bias != 0) for n in cal.populations.values())
        assert all(np.all(n.bias == 0) for n in signed.populations.values())  # the uncalibrated one untouched


def test_bias_calibration_pulls_mean_rates_to_the_ann(trained, digits):
    """After calibration every population's per-channel mean rate at T is closer to the ANN's mean
    activation / scale than before (measured on the calibration inputs)."""
    xtr = digits[0][:300]
    model, T = trained["res_qcfs"], 4
    before = neurosim.convert(model, xtr, signed=True)
    after = neurosim.convert(model, xtr, signed=True, calibrate=T, calibration_samples=300, calibration_iters=2)
    g = extract(model, xtr[:1])
    acts = [k for k, o in g.ops.items() if o.kind == "act"]
    with torch.no_grad():
        _, rec = g.forward(xtr, record=set(acts))
    rb = before.run(xtr, T, record_counts=True).counts
    ra = after.run(xtr, T, record_counts=True).counts
    errs = []
    for k, pop in zip(acts, before.populations):
        want = (rec[k] / g.ops[k].clip).clamp(0, 1).double().numpy().mean(axis=(0, 2, 3))
        eb = np.abs(rb[pop].mean(axis=(0, 2, 3)) / T - want).mean()
        ea = np.abs(ra[pop].mean(axis=(0, 2, 3)) / T - want).mean()
        errs.append((eb, ea))
    assert errs[0] == (0.0, 0.0)  # the stem is exact (constant input) before and after
    assert all(ea < 0.5 * eb for eb, ea in errs[1:]), errs


@pytest.mark.parametrize("name,signed", [("res_qcfs", True), ("lenet", False), ("mlp", True)])
def test_one_pass_calibration_walks_the_network_as_the_backend_runs_it(trained, digits, name, signed):
    """The calibration's own layer-by-layer simulation (neurosim/convert/calibration.py) gives every
    population the same per-channel mean rate as the snntorch backend (residual Adds, max-pool of
    spikes, signed neurons, Linear after Flatten): asked to reach the rates the backend measured, it
    finds nothing to correct (up to float32 rounding of the currents)."""
    import copy

    from neurosim.convert.calibration import calibrate, channel_axes

    x, T = digits[0][:96], 4
    net = neurosim.convert(trained[name], digits[0][:300], signed=signed)
    counts = net.run(x, T, record_counts=True).counts
    want = {k: (c / T).mean(axis=channel_axes(c.ndim)) for k, c in counts.items()}
    rep = calibrate(copy.deepcopy(net), x, want, T)
    assert set(rep) == set(net.populations)
    assert all(r["before"] < 2e-3 for r in rep.values()), rep


def test_calibration_simulates_each_synaptic_node_once_per_pass(trained, digits, monkeypatch):
    """One pass: every synaptic/structural node is applied once however many populations are
    calibrated (the prefix-by-prefix calibration ran the first layers once per population), and the
    biases change only in the populations asked for."""
    from neurosim.convert import calibration

    calls = []
    real = calibration._stateless
    monkeypatch.setattr(calibration, "_stateless", lambda n, xs: calls.append(n) or real(n, xs))
    model, xtr = trained["res_qcfs"], digits[0][:200]
    net = neurosim.convert(model, xtr, signed=True)
    n_stateless = sum(not isinstance(n, Neurons) for n in net.nodes.values())
    cal = neurosim.convert(model, xtr, signed=True, calibrate=4, calibration_iters=3)
    assert len(calls) == n_stateless
    errs = cal.metadata["calibration_rate_error"]
    assert list(errs) == list(cal.populations)
    assert all(e["after"] <= e["before"] + 1e-9 for e in errs.values()), errs


def test_signed_conversion_survives_save_load_and_nir(trained, digits, tmp_path):
    net = neurosim.convert(trained["res_qcfs"], digits[0][:200], signed=True, calibrate=2)
    back = neurosim.SpikingNetwork.load(net.save(tmp_path / "res.npz"))
    assert back.diff(net) == [] and all(n.signed for n in back.populations.values())
    nir_back = neurosim.SpikingNetwork.from_nir(net.to_nir())
    assert nir_back.diff(net) == [] and all(n.signed for n in nir_back.populations.values())


def test_poisson_encoding_and_spike_count_readout(trained, digits):
    xtr, _, xte, _ = digits
    model = trained["mlp"]
    ann = ann_predictions(model, xte[:200])
    p = neurosim.convert(model, xtr[:500], encoding="poisson")
    rp = p.run(xte[:200], 128, seed=3)
    assert (rp.predictions == ann).mean() >= 0.85
    assert "input" not in rp.synops and rp.synops[next(iter(rp.synops))] > 0
    s = neurosim.convert(model, xtr[:500], readout="spike_count")
    assert s.readout.kind == "spike_count" and isinstance(s.nodes[s.readout.node], Neurons)
    rs = s.run(xte[:200], 64)
    assert (rs.predictions == ann).mean() >= 0.85


def test_converted_network_survives_save_load_and_nir(trained, digits, tmp_path):
    net = neurosim.convert(trained["lenet"], digits[0][:200])
    assert any(isinstance(n, SpikeMaxPool2d) for n in net.nodes.values())
    back = neurosim.SpikingNetwork.load(net.save(tmp_path / "lenet.npz"))
    assert back.diff(net) == []
    assert neurosim.SpikingNetwork.from_nir(net.to_nir()).diff(net) == []
    x = digits[2][:20]
    assert np.array_equal(back.run(x, 8).output, net.run(x, 8).output)
    json.dumps(net.metadata)


class Gelu(nn.Module):
    def forward(self, x):
        return F.gelu(x)


@pytest.mark.parametrize("model, where, what", [
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Sigmoid(), nn.Linear(8, 10)), "'2'", "Sigmoid"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 8), Gelu(), nn.Linear(8, 10)), "graph node 'gelu'", "gelu"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 10)), "'2'",
     "BatchNorm2d"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU(), nn.Flatten(),
                   nn.Linear(36, 10)), "'1'", "ceil_mode"),
])
def test_unsupported_layers_are_named(model, where, what):
    with pytest.raises(NeurosimError) as e:
        neurosim.convert(model.eval(), torch.rand(8, 1, 8, 8))
    msg = str(e.value)
    assert what in msg and where in msg and "Supported:" in msg and "reads" in msg


def test_bad_options():
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(NeurosimError, match="percentile"):
        neurosim.convert(m, torch.rand(4, 1, 8, 8), norm="mean")
    with pytest.raises(NeurosimError, match="calibration_data"):
        neurosim.convert(nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 2)), None)
    with pytest.raises(NeurosimError, match="encoding"):
        neurosim.convert(m, torch.rand(4, 1, 8, 8), encoding="latency")
    relu = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 2))
    for bad in (0, -4, 2.5, True, "8"):
        with pytest.raises(NeurosimError, match="calibrate takes a positive number of timesteps"):
            neurosim.convert(relu, torch.rand(4, 1, 8, 8), calibrate=bad)
    with pytest.raises(NeurosimError, match="calibration_iters"):
        neurosim.convert(relu, torch.rand(4, 1, 8, 8), calibrate=4, calibration_iters=0)
    q = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), QCFS(), nn.Linear(8, 2))
    with pytest.raises(NeurosimError, match="calibrate needs calibration_data"):
        neurosim.convert(q, None, example_input=torch.rand(1, 1, 8, 8), calibrate=4)
    with pytest.raises(NeurosimError, match="readout='spike_count'.*pass calibration_data"):
        neurosim.convert(q, None, example_input=torch.rand(1, 1, 8, 8), readout="spike_count")
