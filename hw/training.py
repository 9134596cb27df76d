"""Training cost on N devices: FLOPs, time, energy and carbon of a whole run.

FLOPs, either

    6 x N_params x D_tokens                      (Kaplan et al. 2020, "Scaling Laws for Neural Language
                                                  Models", Sec. 2.1: forward 2N + backward 4N per token)
    3 x traced forward FLOPs x D / tokens_per_trace   (forward once, backward twice the forward)

then, on ``devices`` chips of peak ``P`` at the training precision,

    time   = FLOPs / (devices x P x mfu x scaling_efficiency)
    energy = devices x P_busy x time              (P_busy: see hw.energy; measured averages where published)
    carbon = energy x PUE x grid intensity        (hw.carbon)

Defaults, stated:

* ``mfu = 0.4`` - model FLOPs utilisation of a single device's peak. Chowdhery et al. 2022 (PaLM, Table 3)
  report 21.3 % (GPT-3 on V100), 30.2 % (Megatron-Turing NLG on A100), 32.5 % (Gopher on TPU v3) and
  46.2 % (PaLM on TPU v4); 0.4 sits in that range. Patterson et al. 2021 Table 4 measured 24.6 of V100's
  125 TFLOPS for GPT-3 (0.197) and 34-48 of TPU v3's 123 for the Google models.
* ``scaling_efficiency = 0.9`` for more than one device (1.0 for one) - data-parallel efficiency, from
  Goyal et al. 2017 ("Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour"), who report ~90 %
  scaling from 8 to 256 GPUs. When ``mfu`` is already a measured at-scale figure (as Patterson's per-chip
  TFLOPS are), pass ``scaling_efficiency=1``.
* precision: bf16 where the device has it, else fp16, else fp32.
"""
from __future__ import annotations

import math

from neurosim.errors import NeurosimError

DEFAULT_MFU = 0.4
DEFAULT_SCALING_EFFICIENCY = 0.9


def flops_6nd(params: float, tokens: float) -> float:
    """Kaplan et al. 2020: training FLOPs = 6 x parameters x tokens."""
    if params <= 0 or tokens <= 0:
        raise NeurosimError(f"params and tokens must be > 0, got {params}, {tokens}")
    return 6.0 * params * tokens


def flops_traced(workload, tokens: float, tokens_per_trace: float | None = None) -> float:
    """3 x the traced forward FLOPs, scaled from the traced batch to ``tokens`` tokens (or samples).

    ``tokens_per_trace`` defaults to batch x sequence length of the traced input (its first two dims), or the
    batch for inputs without a sequence dimension.
    """
    if tokens <= 0:
        raise NeurosimError(f"tokens must be > 0, got {tokens}")
    if tokens_per_trace is None:
        shape = workload.input_shapes[0] if workload.input_shapes else (workload.batch,)
        tokens_per_trace = shape[0] * shape[1] if len(shape) == 2 else workload.batch
    return 3.0 * workload.flops * tokens / tokens_per_trace


def training_precision(spec, precision: str | None) -> str:
    from hw.specs import canonical_precision

    if precision:
        return canonical_precision(precision)
    for p in ("bf16", "fp16", "fp32"):
        if p in spec.peak_tflops:
            return p
    return next(iter(spec.peak_tflops))


def train(device: str, *, flops: float | None = None, params: float | None = None, tokens: float | None = None,
          workload=None, tokens_per_trace: float | None = None, devices: int = 1, mfu: float | None = None,
          scaling_efficiency: float | None = None, precision: str | None = None, power_w: float | None = None,
          pue: float | None = None, region: str | None = None, grid_kg_per_kwh: float | None = None,
          model: str | None = None):
    """Cost a training run on ``devices`` x ``device`` (a GPU, TPU or CPU from the catalog).

    Give the work as ``flops``, or ``params`` and ``tokens`` (6ND), or a ``workload`` and ``tokens`` (3 x
    traced forward). Returns a :class:`hw.report.CostReport` with ``mode="training"``.
    """
    import hw
    from hw.energy import power_model
    from hw.gpu import resolve_precision
    from hw.report import CostReport

    spec = hw.get(device)
    if spec.family == "neuromorphic":
        raise NeurosimError(f"{device}: training cost is modelled for GPUs, TPUs and CPUs only")
    if int(devices) < 1:
        raise NeurosimError(f"devices must be >= 1, got {devices}")
    devices = int(devices)
    if flops is not None:
        method, total = "given", float(flops)
    elif workload is not None and tokens is not None:
        method, total = "3 x traced forward", flops_traced(workload, tokens, tokens_per_trace)
    elif params is not None and tokens is not None:
        method, total = "6ND (Kaplan et al. 2020)", flops_6nd(params, tokens)
    else:
        raise NeurosimError("give flops=, or params= and tokens=, or workload= and tokens=")
    if params is None and workload is not None:
        params = workload.params
    mfu_v = DEFAULT_MFU if mfu is None else float(mfu)
    eta = (1.0 if devices == 1 else DEFAULT_SCALING_EFFICIENCY) if scaling_efficiency is None else float(scaling_efficiency)
    for name, v in (("mfu", mfu_v), ("scaling_efficiency", eta)):
        if not 0 < v <= 1:
            raise NeurosimError(f"{name} must be in (0, 1], got {v}")
    notes: list[str] = []
    req = training_precision(spec, precision)
    extra = {"fp32": "bf16", "tf32": "bf16", "fp16": "bf16"} if spec.family == "tpu" else None
    comp = resolve_precision(spec, req, notes, extra=extra)
    peak = spec.peak_flops(comp)
    time_s = total / (devices * peak * mfu_v * eta)
    pm = power_model(spec, power_w=power_w)
    per_device_w = pm.busy_w if pm else float("nan")
    if pm is None:
        notes.append(f"{device}: no published power; pass power_w= for energy and carbon")
    energy = devices * per_device_w * time_s
    weights = None if params is None else hw.specs.BYTES_PER_ELEMENT[req] * params
    totals = {
        "precision": req, "compute_precision": comp, "devices": devices, "flops": total, "flops_method": method,
        "params": params, "tokens": tokens, "time_s": time_s, "latency_s": time_s, "time_days": time_s / 86400,
        "device_hours": devices * time_s / 3600, "bound_s": total / (devices * peak),
        "energy_j": energy, "weight_bytes": weights,
    }
    if weights is not None and spec.memory_bytes and weights > devices * spec.memory_bytes:
        notes.append(f"weights alone ({weights / 1e9:.0f} GB) exceed {devices} x {spec.memory_gb:.0f} GB")
    assumptions = {"mfu": mfu_v, "scaling_efficiency": eta, "peak_tflops": peak / 1e12,
                   "power_per_device_w": per_device_w, "power_source": pm.busy_source if pm else None}
    report = CostReport(model=model or (workload.model if workload is not None else "model"), device=spec.key,
                        family=spec.family, mode="training", rows=[], totals=totals, assumptions=assumptions, notes=notes)
    return _finish_run(report, pue=pue, region=region, grid_kg_per_kwh=grid_kg_per_kwh)


def _finish_run(report, **carbon_options):
    """Facility energy and carbon of a whole run, in the units papers use (the JSON schema in the README):
    ``energy_mwh`` is facility energy (device energy x PUE, Patterson et al. 2021's "MWh"),
    ``it_energy_mwh`` the devices' own; ``carbon_t`` (alias ``co2e_t``) tonnes CO2e."""
    from hw.report import finish

    report = finish(report, **carbon_options)
    t = report.totals
    t["it_energy_mwh"] = t["energy_j"] / 3.6e9
    t["energy_mwh"] = t["facility_energy_kwh"] / 1000
    t["carbon_t"] = t["co2e_t"] = t["carbon_kg"] / 1000
    return report


def footprint(device: str, *, count: int, hours: float, power_w: float | None = None, pue: float | None = None,
              region: str | None = None, grid_kg_per_kwh: float | None = None, model: str = "training run"):
    """A training run described as papers describe it, without a model (Patterson et al. 2021 Table 4,
    Strubell et al. 2019, the ML CO2 Impact calculator): ``count`` x ``device`` busy for ``hours`` at
    ``power_w`` each (default: the catalog's measured average, else TDP; see :func:`hw.energy.power_model`).

        MWh   = hours x count x W x PUE / 10^6
        tCO2e = MWh x grid kg CO2e per kWh

    Returns a :class:`hw.report.CostReport` (``mode="training"``) with the same totals as :func:`train`.
    """
    import hw
    from hw.energy import power_model
    from hw.report import CostReport

    spec = hw.get(device)
    for name, v in (("count", count), ("hours", hours)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise NeurosimError(f"{name} must be a positive finite number, got {v!r}")
    if int(count) != count:
        raise NeurosimError(f"count is a number of devices, a whole number, got {count}")
    if power_w is not None and not (math.isfinite(power_w) and power_w > 0):
        raise NeurosimError(f"power (W) must be a positive finite number, got {power_w}")
    for name, v in (("pue", pue), ("grid kg CO2e/kWh", grid_kg_per_kwh)):
        if v is not None and not math.isfinite(v):
            raise NeurosimError(f"{name} must be finite, got {v}")
    pm = power_model(spec, power_w=power_w)
    if pm is None:
        raise NeurosimError(f"{device} has no published power in the catalog: pass the power per device (--watts W)")
    count, time_s = int(count), float(hours) * 3600.0
    energy = count * pm.busy_w * time_s
    totals = {"devices": count, "time_s": time_s, "time_days": time_s / 86400, "device_hours": count * time_s / 3600,
              "energy_j": energy}
    assumptions = {"power_per_device_w": pm.busy_w, "power_source": pm.busy_source}
    report = CostReport(model=model, device=spec.key, family=spec.family, mode="training", totals=totals,
                        assumptions=assumptions)
    return _finish_run(report, pue=pue, region=region, grid_kg_per_kwh=grid_kg_per_kwh)
