"""``make soak``: a long run of the exported cell against the golden model, with random resets and reloads.

    python -m sim.soak [--config configs/tiny.toml] [--sim verilator|icarus] [--steps N] [--seed N]

Runs the cocotb test ``test_soak`` (:mod:`sim.cellbench.soak`): ``steps`` steps (default
100,000) in long sequences, random stalls on both streams, parameter sets reloaded through
``w`` between steps and resets at random cycles; every h element must equal the golden
model's.  Prints the counts (steps, sequences, resets, reloads, h elements compared,
mismatches), the simulated cycles, the wall time and steps per second; exits 1 on any
failure, 2 when the simulator is missing.  ``tests/test_cocotb.py`` runs the same code
for a few hundred steps.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from model.cli import Parser, config_file, nonneg_int, positive_int

from . import runner

DEFAULT_CONFIG = "configs/tiny.toml"


@dataclass
class SoakResult:
    passed: bool
    figures: dict          # the bench's soak figures (steps, resets, reloads, ..., wall, steps_per_second)
    compared: int          # h elements checked
    mismatches: int
    build_seconds: float
    run: runner.RunResult

    def lines(self) -> list[str]:
        f = self.figures
        if not f:
            return ["no soak figures: the bench stopped early"]
        return [f"{f['steps']:,} steps in {f['sequences']:,} sequences (longest {f['longest_sequence']:,} steps), "
                f"{f['resets']} resets, {f['reloads']} parameter reloads, {f['new_sequences']} new sequences by first",
                f"{self.compared:,} h elements compared, {self.mismatches} bit-exact mismatches",
                f"{f['cycles']:,} cycles simulated in {f['wall']:.1f} s: {f['steps_per_second']:,.0f} steps/s, "
                f"{f['cycles'] / f['wall']:,.0f} cycles/s (build {self.build_seconds:.1f} s, whole run "
                f"{self.run.wall:.1f} s)"]


def soak(config, sim: str = "verilator", steps: int = 100_000, seed: int = 1) -> SoakResult:
    """Build ``config`` for ``sim`` and run ``test_soak`` for ``steps`` steps with stimulus seed ``seed``."""
    b = runner.build(config, sim)
    job = runner.SimJob(mode="full", seed=seed, tests=["test_soak"], env={"RNNKIT_SOAK_STEPS": steps})
    res = runner.run(b, job, run_name="soak")
    rep = res.report.get("test_soak", {})
    return SoakResult(res.passed, rep.get("soak") or {}, rep.get("compared", 0), rep.get("mismatches", 0),
                      b.build_seconds, res)


def main(argv=None) -> int:
    ap = Parser(prog="python -m sim.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=config_file(), default=DEFAULT_CONFIG,
                    help=f"cell config (default {DEFAULT_CONFIG})")
    ap.add_argument("--sim", default="verilator", choices=runner.SIMULATORS)
    ap.add_argument("--steps", type=positive_int("--steps", "SOAK_STEPS"), default=100_000,
                    help="steps in all (default 100000)")
    ap.add_argument("--seed", type=nonneg_int("--seed", "SEED"), default=1,
                    help="stimulus, stalls, resets and reloads (default 1)")
    args = ap.parse_args(argv)
    try:
        runner.require_simulator(args.sim)
    except runner.SimulatorMissing as e:
        print(f"[soak] {e}", file=sys.stderr)
        return 2
    print(f"[soak] {args.config} on {args.sim}: {args.steps:,} steps, seed {args.seed} "
          f"(tiny on Verilator: about 350 steps/s) ...", flush=True)
    t0 = time.perf_counter()
    r = soak(args.config, args.sim, args.steps, args.seed)
    for line in r.lines():
        print(f"[soak] {line}")
    if not r.passed:
        print(r.run.failure_summary(), file=sys.stderr)
    print(f"[soak] {'PASS' if r.passed else 'FAIL'} in {time.perf_counter() - t0:.1f} s "
          f"(report {r.run.test_dir.relative_to(runner.ROOT) / 'report.json'})")
    return 0 if r.passed else 1


if __name__ == "__main__":
    sys.exit(main())
