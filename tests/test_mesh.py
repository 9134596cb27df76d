"""The simpy mesh model (hw.neuromorphic_mesh): hand-computed cases against Davies et al. 2018 Table 2,
aggregate == exact, conservation, per-step counts from the snntorch backend, and the CLI's one-line errors."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from hw import neuromorphic_mesh as nm
from neurosim.errors import NeurosimError
from neurosim.ir import Linear, Neurons, Readout, SpikingNetwork


def _dense(n_in, hidden, n_out=10, seed=0):
    rng = np.random.default_rng(seed)
    return SpikingNetwork(input_shape=(n_in,), nodes={
        "fc1": Linear("input", weight=rng.normal(size=(hidden, n_in)) + 0.01),
        "n1": Neurons("fc1", shape=(hidden,)),
        "fc2": Linear("n1", weight=rng.normal(size=(n_out, hidden)) + 0.01)}, readout=Readout("fc2"))


def _chain():
    """input -> 1 neuron -> 1 readout integrator: two cores (the population and the readout)."""
    return SpikingNetwork(input_shape=(1,), nodes={
        "fc1": Linear("input", weight=np.ones((1, 1))), "n1": Neurons("fc1", shape=(1,)),
        "fc2": Linear("n1", weight=np.ones((1, 1)))}, readout=Readout("fc2"))


# ---- Davies et al. 2018, Table 2 ---------------------------------------------------------------------

def test_hops_and_barrier_follow_davies_table():
    p = nm.chip_params("loihi")
    assert (p.mesh_x, p.mesh_y, p.cores_per_tile, p.cores) == (8, 4, 4, 128)
    assert p.barrier_ns(1) == pytest.approx(113.0) and p.barrier_ns(32) == pytest.approx(465.0)
    assert 113.0 < p.barrier_ns(4) < p.barrier_ns(16) < 465.0
    step = nm._Step(nm.place(_chain(), "loihi", "compact"), exact=False)
    r = step.route_tiles((0, 0), (3, 2))  # X first (3 east-west hops), then Y (2 north-south)
    assert [k for k, *_ in r] == [((0, 0), (1, 0)), ((1, 0), (2, 0)), ((2, 0), (3, 0)),
                                  ((3, 0), (3, 1)), ((3, 1), (3, 2))]
    assert sum(t for _, t, _, _ in r) == pytest.approx(3 * 4.1 + 2 * 6.5)  # ns
    assert sum(e for _, _, e, _ in r) == pytest.approx(3 * 3.0 + 2 * 4.0)  # pJ
    assert step.route_tiles((5, 3), (5, 3)) == []
    # a board of chips: the link from x=7 to x=8 crosses to the next chip
    r2 = step.route_tiles((7, 0), (8, 0))
    assert r2[0][3] and r2[0][1] == p.t_chip_ns


@pytest.mark.parametrize("ns_hop", [False, True])
def test_two_cores_by_hand(ns_hop):
    net = _chain()
    pl = nm.place(net, "loihi", "spread")
    assert pl.n_cores == 2 and pl.tile(0) == (0, 0) and pl.tile(1) == (1, 0)
    if ns_hop:
        pl = replace(pl, pos=[pl.pos[0], (0, 0, 1, 0)])  # readout core one tile north
    act = nm.activity_from_raster({"input": [[1]], "n1": [[1]]})
    rep = nm.simulate(net, act, "loihi", placement=pl, mode="exact")
    # host -> core 0 (same tile): 2.1 ns send, 3.5 ns synop. Core 0: active update 8.4 ns, then its spike:
    # send 2.1 ns, one hop (E-W 4.1 / N-S 6.5 ns), 3.5 ns synop at core 1.
    hop_t, hop_e = (6.5, 4.0) if ns_hop else (4.1, 3.0)
    end = 8.4 + 2.1 + hop_t + 3.5
    barrier = 113 + (465 - 113) * 1 / 5  # two tiles in use: log2(2) / log2(32) of the way
    step = end + barrier
    assert rep.rows[0]["compute_s"] == pytest.approx(end * 1e-9)
    assert rep.totals["latency_s"] == pytest.approx(step * 1e-9)
    t = rep.totals
    assert t["energy_synaptic_j"] == pytest.approx(2 * 23.6e-12)
    assert t["energy_neuron_j"] == pytest.approx(2 * 81e-12)  # both cores received a spike: active
    assert t["energy_network_j"] == pytest.approx((2 * 1.7 + hop_e) * 1e-12)
    assert t["energy_static_j"] == pytest.approx(0.104 * step * 1e-9)
    assert t["energy_j"] == pytest.approx(2 * 23.6e-12 + 2 * 81e-12 + (2 * 1.7 + hop_e) * 1e-12 + 0.104 * step * 1e-9)
    assert (t["hops_ns"], t["hops_ew"]) == ((1.0, 0.0) if ns_hop else (0.0, 1.0))
    assert "core 1" in rep.rows[0]["critical_path"] and "1 hop" in rep.rows[0]["critical_path"]
    # no spike at all: both cores idle (52 pJ, 5.3 ns), no messages
    quiet = nm.simulate(net, nm.activity_from_raster({"input": [[0]], "n1": [[0]]}), "loihi", placement=pl)
    assert quiet.totals["energy_neuron_j"] == pytest.approx(2 * 52e-12)
    assert quiet.rows[0]["compute_s"] == pytest.approx(5.3e-9) and quiet.totals["messages_sent"] == 0


# ---- modes and conservation --------------------------------------------------------------------------

def _raster(net, T, p, seed):
    rng = np.random.default_rng(seed)
    return nm.activity_from_raster({"input": (rng.random((T, int(np.prod(net.input_shape)))) < p).astype(float),
                                    **{k: (rng.random((T, n.size)) < p).astype(float)
                                       for k, n in net.populations.items()}})


@pytest.mark.parametrize("mapping", ["compact", "spread"])
def test_aggregate_equals_exact_on_small_nets(mapping):
    net = _dense(300, 600)  # synaptic memory: 436 neurons per Loihi core -> the hidden layer takes 2 cores
    act = _raster(net, 4, 0.1, seed=1)
    ex = nm.simulate(net, act, "loihi", mapping=mapping, mode="exact")
    ag = nm.simulate(net, act, "loihi", mapping=mapping, mode="aggregate")
    assert ex.totals["cores"] == 3
    for k in ("energy_j", "energy_synaptic_j", "energy_neuron_j", "energy_network_j", "messages_sent",
              "spike_hops", "synops"):
        assert ag.totals[k] == pytest.approx(ex.totals[k], rel=1e-12), k
    # one flow per link and per receiver here: the cut-through message is the per-spike pipeline
    for a, b in zip(ag.rows, ex.rows):
        assert a["compute_s"] == pytest.approx(b["compute_s"], rel=1e-9)
    assert ex.totals["sim_events"] > ag.totals["sim_events"]
    # tile mode bundles per tile pair and reserves whole paths: same dynamic energy and counts, close step times
    tl = nm.simulate(net, act, "loihi", mapping=mapping, mode="tile")
    for k in ("energy_synaptic_j", "energy_neuron_j", "energy_network_j", "messages_sent", "spike_hops"):
        assert tl.totals[k] == pytest.approx(ag.totals[k], rel=1e-12), k
    assert tl.totals["latency_s"] == pytest.approx(ag.totals["latency_s"], rel=0.05)


def test_conservation_and_synops_match_the_backend():
    net = _dense(64, 200, seed=2)
    x = np.random.default_rng(3).random((3, 64)).astype(np.float32)
    rep, res = nm.run(net, x, 8, "loihi", mapping="spread")
    t = rep.totals
    assert t["messages_sent"] == pytest.approx(t["messages_received"]) and t["messages_sent"] > 0
    assert sum(r["spikes"] for r in rep.links) == pytest.approx(t["spike_hops"])
    assert sum(c["spikes_received"] for c in rep.cores) == pytest.approx(t["messages_received"])
    # every synaptic op the backend counted (per sample) happens on some core
    assert t["synops"] == pytest.approx(res.total_synops, rel=1e-9)
    assert sum(c["synops"] for c in rep.cores) == pytest.approx(res.total_synops, rel=1e-9)
    parts = sum(t[k] for k in ("energy_synaptic_j", "energy_neuron_j", "energy_network_j", "energy_static_j"))
    assert t["energy_j"] == pytest.approx(parts)
    assert t["latency_s"] == pytest.approx(sum(r["latency_s"] for r in rep.rows))
    # a hidden spike reaches every readout core once: messages from n1 = its spikes x destination cores
    assert len(rep.rows) == 8 and all(r["latency_s"] >= r["barrier_s"] > 0 for r in rep.rows)


@pytest.mark.parametrize("mode", ["layer", "step"])
def test_step_counts_sum_to_spike_counts(mode):
    net = _dense(20, 30)
    x = np.random.default_rng(0).random((5, 20)).astype(np.float32)
    r = net.run(x, 8, record_step_counts=True, mode=mode, batch_size=2)
    assert r.step_counts["n1"].shape == (8, 5) and r.step_counts["input"].shape == (8, 5)
    assert r.step_counts["n1"].sum() == pytest.approx(r.spike_counts["n1"])
    assert (r.step_counts["input"] == (x != 0).sum(1)[None]).all()  # direct encoding: every element, every step
    assert net.run(x, 8).step_counts is None


def test_mappings_differ_and_heatmap(tmp_path):
    net = _dense(300, 600)
    act = _raster(net, 3, 0.2, seed=4)
    c = nm.simulate(net, act, "loihi", mapping="compact")
    s = nm.simulate(net, act, "loihi", mapping="spread", heatmap=str(tmp_path / "m.png"))
    assert c.totals["mean_hops"] < s.totals["mean_hops"]
    assert c.totals["energy_synaptic_j"] == pytest.approx(s.totals["energy_synaptic_j"])
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    d = json.loads(json.dumps(s.to_dict()))
    assert d["totals"]["energy_j"] > 0 and len(d["steps"]) == 3 and d["cores"] and d["links"]


# ---- bad input -------------------------------------------------------------------------------------

def test_bad_input_is_one_clear_error():
    with pytest.raises(NeurosimError, match="unknown chip 'truenorth'"):
        nm.chip_params("truenorth")
    with pytest.raises(NeurosimError, match="needs .* chips; the board has 1 chip"):
        nm.place(_dense(784, 40000), "loihi", max_chips=1)
    with pytest.raises(NeurosimError, match="unknown mapping"):
        nm.place(_chain(), "loihi", "diagonal")
    net = _dense(20, 30)
    with pytest.raises(NeurosimError, match="whole spike counts"):
        nm.simulate(net, nm.activity_from_raster({"input": np.full((2, 20), 0.5), "n1": np.zeros((2, 30))}),
                    "loihi", mode="exact")


def test_cli(tmp_path, capsys):
    from neurosim.cli import main

    net = _dense(20, 30)
    net.save(tmp_path / "net.npz")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((4, 20)).astype(np.float32))
    assert main(["mesh", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"), "--timesteps", "8",
                 "--mapping", "spread", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["energy_j"] > 0 and d["totals"]["latency_s"] > 0 and d["totals"]["samples"] == 4
    assert d["totals"]["analytic_energy_j"] > 0
    for argv, msg in ((["--chip", "truenorth"], "unknown chip"), (["--mapping", "diag"], "unknown mapping"),
                      (["--chip-links", "ring"], "unknown chip_links")):
        assert main(["mesh", str(tmp_path / "net.npz"), "--inputs", str(tmp_path / "x.npy"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err
    big = _dense(784, 40000)
    big.save(tmp_path / "big.npz")
    assert main(["mesh", str(tmp_path / "big.npz"), "--max-chips", "1", "--inputs", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the board has 1 chip" in err


def test_hw_neuromorphic_offers_the_simulated_alternative():
    from hw.neuromorphic import cost_from_simresult, simulate_mesh

    net = _dense(20, 30)
    x = np.random.default_rng(5).random((2, 20)).astype(np.float32)
    rep = simulate_mesh(net, x, 4, "loihi")
    ref, res = nm.run(net, x, 4, "loihi")
    assert rep.totals["energy_j"] == pytest.approx(ref.totals["energy_j"])
    # the same activity reaches both models: the simulated chip performs every synaptic op the analytic one costs
    ana = cost_from_simresult(res, "loihi")
    assert rep.totals["synops"] == pytest.approx(ana.totals["synops"] / res.batch)
    with pytest.raises(NeurosimError, match="needs inputs"):
        simulate_mesh(net)


def test_neuromorphic_mesh_study_quick(tmp_path):
    import studies
    from studies.store import Store

    db = tmp_path / "m.sqlite"
    r = studies.run("neuromorphic_mesh", quick=True, db=db, workers=0, quiet=True)
    assert r.n_failed == 0, r.failures
    with Store(db, create=False) as s:
        df = s.frame("neuromorphic_mesh")
    assert len(df) == 4 and set(df.mapping) == {"compact", "spread"}
    # the synaptic energy depends on the spikes only, never on where the cores sit
    for T, g in df.groupby("timesteps"):
        assert np.allclose(g.energy_synaptic_j, g.energy_synaptic_j.iloc[0], rtol=1e-9)
    assert (df[df.mapping == "spread"].mean_hops.values > df[df.mapping == "compact"].mean_hops.values).all()
    s = studies.get("neuromorphic_mesh")
    for _, fn in s.tables:
        assert len(fn(df)) == 4
    for _, fn in s.figures:
        fn(df)


def test_spiking_maxpool_gates_are_cores_and_conserve_synops():
    from neurosim.ir import Conv2d, Flatten, SpikeMaxPool2d

    rng = np.random.default_rng(6)
    net = SpikingNetwork(input_shape=(1, 6, 6), nodes={
        "c1": Conv2d("input", weight=rng.normal(size=(2, 1, 3, 3)) + 0.3, padding=(1, 1)),
        "n1": Neurons("c1", shape=(2, 6, 6)),
        "mp": SpikeMaxPool2d("n1", kernel_size=(2, 2)),
        "fl": Flatten("mp"),
        "fc": Linear("fl", weight=rng.normal(size=(3, 18)) + 0.1)}, readout=Readout("fc"))
    x = rng.random((2, 1, 6, 6)).astype(np.float32)
    rep, res = nm.run(net, x, 6, "loihi", mapping="spread")
    assert "mp" in rep.placement.blocks and res.step_counts["mp"].shape == (6, 2)
    t = rep.totals
    # the gates receive one event per input spike and window (2x2, stride 2: every n1 neuron in one window)
    gate_synops = sum(c["synops"] for c in rep.cores if c["layer"] == "mp")
    assert gate_synops == pytest.approx(res.spike_counts["n1"] / res.batch)
    assert t["synops"] - gate_synops == pytest.approx(res.total_synops, rel=1e-9)
    assert t["messages_sent"] == pytest.approx(t["messages_received"])


# ---- tile mode's kernel, boards of chips -------------------------------------------------------------

def _small_board(links):
    """Chips of 2 x 1 tiles of one core each: a 5-core net spans 3 chips (a 2 x 2 grid), fast to simulate."""
    return dict(mesh_x=2, mesh_y=1, cores_per_tile=1, chip_links=links)


@pytest.mark.parametrize("links", ["board", "seamless"])
@pytest.mark.parametrize("mapping", ["compact", "spread"])
def test_tile_kernel_equals_simpy(mapping, links):
    net = _dense(300, 1500, seed=7)
    act = _raster(net, 3, 0.15, seed=8)
    kw = dict(mapping=mapping, mode="tile", **_small_board(links))
    ref = nm.simulate(net, act, "loihi", engine="simpy", **kw)
    fast = nm.simulate(net, act, "loihi", **kw)
    assert (ref.assumptions["engine"], fast.assumptions["engine"]) == ("simpy", "numba")
    assert ref.totals["chips"] == 3 and ref.totals["messages_sent"] > 0
    for k, v in ref.totals.items():
        if k not in ("sim_wall_s", "events_per_s"):
            assert fast.totals[k] == v, k  # the same events in the same order: bit for bit
    assert fast.rows == ref.rows and fast.links == ref.links and fast.cores == ref.cores
    with pytest.raises(NeurosimError, match="unknown engine"):
        nm.simulate(net, act, "loihi", engine="gpu")


def test_vectorised_routes_equal_route_tiles():
    net = _dense(300, 1500, seed=7)
    for links in ("board", "seamless"):
        pl = nm.place(net, "loihi", "spread", params=nm.chip_params("loihi", **_small_board(links)))
        st = nm._Step(pl, exact=False, tile_level=True)
        src, dst = np.meshgrid(np.arange(-1, pl.n_cores), np.arange(pl.n_cores))
        hops, ew, ns, cross, e = st.flow_routes(src.ravel(), dst.ravel())
        st._tile_xy()
        tid = st._tile_id
        ptr, lid, lt = st._route_csr(tid[src.ravel() + 1], tid[dst.ravel() + 1])
        for f, (a, b) in enumerate(zip(src.ravel(), dst.ravel())):
            r = st.route(int(a), int(b))
            assert hops[f] == len(r) and cross[f] == sum(c for *_, c in r)
            assert ew[f] + ns[f] + cross[f] == len(r) and e[f] == pytest.approx(sum(x for _, _, x, _ in r))
            assert [st.link_key(i) for i in lid[ptr[f]:ptr[f + 1]]] == [k for k, *_ in r]
            assert lt[ptr[f]:ptr[f + 1]].tolist() == [t for _, t, _, _ in r]
        assert (cross.sum() > 0) == (links == "board")


def test_seamless_chips_are_one_mesh():
    net = _dense(300, 1500, seed=7)
    act = _raster(net, 3, 0.15, seed=8)
    board = nm.simulate(net, act, "loihi", mode="tile", **_small_board("board"))
    flat = nm.simulate(net, act, "loihi", mode="tile", **_small_board("seamless"))
    p = nm.chip_params("loihi", **_small_board("seamless"))
    assert board.totals["chip_crossings"] > 0 and flat.totals["chip_crossings"] == 0
    assert flat.totals["spike_hops"] == board.totals["spike_hops"]  # the same routes, priced as on-chip hops
    # every hop priced on-chip: the network energy is the per-message spike energy plus E-W / N-S hops
    t = flat.totals
    assert t["energy_network_j"] == pytest.approx((t["messages_sent"] * p.e_spike_pj + t["hops_ew"] * p.e_hop_ew_pj
                                                  + t["hops_ns"] * p.e_hop_ns_pj) * 1e-12)
    assert t["energy_network_j"] < board.totals["energy_network_j"]
    # the barrier: no round trip over the chip grid (3 chips, 2 x 2 grid: 2 x 2 crossings of 100 ns on a board)
    assert flat.totals["barrier_s"] == pytest.approx(p.barrier_ns(5) * 1e-9)
    assert board.totals["barrier_s"] == pytest.approx(flat.totals["barrier_s"] + 4 * 100e-9)
    assert any("one mesh" in n for n in flat.notes) and any("ASSUMED" in n for n in board.notes)
    with pytest.raises(NeurosimError, match="unknown chip_links 'ring'"):
        nm.chip_params("loihi", chip_links="ring")
