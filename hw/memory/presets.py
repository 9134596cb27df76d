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
* **hbm3** -- Ramulator 2 ``python/ramulator/dram/hbm3.py`` preset HBM3_6400Mbps / HBM3_16Gb_8hi (JESD238
  Tables 4 and 84): 16 channels x 2 pseudo channels of 32 bits, BL8 in 2 tCK, tCK 0.625 ns, 16 banks in
  4 groups (and 2 stack IDs, folded into ranks), 16Ki rows.
* **lpddr5** -- Ramulator 2 ``python/ramulator/dram/lpddr5.py`` preset LPDDR5_6400 / LPDDR5_8Gb_x16 (JESD209-5B
  Tables 235, 330, 372; bank-group mode, CK 800 MHz, WCK:CK 4:1): four x16 channels (a 64-bit package),
  BL16 in 2 tCK, 4 bank groups x 4 banks, 32Ki rows x 1Ki columns.

IDD values for HBM come from DRAMsim3's HBM2 config (per 128-bit channel "device"); LPDDR5 and HBM3 IDD
values are not published in the JEDEC standards: they reuse those of LPDDR4 (DRAMsim3
``LPDDR4_8Gb_x16_2400.ini``) and HBM2 and are marked as stand-ins in ``sources``.
"""
from __future__ import annotations

import math

from neurosim.errors import UnknownNameError

from .config import DramConfig

_DS3 = "DRAMsim3 configs/{} (umd-memsys/DRAMsim3)"
_R2 = "Ramulator 2 python/ramulator/dram/{} (CMU-SAFARI/ramulator2)"


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
                 "timing": src + "; tRFC 350 ns for 8 Gb per channel (Ramulator 2 hbm2.py, JESD235D)",
                 "power": "stand-in: hbm2 preset's IDD (no public HBM2e IDD table)",
                 "controller": "as hbm2"})


def _hbm3() -> DramConfig:
    src = _R2.format("hbm3.py") + " HBM3_6400Mbps, HBM3_16Gb_8hi; JEDEC JESD238"
    return DramConfig(
        name="hbm3", protocol="HBM3", tck_ns=0.625, channels=32, ranks=2, bankgroups=4, banks_per_group=4,
        rows=16384, columns=256, bus_width=32, device_width=32, bl=8, burst_cycles=2,
        cl=20, cwl=10, trcd=31, trcd_wr=15, trp=26, tras=45, trfc=_ns(350, 0.625), trefi=6240, trrd_s=4,
        trrd_l=5, twtr_s=7, twtr_l=10, tfaw=24, twr=33, trtp=9, tccd_s=2, tccd_l=4, trtrs=3, tppd=2,
        vdd=1.1, idd0=65, idd2n=40, idd3n=55, idd4r=390, idd4w=500, idd5ab=250,
        address_mapping="rorabgbachco", dual_command=True,
        sources={"organisation": src + " (32 pseudo channels of 32 bits; the 2 stack IDs as ranks)",
                 "timing": src + " (tRTRS: its nCCDR; tRFC 350 ns for 8 Gb channels, JESD238 Table 84)",
                 "power": "stand-in: hbm2 preset's IDD at VDD 1.1 V (JESD238 VDD; no public HBM3 IDD table)",
                 "controller": "as hbm2"})


def _lpddr5() -> DramConfig:
    tck = 1.25
    src = _R2.format("lpddr5.py") + " LPDDR5_6400, LPDDR5_8Gb_x16; JEDEC JESD209-5B"
    return DramConfig(
        name="lpddr5", protocol="LPDDR5", tck_ns=tck, channels=4, ranks=1, bankgroups=4, banks_per_group=4,
        rows=32768, columns=1024, bus_width=16, device_width=16, bl=16, burst_cycles=2,
        cl=17, cwl=9, trcd=15, trcd_wr=15, trp=15, tras=34, trfc=_ns(210, tck), trefi=_ns(3906, tck),
        trrd_s=max(4, _ns(5, tck)), trrd_l=max(4, _ns(5, tck)), twtr_s=5, twtr_l=10,
        tfaw=max(16, _ns(20, tck)), twr=28, trtp=8, tccd_s=2, tccd_l=4, trtrs=1, tppd=2,
        vdd=1.05, idd0=60, idd2n=22, idd3n=30, idd4r=230, idd4w=210, idd5ab=150,
        address_mapping="rochrababgco",
        sources={"organisation": src + "; four x16 channels as a 64-bit package (our choice)",
                 "timing": src + " (tRFCab 210 ns for 8 Gb, tREFI 3906 ns: Table 235; tRRD 5 ns, tFAW 20 ns)",
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
