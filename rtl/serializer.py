"""The row serializer: a finished slot's rows, handed from the lanes to the post-processor one per cycle."""
from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from model.config import Config
from model.cycles import Schedule


class Serializer(wiring.Component):
    """Walks the rows of each finished slot in schedule order (:class:`model.cycles.Schedule`).

    Parameters
    ----------
    config : Config
        Rows, lanes, gates and the schedule's order (unit-major, or gate-major for multi-pass kinds).

    Ports
    -----
    done : In(1), slot : In(range(slots)), bank : In(range(2 * interleave)), sos : In(1)
        A slot's accumulators are ready (the lanes' ``hold``), which slot it was, and the step's
        h bank (:class:`rtl.gates.Row`) and sequence-start flag.
    valid : Out(1)
        A row is being handed over this cycle.
    lane : Out(range(lanes))
        The lane holding it (``hold[lane]``).
    row, unit, gate : Out
        Its hardware row, unit and hardware gate index (the bias and auxiliary addresses).
    row_bank : Out(range(2 * interleave)), row_sos : Out(1)
        The h bank and sequence-start flag of the step it belongs to.
    overrun : Out(1)
        A pulse when a slot finishes before the previous slot's rows were all handed over
        (never in a valid config: a slot lasts ``input + hidden >= lanes`` cycles).

    Latency
    -------
    The slot's first row is handed over the cycle after ``done``, one row per cycle after that.
    """

    def __init__(self, config: Config):
        self._sch = sch = Schedule.for_config(config)
        L, R = config.lanes, config.rows
        super().__init__({
            "done": In(1), "slot": In(range(max(sch.slots, 2))), "bank": In(range(2 * config.interleave)),
            "sos": In(1),
            "valid": Out(1), "lane": Out(range(max(L, 2))), "row": Out(range(max(R, 2))),
            "unit": Out(range(max(sch.hidden, 2))), "gate": Out(range(max(sch.gates, 2))),
            "row_bank": Out(range(2 * config.interleave)), "row_sos": Out(1), "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        sch = self._sch
        L, R, H, G = sch.lanes, sch.rows, sch.hidden, sch.gates
        q, busy, rowc, unit, hg = self.lane, self.valid, self.row, self.unit, self.gate
        nrows = Signal(range(L + 1))
        with m.If(busy):
            m.d.sync += q.eq(q + 1)
            with m.If(q == nrows - 1):
                m.d.sync += busy.eq(0)
            with m.If(rowc == R - 1):
                m.d.sync += [rowc.eq(0), unit.eq(0), hg.eq(0)]
            with m.Else():
                m.d.sync += rowc.eq(rowc + 1)
                minor, major, n_minor = (unit, hg, H) if sch.gate_major else (hg, unit, G)
                with m.If(minor == n_minor - 1):
                    m.d.sync += [minor.eq(0), major.eq(major + 1)]
                with m.Else():
                    m.d.sync += minor.eq(minor + 1)
        slot_n = L
        for k, n in enumerate(sch.slot_rows):
            if n != L:
                slot_n = Mux(self.slot == k, n, slot_n)
        with m.If(self.done):
            m.d.sync += [busy.eq(1), q.eq(0), nrows.eq(slot_n), self.row_bank.eq(self.bank),
                         self.row_sos.eq(self.sos)]
            m.d.comb += self.overrun.eq(busy & (q != nrows - 1))
        return m
