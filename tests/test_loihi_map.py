"""loihi-map: core counts follow the catalog's per-core limits (hand-computed cases) and the CLI works."""
from __future__ import annotations

import json
import numpy as np
import pytest

from neurosim.errors import NeurosimError
from neurosim.ir import Linear, Neurons, Readout, SpikingNetwork
from neurosim.loihi.resources import map_network


def _dense(n_in, hidden, n_out=10):
    rng = np.random.default_rng(0)
    return SpikingNetwork(input_shape=(n_in,), nodes={
        "fc1": Linear("input", weight=rng.normal(size=(hidden, n_in)) + 0.01),
        "n1": Neurons("fc1", shape=(hidden,)),
        "fc2": Linear("n1", weight=rng.normal(size=(n_out, hidden)) + 0.01)}, readout=Readout("fc2"))


def test_synaptic_memory_limits_a_dense_layer():
    import hw

    net = _dense(784, 2000)
    m = map_network(net, "loihi")
    n1 = m.layers[0]
    # Loihi: 128 KiB per core (Davies et al. 2018) = 1,048,576 bits; 784 synapses x 8 bits per neuron
    bits = hw.get("loihi").synaptic_memory_kib_per_core * 1024 * 8
    per_core = int(bits // (784 * 8))
    assert per_core == 167
    assert n1.cores == -(-2000 // per_core) == 12
    assert n1.limited_by == "synaptic memory" and n1.synapses == 784 * 2000
    # Loihi 2: 8,192 neurons and 120M synapses over 128 cores -> 937,500 8-bit synapses per core
    m2 = map_network(net, "loihi2")
    assert m2.layers[0].cores == -(-2000 // int(937500 * 8 // (784 * 8))) == 2
    assert m2.chips == 1 and m.cores == sum(lay.cores for lay in m.layers)


def test_neuron_limit_and_fanin_split():
    # 3000 neurons with 10 inputs each: the 1,024-compartment limit binds on Loihi
    m = map_network(_dense(10, 3000), "loihi")
    assert m.layers[0].cores == 3 and m.layers[0].limited_by == "neurons"
    # 5,000 inputs per neuron exceed Loihi's 4,096 input axons: fan-in split over 2 cores (+1 to join)
    m = map_network(_dense(5000, 10), "loihi")
    assert m.layers[0].fanin_split == 2 and m.layers[0].cores == 3
    assert m.limits["input_axons_per_core"] == 4096 and "nengo" in m.sources["input_axons_per_core"]
    # Loihi 2 publishes no axon limit: no split
    assert map_network(_dense(5000, 10), "loihi2").layers[0].fanin_split == 1


def test_chips_and_errors():
    # 32-bit weights: 2,048 x 32 bits per neuron leave 16 neurons per 128 KiB core -> 132 cores, 2 chips
    m = map_network(_dense(2048, 2100, 10), "loihi", weight_bits=32)
    assert m.layers[0].cores == -(-2100 // 16) == 132
    assert m.chips == 2
    df = m.to_dataframe()
    assert df.iloc[-1]["layer"] == "TOTAL" and df.iloc[-1]["cores"] == m.cores
    with pytest.raises(NeurosimError, match="valid: loihi, loihi2"):
        map_network(_dense(4, 4), "truenorth")


def test_cli_table_and_json(tmp_path, capsys):
    from neurosim.cli import main

    path = _dense(64, 100).save(tmp_path / "net.npz")
    assert main(["loihi-map", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"loihi", "loihi2"} and data["loihi"]["cores"] == 2  # n1 and the readout
    assert main(["loihi-map", str(path), "--chip", "loihi2"]) == 0
    assert "TOTAL" in capsys.readouterr().out
    assert main(["loihi-map", str(tmp_path / "missing.npz")]) == 2
    assert "no IR file" in capsys.readouterr().err


def test_signed_spikes_are_flagged_on_loihi1_only(tmp_path, capsys):
    from neurosim.cli import main

    net = _dense(64, 100)
    nodes = dict(net.nodes)
    nodes["n1"] = Neurons("fc1", shape=(100,), signed=True)
    signed = SpikingNetwork(input_shape=(64,), nodes=nodes, readout=Readout("fc2"))
    m1, m2 = map_network(signed, "loihi"), map_network(signed, "loihi2")
    assert not m1.supported and "graded spikes" in m1.note and "n1" in m1.note
    assert m2.supported and m2.note == ""
    assert m1.cores == map_network(net, "loihi").cores  # the map itself is still computed
    df = m1.to_dataframe()
    assert "UNSUPPORTED" in df.iloc[-1]["limited_by"]
    assert "UNSUPPORTED" in df[df["layer"] == "readout (integrators)"].iloc[0]["limited_by"]  # fed by n1's -1s
    assert "UNSUPPORTED" not in df[df["layer"] == "n1"].iloc[0]["limited_by"]  # fed by the input
    assert map_network(net, "loihi").supported
    path = signed.save(tmp_path / "signed.npz")
    assert main(["loihi-map", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["loihi"]["supported"] is False and data["loihi2"]["supported"] is True
    assert main(["loihi-map", str(path)]) == 0
    assert "UNSUPPORTED" in capsys.readouterr().out
