"""DRAM/HBM organisation, JEDEC timings, power and controller policy: :class:`DramConfig`.

All timings are integers in the DRAM's command clock (tCK), as DRAMsim3 and Ramulator count them. The
derived command-to-command table (:func:`timing_table`) is the JEDEC constraint set written as
"after command X at time t, command Y to a bank in scope S may issue no earlier than t + d":

=======================  ===========================================================================
read -> read             max(tBURST, tCCD_L) same bank group, max(tBURST, tCCD_S) other group,
                         tBURST + tRTRS other rank
read -> write            RL + tBURST - WL + tRTRS (bus turnaround)
write -> read            WL + tBURST + tWTR_L/S (same/other bank group)
read -> precharge        AL + tRTP;  write -> precharge  WL + tBURST + tWR
act -> act               tRC same bank, tRRD_L / tRRD_S same / other bank group; at most 4 in tFAW
act -> read/write        tRCD (tRCDRD / tRCDWR for HBM); act -> precharge  tRAS
precharge -> act         tRP;  refresh -> act  tRFC;  refresh every tREFI (per rank, staggered)
=======================  ===========================================================================

A request moves the bus for ``burst_cycles`` (BL / 2 on a DDR bus, or given: LPDDR5 and HBM3 move BL16 /
BL8 in 2 tCK because their data clock runs faster than the command clock); a read returns its data
``RL + burst_cycles`` after the read command (``read_delay``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from neurosim.errors import NeurosimError

# command codes shared by the kernel and the reference
RD, RDA, WR, WRA, ACT, PRE, REF = 0, 1, 2, 3, 4, 5, 6
N_CMD = 7
CMD_NAMES = ("RD", "RDA", "WR", "WRA", "ACT", "PRE", "REF")
# scopes of a timing constraint
SAME_BANK, SAME_BG, OTHER_BG, OTHER_RANK, SAME_RANK = 0, 1, 2, 3, 4

MAPPING_FIELDS = ("ch", "ra", "bg", "ba", "ro", "co")


@dataclass(frozen=True)
class DramConfig:
    """One memory system: ``channels`` independent controllers, each with ``ranks`` x ``bankgroups`` x
    ``banks_per_group`` banks of ``rows`` x ``columns`` (columns in device-width words).

    ``address_mapping`` is DRAMsim3's 12-character field order from the most to the least significant bit
    above the request offset (``ro`` row, ``ch`` channel, ``ra`` rank, ``bg`` bank group, ``ba`` bank,
    ``co`` column), e.g. ``rochrababgco``; ``bank_xor`` XORs the bank-group and bank bits with the low row
    bits (permutation-based interleaving, Zhang et al. MICRO 2000), which spreads strided row conflicts.
    """

    name: str
    protocol: str
    tck_ns: float
    channels: int
    ranks: int
    bankgroups: int
    banks_per_group: int
    rows: int
    columns: int
    bus_width: int          # bits per channel
    device_width: int       # bits per device
    bl: int                 # burst length (beats)
    burst_cycles: int       # tCK the data bus is busy per request
    # timings (tCK)
    cl: int
    cwl: int
    trcd: int               # ACT -> RD
    trcd_wr: int            # ACT -> WR (= trcd except HBM, GDDR)
    trp: int
    tras: int
    trfc: int
    trefi: int
    trrd_s: int
    trrd_l: int
    twtr_s: int
    twtr_l: int
    tfaw: int
    twr: int
    trtp: int
    tccd_s: int
    tccd_l: int
    trtrs: int = 1          # rank-to-rank switch (bus turnaround)
    al: int = 0
    tppd: int = 0           # PRE -> PRE (LPDDR5, HBM3)
    # power (IDD in mA, VDD in V), per device; Micron's DDR power model (TN-40-07)
    vdd: float = 1.2
    idd0: float = 48.0
    idd2n: float = 34.0
    idd3n: float = 43.0
    idd4r: float = 135.0
    idd4w: float = 123.0
    idd5ab: float = 250.0
    # controller
    page_policy: str = "open"          # "open" | "closed"
    address_mapping: str = "rochrababgco"
    bank_xor: bool = False
    refresh: str = "staggered"         # "staggered" (rank by rank every tREFI/ranks) | "simultaneous" | "off"
    trans_queue_size: int = 32         # read queue and write buffer, each, per channel
    cmd_queue_size: int = 8            # per-bank command queue
    write_drain_low: int = 8           # drain when more than this many writes wait and no command is queued
    row_hit_cap: int = 4               # close a row with pending hits after this many hits if others wait
    dual_command: bool = False         # a row and a column command in one cycle (HBM's separate buses)
    sources: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        ints = ("channels", "ranks", "bankgroups", "banks_per_group", "rows", "columns", "bus_width",
                "device_width", "bl", "burst_cycles", "trans_queue_size", "cmd_queue_size")
        for k in ints:
            v = getattr(self, k)
            if not isinstance(v, (int,)) or isinstance(v, bool) or v < 1:
                raise NeurosimError(f"{self.name}: {k}: must be a positive integer, got {v!r}")
        for k in ("channels", "ranks", "bankgroups", "banks_per_group", "rows", "columns", "bl"):
            v = getattr(self, k)
            if v & (v - 1):
                raise NeurosimError(f"{self.name}: {k}: must be a power of two (address bits), got {v}")
        for k in ("cl", "cwl", "trcd", "trcd_wr", "trp", "tras", "trfc", "trefi", "trrd_s", "trrd_l", "twtr_s",
                  "twtr_l", "tfaw", "twr", "trtp", "tccd_s", "tccd_l", "trtrs", "al", "tppd",
                  "write_drain_low", "row_hit_cap"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise NeurosimError(f"{self.name}: {k}: must be a non-negative integer (tCK), got {v!r}")
        for k in ("tck_ns", "vdd", "idd0", "idd2n", "idd3n", "idd4r", "idd4w", "idd5ab"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise NeurosimError(f"{self.name}: {k}: must be a positive finite number, got {v!r}")
        if self.page_policy not in ("open", "closed"):
            raise NeurosimError(f"{self.name}: page_policy: {self.page_policy!r}; allowed: open, closed")
        if self.refresh not in ("staggered", "simultaneous", "off"):
            raise NeurosimError(f"{self.name}: refresh: {self.refresh!r}; allowed: staggered, simultaneous, off")
        if self.bus_width % self.device_width:
            raise NeurosimError(f"{self.name}: bus_width {self.bus_width} is not a multiple of device_width "
                                f"{self.device_width}")
        if self.refresh != "off" and self.trefi < self.ranks:
            raise NeurosimError(f"{self.name}: trefi: {self.trefi} is shorter than one tCK per rank")
        if self.refresh != "off":
            interval = self.trefi // self.ranks if self.refresh == "staggered" else self.trefi
            if 4 * self.trfc > interval:
                # refresh occupying a large share of the time starves the queues: measured, the controller
                # (ours and its plain-Python reference alike) stops serving requests at half the interval;
                # real parts spend 2-18 % of it (the presets); refused above a quarter
                raise NeurosimError(f"{self.name}: trfc: {self.trfc} tCK is more than a quarter of the refresh interval "
                                    f"({interval} tCK = tREFI {self.trefi}"
                                    + (f" / {self.ranks} ranks" if self.refresh == "staggered" else "")
                                    + "); no request would ever be served")
        if self.columns < self.bl:
            raise NeurosimError(f"{self.name}: columns {self.columns} < BL {self.bl}")
        if self.write_drain_low >= self.trans_queue_size:
            raise NeurosimError(f"{self.name}: write_drain_low {self.write_drain_low} must be below "
                                f"trans_queue_size {self.trans_queue_size}")
        parse_mapping(self.address_mapping, self.name)

    # ---- derived quantities ----
    @property
    def banks(self) -> int:
        return self.bankgroups * self.banks_per_group

    @property
    def request_bytes(self) -> int:
        """Bytes per request (one burst): bus_width / 8 x BL."""
        return self.bus_width // 8 * self.bl

    @property
    def devices_per_rank(self) -> int:
        return self.bus_width // self.device_width

    @property
    def read_delay(self) -> int:
        return self.al + self.cl + self.burst_cycles

    @property
    def write_delay(self) -> int:
        return self.al + self.cwl + self.burst_cycles

    @property
    def trc(self) -> int:
        return self.tras + self.trp

    @property
    def peak_bandwidth_gbs(self) -> float:
        """Channels x one request per burst: the data-bus bound in GB/s (10^9 B/s)."""
        return self.channels * self.request_bytes / (self.burst_cycles * self.tck_ns)

    @property
    def capacity_gib(self) -> float:
        return (self.channels * self.ranks * self.banks * self.rows * self.columns * self.device_width / 8
                * self.devices_per_rank / 2**30)

    def with_(self, **changes) -> "DramConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(request_bytes=self.request_bytes, peak_bandwidth_gbs=self.peak_bandwidth_gbs,
                 read_delay=self.read_delay, write_delay=self.write_delay, trc=self.trc,
                 capacity_gib=self.capacity_gib)
        return d


def parse_mapping(mapping: str, where: str = "address_mapping") -> list[str]:
    """``rochrababgco`` -> ['ro', 'ch', 'ra', 'ba', 'bg', 'co'] (most significant first); each field once."""
    if not isinstance(mapping, str) or len(mapping) != 12:
        raise NeurosimError(f"{where}: address_mapping: {mapping!r} must be 12 characters, six 2-letter fields "
                            f"of {', '.join(MAPPING_FIELDS)}")
    parts = [mapping[i:i + 2] for i in range(0, 12, 2)]
    if sorted(parts) != sorted(MAPPING_FIELDS):
        raise NeurosimError(f"{where}: address_mapping: {mapping!r} must name each of "
                            f"{', '.join(MAPPING_FIELDS)} exactly once")
    return parts


def _log2(n: int) -> int:
    return int(n).bit_length() - 1


def decode(cfg: DramConfig, addr):
    """Byte addresses (uint64 array) -> channel, rank, bank group, bank, row, column arrays (int64).

    The request offset (log2 of :attr:`DramConfig.request_bytes` bits) is dropped, then fields are taken
    from the least significant end in the reverse of ``address_mapping``'s order, as DRAMsim3 does.
    """
    import numpy as np

    a = np.asarray(addr, dtype=np.uint64) >> np.uint64(_log2(cfg.request_bytes))
    widths = {"ch": _log2(cfg.channels), "ra": _log2(cfg.ranks), "bg": _log2(cfg.bankgroups),
              "ba": _log2(cfg.banks_per_group), "ro": _log2(cfg.rows), "co": _log2(cfg.columns) - _log2(cfg.bl)}
    out, pos = {}, 0
    for f in reversed(parse_mapping(cfg.address_mapping, cfg.name)):
        out[f] = ((a >> np.uint64(pos)) & np.uint64((1 << widths[f]) - 1)).astype(np.int64)
        pos += widths[f]
    if cfg.bank_xor:
        wbg, wba = widths["bg"], widths["ba"]
        low = out["ro"]
        out["ba"] = out["ba"] ^ (low & ((1 << wba) - 1))
        out["bg"] = out["bg"] ^ ((low >> wba) & ((1 << wbg) - 1))
    return out["ch"], out["ra"], out["bg"], out["ba"], out["ro"], out["co"]


def timing_table(cfg: DramConfig):
    """int64 array [scope, command, next command] -> minimum distance in tCK (-1: no constraint).

    Scopes: same bank, other banks of the same bank group, other bank groups of the same rank, other
    ranks, every bank of the same rank (refresh). Auto-precharge commands (RDA/WRA) close the bank: the
    next ACT waits for the implicit precharge plus tRP.
    """
    import numpy as np

    c = cfg
    t = np.full((5, N_CMD, N_CMD), -1, dtype=np.int64)
    bc = c.burst_cycles
    one_bg = c.bankgroups == 1
    rd_rd_l = max(bc, c.tccd_s if one_bg else c.tccd_l)
    rd_rd_s = max(bc, c.tccd_s)
    rd_rd_o = bc + c.trtrs
    rl, wl = c.al + c.cl, c.al + c.cwl
    rd_wr = rl + bc - wl + c.trtrs
    rd_wr_o = c.read_delay + bc + c.trtrs - c.write_delay
    rd_pre = c.al + c.trtp
    rda_act = c.al + bc + c.trtp + c.trp
    wr_rd_l = c.write_delay + (c.twtr_s if one_bg else c.twtr_l)
    wr_rd_s = c.write_delay + c.twtr_s
    wr_rd_o = c.write_delay + bc + c.trtrs - c.read_delay
    wr_wr_l = max(bc, c.tccd_s if one_bg else c.tccd_l)
    wr_wr_s = max(bc, c.tccd_s)
    wr_wr_o = bc
    wr_pre = wl + bc + c.twr
    rd_act = rd_pre + c.trp
    wr_act = wr_pre + c.trp
    act_act_l = c.trrd_s if one_bg else c.trrd_l

    def put(scope, cmd, pairs):
        for nxt, d in pairs:
            t[scope, cmd, nxt] = max(t[scope, cmd, nxt], d)

    for rd in (RD, RDA):
        if rd == RD:
            put(SAME_BANK, RD, [(RD, rd_rd_l), (RDA, rd_rd_l), (WR, rd_wr), (WRA, rd_wr), (PRE, rd_pre)])
        else:
            put(SAME_BANK, RDA, [(ACT, rda_act), (REF, rd_act)])
        put(SAME_BG, rd, [(RD, rd_rd_l), (RDA, rd_rd_l), (WR, rd_wr), (WRA, rd_wr)])
        put(OTHER_BG, rd, [(RD, rd_rd_s), (RDA, rd_rd_s), (WR, rd_wr), (WRA, rd_wr)])
        put(OTHER_RANK, rd, [(RD, rd_rd_o), (RDA, rd_rd_o), (WR, rd_wr_o), (WRA, rd_wr_o)])
    for wr in (WR, WRA):
        if wr == WR:
            put(SAME_BANK, WR, [(RD, wr_rd_l), (RDA, wr_rd_l), (WR, wr_wr_l), (WRA, wr_wr_l), (PRE, wr_pre)])
        else:
            put(SAME_BANK, WRA, [(ACT, wr_act), (REF, wr_act)])
        put(SAME_BG, wr, [(RD, wr_rd_l), (RDA, wr_rd_l), (WR, wr_wr_l), (WRA, wr_wr_l)])
        put(OTHER_BG, wr, [(RD, wr_rd_s), (RDA, wr_rd_s), (WR, wr_wr_s), (WRA, wr_wr_s)])
        put(OTHER_RANK, wr, [(RD, wr_rd_o), (RDA, wr_rd_o), (WR, wr_wr_o), (WRA, wr_wr_o)])
    put(SAME_BANK, ACT, [(ACT, c.trc), (RD, c.trcd), (RDA, c.trcd), (WR, c.trcd_wr), (WRA, c.trcd_wr),
                         (PRE, c.tras)])
    put(SAME_BG, ACT, [(ACT, act_act_l)])
    put(OTHER_BG, ACT, [(ACT, c.trrd_s)])
    put(SAME_BANK, PRE, [(ACT, c.trp), (REF, c.trp)])
    if c.tppd:
        put(SAME_BG, PRE, [(PRE, c.tppd)])
        put(OTHER_BG, PRE, [(PRE, c.tppd)])
    put(SAME_RANK, REF, [(ACT, c.trfc), (REF, c.trfc)])
    return t


def energy_per_command_pj(cfg: DramConfig) -> dict:
    """Micron's DDR power model (TN-40-07) per command, as DRAMsim3 applies it, in pJ (x tCK in ns).

    ACT+PRE pair: VDD (IDD0 tRC - IDD3N tRAS - IDD2N tRP); a read burst VDD (IDD4R - IDD3N) tBURST; a
    write burst VDD (IDD4W - IDD3N) tBURST; a refresh VDD (IDD5 - IDD3N) tRFC; background per cycle
    VDD IDD3N (a bank open) or VDD IDD2N (all closed); every term x devices per rank x tCK.
    """
    c, n, tck = cfg, cfg.devices_per_rank, cfg.tck_ns
    return {
        "act": c.vdd * (c.idd0 * c.trc - (c.idd3n * c.tras + c.idd2n * c.trp)) * n * tck,
        "read": c.vdd * (c.idd4r - c.idd3n) * c.burst_cycles * n * tck,
        "write": c.vdd * (c.idd4w - c.idd3n) * c.burst_cycles * n * tck,
        "ref": c.vdd * (c.idd5ab - c.idd3n) * c.trfc * n * tck,
        "act_stb_cycle": c.vdd * c.idd3n * n * tck,
        "pre_stb_cycle": c.vdd * c.idd2n * n * tck,
    }
