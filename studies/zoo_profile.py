"""zoo_profile: what every zoo model asks of any hardware — parameters, MACs, FLOPs, bytes moved.

Method: :func:`hw.workload.profile` traces each model on the meta device (no weights allocated, so
GPT-3 175B is profiled like LeNet-5) at each batch size and storage precision. Arithmetic intensity
is FLOPs per byte of (weights + activations) moved once, the x axis of a roofline plot: below a
device's ridge point (peak FLOP/s / memory bandwidth) a model is memory-bound on it.

Sweep: every zoo model x batch {1, 8} x dtype {fp32, bf16}. Quick: three small models at batch 1, fp32.
"""
from __future__ import annotations

from studies.registry import Sweep, study


def zoo_models() -> list[str]:
    import models

    return models.names()


@study("zoo_profile",
       sweep=Sweep(model=zoo_models, batch=[1, 8], dtype=["fp32", "bf16"]),
       quick=Sweep(model=["mlp", "lenet5", "vit_tiny"], batch=[1], dtype=["fp32"]),
       requires=("models", "hw.workload"),
       description="params, MACs, FLOPs and bytes of every zoo model per batch and precision (meta device)")
def zoo_profile(model: str, batch: int, dtype: str) -> dict:
    """Profile one zoo model at one batch size and precision."""
    import models
    from hw.workload import profile

    w = profile(model, batch=batch, dtype=dtype)
    moved = w.param_bytes + w.activation_bytes
    return dict(family=models.entry(model).family, params=w.params, macs=w.macs, flops=w.flops,
                param_bytes=w.param_bytes, activation_bytes=w.activation_bytes, ops=len(w.ops),
                flops_per_byte=w.flops / moved if moved else float("nan"))


@zoo_profile.table("Per model at batch 1 (fp32 where stored)")
def _per_model(df):
    d = df.sort_values(["model", "batch", "dtype"], ascending=[True, True, False])
    d = d.drop_duplicates("model")
    out = d[["model", "family", "params", "macs", "flops", "param_bytes", "activation_bytes", "flops_per_byte"]]
    return out.assign(GMACs=out.macs / 1e9, param_MB=out.param_bytes / 1e6).drop(columns=["macs", "param_bytes"])


@zoo_profile.figure("MACs per inference vs parameters (batch 1), one marker per model family")
def _macs_vs_params(df):
    from studies.plots import scatter_by_group

    d = df[df.batch == df.batch.min()].drop_duplicates("model")
    return scatter_by_group(d, x="params", y="macs", group="family", label="model", logx=True, logy=True,
                            xlabel="parameters", ylabel="MACs per inference")
