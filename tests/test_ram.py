"""Where the gateware's memories go (rtl.ram): LUT RAM up to 4,096 bits, the tool's choice above."""
from pathlib import Path

from amaranth.back import verilog

from model.config import Config
from rtl.cell import RecurrentCell
from rtl.export import component_verilog
from rtl.ram import LUT_RAM_MAX_BITS, SmallFIFO, small_memory

ROOT = Path(__file__).resolve().parent.parent


def test_the_boundary_by_hand():
    """256 words of 16 bits = 4,096 bits: LUT RAM; 257 words, or 256 of 17 bits, are left to the tool."""
    assert LUT_RAM_MAX_BITS == 4096
    assert small_memory(shape=16, depth=256).attrs == {"ram_style": "distributed"}
    assert not small_memory(shape=16, depth=257).attrs
    assert not small_memory(shape=17, depth=256).attrs


def _fifo_verilog(width, depth):
    f = SmallFIFO(width=width, depth=depth)
    return verilog.convert(f, ports=[f.w_data, f.w_en, f.w_rdy, f.r_data, f.r_en, f.r_rdy], name="f")


def test_a_small_fifo_storage_is_marked_by_its_size():
    """A SmallFIFO of depth 257 stores 256 words (the 257th waits in its output register): 4,096 bits of
    16-bit words go to LUT RAM, 256 words of 17 bits are left to the tool; no read meets a write in
    either."""
    small, large = _fifo_verilog(16, 257), _fifo_verilog(17, 257)
    marks = '(* no_rw_check = 32\'d1 *)\n  (* ram_style = "distributed" *)'
    assert marks in small and "reg [15:0] storage [255:0];" in small
    assert "ram_style" not in large and "no_rw_check" in large and "reg [16:0] storage [255:0];" in large


def test_the_small_memories_are_marked_and_the_lanes_are_not():
    """configs/fsdd_lstm32.toml: bias 128 x 16 bits, h 2 x 32 words, unit state, h0 and c0 32 words each,
    the input buffer and the output FIFO's storage are marked; a lane's weights (16 rows x 45 of 8 bits,
    5,760 bits) are not: the lane memories are never marked, whatever their size."""
    cfg = Config.load(ROOT / "configs" / "fsdd_lstm32.toml")
    text = component_verilog(RecurrentCell(cfg), "lstm_cell")
    marked = text.count('(* ram_style = "distributed" *)')
    assert marked == 7
    lane = text.split("module \\lstm_cell.lane0 ", 1)[1].split("endmodule", 1)[0]
    assert "reg [" in lane and "ram_style" not in lane
