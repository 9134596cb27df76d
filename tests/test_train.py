"""The CPU trainer: accuracy on real data, determinism, early stopping, checkpoints, and the CLI."""
import json

import pytest
import torch

import models
from models.data import load_dataset
from models.train import evaluate, fit_config, resolve_dataset, train, train_model
from neurosim.cli import main
from neurosim.errors import NeurosimError


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_mlp_learns_digits_and_checkpoint_round_trips(digits, tmp_path, capsys):
    train_set, test_set = digits
    torch.manual_seed(0)
    net = models.create("mlp", **fit_config("mlp", train_set))
    res = train(net, train_set, test=test_set, epochs=6, checkpoint=tmp_path / "mlp.pt", progress=True)
    assert capsys.readouterr().err == ""  # the bar stays quiet when stderr is not a terminal
    assert res.test_accuracy > 0.9 and res.best_val_accuracy > 0.9
    assert res.epochs_run == len(res.train_loss) == len(res.val_accuracy)
    assert res.train_loss[-1] < res.train_loss[0]
    assert res.test_accuracy == evaluate(net, test_set)  # the best weights are the ones left loaded

    loaded = models.load(res.checkpoint)
    meta = json.loads((tmp_path / "mlp.pt.json").read_text())
    assert meta["name"] == "mlp" and meta["overrides"] == {"in_features": 64}
    assert meta["extra"]["test_accuracy"] == res.test_accuracy and meta["extra"]["dataset"] == "digits"
    assert loaded.neurosim_checkpoint["extra"]["val_accuracy"] == res.best_val_accuracy
    with torch.no_grad():
        torch.testing.assert_close(loaded(test_set.x[:32]), net.eval()(test_set.x[:32]))
    df = res.to_dataframe()
    assert list(df.columns)[:2] == ["epoch", "train_loss"] and df["best"].sum() == 1


def test_training_is_seeded(digits):
    train_set, _ = digits
    small = train_set.subset(torch.arange(300))

    def run():
        torch.manual_seed(1)
        net = models.create("mlp", in_features=64, hidden=(16,), dropout=0.2)
        return train(net, small, epochs=2, seed=3, progress=False), net

    (r1, n1), (r2, n2) = run(), run()
    assert r1.train_loss == r2.train_loss and r1.val_accuracy == r2.val_accuracy
    assert all(torch.equal(a, b) for a, b in zip(n1.state_dict().values(), n2.state_dict().values()))


def test_early_stopping_keeps_the_best_epoch(digits):
    train_set, _ = digits
    small = train_set.subset(torch.arange(200))
    torch.manual_seed(0)
    net = models.create("mlp", in_features=64, hidden=(8,))
    res = train(net, small, epochs=10, lr=1e-9, patience=2, progress=False)  # nothing improves
    assert res.stopped_early and res.epochs_run == 3 and res.best_epoch == 1
    assert res.best_val_accuracy == res.val_accuracy[0]


def test_sequence_model_learns_the_majority_task():
    model, res = train_model("gru", "majority", overrides={"hidden_size": 32}, epochs=3, lr=2e-2,
                             batch_size=128, progress=False)
    assert res.test_accuracy > 0.5  # chance is 0.25


def test_trainer_rejects_non_classifiers_and_bad_arguments(digits):
    train_set, _ = digits
    with pytest.raises(NeurosimError, match="num_classes"):
        train(models.create("gpt_tiny"), load_dataset("majority_tokens")[0], epochs=1, progress=False)
    with pytest.raises(NeurosimError, match="epochs"):
        train(models.create("mlp", in_features=64), train_set, epochs=0)
    with pytest.raises(NeurosimError, match="models.create"):
        train(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), train_set, epochs=1, checkpoint="x.pt")


def test_evaluate_restores_the_mode(digits):
    net = models.create("mlp", in_features=64).train()
    acc = evaluate(net, digits[1])
    assert 0.0 <= acc <= 1.0 and net.training


def test_fit_config_fits_inputs_classes_and_vocabularies(digits):
    train_set, _ = digits
    assert fit_config("mlp", train_set) == {"in_features": 64}
    assert fit_config("vit_tiny", train_set) == {"image_size": 8}
    assert fit_config("resnet_tiny", train_set) == {"image_size": 8}
    assert fit_config("lstm", load_dataset("majority")[0]) == {}
    assert fit_config("bert_tiny", load_dataset("majority_tokens")[0]) == {"vocab_size": 4, "num_classes": 4}
    with pytest.raises(NeurosimError, match="mnist-idx"):
        resolve_dataset("imagenet:/data")


def test_cli_train_and_models(tmp_path, capsys):
    out = tmp_path / "m.pt"
    rc = main(["train", "mlp", "--dataset", "digits", "--epochs", "2", "--lr", "0.01", "--set", "hidden=32", "--out", str(out),
               "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == "mlp" and d["epochs_run"] == 2 and d["test_accuracy"] > 0.5
    assert out.is_file() and models.load(out)[1].out_features == 32

    assert main(["train", "mlp", "--dataset", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'nope'" in err and "digits" in err and len(err.strip().splitlines()) == 1

    assert main(["models", "--json", "--family", "cnn"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet50"]["params"] == 25_557_032 and rows["resnet50"]["reference"] == "torchvision resnet50"
    assert "gpt2" not in rows


@pytest.mark.parametrize("module", ["neurosim", "neurosim.cli"])
def test_python_dash_m_runs_the_cli(module):
    """`python -m neurosim` and `python -m neurosim.cli` see every subcommand (not an empty registry)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", module, "hw", "list", "--json"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert any(row["key"] == "h200" for row in json.loads(r.stdout))
