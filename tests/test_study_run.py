"""A one-point study end to end on the tiny digits task, checked against PyTorch; hardware cost paths."""
import csv
import json

import numpy as np
import pytest
import torch

from model.config import Config
from model.fixedpoint import Fmt
from study import data, models, report, run, sweep


def _torch_predictions(m: models.TrainedModel, test_seqs):
    """Float predictions of the trained model rebuilt in PyTorch (float64), one sequence at a time."""
    p = m.params
    lstm = torch.nn.LSTM(p.input_size, p.hidden_size, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(p.w_ih))
        lstm.weight_hh_l0.copy_(torch.from_numpy(p.w_hh))
        lstm.bias_ih_l0.copy_(torch.from_numpy(p.b_ih))
        lstm.bias_hh_l0.copy_(torch.from_numpy(p.b_hh))
        hs = np.stack([lstm(torch.from_numpy(s)[None])[1][0][0, 0].numpy() for s in test_seqs])
    meta = json.loads(m.path.read_text())
    logits = hs @ np.array(meta["head"]["weight"]).T + np.array(meta["head"]["bias"])
    return hs, logits.argmax(1)


@pytest.fixture(scope="module")
def tiny_model():
    return models.load("digits_lstm16")


def test_split_and_normalisation_are_the_committed_ones(tiny_model):
    m = tiny_model
    ds = data.load("digits")
    tr, te = data.split(ds.labels, m.meta["split"]["seed"], m.meta["split"]["test_fraction"])
    assert tr.tolist() == m.meta["split"]["train"] and te.tolist() == m.meta["split"]["test"]
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(ds.labels)
    frames = np.concatenate([ds.seqs[i] for i in tr]).astype(np.float64)
    np.testing.assert_allclose(m.norm.mean, frames.mean(0), rtol=1e-12)


def test_one_point_study_end_to_end(tmp_path, tiny_model):
    text = ('name = "one"\nmodel = "digits_lstm16"\ntarget = "none"\n'
            '[[point]]\nlabel = "16-bit"\nweight_bits = 16\nact_bits = 16\ncell_bits = 16\nacc_bits = 16\n')
    (tmp_path / "one.toml").write_text(text)
    sw = sweep.load(tmp_path / "one.toml")
    res = run.run(sw, jobs=1, synth=True, progress=False, log=lambda *a: None)
    out = report.write(res, tmp_path / "rep")
    for f in ("results.csv", "report.md", "summary.json"):
        assert (out / f).is_file(), f
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 1 and rows[0]["label"] == "16-bit" and rows[0]["hw_status"] == "skipped"
    # independent float model: PyTorch with the committed weights on the committed split
    _, test = tiny_model.datasets()
    hs, pred = _torch_predictions(tiny_model, test.seqs)
    torch_acc = float(np.mean(pred == test.labels))
    assert torch_acc == pytest.approx(tiny_model.meta["float_test_accuracy"], abs=1.5 / len(pred))
    r = res["rows"][0]
    # 16-bit per-tensor: the golden model's predictions match float on >= 99.5 % of the test set
    assert r["agreement"] >= 0.995
    assert abs(r["accuracy"] - torch_acc) <= 0.01
    assert float(rows[0]["accuracy"]) == pytest.approx(r["accuracy"])
    np.testing.assert_allclose(res["context"].float_h, hs, atol=1e-9)
    assert r["rms"] < 5e-3
    md = (out / "report.md").read_text()
    assert "16-bit" in md and "ap_fixed<16," in md and "Classifier head: float" in md


def test_uniform_wrap_point_loses_accuracy(tmp_path):
    """ap_fixed<6,2> with truncation and wraparound everywhere: far below float on the digits task."""
    text = ('model = "digits_lstm16"\ntarget = "none"\n[[point]]\nlabel = "w"\nuniform = "ap_fixed<6,2>"\n'
            'rounding = "truncate"\noverflow = "wrap"\n[[point]]\nlabel = "s"\nweight_bits = 16\n')
    (tmp_path / "u.toml").write_text(text)
    res = run.run(sweep.load(tmp_path / "u.toml"), jobs=2, synth=False, progress=False, log=lambda *a: None)
    wrap, ok = res["rows"]
    assert wrap["formats"]["cell"] == "s2.4"
    assert wrap["accuracy"] < ok["accuracy"] - 0.05


def test_hardware_cost_unavailable_with_reason(tmp_path):
    cfg = Config.load("configs/tiny.toml").replace(sigmoid={"method": "exact"})
    out = run.hardware_cost(cfg, "ecp5", "test", cache=tmp_path)
    assert out["hw_status"] == "unavailable" and "exact" in out["hw_reason"]


def test_hardware_cost_synthesizes_and_caches(tmp_path):
    cfg = Config.load("configs/tiny.toml")
    first = run.hardware_cost(cfg, "ecp5", "test", cache=tmp_path)
    assert first["hw_status"] == "ok", first
    assert first["luts"] > 0 and first["ffs"] > 0
    again = run.hardware_cost(cfg, "ecp5", "test", cache=tmp_path)
    assert again == first
    assert len(list(tmp_path.glob("*/result.json"))) == 1


def test_pareto_front():
    rows = [{"index": i, "hw_status": "ok", "luts": c, "accuracy": a}
            for i, (c, a) in enumerate([(100, 0.5), (200, 0.9), (150, 0.4), (300, 0.9), (400, 0.95)])]
    rows.append({"index": 5, "hw_status": "unavailable", "accuracy": 1.0})
    assert report.pareto(rows, "luts") == [0, 1, 4]


def test_quantized_head(tmp_path, tiny_model):
    """The integer head: 16-bit weights give the float head's classes; the logits match a hand computation."""
    m = tiny_model
    _, test = m.datasets()
    hidden = Fmt.parse("s1.15")
    rng = np.random.default_rng(0)
    h_raw = rng.integers(-2 ** 15, 2 ** 15, (50, m.params.hidden_size))
    logits, fmt = run.quantized_head(m, h_raw, hidden, 16, "half_even")
    wf = float(np.abs(m.head_w).max())
    int_bits = int(np.floor(np.log2(wf))) + 2 if wf >= 1 else 1
    assert fmt == f"s{int_bits}.{16 - int_bits}"
    scale = 2.0 ** (15 + 16 - int_bits)
    want = (h_raw / 2 ** 15) @ m.head_w.T + m.head_b
    np.testing.assert_allclose(logits / scale, want, atol=m.params.hidden_size * 2.0 ** -(16 - int_bits))
    assert np.mean(logits.argmax(1) == want.argmax(1)) >= 0.98
    text = ('model = "digits_lstm16"\ntarget = "none"\nhead = "quantized"\n'
            '[[point]]\nlabel = "q16"\nweight_bits = 16\nact_bits = 16\nhead_bits = 16\n')
    (tmp_path / "q.toml").write_text(text)
    res = run.run(sweep.load(tmp_path / "q.toml"), jobs=1, synth=False, progress=False, log=lambda *a: None)
    assert res["rows"][0]["head_format"] == fmt and res["rows"][0]["agreement"] >= 0.99
