"""8N1 UART receiver and transmitter with stream ports: the byte layer of the board's host link
(:mod:`rtl.bridge`).

One start bit (low), eight data bits (least significant first), one stop bit (high), no parity; a bit
lasts ``divisor`` clock cycles (``clock / baud``, e.g. 12 MHz / 115200 -> 104).
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from model.errors import ConfigError

#: Smallest ``divisor``: the receiver samples mid-bit, after a two-flop synchroniser.
MIN_DIVISOR = 4


def check_int(name: str, value, lo: int, hi: int | None = None, unit: str = "") -> int:
    """``value`` if it is an integer in ``lo..hi`` (no upper bound: ``hi`` None), else :class:`ConfigError`
    naming ``name``, the value and the range (``unit`` says what it counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        accepted = f"an integer in {lo}..{hi}" if hi is not None else f"an integer >= {lo}"
        raise ConfigError(f"{name} must be {accepted}{f' ({unit})' if unit else ''}, not {value!r}")
    return value


class _Uart(wiring.Component):
    """What the receiver and the transmitter share: the checked ``divisor``."""

    def __init__(self, divisor: int, members: dict):
        self._divisor = check_int("divisor", divisor, MIN_DIVISOR, unit="clock cycles per bit")
        super().__init__(members)

    @property
    def divisor(self) -> int:
        return self._divisor


class UartRx(_Uart):
    """Receives 8N1 bytes on ``rx`` and offers each on the stream ``o``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR` (the sender's bit time may differ by a few
        percent: the last sample is ``9.5`` bits after the start edge).

    Ports
    -----
    rx : In(1)
        The line (asynchronous: a two-flop synchroniser, reset high, comes first).  Idle high.
    o : Out(stream.Signature(8))
        One transfer per byte received with a valid (high) stop bit; ``valid`` stays high until
        ``ready``.  A byte with a low stop bit is dropped, and the receiver waits for the line to go
        high before it looks for the next start bit.
    overrun : Out(1)
        Sticky: a byte completed while the previous one still waited on ``o``.  The new byte is dropped
        (the waiting one stays on ``o`` unchanged).

    Timing
    ------
    A falling edge on the synchronised line starts a byte; the start bit is checked ``divisor // 2``
    cycles later (a glitch shorter than that is no start bit) and each later bit ``divisor`` cycles after
    the one before, so bits are sampled near their middle.  ``o.valid`` rises
    ``9 * divisor + divisor // 2 + 3`` cycles after the cycle in which ``rx`` fell for the start bit
    (just after the middle of the stop bit).

    Raises
    ------
    ConfigError
        ``divisor`` is not an integer >= 4.
    """

    def __init__(self, divisor: int):
        super().__init__(divisor, {"rx": In(1, init=1), "o": Out(stream.Signature(8)), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        cnt = Signal(range(d))
        bit = Signal(range(8))
        shift = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += cnt.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [cnt.eq(d - 1), bit.eq(0)]
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [cnt.eq(d - 1), shift.eq(shift[1:] | line << 7), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    with m.If(line):
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(_Uart):
    """Sends each byte taken from the stream ``i`` on ``tx``, 8N1.

    Parameters
    ----------
    divisor : int
        Clock cycles each bit is held on ``tx``; at least :data:`MIN_DIVISOR`, like the receiver's.

    Ports
    -----
    i : In(stream.Signature(8))
        ``ready`` is high while the transmitter is idle and in the last cycle of a stop bit, so bytes
        offered back to back leave with no gap between stop and start bit.
    tx : Out(1)
        The line, straight from a register; high when idle.

    Timing
    ------
    A byte taken in cycle ``n`` puts its start bit on ``tx`` from cycle ``n + 1``; each bit lasts
    ``divisor`` cycles, so a byte takes ``10 * divisor`` cycles and ``ready`` is next high in cycle
    ``n + 10 * divisor``.

    Raises
    ------
    ConfigError
        ``divisor`` is not an integer >= 4.
    """

    def __init__(self, divisor: int):
        super().__init__(divisor, {"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        shift = Signal(10, init=0x3FF)   # stop bit, data, start bit: bit 0 is on the line
        left = Signal(range(11))         # bits still to send, the one on the line included
        cnt = Signal(range(d))
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq((left == 0) | ((left == 1) & (cnt == 0)))]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(1 << 9 | self.i.payload << 1), left.eq(10), cnt.eq(d - 1)]
        with m.Elif(left != 0):
            m.d.sync += cnt.eq(cnt - 1)
            with m.If(cnt == 0):
                m.d.sync += [cnt.eq(d - 1), shift.eq(shift[1:] | 1 << 9), left.eq(left - 1)]
        return m
