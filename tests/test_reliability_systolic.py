"""Resource bombs and malformed SCALE-Sim files: refused in one line (exit 2) before anything is built,
allocated or written, with the estimate that made the run impossible."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from reliability_cli import refused  # noqa: E402

G = Path(__file__).parent / "golden" / "scalesim"
CFG = G / "configs" / "os_8x4_calc.cfg"
CONV_HEADER = "Layer,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,\n"


def _file(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_a_depthwise_row_with_a_billion_channels_is_refused_before_building_layers(tmp_path, capsys):
    topo = _file(tmp_path, "dp.csv", CONV_HEADER + "DPbomb,8,8,3,3,1000000000,1,1,\n")
    refused(capsys, "systolic", "-c", CFG, "-t", topo, written_under=tmp_path, match="1,000,000,000 layers")


def test_a_layer_needing_terabytes_is_refused_with_an_estimate(tmp_path, capsys):
    topo = _file(tmp_path, "tib.csv", CONV_HEADER + "big,1000000,1000000,3,3,1,1,1,\n")
    refused(capsys, "systolic", "-c", CFG, "-t", topo, written_under=tmp_path, match="TiB of memory")


def test_traces_over_the_limit_are_refused_before_writing(tmp_path, capsys):
    topo = _file(tmp_path, "gemm.csv", "Layer,M,N,K,\nbig,100000,64,64,\n")
    refused(capsys, "systolic", "-c", CFG, "-t", topo, "-i", "gemm", "--trace-dir", tmp_path / "tr",
            "--max-trace-gb", "1", written_under=tmp_path, match="--max-trace-gb")


@pytest.mark.parametrize("case", ["not-utf8-cfg", "huge-sram", "huge-dim", "trace-dir-is-a-file",
                                  "gemm-on-conv", "huge-array", "max-trace-without-trace-dir", "nan-max-trace"])
def test_malformed_systolic_input_is_one_line(tmp_path, capsys, case):
    topo = G / "topologies" / "tiny_conv.csv"
    cfg = CFG
    extra = []
    if case == "not-utf8-cfg":
        cfg = _file(tmp_path, "bad.cfg", b"\xff\xfe[general]\nrun_name = x\n")
    elif case == "huge-sram":
        cfg = _file(tmp_path, "big.cfg", CFG.read_text().replace("IfmapSramSzkB:    1",
                                                                   "IfmapSramSzkB: 99999999999999999999999"))
    elif case == "huge-dim":
        topo = _file(tmp_path, "t.csv", CONV_HEADER + "x,99999999999999,8,3,3,1,1,1,\n")
    elif case == "trace-dir-is-a-file":
        extra = ["--trace-dir", _file(tmp_path, "afile", "")]
    elif case == "gemm-on-conv":
        extra = ["-i", "gemm"]
    elif case == "huge-array":
        extra = ["--array", "99999999999x2"]
    elif case == "max-trace-without-trace-dir":
        extra = ["--max-trace-gb", "3"]
    elif case == "nan-max-trace":
        extra = ["--max-trace-gb", "nan", "--trace-dir", tmp_path / "tr"]
    refused(capsys, "systolic", "-c", cfg, "-t", topo, *extra, written_under=tmp_path)


@pytest.mark.parametrize("name", ["..", ".", "../escape", "a/b"])
def test_a_run_name_that_leaves_the_output_folder_is_refused(tmp_path, capsys, name):
    text = CFG.read_text()
    line = next(ln for ln in text.splitlines() if ln.replace(" ", "").startswith("run_name="))
    cfg = _file(tmp_path, "n.cfg", text.replace(line, f"run_name = {name}"))
    refused(capsys, "systolic", "-c", cfg, "-t", G / "topologies" / "tiny_conv.csv", "-p", tmp_path / "out",
            written_under=tmp_path, match="run_name")
