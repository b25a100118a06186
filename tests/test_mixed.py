"""Mixed-precision search: the cost model against hand-made data, the study's best points read by hand from
the committed reports, the greedy search against a hand-made accuracy rule, the config files, the network's
start point against its committed config and study, bad input."""
from pathlib import Path

import numpy as np
import pytest

from model.config import ActSpec, Config
from model.network import NetworkConfig
from study import calibrate, mixed, models

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lstm():
    m = models.load("fsdd_lstm32")
    train, _ = m.datasets()
    return m, calibrate.observe_ranges(m.params, train.seqs[:50])


@pytest.fixture(scope="module")
def net():
    """The 2-layer LSTM's subject, calibrated on the whole training set (as the study and its config were)."""
    return mixed.NetworkSubject(models.load("fsdd_lstm2x32"))


def test_act_key():
    assert mixed.act_key(ActSpec("lut_interp", 64, 8.0)) == "lut_interp/64"
    assert mixed.act_key({"method": "lut", "size": 16, "range": 4.0}) == "lut/16"
    assert mixed.act_key("pwl") == "pwl"


def test_cost_model_recovers_a_hand_made_linear_cost():
    tensors = ("input", "weight", "hidden")
    cm = mixed.CostModel(tensors)
    rng = np.random.default_rng(0)
    # LUTs = 300 + 5*input + 20*weight + 9*hidden - 40 (sigmoid pwl) - 70 (tanh hard) + 100 (older netlists)
    X, y = [], []
    for _ in range(40):
        w = dict(zip(tensors, rng.integers(2, 17, 3).tolist()))
        sig, tanh = rng.choice(mixed.ACT_KEYS["sigmoid"]), rng.choice(mixed.ACT_KEYS["tanh"])
        older = bool(rng.integers(0, 2))
        X.append(cm.features(w, {"sigmoid": sig, "tanh": tanh}, older))
        y.append(300 + 5 * w["input"] + 20 * w["weight"] + 9 * w["hidden"] - 40 * (sig == "pwl")
                 - 70 * (tanh == "hard") + 100 * older)
    cm.fit(X, y)
    got = dict(zip(cm.names, cm.coef))
    want = {"constant": 300, "older netlists": 100, "width input": 5, "width weight": 20, "width hidden": 9,
            "sigmoid pwl": -40, "sigmoid hard": 0, "tanh hard": -70, "tanh pwl": 0}
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1.0), k  # within one LUT (the ridge term shrinks a little)


def test_refit_with_a_synthesized_point(lstm):
    m, ranges = lstm
    subject = mixed.CellSubject(m, ranges)
    cm = mixed.CostModel(subject.tensors, subject.state_of)
    rng = np.random.default_rng(1)
    X = [cm.features(dict(zip(cm.tensors, rng.integers(2, 17, len(cm.tensors)).tolist())),
                     {"sigmoid": "lut_interp/64", "tanh": "lut_interp/64"}) for _ in range(30)]
    cm.fit(X, [500 + 10 * x[2:2 + len(cm.tensors)].sum() for x in X])   # 10 LUTs per bit, methods never seen
    cfg = mixed.config_at(m, ranges, mixed.start_widths(), 0, 4, "x")  # tanh hard
    assert cm.predict(cfg) == pytest.approx(500 + 10 * sum(mixed.start_widths().values()), abs=1)
    new = cm.refit_with(cfg, 900)
    assert len(new.X) == 31 and len(cm.X) == 30                          # the original keeps its points
    assert new.predict(cfg) == pytest.approx(900, abs=1)                 # the tanh hard term absorbs the miss


def test_study_best_points_read_by_hand():
    # reports/quant/default/report.md: float 98.67 %; uniform ap_fixed<8,3> saturating (#5) 98.33 % at 781 LUTs,
    # weight 5 / act 6 bits (#17) 98.33 % at 869 LUTs; within 0.2 pp only ap_fixed<16,6> (#6) and w6 a6 (#21)
    path = ROOT / "reports" / "quant" / "default" / "results.csv"
    assert mixed.study_best(0.5, path) == {"uniform": 5, "hand-picked": 17}
    assert mixed.study_best(0.2, path) == {"uniform": 6, "hand-picked": 21}


def test_network_study_best_points_read_by_hand():
    # reports/quant/lstm2x32_layers/report.md: float (16-bit everywhere) 99.17 %; the only uniform point
    # (ap_fixed<8,3>, truncate/wrap) 12.83 %; both layers at 6 bits (#4) 99.50 % at 2228 LUTs; of the points
    # changing one layer, layer 1 at 3 bits (#9) 98.83 % at 2403 LUTs is the cheapest within 0.5 pp
    path = ROOT / "reports" / "quant" / "lstm2x32_layers" / "results.csv"
    assert mixed.study_best(0.5, path) == {"hand-picked": 4, "hand-picked per layer": 9}
    assert mixed.study_for("fsdd_lstm2x32").name == "lstm2x32_layers"
    assert mixed.study_for("fsdd_lstm32").name == "default"


class _RuleHalves:
    """Accuracy 1.0 minus 1 pp per tensor narrower than 6 bits and 1 pp for a hard sigmoid."""

    float = {"search": 1.0}

    def evaluate(self, cfg, halves=("search",)):
        narrow = sum(f.width < 6 for f in cfg.formats.values() if f is not None)
        return {"search": 1.0 - 0.01 * (narrow + (cfg.sigmoid.method == "hard"))}


def test_greedy_search_follows_the_rule_and_the_costs(lstm):
    m, ranges = lstm
    subject = mixed.CellSubject(m, ranges)
    cm = mixed.CostModel(subject.tensors, subject.state_of)
    cm.coef = np.zeros(len(cm.names))
    cm.coef[2:2 + len(cm.tensors)] = 1.0                                 # 1 LUT per bit of every tensor
    acts = {n: i for i, n in enumerate(cm.names)}
    cm.coef[acts["sigmoid pwl"]], cm.coef[acts["sigmoid hard"]] = -30, -40
    cm.coef[acts["tanh hard"]] = -40
    cfg, steps = mixed.search(subject, _RuleHalves(), cm, 0.5, log=lambda *a: None)
    assert {t: cfg.fmt(t).width for t in cm.tensors} == dict.fromkeys(cm.tensors, 6)
    assert (cfg.sigmoid.method, cfg.tanh.method) == ("pwl", "hard")
    refused = [s["move"] for s in steps if not s["accepted"]]
    assert "sigmoid lut_interp/64 -> hard" in refused
    assert sorted(r.split()[0] for r in refused if "6 -> 5" in r) == sorted(cm.tensors)


def test_config_file_loads_back(lstm, tmp_path):
    m, ranges = lstm
    cfg = mixed.config_at(m, ranges, {**mixed.start_widths(), "weight": 5, "cell": 11}, 3, 1, "x_mixed").replace(
        float_max_abs=2.0, float_rms=0.5)
    path = tmp_path / "x.toml"
    path.write_text(mixed.config_toml(cfg, path, ["a header"]))
    back = Config.load(path)
    assert back.formats == cfg.formats and (back.sigmoid, back.tanh) == (cfg.sigmoid, cfg.tanh)
    assert (back.lanes, back.name, back.float_max_abs, back.float_rms) == (cfg.lanes, "x_mixed", 2.0, 0.5)
    assert back.source is not None and path.read_text().startswith("# a header\n")
    assert Path(back.params).resolve() == m.path.with_name(m.meta["params"]).resolve()


@pytest.mark.parametrize("argv, msg", [
    (["--tolerance", "0"], "--tolerance must be a number of percentage points in (0, 100), not '0'"),
    (["--tolerance", "x"], "--tolerance must be"),
])
def test_cli_rejects_tolerance(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        mixed.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err


@pytest.mark.parametrize("model, msg", [("fsdd_bigru32", "networks of one-direction layers with a head"),
                                        ("no_such_model", "'no_such_model'")])
def test_cli_rejects_model(model, msg, capsys, tmp_path):
    assert mixed.main(["--model", model, "--out", str(tmp_path), "--config-out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err


def test_network_start_is_the_committed_8_bit_config_and_its_accuracy(net):
    """The search's start is configs/networks/fsdd_lstm2x32.toml (the study's 8-bit point, written by hand),
    and its golden-model accuracy on the whole test set is the study's for that point (98.17 % ... read from
    reports/quant/lstm2x32_layers/results.csv: 0.991667, 595 of 600)."""
    start = net.config(*net.start(), "start")
    want = NetworkConfig.load(ROOT / "configs" / "networks" / "fsdd_lstm2x32.toml")
    assert [c.formats for c in start.layers] == [c.formats for c in want.layers]
    assert [(c.sigmoid, c.tanh, c.lanes) for c in start.layers] == [(c.sigmoid, c.tanh, c.lanes) for c in want.layers]
    assert start.head.formats == want.head.formats
    assert "l1.input" not in net.keys and "l0.input" in net.keys and len(net.slots) == 4
    assert mixed.Halves(net).evaluate(start)["test"] == pytest.approx(595 / 600)


def test_network_cost_features_sum_over_layers(net):
    cm = mixed.CostModel(net.tensors, net.state_of)
    widths, acts = net.start()
    widths = {**widths, "l0.weight": 5, "l1.cell": 11}
    acts = {**acts, "l0.sigmoid": 3, "l1.sigmoid": 3, "l1.tanh": 4}
    f = dict(zip(cm.names, cm.features_of(net.config(widths, acts, "x"))))
    # by hand: weight 5 + 8, cell 16 + 11, input only in layer 0, pwl sigmoid in both layers, hard tanh in one
    assert (f["width weight"], f["width cell"], f["width input"], f["width hidden"]) == (13, 27, 8, 16)
    assert (f["sigmoid pwl"], f["tanh hard"], f["sigmoid hard"], f["constant"]) == (2, 1, 0, 1)


class _LayerRule:
    """Accuracy 1.0 minus 1 pp per layer-1 tensor narrower than 6 bits and per layer-0 tensor narrower than 4;
    a saturation when layer 1's h is narrower than 7 bits."""

    float = {"search": 1.0}

    def evaluate(self, ncfg, halves=("search",)):
        f0, f1 = ncfg.layers
        narrow = (sum(f.width < 4 for f in f0.formats.values() if f is not None)
                  + sum(f.width < 6 for t, f in f1.formats.items() if f is not None and t != "input"))
        return {"search": 1.0 - 0.01 * narrow, "saturated": int(f1.fmt("hidden").width < 7)}


def test_network_search_narrows_each_layer_by_its_own_rule_without_saturating(net):
    cm = mixed.CostModel(net.tensors, net.state_of)
    cm.coef = np.zeros(len(cm.names))
    cm.coef[2:2 + len(cm.tensors)] = 1.0                                 # 1 LUT per bit, methods free
    ncfg, steps = mixed.search(net, _LayerRule(), cm, 0.5, log=lambda *a: None)
    # both pre-activations stop at 8 bits: they have 5 integer bits (s5.11 in configs/networks/fsdd_lstm2x32.toml)
    # and the 64-entry tanh table over [-4, 4) needs a step of 2**-3, so s5.3 (the config refuses s5.2)
    want0 = {**{t: 4 for t in net.tensors}, "pre": 8}
    want1 = {**{t: 6 for t in net.tensors if t != "input"}, "pre": 8, "hidden": 7}   # 6 bits saturates
    assert {t: f.width for t, f in ncfg.layers[0].formats.items() if f is not None} == want0
    assert {t: f.width for t, f in ncfg.layers[1].formats.items() if f is not None and t != "input"} == want1
    assert ncfg.layers[1].fmt("input") == ncfg.layers[0].fmt("hidden")
    assert not any(" -> " in s["move"] and ("sigmoid" in s["move"] or "tanh" in s["move"]) for s in steps)


def test_network_config_file_loads_back(net, tmp_path):
    widths, acts = net.start()
    ncfg = net.config({**widths, "l0.weight": 6, "l1.hidden": 5}, {**acts, "l0.tanh": 3, "l1.sigmoid": 1}, "x_mixed")
    path = tmp_path / "x.toml"
    path.write_text(net.toml(ncfg, path, ["a header"]))
    back = NetworkConfig.load(path)
    assert [c.formats for c in back.layers] == [c.formats for c in ncfg.layers]
    assert [(c.sigmoid, c.tanh, c.lanes) for c in back.layers] == [(c.sigmoid, c.tanh, c.lanes) for c in ncfg.layers]
    assert back.head.formats == ncfg.head.formats and back.max_steps == ncfg.max_steps == 92
    assert back.layers[0].fmt("weight").width == 6 and back.layers[1].fmt("hidden").width == 5
    assert Path(back.params).resolve() == (ROOT / "models" / "fsdd_lstm2x32.npz").resolve()
    assert path.read_text().startswith("# a header\n")
