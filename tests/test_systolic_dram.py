"""hw.systolic.dram: SCALE-Sim 2.0.2's DRAM traces character for character, and `--dram`: USER-mode prefetch
latencies from the DRAM/HBM model."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from hw.systolic import read_config, read_topology
from hw.systolic.dram import (TRACE_FILES, layer_dram_traces, simulate_dram, simulate_layer_dram,
                              write_dram_traces)
from hw.systolic.simulator import simulate_layer
from neurosim.cli import main
from neurosim.errors import NeurosimError

G = Path(__file__).parent / "golden" / "scalesim"
D = G / "dram_traces"
CASES = [(c, i) for c in ("os_4x8_user3", "ws_8x4_user4", "is_4x4_user2") for i in (0, 1, 5, 6)]


def _layers():
    return read_topology(G / "topologies" / "tiny_conv.csv", "conv")


@pytest.mark.parametrize("cfg_name, layer", CASES)
def test_dram_traces_are_scalesims(cfg_name, layer, tmp_path):
    cfg = read_config(G / "configs" / f"{cfg_name}.cfg")
    paths = write_dram_traces(cfg, _layers()[layer], tmp_path)
    assert [p.name for p in paths] == list(TRACE_FILES)
    for p in paths:
        ref = gzip.open(D / f"{cfg_name}__tiny_conv" / f"layer{layer}" / (p.name + ".gz"), "rt").read()
        assert p.read_text() == ref, p.name


def test_dram_trace_rows_are_the_detailed_reports_dram_columns():
    cfg = read_config(G / "configs" / "os_4x8_user3.cfg")
    for lay in _layers():
        res, (ti, tf, to) = layer_dram_traces(cfg, lay)
        bw = cfg.bandwidth_words
        assert (ti.cycles[0], ti.cycles[-1], ti.rows.size) == (res.ifmap_dram_start, res.ifmap_dram_stop,
                                                                res.ifmap_dram_reads)
        assert (tf.cycles[0], tf.cycles[-1], tf.rows.size) == (res.filter_dram_start, res.filter_dram_stop,
                                                                res.filter_dram_reads)
        assert (to.cycles[0], to.cycles[-1], int((to.rows >= 0).sum())) == (
            res.ofmap_dram_start, res.ofmap_dram_stop, res.ofmap_dram_writes)
        assert ti.rows.shape[1] == tf.rows.shape[1] == to.rows.shape[1] == bw


def test_real_prefetch_rows_advance_where_scalesims_repeat():
    cfg = read_config(G / "configs" / "os_4x8_user3.cfg")
    lay = _layers()[1]     # C2: dozens of prefetches
    _, (s, _, _) = layer_dram_traces(cfg, lay, scalesim_rows=True)
    _, (r, _, _) = layer_dram_traces(cfg, lay, scalesim_rows=False)
    assert np.array_equal(s.cycles, r.cycles)
    later = s.group >= 2
    # SCALE-Sim's new_prefetch restarts at the same row: prefetches 2, 3, ... fetch the same words
    g2, g3 = s.rows[s.group == 2], s.rows[s.group == 3]
    assert np.array_equal(g2, g3)
    # the real stream moves through the operand: the words of consecutive prefetches differ
    assert not np.array_equal(r.rows[r.group == 2], r.rows[r.group == 3])
    assert later.sum() > 100
    # over the layer the real stream touches more distinct words than SCALE-Sim's trace
    assert np.unique(r.rows[r.rows >= 0]).size > np.unique(s.rows[s.rows >= 0]).size


def test_trace_dir_writes_dram_traces_beside_sram_traces(tmp_path):
    cfg = read_config(G / "configs" / "ws_8x4_user4.cfg")
    topo = tmp_path / "one.csv"
    lines = (G / "topologies" / "tiny_conv.csv").read_text().splitlines()
    topo.write_text("\n".join(lines[:2]) + "\n")
    assert main(["systolic", "-c", str(G / "configs" / "ws_8x4_user4.cfg"), "-t", str(topo),
                 "--trace-dir", str(tmp_path / "tr"), "--no-progress"]) == 0
    got = sorted(p.name for p in (tmp_path / "tr").rglob("*.csv"))
    assert got == sorted(list(TRACE_FILES) + ["IFMAP_SRAM_TRACE.csv", "FILTER_SRAM_TRACE.csv",
                                              "OFMAP_SRAM_TRACE.csv"])
    d = next((tmp_path / "tr").rglob("IFMAP_DRAM_TRACE.csv")).parent
    ref = gzip.open(D / "ws_8x4_user4__tiny_conv" / "layer0" / "IFMAP_DRAM_TRACE.csv.gz", "rt").read()
    assert (d / "IFMAP_DRAM_TRACE.csv").read_text() == ref
    assert cfg.user_bandwidth


def test_prefetch_land_hook_reproduces_scalesims_chain_and_delays():
    cfg = read_config(G / "configs" / "os_4x8_user3.cfg")
    lay = _layers()[1]
    base = simulate_layer(cfg, lay)
    _, (ti, tf, _) = layer_dram_traces(cfg, lay, scalesim_rows=False)
    nom = []
    for t in (ti, tf):
        n = int(t.group.max())
        nreq = int((t.group == 1).sum()) if n else 0
        nom.append(-1 + np.arange(1, n + 1) * (nreq + 1))
    same = simulate_layer(cfg, lay, prefetch_land=tuple(nom))
    assert (same.total_cycles, same.stall_cycles) == (base.total_cycles, base.stall_cycles)
    late = simulate_layer(cfg, lay, prefetch_land=(nom[0] + 50, nom[1] + 50))
    assert late.stall_cycles > base.stall_cycles and late.total_cycles > base.total_cycles
    assert late.ifmap_dram_reads == base.ifmap_dram_reads


def test_dram_model_in_the_loop_slower_memory_stalls_more():
    cfg = read_config(G / "configs" / "os_4x8_user3.cfg").with_(bandwidth_words=16)   # 16 B/cycle, 1 KiB SRAMs
    lay = _layers()[1]
    hbm = simulate_layer_dram(cfg, lay, "hbm2", clock_mhz=1000)
    ddr = simulate_layer_dram(cfg, lay, "ddr4_3200", clock_mhz=1000)
    fast_clock = simulate_layer_dram(cfg, lay, "ddr4_3200", clock_mhz=4000)
    # the DRAM adds latency (never fewer cycles than SCALE-Sim's fixed 1-cycle port), more for DDR4
    assert hbm.dram_cycles >= hbm.fixed_cycles
    assert ddr.dram_cycles > hbm.dram_cycles
    assert fast_clock.dram_cycles > ddr.dram_cycles      # the same ns of DRAM latency is more array cycles
    assert hbm.fixed_cycles == ddr.fixed_cycles == simulate_layer(cfg, lay).total_cycles
    assert ddr.mean_read_latency_cycles > 0 and 0 <= ddr.read_row_hit_rate <= 1
    assert ddr.requests == ddr.dram.totals["requests"]


def test_dram_needs_user_mode_and_a_preset():
    cfg = read_config(G / "configs" / "scale.cfg")
    with pytest.raises(NeurosimError, match="USER bandwidth mode"):
        simulate_dram(cfg, _layers()[:1], "hbm2")
    with pytest.raises(NeurosimError, match="unknown memory preset"):
        simulate_dram(read_config(G / "configs" / "os_4x8_user3.cfg"), _layers()[:1], "hbm9")


def test_cli_dram(capsys, tmp_path):
    base = ["systolic", "-c", str(G / "configs" / "os_4x8_user3.cfg"), "-t", str(G / "topologies" / "tiny_conv.csv"),
            "--no-progress"]
    assert main(base + ["--dram", "hbm2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["dram"]["memory"] == "hbm2" and len(d["dram"]["layers"]) == 7
    assert d["dram"]["totals"]["fixed_cycles"] == d["totals"]["cycles"]
    assert d["dram"]["totals"]["dram_cycles"] >= d["totals"]["cycles"]
    assert main(base + ["--dram", "ddr4_3200", "--clock-mhz", "500"]) == 0
    assert "with ddr4_3200:" in capsys.readouterr().out
    assert main(base + ["--clock-mhz", "500"]) == 2
    assert "--clock-mhz applies only with --dram" in capsys.readouterr().err
    assert main(base + ["--dram", "hbm9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown memory preset" in err and "\n" not in err


def test_dram_traces_that_do_not_fit_are_refused_before_building(monkeypatch, tmp_path):
    import hw.systolic.simulator as sim

    monkeypatch.setattr(sim, "_memory_limit", lambda: 1000)
    cfg = read_config(G / "configs" / "os_4x8_user3.cfg")
    with pytest.raises(NeurosimError, match="DRAM traffic of .* words needs about"):
        write_dram_traces(cfg, _layers()[1], tmp_path / "x")
    assert not (tmp_path / "x").exists()
