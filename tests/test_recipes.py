"""Training recipes (models.recipes): the default is the trainer's old behaviour, the vit recipe's pieces
(warm-up + cosine per batch, label smoothing, pixel shifts, no early stopping) do what they say."""
from __future__ import annotations

import pytest
import torch

import models
from models.data import load_dataset
from models.recipes import RECIPES, Recipe, get_recipe
from models.train import train
from neurosim.errors import NeurosimError


def test_shift_moves_whole_images_by_at_most_shift_pixels():
    r = get_recipe("vit")
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    y = r.augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.all(y.sum((1, 2, 3)) == 1)  # nothing lost within +-2 of the centre
    pos = y[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert (rows - 4).abs().max() <= 2 and (cols - 4).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # really random
    tokens = torch.randint(0, 5, (4, 16))
    assert torch.equal(r.augment(tokens, torch.Generator()), tokens)  # token ids are left alone


def test_warmup_then_cosine_to_zero():
    r = get_recipe("vit")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = r.make_optimizer([p], 1.0)
    sched = r.make_scheduler(opt, epochs=10, steps_per_epoch=10)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < 0.05 and max(lrs) == pytest.approx(1.0, abs=0.02) and lrs.index(max(lrs)) in (49, 50)
    assert lrs[-1] < 0.01 and isinstance(opt, torch.optim.AdamW)
    assert get_recipe("default").make_scheduler(opt, 10, 10) is None


def test_label_smoothing_changes_the_loss():
    logits, y = torch.tensor([[5.0, 0.0]]), torch.tensor([0])
    assert get_recipe("vit").loss(logits, y) > get_recipe("default").loss(logits, y)


def test_default_recipe_is_the_old_trainer_and_vit_runs_every_epoch():
    tr, _ = load_dataset("digits")
    tr = tr.subset(torch.arange(300))
    outs = []
    for recipe in (None, "default"):
        torch.manual_seed(0)
        m = models.create("mlp", in_features=64, num_classes=10)
        train(m, tr, epochs=2, seed=0, progress=False, recipe=recipe)
        outs.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(0)
    m = models.create("mlp", in_features=64, num_classes=10)
    res = train(m, tr, epochs=4, seed=0, progress=False, recipe="vit", patience=1)
    assert res.epochs_run == 4 and not res.stopped_early  # no early stopping under a decaying schedule


def test_bad_recipes_are_refused():
    with pytest.raises(NeurosimError, match="unknown training recipe 'nope'; valid: default, vit"):
        get_recipe("nope")
    with pytest.raises(NeurosimError, match="schedule"):
        Recipe("x", schedule="step")
    with pytest.raises(NeurosimError, match="label_smoothing"):
        Recipe("x", label_smoothing=1.5)
    assert set(RECIPES) == {"default", "vit"}


def test_cli_refuses_an_unknown_recipe_before_training(capsys, tmp_path):
    from neurosim.cli import main

    assert main(["convert", "mlp", "--dataset", "digits", "--recipe", "nope",
                 "--checkpoint", str(tmp_path / "m.pt")]) == 2
    assert "unknown training recipe" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()
