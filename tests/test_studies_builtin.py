"""The shipped studies: their cells agree with the public APIs they orchestrate, their claims hold."""
from __future__ import annotations

import math

import numpy as np
import pytest

import studies
from studies.store import Store


def _run(name, tmp_path, **kw):
    db = tmp_path / f"{name}.sqlite"
    r = studies.run(name, db=db, workers=0, quiet=True, **kw)
    assert r.n_failed == 0, r.failures
    with Store(db, create=False) as s:
        return s.frame(name)


def _plotted(fig):
    """Every (x, y) point a figure draws: line vertices, scatter offsets, bar tops."""
    from matplotlib.patches import Rectangle

    pts = []
    for ax in fig.axes:
        data = ax.transData  # reference lines and bands (axvline, axvspan) live in axes coordinates: skipped
        mine = [l.get_xydata() for l in ax.get_lines() if l.get_transform() == data]
        mine += [c.get_offsets() for c in ax.collections if c.get_offset_transform() == data]
        mine = [np.asarray(a, float).reshape(-1, 2) for a in mine if len(a)]
        rects = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_data_transform() == data]
        if rects:  # a bar's value is its length: height for vertical bars (all of one width), else width
            vertical = len({round(p.get_width(), 9) for p in rects}) == 1 and len(rects) > 1 or \
                len({round(p.get_height(), 9) for p in rects}) > 1
            mine.append(np.asarray([(0.0, p.get_height() if vertical else p.get_width()) for p in rects]))
        if mine:
            assert ax.get_xlabel() or ax.get_ylabel(), f"unlabelled axes in {fig}"
            pts.extend(mine)
    return np.concatenate(pts) if pts else np.empty((0, 2))


def _figures_and_tables(name, df):
    """Tables have rows and no empty column; figures draw the rows: every plotted y is a value of the frame."""
    from matplotlib.figure import Figure

    s = studies.get(name)
    for title, fn in s.tables:
        t = fn(df)
        assert len(t) > 0 and not t.isna().all().any(), title
    values = np.unique(df.select_dtypes("number").to_numpy(float).ravel())
    values = values[np.isfinite(values)]
    for title, fn in s.figures:
        fig = fn(df)
        assert isinstance(fig, Figure), title
        pts = _plotted(fig)
        ys = pts[np.isfinite(pts[:, 1]), 1]
        assert len(ys) > 0, f"{title}: nothing plotted"
        near = np.isclose(ys[:, None], values[None, :], rtol=1e-9, atol=0).any(axis=1)
        assert near.all(), f"{title}: plots {ys[~near][:3]} that are no value of the study's rows"


def test_hardware_cost_cells_are_the_cost_models(tmp_path):
    pytest.importorskip("hw.training")
    import hw
    from hw.workload import profile

    df = _run("hardware_cost", tmp_path, quick=True,
              only={"model": ["lenet5", "mlp"], "device": ["h100_sxm", "tpu_v4", "loihi2"]})
    assert set(df.device) == {"h100_sxm", "tpu_v4", "loihi2"}
    assert set(df[df.device == "loihi2"].precision) == {"int8"}  # the chip's own precision, once
    for r in df.itertuples():
        w = profile(r.model, batch=r.batch)
        ref = hw.cost(w, r.device) if r.device == "loihi2" else hw.cost(w, r.device, precision=r.precision)
        assert r.latency_s == ref["latency_s"] and r.energy_per_inference_j == ref["energy_j"] / r.batch
        assert r.macs_per_inference == w.macs
        assert math.isnan(r.train_energy_kwh) == (r.device_family == "neuromorphic")
    gpu = df[(df.device == "h100_sxm") & (df.model == "lenet5")].set_index("precision")
    assert gpu.loc["bf16", "train_energy_kwh"] < gpu.loc["fp32", "train_energy_kwh"]  # bf16 peak > fp32 peak
    _figures_and_tables("hardware_cost", df)


def test_seed_claims_reproduce_the_published_numbers(tmp_path):
    pytest.importorskip("hw.training")
    from studies.seed_claims import published

    golden = published()
    df = _run("seed_claims", tmp_path, only={"claim": ["gpt3_training_flops", "gpt3_training_footprint",
                                                       "int8_memory_saving", "patterson2021_table4",
                                                       "strubell2019_table3"]})
    tol = {"gpt3_training_flops": golden["gpt3"]["tolerance"], "gpt3_training_footprint": 0.02,
           "int8_memory_saving": 0.0, "patterson2021_table4": golden["patterson2021_table4"]["tolerance"],
           "strubell2019_table3": golden["strubell2019_table3"]["tolerance"]}
    for r in df.itertuples():
        assert abs(r.ours - r.published) <= tol[r.claim] * r.published, r
        assert r.diff_pct == pytest.approx(100 * (r.ours - r.published) / r.published)
    rows = df.groupby("claim").size().to_dict()
    assert rows["patterson2021_table4"] == 3 * len(golden["patterson2021_table4"]["rows"])
    assert rows["strubell2019_table3"] == 2 * len(golden["strubell2019_table3"]["rows"])
    flops = df[df.claim == "gpt3_training_flops"].iloc[0]
    assert flops.published == 3.14e23 and "zoo gpt3_175b" in flops.method
    _figures_and_tables("seed_claims", df)


def test_ann_vs_snn_cells_are_the_conversion_pipeline(tmp_path):
    pytest.importorskip("neurosim.convert")
    pytest.importorskip("models.train")
    import hw
    from hw.neuromorphic import cost_from_simresult
    from hw.workload import trace
    from studies import ann_vs_snn as avs

    both = _run("ann_vs_snn", tmp_path, quick=True, only={"task": ["mlp@digits"], "backend": ["snntorch"],
                                                          "timesteps": ["2", "32"]})
    assert len(both) == 4 and set(both.conversion) == {"plain", "signed+calibrated"}
    df = both[both.conversion == "plain"]
    assert set(df.timesteps) == {2, 32}
    lo, hi = df.sort_values("timesteps").itertuples()
    assert hi.spikes_per_sample > lo.spikes_per_sample > 0
    assert hi.snn_accuracy >= hi.ann_accuracy - 0.05  # rate coding converges to the ANN
    ann, snn, test_set, _ = avs._task("mlp@digits")  # cached: the same trained weights the cells used
    res = snn.run(test_set.x[:hi.samples], 32, backend="snntorch")
    assert res.accuracy(test_set.y[:hi.samples].numpy()) == hi.snn_accuracy
    assert cost_from_simresult(res, hw.get("loihi2"))["energy_j"] / res.batch == pytest.approx(hi.snn_loihi2_energy_j)
    w = trace(ann, (test_set.x[:1],))
    assert hw.cost(w, avs.GPU)["energy_j"] == hi.ann_gpu_energy_j and w.macs == hi.macs_per_inference
    # signed + calibrated: a network calibrated for the cell's T, with signed neurons
    cal = both[both.conversion == "signed+calibrated"].set_index("timesteps")
    net = avs._snn("mlp@digits", "signed+calibrated", 2)
    assert net.metadata["calibrated_T"] == 2 and all(p.signed for p in net.populations.values())
    res = net.run(test_set.x[:hi.samples], 2, backend="snntorch")
    assert res.accuracy(test_set.y[:hi.samples].numpy()) == cal.loc[2, "snn_accuracy"]
    assert cal.loc[2, "snn_accuracy"] >= df.set_index("timesteps").loc[2, "snn_accuracy"] - 0.02
    _figures_and_tables("ann_vs_snn", both)


@pytest.mark.lava
def test_ann_vs_snn_runs_lava_after_training_in_the_same_process(tmp_path):
    """torch's DataLoader picks a multiprocessing start method while training; lava-nc's import then
    fails unless the cell clears it first (studies.ann_vs_snn._lava_ready)."""
    pytest.importorskip("lava")
    pytest.importorskip("neurosim.convert")
    df = _run("ann_vs_snn", tmp_path, quick=True,
              only={"task": ["mlp@digits"], "backend": ["lava", "snntorch"], "precision": ["float"], "timesteps": ["4"],
                    "conversion": ["signed+calibrated"]})
    lava, ref = df.set_index("backend").loc["lava"], df.set_index("backend").loc["snntorch"]
    assert lava.spikes_per_sample == pytest.approx(ref.spikes_per_sample)  # same IR semantics
    assert lava.snn_accuracy == ref.snn_accuracy


def test_systolic_dataflows_cells_are_the_simulator(tmp_path):
    pytest.importorskip("hw.systolic.workload")
    from hw.systolic import simulate_model

    df = _run("systolic_dataflows", tmp_path, quick=True, only={"model": ["lenet5"], "array": ["16x16"]})
    assert sorted(df.dataflow) == ["is", "os", "ws"] and df.macs.nunique() == 1  # MACs do not depend on dataflow
    for r in df.itertuples():
        t = simulate_model("lenet5", array=(16, 16), dataflow=r.dataflow, batch=1).totals()
        assert (r.cycles, r.dram_reads, r.util_pct) == (t["cycles"], t["dram_reads"], t["util_pct"])
        assert 0 < r.util_pct <= 100
    _figures_and_tables("systolic_dataflows", df)


@pytest.mark.brian2
def test_ann_vs_snn_brian2_counts_the_same_spikes_as_snntorch(tmp_path):
    pytest.importorskip("brian2")
    pytest.importorskip("neurosim.backends.brian2")
    df = _run("ann_vs_snn", tmp_path, quick=True, only={"task": ["mlp@digits"], "backend": ["brian2", "snntorch"],
                                                        "timesteps": ["4"], "conversion": ["plain"]})
    b2, ref = df.set_index("backend").loc["brian2"], df.set_index("backend").loc["snntorch"]
    assert b2.spikes_per_sample == pytest.approx(ref.spikes_per_sample)
    assert b2.snn_accuracy == ref.snn_accuracy and b2.synops_per_sample == pytest.approx(ref.synops_per_sample)
