"""``make bench`` (hardware part): cycles per step measured in Amaranth's simulator vs the cycle model.

Prints one row per config, then, for configs that share input size, hidden size
and lanes, the cell kinds side by side (cycles per step relative to the LSTM).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from model import golden, kinds
from model.config import Config
from model.cycles import CycleModel
from model.params import CellParams, quantize

from . import amsim


def measure(cfg: Config, steps: int) -> dict:
    """Steady-state cycles per step on one sequence whose streams never stall."""
    q = quantize(CellParams.for_config(cfg, seed=0), cfg)
    x = golden.quantize_input(np.random.default_rng(0).uniform(-1, 1, (1, steps, cfg.input_size)), cfg)[0]
    t0 = time.perf_counter()
    res = amsim.run(cfg, q, [x])
    wall = time.perf_counter() - t0
    if not np.array_equal(res.outputs[0], golden.run(q, x[None], cfg).outputs[0]):
        raise SystemExit(f"{cfg.name}: gateware output differs from the golden model")
    per = res.step_cycles(cfg.hidden_size)
    cm = CycleModel.for_config(cfg)
    measured = float(per.mean())
    order = kinds.variants().index(cfg.cell)  # registry order
    return {"config": cfg.name, "variant": cfg.variant, "order": order,
            "sizes": (cfg.input_size, cfg.hidden_size, cfg.lanes),
            "rows": cfg.rows, "lanes": cfg.lanes, "ideal": cm.ideal_cycles_per_step,
            "predicted": cm.cycles_per_step, "measured": measured, "util_pred": cm.mac_utilization,
            "util_meas": cm.ideal_cycles_per_step / measured,
            "first_pred": cm.first_output_latency, "first_meas": res.out_cycles[0] - res.in_cycles[0],
            "cycles": res.cycles, "wall": wall}


def kinds_table(rows: list) -> None:
    """Cell kinds side by side for each (input, hidden, lanes) that more than one kind uses."""
    groups = {}
    for r in rows:
        groups.setdefault(r["sizes"], []).append(r)
    groups = {k: v for k, v in groups.items() if len({r["variant"] for r in v}) > 1}
    if not groups:
        return
    print("\nCell kinds at the same sizes (measured cycles per step; ratio to the first kind listed, "
          "the LSTM where there is one)")
    print(f"{'input':>5} {'hidden':>6} {'lanes':>5}  {'config':<14} {'kind':<24} {'rows':>5} {'cycles/step':>11} "
          f"{'ratio':>8} {'MAC util':>9} {'1st out':>8}")
    for (i, h, lanes), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["order"])
        lstm = rs[0]["measured"]
        for r in rs:
            ratio = f"{r['measured'] / lstm:8.3f}" if lstm else f"{'-':>8}"
            print(f"{i:>5} {h:>6} {lanes:>5}  {r['config']:<14} {r['variant']:<24} {r['rows']:>5} "
                  f"{r['measured']:>11.1f} {ratio} {r['util_meas']:>9.4f} {r['first_meas']:>8}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--configs", nargs="*", default=None, help="config files (default: every buildable one)")
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args(argv)
    paths = args.configs or sorted(str(p) for p in Path("configs").glob("*.toml"))
    rows = []
    for p in paths:
        cfg = Config.load(p)
        print(f"[bench] simulating {cfg.name} ({args.steps} steps) ...", flush=True)
        rows.append(measure(cfg, args.steps))
    print("\nGate pipeline in Amaranth's simulator (steady state, streams never stall)")
    hdr = (f"{'config':<17} {'lanes':>5} {'ideal':>8} {'model':>7} {'measured':>9} {'MAC util':>9} "
           f"{'1st out model':>14} {'measured':>9} {'sim cycles':>11} {'wall s':>7}")
    print(hdr)
    for r in rows:
        print(f"{r['config']:<17} {r['lanes']:>5} {r['ideal']:>8.1f} {r['predicted']:>7} {r['measured']:>9.1f} "
              f"{r['util_meas']:>9.4f} {r['first_pred']:>14} {r['first_meas']:>9} {r['cycles']:>11} "
              f"{r['wall']:>7.1f}")
    kinds_table(rows)
    bad = [r["config"] for r in rows if r["measured"] != r["predicted"] or r["first_meas"] != r["first_pred"]]
    if bad:
        print(f"cycle model disagrees with the simulation for: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
