"""The gate pipeline (every registered cell kind) in Amaranth's simulator.

Bit-exact with ``model.golden``; cycle counts as ``model.cycles`` predicts.
"""
import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from model import golden
from model.config import Config
from model.cycles import CycleModel
from model.params import CellParams, quantize
from rtl.cell import HardwareLimitError, RecurrentCell
from rtl.layout import Layout, write_stream
from sim import amsim

CONFIGS = Path(__file__).parent.parent / "configs"


def load(name):
    return Config.load(CONFIGS / f"{name}.toml")


def sequences(cfg, lengths, seed):
    rng = np.random.default_rng(seed)
    return [golden.quantize_input(rng.uniform(-2, 2, (1, n, cfg.input_size)), cfg)[0] for n in lengths]


def assert_runs_as_modelled(cfg, seed=1):
    """Random parameters and two 4-step sequences: bit-exact, and every step and the first output take
    exactly the cycles ``model.cycles`` predicts for the latencies in force."""
    cm = CycleModel.for_config(cfg)
    q = quantize(CellParams.for_config(cfg, seed=seed), cfg)
    seqs = sequences(cfg, (4, 4), seed=seed)
    res = amsim.run(cfg, q, seqs)
    assert_matches_golden(cfg, q, seqs, res)
    assert res.step_cycles(cfg.hidden_size).tolist() == [cm.cycles_per_step] * 3 + [cm.first_step_cycles] \
        + [cm.cycles_per_step] * 3
    assert res.out_cycles[0] - res.in_cycles[0] == cm.first_output_latency


def assert_matches_golden(cfg, q, seqs, res):
    for n, (x, got) in enumerate(zip(seqs, res.outputs)):
        want = golden.run(q, x[None], cfg).outputs[0]
        bad = np.argwhere(got != want)
        assert bad.size == 0, (f"sequence {n}: {len(bad)} mismatches, first at step {bad[0][0]} element "
                               f"{bad[0][1]}: expected {want[tuple(bad[0])]}, got {got[tuple(bad[0])]}")
    hidden = cfg.hidden_size
    assert res.last_flags == [int(e % hidden == hidden - 1) for e in range(len(res.last_flags))]
    starts = np.cumsum([0] + [len(x) * hidden for x in seqs[:-1]])  # element 0 of each sequence's first h
    assert res.first_flags == [int(e in starts) for e in range(len(res.first_flags))]


@pytest.mark.parametrize("name", ["tiny", "odd", "peephole", "peephole_cnew", "gru_small", "gru_before_small",
                                  "cifg_small"])
def test_bit_exact_under_backpressure(name):
    """Random idle input cycles and low ready on the output; three sequences back to back."""
    cfg = load(name)
    q = quantize(CellParams.for_config(cfg, seed=4, scale=1.0), cfg)
    seqs = sequences(cfg, (5, 1, 4), seed=9)
    res = amsim.run(cfg, q, seqs, seed=2, in_idle=0.4, out_stall=0.4, max_stall=30)
    assert_matches_golden(cfg, q, seqs, res)
    assert not res.status["err_framing"] and not res.status["err_overrun"]


def test_default_config_bit_exact():
    """Default size (input 13, hidden 100, 16 lanes); a new sequence starts in the middle of the run."""
    cfg = load("default")
    q = quantize(CellParams.for_config(cfg, seed=1), cfg)
    seqs = sequences(cfg, (2, 2), seed=3)
    res = amsim.run(cfg, q, seqs, seed=5, in_idle=0.2, out_stall=0.2, max_stall=40)
    assert_matches_golden(cfg, q, seqs, res)


@pytest.mark.parametrize("name", ["tiny", "odd", "peephole", "peephole_cnew", "gru_small",
                                  "gru_before_small", "cifg_small"])
def test_cycles_match_model(name):
    """Streams never stall: every step takes exactly the modelled cycles, first output on time.  (The
    full-size configs' cycles are checked on the exported Verilog, in tests/test_cocotb.py.)"""
    cfg = load(name)
    cm = CycleModel.for_config(cfg)
    steps = 2 if cfg.hidden_size >= 100 else 4
    q = quantize(CellParams.for_config(cfg, seed=1), cfg)
    res = amsim.run(cfg, q, sequences(cfg, (steps, steps), seed=1))
    per_step = res.step_cycles(cfg.hidden_size).tolist()
    want = [cm.cycles_per_step] * (steps - 1) + [cm.first_step_cycles] + [cm.cycles_per_step] * (steps - 1)
    assert per_step == want
    assert res.out_cycles[0] - res.in_cycles[0] == cm.first_output_latency


@pytest.mark.parametrize("name", ["peephole", "gru_small", "gru_before_small", "cifg_small"])
def test_weight_reload_through_write_port(name):
    """Built with parameters A, loaded with B through the write port (weights, bias, peephole
    or b_hn region): outputs follow B."""
    cfg = load(name)
    qa = quantize(CellParams.for_config(cfg, seed=1), cfg)
    qb = quantize(CellParams.for_config(cfg, seed=2), cfg)
    seqs = sequences(cfg, (3,), seed=4)
    res = amsim.run(cfg, qa, seqs, writes=write_stream(cfg, qb))
    assert_matches_golden(cfg, qb, seqs, res)
    assert not np.array_equal(golden.run(qa, seqs[0][None], cfg).outputs[0], res.outputs[0])


@pytest.mark.parametrize("name,formats,point,bit", [
    ("tiny", {"cell": "s1.10"}, "cell", "sat_cell"),
    ("gru_small", {"pre": "s2.10"}, "gru_hn", "sat_hn"),
    ("cifg_small", {"cell": "s1.6"}, "cell", "sat_cell"),
])
def test_saturation_reported(name, formats, point, bit):
    """A format too narrow for the data (LSTM: c(t); reset-after GRU: W_hn h + b_hn in the pre
    format): the golden model counts saturations at that point and the status bit is set."""
    cfg = load(name).replace(formats=formats)
    q = quantize(CellParams.for_config(cfg, seed=1, scale=2.0), cfg)
    seqs = [np.full((6, cfg.input_size), cfg.fmt("input").max_int, dtype=np.int64)]
    res = amsim.run(cfg, q, seqs)
    assert golden.run(q, seqs[0][None], cfg).saturated[point] > 0
    assert res.status[bit] == 1
    assert_matches_golden(cfg, q, seqs, res)


def test_gru_reset_before_pass2_waits_for_rh():
    """Reset-before GRU, input 1, hidden 6, 7 lanes: slots of K = 7 cycles, pass 1 (12 r/z rows)
    takes 2 slots, pass 2 (6 n rows) 1 slot.  Row r5 (the last r row) is lane 5 of slot 0:
    counting from the step's first issue, slot 0's last issue is cycle 6, r5 enters the
    post-processor at 6 + 6 (lanes) + 5 = 17 and r*h is complete at 17 + 12 = 29, but pass 2
    wants its first h element at 2*7 + 1 = 15: a 14-cycle wait.  h(t) is done at
    6 + 6 - 1 + 14 + 1 = 26 cycles after the step's last issue; the next step wants it after
    1 + 1 = 2: a 24-cycle wait.  Steady state 3*7 + 14 + 24 = 59 cycles per step, the first
    step of a sequence 3*7 + 14 = 35 (it waits for r*h0, computed from the initial state, but not
    for h)."""
    cfg = load("gru_before_small").replace(input_size=1, hidden_size=6, lanes=7)
    cm = CycleModel.for_config(cfg)
    assert (cm.rh_wait, cm.h_wait, cm.cycles_per_step, cm.first_step_cycles) == (14, 24, 59, 35)
    q = quantize(CellParams.for_config(cfg, seed=3, scale=1.0), cfg)
    seqs = sequences(cfg, (4, 3), seed=2)
    res = amsim.run(cfg, q, seqs)
    assert_matches_golden(cfg, q, seqs, res)
    assert res.step_cycles(cfg.hidden_size).tolist() == [59, 59, 59, 35, 59, 59]


def test_step_waits_for_the_step_two_before():
    """Reset-before GRU, input 2, hidden 2, 4 lanes: 2 slots of K = 4 cycles (pass 1: 4 r/z rows,
    pass 2: 2 n rows), so a step issues in 8 cycles plus the r*h wait of 16 at pass 2 (a sequence's
    first step has it too: r*h0); its last h is done 6 (lanes) + 2 - 1 + 14 + 1 = 22 cycles after
    its last issue.  A sequence's first step skips the h wait; the step after it would wait at its
    start for the step two before, 22 - 1 - 24 < 0 cycles: not at all.  Sequences of 1, 1 and 4
    steps, between consecutive last h elements: 24 cycles to the second sequence and 24 to the
    third (each a sequence start: 8 + 16), then the steady 43 (8 + h wait 22 - 1 - 2 = 19 + r*h
    wait 16).  Bit-exact throughout (a step starting early would read a stale h bank or r*h)."""
    cfg = load("gru_before_small").replace(input_size=2, hidden_size=2, lanes=4)
    cm = CycleModel.for_config(cfg)
    assert (cm.first_step_cycles, cm.start_wait, cm.h_wait, cm.rh_wait, cm.cycles_per_step) == (24, 0, 19, 16, 43)
    q = quantize(CellParams.for_config(cfg, seed=1, scale=1.0), cfg)
    seqs = sequences(cfg, (1, 1, 4), seed=3)
    res = amsim.run(cfg, q, seqs)
    assert_matches_golden(cfg, q, seqs, res)
    assert res.step_cycles(cfg.hidden_size).tolist() == [24, 24, 43, 43, 43]
    assert res.out_cycles[0] - res.in_cycles[0] == cm.first_output_latency


def test_short_slots_after_a_sequence_start():
    """LSTM with input 4, hidden 4, 8 lanes: 2 slots of 8 cycles, a 43-cycle steady step.  The
    first step of sequence 1 leaves sequence 0's last step in flight; sequence 1's second step
    must not take that step's completion for its own predecessor's."""
    cfg = load("tiny").replace(input_size=4, hidden_size=4, lanes=8)
    q = quantize(CellParams.for_config(cfg, seed=1, scale=1.0), cfg)
    seqs = sequences(cfg, (3, 4), seed=3)
    res = amsim.run(cfg, q, seqs)
    assert_matches_golden(cfg, q, seqs, res)


@pytest.mark.parametrize("name", ["tiny", "gru_small"])
def test_bad_write_address_is_refused(name):
    """Writes past the end of the bias memory (offset = rows) and into the first region no memory
    has (lanes + 1 without an auxiliary memory; else the one after the initial-state regions, h0 at
    lanes + 2 and c0 at lanes + 3 for the LSTM kinds): nothing is written (outputs still follow the
    baked parameters, checked against the golden model) and status.err_addr is set."""
    cfg = load(name)
    lay = Layout.for_config(cfg)
    q = quantize(CellParams.for_config(cfg, seed=1), cfg)
    free = cfg.lanes + 1 if not lay.aux else cfg.lanes + 2 + len(cfg.cell.state)
    bad = [((cfg.lanes << lay.offset_bits) | cfg.rows, 1000), ((free << lay.offset_bits) | 0, -1000)]
    assert all(a < 1 << lay.addr_bits for a, _ in bad)
    seqs = sequences(cfg, (3,), seed=4)
    res = amsim.run(cfg, q, seqs, writes=bad)
    assert_matches_golden(cfg, q, seqs, res)
    assert res.status["err_addr"] == 1


def test_framing_error_is_sticky():
    """``last`` on element 0 of a 3-element vector sets err_framing; the vector still ends at element 2."""
    cfg = load("tiny")
    dut = RecurrentCell(cfg, None)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    seen = []

    async def bench(ctx):
        for e in range(cfg.input_size):
            ctx.set(dut.i.payload, {"data": 1, "last": int(e == 0), "first": int(e == 0)})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(2)
        seen.append(ctx.get(dut.status.err_framing))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [1]


@pytest.mark.parametrize("changes,needle", [
    ({"sigmoid": {"method": "exact"}}, "sigmoid.method = 'exact' has no hardware"),
    ({"lanes": 8, "beat": 3}, "beat = 3 with lanes = 8: slots of 3 cycles are shorter than a unit's 4 rows"),
    ({"formats": {"weight": "s4.16"}}, "formats.weight = s4.16 is 20 bits wide"),
])
def test_hardware_limits_refused(changes, needle):
    d = load("tiny").to_dict()
    for k, v in changes.items():
        if isinstance(v, dict):
            d[k] = {**d[k], **v} if k == "formats" else v
        else:
            d[k] = v
    cfg = Config.from_dict(d)
    with pytest.raises(HardwareLimitError, match=re.escape(needle)):
        RecurrentCell(cfg)


def test_two_cells_chain_through_wiring_connect():
    """o carries first as i does: an LSTM's o drives a GRU's i through wiring.connect, and the GRU's
    outputs equal golden(GRU, golden(LSTM, x)) for two sequences back to back, first flags included."""
    from amaranth import Module
    from amaranth.lib import wiring
    a_cfg = load("tiny")
    b_cfg = load("gru_small").replace(name="chain_b", input_size=a_cfg.hidden_size,
                                      formats={"input": str(a_cfg.fmt("hidden"))})
    qa = quantize(CellParams.for_config(a_cfg, seed=1), a_cfg)
    qb = quantize(CellParams.for_config(b_cfg, seed=2), b_cfg)
    a, b = RecurrentCell(a_cfg, qa), RecurrentCell(b_cfg, qb)
    m = Module()
    m.submodules.a, m.submodules.b = a, b
    wiring.connect(m, a.o, b.i)
    seqs = sequences(a_cfg, (3, 2), seed=5)
    want = [golden.run(qb, golden.run(qa, x[None], a_cfg).outputs, b_cfg).outputs[0] for x in seqs]
    H = b_cfg.hidden_size
    total = sum(len(x) for x in seqs) * H
    got, firsts = [], []
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def driver(ctx):
        for x in seqs:
            for t, vec in enumerate(x):
                for e, v in enumerate(vec):
                    ctx.set(a.i.payload, {"data": int(v), "last": int(e == len(vec) - 1),
                                          "first": int(t == 0 and e == 0)})
                    ctx.set(a.i.valid, 1)
                    await ctx.tick().until(a.i.ready)
        ctx.set(a.i.valid, 0)

    async def monitor(ctx):
        ctx.set(b.o.ready, 1)
        for n in range(total):
            payload, = await ctx.tick().sample(b.o.payload).until(b.o.valid)
            got.append(payload.data)
            firsts.append(payload.first)
            assert n < 20000

    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor)
    sim.run()
    assert np.array_equal(np.array(got), np.concatenate([w.reshape(-1) for w in want]))
    assert firsts == [int(k in (0, len(seqs[0]) * H)) for k in range(total)]


@pytest.mark.parametrize("name", ["tiny", "peephole_cnew", "gru_small", "gru_before_small", "cifg_small"])
def test_one_line_latency_change_is_followed(name, monkeypatch):
    """model.latency.ACT is the one definition of the activation latency: set to 7, the activation
    units pad their output, every post-processor stage after them moves, the kinds' row_to_h and the
    cycle model follow, and the gateware is still bit-exact and exactly as fast as predicted."""
    from model import latency
    cfg = load(name)
    before = CycleModel.for_config(cfg)
    monkeypatch.setattr(latency, "ACT", 7)
    assert CycleModel.for_config(cfg).first_output_latency > before.first_output_latency  # it reached the model
    assert_runs_as_modelled(cfg)


def test_trickle_drain_keeps_every_element():
    """The output queue filled while ready stays low for 3,000 cycles, then drained one element at a
    time with 400 low cycles before each: still bit-exact, nothing dropped, no overrun (a queue that
    credits one place more than it holds overruns under exactly this pattern)."""
    cfg = load("tiny")
    q = quantize(CellParams.for_config(cfg, seed=4, scale=1.0), cfg)
    seqs = sequences(cfg, (6, 6), seed=2)
    res = amsim.run(cfg, q, seqs, out_gap=lambda k: 3000 if k == 0 else 400)
    assert_matches_golden(cfg, q, seqs, res)
    assert not res.status["err_overrun"] and not res.status["err_framing"]


def test_deadlock_fails_fast_with_where_it_stopped():
    """A cell whose output queue is one place short of a step (credits never reach hidden_size, so no
    step starts): the harness raises Deadline at its cycle budget, naming how far the run got, instead
    of hanging; the real cell finishes well within the default budget."""
    cfg = load("tiny")
    q = quantize(CellParams.for_config(cfg, seed=1), cfg)
    dut = RecurrentCell(cfg, q)
    dut.out_depth = cfg.hidden_size - 1
    seqs = sequences(cfg, (3,), seed=1)
    with pytest.raises(amsim.Deadline, match=r"tiny: 0 of 12 h elements and \d+ of 9 x elements transferred "
                                             r"by cycle 500 \(budget 500\)"):
        amsim.run(cfg, q, seqs, dut=dut, max_cycles=500)
    assert amsim.run(cfg, q, seqs).cycles < amsim.budget(cfg, seqs, 8) / 4
