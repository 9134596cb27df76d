"""Per-operator Loihi placement and cost of spiking Transformers (issue 13, part b): where each operator
runs, Loihi 1 refused where graded spikes are needed, and the products of two spike streams priced as the
work a processor does (not as free synaptic additions)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import models
import neurosim
from neurosim.cli import main
from neurosim.errors import NeurosimError
from neurosim.loihi.operators import (MATMUL_INCREMENT_OPS, PROCESSOR_OPS, X86, _processor_energies, carries,
                                      cost_operators, map_operators, operator_work)


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    m = models.create("vit_tiny", image_size=8, d_model=16, n_layers=1, n_heads=2, d_ff=32,
                      activation="relu").eval()
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    net = neurosim.convert(m, x)
    res = net.run(x[:4].numpy(), 6, backend="snntorch")
    return m, net, x, res


def test_each_operator_has_its_place_and_output_type(vit):
    _, net, _, _ = vit
    m2 = map_operators(net, "loihi2")
    by = {r.node: r for r in m2.rows}
    for r in m2.rows:
        if r.kind in ("MatMul", "Softmax", "LayerNorm"):
            assert r.where == X86 and r.carries == "graded" and r.ops_per_step > 0
        if r.kind in ("Neurons", "TokenLinear", "Linear", "Conv2d"):
            assert r.where == "neuro cores" and r.cores >= 1
        if r.kind in ("Reshape", "Transpose", "Slice", "Concat"):
            assert r.where == "routing" and r.cores == 0
    # the signed operands of Q K^T travel as ternary spikes (a +/- pair of binary populations)
    scores = [r for r in m2.rows if r.kind == "MatMul" and r.node.endswith("_scores")]
    assert scores and all(by[i].carries == "ternary" for i in net.nodes[scores[0].node].inputs)
    assert m2.supported and m2.cores == sum(r.cores for r in m2.rows) and m2.chips == 1
    # TokenLinear synapses unrolled per token, the shared count beside them
    tl = next(r for r in m2.rows if r.kind == "TokenLinear")
    tokens = net.shapes[net.nodes[tl.node].inputs[0]][0]
    assert tl.synapses == tokens * tl.shared_synapses


def test_loihi1_is_unsupported_exactly_where_graded_or_signed_values_travel(vit):
    _, net, _, _ = vit
    m1 = map_operators(net, "loihi")
    assert not m1.supported
    bad = {r.kind for r in m1.unsupported()}
    assert {"MatMul", "Softmax", "LayerNorm", "TokenLinear"} <= bad
    for r in m1.rows:
        needs = {r.carries, r.reads} & {"graded", "ternary"}
        if r.where in ("neuro cores", "routing"):
            assert r.supported == (not needs), r
    # the MLP's hidden layer (binary spikes into fc2) is the part Loihi 1 runs
    fc2 = next(r for r in m1.rows if r.node.endswith("mlp_fc2"))
    assert fc2.reads == "binary" and fc2.supported


def test_products_of_two_streams_are_priced_as_processor_work_not_free_additions(vit):
    """The MatMul rows carry the measured increments (nnz(a_t) N + nnz(b_t) M) as multiply-accumulates with a
    dynamic operand, plus the M N renormalisation per step; setting those energies to zero must remove
    exactly that much energy (so a cost model that counted the products free, or as synops, fails here)."""
    _, net, _, res = vit
    rep = cost_operators(net, res, "loihi2")
    e = _processor_energies()
    T = res.timesteps
    mm = [r for r in rep.rows if r["kind"] == "MatMul"]
    assert len(mm) == 2
    for r in mm:
        macs = res.synops[r["node"]]
        assert macs > 0 and r["product_macs"] == macs and r["synops"] == 0 and r["graded_synops"] == 0
        size = int(np.prod(net.shapes[r["node"]]))
        adds, muls, acc = PROCESSOR_OPS["MatMul"]
        ia, im, iacc = MATMUL_INCREMENT_OPS
        want = (macs * (ia * e["add_int32_pj"] + im * e["mult_int32_pj"] + iacc * e["access_pj"])
                + size * T * (adds * e["add_int32_pj"] + muls * e["mult_int32_pj"] + acc * e["access_pj"]))
        assert r["processor_energy_j"] == pytest.approx(want * 1e-12, rel=1e-9)
        # each product MAC costs at least a multiply and an add: more than a synaptic accumulate's ALU work
        assert r["processor_energy_j"] >= macs * (e["mult_int32_pj"] + e["add_int32_pj"]) * 1e-12
    free = cost_operators(net, res, "loihi2", add_int32_pj=0, mult_int32_pj=0, access_pj=0)
    mm_free = sum(r["energy_j"] for r in free.rows if r["kind"] == "MatMul")
    mm_full = sum(r["energy_j"] for r in mm)
    assert mm_full - mm_free == pytest.approx(rep.totals["product_energy_j"], rel=1e-9)
    assert rep.totals["product_energy_j"] > 0
    # Softmax and LayerNorm: PROCESSOR_OPS per element and step
    sm = next(r for r in rep.rows if r["kind"] == "Softmax")
    adds, muls, _ = PROCESSOR_OPS["Softmax"]
    assert sm["proc_adds"] == int(np.prod(net.shapes[sm["node"]])) * T * adds
    assert sm["proc_mults"] == int(np.prod(net.shapes[sm["node"]])) * T * muls


def test_work_reads_the_measured_activity(vit):
    _, net, _, res = vit
    work = {w["node"]: w for w in operator_work(net, res)}
    for k, pop in net.populations.items():
        assert work[k]["neuron_updates"] == pop.size * res.timesteps
        assert work[k]["messages"] == pytest.approx(res.spike_counts[k] / res.batch)
    # SynOps of synaptic nodes are the backend's, split by what their input carries
    for k, so in res.synops.items():
        w = work[k]
        assert w["synops"] + w["graded_synops"] + w["product_macs"] == pytest.approx(so)
    fc1 = next(k for k in work if k.endswith("mlp_fc1"))
    fc2 = next(k for k in work if k.endswith("mlp_fc2"))
    assert work[fc1]["graded_synops"] > 0 and work[fc1]["synops"] == 0  # reads LayerNorm: graded
    assert work[fc2]["synops"] > 0 and work[fc2]["graded_synops"] == 0  # reads the spiking hidden layer


def test_the_ann_beside_it_and_bad_energy_options(vit):
    m, net, _, res = vit
    rep = cost_operators(net, res, "loihi2", ann=m, ann_devices=("a100_80gb", "tpu_v4"))
    assert rep.totals["ann_macs"] > 0
    assert rep.totals["ann_a100_80gb_energy_j"] > 0 and rep.totals["ann_tpu_v4_energy_j"] > 0
    with pytest.raises(NeurosimError, match="unknown energy option"):
        cost_operators(net, res, "loihi2", e_bogus_pj=1.0)
    with pytest.raises(NeurosimError, match="finite number"):
        cost_operators(net, res, "loihi2", access_pj=float("nan"))
    with pytest.raises(NeurosimError, match="not a neuromorphic chip"):
        cost_operators(net, res, "a100_80gb")


def test_carries_a_scaled_spike_pair_as_ternary():
    from neurosim.ir import Add, Linear, Neurons, Readout, SpikingNetwork

    nodes = {"fc": Linear(("input",), weight=np.ones((3, 4))), "p": Neurons(("fc",), shape=(3,)),
             "n": Neurons(("fc",), shape=(3,)), "pm": Add(("p", "n"), weights=(2.0, -2.0)),
             "sc": Add(("p",), weights=(0.5,)), "out": Linear(("pm",), weight=np.ones((2, 3)))}
    net = SpikingNetwork((4,), nodes, Readout("out"))
    assert carries(net, "pm") == "ternary" and carries(net, "sc") == "binary"
    assert carries(net, "fc") == "current" and carries(net, "input") == "graded"


def test_cli_loihi_map_and_snn_cost_on_a_transformer(vit, tmp_path, capsys):
    _, net, x, _ = vit
    path = tmp_path / "vit.npz"
    net.save(path)
    assert main(["loihi-map", str(path)]) == 0
    out = capsys.readouterr().out
    assert "x86 cores or host" in out and "MatMul" in out and "UNSUPPORTED" in out
    assert "Intel Loihi 2:" in out
    assert main(["loihi-map", str(path), "--chip", "loihi2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["loihi2"]["supported"] and any(o["kind"] == "Softmax" for o in d["loihi2"]["operators"])
    np.save(tmp_path / "x.npy", x[:3].numpy())
    assert main(["snn-cost", str(path), "--inputs", str(tmp_path / "x.npy"), "--timesteps", "4", "--hw", ""]) == 0
    out = capsys.readouterr().out
    assert "products of two streams" in out and "MatMul" in out
    assert main(["snn-cost", str(path), "--inputs", str(tmp_path / "x.npy"), "--timesteps", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["totals"]["product_energy_j"] > 0
    assert main(["snn-cost", str(path), "--chip", "nochip"]) == 2


def test_snn_cost_on_a_token_model_reads_ids_and_costs_its_ann(tmp_path, capsys):
    torch.manual_seed(0)
    m = models.create("bert_tiny", vocab_size=7, num_classes=3, d_model=16, n_layers=1, n_heads=2, d_ff=32).eval()
    ids = torch.randint(0, 7, (24, 8), generator=torch.Generator().manual_seed(0))
    net = neurosim.convert(m, ids)
    path = tmp_path / "bert.npz"
    net.save(path)
    np.save(tmp_path / "ids.npy", ids[:2].numpy())
    assert main(["snn-cost", str(path), "--inputs", str(tmp_path / "ids.npy"), "--timesteps", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    emb = [r for r in d["ops"] if r["kind"] == "Embedding"]
    assert emb and emb[0]["where"] == "host" and emb[0]["messages"] == 8 * 16 * 3
    assert d["totals"]["ann_macs"] > 0 and d["totals"]["ann_tpu_v4_energy_j"] > 0
    m1 = map_operators(net, "loihi")
    assert not next(r for r in m1.rows if r.kind == "Embedding").supported
