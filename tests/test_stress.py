"""Stress patterns on the gate pipeline in Amaranth's simulator (``sim.amsim``).

Each pattern is one the random backpressure of ``tests/test_rtl_cell.py`` rarely or never
produces: ``ready`` low for longer than a whole step, sequences of one step back to back (a
burst of ``first``), parameter writes in the middle of a sequence (the rules of
``docs/gateware.md``, "Writes during a sequence"), and a reset in each phase of a step.
Expected values come from ``model.golden``; the harness's protocol checker and cycle budget
are on in every run.
"""
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from model import golden
from model.config import Config
from model.cycles import CycleModel
from model.params import CellParams, quantize
from rtl.layout import Layout, write_stream
from sim import amsim
from sim.cellbench.stimulus import long_ready_low, reset_phases

CONFIGS = Path(__file__).parent.parent / "configs"


def load(name):
    return Config.load(CONFIGS / f"{name}.toml")


def params(cfg, seed):
    return quantize(CellParams.for_config(cfg, seed=seed, scale=1.0), cfg)


def sequences(cfg, lengths, seed):
    rng = np.random.default_rng(seed)
    return [golden.quantize_input(rng.uniform(-2, 2, (1, n, cfg.input_size)), cfg)[0] for n in lengths]


def check_sequences(cfg, q, seqs, res, skip=()):
    """Every sequence not in ``skip`` bit-exact against the golden model from a fresh state."""
    for n, x in enumerate(seqs):
        if n in skip:
            continue
        want = golden.run(q, x[None], cfg).outputs[0]
        assert res.outputs[n] is not None, f"sequence {n} incomplete"
        bad = np.argwhere(res.outputs[n] != want)
        assert bad.size == 0, f"sequence {n}: {len(bad)} mismatches, first at (step, element) {tuple(bad[0])}"


def piecewise(cfg, parts, x):
    """Golden outputs of one sequence whose parameters change between steps: ``parts`` is a list of
    (qparams, steps); the state carries over from each part to the next."""
    out, state, t = [], None, 0
    for q, n in parts:
        r = golden.run(q, x[None, t:t + n], cfg, state=state)
        out.append(r.outputs[0])
        state, t = r.state, t + n
    return np.concatenate(out)


# ---- backpressure and sequence starts ----------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny", "gru_before_small", "cifg_small"])
def test_ready_low_longer_than_a_step(name):
    """``ready`` low for three whole steps (plus the first-output latency) before element 0 of every
    other h(t): the credits run out, the input stalls, nothing is dropped or overrun."""
    cfg = load(name)
    cm = CycleModel.for_config(cfg)
    H = cfg.hidden_size
    drain = long_ready_low(cfg)
    assert drain.gap > 3 * cm.cycles_per_step
    q = params(cfg, 4)
    seqs = sequences(cfg, (5, 3), seed=1)
    res = amsim.run(cfg, q, seqs, out_gap=drain.gap_before)
    check_sequences(cfg, q, seqs, res)
    assert not res.status["err_overrun"] and not res.status["err_framing"]
    assert res.out_cycles[2 * H] - res.out_cycles[2 * H - 1] > cm.cycles_per_step  # the stall happened


@pytest.mark.parametrize("name", ["tiny", "gru_small", "gru_before_small", "peephole_cnew"])
def test_burst_of_first(name):
    """Sixteen sequences of one step back to back (``first`` on every vector), then one of three steps
    and four more of one: every h(t) starts from a zero state and carries ``o.first``; random
    backpressure on both streams."""
    cfg = load(name)
    q = params(cfg, 2)
    lengths = (1,) * 16 + (3,) + (1,) * 4
    seqs = sequences(cfg, lengths, seed=5)
    res = amsim.run(cfg, q, seqs, seed=3, in_idle=0.2, out_stall=0.2, max_stall=5)
    check_sequences(cfg, q, seqs, res)
    H = cfg.hidden_size
    starts = np.cumsum([0] + [n * H for n in lengths[:-1]])
    assert res.first_flags == [int(e in starts) for e in range(len(res.first_flags))]
    assert not res.status["err_framing"]


# ---- writes during a sequence --------------------------------------------------------------------

WRITE_CONFIGS = ["tiny", "peephole", "gru_small", "gru_before_small", "cifg_small"]


@pytest.mark.parametrize("name", WRITE_CONFIGS)
def test_write_between_steps_holds_from_the_next_step(name):
    """Six steps in one sequence; after every h of steps 0-2 has arrived (no step in flight) the whole
    of parameters B is written: steps 3-5 follow B from the state A left, and err_busy stays 0."""
    cfg = load(name)
    I, H = cfg.input_size, cfg.hidden_size
    qa, qb = params(cfg, 1), params(cfg, 2)
    x, = seqs = sequences(cfg, (6,), seed=3)
    res = amsim.run(cfg, qa, seqs, pauses=[amsim.Pause(at=3 * I, outputs=3 * H, writes=write_stream(cfg, qb))])
    want = piecewise(cfg, [(qa, 3), (qb, 3)], x)
    assert np.array_equal(res.outputs[0], want)
    assert not np.array_equal(want, golden.run(qa, x[None], cfg).outputs[0])  # B made a difference
    assert res.status["err_busy"] == 0


@pytest.mark.parametrize("name", WRITE_CONFIGS)
def test_step_waits_for_a_write_burst(name):
    """Steps 0-2 out, then the whole of B written while the last element of x(3) arrives (the input
    does not wait for the writes): step 3 does not start until the burst has ended, so it and every
    later step use all of B; its first h leaves after the last write."""
    cfg = load(name)
    I, H = cfg.input_size, cfg.hidden_size
    qa, qb = params(cfg, 1), params(cfg, 2)
    x, = seqs = sequences(cfg, (5,), seed=4)
    pause = amsim.Pause(at=4 * I - 1, outputs=3 * H, delay=1, writes=write_stream(cfg, qb), overlap=True)
    res = amsim.run(cfg, qa, seqs, pauses=[pause])
    assert res.in_cycles[4 * I - 1] < res.write_cycles[-1]  # x(3) was complete before the burst ended
    assert np.array_equal(res.outputs[0], piecewise(cfg, [(qa, 3), (qb, 2)], x))
    assert res.out_cycles[3 * H] > res.write_cycles[-1]
    assert res.status["err_busy"] == 0


@pytest.mark.parametrize("name", WRITE_CONFIGS)
def test_write_while_a_step_is_in_flight_is_refused(name):
    """Right after x(2) is complete (step 2 starts), writes of B to the first word of every memory
    (each lane's weights, the biases and any auxiliary memory) where B differs from A: all are
    dropped, the outputs follow A throughout, and err_busy is set.  The writes all land inside step
    2's flight: fewer than the cycle model's first-output latency minus the input, plus one."""
    cfg = load(name)
    I = cfg.input_size
    lay = Layout.for_config(cfg)
    qa, qb = params(cfg, 1), params(cfg, 2)
    a = dict(write_stream(cfg, qa))
    words = {}
    for addr, value in write_stream(cfg, qb):
        region = addr >> lay.offset_bits
        if value != a[addr] and region not in words:
            words[region] = (addr, value)
    writes = list(words.values())
    cm = CycleModel.for_config(cfg)
    assert len(writes) + 4 < cm.first_output_latency - I
    x, = seqs = sequences(cfg, (5,), seed=6)
    res = amsim.run(cfg, qa, seqs, pauses=[amsim.Pause(at=3 * I, delay=3, writes=writes)])
    assert np.array_equal(res.outputs[0], golden.run(qa, x[None], cfg).outputs[0])
    assert res.status["err_busy"] == 1 and res.status["err_addr"] == 0


# ---- resets in every phase ------------------------------------------------------------------------

@pytest.mark.parametrize("phase", ["loading", "mac", "post", "draining"])
@pytest.mark.parametrize("name", ["tiny", "gru_before_small", "cifg_small"])
def test_reset_in_every_phase(name, phase):
    """Sequence 0 (3 steps) out; a bad-address write sets err_addr; sequence 1 (one step) is cut by a
    reset in the given phase; sequences 2 and 3 then match the golden model from a fresh state (no
    element of sequence 1 leaks out).  Right after the reset o.valid and every status bit are 0, and
    what sequence 1 gave before it is the beginning of its golden output."""
    cfg = load(name)
    H = cfg.hidden_size
    offset, most, gap = reset_phases(cfg)[phase]
    q = params(cfg, 3)
    lay = Layout.for_config(cfg)
    bad = [((cfg.lanes << lay.offset_bits) | cfg.rows, 1)]
    seqs = sequences(cfg, (3, 1, 4, 2), seed=7)
    g1 = 3 * H + 1  # index of sequence 1's second h element
    I = cfg.input_size
    pauses = [amsim.Pause(at=3 * I + 1, delay=20)] if phase == "loading" else []
    res = amsim.run(cfg, q, seqs, writes=bad, resets=[amsim.Reset(seq=1, offset=offset, hold=3)],
                    out_gap=(lambda k: gap if k == g1 else 0) if gap else None, pauses=pauses)
    sent = sum(x.size for x in seqs)
    assert (len(res.in_cycles) < sent) == (phase == "loading"), "x elements cut by the reset"
    check_sequences(cfg, q, seqs, res, skip={1})
    cut = res.cut[1]
    assert cut == golden.run(q, seqs[1][None], cfg).outputs[0].reshape(-1)[:len(cut)].tolist()
    assert len(cut) <= most, f"{len(cut)} h elements before the reset: not the {phase} phase"
    valid, status = res.after_reset[1]
    assert valid == 0 and not any(status.values()), status
    assert res.status["err_addr"] == 0  # cleared by the reset


# ---- the harness's own checks ------------------------------------------------------------------------

class _BadProducer(wiring.Component):
    """A stream source that breaks the rules: valid drops one cycle in eight, the payload changes every
    fourth cycle (so one change falls inside each run of valid)."""
    o: Out(stream.Signature(8))

    def elaborate(self, platform):
        m = Module()
        n = Signal(8)
        m.d.sync += n.eq(n + 1)
        m.d.comb += [self.o.valid.eq(n[:3] != 7), self.o.payload.eq(n >> 2)]
        return m


def test_protocol_checker_names_violations():
    """The checker run by every amsim run reports a dropped valid and a changed payload on a stalled
    stream, each with its cycle; the same source with ready high gives none."""
    for ready, want in ((0, {"valid dropped", "payload changed"}), (1, set())):
        dut = _BadProducer()
        top = amsim.Harness(dut)
        found = []
        sim = Simulator(top)
        sim.add_clock(1e-8)
        sim.add_testbench(amsim.stream_checker(top, dut.o, "o", found), background=True)

        async def bench(ctx):
            ctx.set(dut.o.ready, ready)
            await ctx.tick().repeat(40)
            ctx.set(top.done, 1)
            await ctx.tick().repeat(2)

        sim.add_testbench(bench)
        sim.run()
        kinds = {k for k in ("valid dropped", "payload changed") for f in found if k in f}
        assert kinds == want, found
        assert all(f.startswith("cycle ") and ": o." in f for f in found)
