"""Energy two ways: power x time with a utilisation model, and op-level energies at 45 nm (Horowitz 2014).

**Power x time.** While an op runs, the device draws

    P(u) = P_idle + (P_busy - P_idle) * u,      u = roofline bound / latency  in [0, 1]

``u`` is how close the op runs to the roofline (1 = its limiting unit saturated at peak; launch overhead and
sub-peak efficiency lower it). ``P_busy`` is, in order: the user's ``power_w``; the chip's *measured* average
training power where published (Patterson et al. 2021, Table 3: V100 325 W, TPU v2 221 W, TPU v3 283 W;
Google's TPU v4 page: 170 W mean) - Patterson notes GPUs run near TDP under load (Turbo/DVFS) while TPUs sit
well below it; else the TDP. ``P_idle`` is a measured idle power where published (TPU v4: 90 W), else
``idle_fraction x P_busy`` with ``idle_fraction = 0.3``: an assumption, bracketed by TPU v4's published
90/192 W (0.47) and the 10-25 % of TDP that datacenter GPUs commonly report idle.

**Op energies.** ``op_energy`` prices each MAC as one multiply plus one add and each other FLOP as an add at
the op's precision, and each 64-bit word of DRAM traffic at the midpoint of Horowitz's 1.3-2.6 nJ. These are
45 nm numbers: an order-of-magnitude view of where energy goes, not a prediction for a modern chip.
"""
from __future__ import annotations

from dataclasses import dataclass

from neurosim.errors import NeurosimError

DEFAULT_IDLE_FRACTION = 0.3


@dataclass(frozen=True)
class PowerModel:
    """``P(u) = idle_w + (busy_w - idle_w) * u`` for utilisation ``u`` in [0, 1]."""

    idle_w: float
    busy_w: float
    busy_source: str
    idle_source: str

    def power(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        return self.idle_w + (self.busy_w - self.idle_w) * u


def power_model(spec, *, power_w: float | None = None, idle_fraction: float = DEFAULT_IDLE_FRACTION) -> PowerModel | None:
    """The power model of a roofline device, or ``None`` when neither the catalog nor the user gives a power."""
    if not 0.0 <= idle_fraction <= 1.0:
        raise NeurosimError(f"idle_fraction must be in [0, 1], got {idle_fraction}")
    if power_w is not None:
        if power_w <= 0:
            raise NeurosimError(f"power_w must be > 0, got {power_w}")
        busy, bsrc = float(power_w), "given by the user"
    elif getattr(spec, "typical_power_w", None):
        busy, bsrc = spec.typical_power_w, f"measured average power: {spec.source('typical_power_w')}"
    elif getattr(spec, "tdp_w", None):
        busy, bsrc = spec.tdp_w, f"TDP: {spec.source('tdp_w')}"
    else:
        return None
    if getattr(spec, "idle_power_w", None) and power_w is None:
        idle, isrc = min(spec.idle_power_w, busy), f"measured: {spec.source('idle_power_w')}"
    else:
        idle, isrc = idle_fraction * busy, f"assumed: {idle_fraction:g} x busy power"
    return PowerModel(idle_w=idle, busy_w=busy, busy_source=bsrc, idle_source=isrc)


# ---- op-level energies (Horowitz, ISSCC 2014, 45 nm) ---------------------------------------------------

#: Which row of Horowitz's table prices each precision (he lists int8/16/32, fp16, fp32).
_HOROWITZ_ROW = {"fp64": "fp32", "fp32": "fp32", "tf32": "fp32", "fp16": "fp16", "bf16": "fp16",
                 "fp8": "int8", "int8": "int8"}


def mac_energy_pj(precision: str) -> float:
    """One multiply-accumulate at 45 nm: multiply + add (fp32 3.7 + 0.9 = 4.6 pJ; int8 0.2 + 0.03)."""
    from hw.specs import canonical_precision, energy45nm

    row = _HOROWITZ_ROW[canonical_precision(precision)]
    t = energy45nm()
    return t["mult_pj"][row] + t["add_pj"][row]


def add_energy_pj(precision: str) -> float:
    from hw.specs import canonical_precision, energy45nm

    return energy45nm()["add_pj"][_HOROWITZ_ROW[canonical_precision(precision)]]


def dram_energy_pj_per_byte() -> float:
    """Midpoint of Horowitz's 1.3-2.6 nJ per 64-bit DRAM access, per byte."""
    from hw.specs import energy45nm

    m = energy45nm()["memory_64bit_pj"]
    return (m["dram_min"] + m["dram_max"]) / 2 / 8


def op_energy_j(macs: float, other_flops: float, dram_bytes: float, precision: str) -> float:
    """45 nm energy of ``macs`` MACs, ``other_flops`` adds and ``dram_bytes`` of DRAM traffic."""
    pj = macs * mac_energy_pj(precision) + other_flops * add_energy_pj(precision) + dram_bytes * dram_energy_pj_per_byte()
    return pj * 1e-12


def weight_bytes(params: float, precision: str) -> float:
    """Bytes to store ``params`` weights at ``precision`` (fp32 4, bf16/fp16 2, int8/fp8 1)."""
    from hw.specs import BYTES_PER_ELEMENT, canonical_precision

    return params * BYTES_PER_ELEMENT[canonical_precision(precision)]
