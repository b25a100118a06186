"""The hls4ml profile (model/hls4ml_profile.py) against hls4ml 1.3's own C++ simulation and hand calculations.

The C++ check converts the PyTorch module with hls4ml's converter as a user would (the last h only),
compiles it (two compiles, one per cell) and compares every element as integers. hls4ml's outputs are
cached under build/hls4ml/tests/ by a hash of everything they depend on, so a rerun does not compile.
"""
from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.fixedpoint import Fmt
from model.hls4ml_profile import (Hls4mlCell, Hls4mlError, Hls4mlGru, Hls4mlLstm, Hls4mlTypes, layer_class,
                                  quantize_weights, sigmoid_table, table_index, tanh_table)
from model.params import CellParams

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "hls4ml" / "tests"


def test_tables_are_the_functions_truncated_to_ten_bits():
    """Entry k samples x = (k - 512) / 64 (sigmoid) or (k - 512) / 128 (tanh), floor(f(x) * 1024)."""
    sig, tanh = sigmoid_table(), tanh_table()
    assert sig.shape == tanh.shape == (1024,)
    for k in range(1024):
        s = 1024 / (1 + math.exp(-(k - 512) / 64))
        t = 1024 * math.tanh((k - 512) / 128)
        assert sig[k] == math.floor(s), k
        assert tanh[k] == math.floor(t), k
    assert sig[0] == 0 and sig[512] == 512 and sig[1023] == 1023     # 1023.65 -> 1023
    assert tanh[0] == -1024 and tanh[512] == 0 and tanh[1023] == 1023


def test_table_index_truncates_toward_zero():
    """int(x * 64) + 512 for sigmoid, int(x * 128) + 512 for tanh, C's int() rounding toward zero."""
    # x = -5/1024: x * 64 = -0.3125 -> 0 (floor would give -1)
    assert table_index(np.array([-5]), 10, 16, 1024)[0] == 512
    # x = -16/1024: -1.0 -> -1
    assert table_index(np.array([-16]), 10, 16, 1024)[0] == 511
    # x = 0.5 (raw 16 at 5 fractional bits): 32 -> 544; tanh: 64 -> 576
    assert table_index(np.array([16]), 5, 16, 1024)[0] == 544
    assert table_index(np.array([16]), 5, 8, 1024)[0] == 576
    # x = -1/32 in s3.5: sigmoid -2 -> 510, tanh -4 -> 508; clamps at both ends
    assert table_index(np.array([-1]), 5, 16, 1024)[0] == 510
    assert table_index(np.array([-1]), 5, 8, 1024)[0] == 508
    assert list(table_index(np.array([-8 * 1024, 8 * 1024]), 10, 16, 1024)) == [0, 1023]


def test_weights_round_in_decimal_before_truncation():
    """hls4ml prints a weight with as many decimals as fractional bits, then truncates the decimal."""
    f = Fmt.parse("ap_fixed<8,3>")
    # 0.031249 prints as 0.03125 = 1/32 -> 1 (floor(0.031249 * 32) would be 0)
    # -0.0312501 prints as -0.03125 -> -1 (floor would be -2); 0.07 prints as 0.07000 -> floor(2.24) = 2
    assert list(quantize_weights([0.031249, -0.0312501, 0.07], f)) == [1, -1, 2]
    # 4.0 wraps to -4.0 in ap_fixed<8,3>
    assert quantize_weights([4.0], f)[0] == -128


def _params(kind: str, seed: int, options=None) -> CellParams:
    rng = np.random.default_rng(seed)
    g = 4 if kind == "lstm" else 3
    peep = rng.uniform(-0.5, 0.5, (3, 8)) if (options or {}).get("peephole", "none") != "none" else None
    return CellParams(kind, rng.uniform(-0.6, 0.6, (g * 8, 5)), rng.uniform(-0.6, 0.6, (g * 8, 8)),
                      rng.uniform(-0.5, 0.5, g * 8), rng.uniform(-0.5, 0.5, g * 8), w_peep=peep, options=options or {})


def test_rejects_what_hls4ml_cannot_express():
    t = Hls4mlTypes.uniform("ap_fixed<8,3>")
    with pytest.raises(Hls4mlError, match="reset-after GRU"):
        Hls4mlCell.from_params(_params("gru", 0, {"reset": "before"}), t)
    with pytest.raises(Hls4mlError, match="plain LSTM"):
        Hls4mlCell.from_params(_params("cifg", 0), t)
    mixed = Hls4mlTypes("ap_fixed<8,3>", "ap_fixed<8,3>", "ap_fixed<8,3>", "ap_fixed<8,3>", "ap_fixed<8,3>",
                        "ap_fixed<12,4>", "ap_fixed<8,3>")
    with pytest.raises(Hls4mlError, match=r"LSTM compiles only when input, accum and result are one type"):
        Hls4mlCell.from_params(_params("lstm", 0), mixed)
    Hls4mlCell.from_params(_params("gru", 0), mixed)
    with pytest.raises(Hls4mlError, match=r"raw x values must lie in the input type ap_fixed<8,3>"):
        Hls4mlCell.from_params(_params("gru", 0), t).run(np.full((1, 2, 5), 128))
    with pytest.raises(Hls4mlError, match=r"x must have shape \(batch, steps, 5\)"):
        Hls4mlCell.from_params(_params("lstm", 0), t).run(np.zeros((2, 3, 4)))
    with pytest.raises(Hls4mlError, match="accum: cannot parse format 'q16'"):
        Hls4mlTypes("ap_fixed<8,3>", "ap_fixed<8,3>", "ap_fixed<8,3>", "ap_fixed<8,3>", "ap_fixed<8,3>", "q16",
                    "ap_fixed<8,3>")
    with pytest.raises(Hls4mlError, match="table_size must be an integer >= 2, not 0"):
        Hls4mlTypes.uniform("ap_fixed<8,3>", table_size=0)


def _hls4ml_last_h(params: CellParams, types: Hls4mlTypes, x: np.ndarray, name: str) -> np.ndarray:
    """hls4ml's C++ simulation of ``params`` on ``x``: the last h as raw integers (cached by content)."""
    import hls4ml

    h = hashlib.sha256(f"{types.as_dict()}-{x.shape}-{hls4ml.__version__}".encode())
    for a in (params.w_ih, params.w_hh, params.b_ih, params.b_hh, x):
        h.update(np.ascontiguousarray(a).tobytes())
    cached = CACHE / f"{name}-{h.hexdigest()[:16]}.npy"
    if cached.is_file():
        return np.load(cached)
    from study.hls4ml_compare import hls4ml_h, hls4ml_model

    out_dir = CACHE / f"{name}-project"
    hm = hls4ml_model(params, types, x.shape[1], out_dir, sequences=False, log=lambda *_: None)
    raw = hls4ml_h(hm, x, types.result, params.hidden_size)
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.save(cached, raw)
    shutil.rmtree(out_dir, ignore_errors=True)
    return raw


@pytest.mark.skipif(shutil.which("g++") is None, reason="hls4ml's C++ simulation needs g++")
@pytest.mark.parametrize("name", ["fsdd_lstm32", "fsdd_gru32"])
def test_last_h_identical_to_hls4mls_csim(name):
    """Trained FSDD models at ap_fixed<8,3>: eight test sequences of 20 steps, every element of the last h."""
    from study import data, models

    m = models.load(name)
    _, test = m.datasets()
    idx = data.by_length(test.seqs)[20][:8]
    x = np.stack([test.seqs[i] for i in idx])
    types = Hls4mlTypes.uniform("ap_fixed<8,3>")
    want = _hls4ml_last_h(m.params, types, x, name)
    got = Hls4mlCell.from_params(m.params, types).last_h(x)
    assert want.shape == got.shape == (len(idx), 32)
    assert np.abs(want).max() > 0
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("argv, message", [
    (["--formats", "s3.5"], "--formats takes ap_fixed<W,I> formats (hls4ml's spelling), not 's3.5'"),
    (["--formats", "ap_fixed<8>"], "--formats: cannot parse format 'ap_fixed<8>'"),
    (["--models", "nope"], "model 'nope': "),
    (["--models", ","], "--models must name at least one trained model"),
])
def test_cli_refuses_bad_input(argv, message, capsys):
    from study.hls4ml_compare import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("kind, options, layer", [
    ("lstm", {"peephole": "none"}, Hls4mlLstm), ("lstm", {"peephole": "c_prev"}, None),
    ("lstm", {"peephole": "c_new"}, None), ("cifg", {"coupling": "i=1-f"}, None), ("cifg", {"coupling": "f=1-i"}, None),
    ("gru", {"reset": "after"}, Hls4mlGru), ("gru", {"reset": "before"}, None),
])
def test_the_kind_declares_its_hls4ml_layer(kind, options, layer):
    # hls4ml 1.3 has two recurrent layers (nnet_recurrent.h): lstm_static, plain, and gru_static, reset after
    p = _params(kind, 0, options)
    if layer is None:
        with pytest.raises(Hls4mlError, match="hls4ml 1.3 has a plain LSTM and a reset-after GRU"):
            layer_class(p)
    else:
        assert layer_class(p) is layer
        assert type(Hls4mlCell.from_params(p, Hls4mlTypes.uniform("ap_fixed<8,3>"))) is layer
