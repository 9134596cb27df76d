"""`neurosim convert MODEL`: train (or load) a zoo ANN, convert it to an SNN, accuracy against timesteps.

    neurosim convert lenet5 --dataset mnist5k --set batchnorm=true --timesteps 4,8,16,32,64 --norm p99.9
    neurosim convert mlp --dataset mnist5k --activation qcfs --timesteps 4,8 --json
    neurosim convert resnet_tiny --activation qcfs --signed --calibrate --timesteps 4,8

Trained checkpoints are cached under ``runs/convert/`` (keyed by model, options, data set, epochs and
seed), so a second call only converts and simulates. One simulation at the largest T gives the
accuracy at every smaller T (the network is causal: the readout after t steps is what a t-step run
returns). With ``--calibrate`` the network is calibrated for each T and simulated once per T
instead. The plot of accuracy against timesteps is written next to the checkpoint (or to ``--plot``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from neurosim.cli import POSITIVE, POSITIVE_INT, command, number, parse_sets
from neurosim.errors import NeurosimError, check_writable

DEFAULT_TIMESTEPS = "4,8,16,32,64"


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


def _parse_timesteps(s: str) -> list[int]:
    try:
        ts = sorted({int(t) for t in s.split(",") if t.strip()})
    except ValueError:
        raise NeurosimError(f"--timesteps takes comma-separated positive integers, got {s!r}") from None
    if not ts or ts[0] < 1:
        raise NeurosimError(f"--timesteps takes comma-separated positive integers, got {s!r}")
    return ts


def checkpoint_path(model: str, dataset: str, overrides: dict, epochs: int, seed: int, root="runs/convert") -> Path:
    key = json.dumps({"m": model, "d": dataset, "o": overrides, "e": epochs, "s": seed}, sort_keys=True)
    tag = hashlib.sha1(key.encode()).hexdigest()[:8]
    act = overrides.get("activation", "relu")
    return Path(root) / f"{model}-{act}-{dataset.replace(':', '_').replace('/', '_')}-{tag}.pt"


def train_or_load(model: str, dataset: str, overrides: dict, *, checkpoint: str | None = None, epochs: int = 8,
                  seed: int = 0, lr: float = 1e-3, quiet: bool = False):
    """The trained ANN: ``checkpoint`` (or the cache) if it exists, else train and save there."""
    import models
    from models.qcfs import register

    register()
    from models.train import train_model

    path = Path(checkpoint) if checkpoint else checkpoint_path(model, dataset, overrides, epochs, seed)
    if path.is_file():
        return models.load(path, expect=model), path
    if checkpoint:
        check_writable(path, "--checkpoint")
    if checkpoint and not quiet:
        print(f"(no checkpoint at {path}; training {model} on {dataset} and saving it there)")
    net, res = train_model(model, dataset, overrides=overrides, out=path, seed=seed, epochs=epochs, lr=lr,
                           progress=not quiet)  # a per-epoch bar on a terminal only
    if not quiet:
        print(f"(trained {model} on {dataset}: {res.epochs_run} epochs in {res.seconds:.0f} s, "
              f"test accuracy {100 * res.test_accuracy:.2f}%; saved {path})")
    return net, path


def run_convert(model: str, dataset: str = "mnist5k", timesteps=(4, 8, 16, 32, 64), *, overrides: dict | None = None,
                checkpoint: str | None = None, norm: str = "p99.9", per_channel: bool = True, epochs: int = 8,
                seed: int = 0, lr: float = 1e-3, calibration: int = 1000, test_samples: int | None = None,
                encoding: str = "direct", plot: str | None = "", batch_size: int | None = None,
                quiet: bool = False, signed: bool = False, calibrate: bool = False, calibration_iters: int = 1,
                save_ir: str | None = None) -> ConvertReport:
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
                              quiet=quiet)
    train_set, test_set = resolve_dataset(dataset)
    if test_samples:
        test_set = test_set.subset(torch.arange(min(test_samples, len(test_set))))
    ann.eval()
    ann_acc = evaluate(ann, test_set)
    ts = sorted(timesteps)
    kw = dict(norm=norm, per_channel=per_channel, encoding=encoding, signed=signed, calibration_samples=calibration)
    t_conv = t_sim = 0.0
    import sys

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


@command("convert", help="train or load a zoo ANN, convert it to a spiking network, accuracy vs timesteps")
def configure(p):
    p.add_argument("model", help="zoo model name (mlp, lenet5, resnet_tiny, ...)")
    p.add_argument("--dataset", default="mnist5k", help="digits, mnist5k, mnist-idx:DIR, cifar10:DIR (CIFAR-10's pickled batches are read with a "
                   "restricted unpickler: only dicts, lists, bytes, str and numpy arrays, no code runs)")
    p.add_argument("--checkpoint", help="trained weights (models.save format); trained and saved there if missing")
    p.add_argument("--timesteps", default=DEFAULT_TIMESTEPS, help=f"comma-separated T values ({DEFAULT_TIMESTEPS})")
    p.add_argument("--norm", default="p99.9", help="activation scale: max or a percentile pNN.N (default p99.9)")
    p.add_argument("--per-layer", action="store_true", help="one scale per layer instead of per channel")
    p.add_argument("--activation", default=None, help="train with this activation (relu, qcfs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --set batchnorm=true --set pool=max")
    p.add_argument("--encoding", default="direct", choices=["direct", "poisson"])
    p.add_argument("--signed", action="store_true",
                   help="signed IF neurons that take back early spikes (Wang et al. IJCAI 2022)")
    p.add_argument("--calibrate", action="store_true",
                   help="calibrate neuron biases for each T on the calibration data (Li et al. ICML 2021)")
    p.add_argument("--calibration-iters", type=POSITIVE_INT, default=1, help="bias-calibration passes per layer (1)")
    p.add_argument("--epochs", type=POSITIVE_INT, default=8)
    p.add_argument("--lr", type=POSITIVE, default=1e-3)
    p.add_argument("--seed", type=number(int, 0), default=0)
    p.add_argument("--calibration", type=POSITIVE_INT, default=1000, help="training samples used for normalisation")
    p.add_argument("--test-samples", type=POSITIVE_INT, default=None, help="evaluate on the first N test samples")
    p.add_argument("--plot", default="", help="PNG path for accuracy vs timesteps (default: next to the checkpoint)")
    p.add_argument("--save-ir", default=None, help="also write the converted network (.npz)")
    p.add_argument("--json", action="store_true")

    def run(args):
        from neurosim.cli import emit

        from neurosim.convert.core import parse_norm

        ts = _parse_timesteps(args.timesteps)
        parse_norm(args.norm)  # fail before training
        for flag, path in (("--save-ir", args.save_ir), ("--plot", args.plot)):
            if path:
                check_writable(path, flag)
        overrides = parse_sets(args.set)
        if args.activation:
            overrides["activation"] = args.activation
        rep = run_convert(args.model, args.dataset, ts, overrides=overrides, checkpoint=args.checkpoint,
                          norm=args.norm, per_channel=not args.per_layer, epochs=args.epochs, seed=args.seed,
                          lr=args.lr, calibration=args.calibration, test_samples=args.test_samples,
                          encoding=args.encoding, plot=args.plot, quiet=args.json, signed=args.signed,
                          calibrate=args.calibrate, calibration_iters=args.calibration_iters, save_ir=args.save_ir)
        if args.json:
            emit(rep, True)
        else:
            gran = "" if rep.activation == "qcfs" else (" per channel" if rep.per_channel else " per layer")
            extra = ("; signed neurons" if rep.signed else "") + ("; biases calibrated per T" if rep.calibrated else "")
            title = (f"{rep.model} ({rep.activation}) on {rep.dataset}: ANN {100 * rep.ann_accuracy:.2f}% "
                     f"on {rep.test_samples} test samples; norm {rep.norm}{gran}{extra}")
            emit(rep, False, title=title, float_format="{:.2f}")
            print(f"at T={rep.timesteps[-1]}: {rep.spikes_per_sample:,.0f} spikes and {rep.synops_per_sample:,.0f} "
                  f"synaptic ops per sample (ANN: {rep.ann_macs_per_sample:,.0f} MACs), {rep.neurons:,} neurons; "
                  f"simulated in {rep.simulate_s:.1f} s")
            if rep.plot:
                print(f"plot: {rep.plot}")
        return 0

    return run


def demo_step():
    """`make demo`: an MLP on MNIST-5k with ReLU and with QCFS training, and the QCFS ResNet with signed
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
