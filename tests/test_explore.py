"""rtl.explore: the sweep points the config accepts, the cycle columns against a hand calculation, the Pareto front
and the budget answer on hand-made rows, the synthesis columns through rtl.synth with fake tools, the outputs,
bad input refused before any synthesis, and the Makefile's explore target.

No real tool runs here (rtl.synth's own tests run Yosys); a faked ``synthesize`` or faked tools stand in.
"""
import csv
import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from model.config import Config, ConfigError
from rtl import explore, synth
from test_synth import FakeTools

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"


def tiny():
    return Config.load(TINY)


def no_synthesis(*a, **k):
    raise AssertionError("no synthesis may run here")


def fake_report(luts, dsps, brams, fmax):
    """What rtl.synth.synthesize returns, reduced to what the explorer reads."""
    return {"targets": {"ecp5": {"summary": {"luts": luts, "ffs": 2 * luts, "dsps": dsps, "brams": brams,
                                             "lutram": 0}, "seconds": 1.0, "cached": False}},
            "nextpnr": {"fmax_mhz": fmax, "device": "LFE5U-85F", "seconds": 2.0, "cached": False,
                        "utilization": {"MULT18X18D": {"used": dsps, "available": 156},
                                        "TRELLIS_COMB": {"used": luts, "available": 83_640}}}}


# ---- the points ---------------------------------------------------------------------------------------------

def test_default_lanes_are_powers_of_two_and_the_largest_accepted():
    cfg = tiny()
    lanes = explore.default_lanes(cfg)
    assert lanes[0] == 1 and all(b == 2 * a for a, b in zip(lanes, lanes[1:-1]))
    assert lanes[-2] < lanes[-1] <= 2 * lanes[-2]  # the largest accepted, after the last power of two below it
    explore.accept(cfg, lanes=lanes[-1])
    with pytest.raises(ConfigError):
        explore.accept(cfg, lanes=lanes[-1] + 1)
    assert lanes[-1] <= cfg.rows  # a lane computes whole weight rows: 16 for tiny (4 gates x 4 units)


def test_refused_values_are_skipped_with_the_reason():
    notes = []
    # lanes 1000 exceeds tiny's 16 weight rows, whatever else the gateware accepts
    points = explore.plan(tiny(), lanes=(1, 1000, 2), beat=(1,), interleave=(1,), note=notes.append)
    assert [p.values["lanes"] for p in points] == [1, 2]
    assert [p.config.lanes for p in points] == [1, 2]
    (note,) = [n for n in notes if "lanes 1000" in n]
    assert "refused" in note and "16" in note


def test_an_axis_given_with_no_accepted_value_is_an_error():
    # beat 1000 exceeds input + hidden = 7 elements of z
    with pytest.raises(ConfigError, match="--beat"):
        explore.plan(tiny(), lanes=(1,), beat=(1000,), note=lambda m: None)


def test_labels_name_only_what_differs_from_one():
    cfg = tiny()
    assert explore.Point({"lanes": 4, "beat": 1}, cfg).label == "lanes4"
    assert explore.Point({"lanes": 4, "beat": 2, "interleave": 3}, cfg).label == "lanes4-beat2-interleave3"


def test_cycle_columns_by_hand():
    # tiny: 4 gates x 4 units = 16 weight rows, z = 3 + 4 = 7 elements, one element per cycle:
    # a slot is 7 cycles, ceil(16 / lanes) slots; ideal = 16 * 7 / lanes
    for lanes, slots in ((1, 16), (2, 8)):
        (p,) = explore.plan(tiny(), lanes=(lanes,), beat=(1,), interleave=(1,), note=lambda m: None)
        r = explore.cycle_row(p)
        assert r["first_step_cycles"] == slots * 7
        assert r["ideal_cycles_per_step"] == 16 * 7 / lanes
        assert r["cycles_per_step"] >= r["first_step_cycles"]  # a steady step adds the wait on h(t-1)
        assert math.isclose(r["mac_utilization"], 16 * 7 / lanes / r["cycles_per_step"], abs_tol=1e-4)


def test_interleave_columns_by_hand():
    """tiny on 2 lanes: 8 slots of 7 cycles = 56 issue cycles, and a step alone waits 23 more for h(t-1)
    (79 cycles); three sequences taking turns hide the wait: a round of 3 x 56 = 168 cycles, every MAC
    busy (3 x 56 / 168)."""
    points = explore.plan(tiny(), lanes=(2,), beat=(1,), interleave=(1, 3), note=lambda m: None)
    rows = {p.values["interleave"]: explore.cycle_row(p) for p in points}
    assert rows[1]["cycles_per_step"] == 56 + 23 and rows[3]["cycles_per_step"] == 168
    assert rows[3]["mac_utilization"] == 1.0


# ---- front and budget on hand-made rows ---------------------------------------------------------------------

ROWS = [  # label, us/step, LUTs, DSPs, BRAMs
    {"label": "a", "us_per_step": 10.0, "luts": 100, "dsps": 1, "brams": 2},
    {"label": "b", "us_per_step": 5.0, "luts": 200, "dsps": 2, "brams": 2},
    {"label": "c", "us_per_step": 5.0, "luts": 250, "dsps": 2, "brams": 1},   # dominated by b
    {"label": "d", "us_per_step": 1.5, "luts": 900, "dsps": 8, "brams": 4},
    {"label": "e", "us_per_step": 1.9, "luts": 800, "dsps": 8, "brams": 3},   # on the front: fewer LUTs than d
    {"label": "f", "us_per_step": 1.9, "luts": 700, "dsps": 9, "brams": 0},   # on the front: fewer LUTs than e
    {"label": "g", "us_per_step": 2.0, "luts": 950, "dsps": 8, "brams": 4},   # dominated by d
    {"label": "h", "us_per_step": None, "luts": 10, "dsps": 0, "brams": 0},   # not placed: no candidate
]


def test_pareto_front_of_hand_made_rows():
    assert [ROWS[i]["label"] for i in explore.pareto_front(ROWS)] == ["a", "b", "d", "e", "f"]


def test_cheapest_within_budget_by_dsps_then_luts_then_brams():
    assert explore.cheapest(ROWS, 2.0)["label"] == "e"   # d, e, g have 8 DSPs; e has the fewest LUTs
    assert explore.cheapest(ROWS, 1.8)["label"] == "d"
    assert explore.cheapest(ROWS, 5.0)["label"] == "b"   # b and c: 2 DSPs, b fewer LUTs
    assert explore.cheapest(ROWS, 1.0) is None


# ---- a sweep with synthesis faked -----------------------------------------------------------------------

def test_sweep_with_faked_synthesis(monkeypatch, tmp_path):
    """Per lanes: LUTs 100 * lanes, DSPs lanes + 2, Fmax 100 MHz at lanes 1 and 10 MHz at lanes 2."""
    fmax = {1: 100.0, 2: 10.0}
    calls = []

    def fake(cfg, q, out_dir, **kw):
        calls.append((cfg.lanes, Path(out_dir).name, kw["targets"]))
        return fake_report(100 * cfg.lanes, cfg.lanes + 2, 0, fmax[cfg.lanes])
    monkeypatch.setattr(explore, "synthesize", fake)
    lines = []
    cfg = tiny()
    points = explore.plan(cfg, lanes=(1, 2), beat=(1,), interleave=(1,), note=lines.append)
    res = explore.explore(cfg, None, tmp_path, points, budget_us=2.0, log=lines.append)
    assert calls == [(1, "lanes1", ("ecp5",)), (2, "lanes2", ("ecp5",))]
    r1, r2 = res["rows"]
    for r, lanes in ((r1, 1), (r2, 2)):
        f = fmax[lanes]
        assert r["us_per_step"] == round(r["cycles_per_step"] / f, 3)
        assert r["steps_per_s"] == round(f * 1e6 / r["cycles_per_step"])
        assert r["steps_per_s_total"] == r["steps_per_s"]  # one sequence in flight
        assert (r["luts"], r["dsps"]) == (100 * lanes, lanes + 2)
        assert r["utilization"] == round((lanes + 2) / 156, 4) and r["utilization_of"] == "MULT18X18D"
    # lanes 1: under 200 cycles at 100 MHz, under 2 us; lanes 2: at least 56 cycles at 10 MHz, 5.6 us, and dearer
    assert r1["us_per_step"] < 2.0 < 5.6 <= r2["us_per_step"]
    assert res["pareto"] == [0] and res["budget"]["cheapest"] == "lanes1"
    assert res["rows"][0]["pareto"] and not res["rows"][1]["pareto"]
    progress = [m for m in lines if m.startswith("[explore] 1/2") or m.startswith("[explore] 2/2")]
    assert len(progress) == 2 and "left" in progress[0] and "all done" in progress[1]
    assert {p.name for p in tmp_path.iterdir()} >= set(explore.FILES)
    with open(tmp_path / "explore.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["lanes"]) for r in rows] == [1, 2] and [int(r["dsps"]) for r in rows] == [3, 4]
    assert json.loads((tmp_path / "explore.json").read_text())["rows"][1]["luts"] == 200


def test_budget_not_met_names_the_fastest(monkeypatch, tmp_path):
    monkeypatch.setattr(explore, "synthesize", lambda cfg, *a, **k: fake_report(10, cfg.lanes, 1, 1.0))
    cfg = tiny()
    points = explore.plan(cfg, lanes=(1, 2), beat=(1,), interleave=(1,), note=lambda m: None)
    res = explore.explore(cfg, None, tmp_path, points, budget_us=0.5, log=lambda m: None)
    fast = min(res["rows"], key=lambda r: r["us_per_step"])
    assert res["budget"]["cheapest"] is None
    assert res["budget"]["answer"].startswith("No point meets 0.5 us") and fast["label"] in res["budget"]["answer"]


def test_synthesis_columns_through_rtl_synth_with_fake_tools(monkeypatch, tmp_path):
    """The real synthesize (export, cache, report) with the tools faked: 2 DSPs, 100 LUTs, Fmax 123.4 MHz."""
    tools = FakeTools()
    monkeypatch.setattr(synth, "_run", tools)
    monkeypatch.setattr(synth, "source_digest", lambda: "sources")  # others' edits during the test: no matter
    cfg = tiny()
    points = explore.plan(cfg, lanes=(1,), beat=(1,), interleave=(1,), note=lambda m: None)
    q = explore.load_for_export(TINY)[1]
    res = explore.explore(cfg, q, tmp_path, points, log=lambda m: None)
    (r,) = res["rows"]
    assert (r["luts"], r["dsps"], r["fmax_mhz"]) == (100, 2, 123.4)
    assert r["us_per_step"] == round(r["cycles_per_step"] / 123.4, 3)
    assert (tmp_path / "points" / "lanes1" / "synth.json").is_file()
    assert tools.count("yosys") == 1 and tools.count("nextpnr") == 1
    explore.explore(cfg, q, tmp_path, points, log=lambda m: None)  # again: from the cache
    assert tools.count("yosys") == 1 and tools.count("nextpnr") == 1


# ---- the command line -----------------------------------------------------------------------------------

def test_no_synth_run_writes_the_outputs(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(explore, "synthesize", no_synthesis)
    assert explore.main(["--config", str(TINY), "--lanes", "1,2", "--beat", "1", "--interleave", "1", "--no-synth",
                         "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "tiny"
    for f in explore.FILES:
        assert (folder / f).is_file()
    res = json.loads((folder / "explore.json").read_text())
    assert [r["lanes"] for r in res["rows"]] == [1, 2] and not res["synthesized"]
    assert [r["first_step_cycles"] for r in res["rows"]] == [112, 56]
    assert "| 1 | 1 | " in out and "not answered without synthesis" in out


@pytest.mark.parametrize("argv, words", [
    (["--lanes", "0"], ["--lanes (LANES)", "'0'", "positive integers"]),
    (["--lanes", "1,x"], ["--lanes (LANES)", "'x'", "positive integers"]),
    (["--lanes", ","], ["--lanes (LANES)", "empty", "positive integers"]),
    (["--beat", "-1"], ["--beat (BEAT)", "'-1'"]),
    (["--budget-us", "0"], ["--budget-us (BUDGET)", "positive number"]),
    (["--budget-us", "nan"], ["--budget-us (BUDGET)", "'nan'"]),
    (["--config", "no/such.toml"], ["--config (CONFIG)", "'no/such.toml'", "no such file"]),
    (["--lanes", "1000"], ["no sweep point", "--lanes (LANES)"]),
])
def test_bad_input_is_one_line_before_any_synthesis(argv, words, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(explore, "synthesize", no_synthesis)
    assert explore.main(["--config", str(TINY), "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err
    assert not (tmp_path / "tiny" / "explore.json").exists()


def test_make_explore_command():
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIG", "LANES", "BEAT", "INTERLEAVE", "BUDGET",
                                                            "SYNTH", "OUT", "MAKEFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "explore",
                        "CONFIG=configs/tiny.toml", "LANES=1,4", "BUDGET=3", "SYNTH=0"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cmd = " ".join(r.stdout.replace("\\\n", " ").split())
    assert "-m rtl.explore" in cmd
    for w in ('--config "configs/tiny.toml"', '--lanes "1,4"', '--budget-us "3"', "--no-synth"):
        assert w in cmd
    assert "--out" not in cmd and "--beat" not in cmd
