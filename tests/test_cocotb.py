"""cocotb benches of the exported Verilog on Verilator and Icarus (pytest launchers for sim.cellbench).

- tiny, gru_small, gru_before_small, cifg_small (and the trained fsdd_gru32 on Verilator): every check (bit-exact under random valid/ready with long stalls, sequences
  back to back, weight reload through ``w``, 1,000-step sequence, reset mid-transfer,
  protocol and X/Z checker self-test, cycle model, float bound);
- default, gru, gru_before, cifg (same sizes): a couple of steps, bit-exact and cycle-exact;
- stress patterns (tiny on both simulators, both small GRUs on Verilator): trickle drain,
  ready low for longer than a step, a burst of first, writes in the middle of a sequence,
  a reset in each phase of a step; and ``make soak``'s code path for 600 steps;
- an injected bug (one sigmoid table entry changed in the Verilog text) must be
  reported at the right sequence / step / element.

Icarus tests skip with an install hint when ``iverilog`` is missing, unless
``RNNKIT_REQUIRE_ICARUS=1``, which turns the skip into a failure.  Stimulus seed:
``RNNKIT_TEST_SEED`` (default 1).  Each (config, simulator) builds once per xdist
worker under ``build/sim/``.
"""
import os
import re
from pathlib import Path

import numpy as np
import pytest

from model import golden
from model.config import Config
from model.cycles import CycleModel
from sim import runner

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SEED = int(os.environ.get("RNNKIT_TEST_SEED", "1"))


def need(sim):
    """Skip (or fail, for Icarus with RNNKIT_REQUIRE_ICARUS=1) when the simulator is missing."""
    try:
        runner.require_simulator(sim)
    except runner.SimulatorMissing as e:
        if sim == "icarus" and os.environ.get("RNNKIT_REQUIRE_ICARUS") == "1":
            pytest.fail(f"{e} (RNNKIT_REQUIRE_ICARUS=1 makes this a failure)")
        pytest.skip(str(e))


def check_cycles(res, cfg):
    cm = CycleModel.for_config(cfg)
    c = res.report["test_cycles"]["cycles"]
    assert c["first_output_latency"] == cm.first_output_latency
    assert c["cycles_per_step"] == cm.cycles_per_step
    assert c["mac_utilization"] == pytest.approx(cm.mac_utilization)


@pytest.mark.parametrize("sim,name", [(sim, name) for sim in runner.SIMULATORS for name in ("tiny", "gru_small")]
                         + [("verilator", name) for name in ("gru_before_small", "cifg_small", "fsdd_gru32")])
def test_small_all_checks(sim, name):
    """Every check of the bench.  The plain LSTM and the reset-after GRU run on both simulators; the
    other kinds on Verilator (Icarus runs them at full size below); fsdd_gru32 is the trained
    spoken-digit GRU."""
    need(sim)
    cfg = Config.load(CONFIGS / f"{name}.toml")
    b = runner.build(CONFIGS / f"{name}.toml", sim)
    res = runner.run(b, runner.SimJob(mode="full", seed=SEED))
    assert res.passed, res.failure_summary()
    rep = res.report
    check_cycles(res, cfg)
    assert rep["test_long_sequence"]["long_steps"] >= 1000
    assert rep["test_long_sequence"]["compared"] >= 1000 * cfg.hidden_size
    assert rep["test_weight_reload"]["b_differs_from_a"]
    assert [r["round"] for r in rep["test_reset_recovery"]["resets"]] == [0, 1]
    caught = rep["test_checker_selftest"]["caught"]
    assert any("i__payload changed" in v for v in caught) and any("i__valid dropped" in v for v in caught)
    if sim == "icarus":
        assert rep["test_checker_selftest"]["x_caught"]
    for name, t in rep.items():
        assert t["mismatches"] == 0 and not t["violations"], name


@pytest.mark.parametrize("sim,name", [("icarus", name) for name in ("default", "gru", "gru_before", "cifg")]
                         + [("verilator", "default")])
def test_full_size_bit_exact_and_cycles(sim, name):
    """Input 13, hidden 100, 16 lanes: LSTM, both GRU placements, CIFG on Icarus (whose build of a
    full-size cell takes seconds where Verilator's C++ build takes a minute); the LSTM on Verilator too."""
    need(sim)
    cfg = Config.load(CONFIGS / f"{name}.toml")
    b = runner.build(CONFIGS / f"{name}.toml", sim)
    res = runner.run(b, runner.SimJob(mode="quick", seed=SEED, seqs=2, steps=2))
    assert res.passed, res.failure_summary()
    check_cycles(res, cfg)
    assert res.report["test_cycles"]["compared"] == 2 * 2 * cfg.hidden_size


@pytest.mark.parametrize("sim,name", [(sim, "tiny") for sim in runner.SIMULATORS]
                         + [("verilator", "gru_small"), ("verilator", "gru_before_small")])
def test_stress_patterns(sim, name):
    """test_stress: trickle drain, ready low for longer than a step, a burst of first, parameter writes in
    the middle of a sequence (between steps, a burst a step waits for, refused in flight with err_busy),
    a reset in each phase of a step; bit-exact throughout."""
    need(sim)
    b = runner.build(CONFIGS / f"{name}.toml", sim)
    res = runner.run(b, runner.SimJob(mode="full", seed=SEED, tests=["test_stress"]), run_name="stress")
    assert res.passed, res.failure_summary()
    rep = res.report["test_stress"]
    assert rep["mismatches"] == 0 and rep["compared"] > 0
    assert [r["phase"] for r in rep["resets"]] == ["loading", "mac", "post", "draining"]
    assert rep["writes"]["err_busy"] == 1 and rep["writes"]["refused"] >= 2


def test_soak_short():
    """make soak's code path (sim.soak) for 600 steps on Verilator: at least one reset and one parameter
    reload, every h element bit-exact."""
    need("verilator")
    from sim import soak  # noqa: PLC0415
    r = soak.soak(CONFIGS / "tiny.toml", "verilator", steps=600, seed=SEED)
    assert r.passed, r.run.failure_summary()
    f = r.figures
    assert f["steps"] == 600 and f["resets"] >= 1 and f["reloads"] >= 1
    assert r.mismatches == 0 and r.compared >= (600 - f["resets"] * 200) * 4
    assert len(r.lines()) == 3


# ---- injected bug ------------------------------------------------------------------------------

_ENTRY = re.compile(r"(\\table \[(\d+)\] = (\d+)'h([0-9a-f]+);)")


def sigmoid_table(text):
    """(start, end) of the sigmoid unit's module and its table entries {index: (line, width, value)}."""
    m = re.search(r"^module \\\S+\.sigmoid \(", text, flags=re.M)
    assert m, "no sigmoid unit module (*.sigmoid) in the Verilog"
    end = text.index("endmodule", m.start())
    entries = {int(k): (line, int(w), int(v, 16)) for line, k, w, v in _ENTRY.findall(text[m.start():end])}
    return m.start(), end, entries


def first_difference(cfg, q, seqs, k, delta):
    """Flat (sequence, step, element) of the first h that changes when sigmoid table entry k moves
    by delta, with the golden and the changed values; None when nothing changes."""
    real = golden.make_activation

    def patched(fn, spec, i, o):
        act = real(fn, spec, i, o)
        if fn == "sigmoid":
            t = act._table.copy()
            t[k] += delta
            act._table, act._direct = t, None
        return act

    golden.make_activation = patched
    try:
        bad = [golden.run(q, x[None], cfg).outputs[0] for x in seqs]
    finally:
        golden.make_activation = real
    good = [golden.run(q, x[None], cfg).outputs[0] for x in seqs]
    for s, (g, b) in enumerate(zip(good, bad)):
        diff = np.argwhere(g != b)
        if diff.size:
            t, e = diff[0]
            return (s, int(t), int(e)), int(g[t, e]), int(b[t, e])
    return None


def test_injected_bug_is_located():
    """One sigmoid table entry off by one LSB in the exported Verilog: the bench must fail and name
    the first wrong h element (sequence, step, element) with the golden and the gateware value."""
    sim = "icarus" if runner.icarus_missing_message() is None else "verilator"  # Icarus builds a variant faster
    need(sim)
    from sim.cellbench.settings import DEFAULT_SIZES, baked_qparams, rng_for  # noqa: PLC0415
    from sim.cellbench.stimulus import make_sequences  # noqa: PLC0415
    cfg = Config.load(CONFIGS / "tiny.toml")
    q = baked_qparams(cfg, 1)
    seqs_n, steps = DEFAULT_SIZES["cycles"]
    seqs = make_sequences(cfg, rng_for(SEED, "test_cycles", 0), [steps] * seqs_n)
    hw_table = golden.make_activation("sigmoid", cfg.sigmoid, cfg.fmt("pre"), cfg.fmt("gate")).hw()["table"]

    # among the entries the stimulus exercises, the one whose first visible effect comes earliest
    # after step 0 (so that the step and sequence bookkeeping is tested too)
    found = {}
    for k in range(len(hw_table)):
        r = first_difference(cfg, q, seqs, k, 1)
        if r is not None:
            found[k] = r
    assert found, "no sigmoid table entry is exercised by the stimulus"
    k = min(found, key=lambda j: (found[j][0][:2] == (0, 0), found[j][0]))
    (s, t, e), want, got = found[k]

    def mutate(text):
        start, end, entries = sigmoid_table(text)
        assert [entries[j][2] for j in sorted(entries)] == hw_table, "Verilog table differs from the model's"
        line, width, value = entries[k]
        new = f"\\table [{k}] = {width}'h{value + 1:x};"
        return text[:start] + text[start:end].replace(line, new, 1) + text[end:]

    b = runner.build(CONFIGS / "tiny.toml", sim, variant=f"bug-sigmoid{k}", transform=mutate)
    res = runner.run(b, runner.SimJob(mode="cycles", seed=SEED))
    assert not res.passed, "the bench did not notice a wrong sigmoid table entry"
    rep = res.report["test_cycles"]
    assert rep["mismatches"] > 0
    first = rep["first_mismatches"][0]
    assert (first["sequence"], first["step"], first["element"]) == (s, t, e), first
    assert (first["expected"], first["got"]) == (want, got), first
    assert set(first["trace"]) >= {"pre", "i", "f", "g", "o", "cell", "cell_act", "cell_prev"}
    msg = res.tests["test_cycles"]["message"]
    assert f"sequence {s}, step {t}, element {e}" in msg and f"expected {want}" in msg, msg
    # the cycle model still holds: the bug is in the numbers, not the timing
    assert rep["cycles"]["cycles_per_step"] == CycleModel.for_config(cfg).cycles_per_step


def test_trained_model_on_real_utterances():
    """make sim's link for a trained config: two real test utterances of the spoken-digit GRU
    (study.hwlink) through the Verilog on Verilator; the hardware's last h of each equals the
    golden model's, and so does the class the head gives it."""
    need("verilator")
    from study import hwlink  # noqa: PLC0415
    cfg = Config.load(CONFIGS / "fsdd_gru32.toml")
    b = runner.build(CONFIGS / "fsdd_gru32.toml", "verilator")
    u = hwlink.prepare(cfg, 2, b.build_dir / "utterances.npz")
    job = runner.SimJob(mode="quick", seed=SEED, tests=["test_cycles"])
    job.env["RNNKIT_INPUTS"] = str(u.path)
    res = runner.run(b, job)
    assert res.passed, res.failure_summary()
    last_h = res.report["test_cycles"]["last_h"]
    assert len(last_h) == 2 and all(np.array_equal(h, g) for h, g in zip(last_h, u.golden_h))
    lines, same = hwlink.table(u, cfg, last_h)
    assert same and len(lines) == 3
    assert hwlink.hardware_classes(u, cfg, last_h) == list(u.golden_pred)
