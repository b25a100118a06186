"""Trained artifacts, the config's ``params`` field and the hardware link's utterances."""
import numpy as np
import pytest

from model.config import Config, ConfigError
from model.params import CellParams
from study import hwlink, models

CFG_TEXT = """
params = "{params}"
[cell]
kind = "lstm"
input_size = 13
hidden_size = {hidden}
[formats]
input = "s4.4"
weight = "s1.7"
bias = "s2.14"
pre = "s5.11"
gate = "u0.8"
candidate = "s1.7"
cell = "s7.9"
cell_act = "s1.7"
hidden = "s1.7"
[activations]
sigmoid = "pwl"
tanh = "pwl"
"""


def test_trained_config_loads_the_trained_parameters():
    cfg = Config.load("configs/fsdd_lstm32.toml")
    assert cfg.params == str(models.MODELS_DIR.resolve() / "fsdd_lstm32.npz")
    assert CellParams.for_config(cfg, seed=5) == CellParams.load("models/fsdd_lstm32.npz")
    assert Config.from_dict(cfg.to_dict()) == cfg
    plain = Config.load("configs/tiny.toml")
    assert plain.params is None and "params" not in plain.to_dict()


def test_params_path_is_relative_to_the_config_file(tmp_path):
    sub = tmp_path / "cfgs"
    sub.mkdir()
    CellParams.load("models/fsdd_lstm32.npz").save(tmp_path / "m.npz")
    (sub / "c.toml").write_text(CFG_TEXT.format(params="../m.npz", hidden=32))
    assert Config.load(sub / "c.toml").params == str((tmp_path / "m.npz").resolve())


@pytest.mark.parametrize("params, pattern", [
    ("../nope.npz", r"params = '.*nope.npz': the file does not exist"),
    ("../m.json", r"params = '.*m.json' must name a .npz file"),
])
def test_bad_params_field(tmp_path, params, pattern):
    (tmp_path / "c.toml").write_text(CFG_TEXT.format(params=params, hidden=32))
    with pytest.raises(ConfigError, match=pattern):
        Config.load(tmp_path / "c.toml")


def test_params_must_be_a_string():
    d = Config.load("configs/fsdd_lstm32.toml").to_dict()
    d["params"] = 3
    with pytest.raises(ConfigError, match="params must be the path of a parameter file"):
        Config.from_dict(d)


def test_params_that_do_not_match_the_config(tmp_path):
    (tmp_path / "c.toml").write_text(CFG_TEXT.format(params=str(models.MODELS_DIR / "fsdd_lstm32.npz"), hidden=16))
    cfg = Config.load(tmp_path / "c.toml")
    with pytest.raises(ValueError, match="hidden_size is 32 in the parameters but 16 in the config"):
        CellParams.for_config(cfg, seed=1)


@pytest.mark.parametrize("name, kind, hidden", [("fsdd_lstm32", "lstm", 32), ("fsdd_lstm100", "lstm", 100),
                                                ("fsdd_gru32", "gru", 32), ("fsdd_gru100", "gru", 100)])
def test_committed_models(name, kind, hidden):
    m = models.load(name)
    assert (m.params.kind, m.params.hidden_size, m.params.input_size) == (kind, hidden, 13)
    assert m.head_w.shape == (10, hidden) and m.meta["float_test_accuracy"] >= 0.95
    tr, te = m.split()
    assert len(te) == 600 and len(tr) == 2400


def test_hwlink_utterances(tmp_path):
    cfg = Config.load("configs/fsdd_lstm32.toml")
    u = hwlink.prepare(cfg, 2, tmp_path / "u.npz")
    z = np.load(u.path)
    assert len(z.files) == 2
    f = cfg.fmt("input")
    for k in z.files:
        assert z[k].shape[1] == 13 and f.contains(z[k]) and z[k].dtype.kind == "i"
    lines, ok = hwlink.table(u, cfg, [h.tolist() for h in u.golden_h])
    assert ok and len(lines) == 3
    bad = [h.copy() for h in u.golden_h]
    bad[1][0] += 1
    assert not hwlink.table(u, cfg, bad)[1]
    assert hwlink.prepare(Config.load("configs/tiny.toml"), 2, tmp_path / "v.npz") is None
