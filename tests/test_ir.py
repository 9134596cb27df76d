"""The spiking-network IR: checks at construction, lossless save/load, NIR round trip, SimResult."""
from __future__ import annotations

import json

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurosim.errors import NeurosimError
from neurosim.ir import (Add, AvgPool2d, Conv2d, Encoding, Flatten, Linear, Neurons, Readout, SimResult,
                         SpikeMaxPool2d, SpikingNetwork, SumPool2d)


def make_net(seed: int = 0, leak: float = 1.0, reset: str = "subtract", per_channel: bool = True,
             encoding: str = "direct") -> SpikingNetwork:
    """Every node type once: conv, IF, spiking max-pool, residual Add with per-channel weights, LIF,
    average and sum pooling, flatten, linear readout."""
    rng = np.random.default_rng(seed)
    thr = rng.uniform(0.5, 1.5, size=(4, 1, 1)) if per_channel else 1.0
    nodes = {
        "conv1": Conv2d(("input",), weight=rng.normal(size=(4, 1, 3, 3)), bias=rng.normal(size=4) * 0.1, padding=1),
        "if1": Neurons(("conv1",), shape=(4, 8, 8), threshold=thr, v_init=0.5),
        "pool1": SpikeMaxPool2d(("if1",), kernel_size=2),
        "conv2": Conv2d(("pool1",), weight=rng.normal(size=(4, 4, 3, 3)) * 0.3, padding=1),
        "add": Add(("conv2", "pool1"), weights=[1.0, rng.uniform(0.5, 1.0, size=(4, 1, 1))]),
        "if2": Neurons(("add",), shape=(4, 4, 4), leak=leak, reset=reset, bias=rng.normal(size=(4, 1, 1)) * 0.1),
        "avg": AvgPool2d(("if2",), kernel_size=2),
        "sum": SumPool2d(("avg",), kernel_size=2),
        "flat": Flatten(("sum",)),
        "fc": Linear(("flat",), weight=rng.normal(size=(10, 4)), bias=np.zeros(10)),
    }
    return SpikingNetwork((1, 8, 8), nodes, Readout("fc"), Encoding(encoding), metadata={"seed": seed})


def test_shapes_and_summary():
    net = make_net()
    assert net.shapes["if1"] == (4, 8, 8) and net.shapes["pool1"] == (4, 4, 4) and net.shapes["flat"] == (4,)
    assert net.num_classes == 10 and net.n_neurons == 4 * 64 + 4 * 16
    assert net.depth() == 3
    df = net.summary()
    assert list(df["node"])[:2] == ["input", "conv1"] and len(df) == len(net.nodes) + 1


@pytest.mark.parametrize("bad, msg", [
    (lambda: Linear(("input",), weight=np.zeros((3, 4, 1))), "2-D"),
    (lambda: Linear(("input",), weight=np.zeros((3, 4)), bias=np.zeros(4)), "bias"),
    (lambda: Conv2d(("input",), weight=np.zeros((4, 1, 3, 3)), groups=3), "groups"),
    (lambda: Neurons(("x",), shape=(4,), threshold=-1.0), "threshold"),
    (lambda: Neurons(("x",), shape=(4,), threshold=np.ones(3)), "broadcast"),
    (lambda: Neurons(("x",), shape=(4,), reset="hard"), "subtract, zero"),
    (lambda: Neurons(("x",), shape=(4,), leak=1.5), "leak"),
    (lambda: Add(()), "at least one"),
    (lambda: Encoding("latency"), "direct, poisson"),
    (lambda: Readout("fc", "voltage"), "membrane, spike_count"),
    (lambda: Linear(("input",), weight=np.full((2, 2), np.nan)), "NaN"),
])
def test_node_checks(bad, msg):
    with pytest.raises(NeurosimError, match=msg):
        bad()


def test_network_checks():
    lin = Linear(("input",), weight=np.ones((3, 4)))
    with pytest.raises(NeurosimError, match="topological"):
        SpikingNetwork((4,), {"n": Neurons(("fc",), shape=(3,)), "fc": lin}, Readout("fc"))
    with pytest.raises(NeurosimError, match="expects input shape"):
        SpikingNetwork((5,), {"fc": lin}, Readout("fc"))
    with pytest.raises(NeurosimError, match="spike_count readout needs a Neurons"):
        SpikingNetwork((4,), {"fc": lin}, Readout("fc", "spike_count"))
    with pytest.raises(NeurosimError, match="must read spikes"):
        SpikingNetwork((1, 4, 4), {"p": SpikeMaxPool2d(("input",)), "f": Flatten(("p",)),
                                   "fc": Linear(("f",), weight=np.ones((2, 4)))}, Readout("fc"))
    with pytest.raises(NeurosimError, match="reserved"):
        SpikingNetwork((4,), {"input": lin}, Readout("input"))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), leak=st.sampled_from([1.0, 0.9]), reset=st.sampled_from(["subtract", "zero"]),
       per_channel=st.booleans(), encoding=st.sampled_from(["direct", "poisson"]))
def test_save_load_lossless(tmp_path_factory, seed, leak, reset, per_channel, encoding):
    net = make_net(seed, leak, reset, per_channel, encoding)
    path = net.save(tmp_path_factory.mktemp("ir") / "net")
    back = SpikingNetwork.load(path)
    assert back.diff(net) == [] and back.metadata == net.metadata
    # exact: not a single bit lost in any array
    for k, n in net.nodes.items():
        for a, v in n.arrays().items():
            assert np.array_equal(back.nodes[k].arrays()[a], v) and back.nodes[k].arrays()[a].dtype == np.float32


def test_diff_sees_a_changed_weight(tmp_path):
    net, other = make_net(1), make_net(1)
    other.nodes["conv2"].weight[0, 0, 0, 0] += 1e-3
    assert net.equals(make_net(1)) and not net.equals(other)
    assert any("conv2.weight" in d for d in net.diff(other))


@pytest.mark.parametrize("leak, reset", [(1.0, "subtract"), (0.9, "zero"), (0.8, "subtract")])
def test_nir_round_trip_through_file_is_lossless(tmp_path, leak, reset):
    net = make_net(3, leak, reset)
    graph = net.to_nir()
    nir.write(tmp_path / "net.nir", graph)
    back = SpikingNetwork.from_nir(tmp_path / "net.nir")
    assert back.diff(net) == []
    assert SpikingNetwork.from_nir(graph).diff(net) == []


def test_nir_export_content():
    """What a NIR tool sees: IF/LIF with the discretisation of snntorch, soft reset only in metadata."""
    dt = 1e-3
    g = make_net(2, leak=0.8).to_nir(dt=dt)
    if1, if2 = g.nodes["if1"], g.nodes["if2"]
    assert isinstance(if1, nir.IF) and np.allclose(if1.r, 1 / dt) and if1.v_threshold.shape == (4, 8, 8)
    assert isinstance(if2, nir.LIF) and np.allclose(if2.tau, dt / 0.2) and np.allclose(if2.r, if2.tau / dt)
    assert isinstance(g.nodes["pool1"], nir.SumPool2d)  # NIR has no max-pool: the type is in metadata
    assert isinstance(g.nodes["readout"], nir.I) and ("fc", "readout") in g.edges
    meta = json.loads(g.metadata["neurosim"])
    assert meta["nodes"]["if1"]["reset"] == "subtract" and meta["nodes"]["pool1"]["type"] == "SpikeMaxPool2d"
    assert meta["encoding"]["kind"] == "direct" and meta["dt"] == dt
    # the Add's per-channel weight on the shortcut becomes a Scale node on that edge
    assert ("pool1", "add.in1") in g.edges and ("add.in1", "add") in g.edges and ("conv2", "add") in g.edges


def test_foreign_nir_import_uses_hard_reset():
    """Without our metadata a graph imports as NIR says: hard reset to v_reset, SumPool2d, summed edges."""
    g = make_net(4).to_nir()
    bare = nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={}, type_check=False)
    net = SpikingNetwork.from_nir(bare)
    pops = net.populations
    assert {p.reset for p in pops.values()} == {"zero"}
    assert isinstance(net.nodes["pool1"], SumPool2d)
    assert net.readout.node == "fc" and net.readout.kind == "membrane"


def test_foreign_nir_rejects_unknown_node():
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                            "d": nir.Delay(delay=np.ones(3)),
                            "output": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("input", "d"), ("d", "output")], metadata={}, type_check=False)
    with pytest.raises(NeurosimError, match="Delay"):
        SpikingNetwork.from_nir(g)


def test_simresult_tables():
    r = SimResult(output=np.eye(3), predictions=np.arange(3), timesteps=8, spike_counts={"a": 12.0},
                  neurons={"a": 4}, firing_rates={"a": 12 / (4 * 8 * 3)}, synops={"fc": 30.0})
    df = r.to_dataframe()
    assert set(df["layer"]) == {"a", "fc"} and r.batch == 3 and r.total_synops == 30.0
    d = r.to_dict()
    json.dumps(d)
    assert d["spike_counts"] == {"a": 12.0} and r.accuracy([0, 1, 1]) == pytest.approx(2 / 3)


def test_shapes_follow_node_edits():
    """Derived state never goes stale: an edited (``dataclasses.replace``), added or replaced node changes
    ``net.shapes`` at once, and an edit that no longer fits is an error there, not a silently wrong shape.
    Nodes are frozen, so an edit in place is an error, not a change the network misses."""
    import dataclasses

    net = make_net(0)
    assert net.shapes["fc"] == (10,) and net.num_classes == 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.nodes["fc"].weight = np.ones((7, 4), np.float32)
    net.nodes["fc"] = dataclasses.replace(net.nodes["fc"], weight=np.ones((7, 4), np.float32), bias=None)
    assert net.shapes["fc"] == (7,) and net.num_classes == 7
    with pytest.raises(NeurosimError, match="Linear bias must have shape"):
        dataclasses.replace(net.nodes["fc"], bias=np.zeros(3))  # replace runs the checks again
    net.nodes["fc2"] = Linear(("fc",), weight=np.ones((3, 7)))
    assert net.shapes["fc2"] == (3,)
    net.nodes["fc"] = Linear(("flat",), weight=np.ones((5, 4)))
    with pytest.raises(NeurosimError, match="fc2.*expects input shape"):
        net.shapes


def _foreign_scale_graph(scale: float):
    """Input -> Linear -> IF -> Scale -> Linear -> Output, as a foreign NIR tool writes it."""
    rng = np.random.default_rng(0)
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([6])}),
        "fc1": nir.Linear(weight=rng.uniform(0, 1, (5, 6)).astype(np.float32)),
        "lif": nir.IF(r=np.full(5, 1e4, np.float32), v_threshold=np.full(5, 0.8, np.float32),
                      v_reset=np.zeros(5, np.float32)),
        "sc": nir.Scale(scale=np.full(5, scale, np.float32)),
        "fc2": nir.Linear(weight=rng.normal(0, 1, (3, 5)).astype(np.float32)),
        "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "sc"), ("sc", "fc2"), ("fc2", "output")],
        metadata={}, type_check=False)


def test_foreign_nir_scale_is_one_weighted_input_and_counts_each_spike_once():
    net = SpikingNetwork.from_nir(_foreign_scale_graph(0.5))
    sc = net.nodes["sc"]
    assert isinstance(sc, Add) and sc.inputs == ("lif",) and np.allclose(sc.weights[0], 0.5)
    x = np.random.default_rng(1).uniform(0, 1, (4, 6)).astype(np.float32)
    r = net.run(x, 10, record_counts=True)
    spikes = r.spike_counts["lif"] / 4
    assert spikes > 0 and r.synops["sc"] == pytest.approx(spikes)  # one synaptic event per spike, not two
