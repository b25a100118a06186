"""Run the gate pipeline in Amaranth's Python simulator: stream driver, monitor, cycle stamps.

Used by the tests (bit-exactness under backpressure) and by ``make bench``
(measured cycles per step against ``model.cycles``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from model.config import Config
from model.cycles import CycleModel
from model.params import QParams
from rtl.cell import RecurrentCell, status_bits


class _Harness(Elaboratable):
    def __init__(self, dut):
        self.dut = dut
        self.cycle = Signal(40)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m


@dataclass
class SimResult:
    outputs: list            # per sequence: (steps, hidden) int64
    in_cycles: list          # cycle of each x(t) element handshake, flat
    out_cycles: list         # cycle of each h(t) element handshake, flat
    last_flags: list
    first_flags: list = field(default_factory=list)
    status: dict = field(default_factory=dict)
    cycles: int = 0

    def step_cycles(self, hidden: int) -> np.ndarray:
        """Cycles between the last elements of consecutive h(t) vectors."""
        ends = np.array(self.out_cycles[hidden - 1::hidden])
        return np.diff(ends)


class Deadline(RuntimeError):
    """A run that did not deliver every h element within its cycle budget (a deadlock, a lost element,
    or a design far slower than the cycle model)."""


def budget(cfg: Config, seqs: list, max_stall: int, out_gap=None) -> int:
    """Cycles a run may take: four times the cycle model's time with every possible stall, plus slack."""
    cm = CycleModel.for_config(cfg)
    steps = sum(len(x) for x in seqs)
    n_out = steps * cfg.hidden_size
    stalls = (steps * cfg.input_size + n_out) * (max_stall + 1)
    if out_gap is not None:
        stalls += sum(out_gap(k) for k in range(n_out))
    return 4 * (cm.first_output_latency + steps * cm.cycles_per_step + stalls) + 1000


def run(cfg: Config, q: QParams | None, seqs: list, *, seed: int = 0, in_idle: float = 0.0,
        out_stall: float = 0.0, max_stall: int = 8, writes: list | None = None,
        vcd: str | None = None, out_gap=None, dut: RecurrentCell | None = None,
        max_cycles: int | None = None) -> SimResult:
    """Stream ``seqs`` (list of (steps, input) raw int arrays) through an :class:`RecurrentCell`.

    ``in_idle`` / ``out_stall`` are the probabilities of an idle input cycle or a
    low ``ready`` before each element (up to ``max_stall`` cycles each).  ``writes``
    are (addr, data) pairs sent through the write port before any input.  ``out_gap``, a
    function of the element index, gives an exact number of low-``ready`` cycles before each
    output element instead (a fixed drain pattern).  ``dut``: a cell built by the caller (default
    ``RecurrentCell(cfg, q)``).  When an output element has not come by cycle ``max_cycles``
    (default :func:`budget`, plus the writes), :class:`Deadline` names how far the run got,
    instead of the simulation hanging.
    """
    dut = dut if dut is not None else RecurrentCell(cfg, q)
    if max_cycles is None:
        max_cycles = budget(cfg, seqs, max_stall, out_gap) + 4 * len(writes or [])
    stalled = []
    top = _Harness(dut)
    H = cfg.hidden_size
    rng = np.random.default_rng(seed)
    total = sum(len(x) for x in seqs) * H
    res = SimResult([], [], [], [])
    sim = Simulator(top)
    sim.add_clock(1e-8)
    wrote = [writes is None]

    async def writer(ctx):
        for addr, value in writes or []:
            ctx.set(dut.w.payload, {"addr": addr, "data": value})
            ctx.set(dut.w.valid, 1)
            await ctx.tick()  # w is always ready
        ctx.set(dut.w.valid, 0)
        wrote[0] = True

    async def driver(ctx):
        while not wrote[0]:
            await ctx.tick()
        for x in seqs:
            for t, vec in enumerate(x):
                for e, v in enumerate(vec):
                    if in_idle and rng.random() < in_idle:
                        ctx.set(dut.i.valid, 0)
                        await ctx.tick().repeat(int(rng.integers(1, max_stall + 1)))
                    ctx.set(dut.i.payload, {"data": int(v), "last": int(e == len(vec) - 1),
                                            "first": int(t == 0 and e == 0)})
                    ctx.set(dut.i.valid, 1)
                    cyc, accepted = await ctx.tick().sample(top.cycle, dut.i.ready).until(
                        dut.i.ready | (top.cycle >= max_cycles))
                    if not accepted:
                        return  # out of budget (the monitor reports it)
                    res.in_cycles.append(cyc)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        got = []
        while len(got) < total:
            gap = out_gap(len(got)) if out_gap is not None else (
                int(rng.integers(1, max_stall + 1)) if out_stall and rng.random() < out_stall else 0)
            if gap:
                ctx.set(dut.o.ready, 0)
                await ctx.tick().repeat(gap)
            ctx.set(dut.o.ready, 1)
            cyc, payload, valid = await ctx.tick().sample(top.cycle, dut.o.payload, dut.o.valid).until(
                dut.o.valid | (top.cycle >= max_cycles))
            if not valid:  # out of budget: stop here, the caller raises Deadline
                stalled.append((cyc, ctx.get(dut.i.ready), {k: ctx.get(getattr(dut.status, k))
                                                            for k in status_bits(cfg)}))
                return
            got.append(payload.data)
            res.last_flags.append(payload.last)
            res.first_flags.append(payload.first)
            res.out_cycles.append(cyc)
        ctx.set(dut.o.ready, 0)
        res.status = {k: ctx.get(getattr(dut.status, k)) for k in status_bits(cfg)}
        res.cycles = ctx.get(top.cycle)
        flat = np.array(got, dtype=np.int64).reshape(-1, H)
        start = 0
        for x in seqs:
            res.outputs.append(flat[start:start + len(x)])
            start += len(x)

    sim.add_testbench(writer)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    if stalled:
        cyc, i_ready, status = stalled[0]
        raise Deadline(f"{cfg.name}: {len(res.out_cycles)} of {total} h elements and {len(res.in_cycles)} of "
                       f"{sum(len(x) * cfg.input_size for x in seqs)} x elements transferred by cycle {cyc} "
                       f"(budget {max_cycles}); i.ready = {i_ready}, status {status}")
    return res
