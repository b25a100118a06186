"""Golden model run on a config with random parameters: bit-level summary and error against float."""
from __future__ import annotations

import argparse
import time

import numpy as np

from . import golden, reference
from .config import Config
from .params import CellParams, quantize


def error_stats(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(max-abs, RMS) of ``got - want``."""
    d = np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64)
    return float(np.abs(d).max()), float(np.sqrt(np.mean(d * d)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/default.toml")
    ap.add_argument("--seqs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    cfg = Config.load(args.config)
    p = CellParams.for_config(cfg, seed=args.seed)
    q = quantize(p, cfg)
    x = np.random.default_rng(args.seed).uniform(-1, 1, (args.seqs, args.steps, cfg.input_size))
    t0 = time.perf_counter()
    res = golden.run(q, x, cfg)
    t_gold = time.perf_counter() - t0
    want, _ = reference.run(q.dequantize(cfg), golden.quantize_input(x, cfg) * cfg.fmt("input").resolution)
    mx, rms = error_stats(res.outputs_float(), want)
    print(f"config {cfg.name}: {cfg.variant}, input {cfg.input_size}, hidden {cfg.hidden_size}")
    for t, f in cfg.formats.items():
        if f is not None:
            print(f"  {t:<10} {str(f):<8} {f.ap}")
    print(f"sequences x steps     {args.seqs} x {args.steps}")
    print(f"golden time           {t_gold:.3f} s")
    print(f"h(t) vs float         max-abs {mx:.3e}, RMS {rms:.3e}")
    print("saturations           " + ", ".join(f"{k}={v}" for k, v in res.saturated.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
