"""``make bench`` (hardware part): cycles per step measured in Amaranth's simulator vs the cycle model."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from model import golden
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
    return {"config": cfg.name, "lanes": cfg.lanes, "ideal": cm.ideal_cycles_per_step,
            "predicted": cm.cycles_per_step, "measured": measured, "util_pred": cm.mac_utilization,
            "util_meas": cm.ideal_cycles_per_step / measured,
            "first_pred": cm.first_output_latency, "first_meas": res.out_cycles[0] - res.in_cycles[0],
            "cycles": res.cycles, "wall": wall}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--configs", nargs="*", default=None, help="config files (default: every buildable one)")
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args(argv)
    paths = args.configs or sorted(str(p) for p in Path("configs").glob("*.toml"))
    rows = []
    for p in paths:
        cfg = Config.load(p)
        if cfg.kind != "lstm":
            continue
        print(f"[bench] simulating {cfg.name} ({args.steps} steps) ...", flush=True)
        rows.append(measure(cfg, args.steps))
    print("\nGate pipeline in Amaranth's simulator (steady state, streams never stall)")
    hdr = (f"{'config':<14} {'lanes':>5} {'ideal':>8} {'model':>7} {'measured':>9} {'MAC util':>9} "
           f"{'1st out model':>14} {'measured':>9} {'sim cycles':>11} {'wall s':>7}")
    print(hdr)
    for r in rows:
        print(f"{r['config']:<14} {r['lanes']:>5} {r['ideal']:>8.1f} {r['predicted']:>7} {r['measured']:>9.1f} "
              f"{r['util_meas']:>9.4f} {r['first_pred']:>14} {r['first_meas']:>9} {r['cycles']:>11} "
              f"{r['wall']:>7.1f}")
    bad = [r["config"] for r in rows if r["measured"] != r["predicted"] or r["first_meas"] != r["first_pred"]]
    if bad:
        print(f"cycle model disagrees with the simulation for: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
