"""Carbon: ``kg CO2e = energy (kWh) x PUE x grid intensity (kg CO2e / kWh)``.

This is the accounting of Strubell et al. 2019 (Eq. 1-2) and Patterson et al. 2021 (Sec. 2.5):

    kWh   = hours x processors x average power per processor (W) x PUE / 1000
    tCO2e = kWh x kg CO2e per kWh / 1000

Defaults, stated once:

* **PUE 1.58** - the US national datacenter average in 2018 (Uptime Institute), the value Strubell et al.
  used and Patterson et al. (Sec. 2.3) quote; conservative for hyperscale clouds (~1.1).
* **Grid: ``us_average``, 0.429 kg/kWh** (``hw/catalog/regions.toml`` says why and lists the others).
"""
from __future__ import annotations

from neurosim.errors import NeurosimError, UnknownNameError

DEFAULT_PUE = 1.58
PUE_SOURCE = "US datacenter average 2018, as used by Strubell et al. 2019 and quoted by Patterson et al. 2021 Sec. 2.3"
LB_PER_KG = 2.20462262185  # pounds per kilogram (exact definition: 1 lb = 0.45359237 kg)
J_PER_KWH = 3.6e6


def intensity(region: str | None = None, kg_per_kwh: float | None = None) -> tuple[float, str, str]:
    """``(kg CO2e per kWh, region name, source)``: an explicit number wins, else the region, else the default."""
    from hw.specs import regions

    if kg_per_kwh is not None:
        if kg_per_kwh < 0:
            raise NeurosimError(f"grid intensity must be >= 0 kg CO2e/kWh, got {kg_per_kwh}")
        return float(kg_per_kwh), "custom", "given by the user"
    table = regions()
    name = region or table["default"]
    valid = [k for k in table if k != "default"]
    if name not in valid:
        raise UnknownNameError("region", name, valid)
    entry = table[name]
    return float(entry["kg_per_kwh"]), name, entry["source"]


def region_names() -> list[str]:
    from hw.specs import regions

    return [k for k in regions() if k != "default"]


def carbon_kg(energy_j: float, *, pue: float = DEFAULT_PUE, kg_per_kwh: float | None = None,
              region: str | None = None) -> float:
    """kg CO2e for ``energy_j`` joules of IT (device) energy."""
    kg, _, _ = intensity(region, kg_per_kwh)
    return energy_j / J_PER_KWH * pue * kg


def footprint(*, chips: int, hours: float, watts_per_chip: float, pue: float, kg_per_kwh: float) -> dict[str, float]:
    """Patterson et al. 2021, Sec. 2.5: facility energy (kWh, MWh) and emissions (kg, t CO2e) of a run."""
    if min(chips, hours, watts_per_chip) < 0 or pue < 1:
        raise NeurosimError("chips, hours and watts must be >= 0 and PUE >= 1")
    kwh = hours * chips * watts_per_chip * pue / 1000.0
    kg = kwh * kg_per_kwh
    return {"kwh": kwh, "mwh": kwh / 1000.0, "kg_co2e": kg, "t_co2e": kg / 1000.0}
