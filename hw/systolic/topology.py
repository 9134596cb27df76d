"""Layers for the systolic simulator, and SCALE-Sim v2's topology CSVs.

A layer is a convolution in SCALE-Sim's terms (no padding: pad the input dims yourself, or come through
:mod:`hw.systolic.workload`, which does). It becomes the GEMM the array computes::

    OH = ceil((H - R + stride_h) / stride_h)      OW = ceil((W - S + stride_w) / stride_w)
    M = batch * OH * OW   (output pixels: rows of the im2col ifmap operand)
    K = R * S * C         (the convolution window: its columns, the filter operand's rows)
    N = filters           (the filter operand's columns)

A GEMM ``Layer,M,N,K`` is the convolution SCALE-Sim makes of it: an ``M x K`` input, a ``1 x K`` filter,
one channel, ``N`` filters, stride 1.

SCALE-Sim's ``ceil`` counts a last, partial window when ``(H - R)`` is not a multiple of the stride (``floor + 1``
would not): the words of that window that fall outside the input are simply not read. We keep that rule
for topology files; layers made from torch modules use the extent the convolution really reads, where
both rules agree.

Topology CSV (conv): ``name, IFMAP H, IFMAP W, Filter H, Filter W, Channels, Num Filter, Stride[, Stride W]``,
one header line first (always skipped, as SCALE-Sim does), trailing commas allowed, blank rows skipped,
columns after the ninth ignored. A layer whose name contains ``DP`` is depthwise: SCALE-Sim expands it into
one single-channel layer per channel (``<name>Channel_<i>``), and so do we. GEMM CSV: ``name, M, N, K``.

SCALE-Sim 3.0.0 topologies end a row with a ``Sparsity`` column ``N:M`` (N of every M consecutive filter
weights, in the convolution window's order, are kept): the ninth column of a convolution row (3.0.0 has no
separate column stride: its Stride is both), the fifth of a GEMM row. A ninth column with a ``:`` is read as
sparsity, a plain integer as 2.0.2's column stride. The ratio is simulated only when the config enables
``[sparsity] SparsitySupport`` (as in 3.0.0).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hw.systolic.config import INT_MAX, ConfigError
from neurosim.errors import NeurosimError

CONV_FIELDS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")
GEMM_FIELDS = ("M", "N", "K")
MAX_LAYERS = 100_000  # a topology (after depthwise expansion) with more layers is refused before it is built
MAX_MACS = 2 ** 62    # M * K * N of one layer must fit the simulator's int64 counters


@dataclass(frozen=True)
class Layer:
    """One convolution (or GEMM) layer; ``repeat`` identical instances run back to back (groups, heads)."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride_h: int = 1
    stride_w: int = 1
    batch: int = 1
    repeat: int = 1
    kind: str = "conv"  # "conv" or "gemm" (what the layer came from; the simulation is the same)
    dilation_h: int = 1  # beyond SCALE-Sim: dilated windows (torch convs); the filter extent is d*(R-1)+1
    dilation_w: int = 1
    sparsity_n: int = 1  # SCALE-Sim 3.0.0's N:M weight sparsity (1:1 is dense)
    sparsity_m: int = 1

    def __post_init__(self):
        for f in ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride_h", "stride_w",
                  "batch", "repeat", "dilation_h", "dilation_w", "sparsity_n", "sparsity_m"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1 or v > INT_MAX:
                raise NeurosimError(f"layer {self.name!r}: {f} must be a positive integer up to {INT_MAX:,}, "
                                    f"got {v!r}")
        if self.sparsity_n > self.sparsity_m:
            raise NeurosimError(f"layer {self.name!r}: sparsity {self.sparsity_n}:{self.sparsity_m} keeps more than "
                                f"all weights (N:M needs N <= M)")
        if self.extent_h > self.ifmap_h or self.extent_w > self.ifmap_w:
            raise NeurosimError(f"layer {self.name!r}: filter {self.extent_h}x{self.extent_w} is larger than its "
                                f"input {self.ifmap_h}x{self.ifmap_w}")
        if self.M * self.K * self.N > MAX_MACS:
            raise NeurosimError(f"layer {self.name!r}: {self.M:,} x {self.K:,} x {self.N:,} MACs do not fit the "
                                f"simulator's 64-bit counters")

    @property
    def extent_h(self) -> int:
        return self.dilation_h * (self.filter_h - 1) + 1

    @property
    def extent_w(self) -> int:
        return self.dilation_w * (self.filter_w - 1) + 1

    @classmethod
    def gemm(cls, name: str, m: int, n: int, k: int, repeat: int = 1, sparsity: tuple[int, int] = (1, 1)) -> "Layer":
        """``[m, k] x [k, n]`` as SCALE-Sim maps it: input ``m x k``, filter ``1 x k``, ``n`` filters."""
        return cls(name, m, k, 1, k, 1, n, 1, 1, 1, repeat, "gemm", sparsity_n=sparsity[0], sparsity_m=sparsity[1])

    @property
    def sparse(self) -> bool:
        return self.sparsity_n < self.sparsity_m

    @property
    def kept_windows(self):
        """Window indices (rows of the filter operand) an N:M sparse filter keeps: ``j % M < N``."""
        import numpy as np

        j = np.arange(self.K, dtype=np.int64)
        return j[j % self.sparsity_m < self.sparsity_n]

    @property
    def sparse_K(self) -> int:
        """Filter rows left after N:M compression: ``(K // M) * N + min(K % M, N)``."""
        return (self.K // self.sparsity_m) * self.sparsity_n + min(self.K % self.sparsity_m, self.sparsity_n)

    @property
    def ofmap_h(self) -> int:
        return -(-(self.ifmap_h - self.extent_h + self.stride_h) // self.stride_h)

    @property
    def ofmap_w(self) -> int:
        return -(-(self.ifmap_w - self.extent_w + self.stride_w) // self.stride_w)

    @property
    def M(self) -> int:
        return self.batch * self.ofmap_h * self.ofmap_w

    @property
    def K(self) -> int:
        return self.filter_h * self.filter_w * self.channels

    @property
    def N(self) -> int:
        return self.num_filters

    @property
    def macs(self) -> int:
        """MACs of one instance: ``M * K * N``."""
        return self.M * self.K * self.N


def _fields(line: str) -> list[str]:
    f = [x.strip() for x in line.split(",")]
    while f and f[-1] == "":
        f.pop()
    return f


def _pos(path, n, field, value):
    try:
        v = int(value)
    except ValueError:
        raise ConfigError(path, n, field, f"{value[:40]!r} is not an integer") from None
    if v < 1:
        raise ConfigError(path, n, field, f"must be a positive integer, got {v}")
    if v > INT_MAX:
        raise ConfigError(path, n, field, f"{value[:40]} is too large (at most {INT_MAX:,})")
    return v


def _ratio(path, n, value):
    """``"N:M"`` -> (N, M), SCALE-Sim 3.0.0's Sparsity column."""
    parts = value.split(":")
    if len(parts) != 2:
        raise ConfigError(path, n, "Sparsity", f"{value[:40]!r} is not N:M (e.g. 2:4)")
    nn, m = (_pos(path, n, "Sparsity", x.strip()) for x in parts)
    if nn > m:
        raise ConfigError(path, n, "Sparsity", f"{value} keeps more than all weights: N:M needs N <= M")
    return nn, m


def _layer(path, n, make, *args, **kw):
    try:
        return make(*args, **kw)
    except NeurosimError as e:
        raise ConfigError(path, n, None, str(e)) from None


def read_topology(path: str | os.PathLike, kind: str = "conv") -> list[Layer]:
    """Read a SCALE-Sim topology CSV (``kind`` ``"conv"`` or ``"gemm"``, SCALE-Sim's ``-i``) into layers."""
    if kind not in ("conv", "gemm"):
        raise NeurosimError(f"topology kind must be 'conv' or 'gemm', got {kind!r}")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, None, "topology file not found")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, None, None, f"cannot read topology: {e}") from None
    layers: list[Layer] = []
    names = GEMM_FIELDS if kind == "gemm" else CONV_FIELDS
    for n, line in enumerate(lines[1:], 2):
        f = _fields(line)
        if not f:
            continue
        name = f[0]
        if not name:
            raise ConfigError(path, n, "Layer name", "is empty")
        if len(f) < 1 + len(names):
            missing = names[len(f) - 1]
            raise ConfigError(path, n, missing, f"missing: a {kind} row needs {len(names)} numbers after the name "
                                                f"({', '.join(names)}), this one has {len(f) - 1}")
        if kind == "gemm" and len(f) - 1 >= len(CONV_FIELDS):
            raise ConfigError(path, n, None, f"a GEMM row is Layer,M,N,K[,Sparsity] but this one has {len(f) - 1} "
                                             f"fields after the name: a convolution topology? (use -i conv)")
        v = [_pos(path, n, names[i], f[1 + i]) for i in range(len(names))]
        if kind == "gemm":
            m, nn, k = v
            if len(layers) + 1 > MAX_LAYERS:
                raise ConfigError(path, n, "Layer name", f"more than {MAX_LAYERS:,} layers")
            sp = _ratio(path, n, f[4]) if len(f) > 4 and f[4] != "" else (1, 1)
            layers.append(_layer(path, n, Layer.gemm, name, m, nn, k, sparsity=sp))
            continue
        h, w, r, s, c, k, sh = v
        sp = (1, 1)
        sw = sh
        if len(f) > 8 and f[8] != "":
            if ":" in f[8]:  # SCALE-Sim 3.0.0's Sparsity column
                sp = _ratio(path, n, f[8])
            else:
                sw = _pos(path, n, "Stride Width", f[8])
                if len(f) > 9 and ":" in f[9]:
                    sp = _ratio(path, n, f[9])
        if r > h:
            raise ConfigError(path, n, "Filter Height", f"{r} is larger than IFMAP Height {h}")
        if s > w:
            raise ConfigError(path, n, "Filter Width", f"{s} is larger than IFMAP Width {w}")
        if len(layers) + (c if "DP" in name else 1) > MAX_LAYERS:
            raise ConfigError(path, n, "Channels" if "DP" in name else "Layer name",
                              f"the topology would have {len(layers) + (c if 'DP' in name else 1):,} layers "
                              f"(a depthwise 'DP' row becomes one layer per channel); at most {MAX_LAYERS:,}")
        if "DP" in name:  # SCALE-Sim's depthwise convention: one single-channel layer per channel
            layers.extend(Layer(f"{name}Channel_{i}", h, w, r, s, 1, k, sh, sw, sparsity_n=sp[0], sparsity_m=sp[1])
                          for i in range(c))
        else:
            layers.append(_layer(path, n, Layer, name, h, w, r, s, c, k, sh, sw, sparsity_n=sp[0], sparsity_m=sp[1]))
    if not layers:
        raise ConfigError(path, len(lines), None, "no layers: the file has a header line and nothing after it")
    return layers
