"""NIR across libraries (issue 18), against the real libraries in the lock: our converted MLP and CNN
exported with a library's flavour are built and run by that library's own importer and agree with our
run of the network it expresses (``library_equivalent``) on every test digit; a network built in snntorch
imports into ours and agrees spike for spike. Flavours refuse what they cannot express, naming the node."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from test_convert import digits_split, fit  # noqa: E402

import neurosim  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402
from neurosim.ir import SpikingNetwork  # noqa: E402
from neurosim.ir.nir_targets import NIRExportWarning, library_equivalent  # noqa: E402

T = 16


@pytest.fixture(scope="module")
def converted():
    digits = digits_split()
    torch.manual_seed(0)
    mlp = fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10)), digits, epochs=3)
    cnn = fit(nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
                            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                            nn.Linear(64, 10)), digits, epochs=3)
    calib, x = digits[0][:300], digits[2][:200].numpy()
    return {"mlp": neurosim.convert(mlp, calib), "cnn": neurosim.convert(cnn, calib)}, x


def _run_library(module, x: np.ndarray, steps: int) -> np.ndarray:
    """Drive a nirtorch-built module step by step with the analog input (direct encoding): the summed output."""
    xt, state, total = torch.as_tensor(x), None, 0.0
    with torch.no_grad():
        for _ in range(steps):
            out = module(xt) if state is None else module(xt, state)
            if isinstance(out, tuple):
                out, state = out
            total = total + out
    return np.asarray(total)


def _import(target: str, graph):
    if target == "snntorch":
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph)
    import norse.torch

    return norse.torch.from_nir(graph)


@pytest.mark.parametrize("target", ["snntorch", "norse"])
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_a_library_runs_our_export_exactly_as_the_network_it_expresses(converted, target, model, capsys):
    nets, x = converted
    net = nets[model]
    with pytest.warns(NIRExportWarning, match="reset by subtraction becomes reset to 0.*initial membrane"):
        graph = net.to_nir(target=target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = _import(target, graph)
    theirs = _run_library(module, x, T)
    eq, lost = library_equivalent(net, target)
    ours = eq.run(x, T)
    assert (theirs.argmax(1) == ours.predictions).mean() == 1.0
    np.testing.assert_allclose(theirs / T, ours.output / eq.readout.scale, rtol=1e-4, atol=1e-4)
    # what the flavour costs against our own network is what the warning announced, and it is measured
    full = net.run(x, T)
    assert lost and 0.5 < (full.predictions == ours.predictions).mean() <= 1.0
    capsys.readouterr()  # snntorch's importer prints a line on every import


def test_flavours_refuse_what_they_cannot_express_naming_the_node():
    sys.path.insert(0, str(Path(__file__).parent))
    from backend_nets import mlp, zoo_direct

    with pytest.raises(NeurosimError, match=r"\(SpikeMaxPool2d\)|\(Add of \d+ inputs\)"):
        zoo_direct(seed=0).to_nir(target="snntorch")
    signed = mlp(seed=0, per_channel=True)
    pop = next(k for k, n in signed.nodes.items() if hasattr(n, "signed"))
    signed.nodes[pop].signed = True
    with pytest.raises(NeurosimError, match=f"population {pop!r} is signed"):
        signed.to_nir(target="norse")
    with pytest.raises(NeurosimError, match="unknown NIR target"):
        signed.to_nir(target="lava-dl")


def test_a_snntorch_network_imports_and_agrees_spike_for_spike():
    """snntorch writes one scalar tau and threshold per layer and the example's batch in the Input type;
    both are read (its documented `export_to_nir` fails in its own type inference, so through nirtorch)."""
    import nirtorch
    import snntorch as snn
    import snntorch.utils
    from snntorch.export_nir import _extract_snntorch_module

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 12), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero"),
                        nn.Linear(12, 5), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero", output=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = nirtorch.extract_nir_graph(net, _extract_snntorch_module, torch.rand(1, 16))
    ours = SpikingNetwork.from_nir(graph)
    assert ours.input_shape == (16,) and ours.readout.kind == "spike_count"
    x = torch.rand(64, 16) * 2
    snntorch.utils.reset(net)
    with torch.no_grad():
        theirs = sum(net(x)[0] for _ in range(20)).numpy()
    r = ours.run(x.numpy(), 20, record_counts=True)
    assert np.array_equal(r.counts[ours.readout.node], theirs) and theirs.sum() > 0


def test_a_sum_pool_is_written_as_the_pool_each_library_has():
    """snntorch has no SumPool2d and norse no AvgPool2d: each flavour writes the other pool with k^2 folded
    into the next weights; both lowered networks compute the same outputs (reference backend)."""
    from neurosim.ir import Conv2d, Flatten, Linear, Neurons, Readout, SumPool2d

    rng = np.random.default_rng(0)
    net = SpikingNetwork((1, 8, 8), {
        "c": Conv2d(("input",), weight=rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), padding=1),
        "n": Neurons(("c",), shape=(4, 8, 8), threshold=np.float32(0.7), reset="zero"),
        "p": SumPool2d(("n",), kernel_size=2),
        "f": Flatten(("p",)),
        "fc": Linear(("f",), weight=rng.normal(0, 0.3, (5, 64)).astype(np.float32)),
    }, Readout("fc", "membrane"))
    x = rng.uniform(0, 1, (16, 1, 8, 8)).astype(np.float32)
    runs = {}
    for target, banned in (("snntorch", "SumPool2d"), ("norse", "AvgPool2d")):
        eq, _ = library_equivalent(net, target)
        assert banned not in {type(n).__name__ for n in eq.nodes.values()}
        runs[target] = eq.run(x, 8, backend="reference").output
    np.testing.assert_allclose(runs["snntorch"], runs["norse"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(runs["norse"], net.run(x, 8, backend="reference").output, rtol=1e-5, atol=1e-5)
