"""systolic_dataflows: output-, weight- and input-stationary arrays of several sizes on the zoo's CNNs and transformers.

Method: :func:`hw.systolic.simulate_model` lowers each zoo model's conv/linear/matmul ops to GEMMs and
runs the suite's cycle-level systolic-array simulator (SCALE-Sim v2.0.2-compatible, numba) on an
``R x C`` array with the cell's dataflow (``os``, ``ws``, ``is``) at batch 1 and the simulator's
default SRAM sizes and DRAM bandwidth. A cell records the whole-model totals (each layer counted as
often as it repeats): cycles (compute + stalls), stall cycles, utilisation (MACs / (cycles x R x C)),
SRAM reads and writes, and DRAM reads and writes (words).

What to look for: the same MACs cost very different cycle counts by dataflow once a layer's GEMM
shape is a poor fit for the array (small K or N on a large array), and DRAM traffic depends on which
operand stays resident.

Sweep: CNNs (lenet5, resnet_tiny, resnet18, mobilenet_v2, alexnet) and transformers (bert_tiny,
gpt_tiny, vit_tiny, bert_base) x {os, ws, is} x arrays {16x16, 32x32, 128x128, 256x256}.
Quick: lenet5, resnet_tiny, bert_tiny x {os, ws, is} x {16x16, 32x32}.
"""
from __future__ import annotations

from studies.registry import Sweep, study

CNNS = ["lenet5", "resnet_tiny", "resnet18", "mobilenet_v2", "alexnet"]
TRANSFORMERS = ["bert_tiny", "gpt_tiny", "vit_tiny", "bert_base"]


@study("systolic_dataflows",
       sweep=Sweep(model=CNNS + TRANSFORMERS, dataflow=["os", "ws", "is"],
                   array=["16x16", "32x32", "128x128", "256x256"]),
       quick=Sweep(model=["lenet5", "resnet_tiny", "bert_tiny"], dataflow=["os", "ws", "is"], array=["16x16", "32x32"]),
       requires=("models", "hw.systolic", "hw.systolic.workload"),
       description="os/ws/is dataflows and array sizes on the zoo's CNNs and transformers: cycles, utilisation, "
                   "memory traffic")
def systolic_dataflows(model: str, dataflow: str, array: str) -> dict:
    """Simulate one zoo model on one array size with one dataflow."""
    import models
    from hw.systolic.workload import parse_array, simulate_model

    rows, cols = parse_array(array)
    res = simulate_model(model, array=(rows, cols), dataflow=dataflow, batch=1)
    t = res.totals()
    return dict(family=models.entry(model).family, pes=rows * cols, layers=t["layers"], macs=t["macs"],
                cycles=t["cycles"], stall_cycles=t["stall_cycles"], util_pct=t["util_pct"],
                sram_reads=t["sram_reads"], sram_writes=t["sram_writes"], dram_reads=t["dram_reads"],
                dram_writes=t["dram_writes"], dram_words=t["dram_reads"] + t["dram_writes"])


@systolic_dataflows.table("Cycles by dataflow (rows: model and array)")
def _cycles(df):
    t = df.pivot_table(index=["model", "array"], columns="dataflow", values="cycles").reset_index()
    flows = [c for c in ("os", "ws", "is") if c in t.columns]
    return t.assign(best=t[flows].idxmin(axis=1))


@systolic_dataflows.table("Utilisation (%) and DRAM words by dataflow, largest array")
def _util(df):
    d = df[df.pes == df.pes.max()]
    return d[["model", "array", "dataflow", "util_pct", "dram_words", "stall_cycles"]].reset_index(drop=True)


@systolic_dataflows.figure("Cycles per model by dataflow (largest array in the sweep)")
def _cycles_fig(df):
    from studies.plots import bars

    d = df[df.pes == df.pes.max()]
    return bars(d, x="model", y="cycles", group="dataflow", logy=True, xlabel="", ylabel="cycles (batch 1)")


@systolic_dataflows.figure("Utilisation vs array size, one line per model and dataflow")
def _util_fig(df):
    from studies.plots import lines_by_group

    d = df.assign(run=df.model + " " + df.dataflow)
    return lines_by_group(d, x="pes", y="util_pct", group="run", logx=True, xlabel="processing elements (R x C)",
                          ylabel="utilisation (%)")


@systolic_dataflows.figure("DRAM traffic vs cycles (one marker per dataflow)")
def _dram_fig(df):
    from studies.plots import scatter_by_group

    return scatter_by_group(df, x="cycles", y="dram_words", group="dataflow", logx=True, logy=True,
                            xlabel="cycles", ylabel="DRAM words read + written")
