"""The cocotb test of the board top (``sim.runner.BOARD_MODULE``): the host driver over the UART pins.

``test_board_host``: the board logic is built at the board's clock and baud rate (:data:`rtl.board.BOARDS`)
with the config's recurrent layers and an empty head.  Through cocotbext-uart's ``UartSource``/``UartSink``
on ``rx``/``tx``, the unmodified :class:`host.driver.Device`: checks the identification and configuration
registers (and that a driver for another config is refused), loads the head, classifies each sequence (real test
utterances with ``RNNKIT_INPUTS``), reads the final state back and the status flags.  Every logit, class
and state word is compared with :mod:`model.network.golden`.

Settings: the ``RNNKIT_*`` environment of :mod:`sim.netbench.tests`, plus ``RNNKIT_BOARD`` (default ulx3s)
and ``RNNKIT_OTHER_CONFIG`` (a config whose driver must be refused).
"""
from __future__ import annotations

import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, with_timeout
from cocotbext.uart import UartSink, UartSource

from host.driver import Device, DeviceMismatch
from model.network.config import NetworkConfig
from rtl.board import BOARDS
from sim.netbench.tests import Env, expected, final_state_words, finish

#: Simulated time allowed (ns).
TIMEOUT_NS = 20_000_000_000


class SimTransport:
    """:mod:`host.transport`'s two methods over cocotbext-uart on the DUT's UART pins."""

    def __init__(self, dut, baud: int):
        self.src, self.sink = UartSource(dut.rx, baud=baud, bits=8), UartSink(dut.tx, baud=baud, bits=8)
        for u in (self.src, self.sink):
            u.log.setLevel(logging.WARNING)

    async def send(self, data: bytes):
        await self.src.write(data)
        await self.src.wait()

    async def recv(self) -> bytes:
        return bytes(await self.sink.read())


async def _host(dut, env, board, problems) -> dict:
    t = SimTransport(dut, board.baud)
    other = os.environ.get("RNNKIT_OTHER_CONFIG")
    if other:
        try:
            await Device(t, NetworkConfig.load(other)).check()
            problems.append(f"a driver for {other} was not refused")
        except DeviceMismatch as e:
            refused = str(e)
    dev = Device(t, env.ncfg)
    await dev.check()
    await dev.load_head(env.q.head)
    seqs = env.sequences("test_board_host", [env.steps] * env.seqs)
    want = expected(env, seqs)
    C = env.ncfg.head.classes
    classes, logits = [], []
    for k, x in enumerate(seqs):
        cls, lg = await dev.classify(x)
        classes.append(cls)
        logits += [(v, cls) for v in lg]
        env.say(f"test_board_host: sequence {k + 1}/{len(seqs)}: class {cls}")
    if logits != want["out"]:
        bad = [i for i, (g, w) in enumerate(zip(logits, want["out"])) if g != w]
        problems.append(f"logits: {len(bad)} of {len(want['out'])} differ; first at {bad[:1]}")
    if classes != want["classes"]:
        problems.append(f"classes: hardware {classes}, golden {want['classes']}")
    final = await dev.final_state()
    if final != final_state_words(env.ncfg, want["final"]):
        problems.append("the final state read back differs from the golden model's")
    st = await dev.status()
    if any(st.values()):
        problems.append(f"status bits set: {', '.join(k for k, v in st.items() if v)}")
    return {"classes": classes, "golden_classes": want["classes"], "logits_compared": len(want["out"]),
            "state_words": len(final), "classes_per_sequence": C, "refused": refused if other else None}


@cocotb.test()
async def test_board_host(dut):
    """The host driver over the UART pins: check, load, classify, final state; bit-exact."""
    env = Env()
    board = BOARDS[os.environ.get("RNNKIT_BOARD", "ulx3s")]
    dut.rx.value = 1
    dut.rst.value = 1
    Clock(dut.clk, round(1e9 / board.clock_hz), unit="ns").start()
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)
    problems = []
    entry = await with_timeout(_host(dut, env, board, problems), TIMEOUT_NS, "ns")
    finish(env, "test_board_host", entry, problems)
