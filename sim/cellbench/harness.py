"""The harness of one cocotb test: settings, clock, reset, port widths, status bits and its tasks.

Sampling: handshakes are decided at ``ReadOnly()`` (settled values in the cycle before the edge
that transfers); inputs are driven right after a rising edge.
"""
from __future__ import annotations

import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time

from model.cycles import CycleModel
from rtl import streams
from rtl.cell import status_bits

from . import float_bound
from .protocol import StreamChecker, XChecker
from .report import BenchFailure, Progress
from .settings import Settings, baked_qparams
from .stimulus import NO_STALLS, Pattern

PERIOD_NS = 10


class Bench:
    """What every test starts from: the DUT, its config and baked parameters, the stream words,
    clock and reset, the protocol checkers, the violations found and the tasks to cancel."""

    def __init__(self, dut, test: str):
        self.dut, self.test = dut, test
        self.s = s = Settings.from_env()
        self.cfg = cfg = s.cfg
        self.q = baked_qparams(cfg, s.param_seed)
        self.cm = CycleModel.for_config(cfg)
        self.bound = float_bound.for_config(cfg, s.config_path, s.float_bound)
        self.H, self.I = cfg.hidden_size, cfg.input_size
        self.iword, self.oword, self.wword = streams.input_word(cfg), streams.output_word(cfg), streams.write_word(cfg)
        self.in_w = self.iword.field("data").width
        self.status_bits = status_bits(cfg)
        for name, want in (("i__payload", self.iword.width), ("o__payload", self.oword.width),
                           ("w__payload", self.wword.width), ("status", len(self.status_bits))):
            got = len(getattr(dut, name))
            if got != want:
                raise BenchFailure(f"port {name} is {got} bits wide; config {cfg.name!r} implies {want}: "
                                   f"the Verilog was not built from {s.config_path}")
        self.violations: list[str] = []
        self.raise_on_violation = True
        self.tasks = []
        self.t_wall = time.perf_counter()
        self.c0 = 0
        self.progress = Progress(s.progress, test, self)
        self.log = dut._log
        self.log.info("%s: seed %d (RNNKIT_SEED), parameter seed %d, config %s (%s), simulator %s",
                      test, s.seed, s.param_seed, cfg.name, s.config_path, s.sim)

    def cycle(self) -> int:
        return int(get_sim_time("ns")) // PERIOD_NS

    async def start(self):
        """Idle inputs, clock, 3 cycles of reset, then the protocol (and X/Z) checkers."""
        d = self.dut
        for sig in (d.i__valid, d.i__payload, d.o__ready, d.w__valid, d.w__payload):
            sig.value = 0
        d.rst.value = 1
        Clock(d.clk, PERIOD_NS, unit="ns").start()
        await ClockCycles(d.clk, 3)
        d.rst.value = 0
        self.c0 = self.cycle()
        for ck in (StreamChecker(self, "i"), StreamChecker(self, "o")):  # w is always ready: no stalls
            self.spawn(ck.run())
        if self.s.xcheck:
            self.spawn(XChecker(self).run())  # 2-state Verilator has no X/Z

    async def reset(self, cycles: int, ready: int = 0, keep_first: bool = False):
        """Synchronous reset for ``cycles`` cycles, then idle inputs.  Call right after a rising edge.
        ``keep_first``: the stream signals keep their values through the first reset edge (a reset
        that hits a pending transfer: ``valid`` high, no handshake yet)."""
        d = self.dut
        d.rst.value = 1
        if keep_first:
            await RisingEdge(d.clk)
            cycles -= 1
        d.i__valid.value = 0
        d.w__valid.value = 0
        d.o__ready.value = ready
        if cycles > 0:
            await ClockCycles(d.clk, cycles)
        d.rst.value = 0

    def spawn(self, coro):
        t = cocotb.start_soon(coro)
        self.tasks.append(t)
        return t

    def stop(self):
        for t in self.tasks:
            if not t.done():
                t.cancel()
        self.tasks = []

    def violation(self, msg: str):
        msg = f"cycle {self.cycle()}: {msg}"
        self.violations.append(msg)
        if not self.raise_on_violation:
            self.log.info("PROTOCOL (expected by the self-test): %s", msg)
            return
        self.log.error("PROTOCOL: %s", msg)
        raise BenchFailure(f"protocol violation: {msg}")

    def status(self) -> dict:
        v = self.dut.status.value
        if not v.is_resolvable:
            return {k: None for k in self.status_bits}
        u = v.to_unsigned()
        return {k: (u >> n) & 1 for n, k in enumerate(self.status_bits)}

    def budget_ns(self, steps: int, pin: Pattern = NO_STALLS, pout: Pattern = NO_STALLS) -> int:
        """Generous time limit for ``steps`` steps: a hang detector, not a performance check."""
        base = steps * self.cm.cycles_per_step + self.cm.first_output_latency + 100
        gaps = steps * (self.I * pin.mean_gap() + self.H * pout.mean_gap() * 2)
        return int((6 * base + 4 * gaps + 5000) * PERIOD_NS)
