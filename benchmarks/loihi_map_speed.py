"""CPU time of ``neurosim.loihi.resources.map_network`` now against an older revision's copy, same process.

    .venv/bin/python benchmarks/loihi_map_speed.py NET.npz --before add40b9^

Best of 3 per chip; prints the cores and chips of both so a speed-up that changes the map shows.
"""
import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from neurosim.ir import SpikingNetwork  # noqa: E402
import neurosim.loihi.resources as new  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("network")
    ap.add_argument("--before", default="HEAD", help="git revision of the old resources.py")
    a = ap.parse_args()
    src = subprocess.run(["git", "show", f"{a.before}:neurosim/loihi/resources.py"], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    tmp = Path(tempfile.mkdtemp()) / "old_resources.py"
    tmp.write_text(src)
    spec = importlib.util.spec_from_file_location("old_resources", tmp)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    net = SpikingNetwork.load(a.network)
    new.map_network(net, "loihi")  # imports, first lowering
    for chip in ("loihi", "loihi2"):
        for name, mod in (("before", old), ("after", new)):
            best = float("inf")
            for _ in range(3):
                t = time.process_time()
                m = mod.map_network(net, chip)
                best = min(best, time.process_time() - t)
            print(f"{chip:7s} {name:6s} {best:.2f} CPU s  {m.cores} cores, {m.chips} chip(s)", flush=True)


if __name__ == "__main__":
    main()
