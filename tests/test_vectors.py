"""Portable test vectors (hls.vectors): the files, and both consumers of them.

A vector set for the tiny LSTM (and for the smallest GRU config in configs/, when
there is one) is written through the command line and then consumed by the
generated C++ testbench and by the cocotb bench ``sim.bench_vectors`` on the
exported Verilog (Icarus), which is built with the parameters read back from
the same files.  Both must report every h(t) element equal; a changed value in
``h.hex`` must make both fail at that element.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hls import cpp, vectors
from model import golden
from model.config import Config
from model.params import CellParams, quantize
from sim import runner
from test_cocotb import need

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "tiny.toml"


def smallest_gru() -> list[Path]:
    grus = [(c.rows * (c.input_size + c.hidden_size), p) for p in sorted((ROOT / "configs").glob("*.toml"))
            for c in [Config.load(p)] if c.kind == "gru"]
    return [min(grus)[1]] if grus else []


CONSUMED = [CONFIG] + smallest_gru()
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
BUILD = ROOT / "build" / "vector-tests" / WORKER
SEED = int(os.environ.get("RNNKIT_TEST_SEED", "1"))
SEQS, STEPS = 3, 5


def test_hex_lines_round_trip():
    """Two's complement in the tensor width, ceil(width/4) digits, one value per line."""
    assert vectors.to_hex_lines([-1, 0, 1, -1024, 1023], 11) == "7ff\n000\n001\n400\n3ff\n"
    assert vectors.to_hex_lines([5, 255], 8) == "05\nff\n"
    vals = np.array([-(1 << 17), -1, 0, 1, (1 << 17) - 1])
    assert np.array_equal(vectors.from_hex_lines(vectors.to_hex_lines(vals, 18), 18, True), vals)
    assert vectors.from_hex_lines("3ffff\n", 18, False).tolist() == [(1 << 18) - 1]
    with pytest.raises(vectors.VectorError, match="do not fit 11 bits"):
        vectors.to_hex_lines([2048], 11)
    with pytest.raises(vectors.VectorError, match="line 2: 800 does not fit 11 bits"):
        vectors.from_hex_lines("000\n800\n", 11, True, "h.hex")


def write_cli(config: Path, out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "hls.vectors", "--config", str(config), "--out", str(out),
                        "--seqs", str(SEQS), "--steps", str(STEPS), "--seed", str(SEED)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return out / Config.load(config).name / "vectors"


def test_files_hold_golden_values():
    """Parameters are those of make sim (seed 1); h, c and the stream words follow from golden.run."""
    vdir = write_cli(CONFIG, BUILD)
    vs = vectors.load(vdir)
    cfg = Config.load(CONFIG)
    vs.check_config(cfg)
    assert vs.qparams == quantize(CellParams.for_config(cfg, seed=1), cfg)
    assert vs.x.shape == (SEQS, STEPS, cfg.input_size)
    res = golden.run(vs.qparams, vs.x, cfg, trace=True)
    assert np.array_equal(vs.h, res.outputs) and np.array_equal(vs.c, res.trace["cell"])
    m = json.loads((vdir / "manifest.json").read_text())
    assert m["files"]["x"]["ap_type"] == cfg.fmt("input").ap and m["files"]["h"]["shape"] == [SEQS, STEPS, 4]
    wx = cfg.fmt("input").width
    first = vs.i_payload.reshape(SEQS, STEPS, cfg.input_size)
    assert ((first >> (wx + 1)) & 1).sum() == SEQS and (first[:, 0, 0] >> (wx + 1)).tolist() == [1] * SEQS
    assert np.array_equal(first & ((1 << wx) - 1), vs.x & ((1 << wx) - 1))
    for name in ("w_ih", "w_hh", "bias", "x", "h", "c", "i_payload", "o_payload"):
        for line in (vdir / m["files"][name]["file"]).read_text().splitlines():
            assert len(line) == m["files"][name]["hex_digits"] and int(line, 16) >= 0


@pytest.mark.parametrize("config", CONSUMED, ids=[p.stem for p in CONSUMED])
def test_cpp_and_cocotb_consume_the_same_files(config, tmp_path):
    """The C++ testbench and the cocotb bench both read the set and find every element equal; a changed
    h value makes both fail at that element."""
    need("icarus")
    vdir = write_cli(config, BUILD)
    vs = vectors.load(vdir)
    cfg = Config.load(config)
    try:
        cpp.find_cxx("g++")
    except cpp.HlsError as e:
        pytest.fail(str(e))
    paths = cpp.generate(cfg, vs.qparams, BUILD / cfg.name / "hls")
    exe = cpp.compile_tb(paths, BUILD / cfg.name / "tb")
    r = subprocess.run([str(exe), str(vdir)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    n = SEQS * STEPS * cfg.hidden_size
    assert f"{(4 if cfg.kind == 'lstm' else 2) * n} passed, 0 failed" in r.stdout

    b = runner.build(config, "icarus", qparams=vs.qparams, variant="vectors")
    job = runner.SimJob(seed=SEED, tests=["test_vectors"], module="sim.bench_vectors",
                        env={"RNNKIT_VECTORS": str(vdir)})
    res = runner.run(b, job)
    assert res.passed, res.failure_summary()
    rep = res.report["test_vectors"]
    assert rep["compared"] == n and rep["mismatches"] == 0 and rep["stalls"]

    # one expected value changed: both consumers must name it
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in vdir.iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    s, t, e = 2, 3, 1
    k = (s * STEPS + t) * cfg.hidden_size + e
    lines = (bad / "h.hex").read_text().splitlines()
    width = cfg.fmt("hidden").width
    lines[k] = f"{int(lines[k], 16) ^ 1:0{(width + 3) // 4}x}"
    (bad / "h.hex").write_text("\n".join(lines) + "\n")
    r = subprocess.run([str(exe), str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"MISMATCH h (step top): sequence {s}, step {t}, element {e}:" in r.stdout
    res = runner.run(b, runner.SimJob(seed=SEED, tests=["test_vectors"], module="sim.bench_vectors",
                                      env={"RNNKIT_VECTORS": str(bad), "RNNKIT_STALLS": "0"}), run_name="bad")
    assert not res.passed
    rep = res.report["test_vectors"]
    assert rep["mismatches"] == 1 and rep["compared"] == n
    assert rep["first_mismatches"][0].startswith(f"sequence {s} step {t} element {e}: h.hex has")
