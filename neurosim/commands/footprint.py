"""`neurosim footprint --device v100 --count 10000 --days 14.8 --watts 330 --pue 1.1`: a training run's
energy and carbon described as papers describe it (Patterson et al. 2021 Table 4), without a model."""
from __future__ import annotations

from neurosim.cli import POSITIVE, command, emit, number
from neurosim.errors import NeurosimError

_COLS = ["device", "devices", "time_days", "device_hours", "it_energy_mwh", "energy_mwh", "co2e_t"]


@command("footprint", help="energy and CO2e of N devices busy for a time (a training run as papers report it)")
def configure(p):
    p.add_argument("--device", required=True, help="catalog device (see `neurosim hw list`), e.g. v100, tpu_v3")
    p.add_argument("--count", required=True, type=POSITIVE, help="number of devices")
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument("--days", type=POSITIVE, help="wall-clock duration in days")
    t.add_argument("--hours", type=POSITIVE, help="wall-clock duration in hours")
    p.add_argument("--watts", type=POSITIVE, default=None,
                   help="average power per device in W (default: the catalog's measured average, else TDP)")
    p.add_argument("--pue", type=POSITIVE, default=None, help="datacenter PUE (default 1.58)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--region", default=None, help="grid region (default us_average; see hw/catalog/regions.toml)")
    g.add_argument("--grid-kg-per-kwh", type=number(float, 0), default=None, help="grid intensity, kg CO2e per kWh")
    p.add_argument("--json", action="store_true",
                   help="JSON: totals (energy_mwh = facility energy incl. PUE, it_energy_mwh, co2e_t, ...) and assumptions")

    def run(args):
        from hw.training import footprint

        if args.count != int(args.count):
            raise NeurosimError(f"--count is a number of devices, a whole number, got {args.count:g}")
        hours = args.hours if args.hours is not None else args.days * 24.0
        r = footprint(args.device, count=int(args.count), hours=hours, power_w=args.watts, pue=args.pue,
                      region=args.region, grid_kg_per_kwh=args.grid_kg_per_kwh)
        if args.json:
            emit(r, True)
            return 0
        import pandas as pd

        emit(pd.DataFrame([{c: r.summary().get(c) for c in _COLS}]), False)
        a = r.assumptions
        print(f"  power: {a['power_per_device_w']:g} W per device ({a['power_source']})")
        print(f"  carbon: PUE {a['pue']:g}, grid {a['grid_kg_per_kwh']:g} kg CO2e/kWh ({a['region']})")
        return 0

    return run
