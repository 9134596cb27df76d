"""hw.systolic in SCALE-Sim 3.0.0 mode against 3.0.0's own reports (tests/golden/scalesim3, see its README)."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from hw.systolic import read_config, read_topology, simulate
from hw.systolic.config import ConfigError, SystolicConfig
from hw.systolic.topology import Layer
from neurosim.errors import NeurosimError

G3 = Path(__file__).parent / "golden" / "scalesim3"
G2 = Path(__file__).parent / "golden" / "scalesim"
CASES = sorted(d.name for d in (G3 / "reports").iterdir())


def _run(cfg_path, topo, **kw):
    kind = "gemm" if "gemm" in Path(topo).stem else "conv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate(read_config(cfg_path, **kw), read_topology(topo, kind))


@pytest.mark.parametrize("case", CASES)
def test_reports_identical_to_scalesim3(case):
    cfg, topo = case.split("__")
    res = _run(G3 / "configs" / f"{cfg}.cfg", G3 / "topologies" / f"{topo}.csv")
    lines = res.report_lines()
    gold = G3 / "reports" / case
    assert sorted(lines) == sorted(p.name for p in gold.iterdir())
    for fname, ours in lines.items():
        assert "\n".join(ours) + "\n" == (gold / fname).read_text(), f"{case}/{fname}"


def test_golden_set_covers_what_the_issue_asks():
    cfgs = {c.split("__")[0] for c in CASES}
    kinds = set()
    for c in cfgs:
        cfg = read_config(G3 / "configs" / f"{c}.cfg")
        kinds.add((cfg.dataflow, cfg.bandwidth_mode, cfg.sparsity))
    assert kinds >= {(df, m, sp) for df in ("os", "ws", "is") for m in ("CALC", "USER") for sp in (False,)}
    assert {df for df, _, sp in kinds if sp} == {"os", "ws", "is"}
    assert {m for _, m, sp in kinds if sp} == {"CALC", "USER"}
    reps = {read_config(G3 / "configs" / f"{c}.cfg").sparse_rep for c in cfgs if "csr" in c or "csc" in c or "ellpack" in c}
    assert reps == {"csr", "csc", "ellpack_block"}


def test_version_from_the_file_and_forced(tmp_path):
    assert read_config(G2 / "configs" / "os_4x8_user3.cfg").scalesim_version == 2
    assert read_config(G3 / "configs" / "os_4x8_user3.cfg").scalesim_version == 3
    assert read_config(G3 / "configs" / "os_4x8_user3.cfg", scalesim_version=2).scalesim_version == 2
    # a 2.0.2 file read as 3.0.0: the banks read at Bandwidth, exactly the 3.0.0 file with bank bandwidth 3
    res = _run(G2 / "configs" / "os_4x8_user3.cfg", G3 / "topologies" / "tiny_conv.csv", scalesim_version=3)
    gold = G3 / "reports" / "os_4x8_user3__tiny_conv"
    for fname, ours in res.report_lines().items():
        assert "\n".join(ours) + "\n" == (gold / fname).read_text()
    # a 3.0.0 file read as 2.0.2: 2.0.2's columns, no sparse report, and 2.0.2's stall accounting
    v2 = _run(G3 / "configs" / "os_4x8_user3.cfg", G3 / "topologies" / "tiny_conv.csv", scalesim_version=2)
    assert sorted(v2.report_lines()) == ["BANDWIDTH_REPORT.csv", "COMPUTE_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"]
    assert v2.report_lines()["COMPUTE_REPORT.csv"][0].startswith("LayerID, Total Cycles, Stall")
    assert sum(r.stall_cycles for r in v2.results) < sum(r.stall_cycles for r in res.results)  # #130's double add
    sp = _run(G3 / "configs" / "ws_8x4_user4_csr.cfg", G3 / "topologies" / "sparse_conv.csv", scalesim_version=2)
    assert "SPARSE_REPORT.csv" not in sp.report_lines() and all(r.sparse_k == 0 for r in sp.results)


def test_sparse_layer_runs_its_compressed_gemm():
    cfg = read_config(G3 / "configs" / "ws_4x8_calc_ellpack.cfg")
    dense = SystolicConfig(**{**cfg.__dict__, "sparsity": False})
    layer = Layer.gemm("g", 40, 24, 48, sparsity=(2, 4))
    with pytest.warns(UserWarning, match="above 100"):
        s = simulate(cfg, [layer]).results[0]
    d = simulate(dense, [Layer.gemm("g", 40, 24, 24)]).results[0]  # the compressed GEMM, dense
    assert s.sparse_k == 24 and s.total_cycles == d.total_cycles and s.macs == 2 * d.macs
    assert s.overall_util == pytest.approx(2 * d.overall_util)
    assert s.filter_storage == (48 * 24, 24 * 24 + 24 * 24 * 2 / 32, 24 * 24 * 2 / 32)  # ELLPACK: log2(4) bits/32
    assert isinstance(s.ifmap_sram_reads, float) and s.ifmap_sram_reads == 2 * d.ifmap_sram_reads  # ws: M/N times
    assert Layer.gemm("h", 4, 4, 45, sparsity=(3, 8)).sparse_K == len(Layer.gemm("h", 4, 4, 45, sparsity=(3, 8))
                                                                   .kept_windows) == 5 * 3 + 3


def test_impossible_utilisation_is_reproduced_and_warned():
    cfg = read_config(G3 / "configs" / "ws_4x8_calc_ellpack.cfg")
    with pytest.warns(UserWarning, match="above 100"):
        res = simulate(cfg, read_topology(G3 / "topologies" / "sparse_conv.csv"))
    assert res.impossible_layers() and max(r.overall_util for r in res.results) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(cfg, read_topology(G3 / "topologies" / "tiny_conv.csv"))  # dense at 1:1: no warning


def _cfg(tmp_path, text_from, **subs):
    t = (G3 / "configs" / f"{text_from}.cfg").read_text()
    for a, b in subs.items():
        assert a in t, a
        t = t.replace(a, b)
    p = tmp_path / "c.cfg"
    p.write_text(t)
    return p


@pytest.mark.parametrize("base, old, new, msg", [
    ("os_4x8_user3", "IfmapCustomLayout: False", "IfmapCustomLayout: True", "custom memory layouts"),
    ("os_4x8_user3", "UseRamulatorTrace: False", "UseRamulatorTrace: True", "Ramulator"),
    ("os_4x8_user3", "IfmapSRAMBankNum: 1", "IfmapSRAMBankNum: 2", "banks do not divide"),
    ("ws_8x4_user4_csr", "SparseRep : csr", "SparseRep : coo", "csr, csc or ellpack_block"),
    ("ws_8x4_user4_csr", "OptimizedMapping : false", "OptimizedMapping : true", "optimized sparse mapping"),
    ("ws_8x4_user4_csr", "OptimizedMapping : false", "OptimizedMapping : maybe", "True or False"),
    ("os_4x8_user3", "ReadRequestBuffer: 32", "ReadRequestBuffer: 0", "positive"),
    ("ws_8x4_user4_csr", "FilterOffset:   10000000", "FilterOffset:   0", "FilterOffset above 0"),
])
def test_bad_v3_configs_name_the_field(tmp_path, base, old, new, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        read_config(_cfg(tmp_path, base, **{old: new}))
    assert str(e.value).startswith(str(tmp_path / "c.cfg") + ":")


def test_banks_need_not_divide_in_calc_mode(tmp_path):
    assert read_config(_cfg(tmp_path, "os_8x4_calc", **{"IfmapSRAMBankNum: 10": "IfmapSRAMBankNum: 3"})).ifmap_banks == 3


@pytest.mark.parametrize("ratio, msg", [("3:2", "N <= M"), ("2:x", "not an integer"), ("2:4:8", "N:M"),
                                        ("0:4", "positive")])
def test_bad_sparsity_column(tmp_path, ratio, msg):
    p = tmp_path / "t.csv"
    p.write_text(f"Layer,M,N,K,Sparsity,\nG1,4,4,8,{ratio},\n")
    with pytest.raises(ConfigError, match=msg):
        read_topology(p, "gemm")


def test_sparsity_column_after_a_column_stride(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("h,\nC,8,8,3,3,2,4,1,2,2:4,\nD,8,8,3,3,2,4,1,1:2,\n")
    a, b = read_topology(p)
    assert (a.stride_w, a.sparsity_n, a.sparsity_m) == (2, 2, 4)
    assert (b.stride_w, b.sparsity_n, b.sparsity_m) == (1, 1, 2)


def test_sparse_traces_refused(tmp_path):
    cfg = read_config(G3 / "configs" / "ws_8x4_user4_csr.cfg")
    with pytest.raises(NeurosimError, match="traces"):
        simulate(cfg, [Layer.gemm("g", 4, 4, 8, sparsity=(2, 4))], trace_dir=tmp_path / "tr")


def test_cli_writes_the_sparse_reports(tmp_path, capsys):
    from neurosim.cli import main

    case = "ws_8x4_user4_csr__sparse_conv"
    rc = main(["systolic", "-c", str(G3 / "configs" / "ws_8x4_user4_csr.cfg"), "-t",
               str(G3 / "topologies" / "sparse_conv.csv"), "-p", str(tmp_path), "--no-progress"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "warning: 1 layer(s) report Overall Util % above 100" in err
    for f in (G3 / "reports" / case).iterdir():
        assert (tmp_path / "ws_8x4_user4_csr" / f.name).read_text() == f.read_text()
    # forced 2.0.2 on the same files: 2.0.2's three reports
    out2 = tmp_path / "v2"
    assert main(["systolic", "-c", str(G3 / "configs" / "ws_8x4_user4_csr.cfg"), "-t",
                 str(G3 / "topologies" / "sparse_conv.csv"), "-p", str(out2), "--scalesim-version", "2",
                 "--no-progress"]) == 0
    assert sorted(p.name for p in (out2 / "ws_8x4_user4_csr").iterdir()) == [
        "BANDWIDTH_REPORT.csv", "COMPUTE_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"]


def test_cli_bad_v3_config_is_one_line_exit_2(tmp_path, capsys):
    from neurosim.cli import main

    p = _cfg(tmp_path, "os_4x8_user3", **{"UseRamulatorTrace: False": "UseRamulatorTrace: True"})
    out = tmp_path / "out"
    rc = main(["systolic", "-c", str(p), "-t", str(G3 / "topologies" / "tiny_conv.csv"), "-p", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "UseRamulatorTrace" in err and not out.exists()


def test_scalesim_command_line_drop_in(tmp_path, capsys):
    from hw.systolic.__main__ import main

    case = "is_4x4_user2_ellpack__sparse_gemm"
    layout = tmp_path / "layout.csv"
    layout.write_text("Layer name,\n")
    assert main(["-c", str(G3 / "configs" / "is_4x4_user2_ellpack.cfg"), "-t", str(G3 / "topologies" /
                 "sparse_gemm.csv"), "-i", "gemm", "-l", str(layout), "-p", str(tmp_path / "r")]) == 0
    for f in (G3 / "reports" / case).iterdir():
        assert (tmp_path / "r" / "is_4x4_user2_ellpack" / f.name).read_text() == f.read_text()
    capsys.readouterr()
    assert main(["-c", str(G3 / "configs" / "is_4x4_user2_ellpack.cfg"), "-t", str(G3 / "topologies" /
                 "sparse_gemm.csv"), "-l", str(tmp_path / "nope.csv"), "-p", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "layout file not found" in err and not (tmp_path / "r2").exists()


def test_sram_traces_identical_to_scalesim3(tmp_path):
    """3.0.0's served cycles (its doubled read waits included) in its own SRAM traces, byte for byte."""
    import gzip

    cfg = read_config(G3 / "configs" / "os_4x8_user3.cfg")
    simulate(cfg, read_topology(G3 / "topologies" / "tiny_conv.csv"), trace_dir=tmp_path)
    gold = G3 / "traces" / "os_4x8_user3__tiny_conv"
    files = sorted(gold.glob("layer*/*_SRAM_TRACE.csv.gz"))
    assert len(files) == 6
    for f in files:
        ours = tmp_path / f.parent.name / f.name[:-3]
        assert ours.read_bytes() == gzip.decompress(f.read_bytes()), f"{f.parent.name}/{f.name}"
