"""The conversion pipeline: train (or load) a zoo ANN, convert it, simulate it, accuracy per timestep.

    >>> from neurosim.convert import run_convert
    >>> rep = run_convert("mlp", "mnist5k", (4, 8, 16), overrides={"activation": "qcfs"})
    >>> rep.to_dataframe()      # T, ANN and SNN accuracy, the difference in points

Trained checkpoints are cached under ``runs/convert/`` (keyed by model, options, data set, epochs and
seed: :func:`checkpoint_path`), so a second call only converts and simulates. One simulation at the
largest T gives the accuracy at every smaller T (the network is causal: the readout after t steps is what
a t-step run returns). With ``calibrate`` the network is calibrated for each T and simulated once per T
instead. ``neurosim convert`` is this module's command line.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from neurosim.errors import check_writable


@dataclass
class ConvertReport:
    """ANN and SNN accuracy side by side at each T, plus activity at the largest T."""

    model: str
    dataset: str
    activation: str
    norm: str
    per_channel: bool
    ann_accuracy: float
    test_samples: int
    timesteps: list[int]
    snn_accuracy: list[float]
    spikes_per_sample: float
    synops_per_sample: float
    ann_macs_per_sample: float
    neurons: int
    convert_s: float
    simulate_s: float
    checkpoint: str = ""
    plot: str = ""
    overrides: dict = field(default_factory=dict)
    signed: bool = False
    calibrated: bool = False

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame({
            "T": self.timesteps,
            "ann_acc_%": [100 * self.ann_accuracy] * len(self.timesteps),
            "snn_acc_%": [100 * a for a in self.snn_accuracy],
            "delta_pts": [100 * (a - self.ann_accuracy) for a in self.snn_accuracy],
        })

    def to_dict(self) -> dict:
        d = asdict(self)
        d["table"] = self.to_dataframe().to_dict(orient="records")
        return d


def checkpoint_path(model: str, dataset: str, overrides: dict, epochs: int, seed: int, root="runs/convert",
                    recipe: str | None = None, lr: float | None = None) -> Path:
    k = {"m": model, "d": dataset, "o": overrides, "e": epochs, "s": seed}
    if recipe not in (None, "default"):  # the key of a default-recipe run stays what it was
        k.update(r=recipe, lr=lr)
    key = json.dumps(k, sort_keys=True)
    tag = hashlib.sha1(key.encode()).hexdigest()[:8]
    act = overrides.get("activation", "relu")
    return Path(root) / f"{model}-{act}-{dataset.replace(':', '_').replace('/', '_')}-{tag}.pt"


def train_or_load(model: str, dataset: str, overrides: dict, *, checkpoint: str | None = None, epochs: int = 8,
                  seed: int = 0, lr: float = 1e-3, quiet: bool = False, recipe: str | None = None):
    """The trained ANN: ``checkpoint`` (or the cache) if it exists, else train and save there.
    ``recipe``: a :mod:`models.recipes` name (``vit``: AdamW, warm-up + cosine, label smoothing, shifts)."""
    import models
    from models.qcfs import register

    register()
    from models.train import train_model

    from models.recipes import get_recipe

    get_recipe(recipe)  # an unknown name fails before any work
    path = Path(checkpoint) if checkpoint else checkpoint_path(model, dataset, overrides, epochs, seed, recipe=recipe,
                                                               lr=lr)
    if path.is_file():
        return models.load(path, expect=model), path
    if checkpoint:
        check_writable(path, "checkpoint")
    if checkpoint and not quiet:
        print(f"(no checkpoint at {path}; training {model} on {dataset} and saving it there)")
    net, res = train_model(model, dataset, overrides=overrides, out=path, seed=seed, epochs=epochs, lr=lr,
                           progress=not quiet, recipe=recipe)  # a per-epoch bar on a terminal only
    if not quiet:
        print(f"(trained {model} on {dataset}: {res.epochs_run} epochs in {res.seconds:.0f} s, "
              f"test accuracy {100 * res.test_accuracy:.2f}%; saved {path})")
    return net, path


def run_convert(model: str, dataset: str = "mnist5k", timesteps=(4, 8, 16, 32, 64), *, overrides: dict | None = None,
                checkpoint: str | None = None, norm: str = "p99.9", per_channel: bool = True, epochs: int = 8,
                seed: int = 0, lr: float = 1e-3, calibration: int = 1000, test_samples: int | None = None,
                encoding: str = "direct", plot: str | None = "", batch_size: int | None = None,
                quiet: bool = False, signed: bool = False, calibrate: bool = False, calibration_iters: int = 1,
                save_ir: str | None = None, recipe: str | None = None) -> ConvertReport:
    """Train/load, convert, simulate at max(T) with a readout trace, and report accuracy per T.

    ``signed``/``calibrate``: :func:`neurosim.convert`'s low-latency options; with ``calibrate`` one
    network is calibrated and simulated per T. ``save_ir``: also write the converted network (the
    one for the largest T) to this ``.npz`` path.
    """
    import time

    import torch

    import neurosim
    from models.train import evaluate, resolve_dataset

    overrides = dict(overrides or {})
    activation = overrides.get("activation", "relu")
    ann, ckpt = train_or_load(model, dataset, overrides, checkpoint=checkpoint, epochs=epochs, seed=seed, lr=lr,
                              quiet=quiet, recipe=recipe)
    train_set, test_set = resolve_dataset(dataset)
    if test_samples:
        test_set = test_set.subset(torch.arange(min(test_samples, len(test_set))))
    ann.eval()
    ann_acc = evaluate(ann, test_set)
    ts = sorted(timesteps)
    kw = dict(norm=norm, per_channel=per_channel, encoding=encoding, signed=signed, calibration_samples=calibration)
    t_conv = t_sim = 0.0
    from tqdm.auto import tqdm

    bar = tqdm(total=len(ts) if calibrate else 1, desc=f"convert {model}", unit="T", leave=False,
               disable=quiet or not sys.stderr.isatty())  # per T on a terminal, quiet otherwise
    if calibrate:  # a network per T; no trace (each T is its own network)
        snn_acc, acc_t = [], None
        for t in ts:
            bar.set_postfix(T=t)
            t0 = time.perf_counter()
            snn = neurosim.convert(ann, train_set.x[:calibration], calibrate=t, calibration_iters=calibration_iters, **kw)
            t_conv += time.perf_counter() - t0
            res = snn.run(test_set.x, t, batch_size=batch_size, seed=seed)
            t_sim += res.wall_s
            snn_acc.append(res.accuracy(test_set.y.numpy()))
            bar.update(1)
    else:
        bar.set_postfix(T=ts[-1])
        t0 = time.perf_counter()
        snn = neurosim.convert(ann, train_set.x[:calibration], **kw)
        t_conv = time.perf_counter() - t0
        res = snn.run(test_set.x, ts[-1], record_trace=True, batch_size=batch_size, seed=seed)
        t_sim = res.wall_s
        acc_t = res.accuracy_trace(test_set.y.numpy())
        snn_acc = [float(acc_t[t - 1]) for t in ts]
        bar.update(1)
    bar.close()
    if save_ir:
        snn.save(save_ir)
    from hw.workload import trace as trace_workload

    try:
        macs = float(trace_workload(ann, (test_set.x[:1],)).macs)
    except Exception:  # the profiler is another area's; a failure there must not hide our table
        macs = float("nan")
    png = ""
    if plot is not None:
        method = ("-signed" if signed else "") + ("-calibrated" if calibrate else "")
        png = plot or str(Path(ckpt).with_suffix("")) + f"-{norm}{'' if per_channel else '-layer'}{method}-accuracy.png"
        title = f"{model} ({activation}{method.replace('-', ', ')}) on {dataset}, {norm}"
        _plot(png, ts, snn_acc, ann_acc, title, acc_t)
    if "attention_spikes" in snn.metadata:  # a Transformer: one scale per inserted population
        per_channel = False
    return ConvertReport(model, dataset, activation, norm if activation != "qcfs" else "qcfs-threshold", per_channel,
                         ann_acc,
                         len(test_set), ts, snn_acc, res.total_spikes / res.batch, res.total_synops,
                         macs, snn.n_neurons, t_conv, t_sim, str(ckpt), png, overrides, signed, calibrate)


def _plot(path: str, ts, snn_acc, ann_acc, title: str, trace=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    if trace is not None:
        ax.plot(range(1, len(trace) + 1), 100 * trace, color="C0", alpha=0.35, lw=1, label="SNN (every t)")
    ax.plot(ts, [100 * a for a in snn_acc], "o-", color="C0", label="SNN")
    ax.axhline(100 * ann_acc, color="C3", ls="--", label=f"ANN {100 * ann_acc:.2f}%")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ts, [str(t) for t in ts])
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("test accuracy (%)")
    lo = min(100 * min(snn_acc), 100 * ann_acc)
    ax.set_ylim(max(0, lo - 5), 100)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def demo_conversion():
    """`make demo`'s conversion step: an MLP on MNIST-5k with ReLU and with QCFS training, and the QCFS ResNet with signed
    neurons and biases calibrated per T, ANN vs SNN at each T."""
    import pandas as pd

    frames = []
    for model, act, ts, kw in (("mlp", "relu", [4, 8, 16, 32, 64], {}), ("mlp", "qcfs", [4, 8, 16, 32, 64], {}),
                               ("resnet_tiny", "qcfs", [4, 8], {"signed": True, "calibrate": True})):
        rep = run_convert(model, "mnist5k", ts, overrides={"activation": act}, epochs=8, quiet=True, **kw)
        df = rep.to_dataframe()
        df.insert(0, "model", f"{model}/{act}" + ("/signed+calibrated" if kw else ""))
        frames.append(df)
    return pd.concat(frames, ignore_index=True)
