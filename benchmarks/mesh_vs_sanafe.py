"""Side by side: hw.neuromorphic_mesh and SANA-FE (Boyle et al., IEEE TCAD 2025) on Loihi, same network,
same mapping, same spikes.

    python benchmarks/mesh_vs_sanafe.py NET.npz [--samples 3] [--timesteps 32] [--mapping compact] [--json OUT]

Needs SANA-FE in its own venv (git-ignored):

    python3.10 -m venv benchmarks/sanafe/.venv && benchmarks/sanafe/.venv/bin/pip install sanafe numpy

How "the same" is made: the converted network (dense layers only: the MLP) is exported neuron by neuron
to SANA-FE's Loihi architecture (its bundled ``loihi.yaml``, calibrated on the chip) with our placement
(``hw.neuromorphic_mesh.place``: each neuron on the same tile and core). The direct-encoded input enters
both as a constant bias current (W x + b), so neither simulator routes input spikes. SANA-FE runs its own
Loihi LIF (soft reset, no leak); its spike raster is then fed to our model (exact mode), so both cost
exactly the same spikes. Reported per timestep: latency and dynamic energy of each (SANA-FE's Loihi file
has no static power; ours is listed apart), their ratio, each tool's run time, and the analytic model
(hw.neuromorphic) on the same activity.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SANAFE_PY = ROOT / "benchmarks" / "sanafe" / ".venv" / "bin" / "python"
# SANA-FE 2.2.9's bundled loihi.yaml (calibrated on the chip) where it differs from Davies 2018 Table 2:
# dense synapse 35.5 pJ / 3.8 ns per spike, message out 111 pJ / 5.1 ns, message in 16 ns, N-S hop 4.2 pJ,
# neuron access + update 51.2 + 21.6 pJ / 6.0 + 3.7 ns, barrier table 0.6 us (1 tile) .. 1.8 us (29 tiles)
SANAFE_LOIHI = dict(e_synop_pj=35.5, t_synop_ns=3.8, e_spike_pj=111.0, t_spike_ns=5.1, t_axon_in_ns=16.0,
                    e_hop_ns_pj=4.2, e_active_pj=72.8, t_active_ns=9.7, barrier_1_ns=600.0, barrier_32_ns=1800.0)


def export(net, x, T, mapping):
    """The arrays run_sanafe.py reads, and our placement.

    A network that needs several chips is placed on our near-square grid of chips with
    ``chip_links="seamless"``, and SANA-FE gets one mesh of the same size (``mesh_w`` x ``mesh_h`` tiles, the
    bundled loihi.yaml otherwise unchanged, as SANA-FE's own loihi_large.yaml describes 32 chips): SANA-FE
    prices every hop of a direction alike (the source tile's latency, the destination tile's energy), so it
    cannot express a chip-to-chip link that costs more than an on-chip hop."""
    from hw import neuromorphic_mesh as nm
    from neurosim.ir.lowering import Lowering
    from neurosim.ir import INPUT

    pl = nm.place(net, "loihi", mapping, params=nm.chip_params("loihi", chip_links="seamless"))
    W, H = pl.params.mesh_x * pl.chips_x, pl.params.mesh_y * pl.chips_y
    low = Lowering(net)
    d = {"T": np.int64(T), "mesh_w": np.int64(W), "mesh_h": np.int64(H)}
    groups = []
    for tname, tg in low.targets.items():
        n = int(np.prod(tg.shape))
        bias = np.asarray(tg.const, np.float64).reshape(-1).copy()
        for term in tg.terms:
            i, j, w = term.coo()  # the nonzero synapses: source, target, weight
            if term.source == INPUT:
                if net.encoding.kind != "direct":
                    raise SystemExit("only direct-encoded networks are exported (the input becomes a bias)")
                np.add.at(bias, j, w * np.asarray(x, np.float64).reshape(-1)[i])
            else:
                key = f"s_{term.source}__{tname}"
                if key in d:  # two paths between the same populations (a residual): one synapse list
                    i = np.concatenate([d[key][0].astype(np.int64), i])
                    j = np.concatenate([d[key][1].astype(np.int64), j])
                    w = np.concatenate([d[key][2], w])
                d[key] = np.stack([i.astype(np.float64), j.astype(np.float64), w])
        node = net.nodes.get(tname)
        thr = (np.broadcast_to(np.asarray(node.threshold, np.float64), node.shape).reshape(-1)
               if node is not None and hasattr(node, "threshold") else np.full(n, 1e9))  # readout: integrators
        cores = pl.core_index(tname, n)
        d[f"n_{tname}"], d[f"thr_{tname}"], d[f"bias_{tname}"] = np.int64(n), thr, bias
        d[f"tile_{tname}"] = np.array([pl.pos[c][1] * H + pl.pos[c][2] for c in cores])  # SANA-FE: x = id // H
        d[f"core_{tname}"] = np.array([pl.pos[c][3] for c in cores])
        groups.append(tname)
    d["groups"] = np.array(groups)
    return d, pl


def compare(net, x, T, mapping, mode="exact"):
    import hw
    from hw import neuromorphic, neuromorphic_mesh as nm

    d, pl = export(net, x, T, mapping)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", **d)
        t0 = time.perf_counter()
        r = subprocess.run([str(SANAFE_PY), str(ROOT / "benchmarks" / "sanafe" / "run_sanafe.py"),
                            str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npz")], capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"SANA-FE failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
        sf_total = time.perf_counter() - t0
        sf = dict(np.load(Path(tmp) / "out.npz"))
    raster = {g: sf[f"raster_{g}"] for g in net.populations}
    raster["input"] = np.zeros((T, int(np.prod(net.input_shape))))
    act = nm.activity_from_raster(raster)
    t0 = time.perf_counter()
    ours = nm.simulate(net, act, "loihi", placement=pl, mode=mode, chip_links="seamless")
    ours_wall = time.perf_counter() - t0
    cal = nm.simulate(net, act, "loihi", placement=pl, mode=mode, chip_links="seamless", **SANAFE_LOIHI).totals
    # the analytic model on the same activity
    T_ = T
    layers = []
    from neurosim.ir.lowering import Lowering

    low = Lowering(net)
    for tname, tg in low.targets.items():
        syn = 0.0
        for term in tg.terms:
            if term.source in raster and term.source != "input":
                i, _, _ = term.coo()
                syn += float(raster[term.source].sum(0) @ np.bincount(i, minlength=raster[term.source].shape[1]))
        spikes = float(raster[tname].sum()) if tname in raster else 0.0
        layers.append({"name": tname, "neurons": float(np.prod(tg.shape)), "synops": syn, "spikes": spikes})
    ana = neuromorphic.cost_from_activity(hw.get("loihi"), layers, timesteps=T_)
    sf_lat = float(sf["perf_sim_time"].sum())
    sf_e = float(sf["energy_total"])
    o = ours.totals
    return {"spikes": float(sum(r.sum() for r in raster.values())),
            "sanafe_latency_s": sf_lat, "sanafe_energy_j": sf_e,
            "sanafe_energy_synapse_j": float(sf["energy_synapse"]), "sanafe_energy_soma_j": float(sf["energy_soma"]),
            "sanafe_energy_network_j": float(sf["energy_network"]),
            "mesh_latency_s": o["latency_s"], "mesh_energy_dynamic_j": o["energy_j"] - o["energy_static_j"],
            "mesh_energy_static_j": o["energy_static_j"], "mesh_energy_synaptic_j": o["energy_synaptic_j"],
            "mesh_energy_neuron_j": o["energy_neuron_j"], "mesh_energy_network_j": o["energy_network_j"],
            "mesh_sanafe_params_latency_s": cal["latency_s"],
            "mesh_sanafe_params_energy_dynamic_j": cal["energy_j"] - cal["energy_static_j"],
            "analytic_latency_s": ana.totals["latency_s"], "analytic_energy_dynamic_j": ana.totals["energy_dynamic_j"],
            "sanafe_sim_s": float(sf["wall_s"]), "sanafe_total_s": sf_total, "mesh_sim_s": ours_wall,
            "cores": pl.n_cores, "chips": pl.chips, "mesh_tiles": int(d["mesh_w"] * d["mesh_h"]),
            "mode": ours.assumptions["mode"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("network")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--timesteps", type=int, default=32)
    ap.add_argument("--mapping", default="compact")
    ap.add_argument("--mode", default=None, help="our granularity on SANA-FE's raster (default: exact on one chip, "
                    "aggregate on several)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if not SANAFE_PY.exists():
        raise SystemExit(f"no SANA-FE venv at {SANAFE_PY.parent.parent}; see this script's docstring")
    from hw import neuromorphic_mesh as nm
    from models.train import resolve_dataset
    from neurosim.ir import SpikingNetwork

    net = SpikingNetwork.load(a.network)
    mode = a.mode or ("exact" if nm.place(net, "loihi", a.mapping).chips == 1 else "aggregate")
    _, test = resolve_dataset("mnist5k")
    rows = [compare(net, test.x[i].numpy(), a.timesteps, a.mapping, mode) for i in range(a.samples)]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "mode"}
    T = a.timesteps
    r0 = rows[0]
    print(f"{Path(a.network).name}: {a.samples} sample(s), T={T}, {a.mapping} mapping, Loihi, {r0['cores']} cores on "
          f"{r0['chips']} chip(s) ({r0['mesh_tiles']} tiles in one mesh in both), our mode {r0['mode']}; "
          "per timestep, mean of the samples:")
    sl, se = mean["sanafe_latency_s"], mean["sanafe_energy_j"]
    print(f"  {'':34s} {'latency ns':>11s} {'dyn. energy nJ':>15s} {'lat. ratio':>10s} {'energy ratio':>12s} "
          f"{'run time s':>10s}")
    for name, lat, e, wall in (
            ("SANA-FE 2.2.9 (loihi.yaml)", sl, se, mean["sanafe_sim_s"]),
            ("mesh, Davies 2018 Table 2", mean["mesh_latency_s"], mean["mesh_energy_dynamic_j"], mean["mesh_sim_s"]),
            ("mesh, SANA-FE's per-op figures", mean["mesh_sanafe_params_latency_s"],
             mean["mesh_sanafe_params_energy_dynamic_j"], None),
            ("analytic (hw.neuromorphic)", mean["analytic_latency_s"], mean["analytic_energy_dynamic_j"], None)):
        print(f"  {name:34s} {lat / T * 1e9:11.1f} {e / T * 1e9:15.3f} {lat / sl:10.3f} {e / se:12.3f} "
              + (f"{wall:10.2f}" if wall is not None else f"{'':>10s}"))
    print(f"  SANA-FE run time incl. building the network: {mean['sanafe_total_s']:.2f} s; {mean['spikes']:,.0f} spikes")
    print("  energy split (nJ/step): SANA-FE synapse {:.3f} soma {:.3f} network {:.3f}; mesh (Davies) synaptic {:.3f} "
          "neuron {:.3f} network {:.3f} (+ static {:.3f}, not in SANA-FE's file)".format(
              *(mean[k] / T * 1e9 for k in ("sanafe_energy_synapse_j", "sanafe_energy_soma_j", "sanafe_energy_network_j",
                                           "mesh_energy_synaptic_j", "mesh_energy_neuron_j", "mesh_energy_network_j",
                                           "mesh_energy_static_j"))))
    if a.json:
        Path(a.json).write_text(json.dumps({"mean": mean, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
