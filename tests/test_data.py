"""Bundled data sets, the synthetic sequence task, and the loaders for local MNIST (IDX) and CIFAR-10 copies."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from models.data import (Dataset, datasets, load_cifar10, load_dataset, load_mnist_idx, majority_sequences,
                         read_idx)
from neurosim.errors import NeurosimError, UnknownNameError


def test_dataset_names_and_unknown_name():
    assert {"digits", "mnist5k", "majority", "majority_tokens"} <= set(datasets())
    with pytest.raises(UnknownNameError, match="mnist5k"):
        load_dataset("cifar100")


@pytest.mark.parametrize("name,n_train,n_test,shape", [
    ("digits", 1437, 360, (1, 8, 8)),
    ("mnist5k", 4000, 1000, (1, 28, 28)),
])
def test_bundled_images_have_fixed_stratified_splits(name, n_train, n_test, shape):
    train, test = load_dataset(name)
    assert (len(train), len(test)) == (n_train, n_test)
    for d in (train, test):
        assert d.input_shape == shape and d.x.dtype == torch.float32 and d.y.dtype == torch.int64
        assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
        assert d.num_classes == 10
    counts = torch.bincount(test.y, minlength=10)
    assert counts.min() >= n_test // 10 - 1 and counts.max() <= n_test // 10 + 1  # stratified
    again_train, again_test = load_dataset(name)
    assert torch.equal(again_test.x, test.x) and torch.equal(again_train.y, train.y)


def test_digits_split_is_the_seeded_sklearn_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    _, _, _, y_test = train_test_split(d.images, d.target, test_size=360, stratify=d.target, random_state=0)
    _, test = load_dataset("digits")
    assert test.y.tolist() == y_test.tolist()


def test_majority_task_labels_are_the_unique_most_frequent_symbol():
    s, y = majority_sequences(300, seq_len=9, num_symbols=3, seed=1)
    assert s.shape == (300, 9) and s.max() < 3
    counts = np.stack([(s == k).sum(1) for k in range(3)], 1)
    assert (counts.argmax(1) == y).all()
    assert ((counts == counts.max(1, keepdims=True)).sum(1) == 1).all()
    onehot, _ = load_dataset("majority")
    tokens, _ = load_dataset("majority_tokens")
    assert onehot.input_shape == (16, 4) and tokens.input_shape == (16,) and tokens.vocab_size == 4
    assert torch.equal(onehot.x.argmax(-1), tokens.x) and torch.equal(onehot.y, tokens.y)


def test_dataset_is_a_torch_dataset():
    train, _ = load_dataset("digits")
    x, y = train[3]
    assert x.shape == (1, 8, 8) and int(y) == int(train.y[3])
    sub = train.subset([0, 5, 7])
    assert len(sub) == 3 and torch.equal(sub.x[1], train.x[5])
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=16)))
    assert batch[0].shape == (16, 1, 8, 8)
    with pytest.raises(NeurosimError, match="labels"):
        Dataset("bad", torch.zeros(3, 2), torch.zeros(2, dtype=torch.long), 2)


# ---- local MNIST (IDX) ---------------------------------------------------------------------------------

def write_idx(path, array: np.ndarray, type_byte: int, compress: bool):
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_idx_reads_generated_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    sfx = ".gz" if compress else ""
    images = {s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 7), ("t10k", 3))}
    labels = {s: rng.integers(0, 10, len(images[s]), dtype=np.uint8) for s in images}
    for s in images:
        write_idx(tmp_path / f"{s}-images-idx3-ubyte{sfx}", images[s], 0x08, compress)
        write_idx(tmp_path / f"{s}-labels-idx1-ubyte{sfx}", labels[s], 0x08, compress)
    train, test = load_mnist_idx(tmp_path)
    assert train.x.shape == (7, 1, 28, 28) and test.x.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(train.x[:, 0].numpy(), images["train"] / 255.0, rtol=1e-6)
    assert test.y.tolist() == labels["t10k"].tolist() and train.y.dtype == torch.int64


def test_read_idx_other_types_and_spellings(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    write_idx(tmp_path / "f.idx", a, 0x0D, False)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), a)
    b = np.array([-3, 2, 1000], dtype=np.int32)
    write_idx(tmp_path / "i.idx.gz", b, 0x0C, True)
    np.testing.assert_array_equal(read_idx(tmp_path / "i.idx.gz"), b)
    # the "train-images.idx3-ubyte" spelling of some distributions
    for s, n in (("train", 2), ("t10k", 1)):
        write_idx(tmp_path / f"{s}-images.idx3-ubyte", np.zeros((n, 28, 28), np.uint8), 0x08, False)
        write_idx(tmp_path / f"{s}-labels.idx1-ubyte", np.ones(n, np.uint8), 0x08, False)
    train, test = load_mnist_idx(tmp_path)
    assert len(train) == 2 and test.y.tolist() == [1]


def test_idx_errors_are_helpful(tmp_path):
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(NeurosimError, match="magic"):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + b"abc")
    with pytest.raises(NeurosimError, match="5"):
        read_idx(tmp_path / "short.idx")
    with pytest.raises(NeurosimError, match="train-images-idx3-ubyte"):
        load_mnist_idx(tmp_path)
    with pytest.raises(NeurosimError, match="does not exist"):
        load_mnist_idx(tmp_path / "nowhere")


# ---- local CIFAR-10 (python pickles) ---------------------------------------------------------------------

def write_cifar(root, n_batches=2, n=4):
    rng = np.random.default_rng(0)
    d = root / "cifar-10-batches-py"
    d.mkdir()
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, n_batches + 1)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(d / name, "wb") as f:  # the original files: bytes keys, list labels
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": []}, f)
        written[name] = (data, labels)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                                      b"horse", b"ship", b"truck"]}, f)
    return d, written


def test_load_cifar10_reads_generated_batches(tmp_path):
    d, written = write_cifar(tmp_path)
    train, test = load_cifar10(tmp_path)  # the parent directory works too
    assert train.x.shape == (8, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    data, labels = written["data_batch_2"]
    i, c, h, w = 1, 2, 5, 7  # channel-major rows: index c*1024 + h*32 + w
    assert float(train.x[4 + i, c, h, w]) == pytest.approx(data[i, c * 1024 + h * 32 + w] / 255.0)
    assert train.y[4:].tolist() == labels and test.y.tolist() == written["test_batch"][1]
    assert train.classes[0] == "airplane" and len(train.classes) == 10
    train2, _ = load_cifar10(d)
    assert torch.equal(train2.x, train.x)


def test_cifar10_errors_are_helpful(tmp_path):
    d, _ = write_cifar(tmp_path, n_batches=1)
    (d / "test_batch").unlink()
    with pytest.raises(NeurosimError, match="test_batch"):
        load_cifar10(d)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(NeurosimError, match="CIFAR-10 shaped"):
        load_cifar10(d)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"nothing": 1}, f)
    with pytest.raises(NeurosimError, match="not a CIFAR-10 batch"):
        load_cifar10(d)
