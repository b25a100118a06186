"""The cell's sub-components alone in Amaranth's simulator: input buffer, write decoder, MAC lane."""
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from model.config import Config
from model.datapath import Datapath
from rtl.input_buffer import InputBuffer
from rtl.layout import Layout
from rtl.mac_lane import MacLane
from rtl.write_port import WriteDecoder, regions

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def load(name):
    return Config.load(CONFIGS / f"{name}.toml")


def simulate(dut, *benches, cycles=None):
    """Run the testbenches to their end; with ``cycles`` (a clocked design) fail instead of hanging
    when they have not finished by then."""
    sim = Simulator(dut)
    sim.add_clock(1e-8, if_exists=True)
    done = []

    def finishing(bench):
        async def run(ctx):
            await bench(ctx)
            done.append(bench.__name__)
        return run

    for b in benches:
        sim.add_testbench(finishing(b))
    if cycles is None:
        sim.run()
    else:
        sim.run_until(cycles * 1e-8)
    assert len(done) == len(benches), f"testbenches still running after {cycles} cycles: done {done}"


def test_input_buffer_two_banks_backpressure_and_framing():
    """Three vectors sent with no reader: two banks fill and ready falls; each read returns the
    elements and the first flag the vector came with; a misplaced last raises err_framing on both
    wrong elements."""
    cfg = load("tiny")
    I = cfg.input_size
    dut = InputBuffer(cfg)
    vecs = [[5, -7, 100], [1, 2, 3], [-1, -2, -3]]
    firsts = [1, 0, 1]
    log = {"ready_low": False, "read": [], "sos": [], "err": 0}

    async def writer(ctx):
        for v, fst in zip(vecs, firsts):
            for e, x in enumerate(v):
                ctx.set(dut.i.payload, {"data": x, "last": int(e == I - 1), "first": int(fst and e == 0)})
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        # a vector whose last comes one element early
        for e in range(I):
            ctx.set(dut.i.payload, {"data": 0, "last": int(e == I - 2), "first": 0})
            ctx.set(dut.i.valid, 1)
            errs, = await ctx.tick().sample(dut.err_framing).until(dut.i.ready)
            log["err"] += errs
        ctx.set(dut.i.valid, 0)

    async def reader(ctx):
        await ctx.tick().repeat(3 * I + 5)
        log["ready_low"] = not ctx.get(dut.i.ready)  # both banks full, the third vector waits
        for _ in range(len(vecs)):
            await ctx.tick().until(dut.full)
            log["sos"].append(ctx.get(dut.sos))
            got = []
            for e in range(I):
                ctx.set(dut.rd_addr, e)
                ctx.set(dut.rd_en, 1)
                await ctx.tick()
                ctx.set(dut.rd_en, 0)
                got.append(ctx.get(dut.rd_data))
            log["read"].append(got)
            ctx.set(dut.release, 1)
            await ctx.tick()
            ctx.set(dut.release, 0)

    simulate(dut, writer, reader, cycles=500)
    assert log["ready_low"]
    assert log["read"] == vecs and log["sos"] == firsts
    assert log["err"] == 2  # last on element 1 (too early) and missing on element 2


def test_write_decoder_every_region_and_every_bad_address():
    """First and last offset of every region enable that region alone; the offset just past a
    region's depth and a region that does not exist enable nothing and pulse err_addr."""
    cfg = load("peephole")  # lanes, bias, an auxiliary region, h0 and c0
    lay = Layout.for_config(cfg)
    regs = regions(cfg)
    assert [k for k, _ in regs] == list(range(cfg.lanes + 4))
    assert [d for _, d in regs[-2:]] == [cfg.hidden_size] * 2
    dut = WriteDecoder(cfg)
    cases = []
    for k, depth in regs:
        cases += [((k << lay.offset_bits) | 0, 1 << k), ((k << lay.offset_bits) | (depth - 1), 1 << k)]
        if depth < 1 << lay.offset_bits:
            cases.append(((k << lay.offset_bits) | depth, None))
    if len(regs) < 1 << (lay.addr_bits - lay.offset_bits):
        cases.append((len(regs) << lay.offset_bits, None))
    seen = []

    async def bench(ctx):
        for addr, want in cases:
            ctx.set(dut.w.payload, {"addr": addr, "data": -3})
            ctx.set(dut.w.valid, 1)
            await ctx.delay(1e-9)
            seen.append((addr, want, ctx.get(dut.en), ctx.get(dut.err_addr), ctx.get(dut.data)))
        ctx.set(dut.w.valid, 0)
        await ctx.delay(1e-9)
        seen.append(("idle", 0, ctx.get(dut.en), ctx.get(dut.err_addr), -3))

    simulate(dut, bench)
    for addr, want, en, err, data in seen:
        assert (en, err) == ((want, 0) if want is not None else (0, 1)), addr
        assert data == -3


@pytest.mark.parametrize("name", ["tiny", "gru_small"])
def test_mac_lane_sums_rows_exactly(name):
    """Two rows through one lane: hold is sum(w * z << shift) over the row (x elements shifted by
    x_shift, h elements by h_shift), hold_x its x part, computed here with Python integers."""
    cfg = load(name)
    dp, lay = Datapath.from_config(cfg), Layout.for_config(cfg)
    I, K = cfg.input_size, lay.slot_cycles
    rng = np.random.default_rng(3)
    wf, zf = cfg.fmt("weight"), cfg.fmt("input")
    init = [int(v) for v in rng.integers(wf.min_int, wf.max_int + 1, lay.lane_depth)]
    z = rng.integers(zf.min_int, zf.max_int + 1, 2 * K)
    dut = MacLane(cfg, init)
    holds = []

    op = MacLane.OPERANDS

    async def bench(ctx):
        n = 2 * K
        for t in range(n + 7):
            if t < n:                                            # stage 0: the weight read
                ctx.set(dut.rd_addr, t)
            if 0 <= t - op + 1 < n:                              # the operands, a stage before theirs
                ctx.set(dut.z, int(z[t - op + 1]))
            u = t - op - 1                                       # the controls' stage
            on = 0 <= u < n
            j = u % K
            for sig, val in ((dut.valid, on), (dut.first, on and j == 0), (dut.is_x, on and j < I),
                             (dut.x_end, on and j == I - 1), (dut.last, on and j == K - 1)):
                ctx.set(sig, int(val))
            await ctx.tick()
            if on and j == K - 1:
                await ctx.delay(1e-9)
                holds.append((ctx.get(dut.hold), ctx.get(dut.hold_x)))

    simulate(dut, bench)
    for r in range(2):
        xs = sum(init[r * K + j] * int(z[r * K + j]) << dp.x_shift for j in range(I))
        hs = sum(init[r * K + j] * int(z[r * K + j]) << dp.h_shift for j in range(I, K))
        assert holds[r] == (xs + hs, xs), r


@pytest.mark.parametrize("name", ["tiny", "gru_small", "gru_before_small"])
def test_serializer_hands_over_every_row_in_schedule_order(name):
    """One done pulse per slot (slots spaced as the lanes space them): every hardware row comes out
    once, in order, with the lane that holds it and the unit and gate model.cycles.Schedule gives it;
    a slot finishing while the last one is still being handed over is an overrun."""
    from model.cycles import Schedule
    from rtl.serializer import Serializer
    cfg = load(name)
    sch = Schedule.for_config(cfg)
    dut = Serializer(cfg)
    got, overruns = [], []

    async def bench(ctx):
        for k in range(sch.slots):
            ctx.set(dut.done, 1)
            ctx.set(dut.slot, k)
            ctx.set(dut.bank, k % 2)
            await ctx.tick()
            ctx.set(dut.done, 0)
            for _ in range(sch.slot_cycles - 1):
                if ctx.get(dut.valid):
                    got.append((ctx.get(dut.lane), ctx.get(dut.row), ctx.get(dut.unit), ctx.get(dut.gate),
                                ctx.get(dut.row_bank)))
                await ctx.tick()
        # two full slots one cycle apart: the second arrives with the first still being handed over
        ctx.set(dut.done, 1)
        ctx.set(dut.slot, 0)
        overruns.append(ctx.get(dut.overrun))  # idle: no overrun
        await ctx.tick()
        overruns.append(ctx.get(dut.overrun))  # busy with cfg.lanes rows, one handed over
        await ctx.tick()
        ctx.set(dut.done, 0)

    simulate(dut, bench, cycles=(sch.slots + 2) * sch.slot_cycles)
    want = []
    for k in range(sch.slots):
        base = sum(sch.slot_rows[:k])
        want += [(r - base, r, *sch.unit_gate(r), k % 2) for r in range(base, base + sch.slot_rows[k])]
    assert got == want
    assert overruns == [0, int(cfg.lanes > 1)]
