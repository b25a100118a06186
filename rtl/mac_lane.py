"""One multiply-accumulate lane: its slice of the weight rows in its own memory, one product per cycle."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from model import latency
from model.config import Config
from model.datapath import Datapath

from .layout import Layout


class MacLane(wiring.Component):
    """Weight memory, registered multiplier and accumulator of one lane.

    Parameters
    ----------
    config : Config
        Widths (``formats.weight``, the datapath's shifts and accumulator width) and memory depth
        (:class:`rtl.layout.Layout`).
    init : list of int
        The lane's weight image (:func:`rtl.layout.memory_images`).

    Ports
    -----
    rd_addr : In(range(lane_depth)), rd_en : In(1)
        Stage 0: the weight to use (the z element for it arrives at stage 2).
    wr_addr, wr_data, wr_en : In
        Run-time write of one weight (``formats.weight`` raw in the low bits of ``wr_data``).
    z : In(signed)
        Stage 2: the operand (an x element or an h element, raw), already registered.
    valid, first, is_x, x_end, last : In(1)
        Stage 3 controls: a product is there; the row's first element (the sum restarts); it is
        an x element (shift ``x_shift``, else ``h_shift``); the row's last x element; its last element.
    hold : Out(signed(acc_width))
        The row's exact sum ``sum(w * z << shift)`` at the accumulator's fraction, registered when
        the row's last element is added and held until the next row's.
    hold_x : Out(signed(acc_width))
        The row's x part alone (for kinds that need it apart), held with ``hold``.

    Latency
    -------
    ``model.latency.LANE`` = 4 cycles from ``rd_en`` of a row's last element to ``hold``:
    memory read (1), operand registers (2), product register (3), accumulate (4).
    """

    #: Register stages from the read to the hold register (checked against ``model.latency.LANE``).
    STAGES = 4

    def __init__(self, config: Config, init: list):
        lay = Layout.for_config(config)
        self._dp = Datapath.from_config(config)
        self._wfmt = config.fmt("weight")
        self._depth = lay.lane_depth
        self._init = init
        zw = max(config.fmt("input").width, config.fmt("hidden").width)
        assert self.STAGES == latency.LANE, "MacLane's stages must equal model.latency.LANE"
        super().__init__({
            "rd_addr": In(range(max(self._depth, 2))), "rd_en": In(1),
            "wr_addr": In(lay.offset_bits), "wr_data": In(signed(lay.data_bits)), "wr_en": In(1),
            "z": In(signed(zw)),
            "valid": In(1), "first": In(1), "is_x": In(1), "x_end": In(1), "last": In(1),
            "hold": Out(signed(self._dp.acc_width)), "hold_x": Out(signed(self._dp.acc_width)),
        })

    def elaborate(self, platform):
        m = Module()
        dp = self._dp
        m.submodules.wmem = wm = memory.Memory(shape=signed(self._wfmt.width), depth=self._depth, init=self._init)
        rp, wp = wm.read_port(), wm.write_port()
        m.d.comb += [rp.addr.eq(self.rd_addr), rp.en.eq(self.rd_en),
                     wp.addr.eq(self.wr_addr), wp.data.eq(self.wr_data), wp.en.eq(self.wr_en)]
        w2 = Signal(signed(self._wfmt.width), name="w2")
        prod = Signal(signed(self._wfmt.width + len(self.z)), name="prod3")
        acc = Signal(signed(dp.acc_width), name="acc")
        xpart = Signal(signed(dp.acc_width), name="xpart")
        m.d.sync += [w2.eq(rp.data), prod.eq(w2 * self.z)]
        nxt = Mux(self.first, 0, acc) + Mux(self.is_x, prod << dp.x_shift, prod << dp.h_shift)
        with m.If(self.valid):
            m.d.sync += acc.eq(nxt)
        with m.If(self.valid & self.x_end):
            m.d.sync += xpart.eq(nxt)
        with m.If(self.valid & self.last):
            m.d.sync += [self.hold.eq(nxt), self.hold_x.eq(xpart)]
        return m
