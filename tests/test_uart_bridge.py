"""The UART host link: :mod:`host.protocol`'s encoders and decoder against hand-written bytes, and
:class:`rtl.bridge.UartBridge` in Amaranth's simulator, driven and read at bit level by the test's own
8N1 line model (independent of :mod:`rtl.uart`), with a fake register file, a random-``ready`` consumer on
``si`` and a producer on ``so``."""
from __future__ import annotations

import random

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from host.protocol import (STREAM_WINDOW, Ack, Decoder, Error, Out, ProtocolError, ReadData, StreamAck,
                           read_frame, stream_frame, write_frame)
from model.errors import ConfigError
from rtl.bridge import UartBridge
from rtl.uart import UartRx
from sim.amsim import Harness, stream_checker

DIV = 4                       # clock cycles per bit
ADDR_BITS = 12
IN_BYTES, OUT_BYTES, OUT_USER = 2, 3, 2
ERR_BASE = 0x800              # the fake register file refuses every address from here up


# ---- the protocol module against bytes written out by hand ------------------------------------------

def test_encoders_match_hand_written_bytes():
    assert write_frame(0x12345678, [-1, 0x1234, 5], 2) == bytes(
        [0x57, 0x78, 0x56, 0x34, 0x12, 3, 0, 2, 0xFF, 0xFF, 0x34, 0x12, 0x05, 0x00])
    assert write_frame(0x100, [-2], 4) == b"W\x00\x01\x00\x00\x01\x00\x04\xfe\xff\xff\xff"
    assert read_frame(0x40, 258) == b"R\x40\x00\x00\x00\x02\x01"
    # elements: data (2 bytes), then flags = last | user << 1
    assert stream_frame([(-3, 0, 1), (0x1FF, 1, 3)], 2) == b"S\x02\x00\xfd\xff\x02\xff\x01\x07"


def test_decoder_on_hand_written_bytes():
    dec = Decoder(out_bytes=3)
    dec.expect_read(2)
    raw = (b"O\xfe\xff\xff\x05" + b"A\x01" + b"D\x01\x00\x00\x00\xff\xff\xff\xff\x00" + b"K" + b"E"
           + b"O\x10\x00\x00\x00")
    got = []
    for k in range(0, len(raw), 3):          # arbitrary chunks: frames cross chunk boundaries
        got += dec.feed(raw[k:k + 3])
    assert got == [Out(-2, 1, 2), Ack(1), ReadData((1, 0xFFFFFFFF), 0), StreamAck(), Error(), Out(16, 0, 0)]
    assert dec.pending == b""


@pytest.mark.parametrize("call, message", [
    (lambda: write_frame(0, [1], 5), "size must be an integer in 1..4, not 5"),
    (lambda: write_frame(0, [128, 256], 1), "word 1 must be an integer in -128..255, not 256"),
    (lambda: write_frame(0, [], 4), "the number of words must be an integer in 1..65535, not 0"),
    (lambda: read_frame(-4, 1), "addr must be an integer in 0..4294967295, not -4"),
    (lambda: stream_frame([(0, 0, 0)] * (STREAM_WINDOW + 1), 2),
     f"the number of elements must be an integer in 1..{STREAM_WINDOW}, not {STREAM_WINDOW + 1}"),
    (lambda: stream_frame([(0, 0, 4)], 2), "user must be an integer in 0..3, not 4"),
    (lambda: Decoder(1).feed(b"D"), "received a 'D' frame with no READ outstanding"),
    (lambda: Decoder(1).feed(b"\x00"), "received byte 0x00, which starts no frame"),
])
def test_protocol_errors(call, message):
    with pytest.raises(ProtocolError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.mark.parametrize("kwargs, message", [
    ({"divisor": 3}, "divisor must be an integer >= 4 (clock cycles per bit), not 3"),
    ({"out_user_bits": 8}, "out_user_bits must be an integer in 0..7, not 8"),
    ({"stream_window": 8}, f"stream_window must be an integer >= {STREAM_WINDOW}, not 8"),
    ({"addr_bits": 0}, "addr_bits must be an integer in 1..32, not 0"),
])
def test_bridge_parameter_errors(kwargs, message):
    args = dict(divisor=DIV, addr_bits=ADDR_BITS, in_bytes=IN_BYTES, out_bytes=OUT_BYTES, out_user_bits=OUT_USER)
    with pytest.raises(ConfigError) as e:
        UartBridge(**{**args, **kwargs})
    assert str(e.value) == message


def test_bridge_elaborates_with_one_byte_elements_and_no_user_bits():
    assert "uart_rx" in rtlil.convert(UartBridge(divisor=5, addr_bits=32, in_bytes=1, out_bytes=1, out_user_bits=0))


# ---- the test's own line model ---------------------------------------------------------------------

async def send_bytes(ctx, line, data, rng=None):
    """Drive ``line`` with ``data``, 8N1, ``DIV`` cycles a bit (random idle bits between bytes with ``rng``)."""
    for byte in data:
        for bit in [0] + [byte >> k & 1 for k in range(8)] + [1]:
            ctx.set(line, bit)
            await ctx.tick().repeat(DIV)
        if rng is not None and rng.random() < 0.2:
            await ctx.tick().repeat(DIV * rng.randint(1, 3))


def test_rx_overrun_is_sticky_and_keeps_the_waiting_byte():
    rx = UartRx(DIV)
    seen = {}

    async def bench(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(5)
        await send_bytes(ctx, rx.rx, b"\xa5")
        await ctx.tick().repeat(2 * DIV)
        seen["first"] = (ctx.get(rx.o.valid), ctx.get(rx.o.payload), ctx.get(rx.overrun))
        await send_bytes(ctx, rx.rx, b"\x3c")
        await ctx.tick().repeat(2 * DIV)
        seen["second"] = (ctx.get(rx.o.valid), ctx.get(rx.o.payload), ctx.get(rx.overrun))
        ctx.set(rx.o.ready, 1)
        await ctx.tick()
        seen["taken"] = (ctx.get(rx.o.valid), ctx.get(rx.overrun))

    sim = Simulator(rx)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"first": (1, 0xA5, 0), "second": (1, 0xA5, 1), "taken": (0, 1)}


# ---- the bridge ------------------------------------------------------------------------------------

def sext(value: int, nbytes: int) -> int:
    """``value`` (unsigned, ``nbytes`` bytes) read as two's complement, as a 32-bit pattern."""
    bits = 8 * nbytes
    return (value - (1 << bits) if value >> (bits - 1) else value) & 0xFFFFFFFF


class Bench:
    """The bridge with its surroundings; the host's script is :meth:`host`."""

    def __init__(self, seed: int):
        self.dut = UartBridge(divisor=DIV, addr_bits=ADDR_BITS, in_bytes=IN_BYTES, out_bytes=OUT_BYTES,
                              out_user_bits=OUT_USER)
        self.top = Harness(self.dut)
        self.rng = random.Random(seed)
        self.mem = {}                 # the fake register file
        self.violations = []
        self.frames = []              # (frame, cycle of the start bit of its last byte)
        self.decoder = Decoder(OUT_BYTES)
        self.taken = []               # si elements, with the cycle of their transfer
        self.si_hold = 0              # the consumer keeps si.ready low until this cycle
        self.outs = []                # elements the producer is to send on so (set by the host)
        self.outs_sent = 0
        self.delays = []              # the register file's answer delay of each request

    # -- surroundings --
    async def regfile(self, ctx):
        """Answers each request after 0-3 cycles (0: in the request's own cycle); refuses ``>= ERR_BASE``."""
        bus, rng, top = self.dut.bus, self.rng, self.top
        while True:
            while not (ctx.get(bus.we) or ctx.get(bus.re) or ctx.get(top.done)):
                await ctx.changed(bus.we, bus.re, top.done)
            if ctx.get(top.done):
                return
            we, addr, wdata = ctx.get(bus.we), ctx.get(bus.addr), ctx.get(bus.wdata)
            delay = rng.randint(0, 3)
            self.delays.append(delay)
            for _ in range(delay):
                await ctx.tick()
                if ctx.get(bus.we) or ctx.get(bus.re):
                    self.violations.append(f"bus: a request at {addr:#x} lasted more than one cycle")
            bad = addr >= ERR_BASE
            if we and not bad:
                self.mem[addr] = wdata
            ctx.set(bus.rdata, 0 if we else (0xBAD00000 | addr) if bad else self.mem.get(addr, 0))
            ctx.set(bus.err, bad)
            ctx.set(bus.ack, 1)
            await ctx.tick()
            ctx.set(bus.ack, 0)
            ctx.set(bus.err, 0)

    async def consumer(self, ctx):
        si = self.dut.si
        while not ctx.get(self.top.done):
            if not ctx.get(si.valid):
                ctx.set(si.ready, 0)
                await ctx.changed(si.valid, self.top.done)
                continue
            ready = ctx.get(self.top.cycle) >= self.si_hold and self.rng.random() < 0.3
            ctx.set(si.ready, ready)
            _, _, cyc, valid, payload = await ctx.tick().sample(self.top.cycle, si.valid, si.payload)
            if ready and valid:
                self.taken.append(((payload.data, payload.last, payload.user), cyc))

    async def producer(self, ctx):
        so = self.dut.so
        while not ctx.get(self.top.done):
            if self.outs_sent == len(self.outs):
                await ctx.tick().repeat(64)
                continue
            data, last, user = self.outs[self.outs_sent]
            await ctx.tick().repeat(self.rng.randint(1, 60))
            ctx.set(so.payload, {"data": data & ((1 << 8 * OUT_BYTES) - 1), "last": last, "user": user})
            ctx.set(so.valid, 1)
            await ctx.tick().until(so.ready)
            ctx.set(so.valid, 0)
            self.outs_sent += 1

    async def line_reader(self, ctx):
        tx, top = self.dut.tx, self.top
        while True:
            while ctx.get(tx) and not ctx.get(top.done):
                await ctx.changed(tx, top.done)      # tx is a register: it changes just after a clock edge
            if ctx.get(top.done):
                return
            cyc = ctx.get(top.cycle)
            await ctx.tick().repeat(DIV // 2)        # to the middle of the start bit
            bits = [ctx.get(tx)]
            for _ in range(9):                       # and of each later bit
                await ctx.tick().repeat(DIV)
                bits.append(ctx.get(tx))
            if bits[0] != 0 or bits[9] != 1:
                self.violations.append(f"tx: bad start or stop bit in the byte starting at cycle {cyc}")
            byte = sum(b << k for k, b in enumerate(bits[1:9]))
            self.frames += [(f, cyc) for f in self.decoder.feed(byte)]

    # -- the host --
    async def reply(self, ctx, after: int, budget: int = 20000):
        """The first frame other than OUT received after ``frames[after]``."""
        for _ in range(budget // 8):
            for f, cyc in self.frames[after:]:
                if not isinstance(f, Out):
                    return f, cyc
            await ctx.tick().repeat(8)
        raise AssertionError(f"no reply within {budget} cycles; frames {self.frames[after:]}")

    async def command(self, ctx, frame: bytes):
        n = len(self.frames)
        await send_bytes(ctx, self.dut.rx, frame, self.rng)
        return await self.reply(ctx, n)

    async def host(self, ctx):
        rng, dut = self.rng, self.dut
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(10)

        # an unknown command, then the link goes on
        assert (await self.command(ctx, b"Z"))[0] == Error()

        # WRITE bursts, every word size, values at the extremes and random, written unsigned
        expect = {}
        bursts = []
        for size in (1, 2, 3, 4, 4, 1):
            top = 1 << 8 * size
            vals = [0, top - 1, top // 2, top // 2 - 1] + [rng.randrange(top) for _ in range(rng.randint(0, 4))]
            addr = 4 * rng.randrange(0, ERR_BASE // 4 - len(vals))
            assert (await self.command(ctx, write_frame(addr, vals, size)))[0] == Ack(0)
            for k, v in enumerate(vals):
                expect[addr + 4 * k] = sext(v, size)
            bursts.append((addr, len(vals)))
        # a burst running into the refused region: status bit 0, nothing written there
        assert (await self.command(ctx, write_frame(ERR_BASE - 8, [-5, 6, 7, 8], 2)))[0] == Ack(1)
        expect[ERR_BASE - 8], expect[ERR_BASE - 4] = sext(0xFFFB, 2), 6
        assert self.mem == expect

        def read_back(addr, count):   # what a READ must return, from what was written
            addrs = range(addr, addr + 4 * count, 4)
            return ReadData(tuple(expect.get(a, 0) if a < ERR_BASE else 0xBAD00000 | a for a in addrs),
                            int(addrs[-1] >= ERR_BASE))

        # READ bursts back
        for addr, count in bursts + [(ERR_BASE - 8, 4)]:
            self.decoder.expect_read(count)
            assert (await self.command(ctx, read_frame(addr, count)))[0] == read_back(addr, count)

        # STREAM frames: a full window with the consumer held off, then smaller ones
        sent = []
        for n, hold in ((STREAM_WINDOW, 3000), (5, 0), (1, 0), (17, 200)):
            elems = [(rng.randrange(-(1 << 15), 1 << 15), rng.randint(0, 1), rng.randint(0, 3)) for _ in range(n)]
            frame = stream_frame(elems, IN_BYTES)
            self.si_hold = ctx.get(self.top.cycle) + len(frame) * 10 * DIV + hold
            reply, k_cycle = await self.command(ctx, frame)
            assert reply == StreamAck()
            sent += [(d & 0xFFFF, last, user) for d, last, user in elems]
            assert [e for e, _ in self.taken] == sent, "si: elements lost, changed or reordered"
            assert self.taken[-1][1] < k_cycle, "'K' started before the last element was taken"
            assert k_cycle >= self.si_hold, "'K' came while the consumer held every element back"

        # OUT frames while a long READ reply is on the line: both complete, neither cut by the other
        self.outs = [(rng.randrange(-(1 << 23), 1 << 23), rng.randint(0, 1), rng.randint(0, 3)) for _ in range(12)]
        addr, count = bursts[0][0], 24
        self.decoder.expect_read(count)
        assert (await self.command(ctx, read_frame(addr, count)))[0] == read_back(addr, count)
        for _ in range(200):
            if len([f for f, _ in self.frames if isinstance(f, Out)]) == len(self.outs):
                break
            await ctx.tick().repeat(50)
        kinds = [type(f).__name__ for f, _ in self.frames]
        assert [(f.data, f.last, f.user) for f, _ in self.frames if isinstance(f, Out)] == self.outs
        d = len(kinds) - 1 - kinds[::-1].index("ReadData")
        assert "Out" in kinds[:d] and "Out" in kinds[d + 1:], f"no OUT frames around the READ reply: {kinds}"

        await ctx.tick().repeat(4 * DIV)
        assert ctx.get(dut.overrun) == 0
        assert self.decoder.pending == b""
        assert set(self.delays) == {0, 1, 2, 3}
        ctx.set(self.top.done, 1)
        await ctx.tick().repeat(2 * DIV + 2)


def test_bridge():
    bench = Bench(seed=1)
    sim = Simulator(bench.top)
    sim.add_clock(1e-8)
    for proc in (bench.regfile, bench.consumer, bench.producer, bench.line_reader):
        sim.add_testbench(proc, background=True)
    stream_violations = []
    sim.add_testbench(stream_checker(bench.top, bench.dut.si, "si", stream_violations), background=True)
    sim.add_testbench(bench.host)
    sim.run()
    assert bench.violations == [] and stream_violations == []
