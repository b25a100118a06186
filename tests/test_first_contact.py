"""Bad input as a new user gives it: every case ends in one line naming the parameter, the value and what
is accepted (or works), before anything is built or simulated."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import golden, reference, resources
from model.config import NAME_PATTERN, OWNER_FILE, Config, ConfigError, output_dir
from model.params import CellParams, quantize

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"
PY = sys.executable


def tiny_text(**top) -> str:
    """The tiny config's text with top-level keys (``name``, ``params``) set."""
    lines = [ln for ln in TINY.read_text().splitlines() if not any(ln.startswith(f"{k} ") for k in top)]
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in top.items()) + "\n".join(lines) + "\n"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def exit_code(main, argv) -> int:
    """``main(argv)``'s status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


# ---- numbers on the command lines ----------------------------------------------------------------

def _main(module):
    return __import__(module, fromlist=["main"]).main


@pytest.mark.parametrize("module, argv, message", [
    ("model.summary", ["--config", str(TINY), "--seqs", "0"], "error: --seqs must be a positive integer, not '0'"),
    ("model.summary", ["--config", str(TINY), "--steps", "-1"], "error: --steps must be a positive integer, not '-1'"),
    ("model.summary", ["--config", str(TINY), "--seed", "x"], "error: --seed must be an integer >= 0, not 'x'"),
    ("model.bench", ["--config", str(TINY), "--steps", "-1"], "error: --steps must be a positive integer, not '-1'"),
    ("rtl.export", ["--config", str(TINY), "--seed", "-1"], "error: --seed must be an integer >= 0, not '-1'"),
    ("rtl.synth", ["--config", str(TINY), "--seed", "-1"], "error: --seed must be an integer >= 0, not '-1'"),
    ("rtl.synth", ["--config", str(TINY), "--pnr-seed", "-2"], "error: --pnr-seed must be an integer >= 0, not '-2'"),
    ("rtl.fmax", ["--timeout", "0"], "error: --timeout must be a positive number, not '0'"),
    ("hls.vectors", ["--config", str(TINY), "--seqs", "0"], "error: --seqs (SEQS) must be a positive integer, not '0'"),
    ("hls.cpp", ["--config", str(TINY), "--param-seed", "-3"],
     "error: --param-seed (PARAM_SEED) must be an integer >= 0, not '-3'"),
    ("sim.main", ["--config", str(TINY), "--seed", "-5"], "error: --seed (SEED) must be an integer >= 0, not '-5'"),
    ("sim.main", ["--config", str(TINY), "--seqs", "0", "--steps", "0"],
     "error: --seqs (SEQS) must be a positive integer, not '0'"),
    ("sim.main", ["--config", str(TINY), "--steps", "0"], "error: --steps (STEPS) must be a positive integer, not '0'"),
    ("study.run", ["--jobs", "0"], "error: --jobs must be a positive integer, not '0'"),
    ("study.run", [""], "error: study (STUDY) is empty; accepted: a sweep file path or one of "
                        + ", ".join(sorted(p.stem for p in (ROOT / "configs" / "studies").glob("*.toml")))),
])
def test_bad_numbers_and_names_are_one_line(module, argv, message, capsys, tmp_path):
    assert exit_code(_main(module), [*argv, *(["--out", str(tmp_path)] if module != "sim.main" else [])]) == 2
    assert one_line_error(capsys) == message
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("module", ["model.summary", "model.bench", "rtl.export", "rtl.synth", "hls.cpp",
                                    "hls.vectors", "sim.main"])
def test_every_command_line_names_a_missing_config_alike(module, capsys, tmp_path):
    argv = ["--config", str(tmp_path / "nope.toml")] + (["--out", str(tmp_path / "o")] if module != "sim.main" else [])
    assert exit_code(_main(module), argv) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"error: --config (CONFIG) = '{tmp_path / 'nope.toml'}': no such file "
                          f"(does not exist or is not a file); accepted: a config TOML file")


def test_a_config_that_does_not_load_is_named_by_every_command_line(tmp_path, capsys):
    bad = tmp_path / "c.toml"
    bad.write_text(tiny_text(name="c").replace("hidden_size = 4", "hidden_size = 0"))
    for module in ("model.summary", "sim.main", "hls.cpp"):
        assert exit_code(_main(module), ["--config", str(bad)]) == 2
        assert one_line_error(capsys) == f"error: --config (CONFIG): {bad}: hidden_size must be a positive integer, not 0"


def test_make_passes_zero_sizes_and_an_empty_study_through():
    """``SEQS=0 STEPS=0`` reach sim.main (which refuses them) instead of meaning "the defaults", and
    ``STUDY=`` reaches study.run as an empty argument instead of being dropped."""
    def dry(*words):
        return subprocess.run(["make", "-n", "-o", ".venv/.installed", *words], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    assert "--seqs 0 --steps 0" in dry("sim", "SEQS=0", "STEPS=0")
    assert '-m study.run ""' in dry("quant", "STUDY=")


def test_golden_module_says_where_its_command_line_is():
    r = subprocess.run([PY, "-m", "model.golden"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines()[-1] == ("error: model.golden has no command line; run the golden model on a config with "
                                "python -m model.summary --config CONFIG")


# ---- config names and output folders ---------------------------------------------------------------

@pytest.mark.parametrize("name", ["..", ".", "a/b", "..\\x", "", " x", "-x", "a" * 65, "ü"])
def test_a_name_that_could_steer_a_path_is_refused(name, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(tiny_text(name=name))
    with pytest.raises(ConfigError) as e:
        Config.load(path)
    assert str(e.value) == (f"{path}: name must be a non-empty string matching {NAME_PATTERN} (a letter or digit, "
                            f"then up to 63 letters, digits, '_', '.' or '-'; it names the output folder), "
                            f"not {name!r}")


@pytest.mark.parametrize("name", ["tiny", "x1", "a.b-c_d", "7", "a" * 64])
def test_ordinary_names_load(name, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(tiny_text(name=name))
    assert Config.load(path).name == name


def test_output_dir_never_leaves_its_root(tmp_path):
    """A config whose name was changed after validation (``dataclasses.replace`` skips it) still cannot
    lead out of the output root."""
    cfg = dataclasses.replace(Config.load(TINY), name="..")
    root = tmp_path / "build"
    with pytest.raises(ConfigError, match="name must be a non-empty string"):
        output_dir(root, cfg)
    assert not root.exists()


def test_export_of_a_dotdot_name_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_text(name=".."))
    out = tmp_path / "sub" / "build"
    from rtl import export
    assert export.main(["--config", str(cfg), "--out", str(out)]) == 2
    assert one_line_error(capsys).startswith(f"error: --config (CONFIG): {cfg}: name must be")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["c.toml"]


def test_two_config_files_with_one_name_do_not_share_a_folder(tmp_path, capsys):
    """The second file named ``tiny`` is refused for ``<out>/tiny/``; the first keeps its files and can
    write again."""
    from hls import vectors
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(tiny_text())
    b.write_text(tiny_text().replace("hidden_size = 4", "hidden_size = 5"))
    out = tmp_path / "build"
    assert vectors.main(["--config", str(a), "--out", str(out)]) == 0
    capsys.readouterr()
    manifest = (out / "tiny" / "vectors" / "manifest.json").read_text()
    assert vectors.main(["--config", str(b), "--out", str(out)]) == 2
    assert one_line_error(capsys) == (f"error: {out / 'tiny'}/ holds the outputs of {a}, another file named 'tiny'; "
                                      f"give {b} its own name, or remove {out / 'tiny'}/")
    assert (out / "tiny" / "vectors" / "manifest.json").read_text() == manifest
    assert (out / "tiny" / OWNER_FILE).read_text() == f"{a}\n"
    assert vectors.main(["--config", str(a), "--out", str(out)]) == 0


# ---- config and parameter files ------------------------------------------------------------------------

def test_non_utf8_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(tiny_text().replace("A very small", "A v\xe9ry small").encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        Config.load(path)
    assert str(e.value) == f"{path}: not UTF-8 text (byte 5: b'\\xe9'); accepted: a TOML file encoded in UTF-8"


def test_size_limit(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(tiny_text().replace("hidden_size = 4", "hidden_size = 100000"))
    with pytest.raises(ConfigError) as e:
        Config.load(path)
    assert str(e.value) == f"{path}: hidden_size = 100000 exceeds the largest size the kit accepts, 4096"


def test_memory_is_checked_before_allocating(monkeypatch, capsys):
    """Random LSTM parameters at input = hidden = 4096 hold 4 * 4096 * (4096 + 4096 + 2) = 134,250,496
    float64 values, twice (the arrays and their private copies): 2,148,007,936 bytes, 2.0 GiB."""
    monkeypatch.setattr(resources, "available_bytes", lambda: 2 ** 30)
    with pytest.raises(resources.MemoryLimitError) as e:
        CellParams.random("lstm", 4096, 4096, seed=0)
    assert str(e.value) == ("random parameters for input_size 4096, hidden_size 4096 needs about 2.0 GiB of memory, "
                            "more than the 1.0 GiB available; use smaller sizes")
    from model import summary
    assert summary.main(["--config", str(TINY), "--seqs", "100000", "--steps", "10000"]) == 2
    assert one_line_error(capsys).startswith("error: 100000 sequences x 10000 steps of config 'tiny' needs about ")


def _params_file(tmp_path, name, change):
    cfg = Config.load(TINY)
    p = CellParams.for_config(cfg, seed=1)
    path = tmp_path / f"{name}.npz"
    arrays = {"kind": np.array(p.kind), "peephole": np.array("none"), "w_ih": p.w_ih, "w_hh": p.w_hh,
              "b_ih": p.b_ih, "b_hh": p.b_hh}
    change(arrays)
    np.savez(path, **arrays)
    conf = tmp_path / f"{name}.toml"
    conf.write_text(tiny_text(name=name, params=path.name))
    return conf, path


def _nan(a):
    a["w_ih"] = a["w_ih"].copy()
    a["w_ih"][0, 0] = np.nan


def _narrow(a):
    a["w_ih"] = a["w_ih"][:, :2]


@pytest.mark.parametrize("change, problem", [
    (_nan, "w_ih contains NaN or infinite values"),
    (_narrow, "parameters do not match config 'p': input_size is 2 in the parameters but 3 in the config"),
])
@pytest.mark.parametrize("module", ["rtl.export", "rtl.synth", "model.summary", "hls.vectors", "sim.main"])
def test_a_bad_parameter_file_is_one_line_everywhere(module, change, problem, tmp_path, capsys):
    conf, path = _params_file(tmp_path, "p", change)
    argv = ["--config", str(conf)] + (["--out", str(tmp_path / "o")] if module not in ("sim.main", "model.summary")
                                      else [])
    if module == "sim.main":
        argv += ["--sim", "icarus" if shutil.which("iverilog") else "verilator"]
    assert exit_code(_main(module), argv) == 2
    assert one_line_error(capsys) == f"error: params: {path}: {problem}"
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.*"))


# ---- the models' entry points ---------------------------------------------------------------------------

def test_golden_run_names_float_parameters():
    cfg = Config.load(TINY)
    with pytest.raises(TypeError) as e:
        golden.run(CellParams.for_config(cfg, seed=1), np.zeros((1, 2, 3)), cfg)
    assert str(e.value) == ("golden.run takes quantized parameters (QParams, from model.params.quantize(params, "
                            "config)), not CellParams")


def test_zero_steps_run_like_the_golden_model():
    cfg = Config.load(TINY)
    p = CellParams.for_config(cfg, seed=1)
    x = np.zeros((2, 0, 3))
    out, trace = reference.run_trace(p, x)
    g = golden.run(quantize(p, cfg), x, cfg, trace=True)
    assert out.shape == g.outputs.shape == (2, 0, 4) and trace == g.trace == {}


# ---- make sim -----------------------------------------------------------------------------------------------

def _fake_result(status_by_test):
    from sim import runner
    cfg = Config.load(TINY)
    b = runner.Build(TINY, cfg, "verilator", ROOT, ROOT, "lstm_cell", 1, False, None, 0.0)
    entry = {"compared": 4, "mismatches": 0, "max_abs": 0.0, "rms": 0.0, "float_bound": [0.1, 0.1],
             "sequences": 1, "steps": 1, "sim_cycles": 100}
    return runner.RunResult(b, runner.SimJob(mode="main"), {},
                            {t: {**entry, "status": s} for t, s in status_by_test.items()}, ROOT, ROOT, ROOT, 0.0)


def test_summary_names_the_points_that_saturated():
    """Status bits as the bench reports them (``report.json``): ``sat_cell`` set in test_stalls only,
    ``sat_pre`` in both; the error bits are not saturation."""
    from sim.main import saturation, summarize
    zero = {"sat_pre": 0, "sat_cell": 0, "sat_hidden": 0, "err_framing": 0, "err_overrun": 0, "err_addr": 0}
    res = _fake_result({"test_cycles": {**zero, "sat_pre": 1, "err_addr": 1},
                        "test_stalls": {**zero, "sat_pre": 1, "sat_cell": 1}})
    assert saturation(res) == "pre, cell (status sat_pre, sat_cell)  <-- values did not fit their formats there"
    assert ("saturated at", saturation(res)) in summarize(res, 0.0)
    assert ("config", "tiny (configs/tiny.toml): lstm 3->4 (2 lanes)") in summarize(res, 0.0)
    assert saturation(_fake_result({"test_cycles": zero, "test_stalls": zero})) == "none"


def test_waves_note_before_a_verilator_run_without_lz4(monkeypatch):
    from sim import runner
    monkeypatch.setattr(runner, "fst_supported", lambda: False)
    assert runner.waves_note("verilator") == (
        "liblz4-dev is missing: Verilator writes a VCD trace instead of FST, many times larger "
        "(apt-get install -y liblz4-dev, as root, for FST; make sim WAVES=1 does this when it can)")
    assert runner.waves_note("icarus") is None
    monkeypatch.setattr(runner, "fst_supported", lambda: True)
    assert runner.waves_note("verilator") is None


def test_make_sim_with_waves_installs_lz4_for_verilator_only():
    def dry(*words):
        return subprocess.run(["make", "-n", "-o", ".venv/.installed", "sim", *words], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    assert "apt-get install -y -q liblz4-dev" in dry("WAVES=1")
    assert "liblz4-dev" not in dry("WAVES=1", "SIM=icarus") and "liblz4-dev" not in dry()


def test_icarus_run_with_waves_builds_when_make_exports_waves(monkeypatch):
    """``make sim SIM=icarus WAVES=1`` exports ``WAVES=1``; cocotb's runner must not read it (it would add
    its SystemVerilog dump module, which ``-g2005`` rejects).  One sequence of one step on tiny."""
    from sim import runner
    msg = runner.icarus_missing_message()
    if msg and os.environ.get("RNNKIT_REQUIRE_ICARUS") != "1":
        pytest.skip(msg)
    monkeypatch.setenv("WAVES", "1")
    shutil.rmtree(runner.build_dir_for(TINY, "icarus", "first-contact", True), ignore_errors=True)
    b = runner.build(TINY, "icarus", waves=True, variant="first-contact")
    assert not (b.build_dir / "cocotb_iverilog_dump.v").exists()
    res = runner.run(b, runner.SimJob(mode="cycles", seqs=1, steps=1))
    assert res.passed, res.failure_summary()
    assert res.waves_file is not None and res.waves_file.suffix == ".fst" and res.waves_file.stat().st_size > 0
    assert os.environ["WAVES"] == "1"
