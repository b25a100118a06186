"""The host driver of a network core behind the UART link: check, load, stream, classify, read state.

Everything the driver knows about the device comes from the config it is given, through the same
definitions the gateware was built from: the register map (:class:`rtl.regmap.RegisterMap`), the write
addresses of parameters and initial state (:meth:`rtl.network.Network.param_writes`, ``state_writes``), the
element words (:func:`rtl.streams.axis_in_word`, ``axis_out_word``) and the byte protocol
(:mod:`host.protocol`).  :meth:`Device.check` compares the device's identification and configuration
registers with that config before anything else: a host talking to a bitstream of another config stops
with :class:`DeviceMismatch` naming the register.

The methods are coroutines over a transport (:mod:`host.transport`), so the same code drives a board
(``asyncio.run``) and the cocotb simulation of the board (:mod:`sim.boardbench`).
"""
from __future__ import annotations

from collections import deque

from . import protocol
from .protocol import Ack, Error, Out, ReadData, StreamAck


class DeviceError(RuntimeError):
    """The device refused an access or answered out of protocol."""


class DeviceMismatch(DeviceError):
    """The device's identification or configuration registers differ from the host's config."""


def _size(values) -> int:
    """Bytes per word that hold every value (two's complement)."""
    for n in (1, 2, 3):
        if all(-(1 << (8 * n - 1)) <= int(v) < (1 << (8 * n - 1)) for v in values):
            return n
    return 4


class Device:
    """A network core on ``transport``, built from network config ``ncfg``."""

    #: Words per WRITE or READ burst.
    BURST = 256

    def __init__(self, transport, ncfg):
        from rtl import streams  # noqa: PLC0415
        from rtl.network import address_model  # noqa: PLC0415
        from rtl.regmap import RegisterMap  # noqa: PLC0415
        self.t, self.ncfg = transport, ncfg
        self.net = address_model(ncfg)
        self.map = RegisterMap.for_network(self.net)
        self.in_word, self.out_word = streams.axis_in_word(ncfg), streams.axis_out_word(ncfg)
        self.in_bytes, self.out_bytes = self.in_word.field("data").width // 8, self.out_word.field("data").width // 8
        self.decoder = protocol.Decoder(self.out_bytes)
        self.outputs: deque = deque()     # OUT frames received and not yet taken
        self._replies: deque = deque()

    # ---- frames --------------------------------------------------------------------------------------
    async def _reply(self, kind):
        while not self._replies:
            for f in self.decoder.feed(await self.t.recv()):
                (self.outputs if isinstance(f, Out) else self._replies).append(f)
        f = self._replies.popleft()
        if isinstance(f, Error) or not isinstance(f, kind):
            raise DeviceError(f"the device answered {f!r} where a {kind.__name__} was due")
        return f

    async def write(self, addr: int, words, size: int = 4) -> bool:
        """WRITE bursts from ``addr``; True when every access was accepted."""
        words, ok = list(words), True
        for k in range(0, len(words), self.BURST):
            await self.t.send(protocol.write_frame(addr + 4 * k, words[k:k + self.BURST], size))
            ok &= not (await self._reply(Ack)).status & protocol.STATUS_ERR
        return ok

    async def read(self, addr: int, count: int) -> tuple[list, bool]:
        """``count`` words from ``addr``; and True when every access was accepted."""
        out, ok = [], True
        for k in range(0, count, self.BURST):
            n = min(self.BURST, count - k)
            self.decoder.expect_read(n)
            await self.t.send(protocol.read_frame(addr + 4 * k, n))
            r = await self._reply(ReadData)
            out += list(r.words)
            ok &= not r.status & protocol.STATUS_ERR
        return out, ok

    async def reg(self, name: str) -> int:
        words, ok = await self.read(self.map.register(name).offset, 1)
        if not ok:
            raise DeviceError(f"reading register {name} was refused")
        return words[0]

    # ---- what a user does ------------------------------------------------------------------------------
    async def check(self) -> dict:
        """Compare every constant register (ID, version, config ID, sizes and formats) with the config;
        raises :class:`DeviceMismatch` naming the first that differs.  Returns the values read."""
        consts = [r for r in self.map.registers if r.role == "const"]
        runs = []  # consecutive constant registers, one READ burst each
        for r in consts:
            if runs and r.offset == runs[-1][-1].offset + 4:
                runs[-1].append(r)
            else:
                runs.append([r])
        got = {}
        for run in runs:
            words, _ = await self.read(run[0].offset, len(run))
            got.update({r.name: w for r, w in zip(run, words)})
        if got["ID"] != self.map.register("ID").value:
            raise DeviceMismatch(f"register ID reads {got['ID']:#010x}, not an rnnkit core ({self.map.register('ID').value:#010x})")
        for r in consts:
            if got[r.name] != r.value:
                raise DeviceMismatch(f"register {r.name} reads {got[r.name]:#x} but config {self.ncfg.name!r} has "
                                     f"{r.value:#x}: the bitstream was built for another config")
        return got

    async def _write_pairs(self, pairs) -> bool:
        """``(write-port address, value)`` pairs as bursts of consecutive addresses."""
        ok, run = True, []
        for a, v in sorted((int(a), int(v)) for a, v in pairs):
            if run and a != run[-1][0] + 1:
                ok &= await self.write(self.map.param_address(run[0][0]), [x for _, x in run], _size(x for _, x in run))
                run = []
            run.append((a, v))
        if run:
            ok &= await self.write(self.map.param_address(run[0][0]), [x for _, x in run], _size(x for _, x in run))
        return ok

    async def load_params(self, qnet):
        """Write every parameter of ``qnet`` (a :class:`model.network.golden.QNetwork`) into the device."""
        if not await self._write_pairs(self.net.param_writes(qnet)):
            raise DeviceError("a parameter write was refused")

    async def load_head(self, qhead):
        """Write the head's weights and biases (a :class:`model.network.head.QHead`)."""
        if not await self._write_pairs(self.net.head_writes(qhead)):
            raise DeviceError("a head write was refused")

    async def load_state(self, state):
        """Write the initial state every sequence starts from (raw, per cell in ``h_n`` order)."""
        if not await self._write_pairs(self.net.state_writes(state)):
            raise DeviceError("an initial-state write was refused")

    async def final_state(self) -> list:
        """The final state as :meth:`rtl.network.Network.state_reads` orders it (per cell h of each unit, then
        the unit state), read in one burst per cell."""
        out = []
        for k, words in self.map.state_valid:
            raw, ok = await self.read(self.map.state_address(k << self.map.state_bits), words)
            if not ok:
                raise DeviceError(f"reading the final state of cell {k} was refused")
            out += [w - (1 << 32) if w >> 31 else w for w in raw]
        return out

    async def status(self) -> dict:
        """Every sticky flag, by name."""
        out = {}
        for r in self.map.flag_registers:
            out.update(r.decode(await self.reg(r.name)))
        return out

    async def clear_status(self):
        for r in self.map.flag_registers:
            if not await self.write(r.offset, [r.all_bits]):
                raise DeviceError(f"clearing {r.name} was refused")

    async def stream(self, x):
        """Send one sequence ``x`` (raw integers, ``(steps, input_size)``) from the initial state."""
        T = len(x)
        elems = [(int(v), int(e == len(vec) - 1), int(t == 0 and e == 0) | (int(t == T - 1) << 1))
                 for t, vec in enumerate(x) for e, v in enumerate(vec)]
        for k in range(0, len(elems), protocol.STREAM_WINDOW):
            await self.t.send(protocol.stream_frame(elems[k:k + protocol.STREAM_WINDOW], self.in_bytes))
            await self._reply(StreamAck)

    async def take(self, n: int) -> list:
        """The next ``n`` output elements (:class:`host.protocol.Out`), waiting for them."""
        while len(self.outputs) < n:
            for f in self.decoder.feed(await self.t.recv()):
                (self.outputs if isinstance(f, Out) else self._replies).append(f)
        return [self.outputs.popleft() for _ in range(n)]

    async def classify(self, x) -> tuple[int, list]:
        """Stream ``x`` and return the class and the logits of its last step (a config with a head)."""
        if self.ncfg.head is None:
            raise DeviceError(f"config {self.ncfg.name!r} has no head: use stream() and take()")
        await self.stream(x)
        steps = len(x) if self.ncfg.head.every_step else 1
        outs = await self.take(steps * self.ncfg.head.classes)
        last = outs[-self.ncfg.head.classes:]
        return last[-1].user, [o.data for o in last]
