"""Run a network (:class:`rtl.network.Network`) in Amaranth's Python simulator: a stream driver
with random idle cycles, a monitor with random backpressure, cycle stamps, the stream-rule checker
of :mod:`sim.amsim` and a cycle budget.

Used by the network tests (bit-exactness against :mod:`model.network.golden`, cycles against
:mod:`model.network.cycles`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from model.network.config import NetworkConfig

from .amsim import Deadline, Harness, ProtocolViolation, stream_checker


@dataclass
class StreamResult:
    outputs: list                 # the o words, as dicts
    in_cycles: list               # cycle of each i transfer
    out_cycles: list              # cycle of each o transfer
    status: dict = field(default_factory=dict)
    cycles: int = 0
    state: list = field(default_factory=list)  # the words read at state_reads, in order


def input_words(ncfg: NetworkConfig, seqs) -> list:
    """The ``i`` words of sequences ``seqs`` (each ``(steps, input)`` raw ints), back to back."""
    out = []
    for x in seqs:
        T, n = len(x), len(x[0])
        out += [{"data": int(v), "last": int(e == n - 1), "first": int(t == 0 and e == 0),
                 "end": int(t == T - 1 and e == n - 1)} for t, vec in enumerate(x) for e, v in enumerate(vec)]
    return out


def run(dut, words: list, n_out: int, *, seed: int = 0, in_idle: float = 0.0, out_stall: float = 0.0,
        max_stall: int = 8, writes=(), max_cycles: int = 200_000, state_reads=()) -> StreamResult:
    """Send ``words`` into ``dut.i`` (after ``writes``, (addr, data) pairs on ``dut.w``), take ``n_out``
    words from ``dut.o``, then read ``state_reads`` addresses on ``dut.state_addr`` / ``state_data`` (an
    interleaved cell's as ``(seq, address)`` pairs, the sequence on ``dut.state_seq``).
    Works for a network and for a single cell (whose words have no ``end``).  :class:`~sim.amsim.Deadline` when they have not all come by ``max_cycles``;
    :class:`~sim.amsim.ProtocolViolation` when a stream rule is broken on ``i`` or ``o``."""
    top = Harness(dut)
    rng = np.random.default_rng(seed)
    res = StreamResult([], [], [])
    violations = []

    async def driver(ctx):
        for addr, value in writes:
            ctx.set(dut.w.payload, {"addr": addr, "data": value})
            ctx.set(dut.w.valid, 1)
            await ctx.tick()
        ctx.set(dut.w.valid, 0)
        for wd in words:
            if in_idle and rng.random() < in_idle:
                ctx.set(dut.i.valid, 0)
                for _ in range(int(rng.integers(1, max_stall + 1))):
                    await ctx.delay(0)
                    await ctx.tick()
            ctx.set(dut.i.payload, wd)
            ctx.set(dut.i.valid, 1)
            cyc, ok, done = await ctx.tick().sample(top.cycle, dut.i.ready, top.done).until(
                dut.i.ready | top.done | (top.cycle >= max_cycles))
            if done or not ok:
                return
            res.in_cycles.append(cyc)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        while len(res.outputs) < n_out:
            if out_stall and rng.random() < out_stall:
                ctx.set(dut.o.ready, 0)
                for _ in range(int(rng.integers(1, max_stall + 1))):
                    await ctx.tick()
            ctx.set(dut.o.ready, 1)
            cyc, payload, ok = await ctx.tick().sample(top.cycle, dut.o.payload, dut.o.valid).until(
                dut.o.valid | (top.cycle >= max_cycles))
            if not ok:
                break
            res.outputs.append({k: int(v) if not hasattr(v, "as_value") else v for k, v in _fields(payload)})
            res.out_cycles.append(cyc)
        ctx.set(dut.o.ready, 0)
        await ctx.tick().repeat(4)  # the last step's state written
        for a in state_reads:
            if isinstance(a, tuple):
                ctx.set(dut.state_seq, a[0])
                a = a[1]
            ctx.set(dut.state_addr, a)
            await ctx.tick()
            res.state.append(ctx.get(dut.state_data))
        res.cycles = ctx.get(top.cycle)
        res.status = {k: ctx.get(getattr(dut.status, k)) for k in dut.status.shape().members}
        ctx.set(top.done, 1)
        await ctx.tick().repeat(2)  # the background testbenches see done and return

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor)
    sim.add_testbench(stream_checker(top, dut.i, "i", violations), background=True)
    sim.add_testbench(stream_checker(top, dut.o, "o", violations), background=True)
    sim.run()
    if violations:
        raise ProtocolViolation("; ".join(violations))
    if len(res.outputs) < n_out:
        raise Deadline(f"{len(res.outputs)} of {n_out} output words and {len(res.in_cycles)} of {len(words)} input "
                       f"words transferred within {max_cycles} cycles")
    return res


def _fields(payload):
    return [(k, payload[k]) for k in payload.shape().members] if hasattr(payload, "shape") else payload.items()
