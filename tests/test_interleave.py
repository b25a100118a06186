"""Several sequences sharing one cell's pipeline (``[hardware] interleave = N``).

- The cycle model against rounds counted by hand from the stage latencies.
- Refusals: too deep an interleave, an interleaved layer in a network, a vector whose elements name
  different sequences (``err_framing``).
- The gateware in Amaranth's simulator at six points (one lane, one and two post-processors, beat 2,
  the reset-after and the reset-before GRU): each sequence bit-exact against the golden model run on it
  alone, every ``o`` element tagged with its sequence, each sequence's step cycles equal to the cycle
  model's round; then more sequences than the interleave, of unequal lengths, under random idle input
  and low ready.
"""
from pathlib import Path

import numpy as np
import pytest

from model import golden, latency
from model.config import MAX_INTERLEAVE, Config, ConfigError
from model.cycles import CycleModel
from model.network.config import NetworkConfig
from model.params import CellParams, quantize
from rtl.streams import input_word, interleaved_order, output_word
from sim import amsim

ROOT = Path(__file__).resolve().parent.parent


def load(name, **changes):
    return Config.load(ROOT / "configs" / f"{name}.toml").replace(**changes)


def sequences(cfg, lengths, seed):
    rng = np.random.default_rng(seed)
    return [golden.quantize_input(rng.uniform(-2, 2, (1, n, cfg.input_size)), cfg)[0] for n in lengths]


# ---- the cycle model, counted by hand ------------------------------------------------------------

def test_interleave_hides_the_h_wait_by_hand():
    """Default LSTM 13->100, 16 lanes: 25 slots of 113 cycles = 2,825 issue cycles; alone a step also
    waits h_wait = 27 cycles for h(t-1) (2,852 cycles, utilization 2,825 / 2,852).  With two sequences
    the other one's 2,825 issue cycles cover the wait: a round of both is 2 x 2,825 = 5,650 cycles,
    each sequence advances a step per round, and every MAC is busy (utilization 2 x 2,825 / 5,650 = 1)."""
    one = CycleModel.for_config(load("default"))
    two = CycleModel.for_config(load("default", interleave=2))
    assert (one.slots * one.slot_cycles, one.h_wait, one.cycles_per_step) == (2825, 27, 2852)
    assert two.cycles_per_step == 5650
    assert two.mac_utilization == pytest.approx(1.0)
    assert two.steps_per_cycle == pytest.approx(2 / 5650)


def test_a_short_issue_needs_more_sequences_by_hand():
    """tiny (input 3, hidden 4) with 8 lanes: 2 slots of 7 cycles = 14 issue cycles and h_wait 26 (two
    post-processors, so 25 plus latency.CHOICE), so a single sequence's step is 40 cycles.  Two
    sequences: a round is max(2 x 14, 14 + 26) = 40 (the wait still shows); three: max(42, 40) = 42, the
    wait hidden, utilization 3 x 14 / 42 = 1."""
    cms = [CycleModel.for_config(load("tiny", lanes=8, interleave=n)) for n in (1, 2, 3)]
    assert latency.CHOICE == 1 and cms[0].posts == 2
    assert (cms[0].slots * cms[0].slot_cycles, cms[0].h_wait) == (14, 26)
    assert [c.cycles_per_step for c in cms] == [40, 40, 42]
    assert cms[2].mac_utilization == pytest.approx(1.0)


def test_the_output_stream_bounds_a_round():
    """o carries one element per cycle for all sequences: 400 lanes x beat 8 on the default LSTM issue a
    step in one 15-cycle slot, but four sequences' h take 4 x 100 cycles a round."""
    cm = CycleModel.for_config(load("default", lanes=400, beat=8, interleave=4))
    assert cm.cycles_per_step == 400


# ---- the stream words and the order --------------------------------------------------------------

def test_words_carry_the_sequence_only_when_interleaved():
    """``seq`` is 2 bits for interleave 3 or 4, absent for interleave 1 (the ports stay as they were)."""
    assert [f.name for f in input_word(load("tiny")).fields] == ["data", "last", "first"]
    for n, bits in ((2, 1), (3, 2), (4, 2)):
        cfg = load("tiny", interleave=n)
        assert input_word(cfg).field("seq").width == bits == output_word(cfg).field("seq").width


def test_interleaved_order():
    """Groups of ``interleave`` sequences take turns a step each; a group starts after the one before
    it: lengths (2, 1, 3) with interleave 2 give 0.0 1.0 0.1, then sequence 2 alone."""
    cfg = load("tiny", interleave=2)
    assert interleaved_order(cfg, [2, 1, 3]) == [(0, 0), (1, 0), (0, 1), (2, 0), (2, 1), (2, 2)]
    assert interleaved_order(load("tiny"), [2, 1]) == [(0, 0), (0, 1), (1, 0)]


# ---- refusals ------------------------------------------------------------------------------------

def test_too_deep_an_interleave_is_refused():
    with pytest.raises(ConfigError, match=f"interleave = {MAX_INTERLEAVE + 1} exceeds the limit of {MAX_INTERLEAVE}"):
        load("tiny", interleave=MAX_INTERLEAVE + 1)
    with pytest.raises(ConfigError, match="interleave must be a positive integer, not 0"):
        load("tiny", interleave=0)


def test_a_network_layer_is_not_interleaved():
    with pytest.raises(ConfigError, match="layer 0: interleave = 2: a network's layers take one sequence at a time"):
        NetworkConfig.from_cell(load("tiny", interleave=2))


def test_a_vector_naming_two_sequences_is_a_framing_error():
    """Element 1 of a vector says seq 1 where element 0 said seq 0: ``err_framing`` is set; the vector
    is taken as sequence 0's and every output is still bit-exact."""
    from amaranth.sim import Simulator

    from rtl.cell import RecurrentCell
    cfg = load("tiny", interleave=2)
    q = quantize(CellParams.for_config(cfg, seed=1, scale=1.0), cfg)
    dut = RecurrentCell(cfg, q)
    x = sequences(cfg, (1,), 3)[0]
    got = {}

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for e, v in enumerate(x[0]):
            ctx.set(dut.i.payload, {"data": int(v), "last": int(e == cfg.input_size - 1), "first": int(e == 0),
                                    "seq": int(e == 1)})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        h = []
        while len(h) < cfg.hidden_size:
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                h.append((payload.data, payload.seq))
        got["h"], got["framing"] = h, ctx.get(dut.status.err_framing)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got["framing"] == 1
    want = golden.run(q, x[None], cfg).outputs[0, 0]
    assert got["h"] == [(int(v), 0) for v in want]


# ---- the gateware in Amaranth's simulator --------------------------------------------------------

#: (config, changes): two sequences on one lane; three on two lanes; three on two post-processors (8 lanes);
#: two with beat 2 (h(t-1) in registers); the reset-after GRU with two; the reset-before GRU (two passes)
#: with two.
POINTS = [("tiny", {"lanes": 1, "interleave": 2}), ("tiny", {"lanes": 2, "interleave": 3}),
          ("tiny", {"lanes": 8, "interleave": 3}), ("tiny", {"lanes": 5, "beat": 2, "interleave": 2}),
          ("gru_small", {"lanes": 4, "interleave": 2}),
          ("gru_before_small", {"lanes": 3, "interleave": 2}),
          ("tiny", {"lanes": 16, "beat": 7, "interleave": 3}),  # fully parallel: a drain pause after every step
          ("gru_small", {"lanes": 33, "beat": 4, "interleave": 4})]


@pytest.mark.parametrize("name,changes", POINTS, ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}{v}" for k, v in v.items()))
def test_bit_exact_and_cycle_exact(name, changes):
    """``interleave`` sequences of 4 steps, taking turns, streams that never stall: each sequence equals
    the golden model run on it alone, every element carries its sequence, and each sequence's steps are
    one round apart (the cycle model's ``cycles_per_step``).  Then twice as many sequences of unequal
    lengths (two groups) under random idle input and low ready."""
    cfg = load(name, **changes)
    cm = CycleModel.for_config(cfg)
    q = quantize(CellParams.for_config(cfg, seed=1, scale=1.0), cfg)
    H, N = cfg.hidden_size, cfg.interleave
    runs = ((sequences(cfg, (4,) * N, 1), {}),
            (sequences(cfg, (3, 1, 2, 2, 3, 1)[:2 * N], 9),
             {"seed": 2, "in_idle": 0.4, "out_stall": 0.4, "max_stall": 30}))
    for seqs, kw in runs:
        res = amsim.run(cfg, q, seqs, **kw)
        for x, got in zip(seqs, res.outputs):
            assert np.array_equal(got, golden.run(q, x[None], cfg).outputs[0])
        assert res.seq_flags == [n % N for n in res.out_seqs]
        assert res.first_flags == [int(t == 0 and e == 0) for _, t in interleaved_order(
            cfg, [len(x) for x in seqs]) for e in range(H)]
        assert not any(res.status.values()), res.status
        if not kw:
            for n in range(N):
                assert res.sequence_step_cycles(H, n).tolist() == [cm.cycles_per_step] * 3


@pytest.mark.parametrize("name,changes", [("default", {}), ("tiny", {"lanes": 16, "beat": 7}),
                                          ("gru_before_small", {"lanes": 3})])
def test_with_interleave_is_the_config_with_it(name, changes):
    """``CycleModel.with_interleave(n)`` (the bench's fast path) equals the model of the config with
    ``interleave = n``."""
    one = CycleModel.for_config(load(name, **changes))
    for n in (1, 2, 3, 7):
        assert one.with_interleave(n) == CycleModel.for_config(load(name, interleave=n, **changes))


# ---- the exported Verilog (cocotb) -----------------------------------------------------------------

@pytest.mark.parametrize("sim,name,lanes,beat,interleave", [("icarus", "tiny", 2, 1, 3),
                                                             ("verilator", "tiny", 5, 2, 2)])
def test_verilog_bit_exact_and_cycles(sim, name, lanes, beat, interleave):
    """The cocotb bench's quick mode (test_cycles: whole groups of sequences taking turns, every step
    cycle-exact; test_stalls: random valid/ready with long stalls, sequences of random lengths) on
    three sequences of the tiny LSTM on Icarus, and two with 5 lanes of beat 2 on Verilator: every element
    bit-exact, its ``seq`` checked."""
    from sim import runner
    from test_beat import variant_file
    from test_cocotb import check_cycles, need
    need(sim)
    path = variant_file(name, lanes, beat, interleave)
    cfg = Config.load(path)
    assert (cfg.lanes, cfg.beat, cfg.interleave) == (lanes, beat, interleave)
    res = runner.run(runner.build(path, sim), runner.SimJob(mode="quick", seed=1))
    assert res.passed, res.failure_summary()
    check_cycles(res, cfg)
    for t in res.report.values():
        assert t["mismatches"] == 0 and not t["violations"] and t["compared"] > 0


@pytest.mark.parametrize("name,changes", [("tiny", {"lanes": 2, "interleave": 3}),
                                          ("gru_small", {"lanes": 7, "beat": 4, "interleave": 2})])
def test_initial_state_shared_final_state_per_sequence(name, changes):
    """An initial state written through ``w`` starts every sequence; sequences of unequal lengths, taking
    turns, then each one's final state read back through ``state_seq`` / ``state_addr``: all equal the
    golden model run on each sequence alone from that state (the beat-4 GRU keeps h(t-1) and its state in
    registers, the LSTM in memories)."""
    from rtl.cell import RecurrentCell
    from rtl.layout import state_stream, write_stream
    from sim import netsim
    cfg = load(name, **changes)
    q = quantize(CellParams.for_config(cfg, seed=3, scale=1.0), cfg)
    rng = np.random.default_rng(4)
    init = tuple(rng.integers(cfg.fmt(t).min_int // 2, cfg.fmt(t).max_int // 2 + 1, size=cfg.hidden_size)
                 for _, t in cfg.cell.state)
    seqs = sequences(cfg, (2, 3, 1)[:cfg.interleave], 5)
    runs = [golden.run(q, x[None], cfg, state=tuple(np.asarray(v)[None] for v in init)) for x in seqs]
    order = interleaved_order(cfg, [len(x) for x in seqs])
    words = [{"data": int(v), "last": int(e == cfg.input_size - 1), "first": int(t == 0 and e == 0), "seq": n}
             for n, t in order for e, v in enumerate(seqs[n][t])]
    want = [int(v) for n, t in order for v in runs[n].outputs[0, t]]
    H = cfg.hidden_size
    reads = [(n, a) for n in range(len(seqs)) for a in range(2 * H)]
    res = netsim.run(RecurrentCell(cfg), words, len(want), writes=write_stream(cfg, q) + state_stream(cfg, init),
                     state_reads=reads)
    assert [w["data"] for w in res.outputs] == want
    assert [w["seq"] for w in res.outputs] == [n for n, _ in order for _ in range(H)]
    k = next(j for j, (_, t) in enumerate(cfg.cell.state) if t == cfg.cell.unit_state)
    for n, r in enumerate(runs):
        final = [int(v) for s in r.state for v in s[0]]
        assert res.state[n * 2 * H:(n + 1) * 2 * H] == final[:H] + final[k * H:(k + 1) * H], n
    assert not res.status["err_addr"] and not res.status["err_busy"]
