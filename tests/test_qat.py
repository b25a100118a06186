"""Quantization-aware training: the torch forward against the golden model (integers, every element), the
straight-through gradients by hand, a tiny training run that stays bit-exact, and rejected input."""
from fractions import Fraction

import numpy as np
import pytest
import torch

from model import golden
from model.config import Config
from model.fixedpoint import Fmt, quantize_exact
from model.network import HeadParams
from model.params import CellParams, quantize
from study import calibrate, models, qat


def _config(kind, rounding, overflow, sigmoid, tanh, **opts):
    fmts = {**({"peephole": "s1.6"} if opts.get("peephole", "none") != "none" else {}),"input": "s3.5", "weight": "s1.6", "bias": "s2.8", "pre": "s4.6", "gate": "u0.7",
            "candidate": "s1.6", "cell": "s3.7", "cell_act": "s1.5", "hidden": "s1.6"}
    if kind == "gru":
        fmts = {k: v for k, v in fmts.items() if k not in ("cell", "cell_act")}
    return Config.from_dict({"name": "t", "kind": kind, "input_size": 3, "hidden_size": 5, **opts,
                             "formats": fmts, "modes": {"rounding": rounding, "overflow": overflow},
                             "sigmoid": sigmoid, "tanh": tanh, "lanes": 1})


CASES = [
    ("lstm", {}, "half_even", "saturate", {"method": "lut_interp", "size": 16, "range": 8.0}, "pwl"),
    ("lstm", {}, "truncate", "wrap", "hard", {"method": "lut", "size": 32, "range": 4.0}),
    ("gru", {"reset": "after"}, "half_up", "saturate", "pwl", {"method": "lut_interp", "size": 64, "range": 4.0}),
    ("gru", {"reset": "after"}, "truncate", "wrap", {"method": "lut", "size": 16, "range": 8.0}, "hard"),
    ("gru", {"reset": "before"}, "half_even", "wrap", "hard", "pwl"),
]


@pytest.mark.parametrize("kind, opts, rounding, overflow, sig, tanh", CASES)
def test_forward_is_the_golden_model(kind, opts, rounding, overflow, sig, tanh):
    # large weights and inputs drive every requantization point into saturation or wrapping
    cfg = _config(kind, rounding, overflow, sig, tanh, **opts)
    p = CellParams.random(kind, 3, 5, seed=7, scale=1.5, **opts)
    x = np.random.default_rng(3).normal(0, 2.5, (6, 9, 3))
    head = HeadParams(np.zeros((2, 5)), np.zeros(2))
    res = golden.run(quantize(p, cfg), x, cfg)
    net = qat.qat_cell(p, head, cfg)
    with torch.no_grad():
        _, _, hs = net(x, all_steps=True)
    raw = hs.numpy() * 2.0 ** cfg.fmt("hidden").frac_bits
    assert np.array_equal(raw, np.rint(raw))
    assert np.array_equal(raw.astype(np.int64), res.outputs)  # every step, every element
    assert sum(res.saturated.values()) > 0                   # the overflow path was exercised


@pytest.mark.parametrize("rounding", ["truncate", "half_up", "half_even"])
def test_ste_quantize_values_and_gradient(rounding):
    f = Fmt.parse("s2.3")  # raw -16..15, step 1/8
    v = torch.tensor([-3.0, -0.0625, 0.0625, 0.1875, 1.3, 1.875, 2.5], dtype=torch.float64, requires_grad=True)
    y = qat.ste_quantize(v, f, rounding, "saturate")
    want = [quantize_exact(float(a), f, rounding, "saturate") / 8 for a in v.detach()]
    assert y.detach().tolist() == want
    y.sum().backward()
    # gradient passes where the rounded value fits (|v| < 2), stops where it saturated
    assert v.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_ste_quantize_wrap_by_hand():
    f = Fmt.parse("s2.3")
    v = torch.tensor([2.5, -2.25], dtype=torch.float64)
    # 2.5 = raw 20 -> 20 - 32 = -12 -> -1.5; -2.25 = raw -18 -> 14 -> 1.75
    assert qat.ste_quantize(v, f, "half_even", "wrap").tolist() == [float(Fraction(-12, 8)), float(Fraction(14, 8))]


def test_tiny_training_run_stays_bit_exact():
    torch.set_num_threads(1)
    m = models.load("fsdd_lstm32")
    train, test = m.datasets()
    small = train.subset(np.arange(0, len(train.seqs), len(train.seqs) // 20)[:20])
    ranges = calibrate.observe_ranges(m.params, small.seqs)
    cfg = qat.make_config(m, ranges, qat.point_widths(3, 4), "t")
    net = qat.qat_cell(m.params, m.head_params, cfg)
    before = net.w_hh.detach().clone()
    teacher = m.head(m.float_last_h(small.seqs))
    hist = qat.train(net, small, epochs=1, batch=10, log=lambda *a: None, teacher=teacher)
    assert len(hist) == 1 and np.isfinite(hist[0][0])
    assert not torch.equal(before, net.w_hh.detach())        # the step moved the latent weights
    few = [test.seqs[i] for i in range(0, 600, 75)]
    r = qat.check_bit_exact(net, few)
    assert (r.sequences, r.elements) == (8, 8 * 32)
    assert r.ok, r


def test_rejects_peephole_and_wide_formats():
    p = CellParams.random("lstm", 3, 5, seed=1, peephole="c_prev")
    cfg = _config("lstm", "half_even", "saturate", "pwl", "pwl", peephole="c_prev")
    with pytest.raises(qat.QatError, match="no steps for a peephole-lstm"):
        qat.qat_cell(p, HeadParams(np.zeros((2, 5)), np.zeros(2)), cfg)
    wide = _config("gru", "half_even", "saturate", "pwl", "pwl").replace(formats={"pre": "s6.20"})
    with pytest.raises(qat.QatError, match="wider than 24 bits.*pre \\(26 bits\\)"):
        qat.check_exact(wide)


@pytest.mark.parametrize("argv, msg", [
    (["--points", "W9A9"], "--points: unknown point 'W9A9'"),
    (["--models", "nope"], "--models"),
    (["--epochs", "0"], "--epochs"),
])
def test_cli_errors(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        qat.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err
