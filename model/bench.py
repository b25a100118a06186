"""``make bench``: golden model versus float reference speed, measured in the same run."""
from __future__ import annotations

import sys
import time

import numpy as np

from . import golden, kinds, reference
from .cli import Parser, config_file, positive_int
from .config import Config
from .errors import ConfigError
from .params import CellParams, quantize
from .resources import check_memory

#: The golden model may take at most this many times the float reference's time.
TARGET_RATIO = 3.0


def _best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def golden_vs_float(cfg: Config, batch: int, steps: int, repeats: int = 3) -> dict:
    p = CellParams.for_config(cfg, seed=0)
    q = quantize(p, cfg)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, steps, cfg.input_size))
    xq = golden.quantize_input(x, cfg)
    t_ref = _best_of(lambda: reference.run(p, x), repeats)
    t_gold = _best_of(lambda: golden.run(q, xq, cfg), repeats)
    return {"config": cfg.name, "kind": cfg.variant, "batch": batch, "steps": steps,
            "float_s": t_ref, "golden_s": t_gold, "ratio": t_gold / t_ref}


def main(argv=None):
    ap = Parser(prog="python -m model.bench", description=__doc__)
    ap.add_argument("--config", type=config_file(), default="configs/default.toml")
    ap.add_argument("--batch", type=positive_int("--batch"), default=1000, help="sequences per run (default 1000)")
    ap.add_argument("--steps", type=positive_int("--steps"), default=40, help="steps per sequence (default 40)")
    args = ap.parse_args(argv)
    base = Config.load(args.config)
    try:
        check_memory(2 * golden.run_bytes(base, args.batch, args.steps),
                     f"{args.batch} sequences x {args.steps} steps of config {base.name!r}")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # the config, and every registered kind with its default options at its sizes and formats (once each)
    cells = list(dict.fromkeys([base.cell, *(cls() for cls in kinds.REGISTRY.values())]))
    rows = [golden_vs_float(base if k is base.cell else base.as_kind(k), args.batch, args.steps) for k in cells]
    print(f"Golden model vs float reference ({args.batch} sequences x {args.steps} steps, best of 3)")
    print(f"{'config':<22} {'cell':<22} {'float s':>9} {'golden s':>9} {'golden/float':>13}")
    for r in rows:
        print(f"{r['config']:<22} {r['kind']:<22} {r['float_s']:>9.3f} {r['golden_s']:>9.3f} {r['ratio']:>13.2f}")
    worst = max(r["ratio"] for r in rows)
    print(f"target golden/float <= {TARGET_RATIO:g}: {'met' if worst <= TARGET_RATIO else 'MISSED'} "
          f"(worst {worst:.2f})")
    return 0 if worst <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
