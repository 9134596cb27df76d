"""Fuzzing the command line and the file formats (issue 15): every refusal is exit 2, one line on stderr
naming the command, no traceback, and nothing written.

* every numeric option of every subcommand (found by walking the parser, so a new option or command is
  covered the day it lands) against NaN, inf, negatives, huge integers, garbage text;
* the files users hand the suite: IR ``.npz`` (truncated, bit-flipped, random bytes, foreign), checkpoints
  (garbage weights, garbage or foreign config, another model's), NIR files and metadata, SCALE-Sim
  topologies, IDX files;
* flags that apply to nothing, outputs that cannot be written, model options the builder refuses.

Cases are drawn by hypothesis under the suite's derandomised profile (tests/conftest.py): the same
examples on every machine; ``--hypothesis-profile=explore`` hunts for new ones.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from reliability_cli import files_under, refused  # noqa: E402

import models  # noqa: E402
import neurosim  # noqa: E402
from neurosim.cli import build_parser, main  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402

FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: A valid command line for each (sub)command that has numeric options; the fuzzed option is appended.
#: A command missing here fails `test_every_command_with_numbers_is_fuzzed` (add it when adding the command).
BASE = {
    ("convert",): ["convert", "mlp", "--dataset", "digits"],
    ("cost",): ["cost", "mlp", "--hw", "a100_80gb"],
    ("footprint",): ["footprint", "--device", "v100", "--count", "8", "--days", "1"],
    ("loihi-map",): ["loihi-map", "NET.npz"],
    ("profile",): ["profile", "mlp"],
    ("study", "run"): ["study", "run", "zoo_profile", "--quick"],
    ("systolic",): ["systolic", "--model", "mlp"],
    ("train",): ["train", "mlp"],
    ("dram",): ["dram", "--preset", "ddr4_3200", "--trace", "T.trace"],
    ("mesh",): ["mesh", "NET.npz"],
    ("snn-cost",): ["snn-cost", "NET.npz"],
    ("nir", "export"): ["nir", "export", "NET.npz", "OUT.nir", "--target", "sinabs"],
    ("nir", "import"): ["nir", "import", "IN.nir", "OUT.npz"],
}

#: Values no numeric option accepts (0 is valid for some: seeds, patience, --workers 0).
HOSTILE = ["nan", "NaN", "inf", "-inf", "-1", "-0.5", "1e400", "9" * 25, "abc", "", "1,2", "0x10", "1e3.5"]


def _numeric_options():
    out = []

    def walk(parser, path):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    walk(sp, path + (name,))
            elif a.option_strings and a.type is not None and getattr(a.type, "__name__", "") in ("int", "float"):
                out.append((path, a.option_strings[-1]))

    walk(build_parser(), ())
    return out


NUMERIC = _numeric_options()


def test_every_command_with_numbers_is_fuzzed():
    assert len(NUMERIC) > 30
    missing = sorted({p for p, _ in NUMERIC} - set(BASE))
    assert not missing, f"add a base command line to BASE for {missing}"


@pytest.mark.parametrize("path,option", NUMERIC, ids=[f"{' '.join(p)} {o}" for p, o in NUMERIC])
@FUZZ
@given(value=st.sampled_from(HOSTILE))
def test_numeric_options_refuse_nan_inf_negative_huge_and_garbage(tmp_path, capsys, path, option, value):
    line = refused(capsys, *BASE[path], f"{option}={value}", cwd=tmp_path, written_under=tmp_path)
    assert option in line, line


@pytest.mark.parametrize("argv,match", [
    (["profile", "resnet18", "--set", "num_classes=-1"], "num_classes=-1"),
    (["train", "mlp", "--set", "hidden=abc"], "hidden='abc'"),
    (["profile", "mlp", "--set", "hidden=1e400"], "finite"),
    (["profile", "mlp", "--set", "nosuchoption=3"], "no option nosuchoption"),
    (["profile", "mlp", "--set", "novalue"], "KEY=VALUE"),
    (["cost", "mlp", "--hw", "loihi", "--precision", "int8"], "--precision"),
    (["cost", "mlp", "--hw", "loihi2", "--efficiency", "0.5"], "--efficiency"),
    (["cost", "mlp", "--hw", "a100_80gb", "--firing-rate", "0.2"], "--firing-rate"),
    (["cost", "mlp", "--hw", "a100_80gb", "--six-nd"], "--six-nd"),
    (["cost", "mlp", "--hw", "a100_80gb", "--tokens", "1e9"], "--tokens"),
    (["cost", "mlp", "--hw", "a100_80gb", "--seq", "128"], "sequence"),
    (["profile", "lenet5", "--seq", "16"], "sequence"),
    (["systolic", "--model", "resnet_tiny", "--seq", "16"], "sequence"),
    (["train", "bert_tiny", "--dataset", "digits", "--epochs", "1"], "token"),
    (["train", "mlp", "--dataset", "majority_tokens", "--epochs", "1"], "token"),
])
def test_impossible_or_ignored_requests_are_one_line(tmp_path, capsys, argv, match):
    refused(capsys, *argv, cwd=tmp_path, written_under=tmp_path, match=match)


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = blocker / "sub"
    for argv in (["train", "mlp", "--out", bad / "m.pt"], ["demo", "--out", bad],
                 ["convert", "mlp", "--dataset", "digits", "--save-ir", bad / "n.npz"],
                 ["convert", "mlp", "--dataset", "digits", "--plot", bad / "p.png"],
                 ["study", "run", "zoo_profile", "--quick", "--db", tmp_path / "z.sqlite", "--out", blocker],
                 ["study", "report", "zoo_profile", "--db", tmp_path / "z.sqlite", "--out", blocker]):
        refused(capsys, *argv, cwd=tmp_path, match="--out" if "study" in argv or "demo" in argv else None)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "z.sqlite").exists()


# ---- files -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ir_bytes(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    m = models.create("mlp", in_features=16, hidden=(8,), num_classes=3)
    path = tmp_path_factory.mktemp("ir") / "net.npz"
    neurosim.convert(m, torch.rand(32, 16)).save(path)
    return path.read_bytes()


@FUZZ
@given(data=st.data())
def test_ir_files_truncated_flipped_or_random_are_one_line(tmp_path, capsys, ir_bytes, data):
    kind = data.draw(st.sampled_from(["truncate", "flip", "random", "empty", "text"]))
    if kind == "truncate":
        blob = ir_bytes[:data.draw(st.integers(0, len(ir_bytes) - 1))]
    elif kind == "flip":
        b = bytearray(ir_bytes)
        for pos in data.draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8)):
            b[pos] ^= 0xFF
        blob = bytes(b)
    elif kind == "random":
        blob = data.draw(st.binary(min_size=1, max_size=4096))
    else:
        blob = b"" if kind == "empty" else b"hello, not a network\n"
    f = tmp_path / "net.npz"
    f.write_bytes(blob)
    refused(capsys, "loihi-map", f, cwd=tmp_path, written_under=tmp_path, match="net.npz")


def test_foreign_npz_and_npy_are_named(tmp_path, capsys):
    np.savez(tmp_path / "foreign.npz", a=np.zeros(3))
    np.save(tmp_path / "array.npy", np.zeros(3))
    refused(capsys, "loihi-map", tmp_path / "foreign.npz", match="not a neurosim IR file")
    refused(capsys, "loihi-map", tmp_path / "array.npy", match="not a neurosim IR file")


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    m = models.create("mlp", in_features=64, hidden=(16,), num_classes=10)
    path = tmp_path_factory.mktemp("ckpt") / "mlp.pt"
    models.save(m, path)
    return path


@FUZZ
@given(data=st.data())
def test_checkpoints_with_garbage_weights_or_config_are_one_line(tmp_path, capsys, mlp_checkpoint, data):
    pt, js = tmp_path / "m.pt", tmp_path / "m.pt.json"
    weights, config = mlp_checkpoint.read_bytes(), Path(str(mlp_checkpoint) + ".json").read_text()
    part = data.draw(st.sampled_from(["weights", "config"]))
    if part == "weights":
        cut = data.draw(st.integers(0, len(weights) - 1))
        weights = weights[:cut] if data.draw(st.booleans()) else data.draw(st.binary(max_size=512))
    else:
        config = data.draw(st.sampled_from([
            "", "{", "[]", "null", '{"name": 3}', '{"overrides": {}}', '{"name": "mlp", "overrides": []}',
            '{"name": "nosuchmodel"}', '{"name": "mlp", "overrides": {"hidden": "abc"}}',
            '{"name": "mlp", "overrides": {"in_features": 7}}', "\udcff".encode("utf-8", "surrogateescape").decode(
                "latin-1")]))
    pt.write_bytes(weights)
    js.write_text(config, encoding="latin-1")
    before = files_under(tmp_path)
    refused(capsys, "convert", "mlp", "--dataset", "digits", "--checkpoint", pt, cwd=tmp_path)
    assert files_under(tmp_path) == before


def test_a_checkpoint_of_another_model_is_refused(tmp_path, capsys, mlp_checkpoint):
    refused(capsys, "convert", "lenet5", "--dataset", "digits", "--checkpoint", mlp_checkpoint, cwd=tmp_path,
            written_under=tmp_path, match="holds a 'mlp' model, not 'lenet5'")
    with pytest.raises(NeurosimError, match="not 'lenet5'"):
        models.load(mlp_checkpoint, expect="lenet5")


def test_nir_files_and_metadata_that_do_not_read_are_one_error(tmp_path, ir_bytes):
    import nir

    from neurosim.ir import SpikingNetwork

    (tmp_path / "net.npz").write_bytes(ir_bytes)
    g = SpikingNetwork.load(tmp_path / "net.npz").to_nir()
    (tmp_path / "bad.nir").write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(NeurosimError, match="not a readable NIR file"):
        SpikingNetwork.from_nir(tmp_path / "bad.nir")
    meta = json.loads(g.metadata["neurosim"])
    for broken in ("{", json.dumps({**meta, "order": ["nosuchnode"]}), json.dumps({k: v for k, v in meta.items()
                                                                                    if k != "readout"}),
                   json.dumps({**meta, "nodes": {k: {"type": "Neurons"} for k in meta["nodes"]}})):
        bad = nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={"neurosim": broken}, type_check=False)
        with pytest.raises(NeurosimError, match="metadata"):
            SpikingNetwork.from_nir(bad)


_TOPO_FIELD = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(["", "x", "nan", "1e99", "9" * 22, "-0", " 3 "]))


@FUZZ
@given(rows=st.lists(st.lists(_TOPO_FIELD, min_size=1, max_size=9), min_size=1, max_size=3))
def test_random_topology_files_run_or_are_one_line(tmp_path, capsys, rows):
    """A topology of random small fields either simulates (exit 0) or is refused in one line: never a
    traceback, never exit 1."""
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\n" + "".join(f"l{i}, " + ", ".join(r) + ",\n" for i, r in enumerate(rows)))
    capsys.readouterr()
    rc = main(["systolic", "-t", str(topo), "--array", "8x8"])
    err = capsys.readouterr().err
    assert rc in (0, 2) and "Traceback" not in err, err
    if rc == 2:
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err


@FUZZ
@given(blob=st.binary(max_size=64), which=st.sampled_from(["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]))
def test_random_idx_files_are_one_line(tmp_path, capsys, blob, which):
    from test_data import write_idx

    d = tmp_path / "idx"
    d.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 4)):
        write_idx(d / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 0x08, False)
        write_idx(d / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8), 0x08, False)
    (d / which).write_bytes(blob)
    refused(capsys, "train", "mlp", "--dataset", f"mnist-idx:{d}", "--epochs", "1", cwd=tmp_path,
            written_under=tmp_path)
