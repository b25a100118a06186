"""Calibration helper: integer bits by hand, observed ranges against PyTorch."""
import numpy as np
import pytest
import torch

from model.fixedpoint import Fmt
from model.params import CellParams
from study import calibrate
from study.calibrate import CalibrationError


@pytest.mark.parametrize("m, signed, margin, want", [
    (0.0, True, 1.0, 1), (0.9, True, 1.0, 1), (1.0, True, 1.0, 1), (1.01, True, 1.0, 2),
    (2.0, True, 1.0, 2), (3.9, True, 1.0, 3), (4.0, True, 1.0, 3), (4.01, True, 1.0, 4),
    (47.2, True, 1.0, 7), (64.5, True, 1.0, 8),
    (0.99, False, 1.0, 0), (1.0, False, 1.0, 0), (1.5, False, 1.0, 1), (5.0, False, 1.0, 3),
    (1.5, True, 2.0, 3), (0.9, True, 1.5, 2), (3.0, True, 1.25, 3), (3.5, True, 1.25, 4),
])
def test_int_bits_by_hand(m, signed, margin, want):
    # signed I covers [-2**(I-1), 2**(I-1)), unsigned I covers [0, 2**I)
    assert calibrate.int_bits(m, signed, margin) == want


@pytest.mark.parametrize("bad", [0.5, 0.0, -1.0, float("nan"), True, "2"])
def test_margin_rejected(bad):
    with pytest.raises(CalibrationError, match="margin must be a number >= 1.0"):
        calibrate.int_bits(1.0, True, bad)


def test_range_rejected():
    with pytest.raises(CalibrationError, match="finite magnitude"):
        calibrate.int_bits(float("inf"))


def test_choose_format():
    assert calibrate.choose_format("weight", 8, 0.977) == Fmt.parse("s1.7")
    assert calibrate.choose_format("cell", 16, 47.2) == Fmt.parse("s7.9")
    assert calibrate.choose_format("gate", 8, 0.99998) == Fmt.parse("u0.8")
    assert calibrate.choose_format("input", 8, 5.46) == Fmt.parse("s4.4")
    # a range wider than the width: all integer bits (gates keep one fraction bit)
    assert calibrate.choose_format("cell", 4, 47.2) == Fmt.parse("s4.0")
    assert calibrate.choose_format("gate", 2, 3.0) == Fmt.parse("u1.1")
    assert calibrate.choose_format("weight", 8, 0.9, margin=4.0) == Fmt.parse("s3.5")
    with pytest.raises(CalibrationError, match="width of weight must be an integer from 2 to 40, not 1"):
        calibrate.choose_format("weight", 1, 0.5)
    with pytest.raises(CalibrationError, match="no observed range for cell"):
        calibrate.choose_formats({"weight": 1.0}, {"weight": 8, "cell": 16})


def _torch_ranges(p: CellParams, seqs):
    """Max |value| per tensor from torch.nn.LSTMCell stepped by hand (an independent forward pass)."""
    cell = torch.nn.LSTMCell(p.input_size, p.hidden_size).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p.w_ih))
        cell.weight_hh.copy_(torch.from_numpy(p.w_hh))
        cell.bias_ih.copy_(torch.from_numpy(p.b_ih))
        cell.bias_hh.copy_(torch.from_numpy(p.b_hh))
    out = {"pre": 0.0, "cell": 0.0, "cell_act": 0.0, "hidden": 0.0, "input": 0.0}
    with torch.no_grad():
        for s in seqs:
            x = torch.from_numpy(s)
            h = torch.zeros(1, p.hidden_size, dtype=torch.float64)
            c = torch.zeros_like(h)
            for t in range(len(s)):
                pre = x[t:t + 1] @ cell.weight_ih.T + cell.bias_ih + h @ cell.weight_hh.T + cell.bias_hh
                h, c = cell(x[t:t + 1], (h, c))
                for k, v in (("pre", pre), ("cell", c), ("cell_act", torch.tanh(c)), ("hidden", h),
                             ("input", x[t])):
                    out[k] = max(out[k], float(v.abs().max()))
    return out


def test_observe_ranges_against_torch():
    p = CellParams.random("lstm", 3, 5, seed=4, scale=1.5)
    rng = np.random.default_rng(7)
    seqs = [rng.normal(0, 2, (n, 3)) for n in (1, 4, 4, 9, 2)]
    got = calibrate.observe_ranges(p, seqs)
    want = _torch_ranges(p, seqs)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9), k
    assert got["weight"] == pytest.approx(max(np.abs(p.w_ih).max(), np.abs(p.w_hh).max()))
    assert got["bias"] == pytest.approx(np.abs(p.b_ih + p.b_hh).max())
    assert 0.5 < got["gate"] <= 1.0 and 0 < got["candidate"] < 1.0


def test_observe_ranges_gru_hidden_against_torch():
    p = CellParams.random("gru", 2, 4, seed=2)
    rng = np.random.default_rng(3)
    seqs = [rng.normal(0, 1, (n, 2)) for n in (3, 5)]
    gru = torch.nn.GRU(2, 4, batch_first=True).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(p.w_ih))
        gru.weight_hh_l0.copy_(torch.from_numpy(p.w_hh))
        gru.bias_ih_l0.copy_(torch.from_numpy(p.b_ih))
        gru.bias_hh_l0.copy_(torch.from_numpy(p.b_hh))
        want = max(float(gru(torch.from_numpy(s)[None])[0].abs().max()) for s in seqs)
    got = calibrate.observe_ranges(p, seqs)
    assert got["hidden"] == pytest.approx(want, rel=1e-9)
    assert got["cell"] == 0.0


@pytest.mark.parametrize("reset", ["after", "before"])
def test_observe_ranges_gru_bias_as_stored(reset):
    """The bias range is that of the words the hardware stores (README, 'Parameters'): per row
    b_ih + b_hh, except that a reset-after GRU keeps b_in and b_hn apart.  Hand-built biases:
    b_ih rows (r, z, n) = 1, 1, 2 and b_hh = 1, 1, -1.5 give 2 (r, z rows), 2 (b_in) and 1.5
    (b_hn) reset-after, and 2, 2, 0.5 reset-before."""
    p = CellParams.random("gru", 2, 3, seed=1, reset=reset)
    p.b_ih[:] = np.repeat([1.0, 1.0, 2.0], 3)
    p.b_hh[:] = np.repeat([1.0, 1.0, -1.5], 3)
    got = calibrate.observe_ranges(p, [np.zeros((2, 2))])
    assert got["bias"] == 2.0
    p.b_ih[:] = np.repeat([0.5, 0.5, 0.5], 3)
    p.b_hh[:] = np.repeat([0.25, 0.25, -3.0], 3)
    got = calibrate.observe_ranges(p, [np.zeros((2, 2))])
    # reset-after: max(0.75, 0.5, 3.0) = 3.0; reset-before: max(0.75, 2.5) = 2.5
    assert got["bias"] == (3.0 if reset == "after" else 2.5)
