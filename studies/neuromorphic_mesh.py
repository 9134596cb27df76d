"""neuromorphic_mesh: converted networks on a simulated Loihi-class mesh — latency and energy per inference
by mapping and timesteps, next to the analytic estimate.

Method: each task's zoo model is trained (``EPOCHS`` epochs, seed 0) and converted plainly
(:func:`neurosim.convert`, ``CALIBRATION`` training samples); the SNN runs ``samples`` test inputs for
``timesteps`` steps on the snntorch backend recording per-step spike counts; :mod:`hw.neuromorphic_mesh`
then places it on the chip (the loihi-map core counts, ``compact`` or ``spread``) and replays the mean
sample's spikes through the simpy mesh (``auto`` mode). The analytic model (:mod:`hw.neuromorphic`) costs
the same run. Energies are per inference; ``dynamic`` excludes static power.

Sweep: {mlp@digits, lenet5@mnist5k} x {loihi, loihi2} x {compact, spread} x T {8, 16, 32, 64}, 100 samples.
Quick: mlp@digits on Loihi, both mappings, T {8, 16}, 20 samples.
"""
from __future__ import annotations

from functools import lru_cache

from studies.registry import Sweep, study

TASKS = ["mlp@digits", "lenet5@mnist5k"]
EPOCHS = 15
CALIBRATION = 500


@lru_cache(maxsize=4)
def _snn(task: str):
    import torch

    import neurosim
    from models.data import load_dataset
    from models.train import train_model

    model, dataset = task.split("@")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights in every worker process
    try:
        ann, _ = train_model(model, dataset, epochs=EPOCHS, seed=0)
    finally:
        torch.set_num_threads(threads)
    train_set, test_set = load_dataset(dataset)
    return neurosim.convert(ann, train_set.x[:CALIBRATION]), test_set


@study("neuromorphic_mesh",
       sweep=Sweep(task=TASKS, chip=["loihi", "loihi2"], mapping=["compact", "spread"], timesteps=[8, 16, 32, 64],
                   samples=[100]),
       quick=Sweep(task=["mlp@digits"], chip=["loihi"], mapping=["compact", "spread"], timesteps=[8, 16],
                   samples=[20]),
       requires=("models.train", "models.data", "neurosim.convert", "hw.neuromorphic", "hw.neuromorphic_mesh"),
       description="converted networks on a simulated Loihi-class mesh (simpy): latency, energy per inference, "
                   "traffic and hot spots by mapping and timesteps, against the analytic estimate")
def neuromorphic_mesh(task: str, chip: str, mapping: str, timesteps: int, samples: int) -> dict:
    """Run one converted task model and simulate its spikes on one chip with one mapping."""
    from hw import neuromorphic, neuromorphic_mesh as nm

    snn, test_set = _snn(task)
    x, y = test_set.x[:samples].numpy(), test_set.y[:samples].numpy()
    rep, res = nm.run(snn, x, timesteps, chip, mapping=mapping, mode="auto", model=task)
    ana = neuromorphic.cost_from_simresult(res, chip)
    t = rep.totals
    return dict(accuracy=res.accuracy(y), cores=t["cores"], chips=t["chips"], latency_s=t["latency_s"],
                energy_j=t["energy_j"], energy_dynamic_j=t["energy_j"] - t["energy_static_j"],
                energy_synaptic_j=t["energy_synaptic_j"], energy_neuron_j=t["energy_neuron_j"],
                energy_network_j=t["energy_network_j"], energy_static_j=t["energy_static_j"],
                step_s_max=t["step_s_max"], mean_hops=t["mean_hops"], max_link_util=t["max_link_util"],
                bottleneck_layer=t["bottleneck_layer"], bottleneck_util=t["bottleneck_util"],
                messages=t["messages_sent"], mode=rep.assumptions["mode"], sim_wall_s=t["sim_wall_s"],
                analytic_latency_s=ana.totals["latency_s"] / res.batch,
                analytic_energy_j=ana.totals["energy_j"] / res.batch)


@neuromorphic_mesh.table("Per inference: simulated vs analytic")
def _per_inference(df):
    cols = ["task", "chip", "mapping", "timesteps", "cores", "latency_s", "analytic_latency_s", "energy_j",
            "analytic_energy_j", "energy_dynamic_j", "mean_hops", "max_link_util", "bottleneck_layer"]
    return df[cols].sort_values(["task", "chip", "mapping", "timesteps"]).reset_index(drop=True)


@neuromorphic_mesh.figure("Latency per inference vs timesteps (simulated mesh; one marker per mapping)")
def _latency(df):
    from studies.plots import scatter_by_group

    d = df.assign(series=df.task + " " + df.chip + " " + df.mapping)
    return scatter_by_group(d, x="timesteps", y="latency_s", group="series", logy=True, xlabel="timesteps",
                            ylabel="latency per inference (s)")


@neuromorphic_mesh.figure("Dynamic energy per inference vs timesteps (simulated mesh)")
def _energy(df):
    from studies.plots import scatter_by_group

    d = df.assign(series=df.task + " " + df.chip + " " + df.mapping)
    return scatter_by_group(d, x="timesteps", y="energy_dynamic_j", group="series", logy=True, xlabel="timesteps",
                            ylabel="dynamic energy per inference (J)")
