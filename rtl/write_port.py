"""The write port's address decoder: one ``w`` stream into every memory's write enable."""
from __future__ import annotations

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.config import Config

from . import streams
from .layout import Layout, init_regions


def regions(config: Config) -> list[tuple[int, int]]:
    """``(region, depth)`` of every memory the write port reaches (see :mod:`rtl.layout`)."""
    lay = Layout.for_config(config)
    L = config.lanes
    return ([(lane, lay.lane_offsets) for lane in range(L)] + [(L, config.rows)]
            + ([(L + 1, lay.aux_depth)] if lay.aux else [])
            + [(region, config.hidden_size) for region, _, _ in init_regions(config)])


class WriteDecoder(wiring.Component):
    """Splits a ``w`` word into region and offset and enables the one memory it addresses.

    Parameters
    ----------
    config : Config
        The address map is :class:`rtl.layout.Layout`'s (lane weight memories, bias, auxiliary).

    Ports
    -----
    w : In(stream of :func:`rtl.streams.write_word`, always ready)
        ``addr = region << offset_bits | offset``, ``data`` raw.
    en : Out(len(regions(config)))
        Bit ``k``: the write goes to region ``k`` this cycle.
    offset : Out(offset_bits), data : Out(signed(data_bits))
        Where and what to write, for every memory.
    err_addr : Out(1)
        A pulse on a write outside every memory (a region that does not exist, an offset
        beyond its depth, or a lane offset whose weight index is ``beat`` or more); nothing is written.

    Latency
    -------
    Combinational: a write takes effect in the cycle ``w.valid`` is high.
    """

    def __init__(self, config: Config):
        self._cfg = config
        self._lay = Layout.for_config(config)
        self._regions = regions(config)
        super().__init__({
            "w": In(stream.Signature(streams.write_word(config).layout(), always_ready=True)),
            "en": Out(len(self._regions)),
            "offset": Out(self._lay.offset_bits),
            "data": Out(signed(self._lay.data_bits)),
            "err_addr": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ob = self._lay.offset_bits
        sel, off = self.w.payload.addr[ob:], self.w.payload.addr[:ob]
        en = [Signal(name=f"wen{k}") for k, _ in self._regions]
        lay = self._lay
        # a lane offset whose element field is beat or more is a hole (rtl.layout)
        elem_ok = (off[:lay.beat_bits] < lay.beat) if lay.beat & (lay.beat - 1) else 1
        m.d.comb += [e.eq(self.w.valid & (sel == k) & (off < depth) & (elem_ok if k < self._cfg.lanes else 1))
                     for e, (k, depth) in zip(en, self._regions)]
        m.d.comb += [self.en.eq(Cat(*en)), self.offset.eq(off), self.data.eq(self.w.payload.data),
                     self.err_addr.eq(self.w.valid & ~Cat(*en).any())]
        return m
