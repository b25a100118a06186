"""Drivers: x(t) elements on ``i``, random ``o.ready`` stretches, and parameter writes on ``w``.

They only drive; what the DUT accepted is for :mod:`.monitors` to see.
"""
from __future__ import annotations

from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

from rtl.streams import interleaved_order

from .harness import PERIOD_NS
from .report import BenchFailure
from .stimulus import NO_STALLS, Drain, Pattern


class InputDriver:
    """Drives ``seqs`` element-serially on ``i``, in :func:`rtl.streams.interleaved_order` (an interleaved
    cell's sequences take turns, ``seq`` = sequence index % interleave); ``first`` on element 0 of each
    sequence unless ``first_flags`` says otherwise.  With ``stop_at = k`` it presents element k (valid high),
    sets ``stopped`` and returns without waiting for its handshake (for a reset mid-transfer)."""

    def __init__(self, bench, seqs, pattern: Pattern, rng, first_flags=None, stop_at: int | None = None):
        self.b, self.pat, self.rng = bench, pattern, rng
        self.stop_at = stop_at
        self.stopped = Event()
        self.count = 0
        self.long_stalls = 0
        self.ready_stats = {}
        flags = first_flags or [1] * len(seqs)
        N = bench.cfg.interleave
        tag = (lambda s: {"seq": s % N}) if N > 1 else (lambda s: {})
        self.words = [bench.iword.pack(data=v, last=int(e == len(seqs[s][t]) - 1),
                                       first=int(t == 0 and e == 0 and flags[s]), **tag(s))
                      for s, t in interleaved_order(bench.cfg, [len(x) for x in seqs])
                      for e, v in enumerate(seqs[s][t])]

    async def run(self):
        d = self.b.dut
        for k, word in enumerate(self.words):
            gap = self.pat.gap(self.rng, k)
            if gap:
                self.long_stalls += gap > self.pat.short
                d.i__valid.value = 0
                await ClockCycles(d.clk, gap)
            d.i__payload.value = word
            d.i__valid.value = 1
            if k == self.stop_at:
                self.stopped.set()
                return
            while True:
                await ReadOnly()
                if d.i__ready.value == 1:
                    await RisingEdge(d.clk)
                    break
                await RisingEdge(d.i__ready)
            self.count += 1
        d.i__valid.value = 0


async def drive_ready(bench, pattern: Pattern, rng, stats: dict | None = None):
    """``o__ready`` high for random stretches, low for the pattern's gaps (forever; cancel it).
    ``stats`` receives the number of ``long`` stalls and of low-ready cycles."""
    d = bench.dut
    stats = {} if stats is None else stats
    stats.update(long=0, low_cycles=0)
    k = 0
    while True:
        d.o__ready.value = 1
        await ClockCycles(d.clk, int(rng.integers(1, pattern.run + 1)))
        gap = pattern.gap(rng, k)
        k += 1
        if gap:
            stats["long"] += gap > pattern.short
            stats["low_cycles"] += gap
            d.o__ready.value = 0
            await ClockCycles(d.clk, gap)


async def drive_drain(bench, drain: Drain):
    """``o__ready`` by an exact :class:`.stimulus.Drain`: low for the gap before each element, then high
    until that element is taken (forever; cancel it)."""
    d = bench.dut
    k = 0
    while True:
        gap = drain.gap_before(k)
        if gap:
            d.o__ready.value = 0
            await ClockCycles(d.clk, gap)
        d.o__ready.value = 1
        await ReadOnly()
        if d.o__valid.value != 1:
            await RisingEdge(d.o__valid)
        await RisingEdge(d.clk)  # valid and ready high: the transfer
        k += 1


async def write_weights(bench, pairs, pattern: Pattern, rng):
    """Send (addr, raw) pairs through the ``w`` stream (random gaps; ``w`` is always ready, so a write
    takes effect in the cycle it is valid)."""
    d = bench.dut
    for addr, value in pairs:
        gap = pattern.gap(rng)
        if gap:
            d.w__valid.value = 0
            await ClockCycles(d.clk, gap)
        d.w__payload.value = bench.wword.pack(addr=addr, data=value)
        d.w__valid.value = 1
        await RisingEdge(d.clk)
    d.w__valid.value = 0


async def stream_through(b, label: str, seqs, pin: Pattern, pout: Pattern, rng_in, rng_out, done, where,
                         first_flags=None) -> InputDriver:
    """Drive ``seqs`` on ``i`` (``pin`` gaps) with ``pout`` gaps (or an exact :class:`.stimulus.Drain`) on
    ``o.ready`` until the awaitable
    ``done`` completes (a hang limit fails it, with ``where()`` saying how far it got), then a few
    cycles with ready high, where an extra output would show."""
    d = b.dut
    drv = InputDriver(b, seqs, pin, rng_in, first_flags=first_flags)
    t_drv = b.spawn(drv.run())
    t_rdy = None
    if pout is NO_STALLS:
        d.o__ready.value = 1
    elif isinstance(pout, Drain):
        t_rdy = b.spawn(drive_drain(b, pout))
    else:
        t_rdy = b.spawn(drive_ready(b, pout, rng_out, drv.ready_stats))
    budget = b.budget_ns(sum(len(x) for x in seqs), pin, pout)
    try:
        await with_timeout(done, budget, "ns")
    except SimTimeoutError:
        raise BenchFailure(f"[{label}] timed out after {budget // PERIOD_NS} cycles: {where()}; "
                           f"input handshakes {drv.count} of {len(drv.words)}") from None
    await RisingEdge(d.clk)  # the last handshake; leave the ReadOnly phase
    if t_rdy is not None:
        t_rdy.cancel()
    d.o__ready.value = 1
    await ClockCycles(d.clk, b.cm.first_output_latency + 8)
    t_drv.cancel()
    return drv
