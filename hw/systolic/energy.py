"""Per-access energy of a systolic-array run: ``E = MACs e_mac + SRAM reads e_rd + SRAM writes e_wr + DRAM words e_dram``.

Counts are the simulator's (SCALE-Sim's SRAM reads/writes and DRAM words per layer); energies are per
one-byte word (SCALE-Sim's ``word_size``) in picojoules. The default, :data:`HOROWITZ_45NM_INT8`, is
Horowitz (ISSCC 2014, Fig. 1.1.9, 45 nm): int8 multiply 0.2 pJ + int32 add 0.1 pJ per MAC; a 64-bit
access to a 32 KB SRAM 20 pJ, i.e. 2.5 pJ per byte; DRAM 1.3-2.6 nJ per 64 bits, 1300/8 = 162.5 pJ per
byte at the low end. Pass your own numbers, or a catalog device that carries ``e_mac_pj``,
``e_sram_read_pj``, ``e_sram_write_pj`` and ``e_dram_pj`` fields.
"""
from __future__ import annotations

from dataclasses import dataclass

from neurosim.errors import NeurosimError


@dataclass(frozen=True)
class EnergyModel:
    """Energy per event in pJ (per MAC, per one-word SRAM read/write, per one-word DRAM access)."""

    e_mac_pj: float
    e_sram_read_pj: float
    e_sram_write_pj: float
    e_dram_pj: float
    source: str = ""

    def __post_init__(self):
        for f in ("e_mac_pj", "e_sram_read_pj", "e_sram_write_pj", "e_dram_pj"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise NeurosimError(f"energy {f} must be a non-negative number of pJ, got {v!r}")

    def layer_energy_pj(self, r) -> dict:
        """Energy of one instance of layer result ``r`` by component, and the total (pJ)."""
        e = {"mac": r.macs * self.e_mac_pj,
             "sram_read": (r.ifmap_sram_reads + r.filter_sram_reads) * self.e_sram_read_pj,
             "sram_write": r.ofmap_sram_writes * self.e_sram_write_pj,
             "dram": (r.ifmap_dram_reads + r.filter_dram_reads + r.ofmap_dram_writes) * self.e_dram_pj}
        e["total"] = sum(e.values())
        return e

    @classmethod
    def from_catalog(cls, name: str) -> "EnergyModel":
        """Per-access energies of catalog device ``name`` (``hw.get``), if the device has them."""
        try:
            import hw

            dev = hw.get(name)
        except (ImportError, AttributeError) as e:
            raise NeurosimError(f"the hardware catalog is not available ({e}); pass explicit energies") from None
        fields = ("e_mac_pj", "e_sram_read_pj", "e_sram_write_pj", "e_dram_pj")
        vals = {f: getattr(dev, f, None) for f in fields}
        missing = [f for f, v in vals.items() if v is None]
        if missing:
            raise NeurosimError(f"catalog device {name!r} has no {', '.join(missing)}; pass explicit energies "
                                f"(EnergyModel(e_mac_pj=..., ...)) instead")
        return cls(**{k: float(v) for k, v in vals.items()}, source=f"hw catalog: {name}")


HOROWITZ_45NM_INT8 = EnergyModel(0.3, 2.5, 2.5, 162.5, source="Horowitz ISSCC 2014, 45 nm, int8 MAC, 32 KB SRAM")


def resolve_energy(energy) -> EnergyModel | None:
    """``None`` | ``EnergyModel`` | ``"default"`` | catalog name | dict of the four energies -> model."""
    if energy is None or isinstance(energy, EnergyModel):
        return energy
    if isinstance(energy, dict):
        return EnergyModel(**energy)
    if energy in ("default", "horowitz45"):
        return HOROWITZ_45NM_INT8
    if isinstance(energy, str):
        return EnergyModel.from_catalog(energy)
    raise NeurosimError(f"energy must be an EnergyModel, a dict of pJ values or a catalog name, got {energy!r}")
