"""Run the gate pipeline in Amaranth's Python simulator: stream driver, monitor, cycle stamps.

Used by the tests (bit-exactness under backpressure, stress patterns) and by ``make bench``
(measured cycles per step against ``model.cycles``).  Every run has a cycle budget
(:class:`Deadline` instead of a hang) and a protocol checker on ``i`` and ``o``
(:class:`ProtocolViolation`: ``valid`` held and the payload stable until the transfer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth import Elaboratable, Module, ResetInserter, Signal, Value
from amaranth.sim import Simulator

from model.config import Config
from model.cycles import CycleModel
from model.params import QParams
from rtl.cell import RecurrentCell, status_bits
from rtl.streams import interleaved_order


class Harness(Elaboratable):
    """The DUT with a synchronous reset a testbench drives (``rst``; the testbenches' own clock
    domain has none, so a reset never interrupts them), and a cycle counter."""

    def __init__(self, dut):
        self.dut = dut
        self.cycle = Signal(40, reset_less=True)
        self.rst = Signal()
        self.wreq = Signal(16, reset_less=True)   # write batches requested (driver -> writer)
        self.wdone = Signal(16, reset_less=True)  # write batches sent
        self.done = Signal(reset_less=True)       # the monitor has finished: background testbenches return

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = ResetInserter(self.rst)(self.dut)
        m.d.sync += self.cycle.eq(self.cycle + 1)
        return m


class ProtocolViolation(AssertionError):
    """A stream broke the ``amaranth.lib.stream`` rules; the message names each violation."""


def stream_checker(top, port, name: str, found: list):
    """A background testbench: once ``port.valid`` is high without ``port.ready`` (outside reset), the
    next cycle must still have ``valid`` high and the same payload, until the transfer.  Appends one
    line per violation to ``found`` (cycle, stream, what happened)."""
    payload = Value.cast(port.payload)

    async def check(ctx):
        while True:
            cyc, held, done = await ctx.tick().sample(top.cycle, payload, top.done).until(
                (port.valid & ~port.ready & ~top.rst) | top.done)
            if done:
                return
            while True:
                _, _, cyc, rst, valid, ready, now = await ctx.tick().sample(top.cycle, top.rst, port.valid, port.ready,
                                                                      payload)
                if rst:
                    break
                if not valid:
                    found.append(f"cycle {cyc}: {name}.valid dropped before the transfer (payload {held:#x})")
                    break
                if now != held:
                    found.append(f"cycle {cyc}: {name}.payload changed from {held:#x} to {now:#x} before the "
                                 f"transfer")
                    break
                if ready:
                    break
    return check


@dataclass
class Pause:
    """Before input element ``at`` (counted over the whole run): drop ``i.valid``, wait until ``outputs``
    h elements have arrived, then ``delay`` cycles, then send ``writes`` ((addr, data) pairs, one a
    cycle) through ``w``; with ``overlap`` the input goes on while they are sent."""
    at: int
    outputs: int = 0
    delay: int = 0
    writes: list = field(default_factory=list)
    overlap: bool = False


@dataclass
class SimResult:
    outputs: list            # per sequence: (steps, hidden) int64
    in_cycles: list          # cycle of each x(t) element handshake, flat
    out_cycles: list         # cycle of each h(t) element handshake, flat
    last_flags: list
    first_flags: list = field(default_factory=list)
    seq_flags: list = field(default_factory=list)   # ``seq`` of each h element (interleave > 1)
    out_seqs: list = field(default_factory=list)    # the sequence (index into ``seqs``) of each h element
    status: dict = field(default_factory=dict)
    cycles: int = 0
    write_cycles: list = field(default_factory=list)  # cycle of each w write, flat

    def step_cycles(self, hidden: int) -> np.ndarray:
        """Cycles between the last elements of consecutive h(t) vectors."""
        ends = np.array(self.out_cycles[hidden - 1::hidden])
        return np.diff(ends)

    def sequence_step_cycles(self, hidden: int, seq: int) -> np.ndarray:
        """Cycles between the last elements of sequence ``seq``'s consecutive h(t) vectors."""
        ends = [c for k, (c, n) in enumerate(zip(self.out_cycles, self.out_seqs)) if n == seq and k % hidden == hidden - 1]
        return np.diff(np.array(ends))


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


@dataclass
class Reset:
    """A reset of ``hold`` cycles, ``offset`` cycles after the first x element of sequence ``seq`` was
    accepted.  Sequence ``seq`` starts only once every h of the sequences before it has arrived; what
    it gives before the reset is kept in :attr:`SimResult.cut`, and the run goes on with ``seq + 1``."""
    seq: int
    offset: int
    hold: int = 2


def run(cfg: Config, q: QParams | None, seqs: list, *, seed: int = 0, in_idle: float = 0.0,
        out_stall: float = 0.0, max_stall: int = 8, writes: list | None = None,
        vcd: str | None = None, out_gap=None, dut: RecurrentCell | None = None,
        max_cycles: int | None = None, pauses=(), resets=()) -> SimResult:
    """Stream ``seqs`` (list of (steps, input) raw int arrays) through an :class:`RecurrentCell`, in
    :func:`rtl.streams.interleaved_order` (one after another without interleave).

    ``in_idle`` / ``out_stall`` are the probabilities of an idle input cycle or a
    low ``ready`` before each element (up to ``max_stall`` cycles each).  ``writes``
    are (addr, data) pairs sent through the write port before any input; ``pauses``
    (:class:`Pause`) stop the input at given elements, wait and write.  ``resets``
    (:class:`Reset`) reset the cell in the middle of a sequence.  ``out_gap``, a
    function of the element index, gives an exact number of low-``ready`` cycles before each
    output element instead (a fixed drain pattern).  ``dut``: a cell built by the caller (default
    ``RecurrentCell(cfg, q)``).  When an output element has not come by cycle ``max_cycles``
    (default :func:`budget`, plus the writes and pauses), :class:`Deadline` names how far the run got,
    instead of the simulation hanging; a stream rule broken on ``i`` or ``o`` raises
    :class:`ProtocolViolation` naming each violation.
    """
    dut = dut if dut is not None else RecurrentCell(cfg, q)
    paused = sorted(pauses, key=lambda p: p.at)
    batches = [list(writes or [])] + [list(p.writes) for p in paused]
    resets = {r.seq: r for r in resets}
    if max_cycles is None:
        max_cycles = (budget(cfg, seqs, max_stall, out_gap) + 4 * sum(len(b) for b in batches)
                      + 4 * sum(p.delay for p in paused) + 4 * sum(r.offset + r.hold for r in resets.values()))
    stalled, violations = [], []
    top = Harness(dut)
    H = cfg.hidden_size
    rng = np.random.default_rng(seed)
    res = SimResult([], [], [], [])
    res.cut = {}
    lengths = [len(x) * H for x in seqs]
    order = interleaved_order(cfg, [len(x) for x in seqs])
    N = cfg.interleave
    if N > 1 and resets:
        raise ValueError(f"resets apply to a cell without interleave, not interleave = {N}")
    seq_start = {}   # sequence -> cycle of its first accepted x element
    resets_done = []  # sequences whose reset has happened

    async def writer(ctx):
        for k, batch in enumerate(batches):
            if k:
                done, = await ctx.tick().sample(top.done).until((top.wreq >= k + 1) | top.done)
                if done:
                    return
            for addr, value in batch:
                ctx.set(dut.w.payload, {"addr": addr, "data": value})
                ctx.set(dut.w.valid, 1)
                _, _, cyc = await ctx.tick().sample(top.cycle)  # w is always ready
                res.write_cycles.append(cyc)
            ctx.set(dut.w.valid, 0)
            ctx.set(top.wdone, k + 1)

    async def resetter(ctx):
        for n in sorted(resets):
            r = resets[n]
            while n not in seq_start:
                if res.cycles:
                    return
                await ctx.tick()
            await ctx.tick().until(top.cycle >= seq_start[n] + r.offset)
            ctx.set(top.rst, 1)
            await ctx.tick().repeat(r.hold)
            ctx.set(top.rst, 0)
            resets_done.append(n)
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            res.after_reset[n] = (valid, {k: ctx.get(getattr(dut.status, k)) for k in status_bits(cfg)})

    res.after_reset = {}

    async def driver(ctx):
        await ctx.tick().until(top.wdone >= 1)
        k = 0
        pause_at = {p.at: (r, p) for r, p in enumerate(paused, start=1)}
        for n, t in order:
            x = seqs[n]
            if n in resets and t == 0:
                ctx.set(dut.i.valid, 0)
                while len(res.out_cycles) < sum(lengths[:n]) - sum(len(v) for v in res.cut.values()):
                    await ctx.tick()
            vec = x[t]
            for e, v in enumerate(vec):
                if k in pause_at:
                    r, p = pause_at[k]
                    ctx.set(dut.i.valid, 0)
                    while len(res.out_cycles) < p.outputs:
                        await ctx.tick()
                    if p.delay:
                        await ctx.tick().repeat(p.delay)
                    ctx.set(top.wreq, r + 1)
                    if not p.overlap:
                        await ctx.tick().until(top.wdone >= r + 1)
                k += 1
                if n in resets and n in resets_done:
                    continue  # the rest of a sequence cut by a reset is not sent
                if in_idle and rng.random() < in_idle:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick().repeat(int(rng.integers(1, max_stall + 1)))
                ctx.set(dut.i.payload, {"data": int(v), "last": int(e == len(vec) - 1),
                                        "first": int(t == 0 and e == 0), **({"seq": n % N} if N > 1 else {})})
                ctx.set(dut.i.valid, 1)
                cyc, accepted, rst = await ctx.tick().sample(top.cycle, dut.i.ready, top.rst).until(
                    (dut.i.ready & ~top.rst) | top.rst | (top.cycle >= max_cycles))
                if rst:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick().until(~top.rst)
                    continue
                if not accepted:
                    return  # out of budget (the monitor reports it)
                seq_start.setdefault(n, cyc)
                res.in_cycles.append(cyc)
            if n in resets and t == len(x) - 1:  # the reset comes before the next sequence starts
                ctx.set(dut.i.valid, 0)
                while n not in resets_done:
                    await ctx.tick()
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        mine = [[] for _ in seqs]
        for n, t in order:
            if n in res.cut:
                continue
            while len(mine[n]) < (t + 1) * H:
                if n in resets and n in resets_done:
                    res.cut[n] = mine[n]
                    break
                gap = out_gap(len(res.out_cycles)) if out_gap is not None else (
                    int(rng.integers(1, max_stall + 1)) if out_stall and rng.random() < out_stall else 0)
                if gap:
                    ctx.set(dut.o.ready, 0)
                    await ctx.tick().repeat(gap)
                    if n in resets and n in resets_done:
                        res.cut[n] = mine[n]
                        break
                ctx.set(dut.o.ready, 1)
                cyc, payload, valid, rst = await ctx.tick().sample(top.cycle, dut.o.payload, dut.o.valid,
                                                                   top.rst).until(
                    (dut.o.valid & ~top.rst) | top.rst | (top.cycle >= max_cycles))
                if rst:
                    await ctx.tick().until(~top.rst)
                    continue
                if not valid:  # out of budget: stop here, the caller raises Deadline
                    stalled.append((cyc, ctx.get(dut.i.ready), {k: ctx.get(getattr(dut.status, k))
                                                                for k in status_bits(cfg)}))
                    ctx.set(top.done, 1)
                    await ctx.tick().repeat(2)
                    return
                mine[n].append(payload.data)
                res.last_flags.append(payload.last)
                res.first_flags.append(payload.first)
                res.seq_flags.append(payload.seq if N > 1 else 0)
                res.out_seqs.append(n)
                res.out_cycles.append(cyc)
        res.outputs = [None if n in res.cut else np.array(v, dtype=np.int64).reshape(-1, H)
                       for n, v in enumerate(mine)]
        ctx.set(dut.o.ready, 0)
        res.status = {k: ctx.get(getattr(dut.status, k)) for k in status_bits(cfg)}
        res.cycles = ctx.get(top.cycle)
        ctx.set(top.done, 1)
        await ctx.tick().repeat(2)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(writer, background=True)
    sim.add_testbench(resetter, background=True)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(stream_checker(top, dut.i, "i", violations), background=True)
    sim.add_testbench(stream_checker(top, dut.o, "o", violations), background=True)
    sim.add_testbench(monitor)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    if violations:
        raise ProtocolViolation(f"{cfg.name}: {len(violations)} stream rule violations: " + "; ".join(violations[:5]))
    if stalled:
        cyc, i_ready, status = stalled[0]
        total = sum(lengths)
        raise Deadline(f"{cfg.name}: {len(res.out_cycles)} of {total} h elements and {len(res.in_cycles)} of "
                       f"{sum(len(x) * cfg.input_size for x in seqs)} x elements transferred by cycle {cyc} "
                       f"(budget {max_cycles}); i.ready = {i_ready}, status {status}")
    return res
