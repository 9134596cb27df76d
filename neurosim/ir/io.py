"""Saving and loading networks: one ``.npz`` file, the structure as JSON (``__ir__``) beside float32
arrays named ``NODE/ARRAY``. The format is unchanged since version 1; reading never unpickles."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neurosim.errors import NeurosimError
from neurosim.ir.network import FORMAT_VERSION, SpikingNetwork
from neurosim.ir.nodes import NODE_TYPES, Add, Encoding, Readout


def save(net: SpikingNetwork, path: str | Path) -> Path:
    """Write ``net`` losslessly to one ``.npz`` file (structure JSON + float32 arrays)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}/{a}": v for k, n in net.nodes.items() for a, v in n.arrays().items()}
    np.savez(path, __ir__=np.array(json.dumps(net.to_dict())), **arrays)
    return path


def load(path: str | Path) -> SpikingNetwork:
    """Read a network written by :func:`save`."""
    path = Path(path)
    if not path.is_file():
        raise NeurosimError(f"no IR file at {path}")
    import zipfile

    try:  # a text, empty, truncated, bit-flipped or foreign file is named, never a numpy/zip traceback
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):
            raise NeurosimError(f"{path} is not a neurosim IR file (a single .npy array, not an .npz)")
        with z:
            if "__ir__" not in z:
                raise NeurosimError(f"{path} is not a neurosim IR file (no __ir__ entry)")
            spec = json.loads(str(z["__ir__"]))
            arrays = {k: z[k] for k in z.files if k != "__ir__"}
        return from_spec(spec, arrays)
    except NeurosimError:
        raise
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError, TypeError, AttributeError,
            IndexError, json.JSONDecodeError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NeurosimError(f"{path} is not a readable neurosim IR file ({type(e).__name__}: {msg}); "
                            "write one with `neurosim convert ... --save-ir NET.npz`") from None


def from_spec(spec: dict, arrays: dict[str, np.ndarray]) -> SpikingNetwork:
    """The network of a :meth:`SpikingNetwork.to_dict` structure and its arrays."""
    if spec.get("format") != "neurosim.ir" or spec.get("version", 0) > FORMAT_VERSION:
        raise NeurosimError(f"unsupported IR format {spec.get('format')!r} version {spec.get('version')}")
    nodes = {}
    for nd in spec["nodes"]:
        typ = NODE_TYPES.get(nd["type"])
        if typ is None:
            raise NeurosimError(f"unknown IR node type {nd['type']!r}; valid: {', '.join(NODE_TYPES)}")
        kw = dict(nd["params"])
        if typ is Add:
            kw["weights"] = [arrays[f"{nd['name']}/weights.{k}"] for k in range(len(kw["inputs"]))]
        else:
            for a in nd["arrays"]:
                kw[a] = arrays[f"{nd['name']}/{a}"]
        nodes[nd["name"]] = typ(**kw)
    return SpikingNetwork(input_shape=tuple(spec["input_shape"]), nodes=nodes, readout=Readout(**spec["readout"]),
               encoding=Encoding(**spec["encoding"]), metadata=spec.get("metadata", {}))
