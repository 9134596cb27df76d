"""Zoo models and any ``nn.Module`` on the systolic simulator, through :mod:`hw.workload`.

:func:`layers_from_workload` maps every op that runs on the array to :class:`~hw.systolic.topology.Layer`:

* **conv** (1-D/2-D): a convolution layer on the zero-padded input, cropped to the extent the windows
  really read (so SCALE-Sim's ``ceil`` output rule and torch's ``floor`` agree), with dilation, the
  batch as extra output pixels, and **groups** as ``repeat`` identical per-group layers (``C/g``
  channels, ``K/g`` filters each; depthwise is ``g = C``). Transposed convolutions become their GEMM.
* **linear / matmul** (incl. ``bmm``): ``Layer.gemm(M, N, K)`` with ``repeat`` = the batch of products.
* **attention** (fused SDPA): its two GEMMs per head, ``QK^T`` (``L x E x S``) and ``PV`` (``L x S x Ev``),
  ``repeat = batch * heads``.

Everything else (norms, pooling, element-wise ops, embeddings' gathers) does not run on the array and is
left out; :func:`simulate_model` reports how many such ops there were.
"""
from __future__ import annotations

from hw.systolic.config import SystolicConfig, read_config
from hw.systolic.simulator import SystolicResult, simulate
from hw.systolic.topology import Layer
from neurosim.errors import NeurosimError


def _conv_layer(op) -> list[Layer]:
    a = op.attrs
    g = a["groups"]
    name = op.name or op.aten
    if a["transposed"]:
        return [Layer.gemm(name, m, n, k, repeat=cnt) for (m, k, n, cnt) in op.gemms()]
    sh, sw = (list(a["stride"]) + [1, 1])[:2] if len(a["stride"]) == 2 else (a["stride"][0], 1)
    ph, pw = (list(a["pad"]) + [0, 0])[:2] if len(a["pad"]) == 2 else (a["pad"][0], 0)
    dh, dw = (list(a["dilation"]) + [1, 1])[:2] if len(a["dilation"]) == 2 else (a["dilation"][0], 1)
    oh, ow = a["OH"], a["OW"]
    # the extent the windows read of the padded input (torch floors; crop so that ceil agrees)
    h = (oh - 1) * sh + dh * (a["R"] - 1) + 1
    w = (ow - 1) * sw + dw * (a["S"] - 1) + 1
    if h > a["H"] + 2 * ph or w > a["W"] + 2 * pw:
        raise NeurosimError(f"conv {name!r}: output {oh}x{ow} does not fit its padded input")
    return [Layer(name, h, w, a["R"], a["S"], a["C"] // g, a["K"] // g, sh, sw, batch=a["N"], repeat=g,
                  kind="conv", dilation_h=dh, dilation_w=dw)]


def layers_from_workload(workload) -> tuple[list[Layer], int]:
    """``(layers, skipped)``: the array's layers of a :class:`hw.workload.Workload` and the ops left out."""
    layers: list[Layer] = []
    skipped = 0
    for op in workload.ops:
        if op.kind == "conv":
            layers.extend(_conv_layer(op))
        elif op.kind in ("linear", "matmul", "attention"):
            name = op.name or op.aten
            for j, (m, k, n, cnt) in enumerate(op.gemms()):
                if m < 1 or k < 1 or n < 1 or cnt < 1:
                    continue
                suffix = ("", ".pv")[j] if op.kind == "attention" else ""
                layers.append(Layer.gemm(name + (".qk" if op.kind == "attention" and j == 0 else suffix),
                                         m, n, k, repeat=cnt))
        else:
            skipped += 1
    return layers, skipped


def simulate_model(model, *, array=(32, 32), dataflow="ws", batch=1, config=None, inputs=None, seq=None,
                   dtype=None, energy=None, trace_dir=None, progress=None, max_trace_bytes=None,
                   **overrides) -> SystolicResult:
    """Simulate a zoo model (``"resnet18"``), a :class:`hw.workload.Workload` or an ``nn.Module`` (with ``inputs``).

    ``config``: a :class:`SystolicConfig` or a SCALE-Sim ``.cfg`` path supplying SRAMs, offsets and the
    bandwidth mode; ``array`` and ``dataflow`` override it unless ``None``. ``overrides`` go to the config
    (``ifmap_sram_kib=...``, ``bandwidth_mode="USER"``, ``bandwidth_words=10``, ``os_timing="paper"``...).
    The result's ``skipped_ops`` counts ops that do not run on the array.
    """
    from hw import workload as wl

    if isinstance(model, str):
        w = wl.profile(model, batch=batch, seq=seq, dtype=dtype)
        run_name = model
    elif hasattr(model, "ops") and hasattr(model, "macs"):
        w, run_name = model, getattr(model, "model", "workload")
    else:
        if inputs is None:
            raise NeurosimError("simulate_model(nn.Module) needs example inputs: inputs=(tensor, ...)")
        w = wl.trace(model, inputs, dtype=dtype)
        run_name = w.model
    if config is None:
        cfg = SystolicConfig(run_name=_safe(run_name))
    elif isinstance(config, SystolicConfig):
        cfg = config
    else:
        cfg = read_config(config)
    changes = dict(overrides)
    if array is not None:
        r, c = parse_array(array)
        changes.update(array_rows=r, array_cols=c)
    if dataflow is not None:
        changes["dataflow"] = dataflow
    cfg = cfg.with_(**changes) if changes else cfg
    layers, skipped = layers_from_workload(w)
    if not layers:
        raise NeurosimError(f"model {run_name!r} has no convolution, linear, matmul or attention op to simulate")
    res = simulate(cfg, layers, energy=energy, trace_dir=trace_dir, progress=progress, max_trace_bytes=max_trace_bytes)
    res.skipped_ops = skipped
    res.model = run_name
    return res


def parse_array(array) -> tuple[int, int]:
    """``"128x128"`` or ``(128, 128)`` -> ``(rows, cols)``."""
    if isinstance(array, str):
        try:
            r, c = (int(x) for x in array.lower().split("x"))
        except ValueError:
            raise NeurosimError(f"array must look like 128x128, got {array!r}") from None
        return r, c
    r, c = array
    return int(r), int(c)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name)) or "model"
