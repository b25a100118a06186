"""The cocotb bench's float bound (sim.cellbench.float_bound): where it comes from, and that the
bound derived from the formats holds on the golden model without being loose."""
from pathlib import Path

import numpy as np
import pytest

from hls.vectors import STIMULUS_RANGE
from model import golden, reference
from model.config import Config
from model.params import CellParams, quantize
from sim.cellbench import float_bound

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_bound_sources():
    tiny = Config.load(CONFIGS / "tiny.toml")
    b = float_bound.for_config(tiny, CONFIGS / "tiny.toml")
    assert (b.max_abs, b.rms, b.source) == (0.15, 0.03, "configs/tiny.toml [bench]")
    d = float_bound.for_config(Config.load(CONFIGS / "cifg.toml"), CONFIGS / "cifg.toml")
    assert d.source.startswith("derived from formats: 2 e / 0.5 e, e = ") and "tanh_cell" in d.parts
    assert d.max_abs == pytest.approx(2 * sum(d.parts.values()))
    assert d.max_abs == pytest.approx(4 * d.rms) and d.max_abs < 0.01
    assert float_bound.for_config(tiny, "x", "0.2,0.04") == float_bound.FloatBound(0.2, 0.04, "RNNKIT_FLOAT_BOUND")


def test_step_error_parts():
    """e: each activation's max error, then half an LSB per rounding point (a whole one when it truncates)."""
    cfg = Config.load(CONFIGS / "cifg_small.toml")  # hidden truncates, cell rounds half_up
    parts = float_bound.step_error(cfg)
    assert list(parts) == ["sigmoid", "tanh_pre", "tanh_cell", "rounding at pre", "rounding at cell",
                           "rounding at hidden"]
    assert parts["rounding at hidden"] == cfg.fmt("hidden").resolution
    assert parts["rounding at cell"] == cfg.fmt("cell").resolution / 2
    assert parts["tanh_pre"] == pytest.approx(0.2378, abs=1e-4)  # hard tanh: 1 - tanh(1)


@pytest.mark.parametrize("name", ["cifg", "tiny", "gru_small", "gru_before_small"])
def test_derived_bound_holds_and_is_not_loose(name):
    cfg = Config.load(CONFIGS / f"{name}.toml")
    b = float_bound.derived(cfg)
    worst = rms = 0.0
    for seed in (1, 2):
        q = quantize(CellParams.for_config(cfg, seed=seed), cfg)
        x = golden.quantize_input(np.random.default_rng(seed).uniform(
            -STIMULUS_RANGE, STIMULUS_RANGE, (2, 300, cfg.input_size)), cfg)
        d = cfg.fmt("hidden").to_float(golden.run(q, x, cfg).outputs) - \
            reference.run(q.dequantize(cfg), x * cfg.fmt("input").resolution)[0]
        worst, rms = max(worst, np.abs(d).max()), max(rms, np.sqrt(np.mean(d * d)))
    assert worst <= b.max_abs / 1.5 and rms <= b.rms / 1.2, (worst, rms, b)
    assert b.max_abs <= 8 * worst, (worst, b)
