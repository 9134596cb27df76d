"""The hardware catalog: ``hw/catalog/*.toml`` loaded into frozen dataclasses, one per device family.

Every number in the catalog names its source (a paper, a datasheet, a documentation page) in the device's
``sources`` table; the loader refuses a number without one, and refuses fields it does not know (a typo in
a TOML file fails loudly instead of silently dropping a number). Units are in the field names:
``peak_tflops`` (10^12 FLOP/s per precision, dense), ``sparse_tflops`` (2:4 structured sparsity),
``mem_bw_gb_s`` (10^9 B/s), ``memory_gb`` (10^9 B), ``tdp_w``, ``e_synop_pj`` ...

>>> import hw
>>> hw.get("a100_80gb").peak_tflops["bf16"]
312.0
>>> hw.names("tpu")
['tpu_v2', 'tpu_v3', 'tpu_v4', 'tpu_v5e', 'tpu_v5p']
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

try:  # Python 3.11+
    import tomllib
except ImportError:  # Python 3.10: the tomli backport (a dependency with a python_version marker)
    import tomli as tomllib

from neurosim.errors import NeurosimError, UnknownNameError

CATALOG_DIR = Path(__file__).parent / "catalog"
FAMILIES = ("gpu", "tpu", "cpu", "neuromorphic")

#: Canonical precision names and the aliases users (and torch dtypes) spell them with.
PRECISION_ALIASES = {
    "fp64": "fp64", "float64": "fp64", "double": "fp64",
    "fp32": "fp32", "float32": "fp32", "float": "fp32",
    "tf32": "tf32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
    "fp8": "fp8", "float8": "fp8", "float8_e4m3fn": "fp8", "float8_e5m2": "fp8",
    "int8": "int8",
}
#: Bytes per element a tensor occupies at each precision (tf32 is stored as fp32).
BYTES_PER_ELEMENT = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}


def canonical_precision(p: str) -> str:
    """``"bfloat16"`` -> ``"bf16"``; unknown names raise with the list of valid ones."""
    key = str(p).lower().replace("torch.", "")
    if key not in PRECISION_ALIASES:
        raise NeurosimError(f"unknown precision {p!r}; valid: {', '.join(sorted(set(PRECISION_ALIASES.values())))}")
    return PRECISION_ALIASES[key]


def _frozen(d: Mapping | None) -> Mapping:
    return MappingProxyType({k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                             for k, v in (d or {}).items()})


@dataclass(frozen=True, kw_only=True)
class DeviceSpec:
    """What every catalog entry has: identity and the source of each number."""

    key: str  # the catalog name: "a100_80gb"
    name: str  # the product name
    family: str
    vendor: str
    year: int
    sources: Mapping[str, str] = field(default_factory=dict)

    def source(self, field_name: str) -> str:
        """Where ``field_name``'s value comes from (``peak_tflops`` covers all its precisions)."""
        return self.sources.get(field_name, "")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = dict(v) if isinstance(v, Mapping) else v
        return out


@dataclass(frozen=True, kw_only=True)
class RooflineSpec(DeviceSpec):
    """A device costed by the roofline: peaks per precision, memory size and bandwidth, power.

    ``typical_power_w`` is a *measured* average power while training, where published (Patterson et al.
    2021, Table 3); ``idle_power_w`` a measured idle/min power. Both feed the utilisation power model in
    :mod:`hw.energy`.
    """

    peak_tflops: Mapping[str, float] = field(default_factory=dict)
    sparse_tflops: Mapping[str, float] = field(default_factory=dict)
    mem_bw_gb_s: float
    memory_gb: float | None = None
    tdp_w: float | None = None
    typical_power_w: float | None = None
    idle_power_w: float | None = None
    memory_preset: str | None = None  # a hw.memory preset (hbm2, hbm2e, hbm3, ddr4_3200, ...)
    memory_stacks: int | None = None  # how many of it (HBM stacks, DDR channels): hw.memory.device_memory

    def __post_init__(self):
        object.__setattr__(self, "peak_tflops", _frozen(self.peak_tflops))
        object.__setattr__(self, "sparse_tflops", _frozen(self.sparse_tflops))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        if not self.peak_tflops:
            raise NeurosimError(f"catalog: {self.key} has no peak_tflops")
        for p in list(self.peak_tflops) + list(self.sparse_tflops):
            if p not in BYTES_PER_ELEMENT and p != "fp64":
                raise NeurosimError(f"catalog: {self.key} has unknown precision {p!r}")

    @property
    def precisions(self) -> list[str]:
        return list(self.peak_tflops)

    def peak_flops(self, precision: str, *, sparse: bool = False) -> float:
        """Peak FLOP/s (OP/s for int8) at ``precision``; ``sparse`` uses the 2:4 structured-sparsity peak."""
        p = canonical_precision(precision)
        table = self.sparse_tflops if sparse else self.peak_tflops
        if p not in table:
            kind = "sparse " if sparse else ""
            raise NeurosimError(f"{self.key} has no {kind}peak for {p}; it lists: {', '.join(table) or 'none'}")
        return table[p] * 1e12

    @property
    def mem_bw_bytes_s(self) -> float:
        return self.mem_bw_gb_s * 1e9

    @property
    def memory_bytes(self) -> float | None:
        return None if self.memory_gb is None else self.memory_gb * 1e9


@dataclass(frozen=True, kw_only=True)
class GPUSpec(RooflineSpec):
    """A GPU: ``fp32`` is the CUDA-core (vector) rate; tf32/fp16/bf16/fp8/int8 are tensor-core rates."""


@dataclass(frozen=True, kw_only=True)
class CPUSpec(RooflineSpec):
    """A CPU socket: peaks from cores x clock x SIMD FMA width (see its sources)."""

    cores: int
    clock_mhz: float


@dataclass(frozen=True, kw_only=True)
class TPUSpec(RooflineSpec):
    """A TPU chip: ``mxus`` systolic arrays of ``mxu_dim`` x ``mxu_dim`` at ``clock_mhz``.

    The bf16 peak is ``mxus * 2 * mxu_dim**2 * clock`` (one MAC per cell per cycle, 2 FLOPs per MAC).
    ``clock_derived`` marks chips whose clock Google does not publish (derived from that formula).
    """

    tensorcores: int
    mxus: int
    mxu_dim: int = 128
    clock_mhz: float
    clock_derived: bool = False
    hbm_gib: float | None = None  # Google gives v2-v4 HBM in GiB and v5e/v5p in GB (then memory_gb is set)
    pod_chips: int

    def __post_init__(self):
        if self.hbm_gib is not None:
            object.__setattr__(self, "memory_gb", self.hbm_gib * 2**30 / 1e9)
            object.__setattr__(self, "sources", {**self.sources, "memory_gb": "DERIVED: hbm_gib x 2^30 / 10^9"})
        if self.memory_gb is None:
            raise NeurosimError(f"catalog: {self.key} needs hbm_gib or memory_gb")
        super().__post_init__()

    @property
    def mxu_peak_flops(self) -> float:
        """``mxus x 2 x mxu_dim^2 x clock`` in FLOP/s."""
        return self.mxus * 2 * self.mxu_dim**2 * self.clock_mhz * 1e6


@dataclass(frozen=True, kw_only=True)
class NeuromorphicSpec(DeviceSpec):
    """A neuromorphic chip; per-event energies (pJ) and times (ns) where published, ``None`` where not.

    ``energy_proxy`` names another chip whose per-event energies stand in for unpublished ones (the cost
    report says so). ``static_included`` marks a per-event energy measured as total chip energy over events
    (TrueNorth), which already contains static power.
    """

    process_nm: int | None = None
    process: str | None = None
    cores: int
    tiles: int | None = None
    neurons_per_core: int | None = None
    synaptic_memory_kib_per_core: float | None = None
    input_axons_per_core: int | None = None   # fan-in axon routes a core accepts (Loihi)
    output_axons_per_core: int | None = None  # fan-out axon routes a core sends on (Loihi)
    synapses_per_core: int | None = None
    synapses_per_chip: int | None = None
    sram_kib_per_core: float | None = None
    dtcm_kib_per_core: float | None = None
    sdram_mib: float | None = None
    weight_bits: int | None = None
    e_synop_pj: float | None = None
    e_synop_learning_pj: float | None = None
    e_neuron_update_pj: float | None = None
    e_neuron_idle_pj: float | None = None
    e_spike_pj: float | None = None
    e_hop_pj: float | None = None
    t_synop_ns: float | None = None
    t_neuron_update_ns: float | None = None
    t_neuron_idle_ns: float | None = None
    barrier_sync_ns: float | None = None
    timestep_us: float | None = None
    static_power_mw: float | None = None
    chip_power_w: float | None = None
    static_included: bool = False
    energy_proxy: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def synapse_capacity_per_core(self) -> float | None:
        """Synapses one core holds: published; or synaptic memory bits / weight bits (an upper bound that
        ignores index overhead); or the chip's synapses spread over its cores; or local SRAM (SpiNNaker 2)
        or shared SDRAM (SpiNNaker) bits / weight bits."""
        if self.synapses_per_core:
            return float(self.synapses_per_core)
        if self.synaptic_memory_kib_per_core and self.weight_bits:
            return self.synaptic_memory_kib_per_core * 1024 * 8 / self.weight_bits
        if self.synapses_per_chip:
            return self.synapses_per_chip / self.cores
        if self.sram_kib_per_core and self.weight_bits:  # SpiNNaker 2: weights in the PE's local SRAM
            return self.sram_kib_per_core * 1024 * 8 / self.weight_bits
        if self.sdram_mib and self.weight_bits:  # SpiNNaker: weights in the chip's shared SDRAM
            return self.sdram_mib * 2**20 * 8 / self.weight_bits / self.cores
        return None


_CLASSES = {"gpu": GPUSpec, "tpu": TPUSpec, "cpu": CPUSpec, "neuromorphic": NeuromorphicSpec}
_META = {"key", "name", "family", "vendor", "year", "sources", "process", "clock_derived", "static_included",
         "energy_proxy"}


def _build(family: str, key: str, entry: dict) -> DeviceSpec:
    cls = _CLASSES[family]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise NeurosimError(f"catalog {family}.toml [{key}]: unknown field(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known - {'key', 'family'}))}")
    sources = entry.get("sources", {})
    missing = [k for k, v in entry.items()
               if k not in _META and v not in (None, {}) and k not in sources]
    if missing:
        raise NeurosimError(f"catalog {family}.toml [{key}]: no source for {', '.join(missing)}")
    try:
        spec = cls(key=key, family=family, **entry)
    except TypeError as e:
        raise NeurosimError(f"catalog {family}.toml [{key}]: {e}") from e
    for f in fields(spec):
        v = getattr(spec, f.name)
        if isinstance(v, float) and not (math.isfinite(v) and v >= 0):
            raise NeurosimError(f"catalog {family}.toml [{key}]: {f.name}={v} must be a finite non-negative number")
    return spec


@lru_cache(maxsize=None)
def catalog() -> Mapping[str, DeviceSpec]:
    """All devices, keyed by name, in family order (gpu, tpu, cpu, neuromorphic)."""
    out: dict[str, DeviceSpec] = {}
    for family in FAMILIES:
        with open(CATALOG_DIR / f"{family}.toml", "rb") as fh:
            data = tomllib.load(fh)
        for key, entry in data.items():
            if key in out:
                raise NeurosimError(f"catalog: device {key!r} defined twice")
            out[key] = _build(family, key, dict(entry))
    return MappingProxyType(out)


def get(name: str) -> DeviceSpec:
    """The device called ``name`` (e.g. ``"h100_sxm"``); unknown names raise with the valid ones."""
    cat = catalog()
    if name not in cat:
        raise UnknownNameError("device", name, cat)
    return cat[name]


def names(family: str | None = None) -> list[str]:
    """Device names in catalog order, optionally only one ``family`` (gpu, tpu, cpu, neuromorphic)."""
    if family is not None and family not in FAMILIES:
        raise UnknownNameError("device family", family, FAMILIES)
    return [k for k, s in catalog().items() if family is None or s.family == family]


# ---- the other catalog tables: 45 nm op energies, grid carbon intensity ------------------------------

@lru_cache(maxsize=None)
def energy45nm() -> Mapping[str, Any]:
    """Horowitz (ISSCC 2014) 45 nm energies: ``add_pj``, ``mult_pj`` per precision, ``memory_64bit_pj``."""
    with open(CATALOG_DIR / "energy45nm.toml", "rb") as fh:
        return MappingProxyType(tomllib.load(fh))


@lru_cache(maxsize=None)
def regions() -> Mapping[str, Any]:
    """Grid carbon intensities ``{region: {"kg_per_kwh", "source"}}`` plus ``"default"``."""
    with open(CATALOG_DIR / "regions.toml", "rb") as fh:
        return MappingProxyType(tomllib.load(fh))
