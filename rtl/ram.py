"""Which of the gateware's memories go to LUT RAM: every one but the lane weight memories, when small.

The lane weight memories (:mod:`rtl.mac_lane`) hold the weights, the bulk of the parameters, and are
laid out for block RAM.  Every other memory (bias, auxiliary, h, unit state, initial state, the z and
``r*h`` operands, the input buffer, a head's, a network's sequence buffers) holds a few hundred words;
left to the synthesis tool's cost model each of them takes a whole block RAM (an ECP5 DP16KD stores
18,432 bits), so the default LSTM's 100-word memories cost as many block RAMs as 16 lanes' weights
would in five.  A memory of at most :data:`LUT_RAM_MAX_BITS` bits is marked
``ram_style = "distributed"``, which Yosys's ``memory_libmap`` and Vivado both read, and goes to LUT
RAM (ECP5 ``TRELLIS_DPR16X4``, 64 bits each, plus a read multiplexer); a larger one is left to the
tool.  The bound is a clock trade: a LUT RAM of many ``TRELLIS_DPR16X4`` spreads its read address and
multiplexer over the fabric.  Measured on the default LSTM (ECP5, seed 1): with every memory up to
8,192 bits in LUT RAM, 49 block RAMs and 107.3 MHz (the h memory's read address fanned out to 50
LUT RAMs critical); up to 2,048 bits (unit state, h0, c0, input buffer), 52 block RAMs and 121.3 MHz;
none, 56 block RAMs and 117.8 MHz.  After the clock work of commit ca870d4: up to 2,048 bits, 52
block RAMs and 128.95 MHz; up to 4,096 bits (the h memory too), 50 block RAMs and 105.8 MHz (the
input buffer's read address -> the h memory's LUT RAM address -> its read multiplexer -> z's
register).
"""
from __future__ import annotations

from amaranth import Shape
from amaranth.lib import memory

__all__ = ["LUT_RAM_MAX_BITS", "small_memory"]

#: The largest memory, in bits, that goes to LUT RAM: a ninth of a DP16KD (see the module docstring).
LUT_RAM_MAX_BITS = 2048


def small_memory(*, shape, depth: int, init=(), collisions: bool = True) -> memory.Memory:
    """A :class:`amaranth.lib.memory.Memory` of ``depth`` words of ``shape``, in LUT RAM when it holds
    at most :data:`LUT_RAM_MAX_BITS` bits.

    ``collisions=False`` states that no read ever addresses the word a write port writes in the same
    cycle (the memory is written only while nothing reads it, or the schedule keeps them apart).
    The memory is then marked ``no_rw_check``: Yosys adds no logic after a block RAM to decide what
    such a read sees (a read port and a write port of an ECP5 DP16KD do not define it), so its read
    data can go straight into a register, which :mod:`rtl.outreg` makes the block RAM's own.
    """
    bits = Shape.cast(shape).width * depth
    attrs = {"ram_style": "distributed"} if bits <= LUT_RAM_MAX_BITS else {}
    if not collisions:
        attrs["no_rw_check"] = 1
    return memory.Memory(shape=shape, depth=depth, init=list(init), attrs=attrs or None)
