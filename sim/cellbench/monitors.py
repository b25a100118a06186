"""Monitors: what the DUT accepted on ``i`` (whole x(t) vectors with their ``first`` flag) and
every ``o`` transfer.  Both sample at ``ReadOnly()``, see no transfer while ``rst`` is high, and
wake only on handshakes or on the rising ``valid`` / ``ready`` that can start one."""
from __future__ import annotations

import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


async def watch(bench, name: str, on_transfer):
    """Call ``on_transfer(payload)`` (the payload as the simulator shows it) for every handshake on
    stream ``name`` outside reset, at ``ReadOnly()`` of the cycle that transfers it."""
    d = bench.dut
    valid, ready, payload = (getattr(d, f"{name}__{s}") for s in ("valid", "ready", "payload"))
    while True:
        await ReadOnly()
        if d.rst.value == 1:
            await FallingEdge(d.rst)
        elif valid.value == 1 and ready.value == 1:
            on_transfer(payload.value)
            await RisingEdge(d.clk)
        elif valid.value == 1:
            await RisingEdge(ready)   # stalled: a transfer needs ready to rise
        else:
            await RisingEdge(valid)   # idle: a transfer needs valid to rise


class InputMonitor:
    """Every ``i`` handshake; each ``input_size`` accepted elements make one x(t), handed with the
    ``first`` flag and ``seq`` (0 without interleave) of its element 0 (as the cell reads them) to
    ``on_vector(x, first, seq)``; an element
    with X/Z data hands ``x = None``.  :meth:`reset` drops a partly received vector."""

    def __init__(self, bench, on_vector):
        self.b, self.on_vector = bench, on_vector
        self.cycles: list[int] = []  # of every accepted element
        self._elems, self._first, self._seq = [], 0, 0

    def reset(self):
        self._elems = []

    async def run(self):
        await watch(self.b, "i", self._take)

    def _take(self, pv):
        self.cycles.append(self.b.cycle())
        f = self.b.iword.unpack(pv.to_unsigned()) if pv.is_resolvable else None
        if not self._elems:
            self._first = f["first"] if f else 0
            self._seq = f.get("seq", 0) if f else 0
        self._elems.append(None if f is None else f["data"])
        if len(self._elems) == self.b.I:
            x = None if None in self._elems else np.array(self._elems, dtype=np.int64)
            self._elems = []
            self.on_vector(x, self._first, self._seq)


class OutputMonitor:
    """Every ``o`` handshake to ``on_transfer(fields, cycle, raw)``: ``fields`` unpacked with
    ``rtl.streams.output_word`` (None if X/Z), ``raw`` the payload as the simulator shows it."""

    def __init__(self, bench, on_transfer):
        self.b, self.on_transfer = bench, on_transfer

    async def run(self):
        await watch(self.b, "o", lambda pv: self.on_transfer(
            self.b.oword.unpack(pv.to_unsigned()) if pv.is_resolvable else None, self.b.cycle(), str(pv)))
