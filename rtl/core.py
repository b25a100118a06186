"""A network core: :class:`rtl.network.Network` with its register file and byte-padded element streams.

What every bus wrapper wraps: :class:`rtl.axi.AxiNetwork` gives it AXI4-Lite and AXI4-Stream ports,
:class:`rtl.board.BoardTop` a UART link.  A single-cell config is a one-layer network
(:meth:`model.network.config.NetworkConfig.from_cell`).
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.network.config import NetworkConfig
from model.network.golden import QNetwork

from . import streams
from .network import Network
from .regfile import RegisterFile, reg_bus
from .regmap import RegisterMap


class NetworkCore(wiring.Component):
    """The network, its :class:`~rtl.regfile.RegisterFile` (map :attr:`regmap`) and stream adapters.

    Parameters
    ----------
    config : NetworkConfig
    qnet : QNetwork or None
        Initial memory contents (zeros when None); a host may load others through the parameter window.

    Ports
    -----
    bus : In(:func:`rtl.regfile.reg_bus` of ``regmap.addr_bits``)
    si : In(stream of :func:`rtl.streams.axis_in_word`)
        x elements: ``last`` on a vector's last element, ``user`` bit 0 on a sequence's first element, bit 1
        on the elements of its last vector.
    so : Out(stream of :func:`rtl.streams.axis_out_word`)
        Logits with the class in ``user`` (a head), or h elements with ``first``/``end`` in ``user``.
    error : Out(1)
        Any of the network's sticky status bits is set (a LED).

    Latency
    -------
    The network's (:class:`model.network.cycles.NetworkCycleModel`); the adapters are combinational.
    """

    def __init__(self, config: NetworkConfig, qnet: QNetwork | None = None):
        self.config = config
        self.net = Network(config, qnet)
        self.regmap = RegisterMap.for_network(self.net)
        self.in_word, self.out_word = streams.axis_in_word(config), streams.axis_out_word(config)
        super().__init__({
            "bus": In(reg_bus(self.regmap.addr_bits)),
            "si": In(stream.Signature(self.in_word.layout())),
            "so": Out(stream.Signature(self.out_word.layout())),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.net = net = self.net
        m.submodules.regs = regs = RegisterFile(self.regmap, len(net.state_data))
        wiring.connect(m, wiring.flipped(self.bus), regs.bus)
        si, so = self.si, self.so
        first_el = Signal(init=1)  # the next x element is element 0 of a vector
        with m.If(si.valid & si.ready):
            m.d.sync += first_el.eq(si.payload.last)
        m.d.comb += [
            net.i.payload.data.eq(si.payload.data), net.i.payload.last.eq(si.payload.last),
            *(getattr(net.i.payload, n).eq(si.payload.user[k]) for k, n in enumerate(streams.STREAM_USER)),
            net.i.valid.eq(si.valid), si.ready.eq(net.i.ready),
            so.payload.data.eq(net.o.payload.data), so.payload.last.eq(net.o.payload.last),
            so.valid.eq(net.o.valid), net.o.ready.eq(so.ready),
            regs.status.eq(net.status), net.status_clear.eq(regs.status_clear),
            net.w.valid.eq(regs.w_valid), net.w.payload.addr.eq(regs.w_addr), net.w.payload.data.eq(regs.w_data),
            net.state_addr.eq(regs.state_addr), regs.state_data.eq(net.state_data),
            regs.step_in.eq(si.valid & si.ready & si.payload.last),
            regs.seq_in.eq(si.valid & si.ready & si.payload.user[0] & first_el),
            regs.out_vec.eq(so.valid & so.ready & so.payload.last),
            self.error.eq(net.status.as_value().any()),
        ]
        if self.config.head is not None:
            m.d.comb += so.payload.user.eq(net.o.payload.cls)
        else:
            m.d.comb += so.payload.user.eq(Cat(*(getattr(net.o.payload, n) for n in streams.STREAM_USER)))
        return m
