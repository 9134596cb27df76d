"""`neurosim nir export|import`: NIR files for other libraries, and NIR files from them (docs/nir.md).

    neurosim convert mlp --dataset mnist5k --save-ir mlp.npz
    neurosim nir export mlp.npz mlp.nir --target sinabs      # or nir, snntorch, norse, spikingjelly
    neurosim nir import sj.nir sj.npz                         # a file SpikingJelly's export_to_nir wrote

``export`` writes the flavour that library's importer builds and runs (:mod:`neurosim.ir.nir_targets`)
and prints every node it wrote and everything the library cannot express (the warning of
``to_nir``); ``--target nir`` is the faithful graph that ``import`` restores exactly. ``import`` reads a
NIR file (ours, or one written by snntorch, sinabs, SpikingJelly, ...) into a network ``.npz`` that every
other command takes.
"""
from __future__ import annotations

from pathlib import Path

from neurosim.cli import POSITIVE, command, emit
from neurosim.errors import NeurosimError


def _out_path(path: str, suffixes: tuple[str, ...]) -> Path:
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise NeurosimError(f"output {path!r} must end in {' or '.join(suffixes)}")
    if not p.parent.is_dir():
        raise NeurosimError(f"output directory {str(p.parent)!r} does not exist")
    return p


def _nodes_table(graph):
    import numpy as np
    import pandas as pd

    rows = []
    for k, n in graph.nodes.items():
        shape = getattr(n, "weight", None)
        rows.append({"node": k, "nir_type": type(n).__name__,
                     "weight_shape": "" if shape is None else "x".join(str(s) for s in np.shape(shape))})
    return pd.DataFrame(rows)


@command("nir", help="write a network as NIR for snntorch, norse, sinabs or SpikingJelly, or read a NIR file")
def configure(p):
    sub = p.add_subparsers(dest="nir_command", metavar="{export,import}")
    ex = sub.add_parser("export", help="a network .npz -> a NIR file for one library's importer")
    ex.add_argument("network", help="a network saved as .npz (`neurosim convert ... --save-ir NET.npz`)")
    ex.add_argument("output", help="the NIR file to write (.nir or .h5)")
    ex.add_argument("--target", default="nir",
                    help="nir (faithful, restored exactly by import), snntorch, norse, sinabs or spikingjelly (default nir)")
    ex.add_argument("--dt", type=POSITIVE, default=1e-4,
                    help="seconds per step in the NIR time constants (default 1e-4; sinabs' flavour is written at 1)")
    ex.add_argument("--json", action="store_true", help="JSON: nodes, what was lost, the file")
    im = sub.add_parser("import", help="a NIR file (ours or another library's) -> a network .npz")
    im.add_argument("graph", help="the NIR file to read")
    im.add_argument("output", help="the network .npz to write")
    im.add_argument("--dt", type=POSITIVE, default=None,
                    help="seconds per step the graph was written with (default 1e-4; sinabs writes at 1)")
    im.add_argument("--reset", default=None,
                    help="subtract or zero: override the reset of a foreign graph's neurons (sinabs' IAF subtracts)")
    im.add_argument("--json", action="store_true", help="JSON: nodes, input shape, readout, the file")

    def run(args):
        import json
        import warnings

        import pandas as pd

        from neurosim.ir import SpikingNetwork
        from neurosim.ir.nir_targets import TARGETS, NIRExportWarning

        if args.nir_command is None:
            raise NeurosimError("nir takes a subcommand: export or import")
        if args.nir_command == "export":
            if args.target not in TARGETS:
                raise NeurosimError(f"--target {args.target!r} unknown; valid: {', '.join(TARGETS)}")
            out = _out_path(args.output, (".nir", ".h5", ".hdf5"))
            import nir

            net = SpikingNetwork.load(args.network)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", NIRExportWarning)
                graph = net.to_nir(dt=args.dt, target=args.target)
            lost = [str(w.message).split(": ", 1)[1] for w in caught if issubclass(w.category, NIRExportWarning)]
            lost = [item for text in lost for item in text.split("; ")]
            nir.write(str(out), graph)
            table = _nodes_table(graph)
            if args.json:
                print(json.dumps({"file": str(out), "target": args.target, "nodes": table.to_dict(orient="records"),
                                  "lost": lost}, indent=2))
                return 0
            emit(table, False, title=f"{out} ({args.target} flavour, {len(table)} nodes)")
            print("lost: nothing" if not lost else f"lost ({args.target} cannot express it):")
            for item in lost:
                print(f"  - {item}")
            return 0
        if args.reset is not None and args.reset not in ("subtract", "zero"):
            raise NeurosimError(f"--reset takes subtract or zero, got {args.reset!r}")
        out = _out_path(args.output, (".npz",))
        net = SpikingNetwork.from_nir(args.graph, dt=args.dt, reset=args.reset)
        net.save(out)
        rows = [{"node": k, "kind": n.kind, "shape": "x".join(str(s) for s in net.shapes[k])} for k, n in net.nodes.items()]
        if args.json:
            print(json.dumps({"file": str(out), "input_shape": list(net.input_shape), "nodes": rows,
                              "readout": {"node": net.readout.node, "kind": net.readout.kind}}, indent=2))
            return 0
        emit(pd.DataFrame(rows), False, title=f"{out}: input {net.input_shape}, readout {net.readout.kind} of "
                                               f"{net.readout.node!r}")
        return 0

    return run
