"""Systolic-array simulator (os/ws/is) that reproduces SCALE-Sim 2.0.2's and 3.0.0's reports, in numba.

>>> from hw.systolic import read_config, read_topology, simulate
>>> res = simulate(read_config("configs/scale.cfg"), read_topology("alexnet.csv"))
>>> res.compute_report, res.bandwidth_report, res.detailed_report   # DataFrames
>>> res.write("runs")                                                # SCALE-Sim's three CSVs
>>> from hw.systolic import simulate_model
>>> simulate_model("resnet18", array=(128, 128), dataflow="ws").totals()
"""
from hw.systolic.config import ConfigError, SystolicConfig, read_config  # noqa: F401
from hw.systolic.topology import Layer, read_topology  # noqa: F401

_LAZY = {"HOROWITZ_45NM_INT8": "energy", "EnergyModel": "energy", "LayerResult": "simulator",
         "SystolicResult": "simulator", "simulate": "simulator", "simulate_layer": "simulator"}


def __getattr__(name):  # the simulator (numba) is imported on first use: `python -m hw.systolic` starts lean
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"hw.systolic.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hw.systolic' has no attribute {name!r}")


def run_scalesim_files(config_path, topology_path, kind="conv", outdir=None, **overrides):
    """SCALE-Sim's ``-c CFG -t TOPO -i KIND -p OUTDIR`` in one call; writes the reports when ``outdir`` is given.
    ``scalesim_version=2|3`` among ``overrides`` picks 2.0.2's or 3.0.0's reports (default: from the file)."""
    from hw.systolic.simulator import simulate

    cfg = read_config(config_path, **overrides)
    res = simulate(cfg, read_topology(topology_path, kind))
    if outdir is not None:
        res.write(outdir)
    return res


def simulate_model(model, *, array=(32, 32), dataflow="ws", batch=1, config=None, **kw):
    """Simulate a zoo model (name) or any ``nn.Module`` (with ``inputs=``); see :mod:`hw.systolic.workload`."""
    from hw.systolic.workload import simulate_model as _sm

    return _sm(model, array=array, dataflow=dataflow, batch=batch, config=config, **kw)


__all__ = ["SystolicConfig", "read_config", "ConfigError", "Layer", "read_topology", "simulate", "simulate_layer",
           "SystolicResult", "LayerResult", "EnergyModel", "HOROWITZ_45NM_INT8", "run_scalesim_files", "simulate_model"]
