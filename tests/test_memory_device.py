"""Catalog devices name their memory preset (hw.memory.device): the preset exists, the catalog's bandwidth is a
pin rate the preset's standard allows, and the simulated memory's peak is the catalog's figure."""
from __future__ import annotations

import math

import pytest

import hw
from hw.memory import get, names
from hw.memory.device import PIN_RATE_GBPS, PIN_RATE_TOLERANCE, at_pin_rate, check, device_memory, pin_rate_gbps
from neurosim.errors import NeurosimError

ROOFLINE = [n for n in hw.names() if hw.get(n).family in ("gpu", "tpu", "cpu")]


def test_every_gpu_tpu_cpu_names_an_existing_preset_with_sources():
    for n in ROOFLINE:
        s = hw.get(n)
        assert s.memory_preset in names(), n
        assert isinstance(s.memory_stacks, int) and s.memory_stacks >= 1, n
        assert len(s.source("memory_preset")) > 20 and len(s.source("memory_stacks")) > 20, n


@pytest.mark.parametrize("device", ROOFLINE)
def test_catalog_bandwidth_is_a_pin_rate_the_standard_allows(device):
    c = check(device)
    lo, hi, _ = PIN_RATE_GBPS[c["preset"]]
    # stated tolerance: the implied per-pin rate within the standard's range, up to 5 % above its top bin
    assert c["ok"], c["why"]
    assert lo <= c["pin_rate_gbps"] <= hi * (1 + PIN_RATE_TOLERANCE)
    assert c["peak_gbs"] == pytest.approx(hw.get(device).mem_bw_gb_s, rel=1e-12)


def test_measured_ratios_to_the_presets_own_rate():
    # catalog bandwidth / (stacks x the preset at its JEDEC rate), as measured when the catalog got its presets
    expect = {"v100": 0.879, "a100_40gb": 1.215, "a100_80gb": 0.996, "h100_sxm": 0.818, "h200": 0.977,
              "mi300x": 0.809, "tpu_v2": 0.684, "tpu_v3": 0.879, "tpu_v4": 1.172, "tpu_v5e": 1.0, "tpu_v5p": 1.125,
              "xeon_8380": 1.008}
    assert {d: round(check(d)["ratio"], 3) for d in expect} == expect


def test_a_wrong_preset_is_named():
    h100 = hw.get("h100_sxm")
    from dataclasses import replace

    wrong = replace(h100, memory_preset="hbm2", memory_stacks=5)    # HBM2 cannot carry 3.35 TB/s on 5 stacks
    c = check(wrong)
    assert not c["ok"] and "h100_sxm" in c["why"] and "Gb/s per pin" in c["why"]
    with pytest.raises(NeurosimError, match="names no memory preset"):
        device_memory(replace(h100, memory_preset=None))


def test_reclocking_keeps_core_timings_in_ns():
    base = get("hbm2")
    fast = at_pin_rate(base, 2.4)
    assert pin_rate_gbps(fast) == pytest.approx(2.4)
    for k in ("trcd", "trp", "tras", "trfc", "trefi", "cl"):
        ns0, ns1 = getattr(base, k) * base.tck_ns, getattr(fast, k) * fast.tck_ns
        assert ns0 <= ns1 < ns0 + fast.tck_ns, k        # rounded up to the faster clock
    assert (fast.tccd_s, fast.tccd_l, fast.burst_cycles) == (base.tccd_s, base.tccd_l, base.burst_cycles)
    m = device_memory("a100_40gb")
    assert m.stacks == 5 and m.preset == "hbm2" and math.isclose(m.pin_rate_gbps, 2.43, rel_tol=1e-3)
