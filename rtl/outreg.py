"""ECP5 output registers: the register after a block RAM's read data or a multiplier's product moved into it.

Yosys maps a memory's synchronous read onto a DP16KD without its output register (``REGMODE``
``NOREG``): the word leaves the block RAM 5.8 ns after the clock edge (prjtrellis' timing database),
most of an 8 ns cycle, before any routing.  With the output register (``OUTREG``) the same word
leaves it 0.95 ns after the edge, one cycle later: exactly what a fabric register on the read data
does.  In the same way Yosys maps a multiplier onto a MULT18X18D with no register of its own, so a
registered product is the multiplier's delay, the route out of the DSP block and the fabric
register's setup in one cycle; the block's output register (``REG_OUTPUT_CLK``) ends the path inside
it.  Yosys's mapping takes neither register into the block (YosysHQ/yosys#5814), so :func:`absorb`
does, on the netlist ``synth_ecp5`` writes, before nextpnr places it.

A register is taken in only when the block's output is used the way the fabric register would be,
nothing more, and never from a DP16KD in its 36-bit mode (a word leaves on both ports' outputs).
Each output bit that is used drives exactly one ``TRELLIS_FF`` (its ``DI``, nothing else, not a
module port), clocked by one clock on the rising edge, always enabled, never reset
(``LSR`` tied low), global set/reset disabled, starting at 0 (``REGSET`` ``RESET``), as the block's
register does.  A DP16KD port also needs its clock to be that clock (not inverted), its reset tied
low and its output clock enable tied high; a MULT18X18D needs to use none of its registers yet (no
clock, clock enable or reset connected).  Those flip-flops are removed and their outputs driven by
the block: the port's ``REGMODE`` becomes ``OUTREG``; the multiplier's ``REG_OUTPUT_CLK`` becomes
``CLK0``, with ``CLK0`` the flip-flops' clock, ``CE0`` tied high and ``RST0`` tied low.  A block
where any used bit fails a condition is left as it is, so the rewrite never changes what the
netlist computes, cycle for cycle.

The gateware asks for it by registering a block RAM's read data or a product in a register of its
own, without a reset or an enable (:class:`rtl.mac_lane.MacLane`'s ``rd3`` and ``prod5``).
:mod:`rtl.synth` runs it on every ECP5 netlist and reports what it took in (``outreg`` in
``synth.json``; the flip-flop count is net of the registers taken in).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

#: Read data bits per DP16KD port.
DATA_BITS = 18
#: Product bits of a MULT18X18D.
PRODUCT_BITS = 36


def _param(cell: dict, name: str, default: str) -> str:
    return str(cell["parameters"].get(name, default)).strip()


def _tied(cell: dict, pin: str, value: str) -> bool:
    return cell["connections"].get(pin, [value]) == [value]


def _plain_ff(ff: dict, clk: list) -> bool:
    """A rising-edge flip-flop on ``clk``, always enabled, never reset, starting at 0."""
    c = ff["connections"]
    enabled = _param(ff, "CEMUX", "1") == "1" or (_param(ff, "CEMUX", "1") == "CE" and _tied(ff, "CE", "1"))
    never_reset = _tied(ff, "LSR", "0") and _param(ff, "LSRMUX", "LSR") == "LSR"
    return (c.get("CLK") == clk and _param(ff, "CLKMUX", "CLK") == "CLK" and enabled and never_reset
            and _param(ff, "GSR", "DISABLED") == "DISABLED" and _param(ff, "REGSET", "RESET") == "RESET"
            and not ff.get("attributes", {}).get("keep"))


def _registers(cells: dict, bits_of: list, sinks: dict, outputs: set, clk: list | None) -> dict | None:
    """``{output pin: flip-flop name}`` when every used pin of ``bits_of`` (``(pin, bits)``) drives one
    plain flip-flop on ``clk`` (any one clock if None, the same for all), else None."""
    regs = {}
    for pin, bits in bits_of:
        if not bits or not isinstance(bits[0], int) or (bits[0] not in outputs and not sinks[bits[0]]):
            continue  # not used
        users = sinks[bits[0]]
        if bits[0] in outputs or len(users) != 1:
            return None
        name, ff_pin = users[0]
        ff = cells[name]
        if ff["type"] != "TRELLIS_FF" or ff_pin != "DI":
            return None
        clk = clk or ff["connections"].get("CLK")
        if not _plain_ff(ff, clk):
            return None
        regs[pin] = name
    return regs or None


def _wide(bram: dict) -> bool:
    """The block RAM in its 36-bit mode (Yosys writes the width in binary): a word leaves on both
    ports' outputs, so one port's register mode does not describe it."""
    widths = (_param(bram, f"DATA_WIDTH_{side}", "") for side in "AB")
    return any(w and set(w) <= {"0", "1"} and int(w, 2) > DATA_BITS for w in widths)


def _port_registers(cells: dict, bram: dict, side: str, sinks: dict, outputs: set) -> dict | None:
    """The read data registers of port ``side`` of a DP16KD when it can take them in, else None."""
    conn = bram["connections"]
    clk = conn.get(f"CLK{side}")
    if (_param(bram, f"REGMODE_{side}", "NOREG") != "NOREG" or _wide(bram) or not clk or not isinstance(clk[0], int)
            or _param(bram, f"CLK{side}MUX", f"CLK{side}") != f"CLK{side}"
            or not _tied(bram, f"RST{side}", "0") or _param(bram, f"RST{side}MUX", f"RST{side}") != f"RST{side}"
            or not _tied(bram, f"OCE{side}", "1") or _param(bram, f"OCE{side}MUX", f"OCE{side}") != f"OCE{side}"):
        return None
    return _registers(cells, [(f"DO{side}{i}", conn.get(f"DO{side}{i}")) for i in range(DATA_BITS)],
                      sinks, outputs, clk)


def _product_registers(cells: dict, mult: dict, sinks: dict, outputs: set) -> dict | None:
    """The product registers of a MULT18X18D that uses no register of its own, else None."""
    conn, p = mult["connections"], mult["parameters"]
    if any(_param(mult, k, "NONE") != "NONE" for k in p if k.startswith("REG_") and k.endswith("_CLK")):
        return None
    for pin in (f"{s}{i}" for s in ("CLK", "CE", "RST") for i in range(4)):
        if pin in conn and any(isinstance(b, int) for b in conn[pin]):
            return None
    return _registers(cells, [(f"P{i}", conn.get(f"P{i}")) for i in range(PRODUCT_BITS)], sinks, outputs, None)


def absorb(netlist: dict) -> dict:
    """Take the block RAMs' and multipliers' output registers into them (module docstring), in place.

    Returns ``{"ports": DP16KD ports rewritten, "multipliers": MULT18X18Ds rewritten, "flip_flops":
    flip-flops removed, "block_rams": DP16KDs seen, "cells": [block RAM name and port, multiplier name, ...]}``.
    """
    out = {"ports": 0, "multipliers": 0, "flip_flops": 0, "block_rams": 0, "cells": []}
    for mod in netlist.get("modules", {}).values():
        cells = mod.get("cells", {})
        sinks = defaultdict(list)
        for name, c in cells.items():
            for pin, bits in c.get("connections", {}).items():
                if c.get("port_directions", {}).get(pin) != "output":
                    for b in bits:
                        if isinstance(b, int):
                            sinks[b].append((name, pin))
        outputs = {b for p in mod.get("ports", {}).values() if p.get("direction") != "input"
                   for b in p.get("bits", []) if isinstance(b, int)}

        def take(block, regs):
            for pin, ff in regs.items():
                block["connections"][pin] = cells.pop(ff)["connections"]["Q"]
            out["flip_flops"] += len(regs)

        for name in sorted(n for n, c in cells.items() if c["type"] == "DP16KD"):
            bram = cells[name]
            out["block_rams"] += 1
            for side in "AB":
                regs = _port_registers(cells, bram, side, sinks, outputs)
                if regs is not None:
                    take(bram, regs)
                    bram["parameters"][f"REGMODE_{side}"] = "OUTREG"
                    out["ports"] += 1
                    out["cells"].append(f"{name}:{side}")
        for name in sorted(n for n, c in cells.items() if c["type"] == "MULT18X18D"):
            mult = cells[name]
            regs = _product_registers(cells, mult, sinks, outputs)
            if regs is not None:
                clk = cells[next(iter(regs.values()))]["connections"]["CLK"]
                take(mult, regs)
                mult["parameters"].update(REG_OUTPUT_CLK="CLK0", REG_OUTPUT_CE="CE0", REG_OUTPUT_RST="RST0")
                mult["connections"].update(CLK0=clk, CE0=["1"], RST0=["0"])
                mult["port_directions"].update(CLK0="input", CE0="input", RST0="input")
                out["multipliers"] += 1
                out["cells"].append(name)
    return out


def absorb_file(path: Path) -> dict:
    """:func:`absorb` on the JSON netlist at ``path``, rewritten in place; returns its summary."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    result = absorb(netlist)
    if result["flip_flops"]:
        path.write_text(json.dumps(netlist))
    return result

