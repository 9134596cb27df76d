"""hw.memory: presets against their sources, the numba kernel against the plain-Python reference
(hypothesis), DRAMsim3 golden results, trace readers and their errors, the `neurosim dram` command."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.memory import DramConfig, Trace, get, names, read_trace, simulate, synthetic, timing_table
from hw.memory.config import ACT, PRE, RD, REF, WR, OTHER_BG, OTHER_RANK, SAME_BANK, SAME_BG, SAME_RANK, decode
from hw.memory.simulator import run_kernel
from neurosim.cli import main
from neurosim.errors import NeurosimError

GOLD = Path(__file__).parent / "golden" / "dram"


# ---------------------------------------------------------------- presets against their sources

# DRAMsim3 configs/DDR4_8Gb_x8_3200.ini and configs/HBM2_8Gb_x128.ini (commit 29817593b338), the values its
# Config applies (HBM2: tRTP and tRTRS are not in the ini, DRAMsim3 uses its defaults 5 and 2; columns x2).
DS3 = {
    "ddr4_3200": dict(tck_ns=0.63, channels=1, ranks=2, bankgroups=4, banks_per_group=4, rows=65536, columns=1024,
                      device_width=8, bus_width=64, bl=8, burst_cycles=4, al=0, cl=22, cwl=16, trcd=22, trp=22,
                      tras=52, trfc=560, trefi=12480, trrd_s=4, trrd_l=8, twtr_s=4, twtr_l=12, tfaw=34, twr=24,
                      trtp=12, tccd_s=4, tccd_l=8, trtrs=1, vdd=1.2, idd0=57, idd2n=37, idd3n=52, idd4w=150,
                      idd4r=168, idd5ab=250, address_mapping="rochrababgco", trans_queue_size=32, cmd_queue_size=8),
    "hbm2": dict(tck_ns=1.0, channels=8, ranks=1, bankgroups=4, banks_per_group=4, rows=32768, columns=128,
                 device_width=128, bus_width=128, bl=4, burst_cycles=2, cl=14, cwl=4, trcd=14, trcd_wr=14, trp=14,
                 tras=34, trfc=260, trefi=3900, trrd_s=4, trrd_l=6, twtr_s=6, twtr_l=8, tfaw=30, twr=16, trtp=5,
                 tccd_s=1, tccd_l=2, trtrs=2, vdd=1.2, idd0=65, idd2n=40, idd3n=55, idd4w=500, idd4r=390,
                 idd5ab=250, address_mapping="rorabgbachco", dual_command=True),
    # Ramulator 2 src/dram/impl/LPDDR5.cpp, LPDDR5_6400 / LPDDR5_8Gb_x16 (tCK 1250 ps); tRFCab 210 ns, tREFI 3906 ns
    "lpddr5": dict(tck_ns=1.25, bankgroups=4, banks_per_group=4, rows=32768, columns=1024, device_width=16, cl=20,
                   cwl=11, trcd=15, trp=15, tras=34, twr=28, trtp=4, trrd_s=4, twtr_s=5, twtr_l=10, tfaw=16, tppd=2,
                   trtrs=2, trfc=168, trefi=3125),
}


@pytest.mark.parametrize("preset", sorted(DS3))
def test_preset_values_are_their_sources(preset):
    cfg = get(preset)
    got = {k: getattr(cfg, k) for k in DS3[preset]}
    assert got == DS3[preset]


def test_derived_presets_convert_hbm2_nanoseconds():
    base = get("hbm2")
    for name in ("hbm2e", "hbm3"):
        cfg = get(name)
        assert cfg.tck_ns == 0.625
        for k in ("cl", "trcd", "trp", "tras", "twr", "trtp", "tfaw", "trrd_s", "trrd_l", "twtr_s", "twtr_l"):
            assert getattr(cfg, k) == math.ceil(getattr(base, k) * base.tck_ns / 0.625 - 1e-9), (name, k)
        assert cfg.trfc == 560 and cfg.trefi == 6240     # 350 ns, 3900 ns
        assert "derived" in cfg.sources["timing"]


def test_every_preset_names_its_sources_and_sizes():
    assert names() == ["ddr4_3200", "lpddr5", "hbm2", "hbm2e", "hbm3"]
    peak = {"ddr4_3200": 64 / 8 * 8 / (4 * 0.63), "lpddr5": 4 * 32 / (2 * 1.25), "hbm2": 8 * 64 / 2.0,
            "hbm2e": 8 * 64 / (2 * 0.625), "hbm3": 32 * 32 / (2 * 0.625)}
    cap = {"ddr4_3200": 16, "lpddr5": 4, "hbm2": 8, "hbm2e": 16, "hbm3": 16}
    for n in names():
        cfg = get(n)
        assert set(cfg.sources) == {"organisation", "timing", "power", "controller"}
        assert all(len(v) > 10 for v in cfg.sources.values())
        assert cfg.peak_bandwidth_gbs == pytest.approx(peak[n])
        assert cfg.capacity_gib == cap[n]


def test_timing_table_is_dramsim3s_formulas():
    c = get("ddr4_3200")
    T = timing_table(c)
    rl, wl, bc = c.cl, c.cwl, c.burst_cycles
    assert T[SAME_BANK, RD, RD] == max(bc, c.tccd_l) == 8
    assert T[OTHER_BG, RD, RD] == max(bc, c.tccd_s) == 4
    assert T[OTHER_RANK, RD, RD] == bc + c.trtrs
    assert T[SAME_BG, RD, WR] == rl + bc - wl + c.trtrs == 11
    assert T[SAME_BG, WR, RD] == wl + bc + c.twtr_l == 32
    assert T[OTHER_BG, WR, RD] == wl + bc + c.twtr_s == 24
    assert T[SAME_BANK, WR, PRE] == wl + bc + c.twr == 44
    assert T[SAME_BANK, RD, PRE] == c.trtp
    assert T[SAME_BANK, ACT, ACT] == c.tras + c.trp
    assert T[SAME_BANK, ACT, RD] == c.trcd and T[SAME_BANK, ACT, PRE] == c.tras
    assert T[SAME_BG, ACT, ACT] == c.trrd_l and T[OTHER_BG, ACT, ACT] == c.trrd_s
    assert T[SAME_BANK, PRE, ACT] == c.trp and T[SAME_RANK, REF, ACT] == c.trfc
    assert T[OTHER_RANK, ACT, ACT] == -1


def test_refresh_that_cannot_keep_up_is_refused():
    c = get("ddr4_3200")    # tRFC 560 tCK; 2 ranks refreshed in turn every tREFI / 2
    with pytest.raises(NeurosimError, match="trfc: 560 tCK is more than a quarter of the refresh interval"):
        c.with_(trefi=4470)
    assert c.with_(trefi=4480).trefi == 4480
    assert c.with_(trefi=4470, refresh="off").refresh == "off"


def test_config_errors_name_the_field():
    with pytest.raises(NeurosimError, match="rows: must be a power of two"):
        get("hbm2").with_(rows=1000)
    with pytest.raises(NeurosimError, match="address_mapping"):
        get("hbm2").with_(address_mapping="rorabgbachxx")
    with pytest.raises(NeurosimError, match="page_policy"):
        get("hbm2").with_(page_policy="adaptive")
    with pytest.raises(NeurosimError, match="tras: must be a non-negative integer"):
        get("hbm2").with_(tras=-1)
    with pytest.raises(NeurosimError, match="unknown memory preset 'hbm9'"):
        get("hbm9")


def test_address_mapping_decodes_fields_in_order():
    c = get("ddr4_3200")   # rochrababgco: co (7 bits above the 64 B offset), bg 2, ba 2, ra 1, ch 0, ro 16
    ch, ra, bg, ba, ro, co = decode(c, np.array([0, 64, 64 << 7, 64 << 9, 64 << 11, 64 << 12], np.uint64))
    assert co.tolist() == [0, 1, 0, 0, 0, 0]
    assert bg.tolist() == [0, 0, 1, 0, 0, 0]
    assert ba.tolist() == [0, 0, 0, 1, 0, 0]
    assert ra.tolist() == [0, 0, 0, 0, 1, 0]
    assert ro.tolist() == [0, 0, 0, 0, 0, 1]
    x = decode(c.with_(bank_xor=True), np.array([64 << 12], np.uint64))
    assert (x[2][0], x[3][0]) == (0, 1)   # row bit 0 flips the bank's low bit


# ---------------------------------------------------------------- numba kernel == plain-Python reference

def _perm(draw):
    fields = ["ch", "ra", "bg", "ba", "ro", "co"]
    return "".join(draw(st.permutations(fields)))


@st.composite
def small_case(draw):
    t = lambda lo, hi: draw(st.integers(lo, hi))  # noqa: E731
    tq = draw(st.sampled_from([4, 8]))
    refresh = draw(st.sampled_from(["staggered", "simultaneous", "off"]))
    cfg = DramConfig(
        name="tiny", protocol="test", tck_ns=1.0, channels=draw(st.sampled_from([1, 2])),
        ranks=draw(st.sampled_from([1, 2])), bankgroups=draw(st.sampled_from([1, 2])),
        banks_per_group=draw(st.sampled_from([1, 2])), rows=8, columns=16, bus_width=64, device_width=64, bl=4,
        burst_cycles=draw(st.sampled_from([1, 2, 4])), cl=t(2, 8), cwl=t(1, 6), trcd=t(1, 8), trcd_wr=t(1, 8),
        trp=t(1, 8), tras=t(2, 16), trfc=t(4, 30), trefi=t(240, 600), trrd_s=t(1, 4), trrd_l=t(1, 6),
        twtr_s=t(1, 4), twtr_l=t(1, 6), tfaw=t(0, 20), twr=t(1, 8), trtp=t(1, 6), tccd_s=t(1, 3), tccd_l=t(1, 5),
        trtrs=t(0, 3), tppd=t(0, 2), page_policy=draw(st.sampled_from(["open", "closed"])),
        address_mapping=_perm(draw), bank_xor=draw(st.booleans()), refresh=refresh, trans_queue_size=tq,
        cmd_queue_size=draw(st.sampled_from([1, 2, 4])), write_drain_low=t(0, tq - 1), row_hit_cap=t(1, 4),
        dual_command=draw(st.booleans()))
    n = t(1, 50)
    span = cfg.request_bytes * draw(st.sampled_from([4, 32, 4096]))   # few lines: merges, forwards, hits
    addr = [draw(st.integers(0, span - 1)) // cfg.request_bytes * cfg.request_bytes for _ in range(n)]
    gaps = [draw(st.integers(0, 6)) for _ in range(n)]
    writes = [draw(st.booleans()) for _ in range(n)]
    return cfg, Trace(np.cumsum(gaps), np.array(addr, np.uint64), np.array(writes))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_case())
def test_numba_kernel_equals_reference(case):
    cfg, tr = case
    a = run_kernel(cfg, tr, "numba")
    b = run_kernel(cfg, tr, "reference")
    for name, x, y in zip(("accept", "issue", "done", "stats"), a[:4], b[:4]):
        assert np.array_equal(x, y), name
    assert a[4] == b[4]


def test_kernel_does_not_sleep_through_the_cycle_after_a_drain_stops_at_a_dependency():
    """Found by the property test above: a write drain stops at a write a queued read waits for, and the
    next cycle moves a read; the numba kernel slept past that cycle (nothing was 'active'), so a full write
    buffer freed a slot one cycle early against the every-cycle reference (accept 13 vs 14)."""
    cfg = DramConfig(
        name="tiny", protocol="test", tck_ns=1.0, channels=1, ranks=1, bankgroups=1, banks_per_group=1, rows=8,
        columns=16, bus_width=64, device_width=64, bl=4, burst_cycles=1, cl=2, cwl=1, trcd=3, trcd_wr=1, trp=1,
        tras=2, trfc=4, trefi=240, trrd_s=1, trrd_l=1, twtr_s=1, twtr_l=1, tfaw=0, twr=1, trtp=1, tccd_s=1,
        tccd_l=1, trtrs=0, tppd=0, page_policy="open", address_mapping="chrabgbaroco", bank_xor=False,
        refresh="staggered", trans_queue_size=4, cmd_queue_size=4, write_drain_low=0, row_hit_cap=1,
        dual_command=False)
    addr = [0] * 25 + [32, 128, 128, 0, 0, 32, 64] + [0] * 18
    writes = [False] * 27 + [True, True, False, True, True] + [False] * 17 + [True]
    tr = Trace(np.zeros(50, np.int64), np.array(addr, np.uint64), np.array(writes))
    a = run_kernel(cfg, tr, "numba")
    b = run_kernel(cfg, tr, "reference")
    for name, x, y in zip(("accept", "issue", "done", "stats"), a[:4], b[:4]):
        assert np.array_equal(x, y), name
    assert a[4] == b[4]


@pytest.mark.parametrize("preset", ["ddr4_3200", "lpddr5", "hbm2", "hbm3"])
@pytest.mark.parametrize("kind", ["random", "interleaved"])
def test_numba_kernel_equals_reference_on_presets(preset, kind):
    cfg = get(preset)
    # refresh often enough to happen within 200 requests (a short tRFC keeps the interval feasible)
    cfg = cfg.with_(trfc=min(cfg.trfc, 50), trefi=200 * cfg.ranks)
    tr = synthetic(kind, 200, cfg, gap=1, seed=3)
    a, b = run_kernel(cfg, tr, "numba"), run_kernel(cfg, tr, "reference")
    assert all(np.array_equal(x, y) for x, y in zip(a[:4], b[:4])) and a[4] == b[4]
    assert a[3][:, 7].sum() > 0    # refreshes were issued


# ---------------------------------------------------------------- DRAMsim3 golden results

GOLDEN = json.loads((GOLD / "dramsim3_results.json").read_text())


@pytest.mark.parametrize("trace", sorted(GOLDEN))
def test_matches_dramsim3_golden(trace):
    g = GOLDEN[trace]
    r = simulate(g["preset"], GOLD / trace).totals
    assert r["requests"] == g["requests"] and r["reads"] == g["reads"]
    # measured agreement on every trace: identical cycles, latency to DRAMsim3's 6 printed decimals
    assert r["completion_cycles"] == g["completion_cycles"]
    assert r["mean_read_latency_cycles"] == pytest.approx(g["mean_read_latency_cycles"], rel=1e-6, abs=1e-6)
    assert r["read_row_hit_rate"] == pytest.approx(g["read_row_hit_rate"], abs=1e-12)


# ---------------------------------------------------------------- traces

def test_ramulator_formats_read_as_closed_loop(tmp_path):
    d3 = read_trace(GOLD / "hbm2_random_closed.trc")
    assert (d3.cycle == 0).all()
    r1 = tmp_path / "r1.trace"
    r1.write_text("".join(f"0x{int(a):x} {'W' if w else 'R'}\n" for a, w in zip(d3.addr, d3.is_write)))
    r2 = d3.write(tmp_path / "r2.trace", "ramulator")
    ref = simulate("hbm2", d3).totals
    for f in (r1, r2):
        t = read_trace(f, "ramulator")
        assert np.array_equal(t.addr, d3.addr) and np.array_equal(t.is_write, d3.is_write)
        assert simulate("hbm2", f).totals["completion_cycles"] == ref["completion_cycles"]   # format guessed


@pytest.mark.parametrize("text, fmt, msg", [
    ("0x40 READ 1\n0x80 REED 2\n", None, r":2: operation: 'REED'"),
    ("0x40 READ 1\n0xZZ READ 2\n", None, r":2: address: '0xZZ' is not a hexadecimal"),
    ("0x40 READ 5\n0x80 READ 2\n", None, r":2: cycle: 2 is before"),
    ("0x40 READ -1\n", None, r":1: cycle: -1 is negative"),
    ("0x40 READ x\n", None, r":1: cycle: 'x' is not"),
    ("# c\n\n0x40 READ 1 7\n", "dramsim3", r":3: expected 'ADDRESS READ\|WRITE CYCLE'"),
    ("LD 0x40\n0x80\n", "ramulator", r":2: expected 'ADDRESS R\|W'"),
    ("# only a comment\n", None, r"has no requests"),
])
def test_bad_trace_lines_name_file_line_field(tmp_path, text, fmt, msg):
    f = tmp_path / "bad.trc"
    f.write_text(text)
    with pytest.raises(NeurosimError, match=msg) as e:
        read_trace(f, fmt)
    assert str(e.value).startswith(str(f)) and "\n" not in str(e.value)


def test_unreadable_traces(tmp_path):
    with pytest.raises(NeurosimError, match="no such trace file"):
        read_trace(tmp_path / "missing.trc")
    b = tmp_path / "bin.trc"
    b.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(NeurosimError, match="not a text trace"):
        read_trace(b)
    with pytest.raises(NeurosimError, match="format 'csv'"):
        read_trace(b, "csv")


# ---------------------------------------------------------------- behaviour

def test_page_policy_bank_xor_refresh_and_bounds():
    cfg = get("ddr4_3200")
    stream = synthetic("stream", 3000, cfg)
    op = simulate(cfg, stream).totals
    cl = simulate(cfg, stream, page_policy="closed").totals
    assert op["read_row_hit_rate"] > 0.95 and cl["read_row_hit_rate"] == 0
    assert cl["completion_cycles"] > 1.5 * op["completion_cycles"]
    assert op["bandwidth_gbs"] <= cfg.peak_bandwidth_gbs
    strided = synthetic("strided", 400, cfg)
    plain = simulate(cfg, strided).totals
    xor = simulate(cfg, strided, bank_xor=True).totals
    assert plain["row_conflicts"] >= 390                       # one bank, a new row every request
    assert xor["completion_cycles"] < plain["completion_cycles"] / 4    # XOR spreads rows over banks
    # refresh: one REF per rank every tREFI (staggered: a rank every tREFI / ranks)
    assert plain["refreshes"] == pytest.approx(plain["simulated_cycles"] / (cfg.trefi / cfg.ranks), abs=1)
    off = simulate(cfg, strided, refresh="off").totals
    assert off["refreshes"] == 0 and off["completion_cycles"] < plain["completion_cycles"]


def test_read_latency_floor_and_forwarding():
    cfg = get("hbm2")
    one = simulate(cfg, ([0], [0], [False])).totals
    # accepted at cycle 1, into its bank's command queue in that cycle (after the command slot, as DRAMsim3's
    # ClockTick orders them), ACT at cycle 2, RD tRCD later, data RL + burst after the RD
    assert one["mean_read_latency_cycles"] == 1 + cfg.trcd + cfg.read_delay
    fw = simulate(cfg, ([0, 1], [0, 0], [True, False])).totals
    assert fw["forwarded_reads"] == 1 and fw["mean_read_latency_cycles"] == 1


# ---------------------------------------------------------------- CLI

def test_cli_list_and_json(capsys):
    assert main(["dram", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in names())
    assert main(["dram", "--preset", "hbm2", "--trace", str(GOLD / "hbm2_stream_open.trc"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    g = GOLDEN["hbm2_stream_open.trc"]
    assert d["completion_cycles"] == g["completion_cycles"]
    assert d["mean_read_latency_cycles"] == pytest.approx(g["mean_read_latency_cycles"], rel=1e-6)
    assert d["read_row_hit_rate"] == pytest.approx(g["read_row_hit_rate"])
    assert d["bandwidth_gbs"] == pytest.approx(600 * 64 / g["completion_cycles"])
    assert len(d["channels"]) == 8
    assert main(["dram", "--preset", "ddr4", "--trace", str(GOLD / "ddr4_3200_random_open.trc")]) == 0
    assert "ddr4_3200: 600 requests" in capsys.readouterr().out


def test_cli_errors_exit_2_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.trc"
    bad.write_text("0x40 READ 1\n0x80 FETCH? 2\n")
    assert main(["dram", "--preset", "hbm2", "--trace", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}:2: operation" in err
    assert main(["dram", "--preset", "nope", "--trace", str(bad)]) == 2
    assert "unknown memory preset" in capsys.readouterr().err
    assert main(["dram", "--preset", "hbm2"]) == 2
    assert main(["dram", "--preset", "hbm2", "--trace", str(GOLD / "hbm2_stream_open.trc"), "--mapping", "rorororo"]) == 2
    assert "address_mapping" in capsys.readouterr().err
