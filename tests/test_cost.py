"""Cost models on every catalog device, their invariants, and the published footprints they reproduce."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import hw
from hw import carbon, training
from hw.neuromorphic import cost_from_activity, mean_mesh_hops
from hw.workload import trace
from neurosim.errors import NeurosimError

GOLDEN = json.loads((Path(hw.__file__).parent / "data" / "footprints.json").read_text())
ROOFLINE = [n for n in hw.names() if hw.get(n).family in ("gpu", "tpu", "cpu")]


class _ConvAttn(nn.Module):
    """Fallback when the zoo is not importable: conv, linear and fused attention in one small model."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.proj = nn.Linear(8, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        h = torch.relu(self.conv(x)).flatten(2).transpose(1, 2)  # [B, 64, 8]
        q = self.proj(h).unsqueeze(1)
        a = nn.functional.scaled_dot_product_attention(q, q, q).squeeze(1)
        return self.head(a.mean(1))


@pytest.fixture(scope="module")
def workloads():
    """Real traced workloads: zoo models (a CNN and a transformer) when the zoo is available, else our own."""
    from hw.workload import profile

    # no fallback: a profiler error here is a regression and must fail the cost tests, not hide
    return {"lenet5": profile("lenet5", batch=4), "gpt_tiny": profile("gpt_tiny", batch=2, seq=16),
            "conv_attn": trace(_ConvAttn(), (torch.randn(4, 1, 8, 8),), name="conv_attn")}


@pytest.mark.parametrize("device", hw.names())
def test_every_device_costs_a_real_workload(device, workloads):
    spec = hw.get(device)
    for name, w in workloads.items():
        r = hw.cost(w, device)
        t = r.totals
        assert r.device == device and r.family == spec.family and r.model == name
        df = r.to_dataframe()
        assert len(df) == len(r.rows) > 0
        json.loads(r.to_json())  # NaN -> null, numpy -> python
        assert t["latency_s"] > 0 and math.isfinite(t["latency_s"])
        if math.isnan(t["energy_j"]):  # only where nothing about power is published, and then it says so
            assert any("energy is NaN" in n for n in r.notes), r.notes
        else:
            assert t["energy_j"] > 0
            assert t["carbon_kg"] == pytest.approx(t["energy_j"] / 3.6e6 * carbon.DEFAULT_PUE * 0.429)
        if spec.family != "neuromorphic":
            assert len(df) == len(w.ops)
            assert (df["latency_s"] >= df["bound_s"] * (1 - 1e-12)).all()  # never faster than the roofline
            assert t["latency_s"] >= t["bound_s"] > 0
            assert t["flops"] == w.flops
        else:
            assert t["chips"] >= 1 and t["synops"] > 0


def test_roofline_bound_and_knobs(workloads):
    w = next(iter(workloads.values()))
    base = hw.cost(w, "a100_80gb")
    faster = hw.cost(w, "a100_80gb", compute_efficiency=1.0, memory_efficiency=1.0, launch_overhead_s=0.0)
    # at 100% efficiency and no overhead the latency IS the roofline bound
    assert faster["latency_s"] == pytest.approx(faster["bound_s"])
    assert base["latency_s"] > faster["latency_s"] and base["bound_s"] == faster["bound_s"]
    for bad in ({"compute_efficiency": 0}, {"memory_efficiency": 1.5}, {"launch_overhead_s": -1}):
        with pytest.raises(NeurosimError):
            hw.cost(w, "a100_80gb", **bad)
    with pytest.raises(NeurosimError, match="unexpected keyword"):
        hw.cost(w, "a100_80gb", firing_rate=0.1)


def _meta_linear(i, o):
    with torch.device("meta"):
        return nn.Linear(i, o, bias=False)


def test_big_gemm_is_compute_bound_and_scales_with_peak():
    """A 4096^3 bf16 GEMM: compute-bound on every GPU, time = 2 M K N / (peak x efficiency)."""
    w = trace(_meta_linear(4096, 4096), (torch.empty(4096, 4096, device="meta"),), dtype="bf16")
    for d in ("a100_80gb", "h100_sxm", "mi300x"):
        r = hw.cost(w, d, compute_efficiency=0.7)
        op = r.rows[0]
        assert op["limit"] == "compute"
        peak = hw.get(d).peak_flops("bf16")
        assert op["compute_s"] == pytest.approx(2 * 4096**3 / (peak * 0.7))
        assert op["latency_s"] == pytest.approx(op["compute_s"] + 5e-6)


def test_structured_sparsity_doubles_a100_tensor_peak():
    """The seed's claim, computed: 2:4 sparsity doubles A100's tensor peak, so a compute-bound GEMM's
    compute time halves (its memory traffic is unchanged in this model)."""
    a100 = hw.get("a100_80gb")
    for p in ("tf32", "fp16", "bf16", "int8"):
        assert a100.peak_flops(p, sparse=True) == 2 * a100.peak_flops(p)
    w = trace(_meta_linear(4096, 4096), (torch.empty(4096, 4096, device="meta"),), dtype="fp16")
    dense, sparse = hw.cost(w, "a100_80gb"), hw.cost(w, "a100_80gb", sparse=True)
    assert sparse.rows[0]["compute_s"] == pytest.approx(dense.rows[0]["compute_s"] / 2)
    assert sparse["bound_s"] < dense["bound_s"]
    with pytest.raises(NeurosimError, match="no 2:4 sparse peak"):
        hw.cost(w, "v100", sparse=True)


def test_int8_weights_use_4x_less_memory_than_fp32():
    """The seed's claim, computed on a traced model and in the cost report."""
    m = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10))
    x = (torch.randn(2, 256),)
    w32, w8 = trace(m, x), trace(m, x, dtype="int8")
    assert w32.param_bytes == 4 * w8.param_bytes
    r32, r8 = hw.cost(w32, "h100_sxm"), hw.cost(w32, "h100_sxm", precision="int8")
    assert r32["weight_bytes"] == 4 * r8["weight_bytes"]


def test_precision_fallbacks_are_noted(workloads):
    w = next(iter(workloads.values()))
    r = hw.cost(w, "v100", precision="bf16")
    assert r["compute_precision"] == "fp16" and any("no bf16 peak" in n for n in r.notes)
    r = hw.cost(w, "tpu_v4")  # fp32 workload: XLA runs it as one bf16 pass
    assert r["compute_precision"] == "bf16" and any("XLA" in n for n in r.notes)
    r = hw.cost(w, "a100_80gb", precision="fp8")
    assert r["compute_precision"] == "fp16"
    with pytest.raises(NeurosimError, match="valid"):
        hw.cost(w, "a100_80gb", precision="fp4")


def _os_cycles(m, k, n, rows, cols):
    """An analytic output-stationary systolic model: per fold of rows x cols outputs, stream K plus fill/drain."""
    return math.ceil(m / rows) * math.ceil(n / cols) * (k + rows + cols - 2)


def test_tpu_systolic_option():
    w = trace(nn.Linear(1024, 1024, bias=False), (torch.randn(512, 1024),), dtype="bf16")
    roof = hw.cost(w, "tpu_v4")
    sys = hw.cost(w, "tpu_v4", systolic=_os_cycles)
    t = hw.get("tpu_v4")
    expect = _os_cycles(512, 1024, 1024, 128, 128) / (t.mxus * t.clock_mhz * 1e6)
    assert sys.rows[0]["compute_s"] == pytest.approx(expect)
    assert sys["latency_s"] >= sys["bound_s"] and sys.assumptions["systolic"] == "_os_cycles"
    assert roof.assumptions["systolic"] is None
    with pytest.raises(NeurosimError, match="systolic"):
        hw.cost(w, "tpu_v4", systolic="yes")


@pytest.mark.slow  # ~8 s alone, nearly all of it loading the simulator's numba kernels (shared with its own tests)
def test_tpu_with_the_systolic_simulator():
    pytest.importorskip("hw.systolic", reason="the systolic simulator is another area's; absent in this checkout")
    from hw.tpu import simulator_cycles

    w = trace(nn.Linear(256, 256, bias=False), (torch.randn(256, 256),), dtype="bf16")
    r = hw.cost(w, "tpu_v4", systolic=True)
    t = hw.get("tpu_v4")
    cyc = simulator_cycles()(256, 256, 256, 128, 128)
    assert cyc >= 2 * 2 * 256  # 2x2 folds of 128x128 weights, each streaming 256 rows
    assert r.rows[0]["compute_s"] == pytest.approx(cyc / (t.mxus * t.clock_mhz * 1e6))
    assert r["latency_s"] >= r["bound_s"]


def test_power_model_and_op_energy():
    from hw.energy import power_model

    v4 = power_model(hw.get("tpu_v4"))
    assert (v4.idle_w, v4.busy_w) == (90, 170)  # Google's measured min and mean
    h100 = power_model(hw.get("h100_sxm"))
    assert h100.busy_w == 700 and h100.idle_w == pytest.approx(0.3 * 700)
    assert power_model(hw.get("tpu_v5e")) is None and power_model(hw.get("tpu_v5e"), power_w=200).busy_w == 200
    w = trace(nn.Linear(64, 64, bias=False), (torch.randn(8, 64),))
    r = hw.cost(w, "h100_sxm")
    row = r.rows[0]
    assert row["energy_ops_45nm_j"] == pytest.approx(
        (8 * 64 * 64 * 4.6 + row["bytes"] * 1950 / 8) * 1e-12)
    assert r["energy_j"] == pytest.approx(sum(x["power_w"] * x["latency_s"] for x in r.rows))


# ---- neuromorphic ------------------------------------------------------------------------------------

def test_activity_model_is_linear_in_events():
    layers = [{"name": "fc", "neurons": 100, "synapses": 10_000, "synops": 5_000, "spikes": 40}]
    a = cost_from_activity("loihi", layers, timesteps=10)
    b = cost_from_activity("loihi", [{**layers[0], "synops": 15_000}], timesteps=10)
    # dynamic energy grows by exactly the extra synops x 23.6 pJ
    assert b["energy_dynamic_j"] - a["energy_dynamic_j"] == pytest.approx(10_000 * 23.6e-12)
    hops = mean_mesh_hops(32)
    expect = (5_000 * 23.6 + 100 * 10 * 81 + 40 * (1.7 + hops * 3.5)) * 1e-12
    assert a["energy_dynamic_j"] == pytest.approx(expect)
    assert a["energy_static_j"] == pytest.approx(1 * 0.104 * a["latency_s"])
    assert mean_mesh_hops(1) == 0 and mean_mesh_hops(4) == pytest.approx(1.0)  # 2x2 mesh: 2(4-1)/(3*2)
    with pytest.raises(NeurosimError, match="unknown neuromorphic option"):
        cost_from_activity("loihi", layers, timesteps=10, e_synapse_pj=1)
    with pytest.raises(NeurosimError, match=">= 0"):
        cost_from_activity("loihi", [{**layers[0], "spikes": -1}], timesteps=10)


def test_real_time_chips_and_capacity():
    layers = [{"neurons": 1000, "synapses": 1_000_000, "synops": 2e6, "spikes": 3000}]
    tn = cost_from_activity("truenorth", layers, timesteps=100, batch=2)
    assert tn["latency_s"] == pytest.approx(2 * 100 * 1e-3)  # 1 ms tick, samples one after another
    assert tn["cores"] == math.ceil(1e6 / 65536) and tn["energy_static_j"] == 0  # 26 pJ already includes static
    sp = cost_from_activity("spinnaker", layers, timesteps=100)
    assert sp["energy_j"] == pytest.approx(1.0 * 0.1)  # 1 W chip x 100 ms
    big = cost_from_activity("loihi", [{"neurons": 300_000, "synapses": 0, "synops": 0, "spikes": 0}], timesteps=1)
    assert big["chips"] == math.ceil(math.ceil(300_000 / 1024) / 128)
    s2 = cost_from_activity("spinnaker2", layers, timesteps=10)
    assert math.isnan(s2["energy_j"]) and any("energy is NaN" in n for n in s2.notes)
    s2e = cost_from_activity("spinnaker2", layers, timesteps=10, e_synop_pj=10.0)
    assert s2e["energy_j"] == pytest.approx(2e6 * 10e-12)


def test_cost_from_a_simresult():
    """Measured activity from the spiking simulator's result type plugs in unchanged."""
    import numpy as np

    from hw.neuromorphic import cost_from_simresult
    from neurosim.ir import SimResult

    res = SimResult(output=np.zeros((4, 10)), predictions=np.zeros(4), timesteps=20,
                    spike_counts={"lif1": 4 * 500.0, "lif2": 4 * 30.0}, neurons={"lif1": 100, "lif2": 10},
                    firing_rates={"lif1": 0.25, "lif2": 0.15}, synops={"fc1": 50_000.0, "fc2": 5_000.0}, batch=4)
    res.synapse_targets = {"fc1": "lif1", "fc2": "lif2"}  # as SpikingNetwork.run fills it from the graph
    r = cost_from_simresult(res, hw.get("loihi"), synapses={"fc1": 78_400, "fc2": 1_000})
    assert r["synops"] == 4 * 55_000 and r["spikes"] == 4 * 530 and r["timesteps"] == 20
    assert [row["synops"] for row in r.rows] == [50_000, 5_000] and r.rows[0]["synapses"] == 78_400
    hops = mean_mesh_hops(32)
    per_sample = (55_000 * 23.6 + 110 * 20 * 81 + 530 * (1.7 + hops * 3.5)) * 1e-12
    assert r["energy_dynamic_j"] == pytest.approx(4 * per_sample)
    # unpaired synaptic nodes (e.g. a pooling node too) keep the totals exact
    res.synops["pool"] = 1_000.0
    r2 = cost_from_simresult(res, hw.get("loihi"))
    assert r2["synops"] == 4 * 56_000 and len(r2.rows) == 3


def test_synops_go_to_the_population_they_drive():
    """Pairing by node, not by position: each population is charged the synops of the node that feeds
    it, and the readout layer's synops stay a row of their own."""
    import numpy as np

    from hw.neuromorphic import activity_from_simresult
    from neurosim.ir import Linear, Neurons, Readout, SpikingNetwork

    rng = np.random.default_rng(0)
    lin = lambda i, o, src: Linear(inputs=(src,), weight=rng.normal(size=(o, i)).astype(np.float32))
    # three synaptic nodes, two populations: position cannot pair them, the graph can
    nodes = {"fc_a": lin(6, 5, "input"), "lif_a": Neurons(inputs=("fc_a",), shape=(5,), threshold=np.ones(5)),
             "fc_b": lin(5, 4, "lif_a"), "lif_b": Neurons(inputs=("fc_b",), shape=(4,), threshold=np.ones(4)),
             "out": lin(4, 3, "lif_b")}
    net = SpikingNetwork(input_shape=(6,), nodes=nodes, readout=Readout("out"))
    res = net.run(rng.random((8, 6)).astype(np.float32), 10)
    assert res.synapse_targets == {"fc_a": "lif_a", "fc_b": "lif_b", "out": None}
    layers, _, _ = activity_from_simresult(res)
    by = {l["name"]: l for l in layers}
    assert by["lif_a"]["synops"] == res.synops["fc_a"] and by["lif_b"]["synops"] == res.synops["fc_b"]
    assert by["out"]["kind"] == "synapses" and by["out"]["synops"] == res.synops["out"]
    assert sum(l["synops"] for l in layers) == pytest.approx(res.total_synops)


def test_ann_firing_rate_assumption(workloads):
    w = next(iter(workloads.values()))
    lo = hw.cost(w, "loihi", firing_rate=0.05, timesteps=16)
    hi = hw.cost(w, "loihi", firing_rate=0.2, timesteps=16)
    assert hi["synops"] == pytest.approx(4 * lo["synops"]) and hi["energy_j"] > lo["energy_j"]
    mapped = [o for o in w.ops if o.kind in ("conv", "linear") and o.param_bytes]
    assert lo["synops"] == pytest.approx(sum(o.macs for o in mapped) * 0.05 * 16)
    assert hw.cost(w, "loihi", firing_rate=0.0)["synops"] == 0
    with pytest.raises(NeurosimError, match="firing_rate"):
        hw.cost(w, "loihi", firing_rate=1.5)
    l2 = hw.cost(w, "loihi2")
    assert any("stand-in" in n for n in l2.notes)


# ---- training and the published footprints -------------------------------------------------------------

def test_gpt3_training_flops_and_weights():
    g = GOLDEN["gpt3"]
    flops = training.flops_6nd(g["params"], g["tokens"])
    assert flops == pytest.approx(g["published_training_flops"], rel=g["tolerance"])  # 3.15e23 vs 3.14e23
    from hw.energy import weight_bytes

    assert weight_bytes(g["params"], "fp16") / 1e9 == pytest.approx(g["published_fp16_weights_gb"], rel=1e-9)
    assert weight_bytes(g["params"], "int8") * 4 == weight_bytes(g["params"], "fp32")


def test_traced_training_flops_is_3x_forward():
    m = nn.Sequential(nn.Embedding(100, 32), nn.Linear(32, 100))
    w = trace(m, (torch.zeros(2, 8, dtype=torch.long),))
    assert training.flops_traced(w, tokens=1600) == pytest.approx(3 * w.flops * 100)  # 16 tokens per trace
    r = training.train("a100_80gb", workload=w, tokens=1600)
    assert r["flops_method"] == "3 x traced forward" and r.mode == "training"


def test_training_time_scales_with_devices():
    one = training.train("h100_sxm", params=1e9, tokens=1e10)
    many = training.train("h100_sxm", params=1e9, tokens=1e10, devices=64)
    assert one["time_s"] == pytest.approx(6e19 / (989.4e12 * 0.4))  # defaults: bf16, MFU 0.4
    assert many["time_s"] == pytest.approx(one["time_s"] / (64 * 0.9))  # 90% data-parallel efficiency
    assert many["energy_j"] == pytest.approx(one["energy_j"] / 0.9)  # same work, 10% more device-seconds
    with pytest.raises(NeurosimError):
        training.train("loihi", params=1e9, tokens=1e9)
    with pytest.raises(NeurosimError):
        training.train("h100_sxm", params=1e9)


@pytest.mark.parametrize("row", GOLDEN["patterson2021_table4"]["rows"], ids=lambda r: r["model"])
def test_patterson2021_table4(row):
    """MWh and tCO2e from chips, days, watts per chip, PUE and grid intensity (Patterson Sec. 2.5)."""
    tol = GOLDEN["patterson2021_table4"]["tolerance"]
    pub = row["published"]
    for kind in ("gross", "net"):
        fp = carbon.footprint(chips=row["chips"], hours=row["days"] * 24, watts_per_chip=row["watts_per_chip"],
                              pue=row["pue"], kg_per_kwh=row[f"{kind}_kg_per_kwh"])
        assert fp["mwh"] == pytest.approx(pub["mwh"], rel=tol)
        assert fp["t_co2e"] == pytest.approx(pub[f"{kind}_tco2e"], rel=tol)
    # Total computation = chips x measured TFLOPS per chip x time
    assert row["chips"] * row["measured_tflops_per_chip"] * 1e12 * row["days"] * 86400 == pytest.approx(pub["flops"], rel=tol)


@pytest.mark.parametrize("row", GOLDEN["patterson2021_table4"]["rows"], ids=lambda r: r["model"])
def test_patterson2021_through_the_training_model(row):
    """The same rows end to end through hw.training: published FLOPs on N catalog chips at the measured
    utilisation (measured TFLOPS / catalog peak) give the published days, MWh and net tCO2e."""
    tol = GOLDEN["patterson2021_table4"]["tolerance"]
    pub = row["published"]
    spec = hw.get(row["processor"])
    precision = "fp16" if spec.family == "gpu" else "bf16"
    r = training.train(row["processor"], flops=pub["flops"], devices=row["chips"], precision=precision,
                       mfu=row["measured_tflops_per_chip"] / spec.peak_tflops[precision], scaling_efficiency=1.0,
                       power_w=row["watts_per_chip"], pue=row["pue"], grid_kg_per_kwh=row["net_kg_per_kwh"])
    assert r["time_days"] == pytest.approx(row["days"], rel=tol)
    assert r["facility_energy_kwh"] / 1000 == pytest.approx(pub["mwh"], rel=tol)
    assert r["carbon_t"] == pytest.approx(pub["net_tco2e"], rel=tol)


@pytest.mark.parametrize("row", GOLDEN["patterson2021_table4"]["rows"], ids=lambda r: r["model"])
def test_footprint_command_reproduces_patterson2021_table4(row, capsys):
    """`neurosim footprint` from the paper's own description of each run (chips, days, measured W per
    chip, PUE, net grid intensity): MWh within 1 % and net tCO2e within 2 % of Table 4."""
    from neurosim.cli import main

    pub = row["published"]
    argv = ["footprint", "--device", row["processor"], "--count", str(row["chips"]), "--days", str(row["days"]),
            "--watts", str(row["watts_per_chip"]), "--pue", str(row["pue"]),
            "--grid-kg-per-kwh", str(row["net_kg_per_kwh"]), "--json"]
    assert main(argv) == 0
    t = json.loads(capsys.readouterr().out)["totals"]
    assert t["energy_mwh"] == pytest.approx(pub["mwh"], rel=0.01)
    assert t["co2e_t"] == pytest.approx(pub["net_tco2e"], rel=0.02) and t["carbon_t"] == t["co2e_t"]
    assert t["it_energy_mwh"] * row["pue"] == pytest.approx(t["energy_mwh"])


def test_footprint_defaults_and_bad_input(capsys):
    from neurosim.cli import main

    r = training.footprint("v100", count=8, hours=10)  # catalog power (measured 325 W), PUE 1.58, US grid
    assert r["energy_mwh"] == pytest.approx(8 * 10 * 325 * 1.58 / 1e6)
    assert r["co2e_t"] == pytest.approx(r["energy_mwh"] * 0.429)
    assert training.footprint("v100", count=8, hours=240)["energy_mwh"] == pytest.approx(24 * r["energy_mwh"])
    bad = [["--count", "0", "--days", "1"], ["--count", "2.5", "--days", "1"], ["--count", "4", "--days", "nan"],
           ["--count", "4", "--hours", "inf"], ["--count", "4", "--days", "1", "--hours", "2"], ["--count", "4"],
           ["--count", "4", "--days", "1", "--pue", "0.9"], ["--count", "4", "--days", "1", "--watts", "-3"],
           ["--count", "4", "--days", "1", "--grid-kg-per-kwh", "nan"],
           ["--count", "4", "--days", "1", "--region", "atlantis"]]
    for extra in bad:
        capsys.readouterr()
        try:
            rc = main(["footprint", "--device", "v100", *extra])
        except SystemExit as e:  # argparse's own usage errors
            rc = e.code
        assert rc == 2, extra
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (extra, err)
    assert main(["footprint", "--device", "loihi", "--count", "1", "--days", "1"]) == 2
    assert "--watts" in capsys.readouterr().err


def test_gpt3_from_6nd_on_catalog_v100():
    """GPT-3 from first principles: 6ND FLOPs on 10,000 catalog V100s at the measured 24.6 TFLOPS, OpenAI's
    330 W, PUE 1.1 and the US grid -> Patterson's 14.8 days, 1,287 MWh and 552 tCO2e."""
    g = GOLDEN["gpt3"]
    r = training.train("v100", params=g["params"], tokens=g["tokens"], devices=10_000, precision="fp16",
                       mfu=24.6 / 125, scaling_efficiency=1.0, power_w=330, pue=1.10, region="us_average")
    assert r["time_days"] == pytest.approx(14.8, rel=0.02)
    assert r["facility_energy_kwh"] / 1000 == pytest.approx(1287, rel=0.02)
    assert r["carbon_t"] == pytest.approx(552.1, rel=0.02)


@pytest.mark.parametrize("row", GOLDEN["strubell2019_table3"]["rows"], ids=lambda r: r["model"])
def test_strubell2019_table3(row):
    """kWh x PUE = 1.58 x hours x watts / 1000 and lbs CO2e = 0.954 x that (Strubell et al. Eq. 1-2)."""
    g = GOLDEN["strubell2019_table3"]
    fp = carbon.footprint(chips=1, hours=row["hours"], watts_per_chip=row["power_w"], pue=g["pue"],
                          kg_per_kwh=g["lbs_per_kwh"] / carbon.LB_PER_KG)
    assert fp["kwh"] == pytest.approx(row["published"]["kwh_pue"], rel=g["tolerance"])
    assert fp["kg_co2e"] * carbon.LB_PER_KG == pytest.approx(row["published"]["lbs_co2e"], rel=g["tolerance"])


# ---- CLI -------------------------------------------------------------------------------------------

def test_cli_hw(capsys):
    from neurosim.cli import main

    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in hw.names())
    assert main(["hw", "show", "a100_80gb", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["peak_tflops"]["bf16"] == 312 and "A100 Tensor Core GPU datasheet" in d["sources"]["peak_tflops"]
    assert main(["hw", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown device 'nope'" in err


def test_cli_cost(capsys, workloads):
    from neurosim.cli import main

    assert main(["cost", "mlp", "--hw", "a100_80gb,nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown device 'nope'" in err
    if "lenet5" not in workloads:
        pytest.skip("zoo models not importable in this checkout")
    assert main(["cost", "lenet5", "--hw", "a100_80gb,tpu_v4,loihi", "--batch", "4", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["device"] for r in d["reports"]] == ["a100_80gb", "tpu_v4", "loihi"]
    assert d["reports"][0]["totals"]["latency_s"] == pytest.approx(workloads_latency(workloads["lenet5"]))
    assert main(["cost", "lenet5", "--hw", "h100_sxm", "--train", "--tokens", "6e7", "--devices", "8"]) == 0
    assert "3 x traced forward" in capsys.readouterr().out
    assert main(["cost", "lenet5", "--hw", "h100_sxm", "--train"]) == 2
    assert main(["cost", "nonexistent_model", "--hw", "h100_sxm"]) == 2


def workloads_latency(w):
    return hw.cost(w, "a100_80gb")["latency_s"]
