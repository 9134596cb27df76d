"""A small, seeded CPU trainer for the zoo's classifiers.

``train(model, dataset, ...)`` runs Adam on cross-entropy with a held-out validation split taken from
the training set, keeps the weights of the best validation epoch, stops early after ``patience``
epochs without improvement, and writes a checkpoint (``models.save``: state_dict + config JSON with
the accuracies) that :func:`models.load` restores::

    import models
    from models.data import load_dataset
    from models.train import train, fit_config

    train_set, test_set = load_dataset("digits")
    net = models.create("mlp", **fit_config("mlp", train_set))      # in_features=64
    result = train(net, train_set, test=test_set, epochs=20, checkpoint="runs/mlp-digits.pt")
    result.test_accuracy                                             # ~0.97

The same seed gives the same result (shuffling, the validation split and dropout all draw from it;
seed model creation yourself, as :func:`train_model` does). The progress bar (tqdm) shows only when
``progress=True`` and stderr is a terminal.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from models.data import Dataset, load_cifar10, load_dataset, load_mnist_idx
from models.registry import config as model_config
from models.registry import create, save
from neurosim.errors import NeurosimError, check_writable


@dataclass
class TrainResult:
    """What a training run did: per-epoch loss and validation accuracy, the best epoch, test accuracy."""

    model: str
    dataset: str
    epochs_run: int
    best_epoch: int  # 1-based; its weights are the ones kept
    best_val_accuracy: float
    test_accuracy: float | None
    stopped_early: bool
    seconds: float
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    checkpoint: str | None = None
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def to_dataframe(self):
        """One row per epoch."""
        import pandas as pd

        return pd.DataFrame({
            "epoch": range(1, self.epochs_run + 1),
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
            "val_accuracy": self.val_accuracy,
            "best": [e + 1 == self.best_epoch for e in range(self.epochs_run)],
        })


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, (tuple, list)) or out.dim() != 2:
        shape = [tuple(o.shape) for o in out] if isinstance(out, (tuple, list)) else tuple(out.shape)
        raise NeurosimError(f"the trainer needs class logits [batch, classes], but the model returned {shape}; "
                            "build it with num_classes > 0 (see fit_config)")
    return out


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on ``dataset`` (eval mode; the previous mode is restored)."""
    was_training = model.training
    model.eval()
    correct = 0
    try:
        for i in range(0, len(dataset), batch_size):
            x, y = dataset.x[i:i + batch_size], dataset.y[i:i + batch_size]
            correct += int((_logits(model, x).argmax(dim=1) == y).sum())
    finally:
        model.train(was_training)
    return correct / max(1, len(dataset))


def _progress_enabled(progress: bool) -> bool:
    return bool(progress) and sys.stderr.isatty()


def train(model: nn.Module, dataset: Dataset, *, epochs: int = 10, lr: float = 1e-3, batch_size: int = 64,
          seed: int = 0, patience: int | None = 3, val_fraction: float = 0.1, weight_decay: float = 0.0,
          test: Dataset | None = None, checkpoint: str | Path | None = None, progress: bool = True,
          num_threads: int | None = 1, recipe=None) -> TrainResult:
    """Train a classifier in place; returns a :class:`TrainResult` and leaves the best weights loaded.

    ``val_fraction`` of ``dataset`` (a fixed, seeded subset) is held out for early stopping and model
    selection; ``patience=None`` or 0 never stops early. ``test`` is evaluated once, on the best
    weights. ``checkpoint`` writes ``models.save(model, checkpoint)`` with the accuracies as metadata.
    ``num_threads`` sets torch's intra-op threads for the run (restored afterwards): the zoo's small
    models train fastest on one thread, and on a shared machine extra threads mostly wait on each
    other (10x slower measured on 2 busy cores); ``None`` keeps torch's setting. ``recipe``: a
    :class:`models.recipes.Recipe` or its name (optimiser, schedule, label smoothing, augmentation).
    """
    threads_before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        return _train(model, dataset, epochs, lr, batch_size, seed, patience, val_fraction, weight_decay, test,
                      checkpoint, progress, recipe)
    finally:
        torch.set_num_threads(threads_before)


def _train(model, dataset, epochs, lr, batch_size, seed, patience, val_fraction, weight_decay, test, checkpoint,
           progress, recipe=None) -> TrainResult:
    from models.recipes import get_recipe

    recipe = get_recipe(recipe) or get_recipe("default")
    if not recipe.early_stopping:
        patience = None
    if epochs < 1 or batch_size < 1 or not (math.isfinite(lr) and lr > 0):
        raise NeurosimError(f"train: epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    if not 0 < val_fraction < 1:
        raise NeurosimError(f"train: val_fraction must be in (0, 1), got {val_fraction}")
    if checkpoint is not None and getattr(model, "neurosim_config", None) is None:
        raise NeurosimError("train: checkpoint= needs a model made by models.create()")
    torch.manual_seed(seed)  # dropout
    gen = torch.Generator().manual_seed(seed)
    n_val = max(1, int(round(len(dataset) * val_fraction)))
    perm = torch.randperm(len(dataset), generator=gen)
    val_set, train_set = dataset.subset(perm[:n_val]), dataset.subset(perm[n_val:])

    opt = recipe.make_optimizer(model.parameters(), lr, weight_decay)
    steps = math.ceil(len(train_set) / batch_size)
    sched = recipe.make_scheduler(opt, epochs, steps)
    best_acc, best_epoch, best_state, stale = -1.0, 0, None, 0
    res = TrainResult(getattr(model, "neurosim_config", {}).get("name", type(model).__name__), dataset.name, 0, 0,
                      0.0, None, False, 0.0, seed=seed)
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    bar = tqdm(total=epochs * steps, disable=not _progress_enabled(progress), desc=f"train {res.model}",
               unit="batch", leave=False)
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(train_set), generator=gen)
            loss_sum, correct = 0.0, 0
            for i in range(0, len(train_set), batch_size):
                idx = order[i:i + batch_size]
                x, y = recipe.augment(train_set.x[idx], gen), train_set.y[idx]
                logits = _logits(model, x)
                loss = recipe.loss(logits, y)
                if not torch.isfinite(loss):
                    raise NeurosimError(f"training diverged: the loss is {float(loss.detach())} at epoch {epoch}, batch "
                                        f"{i // batch_size + 1} (lr={lr:g}); lower the learning rate")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y).sum())
                bar.update(1)
            val_acc = evaluate(model, val_set)
            res.train_loss.append(loss_sum / len(train_set))
            res.train_accuracy.append(correct / len(train_set))
            res.val_accuracy.append(val_acc)
            res.epochs_run = epoch
            bar.set_postfix(epoch=epoch, loss=f"{res.train_loss[-1]:.3f}", val_acc=f"{val_acc:.3f}")
            if val_acc > best_acc:
                best_acc, best_epoch, stale = val_acc, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if patience and stale >= patience:
                    res.stopped_early = epoch < epochs
                    break
    finally:
        bar.close()
    model.load_state_dict(best_state)
    model.eval()
    res.best_epoch, res.best_val_accuracy = best_epoch, best_acc
    if test is not None:
        res.test_accuracy = evaluate(model, test)
    res.seconds = time.perf_counter() - t0
    if checkpoint is not None:
        extra = {"dataset": dataset.name, "val_accuracy": best_acc, "test_accuracy": res.test_accuracy,
                 "best_epoch": best_epoch, "epochs_run": res.epochs_run, "seed": seed, "lr": lr,
                 "batch_size": batch_size, **({"recipe": recipe.describe()} if recipe.name != "default" else {})}
        res.checkpoint = str(save(model, checkpoint, extra=extra))
    return res


# ---- glue for the CLI: data set specs, config fitting ------------------------------------------------


def resolve_dataset(spec: str) -> tuple[Dataset, Dataset]:
    """A bundled name (``digits``, ``mnist5k``, ...), ``mnist-idx:DIR`` or ``cifar10:DIR``."""
    kind, _, path = spec.partition(":")
    if path:
        loaders = {"mnist-idx": load_mnist_idx, "cifar10": load_cifar10}
        if kind not in loaders:
            raise NeurosimError(f"unknown data set source {kind!r} in {spec!r}; use mnist-idx:DIR or cifar10:DIR")
        return loaders[kind](path)
    return load_dataset(spec)


def fit_config(name: str, dataset: Dataset) -> dict:
    """Overrides that fit model ``name`` to ``dataset``'s input shape, classes and vocabulary.

    Only options the model has are set: ``num_classes``; for images ``in_channels``, ``image_size``
    (square); ``in_features`` (flattened) for any real input; for sequences ``input_size``; for tokens
    ``vocab_size``. Options already equal to the model's defaults are left out.
    """
    cfg = model_config(name)
    want: dict = {"num_classes": dataset.num_classes}
    shape = dataset.input_shape
    if dataset.vocab_size is not None:
        want["vocab_size"] = dataset.vocab_size
    else:
        want["in_features"] = math.prod(shape)  # MLPs flatten any input
        if len(shape) == 3:
            want["in_channels"] = shape[0]
            if shape[1] == shape[2]:
                want["image_size"] = shape[1]
        elif len(shape) == 2:
            want["input_size"] = shape[1]
    return {k: v for k, v in want.items() if k in cfg and cfg[k] != v}


def train_model(name: str, dataset: str, *, overrides: dict | None = None, out: str | Path | None = None,
                seed: int = 0, **train_kw) -> tuple[nn.Module, TrainResult]:
    """Create ``name`` fitted to data set ``dataset`` (seeded), train it, evaluate on the test split."""
    train_set, test_set = resolve_dataset(dataset)
    takes_tokens = "vocab_size" in model_config(name)
    if takes_tokens != (train_set.vocab_size is not None):
        raise NeurosimError(f"model {name!r} takes {'token ids' if takes_tokens else 'real-valued inputs'} but data set "
                            f"{dataset!r} holds {'token ids' if train_set.vocab_size is not None else 'real values'}; "
                            f"token data sets: majority_tokens")
    if out is not None:
        check_writable(out, "checkpoint")
    cfg = {**fit_config(name, train_set), **(overrides or {})}
    torch.manual_seed(seed)
    model = create(name, **cfg)
    result = train(model, train_set, test=test_set, checkpoint=out, seed=seed, **train_kw)
    return model, result
