"""ann_vs_snn: zoo models trained on bundled data, converted to SNNs, run on every spiking backend.

Per task (a zoo model trained on a bundled data set) the study asks three questions a reader of an
ANN-to-SNN paper asks, with the suite's own pieces and nothing re-implemented:

1. *Accuracy vs timesteps, per backend, precision and conversion method.* The ANN is trained by
   :func:`models.train.train_model` (seed 0, Adam, early stopping on a validation split; one intra-op
   thread so every worker process trains the same weights), converted by :func:`neurosim.convert`
   (rate coding, IF neurons with reset by subtraction, 99.9th-percentile normalisation on the first
   ``CALIBRATION`` training images; ``conversion="signed+calibrated"`` adds signed neurons and biases
   calibrated for the cell's ``timesteps``, the low-latency options of :mod:`neurosim.convert.core`) and run by ``SpikingNetwork.run`` on the first ``samples`` test
   images for ``timesteps`` steps on each registered backend (snntorch; Lava float and bit-accurate
   fixed point; Brian2 when installed) — the same images for every backend, so accuracies compare.
2. *Spike activity:* spikes and synaptic operations per sample and the mean firing rate, as the
   backend's :class:`~neurosim.ir.SimResult` measured them.
3. *Energy per inference for the same task:* the ANN at batch 1 on a GPU (``GPU``) and a TPU
   (``TPU``) by :func:`hw.cost` on its traced workload, against the SNN on Loihi 2 (``NEURO``) by
   :func:`hw.neuromorphic.cost_from_simresult` on the activity the backend measured (energy and
   latency for the whole batch, divided by the number of samples).

**Transformer tasks** (issue 13): ``bert_tiny@majority_tokens`` (3 epochs) and ``vit_tiny@mnist5k``
(``patch_size`` and the ``vit`` training recipe of :mod:`models.recipes`, see ``TRAIN``) convert on the
plain path only (the Transformer converter has no signed/calibrated options) and run on the backends
that have its operators (snntorch; the others refuse them). Their Loihi 2 energy is
:func:`neurosim.loihi.operators.cost_operators` on the measured activity - the products of two spike
streams priced as processor multiply-accumulates, Softmax/LayerNorm as processor work - and
``snn_product_energy_j`` is the part spent on the products.

Sweep: tasks mlp@digits, lenet5@mnist5k, bert_tiny@majority_tokens and vit_tiny@mnist5k x every
backend x its precisions x conversion {plain, signed+calibrated} x timesteps {4, 8, 16, 32, 64, 128} on
200 test images. Quick: mlp@digits and bert_tiny@majority_tokens x backends x precisions x conversions x
{2, 4, 8, 32} on 100 images.
Cells may run Lava in spawned worker processes after training there; the Lava backend itself copes
with a start method chosen before its import.
"""
from __future__ import annotations

from functools import lru_cache

from studies.registry import Sweep, study

TASKS = ["mlp@digits", "lenet5@mnist5k", "bert_tiny@majority_tokens", "vit_tiny@mnist5k"]
QUICK_TASKS = ["mlp@digits", "bert_tiny@majority_tokens"]
EPOCHS = 15
#: per-task training other than EPOCHS epochs of the default recipe (models.train.train_model keywords)
TRAIN = {"bert_tiny@majority_tokens": dict(epochs=3),
         "vit_tiny@mnist5k": dict(epochs=30, lr=2e-3, recipe="vit", overrides={"activation": "relu", "patch_size": 7})}
TRANSFORMERS = ("bert_tiny", "vit_tiny")
TRANSFORMER_BACKENDS = ("snntorch",)
CALIBRATION = 500
GPU, TPU, NEURO = "a100_80gb", "tpu_v4", "loihi2"
CONVERSIONS = ["plain", "signed+calibrated"]


def backends() -> list[str]:
    from neurosim.backends import backend_names

    return backend_names()


def is_transformer(task: str) -> bool:
    return task.split("@")[0] in TRANSFORMERS


def _valid(cell: dict) -> bool:
    from neurosim.backends import get_backend

    if is_transformer(cell["task"]) and (cell["conversion"] != "plain" or cell["backend"] not in TRANSFORMER_BACKENDS
                                         or cell["precision"] != "float"):
        return False

    try:
        return cell["precision"] in get_backend(cell["backend"]).precisions
    except Exception:  # noqa: BLE001 - a backend that cannot import is reported when its cells run
        return cell["precision"] == "float"


@lru_cache(maxsize=4)
def _task(task: str):
    """Train (once per process) and convert the task's model (plainly); returns (ann, snn, test set, ANN accuracy)."""
    import torch

    import neurosim
    from models.data import load_dataset
    from models.train import train_model

    model, dataset = task.split("@")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights in every worker process, whatever its thread count
    try:
        ann, result = train_model(model, dataset, **{"epochs": EPOCHS, **TRAIN.get(task, {})}, seed=0,
                                  progress=False)
    finally:
        torch.set_num_threads(threads)
    train_set, test_set = load_dataset(dataset)
    snn = neurosim.convert(ann, train_set.x[:CALIBRATION])
    return ann.eval(), snn, test_set, result.test_accuracy


@lru_cache(maxsize=16)
def _snn(task: str, conversion: str, timesteps: int):
    """The task's SNN for one conversion method (signed neurons and biases calibrated for ``timesteps``)."""
    import neurosim
    from models.data import load_dataset

    ann, snn, _, _ = _task(task)
    if conversion == "plain":
        return snn
    train_set, _ = load_dataset(task.split("@")[1])
    return neurosim.convert(ann, train_set.x[:CALIBRATION], signed=True, calibrate=timesteps)


@lru_cache(maxsize=4)
def _ann_costs(task: str) -> dict:
    import hw
    from hw.workload import trace

    ann, _, test_set, _ = _task(task)
    w = trace(ann, (test_set.x[:1],))
    out = {"macs_per_inference": w.macs}
    for key, dev in (("gpu", GPU), ("tpu", TPU)):
        r = hw.cost(w, dev)
        out[f"ann_{key}_energy_j"] = r["energy_j"]
        out[f"ann_{key}_latency_s"] = r["latency_s"]
    return out


@study("ann_vs_snn",
       sweep=Sweep(task=TASKS, backend=backends, precision=["float", "fixed"], conversion=CONVERSIONS,
                   timesteps=[4, 8, 16, 32, 64, 128], samples=[200], where=_valid),
       quick=Sweep(task=QUICK_TASKS, backend=backends, precision=["float", "fixed"], conversion=CONVERSIONS,
                   timesteps=[2, 4, 8, 32], samples=[100], where=_valid),
       requires=("models.train", "models.data", "neurosim.convert", "neurosim.backends", "hw.neuromorphic",
                 "hw.workload"),
       description="trained zoo models converted to SNNs (plain, and signed + calibrated): accuracy vs "
                   "timesteps per backend, spikes, energy per inference on GPU vs TPU vs Loihi 2")
def ann_vs_snn(task: str, backend: str, precision: str, conversion: str, timesteps: int, samples: int) -> dict:
    """Convert one trained task model one way and run it on one backend at one precision and length."""
    import time

    import torch

    import hw
    from hw.neuromorphic import cost_from_simresult

    if conversion not in CONVERSIONS:
        raise ValueError(f"conversion must be one of {CONVERSIONS}, got {conversion!r}")
    ann, _, test_set, ann_test_accuracy = _task(task)
    snn = _snn(task, conversion, timesteps if conversion != "plain" else 0)
    x, y = test_set.x[:samples], test_set.y[:samples]
    t0 = time.perf_counter()
    res = snn.run(x, timesteps, backend=backend, precision=precision)
    wall = time.perf_counter() - t0
    with torch.no_grad():
        ann_acc = float((ann(x).argmax(-1) == y).float().mean())
    n = res.batch
    if is_transformer(task):
        from neurosim.loihi.operators import cost_operators

        ops = cost_operators(snn, res, NEURO, model=task)
        energy, latency = ops["energy_j"], float("nan")  # per sample already; no per-step timing model
        product = ops["product_energy_j"]
    else:
        neuro = cost_from_simresult(res, hw.get(NEURO), model=task)
        energy, latency, product = neuro["energy_j"] / n, neuro["latency_s"] / n, 0.0
    return dict(
        ann_accuracy=ann_acc, ann_test_accuracy=ann_test_accuracy, snn_accuracy=res.accuracy(y.numpy()),
        spikes_per_sample=res.total_spikes / n, synops_per_sample=res.total_synops,
        mean_firing_rate=sum(res.firing_rates[k] * res.neurons[k] for k in res.neurons) / sum(res.neurons.values()),
        neurons=sum(res.neurons.values()),
        snn_loihi2_energy_j=energy, snn_loihi2_latency_s=latency, snn_product_energy_j=product,
        **_ann_costs(task), sim_wall_s=wall,
    )


def _reference(df):
    """The rows whose activity prices the SNN: snntorch (else the first backend), float."""
    b = "snntorch" if (df.backend == "snntorch").any() else df.backend.iloc[0]
    return df[(df.backend == b) & (df.precision == "float")]


def _label(df):
    return df.backend + "/" + df.precision + "/" + df.conversion


@ann_vs_snn.table("SNN accuracy by timesteps (ANN accuracy on the same images in the last column)")
def _acc_table(df):
    d = df.assign(run=_label(df))
    t = d.pivot_table(index=["task", "run"], columns="timesteps", values="snn_accuracy").reset_index()
    ann = d.groupby("task").ann_accuracy.first()
    t.columns = [str(c) if not isinstance(c, str) else c for c in t.columns]
    return t.assign(ANN=t.task.map(ann))


@ann_vs_snn.table("Energy per inference (J): ANN on GPU and TPU vs SNN on Loihi 2 (snntorch activity)")
def _energy_table(df):
    d = _reference(df)
    out = d[["task", "conversion", "timesteps", "snn_accuracy", "spikes_per_sample", "snn_loihi2_energy_j",
             "ann_gpu_energy_j", "ann_tpu_energy_j", "snn_loihi2_latency_s"]]
    return out.sort_values(["task", "conversion", "timesteps"]).reset_index(drop=True)


@ann_vs_snn.figure("Accuracy vs timesteps per backend (dashed: the ANN)")
def _acc_fig(df):
    from studies.plots import MARKERS, new_figure

    tasks = list(dict.fromkeys(df.task))
    fig, _ = new_figure(6.0 * len(tasks), 4.0)
    fig.clear()
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        d = df[df.task == task].assign(run=lambda f: _label(f))
        for i, (run, sub) in enumerate(d.groupby("run")):
            sub = sub.sort_values("timesteps")
            ax.plot(sub.timesteps, sub.snn_accuracy, marker=MARKERS[i % len(MARKERS)], label=run, alpha=0.85)
        ax.axhline(d.ann_accuracy.iloc[0], ls="--", color="black", lw=1, label="ANN")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("timesteps")
        ax.set_ylabel("test accuracy")
        ax.set_title(task, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig


@ann_vs_snn.figure("Spike activity: spikes per sample vs timesteps per backend")
def _spikes_fig(df):
    from studies.plots import lines_by_group

    d = df.assign(run=df.task + " " + _label(df))
    return lines_by_group(d, x="timesteps", y="spikes_per_sample", group="run", logx=True, logy=True,
                          ylabel="spikes per sample")


@ann_vs_snn.figure("Energy per inference, same task: ANN on GPU / TPU vs SNN on Loihi 2 (by timesteps)")
def _energy_fig(df):
    import pandas as pd

    from studies.plots import bars

    d = _reference(df)
    rows = []
    for task, sub in d.groupby("task"):
        rows.append(dict(task=task, target=f"GPU {GPU} (ANN)", energy=sub.ann_gpu_energy_j.iloc[0]))
        rows.append(dict(task=task, target=f"TPU {TPU} (ANN)", energy=sub.ann_tpu_energy_j.iloc[0]))
        for r in sub.sort_values(["conversion", "timesteps"]).itertuples():
            rows.append(dict(task=task, target=f"{NEURO} T={r.timesteps} {r.conversion}", energy=r.snn_loihi2_energy_j))
    return bars(pd.DataFrame(rows), x="target", y="energy", group="task", logy=True, xlabel="",
                ylabel="energy per inference (J)")


@ann_vs_snn.figure("Accuracy vs energy per inference: the SNN on Loihi 2 at each T (labelled) vs the ANN on GPU and TPU")
def _acc_energy_fig(df):
    from studies.plots import MARKERS, new_figure

    fig, ax = new_figure()
    d = _reference(df)
    for i, (task, by_task) in enumerate(d.groupby("task")):
        c = f"C{i % 10}"
        for k, (conv, sub) in enumerate(by_task.groupby("conversion")):
            sub = sub.sort_values("timesteps")
            ax.plot(sub.snn_loihi2_energy_j, sub.snn_accuracy, marker="o", color=c, ls=("-", "--", ":")[k % 3],
                    label=f"{task}: SNN on {NEURO}, {conv}")
            for r in sub.itertuples():
                ax.annotate(f"T={r.timesteps}", (r.snn_loihi2_energy_j, r.snn_accuracy), fontsize=6,
                            xytext=(3, -8), textcoords="offset points")
        sub = by_task
        for j, (key, dev) in enumerate((("gpu", GPU), ("tpu", TPU))):
            ax.scatter([sub[f"ann_{key}_energy_j"].iloc[0]], [sub.ann_accuracy.iloc[0]], color=c, s=60,
                       marker=MARKERS[j + 1], edgecolors="black", linewidths=0.5, label=f"{task}: ANN on {dev}")
    ax.set_xscale("log")
    ax.set_xlabel("energy per inference (J)")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return fig
