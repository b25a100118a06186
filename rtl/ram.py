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
multiplexer over the fabric, so a LUT RAM's read address should come straight from a register.
Measured on the default LSTM (ECP5, seed 1): with every memory up to 8,192 bits in LUT RAM, 49 block
RAMs and 107.3 MHz (the h memory's read address fanned out to 50 LUT RAMs critical); up to 2,048 bits,
52 block RAMs and 121.3 MHz, 128.95 MHz after the clock work of commit ca870d4, where up to 4,096
bits gave 50 block RAMs and 105.8 MHz (the h memory's read address was an adder's output).  With the
h memory's addresses registers or wires (:mod:`rtl.cell`) and the output FIFO's storage marked
(:class:`SmallFIFO`), up to 4,096 bits: 49 block RAMs (1.249x the weight bits) and 125.69 MHz.
"""
from __future__ import annotations

from amaranth import Shape
from amaranth.lib import fifo, memory

__all__ = ["LUT_RAM_MAX_BITS", "SmallFIFO", "small_memory"]

#: The largest memory, in bits, that goes to LUT RAM: two ninths of a DP16KD (see the module docstring).
LUT_RAM_MAX_BITS = 4096


def small_memory(*, shape, depth: int, init=(), collisions: bool = True) -> memory.Memory:
    """A :class:`amaranth.lib.memory.Memory` of ``depth`` words of ``shape``, in LUT RAM when it holds
    at most :data:`LUT_RAM_MAX_BITS` bits.

    ``collisions=False`` states that no read ever addresses the word a write port writes in the same
    cycle (the memory is written only while nothing reads it, or the schedule keeps them apart).
    The memory is then marked ``no_rw_check``: Yosys adds no logic after a block RAM to decide what
    such a read sees (a read port and a write port of an ECP5 DP16KD do not define it), so its read
    data can go straight into a register, which :mod:`rtl.outreg` makes the block RAM's own.
    """
    return memory.Memory(shape=shape, depth=depth, init=list(init),
                         attrs=_attrs(Shape.cast(shape).width * depth, collisions) or None)


class SmallFIFO(fifo.SyncFIFOBuffered):
    """:class:`amaranth.lib.fifo.SyncFIFOBuffered` (same ports, same behaviour) whose storage is marked
    as :func:`small_memory` marks a memory of its size: in LUT RAM when its ``depth - 1`` words (the
    last one waits in the output register) hold at most :data:`LUT_RAM_MAX_BITS` bits.  No read meets
    a write of its word: a word is read only once its write is done, and the write address comes round
    to the read address only after that word is read."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth > 1:
            m.submodules.storage.attrs.update(_attrs((self.depth - 1) * self.width, collisions=False))
        return m


def _attrs(bits: int, collisions: bool) -> dict:
    attrs = {"ram_style": "distributed"} if bits <= LUT_RAM_MAX_BITS else {}
    if not collisions:
        attrs["no_rw_check"] = 1
    return attrs
