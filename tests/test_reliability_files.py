"""Hostile and broken data files: CIFAR-10 pickles that try to run code, IDX files with no samples or
bad labels. Each is one line, exit 2, nothing run and nothing written."""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from reliability_cli import refused  # noqa: E402
from test_data import write_cifar  # noqa: E402

from models.data import load_cifar10, load_mnist_idx  # noqa: E402
from neurosim.errors import NeurosimError  # noqa: E402


class _Evil:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def _cifar_with(tmp_path, name, obj, protocol=4):
    d, _ = write_cifar(tmp_path)
    with open(d / name, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return d


@pytest.mark.parametrize("where", ["data_batch_1", "test_batch", "batches.meta"])
def test_a_cifar_batch_cannot_run_code(tmp_path, capsys, where):
    sentinel = tmp_path / "pwned"
    evil = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3], b"x": _Evil(sentinel)}
    d = _cifar_with(tmp_path, where, evil)
    out = tmp_path / "runs"
    line = refused(capsys, "train", "mlp", "--dataset", f"cifar10:{d}", "--epochs", "1", "--out", out / "m.pt",
                   written_under=tmp_path, match="refused to load global")
    assert "system" in line
    assert not sentinel.exists(), "the pickle ran a shell command"


def test_cifar_object_arrays_and_garbage_are_refused(tmp_path):
    d = _cifar_with(tmp_path, "test_batch", {b"data": np.array([object()] * 4), b"labels": [0, 1, 2, 3]})
    with pytest.raises(NeurosimError):
        load_cifar10(d)
    (d / "test_batch").write_bytes(os.urandom(300))
    with pytest.raises(NeurosimError, match="cannot read CIFAR-10 batch"):
        load_cifar10(d)
    (d / "test_batch").write_bytes(b"")
    with pytest.raises(NeurosimError, match="cannot read CIFAR-10 batch"):
        load_cifar10(d)


def test_cifar_labels_must_be_0_to_9(tmp_path):
    d = _cifar_with(tmp_path, "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]})
    with pytest.raises(NeurosimError, match="0..9"):
        load_cifar10(d)


def test_python2_style_cifar_batches_still_load(tmp_path):
    """The real files are protocol-2 pickles with bytes keys: the restricted unpickler reads them."""
    d, written = write_cifar(tmp_path)
    for name, (data, labels) in written.items():
        with open(d / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"a.png"] * len(labels)}, f, protocol=2)
    train, test = load_cifar10(d)
    assert train.x.shape == (8, 3, 32, 32) and test.y.tolist() == written["test_batch"][1]


def _idx(path: Path, arr: np.ndarray):
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(header + arr.astype(arr.dtype.newbyteorder(">")).tobytes())


def _mnist(tmp_path, n=3, labels=None):
    d = tmp_path / "mnist"
    d.mkdir(exist_ok=True)
    for split in ("train", "t10k"):
        _idx(d / f"{split}-images-idx3-ubyte", np.zeros((n, 28, 28), np.uint8))
        _idx(d / f"{split}-labels-idx1-ubyte", np.asarray(labels if labels is not None else [0] * n, np.uint8))
    return d


def test_idx_with_no_samples_is_refused(tmp_path, capsys):
    d = _mnist(tmp_path, n=0)
    refused(capsys, "train", "mlp", "--dataset", f"mnist-idx:{d}", "--epochs", "1", "--out", tmp_path / "r/m.pt",
            written_under=tmp_path, match="no samples")


def test_idx_labels_out_of_range_are_refused(tmp_path):
    d = _mnist(tmp_path, n=2, labels=[3, 12])
    with pytest.raises(NeurosimError, match="0..9"):
        load_mnist_idx(d)
