"""Quantization-aware training: the torch forward against the golden model (integers, every element), the
straight-through gradients by hand, a tiny training run that stays bit-exact, and rejected input."""
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from model import golden
from model.config import Config
from model.fixedpoint import Fmt, quantize_exact
from model.network import HeadParams
from model.params import CellParams, quantize
from study import calibrate, models, qat

ROOT = Path(__file__).resolve().parent.parent


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


def _small_run():
    m = models.load("fsdd_lstm32")
    train, test = m.datasets()
    step = len(train.seqs) // 40
    small, val = train.subset(np.arange(0, 40 * step, step)[:20]), train.subset(np.arange(0, 40 * step, step)[20:40])
    ranges = calibrate.observe_ranges(m.params, small.seqs)
    cfg = qat.make_config(m, ranges, qat.point_widths(3, 4), "t")
    return m, test, small, val, cfg


def _golden_accuracy(cell, head, cfg, ds):
    q = quantize(cell, cfg)
    correct = 0
    for seq, label in zip(ds.seqs, ds.labels):
        h = golden.run(q, np.asarray(seq, dtype=np.float64)[None], cfg).outputs[0, -1]
        correct += int(np.argmax(cfg.fmt("hidden").to_float(h) @ head.weight.T + head.bias) == label)
    return correct / len(ds.seqs)


def test_tiny_training_run_stays_bit_exact_and_keeps_the_best_validation_epoch():
    torch.set_num_threads(1)
    m, test, small, val, cfg = _small_run()
    net = qat.qat_cell(m.params, m.head_params, cfg)
    before = net.w_hh.detach().clone()
    teacher = m.head(m.float_last_h(small.seqs))
    hist = qat.train(net, small, epochs=2, batch=10, log=lambda *a: None, teacher=teacher, val=val)
    assert len(hist.epochs) == 2 and all(np.isfinite(e[0]) for e in hist.epochs)
    cell, head = net.deployed()
    # the kept parameters classify the validation set (golden model, one sequence at a time) as well as the
    # best of the start and the epochs
    accs = [hist.val_start] + [e[2] for e in hist.epochs]
    assert _golden_accuracy(cell, head, cfg, val) == max(accs)
    assert accs[hist.best] == max(accs)
    assert _golden_accuracy(m.params, m.head_params, cfg, val) == hist.val_start
    if hist.best > 0:
        assert not torch.equal(before, net.w_hh.detach())    # the kept epoch moved the latent weights
    few = [test.seqs[i] for i in range(0, 600, 75)]
    r = qat.check_bit_exact(net, few)
    assert (r.sequences, r.elements) == (8, 8 * 32)
    assert r.ok, r


def test_training_that_only_hurts_keeps_the_starting_parameters():
    torch.set_num_threads(1)
    m, _, small, val, cfg = _small_run()
    net = qat.qat_cell(m.params, m.head_params, cfg)
    # a learning rate of 50 throws every weight into saturation; validation accuracy falls and epoch 0 stays
    hist = qat.train(net, small, epochs=1, batch=10, lr=50.0, log=lambda *a: None, val=val)
    assert hist.epochs[0][2] < hist.val_start and hist.best == 0
    cell, head = net.deployed()
    assert np.array_equal(cell.w_ih, m.params.w_ih) and np.array_equal(cell.w_hh, m.params.w_hh)
    assert np.array_equal(head.weight, m.head_params.weight)


def test_validation_split_is_stratified_and_disjoint():
    m = models.load("fsdd_gru32")
    train, _ = m.datasets()
    fit, val = qat.split_validation(train)
    assert len(fit.seqs) + len(val.seqs) == len(train.seqs)
    for c in range(train.n_classes):
        n = int(np.sum(train.labels == c))
        assert int(np.sum(val.labels == c)) == round(n / 10)
    ids = {id(s) for s in fit.seqs}
    assert not any(id(s) in ids for s in val.seqs)


def test_weight_format_choice():
    m = models.load("fsdd_gru32")
    train, _ = m.datasets()
    val = train.subset(np.arange(0, len(train.seqs), len(train.seqs) // 30)[:30])
    ranges = calibrate.observe_ranges(m.params, train.seqs[:200])
    cfg = qat.make_config(m, ranges, qat.point_widths(3, 4), "t")
    # the GRU's largest weight is about 1.53: calibration takes 2 integer bits, the narrower candidate 1
    assert np.abs(np.concatenate([m.params.w_ih.ravel(), m.params.w_hh.ravel()])).max() > 1
    assert str(cfg.fmt("weight")) == "s2.1"
    narrow = cfg.replace(formats={"weight": "s1.2"})
    acc = {str(c.fmt("weight")): _golden_accuracy(m.params, m.head_params, c, val) for c in (cfg, narrow)}
    chosen = qat.choose_weight_format(m, cfg, val, log=lambda *a: None)
    assert str(chosen.fmt("weight")) == ("s1.2" if acc["s1.2"] > acc["s2.1"] else "s2.1")
    assert chosen.fmt("input") == cfg.fmt("input") and chosen.fmt("hidden") == cfg.fmt("hidden")
    one = cfg.replace(formats={"weight": "s1.2"})
    assert qat.choose_weight_format(m, one, val, log=lambda *a: None) is one   # no integer bit to give up


def test_rejects_peephole_and_wide_formats():
    p = CellParams.random("lstm", 3, 5, seed=1, peephole="c_prev")
    cfg = _config("lstm", "half_even", "saturate", "pwl", "pwl", peephole="c_prev")
    with pytest.raises(qat.QatError, match="no steps for a peephole-lstm"):
        qat.qat_cell(p, HeadParams(np.zeros((2, 5)), np.zeros(2)), cfg)
    # a kind with no QAT step module (model.kinds' qat None): the CIFG; the message lists the kinds that have one
    cifg = Config.load(ROOT / "configs" / "cifg_small.toml")
    with pytest.raises(qat.QatError) as e:
        qat.check_exact(cifg)
    assert str(e.value) == ("QAT has no steps for a cifg-lstm (f=1-i); accepted: lstm with peephole in ('none',); "
                            "gru with reset in ('after', 'before')")
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
