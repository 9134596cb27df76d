"""hw.systolic: SCALE-Sim 2.0.2's reports bit for bit, the numba kernels against the numpy reference, bad input.

Golden files: tests/golden/scalesim (see its README for how each was made).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from hw.systolic import (EnergyModel, Layer, SystolicConfig, read_config, read_topology, simulate,
                         simulate_layer)
from hw.systolic import kernels as K
from hw.systolic import reference as ref
from hw.systolic.traces import demand_matrix
from neurosim.cli import main

G = Path(__file__).parent / "golden" / "scalesim"
REFERENCE = {  # the six cases of /work/shared/scalesim
    "alexnet_os32": ("scale.cfg", "alexnet.csv", "conv"),
    "alexnet_ws_google": ("google.cfg", "alexnet.csv", "conv"),
    "alexnet_is32": ("is32.cfg", "alexnet.csv", "conv"),
    "transformer_os32": ("scale.cfg", "transformer_partial.csv", "gemm"),
    "alexnet_os32_user10": ("os32_user10.cfg", "alexnet.csv", "conv"),
    "alexnet_eyeriss": ("eyeriss.cfg", "alexnet.csv", "conv"),
    "resnet50_os32": ("scale.cfg", "resnet50.csv", "conv"),  # ours, made with the benchmark (54 layers)
}
REPORTS = ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv")


def _assert_same_reports(res, folder: Path):
    """Every line identical; should a float ever differ in its last digit, say so with the 1e-9 tolerance."""
    for fname, lines in res.report_lines().items():
        want = (folder / fname).read_text().splitlines()
        assert len(lines) == len(want), fname
        for got_line, want_line in zip(lines, want):
            if got_line == want_line:
                continue
            got, exp = got_line.rstrip(",").split(", "), want_line.rstrip(",").split(", ")
            assert len(got) == len(exp), (fname, got_line, want_line)
            for g, e in zip(got, exp):
                if g != e:
                    assert "." in e and float(g) == pytest.approx(float(e), rel=1e-9), (fname, got_line, want_line)


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_reference_reports_identical(case):
    cfg, topo, kind = REFERENCE[case]
    res = simulate(read_config(G / "configs" / cfg), read_topology(G / "topologies" / topo, kind))
    _assert_same_reports(res, G / "reference" / case)


GENERATED = sorted(p.name for p in (G / "reports").iterdir())


@pytest.mark.parametrize("case", GENERATED)
def test_generated_golden_reports_identical(case):
    cfg, topo = case.split("__")
    res = simulate(read_config(G / "configs" / f"{cfg}.cfg"),
                   read_topology(G / "topologies" / f"{topo}.csv", "gemm" if "gemm" in topo else "conv"))
    _assert_same_reports(res, G / "reports" / case)


def test_golden_set_covers_dataflows_modes_and_stalls():
    names = set(GENERATED)
    for df in ("os", "ws", "is"):
        for mode in ("calc", "user"):
            assert any(n.startswith(df) and mode in n for n in names), (df, mode)
    stalls = [int(line.split(", ")[2]) for n in names if "user" in n
              for line in (G / "reports" / n / "COMPUTE_REPORT.csv").read_text().splitlines()[1:]]
    assert max(stalls) > 1000 and min(stalls) < 0  # real stalls, and SCALE-Sim's negative-stall quirk


def test_sram_traces_identical_to_scalesim(tmp_path):
    cfg = read_config(G / "configs" / "is_4x4_user2.cfg")
    simulate(cfg, read_topology(G / "topologies" / "trace_conv.csv"), trace_dir=tmp_path)
    for f in ("IFMAP", "FILTER", "OFMAP"):
        want = (G / "traces" / "is_4x4_user2__trace_conv" / f"{f}_SRAM_TRACE.csv").read_text()
        assert (tmp_path / "layer0" / f"{f}_SRAM_TRACE.csv").read_text() == want


# ---- numba kernels against the numpy reference --------------------------------------------------------------

SMALL = [Layer("c", 10, 10, 3, 3, 3, 8, 2, 2), Layer.gemm("g", 20, 12, 30),
         Layer("b", 7, 9, 3, 2, 4, 5, 1, 2, batch=3), Layer("d", 11, 11, 3, 3, 2, 6, 1, 1, dilation_h=2, dilation_w=3)]
CONFIGS = [SystolicConfig(array_rows=8, array_cols=4, ifmap_sram_kib=1, filter_sram_kib=1, ofmap_sram_kib=1,
                          dataflow=df, bandwidth_mode=mode, bandwidth_words=bw, os_timing=t)
           for df, mode, bw, t in (("os", "CALC", None, "scalesim"), ("ws", "USER", 3, "scalesim"),
                                   ("is", "USER", 2, "scalesim"), ("os", "USER", 4, "paper"),
                                   ("is", "CALC", None, "scalesim"))]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.dataflow}-{c.bandwidth_mode}-{c.os_timing}")
def test_layer_kernel_matches_numpy_reference(cfg):
    for layer in SMALL:
        want = ref.reference_layer(cfg, layer)
        got = asdict(simulate_layer(cfg, layer))
        assert {k: got[k] for k in want} == want, layer


@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=lambda c: c.dataflow)
def test_demand_rows_match_numpy_reference(cfg):
    for layer in SMALL:
        for op, want in enumerate(ref.demand_matrices(cfg, layer)):
            np.testing.assert_array_equal(demand_matrix(cfg, layer, op), want)


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_prefetch_lines_match_numpy_reference(df):
    cfg = SystolicConfig(array_rows=4, array_cols=8, dataflow=df, ifmap_sram_kib=1, filter_sram_kib=1,
                         bandwidth_mode="USER", bandwidth_words=3)
    words, eps = 1024, 11
    for layer in SMALL[:3]:
        Sr, Sc, T = K.spatial_dims(df, layer.M, layer.K, layer.N)
        base, woff, pos = K.ifmap_index_tables(layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w,
                                               layer.channels, layer.stride_h, layer.stride_w, layer.batch)
        sizes = (layer.batch * layer.ifmap_h * layer.ifmap_w * layer.channels, layer.K * layer.N)
        for op, order in enumerate(ref.prefetch_orders(cfg, layer)):
            off, lines, one, par = K.prefetch_lines(df, op, 4, 8, Sr, Sc, T, layer.K, base, woff, pos, sizes[op],
                                                    words, 3)
            valid = order[order != -1]
            want: dict = {}
            for k, w in enumerate(valid):
                want.setdefault(int(w), []).append(k // eps)
            for w in range(sizes[op]):
                assert list(lines[off[w]:off[w + 1]]) == sorted(set(want.get(w, []))), (op, w)
                assert one[w] == (want[w][0] if w in want and len(set(want[w])) == 1 else -1)
            assert par[0] == len(valid) // eps + 1 and par[3] == -(-len(order) // 3)


def test_paper_os_timing_adds_r_cycles_per_fold():
    layer = Layer.gemm("g", 20, 12, 30)
    cfg = SystolicConfig(array_rows=8, array_cols=4, dataflow="os")
    a, b = simulate_layer(cfg, layer), simulate_layer(cfg.with_(os_timing="paper"), layer)
    folds = 3 * 3  # ceil(20/8) x ceil(12/4)
    assert a.total_cycles + 1 == folds * (8 + 4 + 30 - 2)  # SCALE-Sim's code: R + C + T - 2 per fold
    assert b.total_cycles + 1 == folds * (2 * 8 + 4 + 30 - 2)  # the paper: 2R + C + T - 2
    assert a.stall_cycles == b.stall_cycles == 0


def test_api_dataframes_and_write(tmp_path):
    cfg, topo, kind = REFERENCE["transformer_os32"]
    res = simulate(read_config(G / "configs" / cfg), read_topology(G / "topologies" / topo, kind))
    assert list(res.compute_report.columns)[:3] == ["LayerID", "Total Cycles", "Stall Cycles"]
    assert res.compute_report["Total Cycles"].tolist()[:2] == [102271, 1519]
    assert res.detailed_report.shape == (6, 19) and res.bandwidth_report.shape == (6, 7)
    d = res.write(tmp_path)
    assert d.name == "scale_example_run_32x32_os"
    for f in REPORTS:
        assert (d / f).read_text() == (G / "reference" / "transformer_os32" / f).read_text()
    assert res.totals()["cycles"] == sum(res.compute_report["Total Cycles"])


def test_energy_is_counts_times_per_access_energy():
    r = simulate_layer(SystolicConfig(array_rows=4, array_cols=4), Layer.gemm("g", 9, 7, 5))
    em = EnergyModel(e_mac_pj=1.0, e_sram_read_pj=2.0, e_sram_write_pj=3.0, e_dram_pj=100.0)
    e = em.layer_energy_pj(r)
    assert e["mac"] == 9 * 7 * 5
    assert e["sram_read"] == 2.0 * (r.ifmap_sram_reads + r.filter_sram_reads)
    assert e["dram"] == 100.0 * (r.ifmap_dram_reads + r.filter_dram_reads + r.ofmap_dram_writes)
    assert e["total"] == e["mac"] + e["sram_read"] + e["sram_write"] + e["dram"]
    res = simulate(SystolicConfig(array_rows=4, array_cols=4), [Layer.gemm("g", 9, 7, 5, repeat=3)], energy=em)
    assert res.totals()["energy_pj"]["total"] == 3 * e["total"]


def test_module_layers_conserve_macs():
    import torch
    from torch import nn

    from hw.systolic.workload import layers_from_workload, simulate_model
    from hw.workload import trace

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                        nn.Conv2d(8, 12, 3, padding=2, dilation=2, groups=4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(12 * 8 * 8, 10))
    x = torch.randn(2, 3, 15, 15)
    w = trace(net, (x,))
    layers, skipped = layers_from_workload(w)
    assert sum(l.macs * l.repeat for l in layers) == w.macs
    assert [l.repeat for l in layers] == [1, 8, 4, 1] and skipped >= 1
    assert layers[0].M == 2 * 8 * 8 and layers[1].channels == 1
    res = simulate_model(w, array=(8, 8), dataflow="os")  # a Workload (an nn.Module with inputs= works too)
    assert res.totals()["macs"] == w.macs and res.totals()["cycles"] > 0


# ---- CLI and bad input -------------------------------------------------------------------------------------

def test_cli_topology_run_writes_scalesim_reports(tmp_path, capsys):
    assert main(["systolic", "-c", str(G / "configs" / "scale.cfg"), "-t", str(G / "topologies" / "transformer_partial.csv"),
                 "-i", "gemm", "-p", str(tmp_path)]) == 0
    for f in REPORTS:
        assert (tmp_path / "scale_example_run_32x32_os" / f).read_text() == \
            (G / "reference" / "transformer_os32" / f).read_text()
    assert "total:" in capsys.readouterr().out


def _cfg(tmp_path, **edit):
    text = (G / "configs" / "scale.cfg").read_text()
    for old, new in edit.items():
        assert old in text
        text = text.replace(old, new)
    p = tmp_path / "bad.cfg"
    p.write_text(text)
    return p


BAD_CFG = [
    ({"ArrayWidth:     32\n": ""}, ":4: ArrayWidth: missing from [architecture_presets]"),
    ({"ArrayHeight:    32": "ArrayHeight:    3x2"}, ":5: ArrayHeight: '3x2' is not an integer"),
    ({"IfmapSramSzkB:   64": "IfmapSramSzkB:   0"}, ":7: IfmapSramSzkB: must be a positive integer"),
    ({"Dataflow : os": "Dataflow : xs"}, ":14: Dataflow: unknown dataflow 'xs'"),
    ({"InterfaceBandwidth: CALC": "InterfaceBandwidth: USER", "Bandwidth : 10\n": ""}, ":4: Bandwidth: InterfaceBandwidth is USER"),
    ({"InterfaceBandwidth: CALC": "InterfaceBandwidth: FAST"}, ":18: InterfaceBandwidth: must be CALC or USER"),
]


@pytest.mark.parametrize("edit,msg", BAD_CFG, ids=[m.split(": ")[1] for _, m in BAD_CFG])
def test_bad_config_is_one_line_with_file_line_field(tmp_path, capsys, edit, msg):
    cfg = _cfg(tmp_path, **edit)
    assert main(["systolic", "-c", str(cfg), "-t", str(G / "topologies" / "tiny_gemm.csv"), "-i", "gemm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{cfg}{msg}" in err, err


BAD_TOPO = [
    ("C1,10,10,3,3,3,8,\n", ":2: Strides: missing"),
    ("C1,10,ten,3,3,3,8,1,\n", ":2: IFMAP Width: 'ten' is not an integer"),
    ("C1,10,10,3,3,3,-8,1,\n", ":2: Num Filter: must be a positive integer"),
    ("C1,10,10,3,3,3,8,1,\nC2,5,5,7,3,3,8,1,\n", ":3: Filter Height: 7 is larger than IFMAP Height 5"),
    ("C1,10,10,3,3,3,8,1,0,\n", ":2: Stride Width: must be a positive integer"),
    ("", ":1: no layers"),
]


@pytest.mark.parametrize("rows,msg", BAD_TOPO, ids=[m.split(": ")[1] for _, m in BAD_TOPO])
def test_bad_topology_is_one_line_with_file_line_field(tmp_path, capsys, rows, msg):
    p = tmp_path / "bad.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n" + rows)
    assert main(["systolic", "-c", str(G / "configs" / "scale.cfg"), "-t", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{p}{msg}" in err, err


def test_bad_gemm_row_and_missing_files(tmp_path, capsys):
    p = tmp_path / "g.csv"
    p.write_text("Layer,M,N,K,\nG1,4,4,\n")
    assert main(["systolic", "-c", str(G / "configs" / "scale.cfg"), "-t", str(p), "-i", "gemm"]) == 2
    assert f"{p}:2: K: missing" in capsys.readouterr().err
    assert main(["systolic", "-c", str(tmp_path / "nope.cfg"), "-t", str(p)]) == 2
    assert "nope.cfg: config file not found" in capsys.readouterr().err
    assert main(["systolic", "--model", "resnet18", "--array", "0x4"]) == 2
    assert "--array" in capsys.readouterr().err


try:
    from hypothesis import given, settings, strategies as st
except ImportError:  # hypothesis is a dev extra
    given = None

if given is not None:
    @settings(max_examples=8, deadline=None)
    @given(df=st.sampled_from(["os", "ws", "is"]), user=st.booleans(), rows=st.integers(2, 9), cols=st.integers(2, 9),
           h=st.integers(3, 9), r=st.integers(1, 3), ch=st.integers(1, 3), k=st.integers(1, 9),
           stride=st.integers(1, 3), bw=st.integers(1, 5), kib=st.integers(1, 2))
    def test_random_layers_kernel_equals_reference(df, user, rows, cols, h, r, ch, k, stride, bw, kib):
        cfg = SystolicConfig(array_rows=rows, array_cols=cols, dataflow=df, ifmap_sram_kib=1, filter_sram_kib=kib,
                             ofmap_sram_kib=1, bandwidth_mode="USER" if user else "CALC",
                             bandwidth_words=bw if user else None)
        layer = Layer("x", h, h + 1, r, r, ch, k, stride, stride)
        got = asdict(simulate_layer(cfg, layer))
        want = ref.reference_layer(cfg, layer)
        assert {key: got[key] for key in want} == want
        assert got["macs"] == layer.M * layer.K * layer.N  # the same MACs whatever the dataflow
        assert got["total_cycles"] + 1 >= -(-layer.macs // (rows * cols))  # no faster than all PEs busy


def test_cli_model_json(capsys):
    import json

    from hw.workload import profile

    assert main(["systolic", "--model", "lenet5", "--array", "8x8", "--dataflow", "ws", "--batch", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["array_rows"] == 8 and out["config"]["dataflow"] == "ws"
    assert out["totals"]["macs"] == profile("lenet5", batch=2).macs
    assert out["totals"]["cycles"] == sum(l["total_cycles"] * l["repeat"] for l in out["layers"])
