"""TPU cost: the roofline of :mod:`hw.gpu` on the TPU's MXU peaks and HBM, optionally with systolic cycles.

Precision: TPUs compute in bf16 (and int8 on v4 and later). XLA's default matmul precision runs fp32
matmuls as a single bf16 pass, so an fp32 workload is costed at the bf16 peak (the report says so); fp16 maps
to bf16. No per-op launch overhead: XLA compiles the whole graph into one program.

Systolic option: ``systolic=`` takes a callable ``cycles(M, K, N, rows, cols) -> int`` that returns the
cycles ONE ``rows x cols`` array needs for an ``[M,K] x [K,N]`` GEMM (the simulator in ``hw/systolic/``
provides one). Each tensor op's GEMMs (``Op.gemms()``) are spread evenly over the chip's ``mxus`` arrays:

    compute_s = sum(count x cycles(M, K, N, 128, 128)) / (mxus x clock)

and the op's latency is still never below its roofline bound. ``systolic=True`` uses the cycle-level simulator
in ``hw/systolic`` (weight-stationary, as the TPU's MXUs are; see :func:`simulator_cycles`).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from neurosim.errors import NeurosimError

_TPU_PRECISION = {"fp32": "bf16", "tf32": "bf16", "fp16": "bf16", "fp8": "bf16", "fp64": "bf16"}


def simulator_cycles(dataflow: str = "ws") -> Callable:
    """``cycles(M, K, N, rows, cols)`` from the cycle-level simulator in ``hw/systolic`` (SCALE-Sim semantics).

    TPU MXUs are weight-stationary (Jouppi et al. 2017), hence ``ws``. Results are cached per GEMM shape.
    The simulator walks every fold, so very large GEMMs take seconds to minutes each.
    """
    try:
        from hw.systolic import Layer, SystolicConfig, simulate_layer
    except ImportError as e:
        raise NeurosimError(f"systolic=True needs the simulator in hw/systolic ({e}); pass a cycles callable instead") from None
    configs: dict = {}

    @lru_cache(maxsize=None)
    def cycles(m: int, k: int, n: int, rows: int, cols: int) -> int:
        cfg = configs.setdefault((rows, cols), SystolicConfig(array_rows=rows, array_cols=cols, dataflow=dataflow))
        return int(simulate_layer(cfg, Layer.gemm("gemm", m, n, k)).total_cycles)

    cycles.__qualname__ = f"hw.systolic.simulate_layer[{dataflow}]"
    return cycles


def _systolic_callable(systolic) -> Callable | None:
    if systolic is None or systolic is False:
        return None
    if callable(systolic):
        return systolic
    if systolic is True:
        return simulator_cycles("ws")
    raise NeurosimError(f"systolic must be None, True or a callable cycles(M, K, N, rows, cols), got {systolic!r}")


def cost(workload, spec, *, systolic=None, **options):
    """Roofline cost on a TPU chip; ``options`` as :func:`hw.gpu.roofline` (``sparse`` is not offered)."""
    from hw.gpu import roofline

    if options.get("sparse"):
        raise NeurosimError(f"{spec.key}: TPUs publish no structured-sparsity peak")
    cycles = _systolic_callable(systolic)
    clock_hz = spec.clock_mhz * 1e6

    def systolic_seconds(op):
        total = sum(count * cycles(m, k, n, spec.mxu_dim, spec.mxu_dim) for m, k, n, count in op.gemms())
        return total / (spec.mxus * clock_hz) if total else None

    report = roofline(workload, spec, compute_cycles=systolic_seconds if cycles is not None else None,
                      _precision_extra=_TPU_PRECISION, **options)
    report.assumptions["systolic"] = getattr(cycles, "__qualname__", None) if cycles else None
    report.assumptions["mxus"] = spec.mxus
    report.assumptions["clock_mhz"] = spec.clock_mhz
    if spec.clock_derived:
        report.notes.append(f"{spec.key}: clock derived from the published peak (Google does not publish it)")
    return report
