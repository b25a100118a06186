"""``make board-sim``: the board top in cocotb, driven through its UART pins by the host driver.

::

    python -m sim.board --config configs/networks/fsdd_lstm2x32.toml [--utterances 3] [--board ulx3s]

Builds :class:`rtl.board.BoardLogic` (everything inside the board's pins; the recurrent layers baked in,
the head empty) for Verilator at the board's clock and baud rate, and runs :mod:`sim.boardbench`: the
unmodified :class:`host.driver.Device` over cocotbext-uart checks the device's identity and config (and
that a driver for another config is refused), loads the head, classifies the first test utterances of the
config's trained model and reads the final state back.  Prints the classes (hardware, golden, float,
label); exits 1 on any difference from the golden model, 2 on bad input.
"""
from __future__ import annotations

import sys
import time

from model.cli import Parser, config_file, positive_int

from . import runner
from .main import _hwlink, _print_table, _run

#: The config whose driver the bench must refuse (a single cell: another config ID and other sizes).
OTHER_CONFIG = runner.ROOT / "configs" / "tiny.toml"


def main(argv=None) -> int:
    from model.errors import ConfigError  # noqa: PLC0415
    from model.network.config import NetworkConfig  # noqa: PLC0415
    from rtl.board import BOARDS  # noqa: PLC0415
    ap = Parser(prog="python -m sim.board", description="The board top in cocotb, driven by the host driver.")
    ap.add_argument("--config", type=config_file(networks=True), default="configs/networks/fsdd_lstm2x32.toml",
                    help="a network config with a head and a trained model (params)")
    ap.add_argument("--utterances", type=positive_int("--utterances"), default=3, help="test utterances (default 3)")
    ap.add_argument("--board", default="ulx3s", choices=sorted(BOARDS))
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return e.code
    try:
        ncfg = NetworkConfig.load(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if ncfg.head is None or ncfg.params is None:
        print(f"error: --config {args.config} needs a [head] and a trained model (params): the board classifies "
              f"test utterances", file=sys.stderr)
        return 2
    board = BOARDS[args.board]
    print(f"[board] {ncfg.name} on {board.name}: building the board logic for Verilator ...", flush=True)
    t0 = time.perf_counter()
    try:
        b = runner.build(args.config, "verilator", wrapper="board")
    except Exception as e:  # noqa: BLE001  (a build failure is reported, not raised)
        print(f"[board] build failed: {e}", file=sys.stderr)
        return 1
    build_s = time.perf_counter() - t0
    job = runner.SimJob(mode="board", module=runner.BOARD_MODULE, env={
        "RNNKIT_BOARD": board.name, "RNNKIT_OTHER_CONFIG": str(OTHER_CONFIG)})
    res, utt = _run(b, job, lambda path: _hwlink().prepare_network(ncfg, args.utterances, path))
    rep = res.report.get("test_board_host", {})
    t = res.tests.get("test_board_host", {})
    _print_table(f"Board simulation ({board.name}, {board.clock_hz / 1e6:g} MHz, UART {board.baud:,} baud)", [
        ("build", f"{build_s:.1f} s"), ("simulated", f"{t.get('sim_ns', 0) / 1e6:.2f} ms in {res.wall:.1f} s"),
        ("driver for another config", "refused" if rep.get("refused") else "NOT refused"),
        ("logits compared", str(rep.get("logits_compared"))), ("final state words", str(rep.get("state_words"))),
        ("result", "PASS" if res.passed else "FAIL")])
    lines, same = _hwlink().network_table(utt, rep.get("classes"))
    print("\nClasses of the test utterances (hardware vs golden vs float model)")
    print("\n".join(lines))
    print("hardware classes equal the golden model's: " + ("yes" if same else "NO"))
    if not res.passed:
        print("\n" + res.failure_summary(), file=sys.stderr)
    return 0 if res.passed and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
