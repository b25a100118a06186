"""The byte protocol of the board's UART host link: frame layouts, command bytes, encoders and a decoder.

One home for the protocol: the gateware (:mod:`rtl.bridge`) takes its command bytes and window from
here, and the host driver encodes and decodes with the functions below.  Pure Python (no Amaranth, no
NumPy), so a host needs nothing else.

Every multi-byte field is little-endian.  A word of ``size`` bytes is two's complement; the device
sign-extends it to 32 bits.  A flags byte holds ``last`` in bit 0 and the user bits from bit 1 up.

Host to device
--------------

======  ===================================================  ==============================================
frame   bytes                                                device's reply
======  ===================================================  ==============================================
WRITE   ``'W'``, addr:u32, count:u16, size:u8 (1..4), then   ``'A'``, status:u8
        ``count`` words of ``size`` bytes; word ``k`` goes
        to bus address ``addr + 4 k``
READ    ``'R'``, addr:u32, count:u16                         ``'D'``, ``count`` words u32 (from ``addr``,
                                                             ``addr + 4``, ...), status:u8
STREAM  ``'S'``, count:u16 (1..:data:`STREAM_WINDOW`), then  ``'K'`` once every element of the frame has
        ``count`` elements: ``in_bytes`` data bytes, one     been accepted by the device's stream output
        flags byte (bit 0 last, bits 1-2 user)
======  ===================================================  ==============================================

``status`` bit 0 (:data:`STATUS_ERR`): some bus access of the burst was refused (the register file's
error response).  Device to host, unasked:

======  ==========================================================================================
frame   bytes
======  ==========================================================================================
OUT     ``'O'``, ``out_bytes`` data bytes (the element's value, two's complement), one flags byte
        (bit 0 last, bits 1.. user): one frame per element of the device's output stream
ERROR   ``'E'``: answers one byte that arrived where a command byte was expected and is not one of
        ``'W'``, ``'R'``, ``'S'`` (or a WRITE whose size is not 1..4: its header is dropped)
======  ==========================================================================================

Rules
-----
- Frames are atomic on each line: an OUT frame never starts inside a reply, nor a reply inside an OUT
  frame.  The device sends an OUT frame only when its transmitter is free of other frames; meanwhile
  the output stream waits (back-pressure), nothing is lost.
- The host sends one frame and waits for its reply (``'A'``, ``'D'`` frame, ``'K'``, ``'E'``) before it
  sends the next; OUT frames may arrive at any time in between.  A STREAM frame therefore never
  brings more elements than the device's FIFO holds (:data:`STREAM_WINDOW`), and the link is lossless
  without flow control.
- Resynchronisation: after an ERROR reply the device expects a command byte again, so a host that
  lost track sends a byte that is not a command (e.g. ``0x00``) until it gets ``'E'`` back, then goes on.
- Counts of 0 are legal on the wire (WRITE and READ then touch nothing; STREAM replies ``'K'`` at
  once); the encoders refuse them, as they refuse a STREAM frame longer than the window.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Host-to-device command bytes.
CMD_WRITE, CMD_READ, CMD_STREAM = b"W"[0], b"R"[0], b"S"[0]
#: Device-to-host frame bytes: write acknowledge, read data, stream accepted, output element, error.
RSP_ACK, RSP_DATA, RSP_STREAM, RSP_OUT, RSP_ERROR = b"A"[0], b"D"[0], b"K"[0], b"O"[0], b"E"[0]
#: Elements one STREAM frame may carry (the device's stream FIFO holds at least this many).
STREAM_WINDOW = 32
#: ``status`` bit: some bus access of the burst returned an error.
STATUS_ERR = 1
#: Largest count of a WRITE, READ (u16 field) and size of a WRITE word.
MAX_COUNT, MAX_SIZE = 0xFFFF, 4
#: Header bytes after the command byte: WRITE (addr, count, size), READ (addr, count), STREAM (count).
HEADER_BYTES = {CMD_WRITE: 7, CMD_READ: 6, CMD_STREAM: 2}


class ProtocolError(ValueError):
    """A frame that cannot be encoded (the message names the argument, its value and what is accepted),
    or received bytes that are not a valid frame."""


def _check_int(name: str, value, lo: int, hi: int):
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")


def _le(value: int, nbytes: int) -> bytes:
    return (value & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little")


def _word(name: str, value, nbytes: int) -> bytes:
    """``value`` as ``nbytes`` little-endian bytes; it may be given signed or unsigned."""
    _check_int(name, value, -(1 << (8 * nbytes - 1)), (1 << (8 * nbytes)) - 1)
    return _le(value, nbytes)


def flags_byte(last, user: int = 0, user_bits: int = 2) -> int:
    """The flags byte of a STREAM or OUT element: ``last`` in bit 0, ``user`` from bit 1."""
    _check_int("user", user, 0, (1 << user_bits) - 1)
    return int(bool(last)) | user << 1


def write_frame(addr: int, words, size: int = 4) -> bytes:
    """A WRITE of ``words`` (each ``size`` bytes, signed or unsigned) to ``addr``, ``addr + 4``, ..."""
    _check_int("addr", addr, 0, 0xFFFFFFFF)
    _check_int("size", size, 1, MAX_SIZE)
    words = list(words)
    _check_int("the number of words", len(words), 1, MAX_COUNT)
    body = b"".join(_word(f"word {k}", w, size) for k, w in enumerate(words))
    return bytes([CMD_WRITE]) + _le(addr, 4) + _le(len(words), 2) + bytes([size]) + body


def read_frame(addr: int, count: int) -> bytes:
    """A READ of ``count`` words from ``addr``, ``addr + 4``, ..."""
    _check_int("addr", addr, 0, 0xFFFFFFFF)
    _check_int("count", count, 1, MAX_COUNT)
    return bytes([CMD_READ]) + _le(addr, 4) + _le(count, 2)


def stream_frame(elements, in_bytes: int) -> bytes:
    """A STREAM frame of ``elements``, each ``(data, last, user)`` with ``data`` fitting ``in_bytes``
    bytes (signed or unsigned) and ``user`` in 0..3."""
    _check_int("in_bytes", in_bytes, 1, 64)
    elements = list(elements)
    _check_int("the number of elements", len(elements), 1, STREAM_WINDOW)
    body = b"".join(_word(f"element {k} data", d, in_bytes) + bytes([flags_byte(last, user)])
                    for k, (d, last, user) in enumerate(elements))
    return bytes([CMD_STREAM]) + _le(len(elements), 2) + body


@dataclass(frozen=True)
class Ack:
    """Reply to a WRITE."""
    status: int


@dataclass(frozen=True)
class ReadData:
    """Reply to a READ: the words (unsigned 32-bit) and the status."""
    words: tuple
    status: int


@dataclass(frozen=True)
class StreamAck:
    """Reply to a STREAM: every element of the frame was accepted."""


@dataclass(frozen=True)
class Out:
    """One element of the device's output stream: ``data`` (signed, ``out_bytes`` bytes), ``last``, ``user``."""
    data: int
    last: int
    user: int


@dataclass(frozen=True)
class Error:
    """Reply to a byte that is not a command."""


class Decoder:
    """Parses the device's bytes into frames (:class:`Ack`, :class:`ReadData`, :class:`StreamAck`,
    :class:`Out`, :class:`Error`).

    A ``'D'`` frame's length depends on the READ it answers: call :meth:`expect_read` with each READ's
    count when sending it (replies come in order).  :meth:`feed` takes any chunk of bytes and returns the
    frames completed by it; a partial frame waits for more bytes.  A byte that cannot start a frame, or
    a ``'D'`` with no READ outstanding, raises :class:`ProtocolError`.
    """

    def __init__(self, out_bytes: int):
        _check_int("out_bytes", out_bytes, 1, 64)
        self.out_bytes = out_bytes
        self._buf = bytearray()
        self._reads = []

    def expect_read(self, count: int):
        """A READ of ``count`` words was sent: its ``'D'`` frame is ``4 * count + 2`` bytes."""
        _check_int("count", count, 0, MAX_COUNT)
        self._reads.append(count)

    @property
    def pending(self) -> bytes:
        """Bytes of a frame not yet complete."""
        return bytes(self._buf)

    def _length(self, cmd: int):
        fixed = {RSP_ACK: 2, RSP_STREAM: 1, RSP_ERROR: 1, RSP_OUT: 2 + self.out_bytes}
        if cmd in fixed:
            return fixed[cmd]
        if cmd == RSP_DATA:
            if not self._reads:
                raise ProtocolError("received a 'D' frame with no READ outstanding")
            return 4 * self._reads[0] + 2
        raise ProtocolError(f"received byte {cmd:#04x}, which starts no frame")

    def _frame(self, raw: bytes):
        cmd = raw[0]
        if cmd == RSP_ACK:
            return Ack(raw[1])
        if cmd == RSP_STREAM:
            return StreamAck()
        if cmd == RSP_ERROR:
            return Error()
        if cmd == RSP_OUT:
            n = self.out_bytes
            return Out(int.from_bytes(raw[1:1 + n], "little", signed=True), raw[1 + n] & 1, raw[1 + n] >> 1)
        self._reads.pop(0)
        words = tuple(int.from_bytes(raw[k:k + 4], "little") for k in range(1, len(raw) - 1, 4))
        return ReadData(words, raw[-1])

    def feed(self, data) -> list:
        """Frames completed by ``data`` (bytes, or one byte as an int)."""
        self._buf += bytes([data]) if isinstance(data, int) else bytes(data)
        frames = []
        while self._buf:
            n = self._length(self._buf[0])
            if len(self._buf) < n:
                break
            frames.append(self._frame(bytes(self._buf[:n])))
            del self._buf[:n]
        return frames
