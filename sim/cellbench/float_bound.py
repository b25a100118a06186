"""The bound on h against the float reference: a config's ``[bench]`` section, or one derived from its formats.

Derived bound (docs/simulation.md, "Float bound"): in one step the approximations move h by at
most about ``e``, the sum of every activation's worst error (``Activation.error``, over every input
code, its output rounding included) and of half an LSB at every requantization point (a whole LSB
where the point truncates).  The bound is ``max-abs <= MARGIN * e`` and ``RMS <= RMS_SHARE * MARGIN * e``;
the margin covers what the recurrence carries over from earlier steps.  Over the shipped configs
with random parameters (6 seeds x 4 sequences of 1,000 steps) the worst max-abs is 0.47 .. 1.0 e and
the worst RMS 0.09 .. 0.32 e.  Trained models whose trajectories separate from float (the 8-bit
spoken-digit ones) need an explicit ``[bench]`` bound.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model.activations import make_activation
from model.config import Config

MARGIN = 2.0
RMS_SHARE = 0.25
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class FloatBound:
    max_abs: float
    rms: float
    source: str                                # where it came from, for the summary
    parts: dict = field(default_factory=dict)  # a derived bound's contributions to e


def step_error(cfg: Config) -> dict:
    """Contributions to ``e``: each activation (by the kind's attribute name), then each requantization point."""
    f = cfg.formats
    parts = {attr: make_activation(fn, getattr(cfg, fn), f[fin], f[fout]).error()[0]
             for attr, fn, fin, fout in cfg.cell.activations()}
    for point, (tensor, _) in cfg.cell.requant_points.items():
        lsb = f[tensor].resolution
        parts[f"rounding at {point}"] = lsb if cfg.mode(point).rounding == "truncate" else lsb / 2
    return parts


def derived(cfg: Config) -> FloatBound:
    parts = step_error(cfg)
    e = sum(parts.values())
    rounding = sum(v for k, v in parts.items() if k.startswith("rounding at "))
    return FloatBound(MARGIN * e, RMS_SHARE * MARGIN * e,
                      f"derived from formats: {MARGIN:g} e / {RMS_SHARE * MARGIN:g} e, e = {e:.4g} "
                      f"(activations {e - rounding:.3g}, rounding {rounding:.3g})", parts)


def for_config(cfg: Config, config_path, override: str | None = None) -> FloatBound:
    """``override`` ("max_abs,rms", from RNNKIT_FLOAT_BOUND), else the config's ``[bench]``, else :func:`derived`."""
    if override:
        a, r = override.split(",")
        return FloatBound(float(a), float(r), "RNNKIT_FLOAT_BOUND")
    if cfg.float_max_abs is not None:
        p = Path(config_path).resolve()
        return FloatBound(cfg.float_max_abs, cfg.float_rms,
                          f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p} [bench]")
    return derived(cfg)
