"""`neurosim convert`: train (tiny, on digits), convert, table/JSON and the accuracy plot."""
from __future__ import annotations

import json

from neurosim.cli import main


def test_convert_cli_trains_converts_and_plots(tmp_path, capsys):
    ckpt, png = tmp_path / "mlp.pt", tmp_path / "acc.png"
    args = ["convert", "mlp", "--dataset", "digits", "--timesteps", "8,2,4", "--epochs", "2", "--set", "hidden=(32,)",
            "--checkpoint", str(ckpt), "--plot", str(png), "--test-samples", "100"]
    assert main(args + ["--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["timesteps"] == [2, 4, 8] and len(rep["snn_accuracy"]) == 3
    assert 0.5 < rep["ann_accuracy"] <= 1 and all(0 <= a <= 1 for a in rep["snn_accuracy"])
    assert rep["test_samples"] == 100 and rep["overrides"] == {"hidden": [32]}
    assert ckpt.is_file() and png.is_file() and png.stat().st_size > 1000
    # second call loads the checkpoint (no training) and prints the table
    assert main(args + ["--norm", "max", "--save-ir", str(tmp_path / "snn.npz")]) == 0
    out = capsys.readouterr().out
    assert "snn_acc_%" in out and "trained" not in out and (tmp_path / "snn.npz").is_file()
    # signed neurons with biases calibrated per T: one network per T, the saved one is the largest T's
    ir = tmp_path / "cal.npz"
    assert main(args + ["--signed", "--calibrate", "--calibration-iters", "2", "--save-ir", str(ir), "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["signed"] and cal["calibrated"] and cal["timesteps"] == [2, 4, 8] and len(cal["snn_accuracy"]) == 3
    assert all(0 <= a <= 1 for a in cal["snn_accuracy"])
    from neurosim.ir import SpikingNetwork

    net = SpikingNetwork.load(ir)
    assert net.metadata["calibrated_T"] == 8 and all(n.signed for n in net.populations.values())


def test_convert_cli_bad_input_is_one_line(capsys):
    assert main(["convert", "mlp", "--dataset", "digits", "--timesteps", "4,x"]) == 2
    err = capsys.readouterr().err
    assert "--timesteps" in err and len(err.strip().splitlines()) == 1
    assert main(["convert", "mlp", "--dataset", "digits", "--norm", "median", "--timesteps", "2"]) == 2
    err = capsys.readouterr().err
    assert "median" in err and "percentile" in err
    assert main(["convert", "mlp", "--dataset", "digits", "--calibrate", "--calibration-iters", "0"]) == 2
    err = capsys.readouterr().err
    assert "--calibration-iters" in err and len(err.strip().splitlines()) == 1
