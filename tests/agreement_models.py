"""Small ANNs trained on the bundled digits set (8x8) and converted, for the backend agreement tests.

The trained weights are stored under ``tests/golden/backends/`` (written by
``python tests/agreement_models.py``: 8 / 4 epochs of Adam on the digits training split, seed 0), so
the tests only convert and simulate; without the files the models are trained on the fly."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn


class _ResCNN(nn.Module):
    """conv -> relu -> maxpool -> [conv -> relu -> conv] + skip -> relu -> avgpool -> fc."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.mp = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 8, 3, padding=1)
        self.ap = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x):
        h = self.mp(torch.relu(self.c1(x)))
        r = self.c3(torch.relu(self.c2(h)))
        h = torch.relu(r + h)
        return self.fc(torch.flatten(self.ap(h), 1))


@functools.lru_cache(maxsize=None)
def digits():
    from models.data import load_dataset

    train, test = load_dataset("digits")
    return (train.x.float(), train.y.long()), (test.x.float(), test.y.long())


GOLDEN = Path(__file__).parent / "golden" / "backends"


def _arch(kind: str) -> nn.Module:
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))
    return _ResCNN()


@functools.lru_cache(maxsize=None)
def trained(kind: str):
    model = _arch(kind)
    path = GOLDEN / f"{kind}.pt"
    if path.is_file():
        model.load_state_dict(torch.load(path))
        return model.eval()
    return _train(kind, model)


def _train(kind: str, model: nn.Module) -> nn.Module:
    (x, y), _ = digits()
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xi = x if kind != "mlp" else x
    for _ in range(8 if kind == "mlp" else 4):
        perm = torch.randperm(len(xi))
        for s in range(0, len(xi), 32):
            idx = perm[s:s + 32]
            loss = nn.functional.cross_entropy(model(xi[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@functools.lru_cache(maxsize=None)
def converted(kind: str, **options):
    import neurosim

    (x, _), _ = digits()
    return neurosim.convert(trained(kind), x[:500], **options)


def sample_inputs(n: int):
    _, (x, y) = digits()
    return x[:n].numpy().astype(np.float32), y[:n].numpy()


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).parent.parent))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for kind in ("mlp", "cnn"):
        torch.save(_train(kind, _arch(kind)).state_dict(), GOLDEN / f"{kind}.pt")
        print("wrote", GOLDEN / f"{kind}.pt")
