"""Where the gateware's memories go (rtl.ram): LUT RAM up to 2,048 bits, the tool's choice above."""
from pathlib import Path

from model.config import Config
from rtl.cell import RecurrentCell
from rtl.export import component_verilog
from rtl.ram import LUT_RAM_MAX_BITS, small_memory

ROOT = Path(__file__).resolve().parent.parent


def test_the_boundary_by_hand():
    """128 words of 16 bits = 2,048 bits: LUT RAM; 129 words, or 128 of 17 bits, are left to the tool."""
    assert LUT_RAM_MAX_BITS == 2048
    assert small_memory(shape=16, depth=128).attrs == {"ram_style": "distributed"}
    assert not small_memory(shape=16, depth=129).attrs
    assert not small_memory(shape=17, depth=128).attrs


def test_the_small_memories_are_marked_and_the_lanes_are_not():
    """configs/fsdd_lstm32.toml: bias 128 x 16 bits, h 2 x 32 words, unit state, h0 and c0 32 words each
    and the input buffer are marked; a lane's weights (16 rows x 45 of 8 bits, 5,760 bits) are not: the
    lane memories are never marked, whatever their size."""
    cfg = Config.load(ROOT / "configs" / "fsdd_lstm32.toml")
    text = component_verilog(RecurrentCell(cfg), "lstm_cell")
    marked = text.count('(* ram_style = "distributed" *)')
    assert marked == 6
    lane = text.split("module \\lstm_cell.lane0 ", 1)[1].split("endmodule", 1)[0]
    assert "reg [" in lane and "ram_style" not in lane
