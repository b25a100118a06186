"""AXI4-Stream data ports and an AXI4-Lite control port around a network core (or a single cell).

Top module :data:`AXI_TOP`, ports named as Xilinx and cocotbext-axi expect (``s_axis_*``, ``m_axis_*``,
``s_axil_*``, plus ``clk`` and ``rst``, active high, synchronous).  The register map is
:class:`rtl.regmap.RegisterMap`'s; the element words are :func:`rtl.streams.axis_in_word` and
:func:`rtl.streams.axis_out_word`.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.network.config import NetworkConfig
from model.network.golden import QNetwork

from .core import NetworkCore
from .regfile import reg_bus

#: Verilog top module name of the AXI wrapper.
AXI_TOP = "rnn_axi"
#: AXI response codes.
OKAY, SLVERR = 0, 2


class AxiLiteSlave(wiring.Component):
    """AXI4-Lite slave to :func:`rtl.regfile.reg_bus` master, one transaction at a time (a write first when a
    write and a read arrive together).  Every write is a whole word (``wstrb`` is ignored); a refused
    access answers ``SLVERR``.

    Ports
    -----
    awaddr, awvalid, awready, wdata, wstrb, wvalid, wready, bresp, bvalid, bready,
    araddr, arvalid, arready, rdata, rresp, rvalid, rready
        The AXI4-Lite channels (``awprot``/``arprot`` are accepted and ignored).
    bus : Out(:func:`rtl.regfile.reg_bus`)

    Latency
    -------
    A write's response one cycle after the bus answers, a read's data likewise.
    """

    def __init__(self, addr_bits: int):
        self._ab = addr_bits
        super().__init__({
            "awaddr": In(addr_bits), "awprot": In(3), "awvalid": In(1), "awready": Out(1),
            "wdata": In(32), "wstrb": In(4), "wvalid": In(1), "wready": Out(1),
            "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
            "araddr": In(addr_bits), "arprot": In(3), "arvalid": In(1), "arready": Out(1),
            "rdata": Out(32), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
            "bus": Out(reg_bus(addr_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        err = Signal()
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.awvalid & self.wvalid):
                    m.d.comb += [self.awready.eq(1), self.wready.eq(1), bus.we.eq(1), bus.addr.eq(self.awaddr),
                                 bus.wdata.eq(self.wdata)]
                    m.d.sync += err.eq(bus.err)
                    m.next = "BRESP"
                    with m.If(~bus.ack):
                        m.next = "WWAIT"
                with m.Elif(self.arvalid):
                    m.d.comb += [self.arready.eq(1), bus.re.eq(1), bus.addr.eq(self.araddr)]
                    m.next = "RWAIT"
            with m.State("WWAIT"):
                with m.If(bus.ack):
                    m.d.sync += err.eq(bus.err)
                    m.next = "BRESP"
            with m.State("RWAIT"):
                with m.If(bus.ack):
                    m.d.sync += [err.eq(bus.err), self.rdata.eq(bus.rdata)]
                    m.next = "RRESP"
            with m.State("BRESP"):
                m.d.comb += [self.bvalid.eq(1), self.bresp.eq(err * SLVERR)]
                with m.If(self.bready):
                    m.next = "IDLE"
            with m.State("RRESP"):
                m.d.comb += [self.rvalid.eq(1), self.rresp.eq(err * SLVERR)]
                with m.If(self.rready):
                    m.next = "IDLE"
        return m


class AxiNetwork(wiring.Component):
    """A :class:`~rtl.core.NetworkCore` with AXI4-Stream and AXI4-Lite ports.

    Parameters
    ----------
    config : NetworkConfig
        A single cell's config is wrapped as a one-layer network (:meth:`NetworkConfig.from_cell`).
    qnet : QNetwork or None
        Parameters baked into the memories (zeros when None).

    Ports
    -----
    s_axis_tdata, s_axis_tvalid, s_axis_tready, s_axis_tlast, s_axis_tuser
        x elements (:func:`rtl.streams.axis_in_word`): ``tlast`` on a vector's last element, ``tuser[0]`` on a
        sequence's first element, ``tuser[1]`` on the elements of its last vector.
    m_axis_tdata, m_axis_tvalid, m_axis_tready, m_axis_tlast, m_axis_tuser
        Outputs (:func:`rtl.streams.axis_out_word`): logits with ``tuser`` the class (``tlast`` on the last
        logit), or h elements with ``tuser`` ``first``/``end``.
    s_axil_*
        The register map (:class:`rtl.regmap.RegisterMap`, :attr:`regmap`).

    Latency
    -------
    The network's, the streams pass straight through; register accesses as :class:`AxiLiteSlave`'s.
    """

    def __init__(self, config: NetworkConfig, qnet: QNetwork | None = None):
        self.core = NetworkCore(config, qnet)
        self.regmap = self.core.regmap
        iw, ow = self.core.in_word, self.core.out_word
        ab = self.regmap.addr_bits
        self._lite = AxiLiteSlave(ab)
        lite = {f"s_axil_{n}": (In if f.flow == wiring.In else Out)(f.shape)
                for n, f in self._lite.signature.members.items() if n != "bus"}
        super().__init__({
            "s_axis_tdata": In(iw.field("data").width), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "s_axis_tlast": In(1), "s_axis_tuser": In(iw.field("user").width),
            "m_axis_tdata": Out(ow.field("data").width), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
            "m_axis_tlast": Out(1), "m_axis_tuser": Out(ow.field("user").width),
            **lite,
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.lite = lite = self._lite
        wiring.connect(m, lite.bus, core.bus)
        for n, f in lite.signature.members.items():
            if n == "bus":
                continue
            outer = getattr(self, f"s_axil_{n}")
            m.d.comb += (getattr(lite, n).eq(outer) if f.flow == wiring.In else outer.eq(getattr(lite, n)))
        m.d.comb += [
            core.si.payload.data.eq(self.s_axis_tdata), core.si.payload.last.eq(self.s_axis_tlast),
            core.si.payload.user.eq(self.s_axis_tuser), core.si.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.si.ready),
            self.m_axis_tdata.eq(core.so.payload.data), self.m_axis_tlast.eq(core.so.payload.last),
            self.m_axis_tuser.eq(core.so.payload.user), self.m_axis_tvalid.eq(core.so.valid),
            core.so.ready.eq(self.m_axis_tready),
        ]
        return m


def write_verilog(config: NetworkConfig, qnet: QNetwork | None, out_dir) -> dict:
    """Write ``<config.name>_axi.v`` (top :data:`AXI_TOP`) and the register map as ``regmap.json``,
    ``<name>_regs.h`` and ``regmap.md`` into ``out_dir``; returns their paths by kind."""
    from pathlib import Path  # noqa: PLC0415

    from .export import component_verilog  # noqa: PLC0415

    top = AxiNetwork(config, qnet)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"verilog": out / f"{config.name}_axi.v", "json": out / "regmap.json",
             "header": out / f"{config.name}_regs.h", "markdown": out / "regmap.md"}
    paths["verilog"].write_text(component_verilog(top, AXI_TOP))
    paths["json"].write_text(top.regmap.to_json())
    paths["header"].write_text(top.regmap.c_header())
    paths["markdown"].write_text(top.regmap.markdown())
    return paths
