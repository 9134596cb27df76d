"""Memory presets: DDR4-3200, LPDDR5-6400, HBM2, HBM2e, HBM3; every number names its source.

``get("hbm2")`` returns a :class:`~hw.memory.config.DramConfig`; ``names()`` lists them. Sources:

* **ddr4_3200** -- DRAMsim3 ``configs/DDR4_8Gb_x8_3200.ini`` (umd-memsys/DRAMsim3, JEDEC JESD79-4 speed bin
  DDR4-3200AA 22-22-22, Micron 8Gb x8 IDD values): one 64-bit channel, 2 ranks of 8 x8 devices, 4 bank
  groups x 4 banks, 64Ki rows x 1Ki columns, BL8, tCK 0.63 ns (0.625 in JESD79-4; DRAMsim3 rounds).
* **hbm2** -- DRAMsim3 ``configs/HBM2_8Gb_x128.ini`` (JESD235A, 2 Gb/s/pin): 8 legacy 128-bit channels per
  stack, 16 banks in 4 groups, 32Ki rows x 64 columns (x2 for the 128-bit prefetch, as DRAMsim3 doubles
  them), BL4, tCK 1 ns; a row and a column command may issue in the same cycle (separate row/column buses).
* **hbm2e** -- JESD235D's 3.2 Gb/s/pin (tCK 0.625 ns), 16 Gb dies; the DRAM core timings (ns) of the hbm2
  preset converted to tCK at 0.625 ns (rounded up): derived, no public per-speed table exists.
* **hbm3** -- JESD238's organisation as publicly summarised (16 channels x 2 pseudo channels of 32 bits, BL8
  in 2 tCK at tCK 0.625 ns = 6.4 Gb/s/pin, 16 banks in 4 groups, 2 stack IDs as ranks); core timings derived
  from the hbm2 preset's ns (no public HBM3 speed table: Ramulator 2's ``src/dram/impl/HBM3.cpp`` has one
  2 Gb/s placeholder preset), tRFC 350 ns / tREFI 3900 ns from that file.
* **lpddr5** -- Ramulator 2 ``src/dram/impl/LPDDR5.cpp`` presets LPDDR5_6400 / LPDDR5_8Gb_x16 (CK 800 MHz):
  four x16 channels (a 64-bit package), BL16, 4 bank groups x 4 banks, 32Ki rows x 1Ki columns; BL16 in
  2 tCK where Ramulator 2 counts 4 (see ``sources``).

IDD values for HBM come from DRAMsim3's HBM2 config (per 128-bit channel "device"); LPDDR5 and HBM3 IDD
values are not published in the JEDEC standards: they are LPDDR4-class values and HBM2's, marked as
stand-ins in ``sources``. Upstream commits read: DRAMsim3 29817593b338, Ramulator 2 (LPDDR5.cpp 0b89cad1,
HBM3.cpp 525d045f).
"""
from __future__ import annotations

import math

from neurosim.errors import UnknownNameError

from .config import DramConfig

_DS3 = "DRAMsim3 configs/{} (umd-memsys/DRAMsim3)"
_R2 = "Ramulator 2 {} (CMU-SAFARI/ramulator2)"


def _ns(ns: float, tck: float) -> int:
    return int(math.ceil(ns / tck - 1e-9))


def _ddr4_3200() -> DramConfig:
    src = _DS3.format("DDR4_8Gb_x8_3200.ini") + "; JEDEC JESD79-4 DDR4-3200AA"
    return DramConfig(
        name="ddr4_3200", protocol="DDR4", tck_ns=0.63, channels=1, ranks=2, bankgroups=4, banks_per_group=4,
        rows=65536, columns=1024, bus_width=64, device_width=8, bl=8, burst_cycles=4,
        cl=22, cwl=16, trcd=22, trcd_wr=22, trp=22, tras=52, trfc=560, trefi=12480, trrd_s=4, trrd_l=8,
        twtr_s=4, twtr_l=12, tfaw=34, twr=24, trtp=12, tccd_s=4, tccd_l=8, trtrs=1,
        vdd=1.2, idd0=57, idd2n=37, idd3n=52, idd4r=168, idd4w=150, idd5ab=250,
        address_mapping="rochrababgco",
        sources={"organisation": src, "timing": src, "power": _DS3.format("DDR4_8Gb_x8_3200.ini") + " (Micron IDD)",
                 "controller": _DS3.format("DDR4_8Gb_x8_3200.ini") + " [system]: queues 32/8, open page"})


def _hbm2() -> DramConfig:
    src = _DS3.format("HBM2_8Gb_x128.ini") + "; JEDEC JESD235A"
    return DramConfig(
        name="hbm2", protocol="HBM2", tck_ns=1.0, channels=8, ranks=1, bankgroups=4, banks_per_group=4,
        rows=32768, columns=128, bus_width=128, device_width=128, bl=4, burst_cycles=2,
        cl=14, cwl=4, trcd=14, trcd_wr=14, trp=14, tras=34, trfc=260, trefi=3900, trrd_s=4, trrd_l=6,
        twtr_s=6, twtr_l=8, tfaw=30, twr=16, trtp=5, tccd_s=1, tccd_l=2, trtrs=2,
        vdd=1.2, idd0=65, idd2n=40, idd3n=55, idd4r=390, idd4w=500, idd5ab=250,
        address_mapping="rorabgbachco", dual_command=True,
        sources={"organisation": src + " (columns x2 for the 2n prefetch, as DRAMsim3)", "timing": src
                 + " (tRTP 5 and tRTRS 2: the defaults DRAMsim3 applies, configuration.cc InitTimingParams, "
                 "since its HBM2 ini names tRTP_S/tRTP_L, which it does not read, and no tRTRS)", "power": _DS3.format("HBM2_8Gb_x128.ini"),
                 "controller": _DS3.format("HBM2_8Gb_x128.ini") + " [system]; dual command: JESD235 row/column buses"})


def _hbm2e() -> DramConfig:
    tck = 0.625
    base = _hbm2()
    src = ("JEDEC JESD235D (3.2 Gb/s/pin, 16 Gb dies); core timings = hbm2 preset's ns at tCK 0.625 ns "
           "(derived, rounded up)")
    ns = {k: getattr(base, k) * base.tck_ns for k in ("cl", "trcd", "trcd_wr", "trp", "tras", "trfc", "trrd_s",
                                                       "trrd_l", "twtr_s", "twtr_l", "tfaw", "twr", "trtp")}
    t = {k: _ns(v, tck) for k, v in ns.items()}
    return base.with_(
        name="hbm2e", tck_ns=tck, rows=65536, cwl=_ns(4 * 1.0, tck), trefi=_ns(3900, tck), tccd_s=1, tccd_l=2,
        trfc=_ns(350, tck), **{k: v for k, v in t.items() if k != "trfc"},
        sources={"organisation": "JESD235D: 8 x 128-bit channels, 16 Gb dies (64Ki rows per bank)",
                 "timing": src + "; tRFC 350 ns: the 8 Gb value of Ramulator 2 src/dram/impl/HBM3.cpp's tRFC table "
                           "(no public HBM2e tRFC found)",
                 "power": "stand-in: hbm2 preset's IDD (no public HBM2e IDD table)",
                 "controller": "as the hbm2 preset (DRAMsim3 [system]: queues 32/8, open page, dual command)"})


def _hbm3() -> DramConfig:
    tck = 0.625
    base = _hbm2()
    ns = {k: getattr(base, k) * base.tck_ns for k in ("cl", "cwl", "trcd", "trcd_wr", "trp", "tras", "trrd_s", "trrd_l",
                                                       "twtr_s", "twtr_l", "tfaw", "twr", "trtp")}
    r2 = _R2.format("src/dram/impl/HBM3.cpp")
    return DramConfig(
        name="hbm3", protocol="HBM3", tck_ns=tck, channels=32, ranks=2, bankgroups=4, banks_per_group=4,
        rows=16384, columns=256, bus_width=32, device_width=32, bl=8, burst_cycles=2,
        **{k: _ns(v, tck) for k, v in ns.items()}, trfc=_ns(350, tck), trefi=_ns(3900, tck),
        tccd_s=2, tccd_l=4, trtrs=2,
        vdd=1.1, idd0=65, idd2n=40, idd3n=55, idd4r=390, idd4w=500, idd5ab=250,
        address_mapping="rorabgbachco", dual_command=True,
        sources={"organisation": "JEDEC JESD238 (HBM3) as publicly summarised: 16 channels x 2 pseudo channels of "
                                 "32 bits, BL8, 6.4 Gb/s/pin (BL8 in 2 tCK at tCK 0.625 ns), 16 banks in 4 groups; "
                                 "a 16 GB stack as 2 stack IDs (modelled as ranks) of 16Ki rows x 1 KiB pages "
                                 "(our reading, not checked against the standard's tables)",
                 "timing": "derived: the hbm2 preset's core timings (DRAMsim3 HBM2_8Gb_x128.ini, in ns) at tCK "
                           "0.625 ns, rounded up; tRFC 350 ns (8 Gb) and tREFI 3900 ns from " + r2 +
                           " (its only speed preset, HBM3_2Gbps, is marked TODO there); tCCD_S = the burst, "
                           "tCCD_L = 2 bursts",
                 "power": "stand-in: hbm2 preset's IDD at VDD 1.1 V (no public HBM3 IDD table)",
                 "controller": "as the hbm2 preset (DRAMsim3 [system]: queues 32/8, open page, dual command)"})


def _lpddr5() -> DramConfig:
    tck = 1.25
    src = _R2.format("src/dram/impl/LPDDR5.cpp") + " timing preset LPDDR5_6400, org preset LPDDR5_8Gb_x16"
    return DramConfig(
        name="lpddr5", protocol="LPDDR5", tck_ns=tck, channels=4, ranks=1, bankgroups=4, banks_per_group=4,
        rows=32768, columns=1024, bus_width=16, device_width=16, bl=16, burst_cycles=2,
        cl=20, cwl=11, trcd=15, trcd_wr=15, trp=15, tras=34, trfc=_ns(210, tck), trefi=_ns(3906, tck),
        trrd_s=4, trrd_l=4, twtr_s=5, twtr_l=10, tfaw=16, twr=28, trtp=4, tccd_s=2, tccd_l=4, trtrs=2, tppd=2,
        vdd=1.05, idd0=60, idd2n=22, idd3n=30, idd4r=230, idd4w=210, idd5ab=150,
        address_mapping="rochrababgco",
        sources={"organisation": src + " (1 channel, 1 rank, 4 BG x 4 banks, 32Ki rows x 1Ki columns, x16); four x16 "
                                       "channels as a 64-bit package (our choice)",
                 "timing": src + ": nCL 20, nCWL 11, nRCD 15, nRPpb 15 (PRE is per bank here), nRAS 34, nWR 28, "
                           "nRTP 4, nRRD 4, nWTRS 5, nWTRL 10, nFAW 16, nPPD 2, nCS 2 (as tRTRS), tCK 1250 ps; "
                           "tRFCab 210 ns (8 Gb) and tREFI 3906 ns from its tables. Deviation: Ramulator 2 sets "
                           "nBL16 = nCCD = 4 tCK; we use the BL16 data time at 6400 MT/s, 2 tCK (2.5 ns), as "
                           "tCCD_S and keep 4 tCK as tCCD_L (same bank group)",
                 "power": "stand-in: LPDDR4-class IDD, VDD2 1.05 V (JESD209-5B publishes no IDD values)",
                 "controller": "DRAMsim3 defaults (queues 32/8, open page)"})


_PRESETS = {"ddr4_3200": _ddr4_3200, "lpddr5": _lpddr5, "hbm2": _hbm2, "hbm2e": _hbm2e, "hbm3": _hbm3}
_ALIASES = {"ddr4": "ddr4_3200", "ddr4-3200": "ddr4_3200", "lpddr5-6400": "lpddr5", "hbm2-2000": "hbm2"}


def names() -> list[str]:
    return list(_PRESETS)


def get(name) -> DramConfig:
    """A preset by name (``DramConfig`` instances pass through)."""
    if isinstance(name, DramConfig):
        return name
    key = str(name).lower().strip()
    key = _ALIASES.get(key, key)
    if key not in _PRESETS:
        raise UnknownNameError("memory preset", str(name), _PRESETS)
    return _PRESETS[key]()
