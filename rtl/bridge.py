"""The board's UART host link: decodes :mod:`host.protocol` frames into register-bus accesses and
stream elements, and sends the network's output elements back as OUT frames.

The host reaches the register file (:mod:`rtl.regfile`) with WRITE and READ bursts, feeds the network
with STREAM frames, and receives every output element unasked.  The protocol (frames, command bytes,
:data:`host.protocol.STREAM_WINDOW`) is defined once, in :mod:`host.protocol`; this module only
implements it.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from host.protocol import (CMD_READ, CMD_STREAM, CMD_WRITE, HEADER_BYTES, MAX_SIZE, RSP_ACK, RSP_DATA,
                           RSP_ERROR, RSP_OUT, RSP_STREAM, STREAM_WINDOW)
from model.errors import ConfigError

from .regfile import reg_bus
from .uart import MIN_DIVISOR, UartRx, UartTx, check_int

#: Bytes the receive FIFO holds while the command decoder waits on the bus or the transmitter.
RX_FIFO_DEPTH = 16
#: User bits of a STREAM element (flags bits 1-2).
IN_USER_BITS = 2
#: User bits an OUT frame's flags byte has room for (bits 1-7).
MAX_OUT_USER_BITS = 7
#: A byte on its way to the transmitter, ``last`` on the last byte of a frame.
FRAME_BYTE = data.StructLayout({"byte": 8, "last": 1})


def in_layout(in_bytes: int) -> data.StructLayout:
    """The payload of ``si``: a STREAM element."""
    return data.StructLayout({"data": 8 * in_bytes, "last": 1, "user": IN_USER_BITS})


def out_layout(out_bytes: int, out_user_bits: int) -> data.StructLayout:
    """The payload of ``so``: an element to send as an OUT frame."""
    return data.StructLayout({"data": 8 * out_bytes, "last": 1, "user": out_user_bits})


class UartBridge(wiring.Component):
    """A :mod:`host.protocol` device: a register-bus master and a pair of element streams behind a UART.

    Parameters
    ----------
    divisor : int
        Clock cycles per UART bit (>= 4), as :class:`rtl.uart.UartRx`.
    addr_bits : int
        Width of the bus byte address (1..32); the frames' 32-bit addresses keep their low ``addr_bits``.
    in_bytes, out_bytes : int
        Data bytes of a STREAM element and of an OUT element.
    out_user_bits : int
        User bits of an output element (0..7).
    stream_window : int
        Depth of the ``si`` FIFO, at least :data:`host.protocol.STREAM_WINDOW` (the default).

    Ports
    -----
    rx : In(1), tx : Out(1)
        The UART lines, 8N1, idle high.
    bus : Out(:func:`rtl.regfile.reg_bus` (addr_bits))
        WRITE word ``k`` is one ``we`` pulse at ``addr + 4 k`` with ``wdata`` the word sign-extended to 32
        bits; READ word ``k`` one ``re`` pulse.  One request at a time, each waiting for its ``ack`` (in
        the request's cycle or later); ``err`` with an ``ack`` sets the reply's status bit 0.
    si : Out(stream.Signature(:func:`in_layout`))
        STREAM elements in order, through a FIFO of ``stream_window`` elements: ``data`` the low
        ``8 * in_bytes`` bits of the value, ``last`` and ``user`` from the flags byte.  The ``'K'`` reply
        goes out once the FIFO is empty, i.e. every element sent so far has been taken.
    so : In(stream.Signature(:func:`out_layout`))
        Each element taken is sent as one OUT frame; the next is taken once that frame has left, so
        ``so`` waits while the line is busy.
    overrun : Out(1)
        Sticky: a received byte was dropped because the receive FIFO was full.  A host that follows
        :mod:`host.protocol`'s rules never causes it (see Timing).

    Timing
    ------
    A byte takes ``10 * divisor`` cycles on the line.  The decoder takes one received byte per cycle
    except while it waits: for a bus ``ack`` (once per WRITE word, after its last byte), for the
    transmitter (a reply, which the host's rules keep apart from further commands), or for room in the
    ``si`` FIFO (which a STREAM frame within the window always has).  The receive FIFO
    (:data:`RX_FIFO_DEPTH` bytes) absorbs those waits, so a bus slave that answers within a few bytes'
    time never loses a byte.  Replies and OUT frames share the transmitter frame by frame, taking turns
    when both are waiting; an OUT frame is ``out_bytes + 2`` bytes long.

    Raises
    ------
    ConfigError
        A parameter outside the range given above; the message names it.
    """

    def __init__(self, *, divisor: int, addr_bits: int, in_bytes: int, out_bytes: int, out_user_bits: int,
                 stream_window: int = STREAM_WINDOW):
        try:
            self._divisor = check_int("divisor", divisor, MIN_DIVISOR, unit="clock cycles per bit")
            self._addr_bits = check_int("addr_bits", addr_bits, 1, 32)
            self._in_bytes = check_int("in_bytes", in_bytes, 1)
            self._out_bytes = check_int("out_bytes", out_bytes, 1)
            self._out_user_bits = check_int("out_user_bits", out_user_bits, 0, MAX_OUT_USER_BITS)
            self._stream_window = check_int("stream_window", stream_window, STREAM_WINDOW)
        except ConfigError:
            self._MustUse__silence = True   # refused: nothing to elaborate
            raise
        self._rx, self._tx = UartRx(divisor), UartTx(divisor)
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "bus": Out(reg_bus(addr_bits)),
            "si": Out(stream.Signature(in_layout(in_bytes))),
            "so": In(stream.Signature(out_layout(out_bytes, out_user_bits))),
            "overrun": Out(1),
        })

    divisor = property(lambda self: self._divisor)
    addr_bits = property(lambda self: self._addr_bits)
    in_bytes = property(lambda self: self._in_bytes)
    out_bytes = property(lambda self: self._out_bytes)
    out_user_bits = property(lambda self: self._out_user_bits)
    stream_window = property(lambda self: self._stream_window)

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = self._rx
        m.submodules.uart_tx = utx = self._tx
        m.submodules.rx_fifo = rxf = fifo.SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.si_fifo = sif = fifo.SyncFIFOBuffered(width=in_layout(self._in_bytes).size,
                                                           depth=self._stream_window)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx), self.overrun.eq(urx.overrun)]
        wiring.connect(m, urx.o, rxf.w_stream)
        wiring.connect(m, sif.r_stream, wiring.flipped(self.si))
        b = rxf.r_stream                       # received bytes

        # Two frame sources share the transmitter: the decoder's replies and the OUT frames.
        replies = stream.Signature(FRAME_BYTE).create()
        outs = stream.Signature(FRAME_BYTE).create()
        self._decoder(m, b, sif, replies)
        self._outframes(m, outs)

        # ---- frame arbiter: a source owns the transmitter from its first byte to its last ----------
        busy, owner, turn = Signal(), Signal(), Signal()   # owner/turn: 0 decoder, 1 OUT frames
        with m.If(~busy):
            with m.If(replies.valid & (~outs.valid | ~turn)):
                m.d.sync += [busy.eq(1), owner.eq(0)]
            with m.Elif(outs.valid):
                m.d.sync += [busy.eq(1), owner.eq(1)]
        with m.Else():
            src = Mux(owner, outs.payload.as_value(), replies.payload.as_value())
            m.d.comb += [utx.i.valid.eq(Mux(owner, outs.valid, replies.valid)), utx.i.payload.eq(src[:8]),
                         outs.ready.eq(owner & utx.i.ready), replies.ready.eq(~owner & utx.i.ready)]
            with m.If(utx.i.valid & utx.i.ready & src[8]):
                m.d.sync += [busy.eq(0), turn.eq(~owner)]
        return m

    def _decoder(self, m, b, sif, t):
        """The command decoder: takes bytes from ``b``, drives the bus and ``sif``, sends replies on ``t``."""
        bus = self.bus
        cmd = Signal(8)
        hdr = Signal(8 * max(HEADER_BYTES.values()))   # header bytes shift in from the top
        top = len(hdr)
        addr = Signal(32)
        count = Signal(16)                            # words or elements still to go
        size = Signal(8)
        nb = Signal(range(max(self._in_bytes, top // 8) + 1))   # bytes of the header, word or element to go
        word = Signal(32)                             # WRITE word (bytes shift in from the top) or READ word
        elem = Signal(8 * self._in_bytes)             # STREAM element data (bytes shift in from the top)
        err = Signal()

        def send(byte, last):
            """Offer one reply byte; true in the cycle it is taken."""
            return _offer(m, t, byte, last)

        def gather(reg, nxt):
            """Take ``nb`` bytes into the top of ``reg`` (little-endian), then go to ``nxt``."""
            m.d.comb += b.ready.eq(1)
            with m.If(b.valid):
                m.d.sync += [reg.eq(Cat(reg[8:], b.payload)), nb.eq(nb - 1)]
                with m.If(nb == 1):
                    m.next = nxt

        def say(byte, last, nxt):
            """Send one reply byte, then go to ``nxt``."""
            with m.If(send(byte, last)):
                m.next = nxt

        def counted(done_state, more_state):
            """One word or element of the burst is done: to ``done_state`` after the last, else ``more_state``."""
            m.d.sync += count.eq(count - 1)
            with m.If(count == 1):
                m.next = done_state
            with m.Else():
                m.next = more_state

        def written():
            """A WRITE word was acknowledged: on to the next word, or to the reply after the last."""
            m.d.sync += [err.eq(err | bus.err), addr.eq(addr + 4), nb.eq(size)]
            counted("ACK", "W_DATA")

        def read():
            """A READ word arrived: send its bytes."""
            m.d.sync += [err.eq(err | bus.err), word.eq(bus.rdata), nb.eq(4)]
            m.next = "R_SEND"

        def request(strobe, answered, wait_state):
            """Pulse ``strobe``; ``answered`` on an ``ack`` in this cycle, else wait in ``wait_state``."""
            m.d.comb += strobe.eq(1)
            with m.If(bus.ack):
                answered()
            with m.Else():
                m.next = wait_state

        def wait(answered):
            with m.If(bus.ack):
                answered()

        m.d.comb += bus.addr.eq(addr)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += b.ready.eq(1)
                with m.If(b.valid):
                    m.d.sync += cmd.eq(b.payload)
                    with m.Switch(b.payload):
                        for c, n in HEADER_BYTES.items():
                            with m.Case(c):
                                m.d.sync += nb.eq(n)
                                m.next = "HEADER"
                        with m.Default():
                            m.next = "ERROR"
            with m.State("HEADER"):
                gather(hdr, "DECODE")
            with m.State("DECODE"):
                m.d.sync += err.eq(0)
                with m.Switch(cmd):
                    with m.Case(CMD_WRITE):   # addr:u32 count:u16 size:u8
                        w_count, w_size = hdr[top - 24:top - 8], hdr[top - 8:]
                        m.d.sync += [addr.eq(hdr[top - 56:top - 24]), count.eq(w_count), size.eq(w_size),
                                     nb.eq(w_size)]
                        with m.If((w_size == 0) | (w_size > MAX_SIZE)):
                            m.next = "ERROR"
                        with m.Elif(w_count == 0):
                            m.next = "ACK"
                        with m.Else():
                            m.next = "W_DATA"
                    with m.Case(CMD_READ):    # addr:u32 count:u16
                        m.d.sync += [addr.eq(hdr[top - 48:top - 16]), count.eq(hdr[top - 16:])]
                        m.next = "R_HEAD"
                    with m.Case(CMD_STREAM):  # count:u16
                        m.d.sync += [count.eq(hdr[top - 16:]), nb.eq(self._in_bytes)]
                        with m.If(hdr[top - 16:] == 0):
                            m.next = "S_DRAIN"
                        with m.Else():
                            m.next = "S_DATA"

            # ---- WRITE: gather a word, write it; 'A' and the status after the last ---------------
            with m.State("W_DATA"):
                gather(word, "W_REQ")
            with m.State("W_REQ"):
                with m.Switch(size):
                    for k in range(1, MAX_SIZE + 1):
                        with m.Case(k):
                            m.d.comb += bus.wdata.eq(word[32 - 8 * k:].as_signed())
                request(bus.we, written, "W_WAIT")
            with m.State("W_WAIT"):
                wait(written)
            with m.State("ACK"):
                say(RSP_ACK, 0, "STATUS")
            with m.State("STATUS"):
                say(err, 1, "IDLE")

            # ---- READ: 'D'; read a word and send its bytes, count times; the status ---------------
            with m.State("R_HEAD"):
                with m.If(send(RSP_DATA, 0)):
                    m.next = "R_REQ"
                    with m.If(count == 0):
                        m.next = "STATUS"
            with m.State("R_REQ"):
                request(bus.re, read, "R_WAIT")
            with m.State("R_WAIT"):
                wait(read)
            with m.State("R_SEND"):
                with m.If(send(word[:8], 0)):
                    m.d.sync += [word.eq(word[8:]), nb.eq(nb - 1)]
                    with m.If(nb == 1):
                        m.d.sync += addr.eq(addr + 4)
                        counted("STATUS", "R_REQ")

            # ---- STREAM: each element into the FIFO; 'K' once the FIFO has drained ----------------
            with m.State("S_DATA"):
                gather(elem, "S_FLAGS")
            with m.State("S_FLAGS"):
                m.d.comb += [b.ready.eq(sif.w_stream.ready), sif.w_stream.valid.eq(b.valid),
                             sif.w_stream.payload.eq(Cat(elem, b.payload[:1 + IN_USER_BITS]))]
                with m.If(b.valid & sif.w_stream.ready):
                    m.d.sync += nb.eq(self._in_bytes)
                    counted("S_DRAIN", "S_DATA")
            with m.State("S_DRAIN"):
                with m.If(sif.level == 0):
                    m.next = "S_ACK"
            with m.State("S_ACK"):
                say(RSP_STREAM, 1, "IDLE")

            with m.State("ERROR"):
                say(RSP_ERROR, 1, "IDLE")

    def _outframes(self, m, t):
        """Takes an element from ``so`` and sends it as an OUT frame on ``t``."""
        n = self._out_bytes
        value = Signal(8 * n)
        flags = Signal(8)
        nb = Signal(range(n + 1))
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.so.ready.eq(1)
                with m.If(self.so.valid):
                    m.d.sync += [value.eq(self.so.payload.data), nb.eq(n),
                                 flags.eq(Cat(self.so.payload.last, self.so.payload.user))]
                    m.next = "HEAD"
            with m.State("HEAD"):
                with m.If(_offer(m, t, RSP_OUT, 0)):
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(_offer(m, t, value[:8], 0)):
                    m.d.sync += [value.eq(value[8:]), nb.eq(nb - 1)]
                    with m.If(nb == 1):
                        m.next = "FLAGS"
            with m.State("FLAGS"):
                with m.If(_offer(m, t, flags, 1)):
                    m.next = "IDLE"


def _offer(m, t, byte, last):
    """Offer ``byte`` on the frame-byte stream ``t`` this cycle; the result is true when it is taken."""
    m.d.comb += [t.valid.eq(1), t.payload.byte.eq(byte), t.payload.last.eq(last)]
    return t.ready
