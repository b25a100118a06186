"""Progress lines, the per-test entry of the JSON report, and the verdict of a test.

The verdict collects every problem: an error raised by the test body, bit-exact mismatches,
expected h elements that never arrived, h against the float bound, the ``status`` bits against
the model's saturations since the last reset (error bits must stay 0), protocol violations.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from rtl.cell import ERROR_BITS, sat_points

_REPORT: dict = {}  # test name -> entry, for every test of this simulator run


class BenchFailure(AssertionError):
    """A test found problems (the message names them all)."""


class Progress:
    """Progress lines in ``path`` (``RNNKIT_PROGRESS``), at most two a second; ``sim.main`` prints them."""

    def __init__(self, path: str | None, test: str, bench):
        self.path, self.test, self.b = path, test, bench
        self._last = 0.0

    def __call__(self, label: str, done: int, total: int, force: bool = False):
        now = time.perf_counter()
        if not self.path or (not force and now - self._last < 0.5):
            return
        self._last = now
        with open(self.path, "a") as f:
            f.write(f"{self.test} {label}: {done}/{total} h elements ({100 * done // max(total, 1)}%), "
                    f"cycle {self.b.cycle() - self.b.c0}, {now - self.b.t_wall:.1f} s\n")


def save_stimulus(bench, label: str, seqs):
    """The sequences of a test next to the report (``<test>_<label>_x.npz``)."""
    if bench.s.report:
        np.savez(Path(bench.s.report).with_name(f"{bench.test}_{label}_x.npz"), *seqs)


def finish(b, tester=None, extra: dict | None = None, error: str | None = None):
    """Write the test's report entry, then raise ``BenchFailure`` naming every problem found."""
    problems = [error] if error else []
    board, model = (tester.board, tester.model) if tester else (None, None)
    compared = board.n if board else 0
    nmis = board.n_bad if board else 0
    mism = board.mismatches if board else []
    if nmis:
        problems.append(f"{nmis} bit-exact mismatches; first:\n" + "\n".join(m["text"] for m in mism[:3]))
    if board and board.queue:
        problems.append(f"{len(board.queue)} expected h elements never arrived; next expected {board.next_expected()}")
    max_abs, rms, n_float = board.float_error() if board else (0.0, 0.0, 0)
    bound = b.bound
    if n_float and (max_abs > bound.max_abs or rms > bound.rms):
        problems.append(f"h vs float reference: max-abs {max_abs:.4g} (bound {bound.max_abs:.4g}), RMS {rms:.4g} "
                        f"(bound {bound.rms:.4g}) for config {b.cfg.name!r}; bound from {bound.source}")
    st = b.status()
    for k in ERROR_BITS:
        if st[k] != 0:
            problems.append(f"status.{k} = {st[k]} (expected 0)")
    sat = model.saturated if model else {}
    want_sat = {k: int(sat.get(p, 0) > 0) for k, p in sat_points(b.cfg).items()}
    for k, w in want_sat.items():
        if st[k] != w:
            problems.append(f"status.{k} = {st[k]} but the golden model says {w} "
                            f"({'saturations' if w else 'no saturation'} since reset)")
    if b.violations:
        problems.append("protocol violations: " + "; ".join(b.violations[:5]))
    entry = {
        "config": b.cfg.name, "config_path": b.s.config_path, "sim": b.s.sim, "seed": b.s.seed,
        "param_seed": b.s.param_seed, "sequences": model.sequence + 1 if model else 0,
        "steps": model.steps if model else 0, "compared": compared, "mismatches": nmis,
        "first_mismatches": [{k: v for k, v in m.items() if k != "text"} for m in mism[:5]],
        "dropped_at_reset": board.dropped if board else 0,
        "max_abs": max_abs, "rms": rms, "float_bound": [bound.max_abs, bound.rms],
        "float_bound_source": bound.source, "float_bound_parts": bound.parts,
        "status": st, "status_expected": want_sat, "violations": b.violations[:20],
        "sim_cycles": b.cycle() - b.c0, "wall": time.perf_counter() - b.t_wall,
        "passed": not problems, "problems": problems, **(extra or {}),
    }
    _REPORT[b.test] = entry
    if b.s.report:
        Path(b.s.report).write_text(json.dumps(_REPORT, indent=1, default=_jsonable))
    b.progress("done", compared, compared, force=True)
    b.stop()
    b.log.info("%s: compared %d h elements, %d mismatches, max-abs %.3g, RMS %.3g vs float, %d cycles",
               b.test, compared, nmis, max_abs, rms, entry["sim_cycles"])
    if problems:
        raise BenchFailure(f"{b.test} (seed {b.s.seed}): " + "\n".join(problems))


def _jsonable(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
