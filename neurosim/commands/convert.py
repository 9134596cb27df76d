"""`neurosim convert MODEL`: train (or load) a zoo ANN, convert it to an SNN, accuracy against timesteps.

The command line of :mod:`neurosim.convert.pipeline` (which does the work):

    neurosim convert lenet5 --dataset mnist5k --set batchnorm=true --timesteps 4,8,16,32,64 --norm p99.9
    neurosim convert mlp --dataset mnist5k --activation qcfs --timesteps 4,8 --json
    neurosim convert resnet_tiny --activation qcfs --low-latency --timesteps 4,8 --seed 1

The plot of accuracy against timesteps is written next to the checkpoint (or to ``--plot``).
"""
from __future__ import annotations

from neurosim.cli import POSITIVE, POSITIVE_INT, command, number, parse_sets
from neurosim.errors import NeurosimError, check_writable

DEFAULT_TIMESTEPS = "4,8,16,32,64"


def _parse_timesteps(s: str) -> list[int]:
    try:
        ts = sorted({int(t) for t in s.split(",") if t.strip()})
    except ValueError:
        raise NeurosimError(f"--timesteps takes comma-separated positive integers, got {s!r}") from None
    if not ts or ts[0] < 1:
        raise NeurosimError(f"--timesteps takes comma-separated positive integers, got {s!r}")
    return ts


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
    p.add_argument("--low-latency", action="store_true",
                   help="the low-latency recipe: --signed --calibrate (signed neurons, biases calibrated per T in "
                        "one pass); the best at T <= 16 on residual nets, with --activation qcfs or relu")
    p.add_argument("--calibration-iters", type=POSITIVE_INT, default=1, help="bias-calibration passes per layer (1)")
    p.add_argument("--epochs", type=POSITIVE_INT, default=8)
    p.add_argument("--lr", type=POSITIVE, default=1e-3)
    p.add_argument("--recipe", default=None, help="training recipe: default (Adam, early stopping) or vit (AdamW, "
                   "warm-up + cosine, label smoothing 0.1, +-2 px shifts, no early stopping; models.recipes)")
    p.add_argument("--seed", type=number(int, 0), default=0)
    p.add_argument("--calibration", type=POSITIVE_INT, default=1000, help="training samples used for normalisation")
    p.add_argument("--test-samples", type=POSITIVE_INT, default=None, help="evaluate on the first N test samples")
    p.add_argument("--plot", default="", help="PNG path for accuracy vs timesteps (default: next to the checkpoint)")
    p.add_argument("--save-ir", default=None, help="also write the converted network (.npz)")
    p.add_argument("--json", action="store_true")

    def run(args):
        from neurosim.cli import emit

        from neurosim.convert import parse_norm, run_convert

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
                          encoding=args.encoding, plot=args.plot, quiet=args.json, signed=args.signed or args.low_latency,
                          calibrate=args.calibrate or args.low_latency, calibration_iters=args.calibration_iters, save_ir=args.save_ir,
                          recipe=args.recipe)
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
