"""The memory of a catalog device as a simulator config: ``device_memory("a100_80gb") -> DeviceMemory``.

A catalog entry (``hw/catalog/*.toml``) names its memory preset and how many instances of it the chip has
(``memory_preset = "hbm2e"``, ``memory_stacks = 5``: HBM stacks, or DDR channels for a CPU socket), each with
a source. The device's memory is that many independent copies of the preset, each run at the per-pin data
rate that makes the total peak equal the catalog's ``mem_bw_gb_s`` (vendors ship HBM at speed bins between
the JEDEC points our presets sit on: the A100 40GB's HBM2 runs at 2.43 Gb/s, the preset at 2.0):

    pin rate (Gb/s)  = mem_bw_gb_s x 8 / (stacks x channels x bus_width)
    tCK'             = tCK x preset pin rate / device pin rate

with every core timing held in nanoseconds (``ceil(ns / tCK')``), as a faster speed bin of the same dies is.
:func:`check` compares the implied pin rate with the range the preset's standard allows
(:data:`PIN_RATE_GBPS`, sources there), so that a catalog entry naming the wrong memory fails a test.
Addresses are interleaved over the stacks at ``interleave_bytes`` (one stack sees 1/stacks of a stream).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from neurosim.errors import NeurosimError

from .config import DramConfig
from .presets import get

#: Per-pin data rates the standard of each preset allows (Gb/s): (lowest, highest, source).
PIN_RATE_GBPS = {
    "ddr4_3200": (1.6, 3.2, "JEDEC JESD79-4: DDR4-1600 to DDR4-3200"),
    "lpddr5": (1.6, 6.4, "JEDEC JESD209-5: LPDDR5 up to 6400 MT/s"),
    "hbm2": (1.0, 2.4, "JEDEC JESD235A (2 Gb/s) and JESD235B (2.4 Gb/s)"),
    "hbm2e": (2.4, 3.6, "JEDEC JESD235C/D (3.2 Gb/s); vendors' HBM2E parts to 3.6 Gb/s (SK hynix HBM2E, 2020)"),
    "hbm3": (4.0, 6.4, "JEDEC JESD238 (HBM3, 6.4 Gb/s); HBM3E parts run higher (H200) and map here"),
}
#: A catalog figure may exceed the standard's highest rate by this much (vendor bins just above it,
#: e.g. A100 40GB's 2.43 Gb/s HBM2 against JESD235B's 2.4); anything further is a mismatch.
PIN_RATE_TOLERANCE = 0.05

# timing fields converted through nanoseconds when the clock changes (the core's); tCCD_S/L, tRTRS and the
# burst count data-bus clocks and stay in tCK
_TIMINGS = ("cl", "cwl", "trcd", "trcd_wr", "trp", "tras", "trfc", "trefi", "trrd_s", "trrd_l", "twtr_s", "twtr_l",
            "tfaw", "twr", "trtp", "tppd")


def pin_rate_gbps(cfg: DramConfig) -> float:
    """Data rate per pin: BL beats per ``burst_cycles`` tCK."""
    return cfg.bl / (cfg.burst_cycles * cfg.tck_ns)


def at_pin_rate(cfg: DramConfig, gbps: float, name: str | None = None) -> DramConfig:
    """``cfg`` clocked so that one pin moves ``gbps`` Gb/s; core timings kept in ns (rounded up to tCK;
    tCCD, tRTRS and the burst stay in tCK)."""
    if not (math.isfinite(gbps) and gbps > 0):
        raise NeurosimError(f"pin rate must be a positive number of Gb/s, got {gbps!r}")
    tck = cfg.tck_ns * pin_rate_gbps(cfg) / gbps
    ch = {k: max(0 if getattr(cfg, k) == 0 else 1, int(math.ceil(getattr(cfg, k) * cfg.tck_ns / tck - 1e-9)))
          for k in _TIMINGS}
    src = dict(cfg.sources)
    src["timing"] = (src.get("timing", "") + f"; re-clocked to {gbps:.4g} Gb/s/pin (tCK {tck:.4g} ns), core "
                     "timings held in ns")
    return cfg.with_(name=name or cfg.name, tck_ns=tck, sources=src, **ch)


@dataclass(frozen=True)
class DeviceMemory:
    """``stacks`` copies of ``config`` (each the preset re-clocked to the device's pin rate)."""

    device: str
    preset: str
    stacks: int
    config: DramConfig
    interleave_bytes: int = 4096

    @property
    def peak_bandwidth_gbs(self) -> float:
        return self.stacks * self.config.peak_bandwidth_gbs

    @property
    def pin_rate_gbps(self) -> float:
        return pin_rate_gbps(self.config)


def _spec(device):
    if isinstance(device, str):
        import hw

        return hw.get(device)
    return device


def device_memory(device) -> DeviceMemory:
    """The simulated memory of a catalog device (name or spec); its peak equals the catalog's bandwidth."""
    spec = _spec(device)
    preset = getattr(spec, "memory_preset", None)
    stacks = getattr(spec, "memory_stacks", None)
    if not preset or not stacks:
        raise NeurosimError(f"{spec.key}: the catalog names no memory preset (memory_preset, memory_stacks); "
                            f"devices that do: {', '.join(devices_with_memory())}")
    base = get(preset)
    gbps = spec.mem_bw_gb_s * 8 / (int(stacks) * base.channels * base.bus_width)
    cfg = at_pin_rate(base, gbps, name=f"{base.name}@{spec.key}")
    return DeviceMemory(device=spec.key, preset=base.name, stacks=int(stacks), config=cfg)


def devices_with_memory() -> list[str]:
    import hw

    return [n for n in hw.names() if getattr(hw.get(n), "memory_preset", None)]


def check(device) -> dict:
    """The device's implied pin rate against its preset's standard: ``{"ok", "pin_rate_gbps", "range",
    "nominal_peak_gbs" (stacks x the preset at its own rate), "catalog_gbs", "ratio", "why"}``."""
    spec = _spec(device)
    m = device_memory(spec)
    lo, hi, src = PIN_RATE_GBPS[m.preset]
    rate = m.pin_rate_gbps
    nominal = m.stacks * get(m.preset).peak_bandwidth_gbs
    ok = lo <= rate <= hi * (1 + PIN_RATE_TOLERANCE)
    why = "" if ok else (f"{spec.key}: {spec.mem_bw_gb_s:g} GB/s over {m.stacks} x {m.preset} needs {rate:.3g} Gb/s "
                         f"per pin, outside {lo:g}-{hi:g} Gb/s ({src}) by more than {PIN_RATE_TOLERANCE:.0%}")
    return {"device": spec.key, "preset": m.preset, "stacks": m.stacks, "ok": ok, "pin_rate_gbps": rate,
            "range": (lo, hi), "nominal_peak_gbs": nominal, "catalog_gbs": spec.mem_bw_gb_s,
            "ratio": spec.mem_bw_gb_s / nominal, "peak_gbs": m.peak_bandwidth_gbs, "why": why}
