"""Golden model run on a config with random parameters: bit-level summary and error against float."""
from __future__ import annotations

import sys
import time

import numpy as np

from . import golden, reference
from .cli import Parser, config_file, nonneg_int, positive_int
from .config import Config
from .errors import ConfigError
from .params import CellParams, quantize
from .resources import check_memory


def error_stats(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(max-abs, RMS) of ``got - want``."""
    d = np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64)
    return float(np.abs(d).max()), float(np.sqrt(np.mean(d * d)))


def main(argv=None) -> int:
    ap = Parser(prog="python -m model.summary", description=__doc__)
    ap.add_argument("--config", type=config_file(), default="configs/default.toml")
    ap.add_argument("--seqs", type=positive_int("--seqs"), default=8)
    ap.add_argument("--steps", type=positive_int("--steps"), default=50)
    ap.add_argument("--seed", type=nonneg_int("--seed"), default=1)
    args = ap.parse_args(argv)
    try:
        cfg = Config.load(args.config)
        # the golden model, and the float reference beside it
        check_memory(2 * golden.run_bytes(cfg, args.seqs, args.steps),
                     f"{args.seqs} sequences x {args.steps} steps of config {cfg.name!r}")
        p = CellParams.for_config(cfg, seed=args.seed)
        q = quantize(p, cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
