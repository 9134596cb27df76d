"""Cost models with memory="simulated" (hw.memory.opstream): each op's stream through the DRAM model, the
sampled approximation against the full stream, the roofline bound never beaten, the CLI."""
from __future__ import annotations

import json

import pytest

import hw
from hw.memory.device import device_memory
from hw.memory.opstream import interleaved, op_memory_s, stream_cycles
from hw.workload import profile
from neurosim.cli import main
from neurosim.errors import NeurosimError


@pytest.mark.parametrize("device, n", [("a100_80gb", (30000, 90000, 60000)), ("xeon_8380", (10000, 30000, 20000))])
def test_sampled_stream_within_5_percent_of_the_full_stream(device, n):
    cfg = interleaved(device_memory(device).config)
    full = stream_cycles(cfg, *n, exact=True)
    sampled = stream_cycles(cfg, *n)
    assert sum(n) > 2 * max(8192, 4096 * cfg.channels)      # really sampled
    assert abs(sampled - full) / full < 0.05


def test_simulated_memory_is_never_faster_than_its_peak():
    m = device_memory("h100_sxm")
    for p, r, w in ((1e6, 0, 0), (0, 4e6, 1e6), (2e5, 3e5, 1e5)):
        t = op_memory_s(m, p, r, w)
        assert t >= (p + r + w) / (m.peak_bandwidth_gbs * 1e9)
    with pytest.raises(NeurosimError, match="non-negative"):
        op_memory_s(m, -1, 0, 0)


def test_cost_memory_simulated_keeps_the_bound_and_reports_the_roofline():
    w = profile("resnet_tiny", batch=4)
    roof = hw.cost(w, "a100_80gb")
    sim = hw.cost(w, "a100_80gb", memory="simulated")
    assert sim.assumptions["memory"] == "simulated" and sim.assumptions["memory_preset"] == "hbm2e"
    assert len(sim.rows) == len(roof.rows)
    for a, b in zip(roof.rows, sim.rows):
        assert b["latency_s"] >= b["bound_s"] * (1 - 1e-12)
        assert b["memory_roofline_s"] == pytest.approx(a["memory_s"])
        assert b["memory_s"] >= b["bytes"] / (2039e9) * (1 - 1e-9)
    assert sim.totals["bound_s"] == pytest.approx(roof.totals["bound_s"])
    t = hw.cost(w, "tpu_v4", memory="simulated")
    assert t.assumptions["memory_stacks"] == 4
    with pytest.raises(NeurosimError, match="memory_efficiency applies"):
        hw.cost(w, "a100_80gb", memory="simulated", memory_efficiency=0.9)
    with pytest.raises(NeurosimError, match="'roofline' or 'simulated'"):
        hw.cost(w, "a100_80gb", memory="dram")


def test_cli_memory_simulated(capsys):
    assert main(["cost", "mlp", "--hw", "a100_80gb,xeon_8380", "--memory", "simulated", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    reps = d["reports"] if "reports" in d else d
    text = json.dumps(reps)
    assert "memory_roofline_s" in text and "hbm2e" in text and "ddr4_3200" in text
    assert main(["cost", "mlp", "--hw", "a100_80gb", "--memory", "simulated", "--memory-efficiency", "0.9"]) == 2
    assert "--memory-efficiency applies" in capsys.readouterr().err
    assert main(["cost", "mlp", "--hw", "loihi", "--memory", "simulated"]) == 2
    assert "--memory" in capsys.readouterr().err
