"""Protocol checkers: the ``amaranth.lib.stream`` rules on ``i`` and ``o``, and no X/Z after reset.

Violations go to ``bench.violation`` (which fails the test, or records them during the self-test).
Both wake only on the signals they watch, never on every clock.
"""
from __future__ import annotations

from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, ValueChange


class StreamChecker:
    """valid/ready rules on stream ``name``: once ``valid`` is high without ``ready``, the next cycle
    must still have ``valid`` high and the same payload.  A reset in between excuses the stream.
    Wakes only when valid or ready change, or while a transfer is stalled, when its payload changes
    (never on every clock: an input stalled for a whole step costs nothing)."""

    def __init__(self, bench, name: str):
        self.b, self.name = bench, name
        d = bench.dut
        self.valid, self.ready, self.payload = (getattr(d, f"{name}__{s}") for s in ("valid", "ready", "payload"))

    async def run(self):
        d = self.b.dut
        held = None
        while True:
            await ReadOnly()
            in_reset = d.rst.value == 1
            v, r = self.valid.value, self.ready.value
            if held is not None and not in_reset:
                if v != 1:
                    self.b.violation(f"{self.name}__valid dropped from 1 to {v} before the handshake "
                                     f"(payload {held})")
                elif self.payload.value != held:
                    self.b.violation(f"{self.name}__payload changed from {held} to {self.payload.value} "
                                     f"before the handshake")
            held = None
            if v == 1 and r == 0 and not in_reset:
                held = self.payload.value      # stalled: check when anything that matters changes
                await First(FallingEdge(self.valid), ValueChange(self.payload), RisingEdge(self.ready),
                            RisingEdge(d.rst))
            elif v == 1:
                await FallingEdge(self.ready)  # transfers flow; a stall needs ready to fall
            else:
                await RisingEdge(self.valid)   # idle; a stall needs valid to rise


class XChecker:
    """No X/Z on ``o__valid``, ``i__ready``, or on ``o__payload`` while ``o__valid``, outside reset
    (4-state simulators).  One watcher per signal wakes on that signal's changes (and when reset ends)."""

    def __init__(self, bench):
        self.b = bench

    async def run(self):
        d = self.b.dut
        for sig in (d.o__valid, d.i__ready, d.o__payload):
            self.b.spawn(self._watch(sig))
        while True:
            await FallingEdge(d.rst)
            await ReadOnly()
            self.check()

    async def _watch(self, sig):
        while True:
            await ValueChange(sig)
            await ReadOnly()
            self.check()

    def check(self):
        d = self.b.dut
        if d.rst.value == 1:
            return
        bad = [n for n in ("o__valid", "i__ready") if not getattr(d, n).value.is_resolvable]
        if not bad and d.o__valid.value == 1 and not d.o__payload.value.is_resolvable:
            bad.append(f"o__payload = {d.o__payload.value}")
        if bad:
            self.b.violation(f"X/Z after reset on {', '.join(bad)}")
