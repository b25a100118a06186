"""The cocotb tests of the cell bench (``sim.runner.TEST_MODULE``); each body fits on a screen.

Speed: the clock is cocotb's GPI clock; Python wakes only on events (a handshake,
``RisingEdge(o__valid)``, ``RisingEdge(i__ready)``, ``ClockCycles`` with counts), never on every
clock edge, except while writing weights (one write per cycle).
"""
from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, with_timeout

from model import golden
from model.params import CellParams, quantize
from rtl.layout import write_stream

from .cycle_check import check_cycles
from .driver import InputDriver, drive_ready, write_weights
from .harness import Bench
from .report import BenchFailure, finish, save_stimulus
from .settings import rng_for
from .soak import soak
from .stimulus import (MILD, NO_STALLS, STALLS_IN, STALLS_OUT, TRICKLE, WRITE_GAPS, file_sequences, long_ready_low,
                       make_sequences, reset_phases)
from .stress import reset_in_phase, writes_during_a_sequence
from .tester import start


async def guarded(b: Bench, t, body, extra: dict):
    """Run ``body``; on a failure still write the report (naming the error), then give the verdict."""
    err = None
    try:
        await body()
    except BenchFailure as e:
        err = str(e)
    finish(b, t, extra, error=err)


@cocotb.test()
async def test_cycles(dut):
    """No backpressure, sequences back to back (an interleaved cell's in whole groups, taking turns):
    bit-exact, cycles per step and first-output latency EQUAL to model.cycles, MAC utilization reported,
    h against the float reference."""
    b, t = await start(dut, "test_cycles")
    s = b.s
    n = -(-s.seqs // b.cfg.interleave) * b.cfg.interleave  # whole groups of interleaved sequences
    seqs = file_sequences(b.cfg, s.inputs) or make_sequences(b.cfg, rng_for(s.seed, b.test, 0), [s.steps] * n)
    save_stimulus(b, "cycles", seqs)
    extra = {}

    async def body():
        await t.stream("cycles", seqs, NO_STALLS, NO_STALLS, rng_for(s.seed, b.test, 1), None)
        extra["last_h"] = t.board.last_h()
        check_cycles(b, t, seqs, extra)

    await guarded(b, t, body, extra)


@cocotb.test()
async def test_stalls(dut):
    """Random valid/ready on both streams (seeded, with long stalls); several sequences of random
    length back to back, so a new sequence starts in the middle of the run."""
    b, t = await start(dut, "test_stalls")
    s = b.s
    seqs = file_sequences(b.cfg, s.inputs)
    if seqs is None:
        rng = rng_for(s.seed, b.test, 0)
        lengths = [s.steps] + [int(n) for n in rng.integers(1, s.steps + 1, max(s.seqs - 1, 1))]
        seqs = make_sequences(b.cfg, rng, lengths)
    save_stimulus(b, "stalls", seqs)
    extra = {"lengths": [len(x) for x in seqs]}

    async def body():
        drv = await t.stream("stalls", seqs, STALLS_IN, STALLS_OUT, rng_for(s.seed, b.test, 1),
                             rng_for(s.seed, b.test, 2))
        extra.update(long_stalls_in=drv.long_stalls, long_stalls_out=drv.ready_stats["long"],
                     ready_low_cycles=drv.ready_stats["low_cycles"])
        b.log.info("stalls: %d long input stalls, %d long output stalls, ready low %d cycles",
                   drv.long_stalls, drv.ready_stats["long"], drv.ready_stats["low_cycles"])
        if not (drv.long_stalls and drv.ready_stats["long"]):
            raise BenchFailure("the run had no long stall on one of the streams")

    await guarded(b, t, body, extra)


@cocotb.test()
async def test_weight_reload(dut):
    """Baked parameters A checked; parameters B written through the ``w`` stream (random gaps);
    outputs follow B; A written back (memories survive reset) and checked again."""
    b, t = await start(dut, "test_weight_reload")
    s, cfg = b.s, b.cfg
    rng = rng_for(s.seed, b.test, 0)
    # B is random even when the config names trained parameters
    qb = quantize(CellParams.random(cfg.kind, cfg.input_size, cfg.hidden_size, seed=s.param_seed + 1000,
                                    **cfg.options), cfg)
    xa, xb, xc = [make_sequences(cfg, rng, n) for n in ([4, 3], [5, 3], [3])]
    extra = {}

    def r(k):
        return rng_for(s.seed, b.test, k)

    async def body():
        await t.stream("reload/before (baked A)", xa, MILD, MILD, r(1), r(2))
        await RisingEdge(dut.clk)
        pairs = write_stream(cfg, qb)
        await write_weights(b, pairs, WRITE_GAPS, r(3))
        t.model.load(qb)
        differs = any(not np.array_equal(golden.run(b.q, x[None], cfg).outputs, golden.run(qb, x[None], cfg).outputs)
                      for x in xb)
        extra.update({"writes": len(pairs), "b_differs_from_a": differs})
        if not differs:
            raise BenchFailure("parameters A and B give the same outputs: the reload check would prove nothing")
        await t.stream("reload/after (written B)", xb, MILD, MILD, r(4), r(5))
        # write A back (memories keep their contents across resets and later tests) and check it
        await write_weights(b, write_stream(cfg, b.q), WRITE_GAPS, r(6))
        t.model.load(b.q)
        await t.stream("reload/restored (written A)", xc, MILD, MILD, r(7), r(8))

    await guarded(b, t, body, extra)


@cocotb.test()
async def test_long_sequence(dut):
    """One sequence of LONG_STEPS (1,000) steps with mild random stalls."""
    b, t = await start(dut, "test_long_sequence")
    s = b.s
    seqs = make_sequences(b.cfg, rng_for(s.seed, b.test, 0), [s.long_steps])

    async def body():
        await t.stream("long", seqs, MILD, MILD, rng_for(s.seed, b.test, 1), rng_for(s.seed, b.test, 2))

    await guarded(b, t, body, {"long_steps": s.long_steps})


@cocotb.test()
async def test_reset_recovery(dut):
    """Reset in the middle of transfers, twice: (0) x(t) half written and its next element pending
    (i__valid high at the reset edge), the first vector after reset sent WITHOUT ``first`` (reset
    alone must start a new sequence); (1) an h element stalled on the output (o__valid high,
    o__ready low at the reset edge) while x elements keep coming.  The model follows the DUT:
    outputs before the reset match as far as they go; after it, o__valid and status are 0 and a
    new sequence matches."""
    b, t = await start(dut, "test_reset_recovery")
    rng = rng_for(b.s.seed, b.test, 0)
    extra = {"resets": []}

    async def body():
        for rnd, abort in enumerate((abort_with_input_pending, abort_with_output_stalled)):
            t.phase(f"reset{rnd}/before", 6 * b.H)
            where = await abort(b, t, make_sequences(b.cfg, rng, [6]), rng, rnd)
            hold = int(rng.integers(2, 6))
            extra["resets"].append({"round": rnd, "where": where, "cycles": hold, "cycle": b.cycle() - b.c0})
            b.log.info("reset %d: %s; rst held %d cycles", rnd, where, hold)
            await b.reset(hold, ready=int(rng.integers(0, 2)), keep_first=True)
            await ReadOnly()
            st = b.status()
            if dut.o__valid.value != 0 or any(st.values()):
                raise BenchFailure(f"after reset {rnd}: o__valid = {dut.o__valid.value}, status {st} (expected all 0)")
            await RisingEdge(dut.clk)
            await t.stream(f"reset{rnd}/after", make_sequences(b.cfg, rng, [5]), STALLS_IN, STALLS_OUT,
                           rng_for(b.s.seed, b.test, 30 + rnd), rng_for(b.s.seed, b.test, 40 + rnd),
                           first_flags=[1 if rnd else 0])

    await guarded(b, t, body, extra)


async def abort_with_input_pending(b: Bench, t, xa, rng, rnd: int) -> str:
    """Drive ``xa`` until a random element k in its second half is presented, and leave it pending."""
    k = int(rng.integers(3 * b.I + 1, len(xa[0]) * b.I - 1))
    if k % b.I == 0:
        k += 1
    drv = InputDriver(b, xa, STALLS_IN, rng_for(b.s.seed, b.test, 10 + rnd), stop_at=k)
    tasks = [b.spawn(drv.run()), b.spawn(drive_ready(b, STALLS_OUT, rng_for(b.s.seed, b.test, 20 + rnd)))]
    await with_timeout(drv.stopped.wait(), b.budget_ns(6, STALLS_IN, STALLS_OUT), "ns")
    for task in tasks:
        task.cancel()
    return f"x element {k} presented (step {k // b.I}, element {k % b.I}), {t.received()} h elements received"


async def abort_with_output_stalled(b: Bench, t, xa, rng, rnd: int) -> str:
    """Drive ``xa``; after a random number of h elements, hold an output transfer (valid high, ready low)."""
    d = b.dut
    m = int(rng.integers(b.H + 1, 4 * b.H))
    drv = InputDriver(b, xa, MILD, rng_for(b.s.seed, b.test, 10 + rnd))
    t_drv, t_rdy = b.spawn(drv.run()), b.spawn(drive_ready(b, MILD, rng_for(b.s.seed, b.test, 20 + rnd)))
    await with_timeout(t.board.wait_for(t.board.n + m), b.budget_ns(6, MILD, MILD), "ns")
    await RisingEdge(d.clk)
    t_rdy.cancel()
    d.o__ready.value = 0
    await ReadOnly()
    if d.o__valid.value != 1:
        await with_timeout(RisingEdge(d.o__valid), b.budget_ns(2), "ns")
    await RisingEdge(d.clk)          # one stalled cycle: valid high, ready low
    await ReadOnly()
    if not (d.o__valid.value == 1 and d.o__ready.value == 0):
        raise BenchFailure("could not set up a stalled output transfer before reset")
    await RisingEdge(d.clk)
    t_drv.cancel()
    return f"output stalled with valid high after {t.received()} h elements, {drv.count} x elements in"


@cocotb.test()
async def test_stress(dut):
    """Patterns random stalls rarely make: the trickle drain (ready low 3,000 cycles, then one element
    per 400); ready low for longer than three steps; 21 sequences, 20 of one step (a burst of
    ``first``); parameter writes in the middle of a sequence (:mod:`.stress`); a reset in each phase
    of a step (loading x, MAC, post-processing, draining), each followed by a fresh sequence."""
    b, t = await start(dut, "test_stress")
    cfg = b.cfg
    rng = rng_for(b.s.seed, b.test, 0)
    extra = {}

    def r(k):
        return rng_for(b.s.seed, b.test, k)

    async def body():
        await t.stream("stress/trickle drain", make_sequences(cfg, rng, [6, 6]), NO_STALLS, TRICKLE, r(1), None)
        await t.stream("stress/ready low > 3 steps", make_sequences(cfg, rng, [5, 3]), MILD, long_ready_low(cfg),
                       r(2), None)
        await t.stream("stress/burst of first", make_sequences(cfg, rng, [1] * 16 + [3] + [1] * 4), STALLS_IN,
                       STALLS_OUT, r(3), r(4))
        await writes_during_a_sequence(b, t, rng, extra)
        for phase in reset_phases(cfg):
            await reset_in_phase(b, t, phase, rng, extra)

    await guarded(b, t, body, extra)


@cocotb.test()
async def test_soak(dut):
    """RNNKIT_SOAK_STEPS steps (default 100,000) in long sequences with random resets and parameter
    reloads (:mod:`.soak`), every h bit-exact; the report gives the counts, cycles and steps per second."""
    b, t = await start(dut, "test_soak")
    extra = {}

    async def body():
        extra["soak"] = await soak(b, t, b.s.soak_steps)
        b.log.info("soak: %s", extra["soak"])

    await guarded(b, t, body, extra)


@cocotb.test()
async def test_checker_selftest(dut):
    """The checkers catch what they must: on a stalled input transfer, a payload change and a
    dropped valid; on 4-state Icarus, X data on one x element reaching o__payload."""
    b = Bench(dut, "test_checker_selftest")
    b.raise_on_violation = False
    await b.start()
    problems = await stall_and_break_input(b)
    n_proto = len(b.violations)
    await b.reset(2)
    await RisingEdge(dut.clk)
    x_caught = None
    if b.s.sim == "icarus":
        x_caught = await x_through_the_cell(b, n_proto)
        if not x_caught:
            problems.append("X data on an x element did not show up as X/Z on o__payload")
    else:
        b.log.info("X/Z check self-test skipped: %s is 2-state", b.s.sim)
    await RisingEdge(dut.clk)
    caught, b.violations = list(b.violations), []  # expected ones; the report keeps them under 'caught'
    finish(b, None, {"caught": caught, "x_caught": x_caught}, error="; ".join(problems) or None)


async def stall_and_break_input(b: Bench) -> list[str]:
    """Hold the output until i__ready falls, then change the stalled payload and drop valid."""
    d, I = b.dut, b.I
    d.o__ready.value = 0  # credits run out, both x banks fill, i__ready falls
    lo = b.iword.field("data").signed and -(1 << (b.in_w - 1))
    for k in range(50 * (I + 1) * 4):
        d.i__payload.value = b.iword.pack(data=lo + k % (1 << b.in_w), last=int(k % I == I - 1), first=int(k == 0))
        d.i__valid.value = 1
        await ReadOnly()
        if d.i__ready.value == 0:
            break
        await RisingEdge(d.clk)
    else:
        return ["could not stall the input stream with o__ready low"]
    await RisingEdge(d.clk)
    d.i__payload.value = b.iword.pack(data=lo + (k + 1) % (1 << b.in_w), last=int(k % I == I - 1),
                                      first=0)  # changed while stalled
    await RisingEdge(d.clk)
    await RisingEdge(d.clk)
    d.i__valid.value = 0                                                # dropped while stalled
    await ClockCycles(d.clk, 3)
    problems = []
    if not any("i__payload changed" in v for v in b.violations):
        problems.append(f"payload change on a stalled transfer not reported (violations: {b.violations})")
    if not any("i__valid dropped" in v for v in b.violations):
        problems.append(f"valid drop on a stalled transfer not reported (violations: {b.violations})")
    return problems


async def x_through_the_cell(b: Bench, n_proto: int) -> bool:
    """Send a sequence whose first x element is X; the X/Z checker must see X on o__payload."""
    from cocotb.types import LogicArray  # noqa: PLC0415
    d = b.dut
    d.o__ready.value = 1
    seq = make_sequences(b.cfg, rng_for(b.s.seed, b.test, 0), [2])[0]
    drv = InputDriver(b, [seq], NO_STALLS, rng_for(b.s.seed, b.test, 1))
    drv.words[0] = LogicArray("1" + ("1" if b.I == 1 else "0") + "X" * b.in_w)  # first=1, last, data X
    t = b.spawn(drv.run())
    await ClockCycles(d.clk, 2 * b.cm.first_output_latency + 4 * b.cm.cycles_per_step)
    t.cancel()
    caught = any("X/Z" in v for v in b.violations[n_proto:])
    await RisingEdge(d.clk)
    await b.reset(2)
    return caught
