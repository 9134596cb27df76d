"""`neurosim train MODEL --dataset NAME`: train a zoo classifier on the CPU and save a checkpoint."""
from __future__ import annotations

from neurosim.cli import POSITIVE, POSITIVE_INT, command, emit, number, parse_sets


@command("train", help="train a zoo model on bundled or local data (CPU), save state_dict + config JSON")
def configure(p):
    p.add_argument("model", help="zoo model name (mlp, lenet5, resnet_tiny, vit_tiny, lstm, ...)")
    p.add_argument("--dataset", default="digits",
                   help="digits, mnist5k, majority, majority_tokens, mnist-idx:DIR or cifar10:DIR (default digits); CIFAR-10's "
                        "pickled batches are read with a restricted unpickler (only dicts, lists, bytes, str and "
                        "numpy arrays: a batch cannot run code)")
    p.add_argument("--epochs", type=POSITIVE_INT, default=10)
    p.add_argument("--lr", type=POSITIVE, default=1e-3)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=64)
    p.add_argument("--seed", type=number(int, 0), default=0)
    p.add_argument("--patience", type=number(int, 0), default=3, help="stop after this many epochs without a better "
                   "validation accuracy (0: never)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="model option, e.g. --set hidden=500 --set activation=gelu (input size and classes "
                        "are fitted to the data set automatically)")
    p.add_argument("--out", default=None, help="checkpoint path (default runs/MODEL-DATASET.pt; "
                   "a .json with the config and accuracies is written next to it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="the result as JSON (per-epoch lists included)")

    def run(args):
        from models.train import train_model

        out = args.out or f"runs/{args.model}-{args.dataset.replace(':', '_').replace('/', '_')}.pt"
        _, res = train_model(args.model, args.dataset, overrides=parse_sets(args.set), out=out, seed=args.seed,
                             epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, patience=args.patience,
                             progress=not (args.no_progress or args.json))
        if args.json:
            emit(res, True)
            return
        emit(res, False, float_format="{:.4f}",
             title=f"{res.model} on {res.dataset}: {res.epochs_run} epochs in {res.seconds:.1f} s"
                   f"{' (stopped early)' if res.stopped_early else ''}")
        print(f"best epoch {res.best_epoch}: validation accuracy {100 * res.best_val_accuracy:.2f}%, "
              f"test accuracy {100 * res.test_accuracy:.2f}%; checkpoint {res.checkpoint} (+ .json)")

    return run
