"""Run a NIR graph in a library that lives in its own venv (SpikingJelly 2.0 declares Python >= 3.11 and
cannot enter the lock; it runs on 3.10 in ``benchmarks/.venv-spikingjelly``), or export a network built in
that library, for ``benchmarks/nir_interop.py`` and ``tests/test_nir_interop.py``. Imports only the
library, nir, torch and numpy; talks through files.

    PY=benchmarks/.venv-spikingjelly/bin/python
    $PY benchmarks/nir_peer.py run GRAPH.nir INPUT.npy T OUT.npy      # sum over T steps of the output
    $PY benchmarks/nir_peer.py export OUT.nir INPUT.npy T COUNTS.npy  # a SpikingJelly MLP, its output spike counts
    $PY benchmarks/nir_peer.py jobs JOBS.json                          # several of the above, one start-up

Set-up of the venv (once): ``python3.10 -m venv benchmarks/.venv-spikingjelly``, a ``.pth`` line with
``.venv``'s site-packages, ``pip install --no-deps --ignore-requires-python spikingjelly==2.0.0 loguru``.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np


def run(graph_path: str, x_path: str, steps: int, out_path: str) -> None:
    """Import the graph with SpikingJelly's importer and drive it step by step with the analog input
    (direct encoding), the state passed back every step as its docstring demands: the summed output."""
    import torch
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = import_from_nir(graph_path)
    x, state, total = torch.as_tensor(np.load(x_path)), None, 0.0
    with torch.no_grad():
        for _ in range(steps):
            out, state = module(x, state)
            total = total + out
    np.save(out_path, np.asarray(total))


def export(graph_path: str, x_path: str, steps: int, out_path: str) -> None:
    """A SpikingJelly MLP (16-12-5: IF, then LIF with tau = 2 and its default ``decay_input=True``, both with
    SpikingJelly's default hard reset to 0) built and
    exported by SpikingJelly itself (``export_to_nir``), and its output spike counts over ``steps`` steps
    on the input, stepped with ``functional.reset_net`` first."""
    import nir
    import torch
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(layer.Linear(16, 12), neuron.IFNode(), layer.Linear(12, 5),
                              neuron.LIFNode(tau=2.0))
    with torch.no_grad():
        net[2].weight *= 4.0  # enough drive for the leaky output layer to spike
    x = torch.as_tensor(np.load(x_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(net, x[:1])
    nir.write(graph_path, graph)
    functional.reset_net(net)
    with torch.no_grad():
        counts = sum(net(x) for _ in range(steps))
    np.save(out_path, counts.numpy())


MODES = {"run": run, "export": export}

if __name__ == "__main__":
    if sys.argv[1] == "jobs":  # [[mode, a, b, T, out], ...]: the interpreter and torch start once
        import json
        from pathlib import Path

        for mode, a, b, t, c in json.loads(Path(sys.argv[2]).read_text()):
            MODES[mode](a, b, int(t), c)
    else:
        mode, a, b, t, c = sys.argv[1:6]
        MODES[mode](a, b, int(t), c)
