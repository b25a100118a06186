"""The soak loop of ``test_soak``: many steps in long sequences, with random resets and parameter reloads.

Segments of 20 to 200 steps go through with random stalls on both streams; most continue the sequence
before them (no ``first``), so sequences run for thousands of steps.  Between segments, with
set chances, a new sequence starts, new parameters are written through ``w`` (no step in
flight: they hold from the next step, the state carries over), or a segment is cut by a
reset at a random cycle.  The first four actions are fixed (segment, reload, segment, cut),
with short segments, so even a short soak takes both paths.  Every h element is checked bit-exact by the scoreboard.
"""
from __future__ import annotations

import time

from cocotb.triggers import ClockCycles, RisingEdge

from rtl.layout import write_stream

from .driver import InputDriver, drive_ready, write_weights
from .settings import rng_for
from .stimulus import MILD, NO_STALLS, Pattern, make_sequences
from .stress import other_params

#: Chances per action after the first four: reset (mid-segment), reload, new sequence; else a segment.
P_RESET, P_RELOAD, P_NEW = 0.03, 0.08, 0.03
SEGMENT_STEPS = (20, 200)
#: o.ready: long high stretches with a gap of up to 20 cycles after three in ten (few wake-ups per step).
READY = Pattern(p=0.3, short=20, run=300)
POOL = 4  # parameter sets the reloads choose from (the baked one included)


async def soak(b, t, steps: int) -> dict:
    """Run until the model has computed ``steps`` steps; return the counts and the timing."""
    cfg, d, s = b.cfg, b.dut, b.s
    rng = rng_for(s.seed, b.test, 0)
    pool = [b.q] + [other_params(b, 10 + k) for k in range(POOL - 1)]
    counts = {"segments": 0, "resets": 0, "reloads": 0, "new_sequences": 0}
    longest = 0
    t0, c0 = time.perf_counter(), b.cycle()
    script = ["segment", "reload", "segment", "cut"]
    k = 0
    while t.model.steps < steps:
        k += 1
        u = rng.random()
        scripted = bool(script)
        action = script.pop(0) if scripted else (
            "cut" if u < P_RESET else "reload" if u < P_RESET + P_RELOAD else
            "new" if u < P_RESET + P_RELOAD + P_NEW else "segment")
        n = int(min(rng.integers(*SEGMENT_STEPS, endpoint=True), steps - t.model.steps,
                    max(2, (steps - t.model.steps) // 8) if scripted else steps))
        if action == "reload":
            q = pool[int(rng.integers(len(pool)))]
            await write_weights(b, write_stream(cfg, q), NO_STALLS, rng)
            t.model.load(q)
            counts["reloads"] += 1
            continue
        seqs = make_sequences(cfg, rng, [n])
        if action == "cut":  # by a reset
            t.phase(f"soak/{k} (reset)", n * b.H)
            drv = InputDriver(b, seqs, MILD, rng_for(s.seed, b.test, 2 * k), first_flags=[0])
            tasks = [b.spawn(drv.run()), b.spawn(drive_ready(b, READY, rng_for(s.seed, b.test, 2 * k + 1)))]
            await ClockCycles(d.clk, int(rng.integers(1, n * b.cm.cycles_per_step)))
            for task in tasks:
                task.cancel()
            await b.reset(int(rng.integers(1, 4)), ready=int(rng.integers(0, 2)))
            await RisingEdge(d.clk)
            counts["resets"] += 1
        else:
            counts["segments"] += 1
            counts["new_sequences"] += action == "new"
            await t.stream(f"soak/{k}", seqs, MILD, READY, rng_for(s.seed, b.test, 2 * k),
                           rng_for(s.seed, b.test, 2 * k + 1), first_flags=[int(action == "new")])
        longest = max(longest, t.model.t)
    wall = time.perf_counter() - t0
    return {**counts, "steps": t.model.steps, "sequences": t.model.sequence + 1, "longest_sequence": longest,
            "cycles": b.cycle() - c0, "wall": wall, "steps_per_second": t.model.steps / wall}
