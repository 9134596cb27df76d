"""seed_claims: the field's headline numbers, recomputed by the suite, beside the published value.

Each cell recomputes one claim with the suite's own code and returns rows of
``(claim, quantity, published, ours, diff_pct, unit, source, method)``; ``diff_pct`` is
``100 x (ours - published) / published``. The *published inputs* (GPT-3's 300B tokens, Patterson's
chips, days, watts, PUE and grid intensity, Strubell's watts and hours) are read from the package data
file ``hw/data/footprints.json`` (each with its provenance there); the *outputs* are computed:

* GPT-3 training FLOPs: 6 x N x D (Kaplan et al. 2020) with N = the parameters the profiler counts in
  the zoo's ``gpt3_175b`` (built weightless on the meta device), D = 300B tokens. Published: 3.14e23
  (Brown et al. 2020; Patterson et al. 2021 Table 4).
* GPT-3 FP16 weights: the profiler's parameter bytes of ``gpt3_175b`` traced at fp16. Published: 350 GB.
* GPT-3 training footprint: :func:`hw.training.train` on 10,000 catalog V100s at OpenAI's measured
  24.6 TFLOPS per chip, 330 W, PUE 1.10 and the US-average grid (Patterson Table 4's inputs).
  Published: 14.8 days, 1,287 MWh, 552.1 tCO2e.
* INT8 memory saving: parameter bytes of ``resnet50`` traced at fp32 over int8 (published: 4x, e.g.
  Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
  Inference", Sec. 1).
* 2:4 structured sparsity: the catalog's sparse over dense tensor peak of A100 and H100, and the
  compute time of a compute-bound GEMM costed by :func:`hw.cost` with and without ``sparse=True``
  (published: 2x peak, NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020, p. 36).
* Patterson et al. 2021 Table 4: every row through :func:`hw.training.train` (published FLOPs on N
  catalog chips at the measured utilisation) -> days, MWh, net tCO2e.
* Strubell et al. 2019 Table 3: every GPU row through :func:`hw.carbon.footprint` -> kWh x PUE, lbs CO2e.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from neurosim.errors import NeurosimError
from studies.registry import Sweep, study

#: Published footprints with their provenance; package data of ``hw``, so it ships with the wheel.
GOLDEN = resources.files("hw") / "data" / "footprints.json"
CLAIMS = ["gpt3_training_flops", "gpt3_fp16_weights", "gpt3_training_footprint", "int8_memory_saving",
          "sparsity_2_4", "patterson2021_table4", "strubell2019_table3"]
#: Claims that are ratios stated in papers and datasheets rather than in the footprints file.
INT8_SAVING = (4.0, "Jacob et al. 2018 (arXiv 1712.05877), Sec. 1: 8-bit weights take 4x less memory than float32")
SPARSE_SPEEDUP = (2.0, "NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020), Sparse Tensor Cores: 2x peak "
                       "math throughput with 2:4 fine-grained structured sparsity")


def published() -> dict:
    """The published inputs and outputs (``hw/data/footprints.json``)."""
    if not GOLDEN.is_file():
        raise NeurosimError(f"seed_claims reads the published numbers from {GOLDEN}, which is missing "
                            "(reinstall neurosim: it ships as package data of hw)")
    return json.loads(GOLDEN.read_text())


@lru_cache(maxsize=8)
def _profile(model: str, dtype: str = "fp32"):
    from hw.workload import profile

    return profile(model, dtype=dtype)


def _tensor_compute_s(report) -> float:
    from hw.gpu import TENSOR_KINDS

    return sum(r["compute_s"] for r in report.rows if r["kind"] in TENSOR_KINDS)


def _row(claim, quantity, pub, ours, unit, source, method):
    return dict(claim=claim, quantity=quantity, published=float(pub), ours=float(ours),
                diff_pct=100.0 * (ours - pub) / pub, unit=unit, source=source, method=method)


@study("seed_claims", sweep=Sweep(claim=CLAIMS),
       requires=("hw.workload", "hw.training", "hw.carbon", "hw.report"),
       description="headline numbers of the field (GPT-3, INT8, 2:4 sparsity, Patterson, Strubell): published vs ours")
def seed_claims(claim: str) -> list[dict]:
    """Recompute one published claim with the suite."""
    import hw
    from hw import carbon, training

    g = published()
    if claim == "gpt3_training_flops":
        w = _profile("gpt3_175b")
        ours = training.flops_6nd(w.params, g["gpt3"]["tokens"])
        return [_row(claim, "training FLOPs", g["gpt3"]["published_training_flops"], ours, "FLOP", g["gpt3"]["source"],
                     f"6 x {w.params:,} zoo gpt3_175b parameters x {g['gpt3']['tokens']:.3g} tokens")]
    if claim == "gpt3_fp16_weights":
        w = _profile("gpt3_175b", "fp16")
        return [_row(claim, "FP16 weights", g["gpt3"]["published_fp16_weights_gb"], w.param_bytes / 1e9, "GB",
                     g["gpt3"]["source"], "profiler parameter bytes of zoo gpt3_175b traced at fp16")]
    if claim == "gpt3_training_footprint":
        row = next(r for r in g["patterson2021_table4"]["rows"] if r["model"] == "GPT-3")
        w = _profile("gpt3_175b")
        spec = hw.get(row["processor"])
        r = training.train(row["processor"], params=w.params, tokens=g["gpt3"]["tokens"], devices=row["chips"],
                           precision="fp16", mfu=row["measured_tflops_per_chip"] / spec.peak_tflops["fp16"],
                           scaling_efficiency=1.0, power_w=row["watts_per_chip"], pue=row["pue"],
                           grid_kg_per_kwh=row["net_kg_per_kwh"])
        how = (f"hw.training.train: 6ND on {row['chips']:,} x {row['processor']} at {row['measured_tflops_per_chip']} "
               f"TFLOPS, {row['watts_per_chip']} W, PUE {row['pue']}, {row['net_kg_per_kwh']} kg/kWh")
        src = g["patterson2021_table4"]["source"].split(",")[0] + " et al. 2021, Table 4"
        pub = row["published"]
        return [_row(claim, "training days", row["days"], r["time_days"], "days", src, how),
                _row(claim, "training energy", pub["mwh"], r["facility_energy_kwh"] / 1000, "MWh", src, how),
                _row(claim, "training emissions", pub["net_tco2e"], r["carbon_t"], "tCO2e", src, how)]
    if claim == "int8_memory_saving":
        ratio = _profile("resnet50").param_bytes / _profile("resnet50", "int8").param_bytes
        return [_row(claim, "fp32 / int8 weight bytes", INT8_SAVING[0], ratio, "x", INT8_SAVING[1],
                     "profiler parameter bytes of zoo resnet50 at fp32 over int8")]
    if claim == "sparsity_2_4":
        rows = []
        for dev in ("a100_80gb", "h100_sxm"):
            spec = hw.get(dev)
            rows.append(_row(claim, f"{dev} fp16 sparse / dense peak", SPARSE_SPEEDUP[0],
                             spec.peak_flops("fp16", sparse=True) / spec.peak_flops("fp16"), "x", SPARSE_SPEEDUP[1],
                             "catalog peaks (hw/catalog/gpu.toml)"))
            w = _profile("gpt3_175b", "fp16")
            dense, sparse = hw.cost(w, dev), hw.cost(w, dev, sparse=True)
            comp = _tensor_compute_s(dense) / _tensor_compute_s(sparse)
            rows.append(_row(claim, f"{dev} tensor-op compute time dense / sparse, gpt3_175b fp16", SPARSE_SPEEDUP[0],
                             comp, "x", SPARSE_SPEEDUP[1], "hw.cost roofline: compute time of the tensor ops summed"))
        return rows
    if claim == "patterson2021_table4":
        block = g["patterson2021_table4"]
        rows = []
        for row in block["rows"]:
            spec = hw.get(row["processor"])
            precision = "fp16" if spec.family == "gpu" else "bf16"
            r = training.train(row["processor"], flops=row["published"]["flops"], devices=row["chips"],
                               precision=precision, mfu=row["measured_tflops_per_chip"] / spec.peak_tflops[precision],
                               scaling_efficiency=1.0, power_w=row["watts_per_chip"], pue=row["pue"],
                               grid_kg_per_kwh=row["net_kg_per_kwh"])
            src = f"Patterson et al. 2021, Table 4: {row['model']}"
            how = "hw.training.train on the published FLOPs, chips, measured TFLOPS, watts, PUE, net grid"
            rows += [_row(claim, f"{row['model']}: days", row["days"], r["time_days"], "days", src, how),
                     _row(claim, f"{row['model']}: energy", row["published"]["mwh"], r["facility_energy_kwh"] / 1000,
                          "MWh", src, how),
                     _row(claim, f"{row['model']}: net emissions", row["published"]["net_tco2e"], r["carbon_t"], "tCO2e",
                          src, how)]
        return rows
    if claim == "strubell2019_table3":
        block = g["strubell2019_table3"]
        rows = []
        for row in block["rows"]:
            fp = carbon.footprint(chips=1, hours=row["hours"], watts_per_chip=row["power_w"], pue=block["pue"],
                                  kg_per_kwh=block["lbs_per_kwh"] / carbon.LB_PER_KG)
            src = f"Strubell et al. 2019, Table 3: {row['model']} ({row['hardware']})"
            how = f"hw.carbon.footprint: {row['power_w']} W x {row['hours']} h x PUE {block['pue']}"
            rows += [_row(claim, f"{row['model']}: energy", row["published"]["kwh_pue"], fp["kwh"], "kWh", src, how),
                     _row(claim, f"{row['model']}: emissions", row["published"]["lbs_co2e"],
                          fp["kg_co2e"] * carbon.LB_PER_KG, "lbs CO2e", src, how)]
        return rows
    raise NeurosimError(f"seed_claims has no claim {claim!r}")  # unreachable through the sweep


@seed_claims.table("Published vs recomputed")
def _table(df):
    short = df.source.str.split(r"[:(]").str[0].str.strip()
    return df[["quantity", "published", "ours", "diff_pct", "unit"]].assign(source=short)


@seed_claims.figure("Recomputed vs published: difference in % for every claim (band: +/- 2 %)")
def _diff(df):
    from studies.plots import new_figure

    fig, ax = new_figure(7.0, max(3.0, 0.2 * len(df) + 1))
    diff = df.diff_pct.to_numpy()
    y = list(range(len(df)))
    ax.axvspan(-2, 2, color="0.92", zorder=0)
    ax.barh(y, diff, color=["C0" if abs(d) <= 2 else "C3" for d in diff], zorder=2)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, df.quantity.tolist(), fontsize=6)
    ax.invert_yaxis()
    lim = max(3.0, float(abs(diff).max()) * 1.15)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("(ours - published) / published, %")
    return fig
