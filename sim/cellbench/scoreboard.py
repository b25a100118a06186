"""The in-order checker: every ``o`` transfer against the next word the model expects.

A mismatch names the phase label, sequence, step, element, expected and received value, and
prints the golden trace of that unit.  Received h is also measured against the float reference.
"""
from __future__ import annotations

import math
from collections import deque

from cocotb.triggers import Event

FLAGS = ("last", "first", "seq")  # ``seq`` only on an interleaved cell's words


class Scoreboard:
    """Expected transfers come from :meth:`expect` (the model), received ones from :meth:`check`
    (the output monitor); :meth:`flush` drops what a reset took away."""

    def __init__(self, bench, max_reports: int = 5):
        self.b, self.cfg = bench, bench.cfg
        self.queue = deque()
        self.n = self.n_bad = 0        # o transfers received, of which wrong
        self.dropped = 0               # expected transfers a reset took away
        self.mismatches: list[dict] = []
        self.max_reports = max_reports
        self.cycles: list[int] = []    # of every expected transfer received
        self.sequences: list[int] = []  # the sequence of each of them
        self.last = {}                 # sequence -> its latest h(t) as received
        self._fmax = self._fsq = 0.0
        self._fn = 0
        self._arrived = Event()

    def expect(self, items):
        self.queue.extend(items)

    def flush(self):
        self.dropped += len(self.queue)
        self.queue.clear()

    async def wait_for(self, n: int):
        """Until ``n`` transfers have been received in all."""
        while self.n < n:
            self._arrived.clear()
            await self._arrived.wait()

    def next_expected(self) -> str:
        if not self.queue:
            return "nothing (the model expects no more h elements)"
        x = self.queue[0]
        return f"[{x.step.label}] sequence {x.step.sequence} step {x.step.step} element {x.element}"

    def check(self, got: dict | None, cycle: int, raw: str = ""):
        """One ``o`` transfer: ``got`` holds its fields, None if X/Z."""
        self.n += 1
        self._arrived.set()
        data = None if got is None else got["data"]
        flags = None if got is None else {k: got[k] for k in FLAGS if k in got}
        if not self.queue:
            self._bad({"kind": "extra", "index": self.n - 1, "got": data, "got_flags": flags, "cycle": cycle,
                       "text": f"unexpected extra h element {data} ({flags}) at cycle {cycle}: "
                               f"the model expects none"})
            return
        x = self.queue.popleft()
        self.cycles.append(cycle)
        self.sequences.append(x.step.sequence)
        if x.element == 0:
            self.last[x.step.sequence] = []
        self.last[x.step.sequence].append(data)
        if data is not None:
            d = self.cfg.fmt("hidden").to_float(data) - x.ref
            self._fmax, self._fsq, self._fn = max(self._fmax, abs(d)), self._fsq + d * d, self._fn + 1
        if got == x.fields:
            return
        want_flags = {k: x.fields[k] for k in FLAGS if k in x.fields}
        m = {"kind": "value" if data != x.fields["data"] else "flags", "label": x.step.label,
             "sequence": x.step.sequence, "step": x.step.step, "element": x.element, "expected": x.fields["data"],
             "got": data, "expected_flags": want_flags, "got_flags": flags, "expected_word": x.word, "cycle": cycle,
             "raw": raw, "trace": x.step.unit_trace(self.cfg, x.element)}
        m["text"] = self.text(m)
        self._bad(m)

    def float_error(self) -> tuple[float, float, int]:
        """(max-abs, RMS, count) of received h minus the float reference."""
        return self._fmax, math.sqrt(self._fsq / self._fn) if self._fn else 0.0, self._fn

    def last_h(self) -> list:
        """Each sequence's latest h(t) as received, in sequence order."""
        return [self.last[s] for s in sorted(self.last)]

    def _bad(self, m):
        self.n_bad += 1
        if len(self.mismatches) < self.max_reports:
            self.mismatches.append(m)
            self.b.log.error("%s", m["text"])

    def text(self, m: dict) -> str:
        f, cell = self.cfg.formats, self.cfg.cell

        def fl(v, fmt):
            return f"{v} ({f[fmt].to_float(v):+.6f})"

        got = "X/Z " + m["raw"] if m["got"] is None else fl(m["got"], "hidden")
        lines = [
            f"MISMATCH [{m['label']}] sequence {m['sequence']}, step {m['step']}, element {m['element']} "
            f"(unit {m['element']}), cycle {m['cycle']}: expected {fl(m['expected'], 'hidden')}, got {got}"
            + (f"; flags expected {m['expected_flags']}, got {m['got_flags']}"
               if m["got_flags"] != m["expected_flags"] else ""),
            f"  golden trace, unit {m['element']} at step {m['step']} (raw in its format, float):",
        ]
        for k, vals in m["trace"].items():
            fmt = cell.trace_formats()[k.removesuffix("_prev")]
            names = cell.trace_gates().get(k, [""] * len(vals))
            lines.append(f"    {k:<12} " + "  ".join(f"{n}{'=' if n else ''}{fl(v, fmt)}" for n, v in zip(names, vals)))
        return "\n".join(lines)
