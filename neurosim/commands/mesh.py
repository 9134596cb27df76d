"""`neurosim mesh NET.npz`: run a converted network, then simulate its spikes on a Loihi-class mesh (simpy).

    neurosim mesh lenet5.npz --chip loihi --timesteps 32 --mapping spread --samples 100 --heatmap mesh.png
    neurosim mesh net.npz --inputs x.npy --json
    neurosim mesh resnet_tiny.npz --chip-links seamless   # 7 chips as one mesh (what SANA-FE can describe)

The inputs are ``--inputs FILE.npy`` ([N, *input_shape]) or the test split of ``--dataset`` (default: the
net's ``metadata["dataset"]`` if it has one, else the bundled data set whose input shape matches: MNIST-5k
for 28x28, digits for 8x8). Totals are per inference (the mean sample); the analytic model's estimate of
the same activity (``hw.neuromorphic``) is printed next to it.
"""
from __future__ import annotations

from neurosim.cli import command, emit, number

_BY_SIZE = {784: "mnist5k", 64: "digits"}


def _inputs(args, net):
    import numpy as np

    from neurosim.errors import NeurosimError

    if args.inputs:
        try:
            x = np.load(args.inputs, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise NeurosimError(f"cannot read --inputs {args.inputs}: {e}") from None
        return x[:args.samples]
    name = args.dataset or (net.metadata or {}).get("dataset") or _BY_SIZE.get(int(np.prod(net.input_shape)))
    if not name:
        raise NeurosimError(f"no bundled data set has input shape {list(net.input_shape)}: pass --inputs FILE.npy "
                            "or --dataset")
    from models.train import resolve_dataset

    _, test = resolve_dataset(name)
    x = test.x[:args.samples].numpy()
    if x.shape[1:] != tuple(net.input_shape):
        if int(np.prod(x.shape[1:])) == int(np.prod(net.input_shape)):
            x = x.reshape(len(x), *net.input_shape)
        else:
            raise NeurosimError(f"data set {name} has inputs {list(x.shape[1:])}, the network expects "
                                f"{list(net.input_shape)}")
    return x


@command("mesh", help="simulate a converted network's spikes on a Loihi-class mesh chip (simpy): latency, energy, hot spots")
def configure(p):
    p.add_argument("network", help="a converted network saved as .npz (`neurosim convert ... --save-ir NET.npz`)")
    p.add_argument("--chip", default="loihi", help="loihi or loihi2 (default loihi)")
    p.add_argument("--timesteps", type=number(int, 1, 100_000), default=32, help="simulation steps (default 32)")
    p.add_argument("--mapping", default="compact", help="compact (fill tiles in order) or spread (round-robin over tiles)")
    p.add_argument("--mode", default="auto", help="auto (aggregate, or tile above 150k messages), aggregate (one message per core pair and step), tile (per tile pair) or exact "
                   "(one per spike; needs --samples 1)")
    p.add_argument("--samples", type=number(int, 1, 1_000_000), default=16, help="inputs to run (default 16)")
    p.add_argument("--inputs", default=None, help="inputs as a .npy array [N, *input_shape]")
    p.add_argument("--dataset", default=None, help="bundled data set for the inputs (digits, mnist5k, ...)")
    p.add_argument("--max-chips", type=number(int, 1, 100_000), default=None, help="board size in chips (default 32)")
    p.add_argument("--chip-links", default="board", help="board (chips joined by chip-to-chip links, ASSUMED "
                   "100 ns / 40 pJ per crossing) or seamless (the chips' meshes join into one mesh, as SANA-FE's "
                   "loihi_large.yaml)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heatmap", default=None, help="write a PNG heat map of the mesh here")
    p.add_argument("--steps", action="store_true", help="print the per-timestep table")
    p.add_argument("--json", action="store_true", help="JSON: totals per inference, per-step rows, cores, links")

    def run(args):
        from hw import neuromorphic, neuromorphic_mesh as nm
        from neurosim.ir import SpikingNetwork

        params = nm.chip_params(args.chip, chip_links=args.chip_links)  # an unknown chip fails before the run
        if args.mapping not in nm.MAPPINGS:
            from neurosim.errors import NeurosimError

            raise NeurosimError(f"unknown mapping {args.mapping!r}; valid: {', '.join(nm.MAPPINGS)}")
        net = SpikingNetwork.load(args.network)
        pl = nm.place(net, args.chip, args.mapping, params=params, max_chips=args.max_chips)  # does it fit?
        x = _inputs(args, net)
        res = net.run(x, args.timesteps, seed=args.seed, record_step_counts=True, record_counts=True)
        act = nm.activity_from_simresult(res, net, x)
        rep = nm.simulate(net, act, args.chip, mode=args.mode, placement=pl, model=str(args.network),
                          heatmap=args.heatmap, chip_links=args.chip_links)
        ana = neuromorphic.cost_from_simresult(res, args.chip)
        rep.totals["analytic_energy_j"] = ana.totals["energy_j"] / res.batch
        rep.totals["analytic_latency_s"] = ana.totals["latency_s"] / res.batch
        rep.totals["snn_wall_s"] = res.wall_s
        if args.json:
            emit(rep, True)
            return
        if args.steps:
            emit(rep, False)
        t = rep.totals
        print(f"{net.metadata.get('source', 'network')} on {pl.params.name} ({args.mapping}, {args.mode}), "
              f"{t['cores']} cores on {t['chips']} chip(s), T={t['timesteps']}, mean of {t['samples']} sample(s):")
        print(f"  per inference: latency {t['latency_s'] * 1e6:,.2f} us (step mean {t['step_s_mean'] * 1e9:,.0f} ns, "
              f"max {t['step_s_max'] * 1e9:,.0f} ns, barrier {t['barrier_s'] * 1e9:.0f} ns), "
              f"energy {t['energy_j'] * 1e6:,.3f} uJ")
        print(f"  energy: synaptic {t['energy_synaptic_j'] * 1e6:,.3f}, neuron {t['energy_neuron_j'] * 1e6:,.3f}, "
              f"network {t['energy_network_j'] * 1e6:,.3f}, static {t['energy_static_j'] * 1e6:,.3f} uJ")
        print(f"  traffic: {t['messages_sent']:,.0f} messages, {t['mean_hops']:.2f} hops each, busiest link "
              f"{100 * t['max_link_util']:.1f} % busy; bottleneck core {t['bottleneck_core']} ({t['bottleneck_layer']}, "
              f"{100 * t['bottleneck_util']:.1f} % busy)")
        print(f"  analytic model (hw.neuromorphic): latency {t['analytic_latency_s'] * 1e6:,.2f} us, "
              f"energy {t['analytic_energy_j'] * 1e6:,.3f} uJ")
        print(f"  simulated {t['sim_events']:,} events in {t['sim_wall_s']:.2f} s ({t['events_per_s']:,.0f} events/s); "
              f"SNN run {res.wall_s:.2f} s" + (f"; heat map {args.heatmap}" if args.heatmap else ""))
        for n in rep.notes:
            print(f"  note: {n}")

    return run
