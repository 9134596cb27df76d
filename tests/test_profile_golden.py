"""The profiler against published numbers: torchvision's GFLOPS column (MACs), parameter counts, GPT-3."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hw.workload import profile

GOLDEN = json.loads((Path(__file__).parent / "golden" / "param_counts.json").read_text())
WITH_MACS = sorted(k for k, v in GOLDEN.items() if not k.startswith("_") and "macs" in v)


@pytest.mark.parametrize("name", WITH_MACS)
def test_macs_and_params_match_published(name):
    ref = GOLDEN[name]
    w = profile(name)
    assert w.params == ref["params"]
    assert w.macs == pytest.approx(ref["macs"], rel=0.01), f"{name}: {w.macs / 1e9:.4f} G vs {ref['macs'] / 1e9:.4f} G"
    assert w.flops >= 2 * w.macs


def test_resnet50_cli_json_has_published_totals(capsys):
    from neurosim.cli import main

    assert main(["profile", "resnet50", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"] == 25_557_032
    assert round(d["macs"] / 1e9, 2) == 4.09
    assert {"params", "macs", "flops", "param_bytes", "activation_bytes", "layers"} <= set(d)
    assert sum(layer["macs"] for layer in d["layers"]) == d["macs"]


@pytest.mark.slow
def test_gpt3_175b_profiles_at_seq_2048_without_allocating_weights():
    """175B parameters (Brown et al. 2020) within 0.5%, in a fresh process whose peak RSS stays < 4 GB."""
    code = (
        "import json, resource\n"
        "from hw.workload import profile\n"
        "w = profile('gpt3_175b', seq=2048)\n"
        "print(json.dumps({'params': w.params, 'macs': w.macs, 'pb': w.param_bytes,"
        " 'rss_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["params"] == pytest.approx(175e9, rel=0.005)
    assert d["rss_kib"] < 4 * 1024 * 1024
    # forward MACs ~ params x tokens (+ attention): 2048 tokens x 175B = 3.6e14
    assert d["macs"] == pytest.approx(d["params"] * 2048, rel=0.15)
    assert d["pb"] == 4 * d["params"]  # fp32 model size, never allocated
