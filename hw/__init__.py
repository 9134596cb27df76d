"""neurosim's hardware side: workload tracing, the device catalog, cost models, the systolic simulator.

>>> import hw
>>> hw.names("gpu")                       # the catalog (hw/catalog/*.toml), every number with its source
>>> hw.get("h100_sxm").peak_tflops["bf16"]
>>> report = hw.cost(workload, "h100_sxm", precision="bf16")   # -> hw.report.CostReport
"""
from neurosim.errors import NeurosimError
from hw.specs import canonical_precision, catalog, get, names  # noqa: F401


def cost(workload, device: str, *, pue: float | None = None, region: str | None = None,
         grid_kg_per_kwh: float | None = None, **options):
    """Cost one forward pass of ``workload`` (a :class:`hw.workload.Workload`) on catalog device ``device``.

    Dispatches on the device's family; ``options`` go to its model, and unknown ones raise:

    * gpu, cpu: :func:`hw.gpu.roofline` - ``precision``, ``compute_efficiency``, ``memory_efficiency``,
      ``launch_overhead_s``, ``sparse``, ``power_w``, ``idle_fraction``
    * tpu: :func:`hw.tpu.cost` - the same, plus ``systolic`` (a cycles callable, or True)
    * neuromorphic: :func:`hw.neuromorphic.cost_from_workload` - ``firing_rate``, ``timesteps``,
      ``mean_hops``, ``weight_sharing``, ``timestep_us`` ...

    ``pue``, ``region`` and ``grid_kg_per_kwh`` set the carbon conversion (defaults in :mod:`hw.carbon`).
    Returns a :class:`hw.report.CostReport`.
    """
    from hw.report import finish

    spec = get(device)
    if spec.family in ("gpu", "cpu"):
        from hw.gpu import roofline as model
    elif spec.family == "tpu":
        from hw.tpu import cost as model
    else:
        from hw.neuromorphic import cost_from_workload as model
    try:
        report = model(workload, spec, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise NeurosimError(f"{device} ({spec.family} cost model): {e}") from None
        raise
    return finish(report, pue=pue, region=region, grid_kg_per_kwh=grid_kg_per_kwh)


__all__ = ["get", "names", "catalog", "cost", "canonical_precision"]
