"""Roofline cost of a :class:`~hw.workload.Workload` on a GPU or CPU (and, through :mod:`hw.tpu`, a TPU).

Per op, with ``F`` its FLOPs and ``B`` the bytes it moves (parameters read + activations read + written):

    compute_s = F / (peak(precision) * compute_efficiency)
    memory_s  = B / (bandwidth * memory_efficiency)
    latency_s = max(compute_s, memory_s) + launch_overhead_s
    bound_s   = max(F / peak, B / bandwidth)          (Williams et al. 2009, the roofline)

so ``latency_s >= bound_s`` always; both are reported. Tensor ops (conv, linear, matmul, attention) run at
the tensor-core peak of the precision; other ops at the vector (fp32) peak - they are memory-bound anyway.

Defaults (override any of them):

* ``compute_efficiency = 0.7`` for tensor ops - for large GEMMs on one device. The best public measurement we
  found is 780 of H100's 989 dense bf16 TFLOPS (79 %) for a 4224x8192x2048 GEMM after autotuning (Horace He,
  "H100 peak matmul FLOPS", gist.github.com/Chillee/2ec89696db8b7ed1c24461159e325405); untuned framework
  GEMMs and smaller shapes do worse, so 0.7 is a slightly conservative round figure. Whole-model *training* MFU is lower: 21-46 % (Chowdhery et al. 2022,
  PaLM, Table 3); :mod:`hw.training` uses that.
* ``memory_efficiency = 0.8`` - Jia et al. 2018 ("Dissecting the NVIDIA Volta GPU Architecture via
  Microbenchmarking", arXiv 1804.06826) measured 750 of V100's 900 GB/s (83 %).
* ``launch_overhead_s = 5e-6`` per op on GPUs (CUDA kernel launch latency is a few microseconds; an
  assumption, no fusion modelled), ``1e-6`` on CPUs.
* ``precision``: the workload's dtype. A precision the device lacks falls back along :data:`FALLBACK`
  (e.g. int8 on a V100 computes in fp16) and the report says so; bytes are always counted at the requested
  precision (an int8 model stores int8 weights wherever it runs).
* ``sparse=True`` uses the 2:4 structured-sparsity tensor peak (A100 and later) for tensor ops.
* ``memory="simulated"``: ``memory_s`` is each op's access stream (weights streamed, activations read and
  written) run through the cycle-level DRAM/HBM model of the device's memory (the catalog's
  ``memory_preset`` x ``memory_stacks``, :mod:`hw.memory.device`; :mod:`hw.memory.opstream` for the
  stream and its sampling) instead of ``B / (bandwidth x memory_efficiency)``, which stays reported
  (``memory_roofline_s``); ``memory_efficiency`` does not apply. The op's latency is never below its
  bound: the simulated memory's peak is the catalog's bandwidth.
"""
from __future__ import annotations

import math

from neurosim.errors import NeurosimError

TENSOR_KINDS = ("conv", "linear", "matmul", "attention")

#: Where a precision falls back when a device has no peak for it (tried in order).
FALLBACK = {
    "fp64": ["fp32"],
    "fp32": [],
    "tf32": ["fp32"],
    "bf16": ["fp16", "fp32"],
    "fp16": ["bf16", "fp32"],
    "fp8": ["fp16", "bf16", "fp32"],
    "int8": ["fp16", "bf16", "fp32"],
}

DEFAULTS = {
    "gpu": {"compute_efficiency": 0.7, "memory_efficiency": 0.8, "launch_overhead_s": 5e-6},
    "cpu": {"compute_efficiency": 0.7, "memory_efficiency": 0.8, "launch_overhead_s": 1e-6},
    "tpu": {"compute_efficiency": 0.7, "memory_efficiency": 0.8, "launch_overhead_s": 0.0},
}


def resolve_precision(spec, precision: str, notes: list[str], *, extra: dict[str, str] | None = None) -> str:
    """The precision the device computes ``precision`` in: itself, or the first fallback it has."""
    from hw.specs import canonical_precision

    p = canonical_precision(precision)
    if extra and p in extra and p not in spec.peak_tflops:
        q = extra[p]
        notes.append(f"{spec.key} has no {p} peak; computing at {q} ({_EXTRA_WHY.get((spec.family, p), 'fallback')})")
        return q
    if p in spec.peak_tflops:
        return p
    for q in FALLBACK[p]:
        if q in spec.peak_tflops:
            notes.append(f"{spec.key} has no {p} peak; computing at {q} (bytes still counted at {p})")
            return q
    raise NeurosimError(f"{spec.key} cannot run {p}: it lists {', '.join(spec.peak_tflops)}")


_EXTRA_WHY = {("tpu", "fp32"): "XLA's default matmul precision runs fp32 as one bf16 pass",
              ("tpu", "tf32"): "XLA's default matmul precision runs fp32 as one bf16 pass",
              ("tpu", "fp16"): "TPUs have no fp16 MXU mode; bf16 is the 16-bit format"}


def _check_fraction(name: str, v: float, lo: float = 0.0) -> float:
    v = float(v)
    if not (lo < v <= 1.0):
        raise NeurosimError(f"{name} must be in ({lo}, 1], got {v}")
    return v


def roofline(workload, spec, *, precision: str | None = None, compute_efficiency: float | None = None,
             memory_efficiency: float | None = None, launch_overhead_s: float | None = None, sparse: bool = False,
             power_w: float | None = None, idle_fraction: float | None = None, compute_cycles=None,
             memory: str = "roofline", _precision_extra: dict[str, str] | None = None):
    """Per-op roofline latency, its bound, and power-x-time energy of one forward pass of ``workload``.

    ``compute_cycles(op) -> seconds | None`` (used by :mod:`hw.tpu` for its systolic option) replaces the
    tensor-op compute time where it returns a number. Returns a :class:`hw.report.CostReport`.
    """
    from hw.report import CostReport
    from hw.energy import DEFAULT_IDLE_FRACTION, op_energy_j, power_model
    from hw.specs import BYTES_PER_ELEMENT, canonical_precision

    d = DEFAULTS[spec.family]
    ce = _check_fraction("compute_efficiency", d["compute_efficiency"] if compute_efficiency is None else compute_efficiency)
    me = _check_fraction("memory_efficiency", d["memory_efficiency"] if memory_efficiency is None else memory_efficiency)
    lo = float(d["launch_overhead_s"] if launch_overhead_s is None else launch_overhead_s)
    if lo < 0:
        raise NeurosimError(f"launch_overhead_s must be >= 0, got {lo}")
    notes: list[str] = []
    if memory not in ("roofline", "simulated"):
        raise NeurosimError(f"memory must be 'roofline' or 'simulated', got {memory!r}")
    dmem = None
    if memory == "simulated":
        if memory_efficiency is not None:
            raise NeurosimError("memory_efficiency applies to the roofline memory term, not to memory='simulated'")
        from hw.memory.device import device_memory
        from hw.memory.opstream import op_memory_s

        dmem = device_memory(spec)
        notes.append(f"memory simulated: {dmem.stacks} x {dmem.preset} at {dmem.pin_rate_gbps:.3g} Gb/s/pin "
                     f"({dmem.peak_bandwidth_gbs:g} GB/s peak, hw.memory); memory_roofline_s is B / (bw x {me:g})")
    wdtype = canonical_precision(workload.dtype)
    req = canonical_precision(precision) if precision else wdtype
    comp = resolve_precision(spec, req, notes, extra=_precision_extra)
    if sparse and comp not in spec.sparse_tflops:
        raise NeurosimError(f"{spec.key} publishes no 2:4 sparse peak for {comp}; sparse peaks: "
                            f"{', '.join(spec.sparse_tflops) or 'none'}")
    tensor_peak = spec.peak_flops(comp, sparse=sparse)
    vector_peak = spec.peak_flops("fp32") if "fp32" in spec.peak_tflops else tensor_peak
    bw = spec.mem_bw_bytes_s
    scale = BYTES_PER_ELEMENT[req] / BYTES_PER_ELEMENT[wdtype]
    if scale != 1:
        notes.append(f"traced at {wdtype}; bytes rescaled x{scale:g} to {req}")
    pm = power_model(spec, power_w=power_w, idle_fraction=DEFAULT_IDLE_FRACTION if idle_fraction is None else idle_fraction)
    if pm is None:
        notes.append(f"{spec.key}: no published power (see its sources); energy is NaN unless power_w= is given")

    rows = []
    for op in workload.ops:
        tensor = op.kind in TENSOR_KINDS
        peak = tensor_peak if tensor else vector_peak
        nbytes = op.bytes * scale
        compute_s = op.flops / (peak * (ce if tensor else 1.0))
        custom = compute_cycles(op) if (compute_cycles is not None and tensor) else None
        if custom is not None:
            compute_s = custom
        memory_roof_s = nbytes / (bw * me)
        memory_s = memory_roof_s
        if dmem is not None:
            memory_s = op_memory_s(dmem, op.param_bytes * scale, op.read_bytes * scale, op.write_bytes * scale)
        bound_s = max(op.flops / peak, nbytes / bw)
        latency_s = max(compute_s, memory_s) + lo
        if custom is not None or dmem is not None:  # a cycle-level count may beat the efficiency-scaled
            latency_s = max(latency_s, bound_s)       # roofline, never the bound
        u = bound_s / latency_s if latency_s > 0 else 0.0
        p = pm.power(u) if pm else float("nan")
        e_ops = op_energy_j(op.macs, max(op.flops - 2 * op.macs, 0), nbytes, req)
        rows.append({
            "layer": op.name or "(root)", "kind": op.kind, "op": op.aten, "flops": op.flops, "bytes": nbytes,
            "compute_s": compute_s, "memory_s": memory_s, **({"memory_roofline_s": memory_roof_s} if dmem else {}),
            "overhead_s": lo, "latency_s": latency_s,
            "bound_s": bound_s, "limit": "compute" if op.flops / peak >= nbytes / bw else "memory",
            "utilisation": u, "power_w": p, "energy_j": p * latency_s, "energy_ops_45nm_j": e_ops,
        })
    latency = sum(r["latency_s"] for r in rows)
    energy = sum(r["energy_j"] for r in rows) if pm else float("nan")
    flops = sum(r["flops"] for r in rows)
    wbytes = workload.param_bytes * scale
    totals = {
        "precision": req, "compute_precision": comp, "batch": workload.batch, "ops": len(rows),
        "flops": flops, "bytes": sum(r["bytes"] for r in rows), "weight_bytes": wbytes,
        "latency_s": latency, "bound_s": sum(r["bound_s"] for r in rows),
        "throughput_samples_s": workload.batch / latency if latency > 0 else float("inf"),
        "achieved_tflops": flops / latency / 1e12 if latency > 0 else 0.0,
        "energy_j": energy, "avg_power_w": energy / latency if latency > 0 else float("nan"),
        "energy_ops_45nm_j": sum(r["energy_ops_45nm_j"] for r in rows),
        "fits_memory": bool(spec.memory_bytes is None or wbytes <= spec.memory_bytes),
    }
    if not totals["fits_memory"]:
        notes.append(f"weights ({wbytes / 1e9:.1f} GB) exceed {spec.key}'s {spec.memory_gb:.0f} GB: "
                     f"needs at least {math.ceil(wbytes / spec.memory_bytes)} devices")
    assumptions = {
        "compute_efficiency": ce, "memory_efficiency": me, "launch_overhead_s": lo, "sparse": bool(sparse),
        "tensor_peak_tflops": tensor_peak / 1e12, "vector_peak_tflops": vector_peak / 1e12,
        "mem_bw_gb_s": spec.mem_bw_gb_s, "memory": memory,
        **({"memory_preset": dmem.preset, "memory_stacks": dmem.stacks, "memory_pin_rate_gbps": dmem.pin_rate_gbps}
           if dmem else {}),
        "busy_power_w": pm.busy_w if pm else None, "idle_power_w": pm.idle_w if pm else None,
        "power_source": pm.busy_source if pm else None, "idle_power_source": pm.idle_source if pm else None,
    }
    return CostReport(model=workload.model, device=spec.key, family=spec.family, mode="inference",
                      rows=rows, totals=totals, assumptions=assumptions, notes=notes)
