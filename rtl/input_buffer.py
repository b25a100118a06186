"""The cell's input side: the ``i`` stream into a double-buffered x(t) memory, framing checked."""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.config import Config

from . import streams
from .ram import small_memory


class InputBuffer(wiring.Component):
    """Two banks of one x(t) vector each: one fills from ``i`` while the other is read.

    Parameters
    ----------
    config : Config
        ``input_size`` elements per vector, each in ``formats.input``.

    Ports
    -----
    i : In(stream of :func:`rtl.streams.input_word`)
        One element per transfer; ``ready`` is low while both banks are full.
    rd_addr : In(range(input_size)), rd_en : In(1)
        Element of the read bank to read.
    rd_data : Out(signed(formats.input.width))
        That element, the cycle after ``rd_en`` (a synchronous memory read).
    full : Out(1)
        The read bank holds a complete vector.
    sos : Out(1)
        That vector came with ``first``: it starts a sequence.
    seq : Out(range(interleave))
        The sequence that vector belongs to (its elements' ``seq``; 0 without interleave).
    release : In(1)
        The read bank's vector is used up: the bank is freed and reading moves to the other one.
    err_framing : Out(1)
        A pulse on a transfer whose ``last`` is not on element ``input_size - 1``, whose
        ``first`` is not on element 0, or whose ``seq`` differs from element 0's (the vector
        belongs to element 0's sequence).

    Latency
    -------
    ``full`` rises the cycle after the last element's handshake (``model.latency.INPUT``).
    """

    def __init__(self, config: Config):
        self._cfg = config
        I = config.input_size
        super().__init__({
            "i": In(stream.Signature(streams.input_word(config).layout())),
            "rd_addr": In(range(max(I, 2))),
            "rd_en": In(1),
            "rd_data": Out(signed(config.fmt("input").width)),
            "full": Out(1),
            "sos": Out(1),
            "seq": Out(range(max(config.interleave, 2))),
            "release": In(1),
            "err_framing": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        I = self._cfg.input_size
        m.submodules.xmem = xmem = small_memory(shape=signed(self._cfg.fmt("input").width), depth=2 * I, init=[])
        xw, xr = xmem.write_port(), xmem.read_port()
        bank_full = Array(Signal(name=f"x_full{b}") for b in range(2))
        bank_sos = Array(Signal(name=f"x_sos{b}") for b in range(2))
        bank_seq = Array(Signal.like(self.seq, name=f"x_seq{b}") for b in range(2))
        wb, rb, wi, cur_first = Signal(), Signal(), Signal(range(max(I, 2))), Signal()
        cur_seq = Signal.like(self.seq)
        m.d.comb += [self.i.ready.eq(~bank_full[wb]), self.full.eq(bank_full[rb]), self.sos.eq(bank_sos[rb]),
                     self.seq.eq(bank_seq[rb]),
                     xr.addr.eq(rb * I + self.rd_addr), xr.en.eq(self.rd_en), self.rd_data.eq(xr.data)]
        pl = self.i.payload
        pl_seq = pl.seq if self._cfg.interleave > 1 else 0
        with m.If(self.i.valid & self.i.ready):
            m.d.comb += [xw.addr.eq(wb * I + wi), xw.data.eq(pl.data), xw.en.eq(1)]
            first = Mux(wi == 0, pl.first, cur_first)
            seq = Mux(wi == 0, pl_seq, cur_seq)
            with m.If(wi == 0):
                m.d.sync += [cur_first.eq(pl.first), cur_seq.eq(pl_seq)]
            with m.Elif(pl.first):
                m.d.comb += self.err_framing.eq(1)
            with m.If((wi != 0) & (pl_seq != cur_seq)):
                m.d.comb += self.err_framing.eq(1)
            with m.If(wi == I - 1):
                m.d.sync += [bank_full[wb].eq(1), bank_sos[wb].eq(first), bank_seq[wb].eq(seq), wb.eq(~wb),
                             wi.eq(0)]
                with m.If(~pl.last):
                    m.d.comb += self.err_framing.eq(1)
            with m.Else():
                m.d.sync += wi.eq(wi + 1)
                with m.If(pl.last):
                    m.d.comb += self.err_framing.eq(1)
        with m.If(self.release):
            m.d.sync += [bank_full[rb].eq(0), rb.eq(~rb)]
        return m
