"""hardware_cost: every zoo model on every catalog device — latency, energy per inference, training energy, carbon.

Method (nothing here models hardware; it sweeps the suite's own models):

* the workload is :func:`hw.workload.profile` of the zoo model at the cell's batch size, traced on the
  meta device (so GPT-3 175B and Mixtral cost like LeNet-5 to profile);
* inference cost is :func:`hw.cost` on the catalog device at the cell's precision — the roofline of
  :mod:`hw.gpu` for GPUs and CPUs, :mod:`hw.tpu` for TPUs, and for neuromorphic chips the rate-coded
  SNN activity model of :mod:`hw.neuromorphic` with its stated default firing rate and timesteps (the
  chip uses its own weight precision, so neuromorphic devices appear once, under ``int8``); energy per
  inference is the batch's energy divided by the batch size;
* training is :func:`hw.training.train` with the traced workload (3 x forward FLOPs per item) for
  ``TRAIN_ITEMS`` = 10^8 items (tokens for token models, samples otherwise; about 90 ImageNet-1k
  epochs for an image model) on one device at the module's default MFU and the cell's precision
  (int8 cells train at the device's default, bf16 where it has it), then energy x PUE x grid
  intensity (:mod:`hw.carbon` defaults) for carbon. Neuromorphic chips have no training model (NaN).

A NaN energy means the catalog publishes no power for that device (the cost report's notes say so).

Sweep: every zoo model x every catalog device x precision {fp32, bf16, int8} x batch {1, 32}.
Quick: four small models x one device per family (A100, H100, TPU v4, Xeon, Loihi 2) x {fp32, bf16}
x batch 1.
"""
from __future__ import annotations

import math
from functools import lru_cache

from studies.registry import Sweep, study

TRAIN_ITEMS = 1e8
PRECISIONS = ["fp32", "bf16", "int8"]


def zoo_models() -> list[str]:
    import models

    return models.names()


def devices() -> list[str]:
    import hw

    return hw.names()


def _family(device: str) -> str:
    import hw

    return hw.get(device).family


def _cell_filter(cell: dict) -> bool:
    # Neuromorphic chips run their own fixed-point weights: one cell per model and batch, filed under int8.
    return cell["precision"] == "int8" if _family(cell["device"]) == "neuromorphic" else True


def _quick_filter(cell: dict) -> bool:
    return _cell_filter(cell) and (cell["precision"] != "int8" or _family(cell["device"]) == "neuromorphic")


@lru_cache(maxsize=64)
def _workload(model: str, batch: int):
    from hw.workload import profile

    return profile(model, batch=batch)


@study("hardware_cost",
       sweep=Sweep(model=zoo_models, device=devices, precision=PRECISIONS, batch=[1, 32], where=_cell_filter),
       quick=Sweep(model=["mlp", "lenet5", "resnet_tiny", "bert_tiny"],
                   device=["a100_80gb", "h100_sxm", "tpu_v4", "xeon_8380", "loihi2"],
                   precision=PRECISIONS, batch=[1], where=_quick_filter),
       requires=("models", "hw.workload", "hw.report", "hw.training", "hw.carbon"),
       description="every zoo model on every catalog device: latency, energy per inference, training energy, carbon")
def hardware_cost(model: str, device: str, precision: str, batch: int) -> dict:
    """Inference and training cost of one zoo model on one catalog device."""
    import hw
    import models
    from hw import training

    w = _workload(model, batch)
    spec = hw.get(device)
    neuro = spec.family == "neuromorphic"
    r = hw.cost(w, device) if neuro else hw.cost(w, device, precision=precision)
    t = r.totals
    row = dict(family=models.entry(model).family, device_family=spec.family, params=w.params,
               macs_per_inference=w.macs / batch, compute_precision=t.get("compute_precision"),
               latency_s=t["latency_s"], energy_per_inference_j=t["energy_j"] / batch,
               carbon_per_inference_kg=t["carbon_kg"] / batch,
               inferences_per_s=batch / t["latency_s"] if t["latency_s"] else math.nan,
               notes=len(r.notes))
    if neuro:
        row.update(train_items=TRAIN_ITEMS, train_precision=None, train_time_days=math.nan,
                   train_energy_kwh=math.nan, train_carbon_kg=math.nan)
    else:
        # int8 is an inference format: its cells train at the device's default (bf16, else fp16, else fp32).
        tr = training.train(device, workload=w, tokens=TRAIN_ITEMS, precision=None if precision == "int8" else precision)
        row.update(train_items=TRAIN_ITEMS, train_precision=tr["precision"], train_time_days=tr["time_days"],
                   train_energy_kwh=tr["energy_j"] / 3.6e6, train_carbon_kg=tr["carbon_kg"])
    return row


def _headline(df):
    """Batch 1 at bf16 on GPUs/TPUs/CPUs (their own precision on neuromorphic chips)."""
    d = df[df.batch == df.batch.min()]
    return d[(d.precision == "bf16") | (d.device_family == "neuromorphic")]


@hardware_cost.table("Energy per inference (J), batch 1, bf16; best device of each family")
def _best_per_family(df):
    d = _headline(df).dropna(subset=["energy_per_inference_j"])
    best = d.loc[d.groupby(["model", "device_family"]).energy_per_inference_j.idxmin()]
    best = best.assign(cell=best.energy_per_inference_j.map(lambda v: f"{v:.3g}") + " (" + best.device + ")")
    return best.pivot(index="model", columns="device_family", values="cell").reset_index()


@hardware_cost.table("Training 1e8 items on one device: days, kWh, kg CO2e (bf16)")
def _training(df):
    d = _headline(df)
    d = d[d.device_family != "neuromorphic"]
    return (d[["model", "device", "train_time_days", "train_energy_kwh", "train_carbon_kg"]]
            .sort_values(["model", "train_energy_kwh"]).reset_index(drop=True))


@hardware_cost.figure("Energy per inference vs MACs (batch 1, bf16; one marker per device family)")
def _energy_vs_macs(df):
    from studies.plots import scatter_by_group

    return scatter_by_group(_headline(df), x="macs_per_inference", y="energy_per_inference_j", group="device_family",
                            logx=True, logy=True, xlabel="MACs per inference", ylabel="energy per inference (J)")


@hardware_cost.figure("Latency vs MACs (batch 1, bf16; one marker per device family)")
def _latency_vs_macs(df):
    from studies.plots import scatter_by_group

    return scatter_by_group(_headline(df), x="macs_per_inference", y="latency_s", group="device_family",
                            logx=True, logy=True, xlabel="MACs per inference", ylabel="latency (s)")
