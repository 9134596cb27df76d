"""Systolic-array configuration: the array, its three SRAMs and the DRAM interface, read from SCALE-Sim v2 ``.cfg``.

A SCALE-Sim v2 config is an INI file::

    [general]
    run_name = scale_example_run_32x32_os
    [architecture_presets]
    ArrayHeight: 32            ArrayWidth: 32
    IfmapSramSzkB: 64          FilterSramSzkB: 64        OfmapSramSzkB: 64
    IfmapOffset: 0             FilterOffset: 10000000    OfmapOffset: 20000000
    Dataflow : os              Bandwidth : 10
    [run_presets]
    InterfaceBandwidth: CALC   (or USER: then Bandwidth, words/cycle, is the DRAM interface width)

SCALE-Sim 3.0.0's ``.cfg`` adds, with no fallback in 3.0.0 itself::

    [architecture_presets]  ReadRequestBuffer: 32   WriteRequestBuffer: 32   (Ramulator request queues)
    [layout]                IfmapCustomLayout: False   IfmapSRAMBankBandwidth: 10   IfmapSRAMBankNum: 1
                            IfmapSRAMBankPort: 2   (and the same four Filter* keys)
    [sparsity]              SparsitySupport: true   SparseRep: csr|csc|ellpack_block   OptimizedMapping: false
                            RandomNumberGeneratorSeed: 40   (BlockSize with OptimizedMapping)
    [run_presets]           UseRamulatorTrace: False

A file with any of these is read as a 3.0.0 config (``scalesim_version=3``), else as 2.0.2; ``read_config(...,
scalesim_version=2|3)`` forces one (3 on a 2.0.2 file: no sparsity, bank bandwidths = ``Bandwidth``). In 3.0.0's
USER mode the ifmap and filter buffers read DRAM at ``IfmapSRAMBankBandwidth`` / ``FilterSRAMBankBandwidth``
words per cycle and only the ofmap writes at ``Bandwidth``; 3.0.0 asserts that the bank count divides that
bandwidth (so do we, as an error). Custom layouts, Ramulator traces and ``OptimizedMapping`` are refused with
an error (not simulated).

Keys are case-insensitive (configparser's rule, which SCALE-Sim relies on). SRAM sizes are KiB of
one-byte words (SCALE-Sim's ``word_size = 1``). Unlike SCALE-Sim, which prints a warning and carries on,
every problem raises :class:`ConfigError` naming the file, the line and the field.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from neurosim.errors import NeurosimError

DATAFLOWS = ("os", "ws", "is")
SCALESIM_VERSIONS = (2, 3)
SPARSE_REPS = ("csr", "csc", "ellpack_block")
INT_MAX = 2 ** 31 - 1  # every size, count and offset of a config or topology fits a 32-bit index
BANDWIDTH_MODES = ("CALC", "USER")


class ConfigError(NeurosimError):
    """A malformed or inconsistent config or topology file: ``path:line: field: what is wrong``."""

    def __init__(self, path, line, field, message):
        self.path, self.line, self.field = str(path), line, field
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


@dataclass(frozen=True)
class SystolicConfig:
    """One accelerator: an ``array_rows x array_cols`` PE array, dataflow, SRAMs (KiB) and DRAM interface.

    ``bandwidth_mode`` is ``"CALC"`` (SCALE-Sim's estimate mode: reads never stall, the DRAM bandwidth
    needed is reported) or ``"USER"`` (a DRAM interface of ``bandwidth_words`` words per cycle feeds
    double-buffered scratchpads; the array stalls when a prefetch is late). ``os_timing="paper"`` adds
    the ``R`` output-drain cycles per output-stationary fold that the SCALE-Sim paper's formula
    ``2R + C + T - 2`` counts and its code does not (default ``"scalesim"``: ``R + C + T - 2``).
    """

    run_name: str = "neurosim_systolic"
    array_rows: int = 32
    array_cols: int = 32
    ifmap_sram_kib: int = 64
    filter_sram_kib: int = 64
    ofmap_sram_kib: int = 64
    ifmap_offset: int = 0
    filter_offset: int = 10_000_000
    ofmap_offset: int = 20_000_000
    dataflow: str = "os"
    bandwidth_mode: str = "CALC"
    bandwidth_words: int | None = None
    os_timing: str = "scalesim"
    #: which SCALE-Sim's reports and stall accounting to reproduce: 2 (2.0.2) or 3 (3.0.0)
    scalesim_version: int = 2
    # SCALE-Sim 3.0.0 [layout]: per-buffer DRAM read words/cycle in USER mode (None: ``bandwidth_words``)
    ifmap_bank_bw: int | None = None
    filter_bank_bw: int | None = None
    ifmap_banks: int = 1
    filter_banks: int = 1
    ifmap_bank_ports: int = 2
    filter_bank_ports: int = 2
    read_request_buffer: int = 60   # 3.0.0's Ramulator request queues (read and checked; no effect without Ramulator)
    write_request_buffer: int = 60
    # SCALE-Sim 3.0.0 [sparsity]: N:M weight sparsity from the topology's Sparsity column
    sparsity: bool = False
    sparse_rep: str = "csr"

    def __post_init__(self):
        for f in ("array_rows", "array_cols", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1 or v > INT_MAX:
                raise NeurosimError(f"{f} must be a positive integer up to {INT_MAX:,}, got {v!r}")
        for f in ("ifmap_offset", "filter_offset", "ofmap_offset"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > INT_MAX:
                raise NeurosimError(f"{f} must be a non-negative integer up to {INT_MAX:,}, got {v!r}")
        if self.dataflow not in DATAFLOWS:
            raise NeurosimError(f"unknown dataflow {self.dataflow!r}; valid: {', '.join(DATAFLOWS)}")
        if self.bandwidth_mode not in BANDWIDTH_MODES:
            raise NeurosimError(f"bandwidth_mode must be CALC or USER, got {self.bandwidth_mode!r}")
        if self.bandwidth_mode == "USER":
            bw = self.bandwidth_words
            if not isinstance(bw, int) or isinstance(bw, bool) or bw < 1 or bw > INT_MAX:
                raise NeurosimError(f"USER bandwidth mode needs bandwidth_words, a positive integer, got {bw!r}")
        if self.scalesim_version not in SCALESIM_VERSIONS:
            raise NeurosimError(f"scalesim_version must be 2 or 3, got {self.scalesim_version!r}")
        for f in ("ifmap_banks", "filter_banks", "ifmap_bank_ports", "filter_bank_ports", "read_request_buffer",
                  "write_request_buffer", "ifmap_bank_bw", "filter_bank_bw"):
            v = getattr(self, f)
            if v is None and f.endswith("_bw"):
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1 or v > INT_MAX:
                raise NeurosimError(f"{f} must be a positive integer up to {INT_MAX:,}, got {v!r}")
        if self.scalesim_version == 3 and self.user_bandwidth:
            for what, bw, banks in (("ifmap", self.read_bw(0), self.ifmap_banks),
                                    ("filter", self.read_bw(1), self.filter_banks)):
                if bw % banks:  # SCALE-Sim 3.0.0's read_buffer asserts this
                    raise NeurosimError(f"{what} SRAM: {banks} banks do not divide its bandwidth of {bw} words/cycle "
                                        f"(SCALE-Sim 3.0.0 needs {what.capitalize()}SRAMBankBandwidth to be a "
                                        f"multiple of {what.capitalize()}SRAMBankNum)")
        if self.sparse_rep not in SPARSE_REPS:
            raise NeurosimError(f"sparse_rep must be one of {', '.join(SPARSE_REPS)}, got {self.sparse_rep!r}")
        if not isinstance(self.sparsity, bool):
            raise NeurosimError(f"sparsity must be True or False, got {self.sparsity!r}")
        if self.sparsity and self.scalesim_version != 3:
            raise NeurosimError("N:M sparsity is SCALE-Sim 3.0.0's: it needs scalesim_version=3")
        if self.sparsity and self.filter_offset == 0:  # 3.0.0 takes the weight at address 0 for a pruned one
            raise NeurosimError("N:M sparsity needs FilterOffset above 0 (SCALE-Sim 3.0.0 mistakes the filter word "
                                "at address 0 for a pruned weight; that is not reproduced)")
        if self.os_timing not in ("scalesim", "paper"):
            raise NeurosimError(f"os_timing must be 'scalesim' or 'paper', got {self.os_timing!r}")
        if not self.run_name or "/" in self.run_name or os.sep in self.run_name or self.run_name in (".", "..") \
                or "\x00" in self.run_name:
            raise NeurosimError(f"run_name must be a folder name (no path separators, not . or ..), got {self.run_name!r}")

    @property
    def user_bandwidth(self) -> bool:
        return self.bandwidth_mode == "USER"

    def read_bw(self, op: int) -> int:
        """DRAM read words per cycle of the ifmap (``op`` 0) or filter (1) buffer: CALC mode's 10, 2.0.2's
        ``Bandwidth``, 3.0.0's ``[layout]`` bank bandwidth (``Bandwidth`` where not given)."""
        if not self.user_bandwidth:
            return 10  # SCALE-Sim's CALC mode: 10 words/cycle ("arbitrary")
        if self.scalesim_version == 3:
            bw = self.ifmap_bank_bw if op == 0 else self.filter_bank_bw
            if bw is not None:
                return bw
        return self.bandwidth_words

    def with_(self, **changes) -> "SystolicConfig":
        return replace(self, **changes)


# ---- the .cfg reader ------------------------------------------------------------------------------------

_FIELDS = {  # (section, key) -> (attribute, kind)
    ("general", "run_name"): ("run_name", "str"),
    ("architecture_presets", "arrayheight"): ("array_rows", "pos"),
    ("architecture_presets", "arraywidth"): ("array_cols", "pos"),
    ("architecture_presets", "ifmapsramszkb"): ("ifmap_sram_kib", "pos"),
    ("architecture_presets", "filtersramszkb"): ("filter_sram_kib", "pos"),
    ("architecture_presets", "ofmapsramszkb"): ("ofmap_sram_kib", "pos"),
    ("architecture_presets", "ifmapoffset"): ("ifmap_offset", "nonneg"),
    ("architecture_presets", "filteroffset"): ("filter_offset", "nonneg"),
    ("architecture_presets", "ofmapoffset"): ("ofmap_offset", "nonneg"),
    ("architecture_presets", "dataflow"): ("dataflow", "dataflow"),
    ("run_presets", "interfacebandwidth"): ("bandwidth_mode", "mode"),
}
_SPELLING = {"run_name": "run_name", "arrayheight": "ArrayHeight", "arraywidth": "ArrayWidth",
             "ifmapsramszkb": "IfmapSramSzkB", "filtersramszkb": "FilterSramSzkB", "ofmapsramszkb": "OfmapSramSzkB",
             "ifmapoffset": "IfmapOffset", "filteroffset": "FilterOffset", "ofmapoffset": "OfmapOffset",
             "dataflow": "Dataflow", "interfacebandwidth": "InterfaceBandwidth", "bandwidth": "Bandwidth"}


def _parse_ini(path: Path):
    """INI -> {section: {key_lower: (value, line)}}, {section: header_line}; configparser's syntax."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(path, None, None, f"cannot read config: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, None, f"not a text file (byte 0x{e.object[e.start]:02x} at offset {e.start} "
                                            f"is not UTF-8)") from None
    sections: dict[str, dict[str, tuple[str, int]]] = {}
    headers: dict[str, int] = {}
    current = None
    lines = text.splitlines()
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(path, n, None, f"malformed section header {line!r}")
            current = line[1:-1].strip()
            if current in sections:
                raise ConfigError(path, n, None, f"section [{current}] appears twice")
            sections[current] = {}
            headers[current] = n
            continue
        cut = [i for i in (line.find("="), line.find(":")) if i >= 0]
        if not cut:
            raise ConfigError(path, n, None, f"expected 'key = value' or 'key: value', got {line!r}")
        if current is None:
            raise ConfigError(path, n, None, "key before any [section] header")
        key, value = line[:min(cut)].strip().lower(), line[min(cut) + 1:].strip()
        if key in sections[current]:
            raise ConfigError(path, n, _SPELLING.get(key, key), f"appears twice in [{current}]")
        sections[current][key] = (value, n)
    return sections, headers, len(lines)


def _int(path, line, field, value, minimum, maximum=INT_MAX):
    try:
        v = int(value)
    except ValueError:
        raise ConfigError(path, line, field, f"{value[:40]!r} is not an integer") from None
    if v < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ConfigError(path, line, field, f"must be a {what} integer, got {v}")
    if v > maximum:
        raise ConfigError(path, line, field, f"{value[:40]} is too large (at most {maximum:,})")
    return v


_V3_KEYS = {"readrequestbuffer": "ReadRequestBuffer", "writerequestbuffer": "WriteRequestBuffer",
            "useramulatortrace": "UseRamulatorTrace", "ifmapcustomlayout": "IfmapCustomLayout",
            "filtercustomlayout": "FilterCustomLayout", "ifmapsrambankbandwidth": "IfmapSRAMBankBandwidth",
            "filtersrambankbandwidth": "FilterSRAMBankBandwidth", "ifmapsrambanknum": "IfmapSRAMBankNum",
            "filtersrambanknum": "FilterSRAMBankNum", "ifmapsrambankport": "IfmapSRAMBankPort",
            "filtersrambankport": "FilterSRAMBankPort", "sparsitysupport": "SparsitySupport",
            "sparserep": "SparseRep", "optimizedmapping": "OptimizedMapping", "blocksize": "BlockSize",
            "randomnumbergeneratorseed": "RandomNumberGeneratorSeed"}
_TRUE, _FALSE = ("1", "yes", "true", "on"), ("0", "no", "false", "off")  # configparser's getboolean


def detect_version(sections) -> int:
    """3 when the parsed file has anything only SCALE-Sim 3.0.0 reads, else 2."""
    if "layout" in sections or "sparsity" in sections:
        return 3
    for sec in ("architecture_presets", "run_presets"):
        if any(k in sections.get(sec, {}) for k in ("readrequestbuffer", "writerequestbuffer", "useramulatortrace")):
            return 3
    return 2


def _v3_fields(path, sections, headers, values) -> dict:
    """The 3.0.0-only keys of a config, checked; absent ones keep 3.0.0's defaults (``Bandwidth`` for banks)."""
    out = {}

    def get(sec, key):
        return sections.get(sec, {}).get(key)

    def boolean(sec, key):
        v = get(sec, key)
        if v is None:
            return False
        if v[0].lower() in _TRUE:
            return True
        if v[0].lower() in _FALSE:
            return False
        raise ConfigError(path, v[1], _V3_KEYS[key], f"must be True or False, got {v[0][:40]!r}")

    for key, attr in (("readrequestbuffer", "read_request_buffer"), ("writerequestbuffer", "write_request_buffer")):
        v = get("architecture_presets", key)
        if v is not None:
            out[attr] = _int(path, v[1], _V3_KEYS[key], v[0], 1)
    ram = get("run_presets", "useramulatortrace")
    if ram is not None and boolean("run_presets", "useramulatortrace"):
        raise ConfigError(path, ram[1], "UseRamulatorTrace", "True needs Ramulator latency files (SCALE-Sim 3.0.0's "
                                                            "four-script flow), not supported here: set it False")
    for op in ("ifmap", "filter"):
        if boolean("layout", f"{op}customlayout"):
            raise ConfigError(path, get("layout", f"{op}customlayout")[1], _V3_KEYS[f"{op}customlayout"],
                              "custom memory layouts (SCALE-Sim 3.0.0's -l layout file) are not supported: set False")
        for key, attr in ((f"{op}srambankbandwidth", f"{op}_bank_bw"), (f"{op}srambanknum", f"{op}_banks"),
                          (f"{op}srambankport", f"{op}_bank_ports")):
            v = get("layout", key)
            if v is not None:
                out[attr] = _int(path, v[1], _V3_KEYS[key], v[0], 1)
        if values["bandwidth_mode"] == "USER":
            bw = out.get(f"{op}_bank_bw", values.get("bandwidth_words"))
            banks = out.get(f"{op}_banks", 1)
            if bw % banks:
                v = get("layout", f"{op}srambanknum")
                raise ConfigError(path, v[1] if v else headers.get("layout"), _V3_KEYS[f"{op}srambanknum"],
                                  f"{banks} banks do not divide the {op} bandwidth of {bw} words/cycle (SCALE-Sim "
                                  f"3.0.0 asserts that they do)")
    if boolean("sparsity", "sparsitysupport"):
        out["sparsity"] = True
        rep = get("sparsity", "sparserep")
        if rep is None:
            raise ConfigError(path, headers["sparsity"], "SparseRep", "missing from [sparsity] (SparsitySupport is "
                                                                      "true): csr, csc or ellpack_block")
        if rep[0] not in SPARSE_REPS:
            raise ConfigError(path, rep[1], "SparseRep", f"must be csr, csc or ellpack_block, got {rep[0][:40]!r}")
        out["sparse_rep"] = rep[0]
        if boolean("sparsity", "optimizedmapping"):
            raise ConfigError(path, get("sparsity", "optimizedmapping")[1], "OptimizedMapping",
                              "SCALE-Sim 3.0.0's optimized sparse mapping (random per-column N:BlockSize) is not "
                              "supported: set false")
        seed = get("sparsity", "randomnumbergeneratorseed")
        if seed is not None:
            _int(path, seed[1], "RandomNumberGeneratorSeed", seed[0], 0)
    return out


def read_config(path: str | os.PathLike, scalesim_version: int | None = None, **overrides) -> SystolicConfig:
    """Read a SCALE-Sim ``.cfg`` (2.0.2 or 3.0.0) into a :class:`SystolicConfig`; ``overrides`` replace
    fields afterwards. ``scalesim_version`` (2 or 3) overrides the version the file's contents imply.

    ``MemoryBanks`` and ``[network_presets] TopologyCsvLoc`` are accepted and ignored (the topology comes
    from the command line, as with SCALE-Sim's ``-t``).
    """
    if scalesim_version is not None and scalesim_version not in SCALESIM_VERSIONS:
        raise NeurosimError(f"scalesim_version must be 2 or 3, got {scalesim_version!r}")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, None, "config file not found")
    sections, headers, nlines = _parse_ini(path)
    values = {}
    for (sec, key), (attr, kind) in _FIELDS.items():
        name = _SPELLING[key]
        if sec not in sections:
            raise ConfigError(path, nlines, name, f"missing: the file has no [{sec}] section")
        if key not in sections[sec]:
            raise ConfigError(path, headers[sec], name, f"missing from [{sec}]")
        value, line = sections[sec][key]
        if kind == "str":
            if not value or "/" in value:
                raise ConfigError(path, line, name, f"must be a non-empty name without '/', got {value!r}")
            values[attr] = value
        elif kind == "pos":
            values[attr] = _int(path, line, name, value, 1)
        elif kind == "nonneg":
            values[attr] = _int(path, line, name, value, 0)
        elif kind == "dataflow":
            if value not in DATAFLOWS:
                raise ConfigError(path, line, name, f"unknown dataflow {value!r}; valid: os, ws, is")
            values[attr] = value
        elif kind == "mode":
            if value not in BANDWIDTH_MODES:
                raise ConfigError(path, line, name, f"must be CALC or USER, got {value!r}")
            values[attr] = value
    bw = sections["architecture_presets"].get("bandwidth")
    if values["bandwidth_mode"] == "USER":
        if bw is None or not bw[0]:
            line = bw[1] if bw else headers["architecture_presets"]
            raise ConfigError(path, line, "Bandwidth", "InterfaceBandwidth is USER but [architecture_presets] has no Bandwidth")
        # SCALE-Sim accepts a comma-separated list and uses its first entry for all three interfaces.
        first = None
        for item in bw[0].split(","):
            v = _int(path, bw[1], "Bandwidth", item.strip(), 1)
            first = v if first is None else first
        values["bandwidth_words"] = first
    elif bw is not None and bw[0]:
        for item in bw[0].split(","):
            _int(path, bw[1], "Bandwidth", item.strip(), 1)
        values["bandwidth_words"] = int(bw[0].split(",")[0])
    version = scalesim_version or detect_version(sections)
    values["scalesim_version"] = version
    if version == 3:
        values.update(_v3_fields(path, sections, headers, values))
    try:
        return SystolicConfig(**values).with_(**overrides) if overrides else SystolicConfig(**values)
    except NeurosimError as e:
        raise ConfigError(path, None, None, str(e)) from None
