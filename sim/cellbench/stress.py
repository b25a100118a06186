"""Stress scenarios of ``test_stress``: parameter writes in the middle of a sequence and a reset in each
phase of a step.

The write rules are the cell's (``docs/gateware.md``, "Writes during a sequence"): a write lands only
while no step is in flight and holds from the next step; a step waits for a burst of writes; a write
while a step is in flight is dropped and sets ``err_busy``.  The model follows by loading new
parameters exactly where the rules say they apply.
"""
from __future__ import annotations

from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

from model.params import CellParams, quantize
from rtl.layout import Layout, write_stream

from .driver import InputDriver, drive_drain, write_weights
from .report import BenchFailure
from .settings import rng_for
from .stimulus import MILD, NO_STALLS, Drain, make_sequences, reset_phases


async def accepted(b, t, n: int, what: str):
    """Until the input monitor has seen ``n`` x elements in all, within the hang limit of one step."""
    async def wait():
        while len(t.in_mon.cycles) < n:
            await RisingEdge(b.dut.clk)
    try:
        await with_timeout(wait(), b.budget_ns(1), "ns")
    except SimTimeoutError:
        raise BenchFailure(f"[{what}] timed out: {len(t.in_mon.cycles)} of {n} x elements accepted") from None


def other_params(b, k: int):
    """Random parameters other than the baked ones (``k`` picks which)."""
    cfg = b.cfg
    return quantize(CellParams.random(cfg.kind, cfg.input_size, cfg.hidden_size, seed=b.s.param_seed + 1000 * k,
                                      **cfg.options), cfg)


def first_differing_words(b, q) -> list:
    """The first (addr, data) of ``q`` in every write region whose word differs from the baked one."""
    lay = Layout.for_config(b.cfg)
    baked = dict(write_stream(b.cfg, b.q))
    words = {}
    for addr, value in write_stream(b.cfg, q):
        if value != baked[addr]:
            words.setdefault(addr >> lay.offset_bits, (addr, value))
    return list(words.values())


async def writes_during_a_sequence(b, t, rng, extra: dict):
    """(1) B written between steps 2 and 3 of a sequence: steps 3.. follow B from A's state.  (2) A
    written back while x(0) of the next sequence arrives: that step waits for the burst and follows A;
    its first h leaves after the last write.  (3) Words of B sent while a step is in flight: all
    dropped (outputs follow A), ``err_busy`` set; a reset clears it."""
    cfg, d = b.cfg, b.dut

    def r(k):
        return rng_for(b.s.seed, b.test, 100 + k)

    qb = other_params(b, 2)
    x = make_sequences(cfg, rng, [6])[0]
    await t.stream("stress/writes: steps 0-2 (A)", [x[:3]], MILD, MILD, r(0), r(1))
    await write_weights(b, write_stream(cfg, qb), NO_STALLS, r(2))
    t.model.load(qb)
    await t.stream("stress/writes: steps 3-5 (B written between steps)", [x[3:]], MILD, MILD, r(3), r(4),
                   first_flags=[0])

    ends = []

    async def burst():
        await write_weights(b, write_stream(cfg, b.q), NO_STALLS, r(5))
        ends.append(b.cycle())

    t.model.load(b.q)
    n0 = len(t.board.cycles)
    b.spawn(burst())
    await ClockCycles(d.clk, 2)
    await t.stream("stress/writes: a step waits for a burst (A)", make_sequences(cfg, rng, [3]), NO_STALLS,
                   NO_STALLS, r(6), None)
    if not ends or t.board.cycles[n0] <= ends[0]:
        raise BenchFailure(f"the step after a write burst did not wait for it: first h at cycle "
                           f"{t.board.cycles[n0]}, last write at {ends}")

    words = first_differing_words(b, qb)
    n_in = len(t.in_mon.cycles)
    task = b.spawn(t.stream("stress/writes: refused while a step is in flight (A)", make_sequences(cfg, rng, [3]),
                            NO_STALLS, NO_STALLS, r(7), None))
    await accepted(b, t, n_in + b.I, "stress/writes: x(0) before the refused writes")  # step 0 starts
    await ClockCycles(d.clk, 3)
    await write_weights(b, words, NO_STALLS, r(8))
    await task
    await ReadOnly()
    busy = b.status()["err_busy"]
    extra["writes"] = {"between_steps": len(write_stream(cfg, qb)), "burst_end_cycle": ends[0] - b.c0,
                       "refused": len(words), "err_busy": busy}
    if busy != 1:
        raise BenchFailure(f"{len(words)} writes while a step was in flight did not set err_busy")
    await RisingEdge(d.clk)
    await b.reset(2)
    await RisingEdge(d.clk)


async def reset_in_phase(b, t, phase: str, rng, extra: dict):
    """A one-step sequence cut by a reset in ``phase`` (:func:`.stimulus.reset_phases`; for ``loading`` the
    input stops after its first element), then o__valid and every status bit 0, then a sequence sent
    without ``first`` matches the model from a fresh state."""
    d = b.dut
    offset, most, gap = reset_phases(b.cfg)[phase]
    t.phase(f"stress/reset in {phase}", b.H)
    n_in = len(t.in_mon.cycles)
    drv = InputDriver(b, make_sequences(b.cfg, rng, [1]), NO_STALLS, rng, stop_at=1 if phase == "loading" else None)
    tasks = [b.spawn(drv.run())]
    await accepted(b, t, n_in + 1, f"stress/reset in {phase}: the first x element")
    if phase == "loading":
        await drv.stopped.wait()  # element 1 is up: the driver stops there
        d.i__valid.value = 0      # and it is not offered after all: x(0) stays partly loaded
    if gap:
        tasks.append(b.spawn(drive_drain(b, Drain(first=0, gap=gap))))
    else:
        d.o__ready.value = 1
    start = t.in_mon.cycles[n_in]
    await ClockCycles(d.clk, max(1, start + offset - b.cycle()))
    for task in tasks:
        task.cancel()
    got, x_in = t.received(), len(t.in_mon.cycles) - n_in
    await b.reset(3)
    await ReadOnly()
    st = b.status()
    if d.o__valid.value != 0 or any(st.values()):
        raise BenchFailure(f"after a reset in {phase}: o__valid = {d.o__valid.value}, status {st} (expected all 0)")
    if got > most or (x_in < b.I) != (phase == "loading"):
        raise BenchFailure(f"{got} h elements left and {x_in} of {b.I} x elements came before the reset: "
                           f"it did not hit the {phase} phase")
    extra.setdefault("resets", []).append({"phase": phase, "offset": offset, "h_before": got, "x_before": x_in})
    await RisingEdge(d.clk)
    await t.stream(f"stress/after a reset in {phase}", make_sequences(b.cfg, rng, [3]), MILD, MILD,
                   rng_for(b.s.seed, b.test, 200 + len(extra["resets"])), rng, first_flags=[0])
