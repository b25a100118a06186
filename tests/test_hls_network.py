"""The generated C++ reference of networks (hls.network) against the network golden model.

Each network's C++ is compiled with ``g++ -std=c++17 -Wall -Wextra -Werror`` and its testbench replays
a vector set of hls.network_vectors, whose expected values come from ``model.network.golden``: every
layer's output at every step, the final state of every layer and direction, the logits and the class,
over sequences of different lengths, all but the first from a random non-zero initial state.  The
testbench is shown to fail on one changed value in each expected file and on a changed initial state.
The 2-layer LSTM's parameters bring a default initial state (as an ONNX graph's constant initial_h /
initial_c do), which the header's ``default_state`` holds and its first sequence starts from.
"""
import os
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from hls import cpp, network
from hls import network_vectors as nv
from hls.cli import network_params_for
from model.network import NetworkConfig, NetworkParams, golden

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "hls-network-tests" / os.environ.get("PYTEST_XDIST_WORKER", "main")
TINY = (ROOT / "configs" / "tiny.toml").read_text()
GRU = (ROOT / "configs" / "gru_small.toml").read_text()
HEAD = '[head]\nclasses = 4\nformats = { weight = "s2.8", bias = "s3.8", logits = "s3.6" }\n'
LENGTHS = (4, 1, 7, 2)
CASES = {
    "lstm2_head": (TINY, "[network]\nlayers = 2\n" + HEAD),
    "bigru_then_uni": (GRU, "[network]\nmax_steps = 8\n[[layer]]\ndirections = 2\n[[layer]]\n"
                            "cell = { hidden_size = 3 }\n"),
    "mixed_lstm_gru": (TINY, "[[layer]]\ndirections = 2\n[[layer]]\ncell = { kind = \"gru\", hidden_size = 5 }\n"
                             "formats = { hidden = \"s2.9\" }\n" + HEAD.replace("s3.6", "s4.5")),
}


def _cfg(case) -> NetworkConfig:
    base, extra = CASES[case]
    raw = tomllib.loads(base + "\n" + extra)
    raw["name"] = f"n_{case}"
    return NetworkConfig.from_toml(raw)


def _expected_count(ncfg) -> int:
    """Values the testbench compares: outputs at every step, the final state, logits and class."""
    steps = sum(LENGTHS)
    n = steps * sum(ncfg.output_size(k) for k in range(ncfg.num_layers))
    n += (len(LENGTHS) + 1) * sum(len(c.cell.state) * c.hidden_size for _, _, c in ncfg.slots())  # + default_state
    if ncfg.head is not None:
        n += len(LENGTHS) * (ncfg.head.classes + 1)
    return n


def _build(case, param_seed=1):
    """(ncfg, source paths, testbench executable, vector folder, initial states, QNetwork): generated,
    compiled, vectors written."""
    ncfg = _cfg(case)
    q, _ = network_params_for(ncfg, None, param_seed)
    if case == "lstm2_head":
        net = NetworkParams.for_config(ncfg, param_seed)
        rng = np.random.default_rng(3)
        init = [tuple(rng.uniform(-0.5, 0.5, c.hidden_size) for _ in c.cell.state) for _, _, c in ncfg.slots()]
        q = golden.quantize(NetworkParams(net.layers, net.head, init), ncfg)
    out = BUILD / case
    paths = network.generate(ncfg, q, out / "hls")
    vec = out / "vectors"
    states = nv.make_states(ncfg, q, len(LENGTHS), seed=5)
    nv.write(vec, ncfg, q, nv.make_sequences(ncfg, LENGTHS, seed=4), states)
    return ncfg, paths, cpp.compile_tb(paths), vec, states, q


@pytest.fixture(scope="module")
def built():
    cpp.find_cxx()
    return {case: _build(case) for case in CASES}


def _run(exe, vec):
    r = network.run_testbench(exe, vec)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_bit_exact_against_the_golden_model(built, case):
    ncfg, paths, exe, vec, states, _ = built[case]
    # the later sequences really start from a non-zero state, in every layer and direction
    assert all(np.any(v != 0) for s in states[1:] for slot in s for v in slot)
    if case == "lstm2_head":
        assert all(np.any(v != 0) for slot in states[0] for v in slot)
        assert "DEFAULT_C_L1_FWD[l1_fwd::HIDDEN_SIZE]" in paths["header"].read_text()
    rc, out = _run(exe, vec)
    assert rc == 0, out
    n = _expected_count(ncfg)
    assert f"{n} elements compared, 0 mismatches" in out and f"{n} passed, 0 failed" in out


def _change_one(path: Path, index: int, bit: int = 0) -> None:
    """Flip ``bit`` of the value on line ``index``."""
    lines = path.read_text().splitlines()
    lines[index] = f"{int(lines[index], 16) ^ (1 << bit):0{len(lines[index])}x}"
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("case", ["mixed_lstm_gru", "bigru_then_uni"])
def test_one_changed_value_fails(built, case, tmp_path):
    """One changed value in any expected file is a mismatch naming that tensor; a changed initial state
    changes what the C++ computes, so the run no longer matches."""
    ncfg, _, exe, vec, _, _ = built[case]
    names = [f"y{k}" for k in range(ncfg.num_layers)]
    names += [f"{n}n_{nv.slot_label(i, d)}" for i, d, c in ncfg.slots() for n, _ in c.cell.state]
    names += ["logits", "class"] if ncfg.head is not None else []
    for name in names:
        bad = tmp_path / name
        bad.mkdir()
        for f in vec.iterdir():
            (bad / f.name).write_bytes(f.read_bytes())
        count = len((bad / f"{name}.hex").read_text().splitlines())
        _change_one(bad / f"{name}.hex", count // 2)
        rc, out = _run(exe, bad)
        assert rc == 1, (name, out)
        assert re.search(rf"MISMATCH {name} \(sequence top\): sequence \d+, step \d+, element \d+", out), out
        assert "1 failed" in out, out
    bad = tmp_path / "initial"
    bad.mkdir()
    for f in vec.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    _change_one(bad / "h0_l0_rev.hex", 2 * ncfg.layers[0].hidden_size, bit=7)  # sequence 2, unit 0
    rc, out = _run(exe, bad)
    assert rc == 1 and "MISMATCH y0 (sequence top): sequence 2" in out, out
    _change_one(bad / "h0_l0_fwd.hex", 0)  # sequence 0 starts from the default initial state
    rc, out = _run(exe, bad)
    assert rc == 1 and "MISMATCH h0_l0_fwd (default_state top): sequence 0, step 0, element 0" in out, out


def test_other_parameters_and_long_sequences_are_refused(built, tmp_path):
    ncfg, _, exe, _, _, _ = built["lstm2_head"]
    q2, _ = network_params_for(ncfg, None, 2)
    nv.write(tmp_path / "other", ncfg, q2, nv.make_sequences(ncfg, [2], seed=1), nv.make_states(ncfg, q2, 1, 1))
    rc, out = _run(exe, tmp_path / "other")
    assert rc == 2 and "network_digest differs" in out, out
    q = built["lstm2_head"][-1]
    nv.write(tmp_path / "long", ncfg, q, nv.make_sequences(ncfg, [cpp.DEFAULT_MAX_STEPS + 1], seed=1),
             nv.make_states(ncfg, q, 1, 1))
    rc, out = _run(exe, tmp_path / "long")
    assert rc == 2 and f"sequence 0 has {cpp.DEFAULT_MAX_STEPS + 1} steps" in out, out


def test_make_hls_on_a_network_file(tmp_path, capsys):
    """What `make hls CONFIG=configs/networks/tiny_net.toml` runs: sources, vectors, build and check."""
    rc = cpp.main(["--config", "configs/networks/tiny_net.toml", "--out", str(tmp_path), "--compile"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "tiny_net-l1-rev.h" in out and re.search(r"tiny_net: 4 sequences, \d+ steps, \d+ elements compared, "
                                                   r"0 mismatches", out), out
    assert (tmp_path / "tiny_net" / "vectors" / "manifest.json").is_file()
    # the cell file path is unchanged: one header, no network sources
    assert cpp.main(["--config", "configs/tiny.toml", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in (tmp_path / "tiny" / "hls").iterdir()) == [
        "Makefile", "tiny.h", "tiny_tb.cpp", "tiny_top.cpp"]


def test_params_file(tmp_path, capsys):
    """A NetworkParams .npz (--params) is what the C++ carries; a file of another shape is refused."""
    ncfg = NetworkConfig.load(ROOT / "configs" / "networks" / "tiny_net.toml")
    q, _ = network_params_for(ncfg, None, 7)
    from model.network import HeadParams
    from model.params import CellParams
    net = NetworkParams([tuple(CellParams.for_config(c, seed=3 + d) for d in range(ncfg.directions[i]))
                         for i, c in enumerate(ncfg.layers)],
                        HeadParams(np.full((3, 8), 0.25), np.array([0.5, -0.5, 0.0])))
    net.save(tmp_path / "net.npz")
    q_file, src = network_params_for(ncfg, str(tmp_path / "net.npz"), 1)
    assert src == {"params": "net.npz"} and nv.network_digest(ncfg, q_file) != nv.network_digest(ncfg, q)
    assert np.array_equal(q_file.head.weight, np.full((3, 8), 64))  # 0.25 in s2.8
    NetworkParams(list(net.layers[:1])).save(tmp_path / "one.npz")
    rc = cpp.main(["--config", "configs/networks/tiny_net.toml", "--out", str(tmp_path), "--params",
                   str(tmp_path / "one.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "1 layer(s) but config 'tiny_net' has 2" in err, err
    rc = cpp.main(["--config", "configs/networks/tiny_net.toml", "--out", str(tmp_path), "--params", "no.npz"])
    err = capsys.readouterr().err
    assert rc == 2 and "--params = 'no.npz': no such file" in err, err


@pytest.mark.skipif(cpp.ap_types_include() is None, reason="no ap_int.h (hls4ml's copy or $RNNKIT_AP_TYPES)")
def test_ap_int_build(built, tmp_path):
    """With ``ap_int<W>`` tensor types (``RNNKIT_AP_INT``) the network is bit-exact too."""
    ncfg, paths, _, vec, _, _ = built["mixed_lstm_gru"]
    exe = cpp.compile_tb(paths, exe=tmp_path / "tb_ap", ap_include=cpp.ap_types_include())
    rc, out = _run(exe, vec)
    assert rc == 0 and f"{_expected_count(ncfg)} passed, 0 failed" in out, out


def test_a_layer_without_an_integer_activation_is_named(tmp_path):
    raw = tomllib.loads(TINY + "\n[[layer]]\n[[layer]]\nactivations = { tanh = { method = \"exact\" } }\n")
    ncfg = NetworkConfig.from_toml(raw)
    q, _ = network_params_for(ncfg, None, 1)
    with pytest.raises(cpp.HlsError, match=r"^layer 1: tanh.method = 'exact' has no integer definition"):
        network.generate(ncfg, q, tmp_path)


def test_head_on_every_step_is_refused(tmp_path):
    raw = tomllib.loads(TINY + '\n[network]\nlayers = 2\n[head]\nclasses = 3\nevery_step = true\n'
                        'formats = { weight = "s2.8", bias = "s3.8", logits = "s5.8" }\n')
    ncfg = NetworkConfig.from_toml(raw)
    q, _ = network_params_for(ncfg, None, 1)
    with pytest.raises(cpp.HlsError, match=r"^head.every_step = true: the C\+\+ reference computes the head on a "
                                           r"sequence's last step \(accepted: every_step = false"):
        network.generate(ncfg, q, tmp_path)
