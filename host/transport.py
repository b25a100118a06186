"""Byte transports of the host driver: the board's serial port, or anything else with the same two methods.

A transport has ``async send(data: bytes)`` and ``async recv() -> bytes`` (at least one byte; raises
:class:`TransportError` after its timeout).  :class:`SerialTransport` talks to a board through pyserial;
the board simulation (:mod:`sim.boardbench`) gives the same methods over cocotbext-uart, so the driver
code is the same for both.
"""
from __future__ import annotations


class TransportError(OSError):
    """The link failed or stayed silent; the message says which port and what happened."""


class SerialTransport:
    """A serial port (pyserial): ``port`` such as ``/dev/ttyUSB0`` or ``COM3``, 8N1 at ``baud``."""

    def __init__(self, port: str, baud: int, timeout: float = 2.0):
        import serial  # noqa: PLC0415  (pyserial, only for a real board)
        self.port, self.timeout = port, timeout
        try:
            self._s = serial.Serial(port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=timeout)
        except (serial.SerialException, ValueError) as e:
            raise TransportError(f"cannot open serial port {port!r} at {baud} baud: {e}") from None

    async def send(self, data: bytes):
        self._s.write(data)
        self._s.flush()

    async def recv(self) -> bytes:
        first = self._s.read(1)
        if not first:
            raise TransportError(f"no answer on {self.port} within {self.timeout} s (is the bitstream loaded, "
                                 f"the baud rate right?)")
        return first + self._s.read(self._s.in_waiting)

    def close(self):
        self._s.close()
