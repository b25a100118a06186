"""Several MACs per lane per cycle (``beat``) and several post-processors, from one lane to fully parallel.

- The schedule and the cycle model against counts done by hand from the stage latencies.
- Every combination the gateware cannot build is refused before elaboration, naming the field, the
  value and the limit.
- The gateware in Amaranth's simulator on five (lanes, beat) points of the tiny LSTM (1 lane to one
  multiplier per weight) and one of the small reset-after GRU: bit-exact against the golden model
  with streams that never stall (every step's cycles equal to the cycle model) and under random
  backpressure; weights and the initial state written through ``w`` on the wide words, the final
  state read back.
- The exported Verilog (cocotb): the fully parallel tiny LSTM on Icarus, and (``pytest --long``) the
  tiny LSTM with beat 2 and two post-processors on Verilator; bit-exact, cycle-exact, with stalls.
"""
from pathlib import Path

import numpy as np
import pytest

from model import golden, latency
from model.config import MAX_MULTIPLIERS, Config, ConfigError
from model.cycles import CycleModel, Schedule
from model.params import CellParams, quantize
from rtl.cell import HardwareLimitError, RecurrentCell
from rtl.layout import state_stream, write_stream
from sim import amsim, netsim, runner

from test_cocotb import check_cycles, need

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def load(name, **changes):
    return Config.load(CONFIGS / f"{name}.toml").replace(**changes)


def sequences(cfg, lengths, seed):
    rng = np.random.default_rng(seed)
    return [golden.quantize_input(rng.uniform(-2, 2, (1, n, cfg.input_size)), cfg)[0] for n in lengths]


# ---- the schedule and the cycle model, counted by hand ----------------------------------------------

def test_post_processors_take_whole_units():
    """tiny (input 3, hidden 4, 16 rows), 8 lanes, beat 1: slots of 7 cycles cannot post-process 8 rows
    in one post-processor, so two, unit u in post-processor u % 2: slot 0 holds units 0 and 1, slot 1
    units 2 and 3, each post-processor one unit's four rows a slot."""
    sch = Schedule.for_config(load("tiny", lanes=8))
    assert (sch.slot_cycles, sch.slots, sch.posts) == (7, 2, 2)
    assert sch.queues(0) == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert sch.queues(1) == ((8, 9, 10, 11), (12, 13, 14, 15))
    assert [sch.queue_position(r) for r in (3, 7, 12, 15)] == [3, 3, 0, 3]


def test_cycle_model_fully_parallel_by_hand():
    """tiny, 16 lanes x beat 7 = 112 multipliers, one per weight: one slot of one cycle, one unit per
    post-processor (4).  The sums reach the hold registers LANE + 3 (adder-tree levels for 7 products)
    cycles after the issue, a post-processor's first row enters CHOICE later (the two-level choice
    out of 16 lanes' sums), its fourth row 3 cycles after that, h is registered
    row_to_h after it and seen one cycle later.  The next step's one chunk holds h(t-1): it issues
    then, the cycle after the wait that begins one cycle after the previous issue.  Its four rows
    overfill the 1-cycle slot by 3, so the issue pauses 3 cycles after every step: a sequence's first
    step takes 1 + 3 = 4 cycles (as many as the output stream's 4 elements)."""
    cfg = load("tiny", lanes=16, beat=7)
    cm = CycleModel.for_config(cfg)
    h_seen = latency.LANE + 3 + latency.CHOICE + 3 + cfg.cell.row_to_h + 1
    assert (cm.slots, cm.slot_cycles, cm.posts, cm.drain) == (1, 1, 4, 3)
    assert cm.cycles_per_step == h_seen and cm.h_wait == h_seen - 4
    assert cm.first_step_cycles == 4
    assert cm.ideal_cycles_per_step == 1.0
    assert cm.mac_utilization == pytest.approx(1 / h_seen)


def test_cycle_model_beat_3_by_hand():
    """tiny, 2 lanes x beat 3: chunks of z = [x(3); h(4)] are {x0 x1 x2} {h0 h1 h2} {h3 0 0}, 3 cycles a
    slot, 8 slots; one post-processor.  The last slot's second row enters LANE + 2 (tree levels for 3
    products) + 1 cycles after the last issue and h is seen row_to_h + 1 later; the next step issues
    chunk 0 one cycle after that issue and wants chunk 1 (its h) at cycle 2."""
    cfg = load("tiny", lanes=2, beat=3)
    cm = CycleModel.for_config(cfg)
    h_seen = latency.LANE + 2 + 1 + cfg.cell.row_to_h + 1
    assert (cm.slots, cm.slot_cycles, cm.posts) == (8, 3, 1)
    assert cm.h_wait == h_seen - 2
    assert cm.cycles_per_step == 8 * 3 + h_seen - 2
    assert cm.first_step_cycles == 8 * 3
    assert cm.ideal_cycles_per_step == pytest.approx(16 * 7 / 6)


def test_the_output_stream_bounds_a_step():
    """o carries one element per cycle: a step of hidden_size 100 takes at least 100 cycles, however
    many multipliers."""
    cm = CycleModel.for_config(load("default", lanes=400, beat=8))
    assert cm.cycles_per_step == 100 and cm.posts > 1


# ---- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,changes,error,needle", [
    ("tiny", {"beat": 8}, ConfigError, "beat = 8 exceeds input_size + hidden_size = 7"),
    ("tiny", {"lanes": 8, "beat": 3}, HardwareLimitError,
     "beat = 3 with lanes = 8: slots of 3 cycles are shorter than a unit's 4 rows, which its post-processor "
     "takes one per cycle; accepted: beat <= 2, or lanes = 16 (one slot per step)"),
    ("default", {"lanes": 400, "beat": 113}, ConfigError,
     f"lanes * beat = 400 * 113 = 45200 multipliers exceeds the limit of {MAX_MULTIPLIERS}"),
    ("gru_before_small", {"beat": 2}, HardwareLimitError,
     "beat = 2 with kind = 'gru', reset = 'before': pass 2 reads r*h(t-1) one element per cycle; accepted: beat = 1"),
    ("gru_before_small", {"lanes": 17}, HardwareLimitError,
     "lanes = 17 exceeds input_size + hidden_size = 11 with kind = 'gru', reset = 'before'"),
])
def test_refused_before_elaboration(name, changes, error, needle):
    with pytest.raises(error) as e:
        RecurrentCell(load(name, **changes))  # a ConfigError comes from load, before the cell exists
    assert needle in str(e.value)


# ---- the gateware in Amaranth's simulator ----------------------------------------------------------

#: (config, changes): one lane; beat 3 (chunks mixing x and h, zero-padded); two post-processors; beat 2
#: with two; one multiplier per weight (tiny); the reset-after GRU with beat 4 and two post-processors, and
#: fully parallel at input 2, hidden 3 (9 lanes x beat 5).
POINTS = [("tiny", {"lanes": 1, "beat": 1}), ("tiny", {"lanes": 2, "beat": 3}), ("tiny", {"lanes": 8, "beat": 1}),
          ("tiny", {"lanes": 5, "beat": 2}), ("tiny", {"lanes": 16, "beat": 7}),
          ("gru_small", {"lanes": 7, "beat": 4}),
          ("gru_small", {"input_size": 2, "hidden_size": 3, "lanes": 9, "beat": 5})]


@pytest.mark.parametrize("name,changes", POINTS, ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}{v}" for k, v in v.items()))
def test_bit_exact_and_cycle_exact(name, changes):
    """Two sequences of 4 steps back to back with streams that never stall: outputs equal the golden
    model's, every step's cycles and the first output's latency equal the cycle model's; then three
    sequences under random idle input and low ready on the output."""
    cfg = load(name, **changes)
    cm = CycleModel.for_config(cfg)
    q = quantize(CellParams.for_config(cfg, seed=1, scale=1.0), cfg)
    H = cfg.hidden_size
    for seqs, kw in ((sequences(cfg, (4, 4), 1), {}),
                     (sequences(cfg, (3, 1, 2), 9), {"seed": 2, "in_idle": 0.4, "out_stall": 0.4, "max_stall": 30})):
        res = amsim.run(cfg, q, seqs, **kw)
        for x, got in zip(seqs, res.outputs):
            assert np.array_equal(got, golden.run(q, x[None], cfg).outputs[0])
        assert not any(res.status.values()), res.status
        if not kw:
            assert res.step_cycles(H).tolist() == [cm.cycles_per_step] * 3 + [cm.first_step_cycles] + \
                [cm.cycles_per_step] * 3
            assert res.out_cycles[0] - res.in_cycles[0] == cm.first_output_latency


@pytest.mark.parametrize("name,lanes,beat", [("tiny", 16, 7), ("gru_small", 7, 4)])
def test_weights_and_state_through_w(name, lanes, beat):
    """No weights baked in: the parameters (one weight per write into the wide words) and an initial
    state go through ``w``; outputs and the final state read back equal the golden model's."""
    cfg = load(name, lanes=lanes, beat=beat)
    q = quantize(CellParams.for_config(cfg, seed=3, scale=1.0), cfg)
    rng = np.random.default_rng(4)
    init = tuple(rng.integers(cfg.fmt(t).min_int // 2, cfg.fmt(t).max_int // 2 + 1, size=cfg.hidden_size)
                 for _, t in cfg.cell.state)
    seqs = sequences(cfg, (3, 2), 5)
    want, r = [], None
    for x in seqs:
        r = golden.run(q, x[None], cfg, state=tuple(np.asarray(v)[None] for v in init))
        want += [int(v) for v in r.outputs.reshape(-1)]
    words = [{"data": int(v), "last": int(e == len(vec) - 1), "first": int(t == 0 and e == 0)}
             for x in seqs for t, vec in enumerate(x) for e, v in enumerate(vec)]
    res = netsim.run(RecurrentCell(cfg), words, len(want), writes=write_stream(cfg, q) + state_stream(cfg, init),
                     state_reads=list(range(2 * cfg.hidden_size)))
    assert [w["data"] for w in res.outputs] == want
    H = cfg.hidden_size
    k = next(j for j, (_, t) in enumerate(cfg.cell.state) if t == cfg.cell.unit_state)
    final = [int(v) for s in r.state for v in s[0]]
    assert res.state == final[:H] + final[k * H:(k + 1) * H]
    assert not res.status["err_addr"] and not res.status["err_busy"]


# ---- the exported Verilog (cocotb) -----------------------------------------------------------------

def variant_file(name, lanes, beat, interleave=1) -> Path:
    """A copy of ``configs/<name>.toml`` with ``[hardware]`` lanes, beat and interleave replaced, under build/."""
    out = ROOT / "build" / "beat" / f"{name}_l{lanes}_b{beat}_i{interleave}.toml"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = (CONFIGS / f"{name}.toml").read_text()
    head, _, tail = text.partition("[hardware]")
    rest = tail.split("\n[", 1)
    out.write_text(f"{head}[hardware]\nlanes = {lanes}\nbeat = {beat}\ninterleave = {interleave}\n"
                   + ("\n[" + rest[1] if len(rest) > 1 else ""))
    return out


@pytest.mark.parametrize("sim,name,lanes,beat", [("icarus", "tiny", 16, 7)])
def test_verilog_bit_exact_and_cycles(sim, name, lanes, beat):
    """Fully parallel tiny (16 lanes x beat 7) on Icarus; Verilator runs 5 lanes at beat 2 with
    interleave 2 (tests/test_interleave.py)."""
    need(sim)
    path = variant_file(name, lanes, beat)
    cfg = Config.load(path)
    assert (cfg.lanes, cfg.beat) == (lanes, beat)
    res = runner.run(runner.build(path, sim), runner.SimJob(mode="quick", seed=1))
    assert res.passed, res.failure_summary()
    check_cycles(res, cfg)
    for t in res.report.values():
        assert t["mismatches"] == 0 and not t["violations"]
