"""The generated C++ reference (hls.cpp) against the golden model, for every config in configs/.

Each config's header, top functions and testbench are compiled once per xdist
worker with ``g++ -std=c++17 -Wall -Wextra -Werror`` under ``build/hls-tests/``.
The testbench replays vector sets written by hls.vectors, whose expected h(t)
and c(t) come from ``model.golden``, through both top functions and compares
every element of every step as integers.  Besides the shipped configs, both GRU
reset placements (if configs/ has none) and variants that wrap and round
differently at every point are covered, with parameters large enough that
values really overflow.
"""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hls import cpp, vectors
from model import golden
from model.config import Config
from model.params import CellParams, quantize

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
BUILD = ROOT / "build" / "hls-tests" / os.environ.get("PYTEST_XDIST_WORKER", "main")
SEED = int(os.environ.get("RNNKIT_TEST_SEED", "1"))
#: Small on purpose: the testbench then runs the sequence top function in several chunks.
MAX_STEPS = 3
STEPS = 7


def extra_configs() -> dict:
    """Variants not in configs/: GRU placements missing there, and wrap / other rounding at every point."""
    tiny = Config.load(CONFIGS / "tiny.toml")
    shipped = [Config.load(p) for p in CONFIGS.glob("*.toml")]
    out = {}
    for reset in ("after", "before"):
        if not any(c.kind == "gru" and c.options["reset"] == reset for c in shipped):
            out[f"x_gru_{reset}"] = (tiny.replace(name=f"x_gru_{reset}", kind="gru", reset=reset), None)
    out["x_lstm_wrap"] = (tiny.replace(
        name="x_lstm_wrap", formats={"cell": "s2.10"},
        modes={"pre": {"rounding": "truncate", "overflow": "wrap"}, "cell": {"rounding": "half_even", "overflow": "wrap"},
               "hidden": {"rounding": "half_up", "overflow": "wrap"}}), 3.0)
    out["x_lstm_sat_cell"] = (tiny.replace(name="x_lstm_sat_cell", formats={"cell": "s2.10"},
                                           modes={"cell": {"rounding": "truncate"}}), 3.0)
    out["x_gru_after_wrap"] = (tiny.replace(
        name="x_gru_after_wrap", kind="gru", reset="after", formats={"pre": "s2.8"},
        modes={"pre": {"overflow": "wrap"}, "gru_hn": {"rounding": "truncate", "overflow": "wrap"},
               "hidden": {"rounding": "truncate"}}), 3.0)
    out["x_gru_before_wrap"] = (tiny.replace(
        name="x_gru_before_wrap", kind="gru", reset="before",
        modes={"pre": {"rounding": "half_up", "overflow": "wrap"}, "gru_rh": {"rounding": "truncate"}}), 3.0)
    # a CIFG's c(t) is a convex combination of c(t-1) and g, so only a format below 1.0 saturates it
    out["x_cifg_sat_cell"] = (tiny.replace(
        name="x_cifg_sat_cell", kind="cifg", coupling="f=1-i", formats={"cell": "s1.6"},
        modes={"pre": {"overflow": "wrap"}, "cell": {"rounding": "half_up"}, "hidden": {"rounding": "truncate"}}), 3.0)
    return out


def all_configs() -> dict:
    """name -> (Config, parameter scale or None for the default)."""
    d = {p.stem: (Config.load(p), None) for p in sorted(CONFIGS.glob("*.toml"))}
    d.update(extra_configs())
    return d


CASES = all_configs()


def gxx_or_fail():
    try:
        cpp.find_cxx("g++")
    except cpp.HlsError as e:
        pytest.fail(str(e))


def build_case(name: str, ap_include=None):
    """Generate and compile the C++ for config ``name`` (cached on the sources): (cfg, qparams, exe).
    With ``ap_include`` the tensor types are Xilinx's ``ap_int<W>``."""
    gxx_or_fail()
    cfg, scale = CASES[name]
    q = quantize(CellParams.for_config(cfg, seed=1, scale=scale), cfg)
    out = BUILD / name
    paths = cpp.generate(cfg, q, out / "hls", max_steps=MAX_STEPS)
    suffix = "_ap" if ap_include is not None else ""
    key = hashlib.sha256(b"".join(p.read_bytes() for p in paths.values())
                         + " ".join(cpp.CXXFLAGS + cpp.AP_CXXFLAGS + (str(ap_include),)).encode())
    exe, stamp = out / f"tb{suffix}", out / f"tb{suffix}.key"
    if not exe.exists() or not stamp.exists() or stamp.read_text() != key.hexdigest():
        cpp.compile_tb(paths, exe, ap_include=ap_include)
        stamp.write_text(key.hexdigest())
    return cfg, q, exe


def stimulus(cfg: Config, seqs: int = 4, steps: int = STEPS) -> np.ndarray:
    """Raw inputs: half the sequences uniform in [-2, 2], half uniform over every input code."""
    f = cfg.fmt("input")
    x = np.random.default_rng([SEED, seqs, steps]).integers(f.min_int, f.max_int + 1, (seqs, steps, cfg.input_size))
    x[: seqs // 2] = vectors.make_inputs(cfg, seqs // 2, steps, SEED)
    return x


def run_tb(exe: Path, vdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), str(vdir)], capture_output=True, text=True, timeout=120)


def counts(stdout: str) -> tuple[int, int]:
    m = re.search(r"^(\d+) passed, (\d+) failed$", stdout, flags=re.M)
    assert m, stdout
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("name", sorted(CASES))
def test_cpp_bit_exact(name, tmp_path):
    """Both top functions reproduce golden h(t) (and c(t)) on every element of every step."""
    cfg, q, exe = build_case(name)
    x = stimulus(cfg)
    vectors.write(tmp_path, cfg, q, x)
    r = run_tb(exe, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    per_step = cfg.hidden_size * len(cfg.cell.state)
    assert counts(r.stdout) == (2 * x.shape[0] * x.shape[1] * per_step, 0)
    want = golden.run(q, x, cfg)
    assert np.array_equal(vectors.load(tmp_path).h, want.outputs)   # the files hold the golden values
    scale = CASES[name][1]
    if scale is not None:                     # the overflow paths were really taken
        sat = want.saturated
        assert sat["pre"] > 0, sat
        for point in ("cell", "gru_hn"):
            if point in cfg.cell.points:
                assert sat[point] > 0, sat


def smallest(kind, reset=None):
    cands = [(c.rows * (c.input_size + c.hidden_size), n) for n, (c, _) in CASES.items()
             if c.kind == kind and (reset is None or c.options.get("reset") == reset)]
    return min(cands)[1]


#: Small configs only: Xilinx's ap_int headers make a compile take seconds per thousand weights.
AP_CASES = sorted({"tiny", "peephole_cnew", "x_lstm_wrap", smallest("gru", "after"), smallest("gru", "before"),
                   smallest("cifg"),
                   "x_gru_after_wrap"} & set(CASES))


@pytest.mark.parametrize("name", AP_CASES)
def test_cpp_bit_exact_with_ap_int(name, tmp_path):
    """The same sources built with -DRNNKIT_AP_INT (ap_int<W> tensor types from Xilinx's headers, as
    shipped in hls4ml) match golden bit-exactly too."""
    inc = cpp.ap_types_include()
    if inc is None:
        pytest.skip("no ap_int.h: pip install hls4ml==1.3.0 (it ships Xilinx's ap_types) or set RNNKIT_AP_TYPES")
    cfg, q, exe = build_case(name, ap_include=inc)
    x = stimulus(cfg, seqs=2, steps=5)
    vectors.write(tmp_path, cfg, q, x)
    r = run_tb(exe, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    per_step = cfg.hidden_size * len(cfg.cell.state)
    assert counts(r.stdout) == (2 * 2 * 5 * per_step, 0)


def corrupt(path: Path, index: int, width: int):
    lines = path.read_text().splitlines()
    v = int(lines[index], 16) ^ 1
    lines[index] = f"{v:0{(width + 3) // 4}x}"
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("name,tensor", [("tiny", "h"), ("tiny", "c"), ("gru_case", "h")])
def test_tb_reports_a_wrong_expected_value(name, tensor, tmp_path):
    """One changed value in h.hex / c.hex: exit status 1 and the mismatch named by sequence, step, element."""
    if name == "gru_case":
        name = next(n for n, (c, _) in sorted(CASES.items()) if c.kind == "gru")
    cfg, q, exe = build_case(name)
    vectors.write(tmp_path, cfg, q, stimulus(cfg, seqs=2, steps=4))
    H = cfg.hidden_size
    s, t, e = 1, 2, H - 1
    corrupt(tmp_path / f"{tensor}.hex", (s * 4 + t) * H + e, cfg.fmt("hidden" if tensor == "h" else "cell").width)
    r = run_tb(exe, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"MISMATCH {tensor} (step top): sequence 1, step 2, element {e}:" in r.stdout
    assert f"MISMATCH {tensor} (sequence top): sequence 1, step 2, element {e}:" in r.stdout
    assert counts(r.stdout)[1] == 2


def test_tb_refuses_other_parameters_and_configs(tmp_path):
    """Vectors written with other weights, or for another config, are refused (exit status 2)."""
    cfg, q, exe = build_case("tiny")
    other = quantize(CellParams.for_config(cfg, seed=2), cfg)
    vectors.write(tmp_path / "p", cfg, other, stimulus(cfg, 1, 2))
    r = run_tb(exe, tmp_path / "p")
    assert r.returncode == 2 and "other parameters than this header" in r.stderr, r.stderr
    odd = Config.load(CONFIGS / "odd.toml")
    vectors.write(tmp_path / "c", odd, quantize(CellParams.for_config(odd, seed=1), odd), stimulus(odd, 1, 2))
    r = run_tb(exe, tmp_path / "c")
    assert r.returncode == 2 and "another config" in r.stderr, r.stderr
    (tmp_path / "t").mkdir()
    vectors.write(tmp_path / "t", cfg, q, stimulus(cfg, 1, 2))
    (tmp_path / "t" / "x.hex").write_text("zz\n")
    r = run_tb(exe, tmp_path / "t")
    assert r.returncode == 2 and "x.hex line 1" in r.stderr, r.stderr


def test_header_is_hls_style():
    """Integer types only, no heap, formats named in ap_fixed spelling, compile-time sizes."""
    for name in ("peephole_cnew", next(n for n, (c, _) in sorted(CASES.items()) if c.kind == "gru")):
        cfg, scale = CASES[name]
        q = quantize(CellParams.for_config(cfg, seed=1, scale=scale), cfg)
        text = cpp._Gen(cfg, q, 8).header() + cpp._Gen(cfg, q, 8).top()
        code = re.sub(r"//[^\n]*", "", text)
        for word in ("float", "double", "new", "delete", "malloc", "std::vector", "static_assert"):
            assert not re.search(rf"\b{re.escape(word)}\b", code), word
        assert "#pragma" not in code
        for t in ("input", "hidden", "weight", "pre", "gate"):
            assert f"{t}_t: formats.{t} = {cfg.fmt(t)} = {cfg.fmt(t).ap}" in text
        assert f"constexpr int HIDDEN_SIZE = {cfg.hidden_size};" in text and "constexpr int MAX_STEPS" in text
        for fn in ("RQ_pre", "RQ_hidden", "sigmoid", "tanh_pre", "shift_round", "overflow", "requantize"):
            assert re.search(rf"\b{fn}\b", code), fn


def test_exact_activation_is_refused():
    cfg = Config.load(CONFIGS / "tiny.toml").replace(tanh={"method": "exact"})
    q = quantize(CellParams.for_config(cfg, seed=1), cfg)
    with pytest.raises(cpp.HlsError, match=r"tanh.method = 'exact' has no integer definition.*lut, lut_interp"):
        cpp.generate(cfg, q, BUILD / "exact")


def cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_errors_name_the_parameter(tmp_path):
    r = cli("hls.cpp", "--config", "configs/nope.toml", "--out", str(tmp_path))
    assert r.returncode == 2 and "--config (CONFIG) = 'configs/nope.toml': no such file" in r.stderr
    assert "configs/tiny.toml" in r.stderr
    r = cli("hls.vectors", "--config", "configs/tiny.toml", "--out", str(tmp_path), "--seqs", "0")
    assert r.returncode == 2 and "--seqs (SEQS) must be a positive integer, not '0'" in r.stderr
    r = cli("hls.vectors", "--config", "configs/tiny.toml", "--out", str(tmp_path), "--steps", "x")
    assert r.returncode == 2 and "--steps (STEPS) must be a positive integer, not 'x'" in r.stderr
    r = cli("hls.vectors", "--config", "configs/tiny.toml", "--out", str(tmp_path), "--seed", "-1")
    assert r.returncode == 2 and "--seed (SEED) must be an integer >= 0, not '-1'" in r.stderr
    r = cli("hls.cpp", "--config", "configs/tiny.toml", "--out", str(tmp_path), "--params", "no.npz")
    assert r.returncode == 2 and "--params = 'no.npz': no such file" in r.stderr
    r = cli("hls.cpp", "--config", "configs/tiny.toml", "--out", str(tmp_path), "--max-steps", "0")
    assert r.returncode == 2 and "--max-steps (MAX_STEPS) must be a positive integer" in r.stderr


def test_missing_compiler_is_named(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(cpp.HlsError, match=r"'g\+\+' not found on PATH: apt-get install -y g\+\+"):
        cpp.find_cxx("g++")


# ---- the building blocks on their own: ties and edges that random sequences rarely reach --------------

def compile_probe(name: str, body: str, tmp_path: Path) -> str:
    """Compile ``body`` (statements in main, namespace alias ``cell``) against config ``name``'s header; run it."""
    gxx_or_fail()
    cfg, scale = CASES[name]
    q = quantize(CellParams.for_config(cfg, seed=1, scale=scale), cfg)
    paths = cpp.generate(cfg, q, tmp_path / "hls")
    src = tmp_path / "probe.cpp"
    src.write_text(f'#include "{paths["header"].name}"\n#include <cstdio>\nnamespace cell = {cpp._Gen(cfg, q, 1).ns};\n'
                   f"int main() {{\n{body}\n    return 0;\n}}\n")
    exe = tmp_path / "probe"
    r = subprocess.run([cpp.find_cxx(), *cpp.CXXFLAGS, f"-I{paths['header'].parent}", "-o", str(exe), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_requantize_matches_the_fraction_definition(tmp_path):
    """cell::requantize for every rounding and overflow mode, on ties, edges and random values,
    equals model.fixedpoint.requantize_exact (the Fraction-based definition)."""
    from model.fixedpoint import Fmt, OVERFLOW_MODES, ROUNDING_MODES, requantize_exact
    rng = np.random.default_rng(SEED)
    combos = [(20, Fmt(True, 4, 8)), (12, Fmt(True, 2, 10)), (9, Fmt(False, 1, 6)), (5, Fmt(True, 3, 5)),
              (3, Fmt(True, 4, 6))]          # last: from_frac < frac_bits, an exact left shift
    body, want = [], []
    for from_frac, f in combos:
        s = from_frac - f.frac_bits
        half = 1 << max(s - 1, 0)
        vals = [k * half for k in range(-9, 10)] + [k * half + d for k in (-3, 3) for d in (-1, 1)]
        lim = (f.max_int + 2) << max(s, 0)
        vals += [lim, -lim, lim * 3, -lim * 3] + rng.integers(-4 * lim, 4 * lim, 40).tolist()
        arr = ", ".join(f"{v}LL" for v in vals)
        for r in ROUNDING_MODES:
            for o in OVERFLOW_MODES:
                body.append(f"    {{ const long long v[] = {{{arr}}};\n"
                            f"      for (long long x : v) std::printf(\"%lld\\n\", (long long)cell::requantize<"
                            f"{from_frac}, {f.frac_bits}, {f.width}, {'true' if f.signed else 'false'}, "
                            f"cell::{cpp.ROUNDING[r]}, cell::{cpp.OVERFLOW[o]}>(x)); }}")
                want += [requantize_exact(v, from_frac, f, r, o) for v in vals]
    got = [int(v) for v in compile_probe("tiny", "\n".join(body), tmp_path).split()]
    assert got == want


@pytest.mark.parametrize("name", sorted(n for n in CASES if not n.startswith("x_")))
def test_activations_every_code(name, tmp_path):
    """sigmoid, tanh_pre (and tanh_cell) on every input code equal Activation.evaluate."""
    from model.activations import make_activation
    cfg, _ = CASES[name]
    f = cfg.formats
    acts = cfg.cell.activations()
    body, want = [], []
    for fn, kind, i, o in acts:
        act = make_activation(kind, getattr(cfg, kind), f[i], f[o])
        body.append(f"    for (long long x = {f[i].min_int}; x <= {f[i].max_int}; ++x)\n"
                    f"        std::printf(\"%lld\\n\", (long long)cell::{fn}(cell::{i}_t(x)));")
        want.append(act.evaluate(act.codes()))
    got = np.array(compile_probe(name, "\n".join(body), tmp_path).split(), dtype=np.int64)
    assert np.array_equal(got, np.concatenate(want))
