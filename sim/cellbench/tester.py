"""Wires the bench as cocotb's ``matrix_multiplier`` example does: the input monitor feeds the
stepwise golden model, the model feeds the in-order scoreboard, and the output monitor feeds the
scoreboard.  A reset of the DUT resets all three; :meth:`CellTester.stream` drives sequences through.
"""
from __future__ import annotations

from cocotb.triggers import RisingEdge

from .driver import InputDriver, stream_through
from .golden_model import StepModel
from .harness import Bench
from .monitors import InputMonitor, OutputMonitor
from .scoreboard import Scoreboard


class CellTester:
    """Monitors -> model -> scoreboard for one test; ``model.load(q)`` after parameters are written."""

    def __init__(self, bench: Bench):
        self.b = bench
        self.model = StepModel(bench.cfg, bench.q)
        self.board = Scoreboard(bench)
        self.in_mon = InputMonitor(bench, self._on_vector)
        self.out_mon = OutputMonitor(bench, self._on_output)
        self._phase = ("", 0, 0)  # label, transfers received before it, transfers it gives

    def start(self):
        for coro in (self.in_mon.run(), self.out_mon.run(), self._resets()):
            self.b.spawn(coro)

    def phase(self, label: str, outputs: int):
        """Label the steps that follow (mismatch reports, progress lines); they give ``outputs`` transfers."""
        self.model.label = label
        self._phase = (label, self.board.n, outputs)

    def received(self) -> int:
        """Transfers received in the current phase."""
        return self.board.n - self._phase[1]

    def _on_vector(self, x, first: int, seq: int):
        if x is None:
            self.b.violation("X/Z data accepted on i__payload: the model cannot follow")
            return
        self.board.expect(self.model.step(x, first, seq))

    def _on_output(self, fields, cycle: int, raw: str):
        self.board.check(fields, cycle, raw)
        label, _, total = self._phase
        self.b.progress(label, self.received(), total)

    async def _resets(self):
        while True:
            await RisingEdge(self.b.dut.rst)
            self.in_mon.reset()
            self.model.reset()
            self.board.flush()

    async def stream(self, label: str, seqs, pin, pout, rng_in, rng_out, first_flags=None) -> InputDriver:
        """Drive ``seqs`` through (:func:`.driver.stream_through`) until every h element they give arrived."""
        n = sum(len(x) for x in seqs) * self.b.H
        self.phase(label, n)
        return await stream_through(
            self.b, label, seqs, pin, pout, rng_in, rng_out, self.board.wait_for(self.board.n + n),
            lambda: f"received {self.received()} of {n} h elements, next expected {self.board.next_expected()}",
            first_flags=first_flags)


async def start(dut, test: str) -> tuple[Bench, CellTester]:
    """The harness started (clock, reset, protocol checkers) and the tester running on it."""
    b = Bench(dut, test)
    await b.start()
    t = CellTester(b)
    t.start()
    return b, t
