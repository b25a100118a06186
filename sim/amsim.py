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


def run(cfg: Config, q: QParams | None, seqs: list, *, seed: int = 0, in_idle: float = 0.0,
        out_stall: float = 0.0, max_stall: int = 8, writes: list | None = None,
        vcd: str | None = None) -> SimResult:
    """Stream ``seqs`` (list of (steps, input) raw int arrays) through an :class:`RecurrentCell`.

    ``in_idle`` / ``out_stall`` are the probabilities of an idle input cycle or a
    low ``ready`` before each element (up to ``max_stall`` cycles each).  ``writes``
    are (addr, data) pairs sent through the write port before any input.
    """
    dut = RecurrentCell(cfg, q)
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
                    cyc, = await ctx.tick().sample(top.cycle).until(dut.i.ready)
                    res.in_cycles.append(cyc)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        got = []
        while len(got) < total:
            if out_stall and rng.random() < out_stall:
                ctx.set(dut.o.ready, 0)
                await ctx.tick().repeat(int(rng.integers(1, max_stall + 1)))
            ctx.set(dut.o.ready, 1)
            cyc, payload = await ctx.tick().sample(top.cycle, dut.o.payload).until(dut.o.valid)
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
    return res
