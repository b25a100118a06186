"""A network in gateware: one cell per layer, chained through streams, and the dense head.

::

    i --> [Layer 0: cell + end flags] --> [Layer 1] --> ... --> [Head] --> o
                         w (one port, decoded by slot) --+--> every cell and the head

Layer ``l + 1`` consumes h(t) of layer ``l`` element by element while layer ``l`` computes step
``t + 1``, so the stack is pipelined and its throughput is that of its slowest layer.  Every
stream between layers is a :func:`rtl.streams.layer_word`: the cell's word plus ``end`` on the
last element of a sequence's last vector, which each :class:`Layer` carries through its cell in a
small FIFO of per-step flags, so the head knows a sequence's last step.
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from model.config import Config, ConfigError
from model.network.config import NetworkConfig
from model.network.golden import QNetwork

from . import streams
from .cell import RecurrentCell, status_bits
from .head import HEAD_REGIONS, Head, head_offset_bits
from .layout import Layout

#: Steps a layer can hold between accepting a vector's last element and emitting its h(t): the
#: input buffer's two vectors, two steps in flight and the output queue's steps, with margin.
FLAG_DEPTH = 16


class Layer(wiring.Component):
    """One unidirectional layer: a :class:`RecurrentCell` with ``end`` carried around it.

    Ports
    -----
    i : In(stream of :func:`rtl.streams.layer_word` in ``formats.input``)
    o : Out(stream of :func:`rtl.streams.layer_word` in ``formats.hidden``)
        The cell's ``o`` with ``end`` set on the last element of a sequence's last h(t).
    w : In(stream of :func:`rtl.streams.write_word`, always ready)
        The cell's write port.
    status : Out(the cell's status bits)

    Latency
    -------
    The cell's (``model.cycles``); the flags add none.  ``i.ready`` also drops while
    :data:`FLAG_DEPTH` steps are inside the layer.
    """

    def __init__(self, config: Config, qparams=None):
        self._cfg = config
        self.cell = RecurrentCell(config, qparams)
        super().__init__({
            "i": In(stream.Signature(streams.layer_word(config.fmt("input")).layout())),
            "o": Out(stream.Signature(streams.layer_word(config.fmt("hidden")).layout())),
            "w": In(stream.Signature(streams.write_word(config).layout(), always_ready=True)),
            "status": Out(data.StructLayout({n: 1 for n in status_bits(config)})),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.cell = cell = self.cell
        m.submodules.flags = flags = fifo.SyncFIFOBuffered(width=1, depth=FLAG_DEPTH)
        i, o = self.i, self.o
        m.d.comb += [
            cell.i.payload.data.eq(i.payload.data), cell.i.payload.last.eq(i.payload.last),
            cell.i.payload.first.eq(i.payload.first),
            cell.i.valid.eq(i.valid & flags.w_rdy), i.ready.eq(cell.i.ready & flags.w_rdy),
            flags.w_data.eq(i.payload.end), flags.w_en.eq(i.valid & i.ready & i.payload.last),
            o.payload.data.eq(cell.o.payload.data), o.payload.last.eq(cell.o.payload.last),
            o.payload.first.eq(cell.o.payload.first), o.payload.end.eq(cell.o.payload.last & flags.r_data),
            o.valid.eq(cell.o.valid & flags.r_rdy), cell.o.ready.eq(o.ready & flags.r_rdy),
            flags.r_en.eq(o.valid & o.ready & cell.o.payload.last),
        ]
        wiring.connect(m, wiring.flipped(self.w), cell.w)
        m.d.comb += self.status.eq(cell.status)
        return m


def check_buildable(ncfg: NetworkConfig) -> None:
    """Raise ``ConfigError`` for a network this gateware cannot build (before anything is built)."""
    for i, d in enumerate(ncfg.directions):
        if d != 1:
            raise ConfigError(f"layer {i} is bidirectional; the network gateware builds unidirectional layers "
                              f"(accepted: directions = 1)")


class Network(wiring.Component):
    """A stack of :class:`Layer` and an optional :class:`~rtl.head.Head`.

    Parameters
    ----------
    config : NetworkConfig
    qnet : QNetwork or None
        Initial memory contents (zeros when None).
    head_every_step : bool
        The head computes logits on every step (default: a sequence's last step only).

    Ports
    -----
    i : In(stream of :func:`rtl.streams.layer_word` in layer 0's ``formats.input``)
        x elements; ``first`` starts a sequence, ``end`` marks the last element of its last vector.
    o : Out(stream)
        With a head, :func:`rtl.streams.head_word` (logits and class); without one, the last layer's
        :func:`rtl.streams.layer_word`.
    w : In(stream of :meth:`write_word`, always ready)
        ``addr = target << sub_bits | address``: target ``k < slots`` is layer ``k``'s cell (its own
        address map, :mod:`rtl.layout`), target ``slots`` the head (:data:`rtl.head.HEAD_REGIONS`).
    status : Out
        Every layer's bits as ``l<k>_<bit>``, then ``head_sat`` and ``err_addr`` (a write to no target).

    Latency
    -------
    ``model.network`` cycle model (steady state: the slowest layer's cycles per step).
    """

    def __init__(self, config: NetworkConfig, qnet: QNetwork | None = None, head_every_step: bool = False):
        check_buildable(config)
        self._ncfg, self._q, self._every = config, qnet, head_every_step
        self.layers = [Layer(c, None if qnet is None else qnet.layers[k][0]) for k, c in enumerate(config.layers)]
        self.head = None if config.head is None else Head(config.head, None if qnet is None else qnet.head,
                                                          head_every_step)
        self.sub_bits = max([Layout.for_config(c).addr_bits for c in config.layers]
                            + ([head_offset_bits(config.head) + 1] if config.head else []))
        targets = len(config.layers) + (1 if config.head else 0)
        self.target_bits = max(1, (targets - 1).bit_length())
        last = config.layers[-1]
        out = streams.head_word(config.head) if config.head else streams.layer_word(last.fmt("hidden"))
        bits = [f"l{k}_{n}" for k, c in enumerate(config.layers) for n in status_bits(c)]
        bits += (["head_sat"] if config.head else []) + ["err_addr"]
        super().__init__({
            "i": In(stream.Signature(streams.layer_word(config.layers[0].fmt("input")).layout())),
            "o": Out(stream.Signature(out.layout())),
            "w": In(stream.Signature(self.write_word().layout(), always_ready=True)),
            "status": Out(data.StructLayout({n: 1 for n in bits})),
        })

    def write_word(self) -> streams.Word:
        widths = [streams.write_word(c).field("data").width for c in self._ncfg.layers]
        if self._ncfg.head:
            widths += [self._ncfg.head.formats[r].width for r in HEAD_REGIONS]
        return streams.Word((streams.Field("addr", self.target_bits + self.sub_bits),
                             streams.Field("data", max(widths), True)))

    def elaborate(self, platform):
        m = Module()
        prev = wiring.flipped(self.i)
        sb = self.sub_bits
        target, sub = self.w.payload.addr[sb:], self.w.payload.addr[:sb]
        hit = []
        for k, layer in enumerate(self.layers):
            m.submodules[f"layer{k}"] = layer
            wiring.connect(m, prev, layer.i)
            prev = layer.o
            ab = len(layer.w.payload.addr)
            sel = self.w.valid & (target == k) & (sub[ab:] == 0)
            hit.append(sel)
            m.d.comb += [layer.w.valid.eq(sel), layer.w.payload.addr.eq(sub[:ab]),
                         layer.w.payload.data.eq(self.w.payload.data)]
            for n in status_bits(layer.cell.config):
                m.d.comb += getattr(self.status, f"l{k}_{n}").eq(getattr(layer.status, n))
        if self.head is not None:
            m.submodules.head = head = self.head
            wiring.connect(m, prev, head.i)
            wiring.connect(m, head.o, wiring.flipped(self.o))
            hb = len(head.w_addr)
            sel = self.w.valid & (target == len(self.layers)) & (sub[hb:] == 0)
            hit.append(sel)
            m.d.comb += [head.w_en.eq(sel), head.w_addr.eq(sub[:hb]), head.w_data.eq(self.w.payload.data),
                         self.status.head_sat.eq(head.sat)]
        else:
            wiring.connect(m, prev, wiring.flipped(self.o))
        err_addr = Signal()
        with m.If(self.w.valid & ~Cat(*hit).any()):
            m.d.sync += err_addr.eq(1)
        m.d.comb += self.status.err_addr.eq(err_addr)
        return m
