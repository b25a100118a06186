"""Config loading and validation: every shipped config loads, every bad value names its field."""
import copy
from pathlib import Path

import pytest

from model.config import Config, ConfigError
from model.datapath import Datapath

CONFIGS = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.toml"))

BASE = {
    "name": "t", "kind": "lstm", "input_size": 3, "hidden_size": 4,
    "formats": {"input": "s3.8", "weight": "s2.8", "bias": "s3.8", "pre": "s4.8", "gate": "u1.10",
                "candidate": "s1.10", "cell": "s4.10", "cell_act": "s1.10", "hidden": "s1.10"},
    "sigmoid": {"method": "lut", "size": 64, "range": 8.0},
    "tanh": {"method": "pwl"},
    "lanes": 2,
}


def make(**changes):
    d = copy.deepcopy(BASE)
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k].update(v)
        elif v is None:
            d.pop(k)
        else:
            d[k] = v
    return Config.from_dict(d)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load(path):
    cfg = Config.load(path)
    assert cfg.name == path.stem
    Datapath.from_config(cfg)
    assert Config.from_dict(cfg.to_dict()) == cfg


def test_default_config_is_spoken_digit_lstm():
    cfg = Config.load(Path(__file__).parent.parent / "configs" / "default.toml")
    assert (cfg.kind, cfg.input_size, cfg.hidden_size, cfg.lanes) == ("lstm", 13, 100, 16)


def test_modes_default_and_override():
    cfg = make(modes={"rounding": "truncate", "cell": {"rounding": "half_up"}})
    assert cfg.mode("pre").rounding == "truncate" and cfg.mode("cell").rounding == "half_up"
    assert cfg.mode("cell").overflow == "saturate"


def test_replace_revalidates():
    cfg = make()
    assert cfg.replace(hidden_size=8).hidden_size == 8
    assert str(cfg.replace(formats={"weight": "s1.6"}).fmt("weight")) == "s1.6"
    with pytest.raises(ConfigError, match="hidden_size must be a positive integer, not 0"):
        cfg.replace(hidden_size=0)


@pytest.mark.parametrize("changes,needle", [
    ({"kind": "rnn"}, "kind must be one of 'lstm', 'gru', 'cifg', not 'rnn'"),
    ({"input_size": 0}, "input_size must be a positive integer, not 0"),
    ({"hidden_size": -3}, "hidden_size must be a positive integer, not -3"),
    ({"hidden_size": 2.5}, "hidden_size must be a positive integer, not 2.5"),
    ({"input_size": None}, "input_size is required"),
    ({"lanes": 0}, "lanes must be a positive integer, not 0"),
    ({"lanes": 17}, "lanes = 17 exceeds the number of weight rows"),
    ({"beat": 8}, "beat = 8 exceeds input_size"),
    ({"beat": 0}, "beat must be a positive integer, not 0"),
    ({"peephole": "yes"}, "peephole must be one of"),
    ({"kind": "gru", "reset": "middle"}, "reset must be one of"),
    ({"kind": "gru", "peephole": "c_prev"}, "peephole is not an option of kind = 'gru' (it takes: reset)"),
    ({"reset": "after"}, "reset is not an option of kind = 'lstm' (it takes: peephole)"),
    ({"kind": "cifg", "coupling": "i=f"}, "coupling must be one of 'i=1-f', 'f=1-i', not 'i=f'"),
    ({"kind": "cifg", "peephole": "c_prev"}, "peephole is not an option of kind = 'cifg' (it takes: coupling)"),
    ({"kind": "cifg", "lanes": 16}, "lanes = 16 exceeds the number of weight rows (12 = gates x hidden_size)"),
    ({"colour": "red"}, "unknown field"),
    ({"formats": {"weight": "q1.7"}}, "formats.weight: cannot parse format 'q1.7'"),
    ({"formats": {"gate": "u1.0"}}, "formats.gate = u1.0 has no fractional bits"),
    ({"formats": {"cell": "u4.8"}}, "formats.cell = u4.8 must be signed"),
    ({"formats": {"hdden": "s1.8"}}, "formats: unknown tensor"),
    ({"formats": None}, "formats is required"),
    ({"peephole": "c_prev"}, "formats.peephole is required"),
    ({"sigmoid": {"method": "spline"}}, "sigmoid.method must be one of"),
    ({"sigmoid": {"size": 100}}, "sigmoid.size must be a power of two"),
    ({"sigmoid": {"size": 1 << 20}}, "too large"),
    ({"sigmoid": {"range": 6.0}}, "sigmoid.range must be a power of two"),
    ({"sigmoid": {"range": -8.0}}, "sigmoid.range must be a positive power of two"),
    ({"sigmoid": {"size": 8192}}, "finer than formats.pre"),
    ({"tanh": {"method": "pwl", "size": 64}}, "tanh.size applies only to methods"),
    ({"sigmoid": None}, "sigmoid is required"),
    ({"modes": {"rounding": "nearest"}}, "modes.rounding must be one of"),
    ({"modes": {"cell": {"overflow": "clamp"}}}, "modes.cell.overflow must be one of"),
    ({"modes": {"gates": {}}}, "unknown requantization point 'gates'"),
    ({"param_rounding": "up"}, "param_rounding must be one of"),
    ({"name": "a b"}, "name must be a non-empty string"),
    ({"float_max_abs": 0.1}, "gives float_max_abs without float_rms: give both"),
    ({"float_max_abs": -1, "float_rms": 0.1}, "float_max_abs must be a positive number, not -1"),
    ({"float_max_abs": 0.1, "float_rms": "x"}, "float_rms must be a positive number, not 'x'"),
])
def test_rejects(changes, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")
                       .replace("*", r"\*").replace(".", r"\.")):
        make(**changes)


def test_accumulator_too_wide_rejected():
    wide = {"input": "s8.30", "weight": "s8.30", "hidden": "s8.30"}
    with pytest.raises(ConfigError, match="accumulator needs"):
        make(formats=wide, hidden_size=1000)


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[cell\nkind=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(bad)
    bad.write_text("[cells]\nkind='lstm'\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown section\(s\) cells"):
        Config.load(bad)
    bad.write_text("[hardware]\nkind='lstm'\n")
    with pytest.raises(ConfigError, match=r"\[hardware\]: unknown key\(s\) kind; accepted: lanes, beat"):
        Config.load(bad)


def test_bench_section(tmp_path):
    """[bench] float_max_abs and float_rms load, survive to_dict / replace, and refuse unknown keys."""
    p = tmp_path / "b.toml"
    tiny = (Path(__file__).parent.parent / "configs" / "tiny.toml").read_text()
    cfg = Config.load(Path(__file__).parent.parent / "configs" / "tiny.toml")
    assert (cfg.float_max_abs, cfg.float_rms) == (0.15, 0.03)
    assert cfg.replace(lanes=1).float_rms == 0.03 and Config.from_dict(cfg.to_dict()) == cfg
    assert make().float_max_abs is None and "float_max_abs" not in make().to_dict()
    p.write_text(tiny.replace("[bench]\n", "[bench]\nbogus = 1\n"))
    with pytest.raises(ConfigError, match=r"\[bench\]: unknown key\(s\) bogus; accepted: float_max_abs, float_rms"):
        Config.load(p)


def test_replace_merges_partial_modes_and_names_bad_values():
    """Config.replace(modes={point: {rounding: ...}}) changes that field alone; a malformed value gets
    a ConfigError naming it, not a raw ValueError from a dict update."""
    cfg = make(modes={"rounding": "half_up", "overflow": "wrap"})
    new = cfg.replace(modes={"cell": {"rounding": "truncate"}})
    assert (new.mode("cell").rounding, new.mode("cell").overflow) == ("truncate", "wrap")
    assert new.mode("pre") == cfg.mode("pre")
    with pytest.raises(ConfigError, match=r"modes.cell must be a Mode or a dict with rounding and/or overflow"):
        cfg.replace(modes={"cell": "truncate"})
    with pytest.raises(ConfigError, match=r"modes must be a dict of point -> Mode"):
        cfg.replace(modes=["cell"])
    with pytest.raises(ConfigError, match=r"modes.cell.rounding must be one of"):
        cfg.replace(modes={"cell": {"rounding": "up"}})
    with pytest.raises(ConfigError, match=r"formats: cannot parse format 'q1.7'"):
        cfg.replace(formats={"weight": "q1.7"})
