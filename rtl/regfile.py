"""The register file of a network core: decodes :class:`rtl.regmap.RegisterMap` on a simple register bus.

Every bus adapter (AXI4-Lite in :mod:`rtl.axi`, the board's UART link in :mod:`rtl.bridge`) is a master of
:func:`reg_bus`; this is its one slave.
"""
from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .regmap import REGION_PARAMS, REGION_REGS, REGION_STATE, RegisterMap


def reg_bus(addr_bits: int) -> wiring.Signature:
    """A register bus, master's view: ``addr`` (bytes), ``wdata``, ``we`` or ``re`` high for one cycle per
    request; the slave answers each with ``ack`` high for one cycle (the request's cycle or later), with
    ``rdata`` (reads) and ``err`` (the access was refused: nothing changed).  One request at a time."""
    return wiring.Signature({"addr": Out(addr_bits), "wdata": Out(32), "we": Out(1), "re": Out(1),
                             "ack": In(1), "rdata": In(32), "err": In(1)})


class RegisterFile(wiring.Component):
    """Registers, counters and the parameter and state windows of ``regmap``.

    Parameters
    ----------
    regmap : RegisterMap
    state_width : int
        Width of the network's ``state_data``.

    Ports
    -----
    bus : In(:func:`reg_bus`)
        Writes are answered in their own cycle; reads two cycles later (the state readout's latency).
    status : In(len(regmap.status_bits)), status_clear : Out(same)
        The network's sticky status bits, and one-cycle pulses clearing them (``STATUS<k>`` write 1 to clear).
    w_valid, w_addr, w_data : Out
        The network's write port, driven for one cycle by a parameter-window write.
    state_addr : Out, state_data : In(signed(state_width))
        The network's final-state readout (data one cycle after the address, as the network gives it).
    step_in, seq_in, out_vec : In(1)
        One-cycle events the counters count: an x vector accepted, a sequence started, an output vector sent.

    Latency
    -------
    Write: ``ack`` in the request's cycle, effect at the next clock edge.  Read: ``ack`` two cycles after ``re``.
    """

    def __init__(self, regmap: RegisterMap, state_width: int):
        self.regmap = regmap
        n = len(regmap.status_bits)
        super().__init__({
            "bus": In(reg_bus(regmap.addr_bits)),
            "status": In(n), "status_clear": Out(n),
            "w_valid": Out(1), "w_addr": Out(regmap.w_addr_bits), "w_data": Out(signed(regmap.w_data_bits)),
            "state_addr": Out(regmap.state_addr_bits), "state_data": In(signed(state_width)),
            "step_in": In(1), "seq_in": In(1), "out_vec": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        rm, bus = self.regmap, self.bus
        wb = rm.window_bits
        regs = rm.registers

        # ---- counters and flags ---------------------------------------------------------------------
        counters = {"STEPS": Signal(32), "SEQUENCES": Signal(32), "OUTPUTS": Signal(32)}
        cycles, cycles_hi = Signal(64), Signal(32)
        bad_access = Signal()
        clear_counters = Signal()
        m.d.sync += [counters["STEPS"].eq(counters["STEPS"] + self.step_in),
                     counters["SEQUENCES"].eq(counters["SEQUENCES"] + self.seq_in),
                     counters["OUTPUTS"].eq(counters["OUTPUTS"] + self.out_vec), cycles.eq(cycles + 1)]
        with m.If(clear_counters):
            m.d.sync += [c.eq(0) for c in counters.values()] + [cycles.eq(0)]
        flags = {"ERRORS": Cat(bad_access)}
        for k in range(0, len(rm.status_bits), 32):
            flags[f"STATUS{k // 32}"] = self.status[k:k + 32]
        values = {"CYCLES_LO": cycles[:32], "CYCLES_HI": cycles_hi, **counters, **flags}

        def value(r):
            return Const(r.value, 32) if r.role == "const" else values.get(r.name, Const(0, 32))

        # ---- decode ---------------------------------------------------------------------------------
        region, idx = bus.addr[wb + 2:wb + 4], bus.addr[2:wb + 2]
        reg_hit = Signal(len(regs))
        m.d.comb += reg_hit.eq(Cat((region == REGION_REGS) & (idx == k) for k in range(len(regs))))

        # writes: answered at once
        w_ok = Signal()
        for k, r in enumerate(regs):
            with m.If(bus.we & reg_hit[k]):
                if r.role == "flags" and r.name == "ERRORS":
                    m.d.comb += w_ok.eq(1)
                    with m.If(bus.wdata[0]):
                        m.d.sync += bad_access.eq(0)
                elif r.role == "flags":
                    lo = int(r.name[len("STATUS"):]) * 32
                    m.d.comb += [w_ok.eq(1), self.status_clear[lo:lo + len(r.bits)].eq(bus.wdata[:len(r.bits)])]
                elif r.role == "control":
                    m.d.comb += [w_ok.eq(1), clear_counters.eq(bus.wdata[0])]
        in_params = (region == REGION_PARAMS) & (idx >> rm.w_addr_bits == 0)
        with m.If(bus.we & in_params):
            m.d.comb += [w_ok.eq(1), self.w_valid.eq(1)]
        m.d.comb += [self.w_addr.eq(idx[:rm.w_addr_bits]), self.w_data.eq(bus.wdata[:rm.w_data_bits])]

        # reads: the address registered (the state readout's address), the answer two cycles after re
        raddr = Signal.like(bus.addr)
        r1, r2 = Signal(), Signal()
        m.d.sync += [r1.eq(bus.re), r2.eq(r1)]
        with m.If(bus.re):
            m.d.sync += raddr.eq(bus.addr)
        rregion, ridx = raddr[wb + 2:wb + 4], raddr[2:wb + 2]
        m.d.comb += self.state_addr.eq(ridx[:rm.state_addr_bits])
        sb = rm.state_bits
        state_ok = (rregion == REGION_STATE) & (ridx >> rm.state_addr_bits == 0) & Cat(
            (ridx[sb:rm.state_addr_bits] == k) & (ridx[:sb] < words) for k, words in rm.state_valid).any()
        table = Array(value(r) for r in regs)
        readable = Array(Const(int(r.role != "control"), 1) for r in regs)
        reg_ok = (rregion == REGION_REGS) & (ridx < len(regs)) & readable[ridx]
        r_ok = reg_ok | state_ok
        m.d.comb += bus.rdata.eq(Mux(rregion == REGION_STATE, self.state_data.as_signed(), table[ridx]))
        lo_read = reg_ok & (ridx == rm.register("CYCLES_LO").offset // 4)
        with m.If(r2 & lo_read):
            m.d.sync += cycles_hi.eq(cycles[32:])

        m.d.comb += [bus.ack.eq(bus.we | r2), bus.err.eq(Mux(r2, ~r_ok, ~w_ok))]
        with m.If((bus.we & ~w_ok) | (r2 & ~r_ok)):  # after the clear: a refused access sets the flag
            m.d.sync += bad_access.eq(1)
        return m
