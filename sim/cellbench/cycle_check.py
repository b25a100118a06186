"""The cycle check: with streams that never stall, the cycles between the last elements of
consecutive h(t) and the first-output latency must EQUAL ``model.cycles``; MAC utilization reported.
An interleaved cell's sequences take turns: each sequence's consecutive h(t) are one round
(``cycles_per_step``) apart."""
from __future__ import annotations

import numpy as np

from .report import BenchFailure


def check_cycles(b, t, seqs, extra: dict):
    """Measure on what tester ``t`` saw of ``seqs`` (streamed back to back); ``extra["cycles"]`` gets the figures."""
    cm, H = b.cm, b.H
    first_latency = t.board.cycles[0] - t.in_mon.cycles[0]
    if cm.interleave > 1:  # per sequence: every step after its first is one round after the one before
        ends = {}
        for k in range(H - 1, len(t.board.cycles), H):
            ends.setdefault(t.board.sequences[k], []).append(t.board.cycles[k])
        diffs = [d for v in ends.values() for d in np.diff(v).tolist()]
        want = [cm.cycles_per_step] * (sum(len(x) for x in seqs) - len(seqs))
        steady = diffs
    else:
        diffs = np.diff(t.board.cycles[H - 1::H]).tolist()
        want, steady = [], []
        k = 0
        for x in seqs:
            for step in range(len(x)):
                if k > 0:
                    want.append(cm.cycles_per_step if step > 0 else cm.first_step_cycles)
                    if step > 0:
                        steady.append(diffs[k - 1])
                k += 1
    measured = float(np.mean(steady)) if steady else None
    util = cm.interleave * cm.ideal_cycles_per_step / measured if measured else None
    extra["cycles"] = {
        "first_output_latency": first_latency, "first_output_latency_model": cm.first_output_latency,
        "cycles_per_step": measured, "cycles_per_step_model": cm.cycles_per_step,
        "first_step_cycles_model": cm.first_step_cycles, "step_diffs": diffs,
        "ideal_cycles_per_step": cm.ideal_cycles_per_step,
        "mac_utilization": util, "mac_utilization_model": cm.mac_utilization}
    b.log.info("cycles: first-output latency %d (model %d), cycles per step %s (model %d), "
               "MAC utilization %s (model %.4f)", first_latency, cm.first_output_latency, measured,
               cm.cycles_per_step, f"{util:.4f}" if util else "n/a", cm.mac_utilization)
    bad = []
    if first_latency != cm.first_output_latency:
        bad.append(f"first-output latency {first_latency} cycles, model.cycles says {cm.first_output_latency}")
    if diffs != want:
        idx = next(i for i, (a, w) in enumerate(zip(diffs, want)) if a != w) if len(diffs) == len(want) else 0
        bad.append(f"cycles between the last elements of consecutive h(t): {diffs}, model.cycles says {want} "
                   f"(first difference at step boundary {idx})")
    if bad:
        raise BenchFailure("cycle model disagrees: " + "; ".join(bad))
