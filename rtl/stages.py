"""Stage bookkeeping for fixed-latency pipelines: every signal is recorded with the stage it
belongs to, so a delay is always "target stage minus current stage" and no offset is typed by hand.

A post-processor builds its stages relative to each other (``S3 = S2 + 1``,
``SG = S3 + latency.ACT``, ...), so a change of a component's latency moves
every later stage with it, and the final stage is checked against the kind's
``row_to_h`` (the cycle model's number).
"""
from __future__ import annotations

from amaranth import Signal, Value

from model import latency


class StageError(ValueError):
    """A signal asked for at a stage before the one it belongs to (a pipeline cannot go back)."""


class Stages:
    """Signals of one pipeline by stage.

    ``put(sig, s)`` records that ``sig`` belongs to stage ``s``; ``at(sig, t)`` is
    ``sig`` delayed by ``t - s`` registers (shared: asking twice builds one
    chain), named ``<name><stage>``; ``reg(value, t, name)`` is a new register at
    stage ``t`` loaded from ``value`` (a stage ``t - 1`` expression);
    ``product(a, b, name)`` is ``a * b`` registered ``model.latency.PRODUCT`` times.
    """

    def __init__(self, m):
        self.m = m
        self._stage = {}   # id -> (value, stage); the value is kept so ids stay unique
        self._chain = {}   # (id of the origin, stage) -> delayed signal

    def put(self, value, stage: int, name: str | None = None):
        """Record ``value`` at ``stage`` (an expression becomes a named signal first); returns it."""
        if not isinstance(value, Signal):
            sig = Signal(Value.cast(value).shape(), name=name or f"s{stage}")
            self.m.d.comb += sig.eq(value)
            value = sig
        self._stage[id(value)] = (value, stage)
        return value

    def stage_of(self, value) -> int:
        try:
            return self._stage[id(value)][1]
        except KeyError:
            raise StageError(f"{getattr(value, 'name', value)!r} has no recorded stage (put it first)") from None

    def at(self, value, stage: int, name: str | None = None):
        """``value`` as seen at ``stage`` (delayed by ``stage - stage_of(value)`` registers)."""
        cur = self.stage_of(value)
        if stage < cur:
            raise StageError(f"{value.name!r} belongs to stage {cur}; it cannot be used at stage {stage}")
        base = name or value.name.rstrip("0123456789") or "d"
        sig = value
        for s in range(cur + 1, stage + 1):
            key = (id(value), s)
            if key not in self._chain:
                nxt = Signal(sig.shape(), name=f"{base}{s}")
                self.m.d.sync += nxt.eq(sig)
                self._chain[key] = self.put(nxt, s)
            sig = self._chain[key]
        return sig

    def reg(self, value, stage: int, name: str, shape=None, reset_less: bool = False):
        """A register belonging to ``stage``, loaded every cycle from ``value``; ``reset_less`` for a
        memory's read data (no reset, so the block RAM can hold the register: :mod:`rtl.outreg`)."""
        sig = Signal(shape if shape is not None else Value.cast(value).shape(), name=f"{name}{stage}",
                     reset_less=reset_less)
        self.m.d.sync += sig.eq(value)
        return self.put(sig, stage)

    def product(self, a, b, name: str):
        """``a * b`` of two recorded signals, taken at the later of their stages ``s`` and registered
        ``model.latency.PRODUCT`` times (the multiplier's output register, so nothing adds to a product
        in the cycle that forms it; without a reset, so :mod:`rtl.outreg` moves it into an ECP5
        MULT18X18D); belongs to stage ``s + PRODUCT``."""
        s = max(self.stage_of(a), self.stage_of(b))
        value = self.at(a, s) * self.at(b, s)
        for k in range(1, latency.PRODUCT + 1):  # no reset: the multiplier's block can hold them
            value = self.reg(value, s + k, name, reset_less=True)
        return value if latency.PRODUCT else self.put(value, s, name)
