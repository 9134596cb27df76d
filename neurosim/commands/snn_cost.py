"""`neurosim snn-cost NET.npz`: energy per inference of a converted network from a real run's activity,
operator by operator, beside the ANN on a GPU and a TPU.

    neurosim snn-cost vit.npz --timesteps 16 --samples 32                 # MNIST-5k test images
    neurosim snn-cost vit.npz --chip loihi2 --hw a100_80gb,tpu_v4 --per-node --json

The network runs on the ``--backend`` (snntorch) for ``--timesteps`` on the first ``--samples`` inputs
(``--inputs FILE.npy`` or the test split of ``--dataset``, as ``neurosim mesh``); the measured SynOps,
spikes and the products of two spike streams are priced by :func:`neurosim.loihi.operators.cost_operators`
(the counting rule per operator is in docs/transformers.md, "Cost"). The ANN (from the network's metadata)
is costed at batch 1 on each ``--hw`` device by ``hw.cost``.
"""
from __future__ import annotations

from neurosim.cli import command, emit, number


def _ann(net):
    """The ANN the network was converted from, built on the meta device from its metadata (or None)."""
    meta = (net.metadata or {}).get("model") or {}
    if not meta.get("name"):
        return None
    import torch

    import models
    from models.qcfs import register

    register()
    try:
        with torch.device("meta"):
            return models.create(meta["name"], **(meta.get("overrides") or {}))
    except Exception:  # noqa: BLE001 - a foreign or edited metadata block: no ANN column, said in a note
        return None


@command("snn-cost", help="energy per inference of a converted network from measured activity, per operator, vs the ANN on GPU/TPU")
def configure(p):
    p.add_argument("network", help="a converted network saved as .npz (`neurosim convert ... --save-ir NET.npz`)")
    p.add_argument("--chip", default="loihi2", help="loihi or loihi2 (default loihi2)")
    p.add_argument("--hw", default="a100_80gb,tpu_v4", help="devices for the ANN (default a100_80gb,tpu_v4; '' for none)")
    p.add_argument("--timesteps", type=number(int, 1, 100_000), default=16, help="simulation steps (default 16)")
    p.add_argument("--samples", type=number(int, 1, 100_000), default=16, help="inputs to run (default 16)")
    p.add_argument("--inputs", default=None, help="inputs as a .npy array [N, *input_shape]")
    p.add_argument("--dataset", default=None, help="bundled data set for the inputs (digits, mnist5k, majority_tokens)")
    p.add_argument("--backend", default="snntorch", help="backend that measures the activity (default snntorch)")
    p.add_argument("--mean-hops", type=number(float, 0, 1e6), default=None, help="router hops per message (default: the mesh mean)")
    p.add_argument("--per-node", action="store_true", help="one row per IR node (default: per node kind)")
    p.add_argument("--json", action="store_true", help="JSON: ops (one per node), totals, assumptions, notes")

    def run(args):
        import hw
        from neurosim.commands.mesh import _inputs
        from neurosim.ir import SpikingNetwork
        from neurosim.loihi.operators import cost_operators

        devices = tuple(d.strip() for d in args.hw.split(",") if d.strip())
        for d in (args.chip, *devices):
            hw.get(d)  # unknown names fail before the run
        net = SpikingNetwork.load(args.network)
        if (net.metadata or {}).get("dataset") is None and args.dataset is None and args.inputs is None:
            kinds = {n.kind for n in net.nodes.values()}
            if "Embedding" in kinds:
                args.dataset = "majority_tokens"
        x = _inputs(args, net)
        res = net.run(x, args.timesteps, backend=args.backend)
        ann = _ann(net)
        rep = cost_operators(net, res, args.chip, mean_hops=args.mean_hops, model=str(args.network),
                             ann=ann, ann_devices=devices if ann is not None else ())
        if ann is None and devices:
            rep.notes.append("no ANN in the network's metadata: the ANN columns are left out")
        if args.json:
            emit(rep, True)
            return
        df = rep.to_dataframe()
        cols = ["synops", "graded_synops", "product_macs", "neuron_updates", "messages", "proc_adds", "proc_mults",
                "energy_j"]
        if not args.per_node:
            df = df.groupby(["kind", "where"], sort=False)[cols].sum().reset_index()
            df = df[(df[cols] != 0).any(axis=1)]
        else:
            df = df[["node", "kind", "where", "carries", *cols]]
        emit(df, False, title=f"{net.metadata.get('source', 'network')} on {args.chip}: work and energy per inference "
                              f"at T={args.timesteps} (mean of {res.batch} samples, {args.backend} activity)")
        t = rep.totals
        print(f"SNN on {args.chip}: {t['energy_j'] * 1e6:,.2f} uJ per inference (neuro cores "
              f"{t['neuro_energy_j'] * 1e6:,.2f}, x86/host {t['processor_energy_j'] * 1e6:,.2f} of which products of "
              f"two streams {t['product_energy_j'] * 1e6:,.2f}, messages {t['message_energy_j'] * 1e6:,.2f} uJ)")
        if "ann_macs" in t:
            anns = ", ".join(f"{d} {t[f'ann_{d}_energy_j'] * 1e6:,.2f} uJ" for d in devices)
            print(f"ANN ({t['ann_macs']:,.0f} MACs) at batch 1: {anns}")
        for n in rep.notes:
            print(f"note: {n}")

    return run
