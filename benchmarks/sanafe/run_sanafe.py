"""Run one exported network on SANA-FE's Loihi architecture (run in benchmarks/sanafe/.venv, where `sanafe` is).

    benchmarks/sanafe/.venv/bin/python benchmarks/sanafe/run_sanafe.py IN.npz OUT.npz

IN.npz (written by benchmarks/mesh_vs_sanafe.py): ``groups`` (names), per group ``n_<g>``, ``thr_<g>``,
``bias_<g>``, ``tile_<g>``, ``core_<g>``; ``mesh_w``, ``mesh_h`` (tiles; other than 8 x 4: SANA-FE's
loihi.yaml with that many tiles in one mesh, how it describes several chips); per connection ``s_<src>__<dst>`` [3, S] (source index, target index, weight of each synapse); ``T``. Neurons are
SANA-FE's Loihi LIF (``loihi_lif``) with soft (subtractive) reset, no leak, no input decay; OUT.npz holds
per-step simulated time and energy (SANA-FE's perf trace), the spike raster per group and the run time.
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sanafe


def main(src, dst):
    d = np.load(src, allow_pickle=False)
    W, H = (int(d["mesh_w"]), int(d["mesh_h"])) if "mesh_w" in d.files else (8, 4)
    if (W, H) == (8, 4):
        arch = sanafe.load_loihi()
    else:  # several chips as one W x H mesh: the bundled loihi.yaml with more tiles (as SANA-FE's loihi_large.yaml)
        text = (Path(sanafe.__file__).parent / "examples" / "loihi.yaml").read_text()
        for a, b in (("width: 8\n", f"width: {W}\n"), ("height: 4\n", f"height: {H}\n"),
                     ("loihi_tile[0..31]", f"loihi_tile[0..{W * H - 1}]")):
            if text.count(a) != 1:
                raise SystemExit(f"SANA-FE's loihi.yaml has changed: expected one {a.strip()!r}")
            text = text.replace(a, b)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "loihi_mesh.yaml").write_text(text)
            arch = sanafe.load_arch(str(Path(tmp) / "loihi_mesh.yaml"))
    net = sanafe.Network()
    groups = [str(g) for g in d["groups"]]
    G = {}
    for g in groups:
        n = int(d[f"n_{g}"])
        G[g] = net.create_neuron_group(g, n, model_attributes={"reset_mode": "soft", "leak_decay": 1.0,
                                                               "input_decay": 0.0}, log_spikes=True)
        thr, bias = d[f"thr_{g}"], d[f"bias_{g}"]
        for i, nr in enumerate(G[g].neurons):
            nr.set_attributes(model_attributes={"threshold": float(thr[i]), "bias": float(bias[i])})
    for key in d.files:
        if key.startswith("s_"):  # sparse synapses [3, S]: source index, target index, weight
            a, b = key[2:].split("__")
            i, j, w = d[key]
            pairs = list(zip(i.astype(int).tolist(), j.astype(int).tolist()))
            G[a].connect_neurons_sparse(G[b], {"weight": w.tolist()}, pairs)
    for g in groups:
        tiles, cores = d[f"tile_{g}"], d[f"core_{g}"]
        for i, nr in enumerate(G[g].neurons):
            nr.map_to_core(arch.tiles[int(tiles[i])].cores[int(cores[i])])
    chip = sanafe.SpikingChip(arch)
    chip.load(net)
    T = int(d["T"])
    t0 = time.perf_counter()
    r = chip.sim(T, spike_trace=True, perf_trace=True)
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "energy_total": r["energy"]["total"]}
    for k, v in r["energy"].items():
        out[f"energy_{k}"] = v
    for k, v in r["perf_trace"].items():
        out[f"perf_{k}"] = np.asarray(v, np.float64)
    raster = {g: np.zeros((T, int(d[f"n_{g}"]))) for g in groups}
    for t, spikes in enumerate(r["spike_trace"]):
        for a in spikes:
            raster[a.group_name][t, a.neuron_offset] += 1
    for g in groups:
        out[f"raster_{g}"] = raster[g]
    np.savez(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
