"""One result type for every cost model: :class:`CostReport` (and :class:`CostComparison`).

``hw.cost(workload, "h100_sxm", precision="bf16")`` (in :mod:`hw`) runs the roofline (GPU/CPU, :mod:`hw.gpu`; TPU,
:mod:`hw.tpu`) or the spiking-activity model (:mod:`hw.neuromorphic`) and returns a :class:`CostReport`:
per-op rows (a DataFrame), totals (latency, its roofline bound, energy, carbon), the assumptions used, and
notes on anything estimated by proxy. Carbon is ``energy x PUE x grid intensity`` (:mod:`hw.carbon`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from neurosim.errors import NeurosimError


@dataclass
class CostReport:
    """What one model costs on one device (inference of one traced batch, or a whole training run).

    ``rows`` are per-op dicts (the DataFrame); ``totals`` the sums and derived figures; ``assumptions``
    every knob that shaped the numbers (efficiencies, precision, power model, PUE, grid); ``notes`` say
    what was approximated (precision fallbacks, unmapped ops, proxy energies).
    """

    model: str
    device: str
    family: str
    mode: str  # "inference" | "training"
    rows: list[dict] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    assumptions: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, key: str):
        return self.totals[key]

    def to_dataframe(self):
        """One row per op (empty with the right columns for a training report)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def summary(self) -> dict[str, Any]:
        """Model, device and totals as one flat dict (a row of a comparison table)."""
        return {"model": self.model, "device": self.device, "family": self.family, "mode": self.mode, **self.totals}

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "family": self.family, "mode": self.mode,
                "totals": _clean(self.totals), "assumptions": _clean(self.assumptions), "notes": list(self.notes),
                "ops": [_clean(r) for r in self.rows]}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)


@dataclass
class CostComparison:
    """Several reports side by side: one summary row per (model, device)."""

    reports: list[CostReport]

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame([r.summary() for r in self.reports])

    def to_dict(self) -> dict[str, Any]:
        return {"reports": [r.to_dict() for r in self.reports]}


def _clean(d: dict) -> dict:
    """JSON-safe: NaN/inf become None, numpy scalars become Python numbers."""
    out = {}
    for k, v in d.items():
        if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


def finish(report: CostReport, *, pue: float | None = None, region: str | None = None,
           grid_kg_per_kwh: float | None = None) -> CostReport:
    """Add facility energy and carbon to a report whose ``totals`` hold ``energy_j`` (device energy)."""
    from hw import carbon

    pue_v = carbon.DEFAULT_PUE if pue is None else float(pue)
    if pue_v < 1.0:
        raise NeurosimError(f"PUE must be >= 1.0 (facility energy over IT energy), got {pue_v}")
    kg, reg, src = carbon.intensity(region, grid_kg_per_kwh)
    e = report.totals.get("energy_j", float("nan"))
    report.totals["facility_energy_kwh"] = e * pue_v / 3.6e6
    report.totals["carbon_kg"] = carbon.carbon_kg(e, pue=pue_v, kg_per_kwh=kg)
    report.assumptions.update({"pue": pue_v, "region": reg, "grid_kg_per_kwh": kg, "grid_source": src})
    return report
