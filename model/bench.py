"""``make bench`` (model part): golden model versus float reference speed, measured in the same run; the
cycle model's cycles per step and MAC utilization over lanes and beat (from one lane to one
multiplier per weight) for the default LSTM 13->100 and an LSTM and a GRU 6->20; and the steady-state
MAC utilization at every lane count of the default LSTM and GRU, alone and with the fewest interleaved
sequences that reach :data:`TARGET_UTILIZATION`."""
from __future__ import annotations

import sys
import time

import numpy as np

from . import golden, kinds, reference
from .cli import Parser, config_file, positive_int
from .config import Config
from .cycles import CycleModel, Schedule
from .errors import ConfigError
from .params import CellParams, quantize
from .resources import check_memory

#: The golden model may take at most this many times the float reference's time.
TARGET_RATIO = 3.0
#: A fully parallel LSTM 6->20 (one multiplier per weight) must take at most this many cycles per step.
TARGET_PARALLEL_CYCLES = 40
#: Steady-state MAC utilization to reach at every lane count, interleaving sequences where one cannot.
TARGET_UTILIZATION = 0.95
#: Lane counts printed on the interleave curve (every lane count is checked; these are listed).
INTERLEAVE_LANES = (1, 2, 4, 8, 16, 20, 25, 32, 40, 50, 64, 75, 80, 100, 128, 150, 200, 256, 300, 400)
#: (lanes, beat) points of the curve; ``None`` lanes = every weight row, ``None`` beat = all of z.
CURVE = ((1, 1), (4, 1), (16, 1), (16, 2), (16, 4), (32, 4), (None, 1), (None, 4), (None, 8), (None, None))


def curve(cfg: Config) -> list[dict]:
    """The cycle model at each :data:`CURVE` point of ``cfg``'s sizes (points the schedule cannot post-process
    within a slot are left out; a point the config refuses gives ``{"refused": message}``)."""
    out = []
    for lanes, beat in CURVE:
        try:
            c = cfg.replace(lanes=lanes or cfg.rows, beat=beat or cfg.input_size + cfg.hidden_size)
        except ConfigError as e:
            out.append({"refused": str(e)})
            continue
        if not Schedule.for_config(c).fits:
            continue
        cm = CycleModel.for_config(c)
        out.append({"lanes": c.lanes, "beat": c.beat, "multipliers": c.lanes * c.beat, "posts": cm.posts,
                    "issue": cm.slots * cm.slot_cycles, "cycles": cm.cycles_per_step,
                    "ideal": cm.ideal_cycles_per_step, "util": cm.mac_utilization})
    return out


def print_curves(base: Config) -> int:
    """Print the curve for the default LSTM and LSTM/GRU 6->20 and the fully parallel target line; 0 when met."""
    lstm = base.as_kind(kinds.make("lstm"))
    small = lstm.replace(input_size=6, hidden_size=20)
    gru = small.as_kind(kinds.make("gru"))
    print("\nCycle model over lanes and beat (streams that never stall; one post-processor per "
          "slot_cycles lanes, whole units each)")
    for cfg in (lstm, small, gru):
        print(f"{cfg.variant} {cfg.input_size}->{cfg.hidden_size} ({cfg.rows} rows x "
              f"{cfg.input_size + cfg.hidden_size} z elements)")
        print(f"  {'lanes':>5} {'beat':>5} {'MACs':>6} {'posts':>5} {'issue':>6} {'cycles/step':>11} "
              f"{'ideal':>8} {'MAC util':>8}")
        for r in curve(cfg):
            if "refused" in r:
                print(f"  refused: {r['refused']}")
                continue
            print(f"  {r['lanes']:>5} {r['beat']:>5} {r['multipliers']:>6} {r['posts']:>5} {r['issue']:>6} "
                  f"{r['cycles']:>11} {r['ideal']:>8.2f} {r['util']:>8.3f}")
    full = CycleModel.for_config(small.replace(lanes=small.rows, beat=small.input_size + small.hidden_size))
    met = full.cycles_per_step <= TARGET_PARALLEL_CYCLES
    print(f"fully parallel LSTM 6->20 ({small.rows} lanes x beat {small.input_size + small.hidden_size}): "
          f"{full.cycles_per_step} cycles per step (target <= {TARGET_PARALLEL_CYCLES}: "
          f"{'met' if met else 'MISSED'})")
    return 0 if met else 1


def slot_ceiling(cfg: Config) -> float:
    """The utilization a lane count can reach at most: the rows over the lane cycles of its slots (a
    part-filled last slot leaves lanes idle, and no sequence can fill them: every lane of a slot
    multiplies the same z)."""
    sch = Schedule.for_config(cfg)
    return sch.rows / (sch.slots * sch.lanes)


def interleave_point(cfg: Config, target: float = TARGET_UTILIZATION) -> dict:
    """At ``cfg``'s lanes: utilization alone, the fewest interleaved sequences reaching ``target`` (None
    when none up to ``MAX_INTERLEAVE`` does) and the utilization with them (or with the most)."""
    from .config import MAX_INTERLEAVE
    alone = CycleModel.for_config(cfg.replace(interleave=1))
    for n in range(1, MAX_INTERLEAVE + 1):
        cm = alone.with_interleave(n)
        if cm.mac_utilization >= target:
            return {"lanes": cfg.lanes, "alone": alone.mac_utilization, "interleave": n, "util": cm.mac_utilization,
                    "ceiling": slot_ceiling(cfg)}
    return {"lanes": cfg.lanes, "alone": alone.mac_utilization, "interleave": None, "util": cm.mac_utilization,
            "ceiling": slot_ceiling(cfg)}


def print_interleave_curves(base: Config) -> int:
    """For the default LSTM and GRU: the utilization curve over lanes alone and interleaved; every lane count
    from 1 to the rows is checked.  0 when every lane count whose slot ceiling allows the target reaches it."""
    lstm = base.as_kind(kinds.make("lstm"))
    failed = 0
    print(f"\nSteady-state MAC utilization over lanes, alone and interleaved (target >= {TARGET_UTILIZATION}; "
          f"beat 1)")
    for cfg in (lstm, lstm.as_kind(kinds.make("gru"))):
        pts = [interleave_point(cfg.replace(lanes=n)) for n in range(1, cfg.rows + 1)]
        print(f"{cfg.variant} {cfg.input_size}->{cfg.hidden_size} ({cfg.rows} rows)")
        print(f"  {'lanes':>5} {'alone':>7} {'interleave':>10} {'with it':>8} {'slot ceiling':>12}")
        for r in pts:
            if r["lanes"] in INTERLEAVE_LANES:
                n = "-" if r["interleave"] is None else str(r["interleave"])
                print(f"  {r['lanes']:>5} {r['alone']:>7.3f} {n:>10} {r['util']:>8.3f} {r['ceiling']:>12.3f}")
        reach = [r for r in pts if r["interleave"] is not None]
        capped = [r for r in pts if r["interleave"] is None and r["ceiling"] < TARGET_UTILIZATION]
        missed = [r["lanes"] for r in pts if r["interleave"] is None and r["ceiling"] >= TARGET_UTILIZATION]
        alone = sum(r["alone"] >= TARGET_UTILIZATION for r in pts)
        print(f"  lane counts 1..{cfg.rows}: {len(reach)} reach {TARGET_UTILIZATION} ({alone} alone, the rest with "
              f"interleave <= {max((r['interleave'] for r in reach), default=1)}); {len(capped)} cannot "
              f"(their last slot is part-filled: slot ceiling < {TARGET_UTILIZATION}); "
              f"{'none missed' if not missed else 'MISSED at lanes ' + ', '.join(map(str, missed))}")
        failed += len(missed)
    return 1 if failed else 0


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
    parallel = print_curves(base)
    interleaved = print_interleave_curves(base)
    return 0 if worst <= TARGET_RATIO and parallel == 0 and interleaved == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
