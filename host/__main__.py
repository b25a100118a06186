"""``python -m host``: talk to a board running a network bitstream (``make bitstream``) over its serial port.

::

    python -m host --port /dev/ttyUSB0 --config configs/networks/fsdd_lstm2x32.toml [--baud 1000000]
                   [--load] [--utterances 5] [--state]

Checks the device's identification and configuration registers against ``--config`` (a bitstream of
another config is refused), optionally loads the config's parameters (``--load``), classifies the first
test utterances of the config's trained model and prints them beside the golden model's and the float
model's classes, optionally prints the final state (``--state``) and the status flags.  The board
simulation (``make board-sim``) runs this same driver code against the simulated board.
"""
from __future__ import annotations

import asyncio
import sys

from model.cli import Parser, config_file, positive_int

from .driver import Device, DeviceError
from .transport import SerialTransport, TransportError


async def _session(dev: Device, args, ncfg) -> int:
    from model.network import golden  # noqa: PLC0415
    from model.network.params import NetworkParams  # noqa: PLC0415
    got = await dev.check()
    print(f"device: rnnkit core, config ID {got['CONFIG_ID']:#010x} = {ncfg.name}")
    q = golden.quantize(NetworkParams.for_config(ncfg, seed=1), ncfg)
    if args.load:
        await dev.load_params(q)
        print("parameters loaded")
    if ncfg.head is not None and ncfg.params is not None and args.utterances:
        import tempfile  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415

        import numpy as np  # noqa: PLC0415
        from study import hwlink  # noqa: PLC0415
        with tempfile.TemporaryDirectory() as d:
            utt = hwlink.prepare_network(ncfg, args.utterances, Path(d) / "utt.npz")
            with np.load(utt.path) as z:
                seqs = [z[k] for k in z.files]
        classes = []
        for x in seqs:
            cls, _ = await dev.classify(x)
            classes.append(cls)
        lines, same = hwlink.network_table(utt, classes)
        print("\n".join(lines))
        print("hardware classes equal the golden model's: " + ("yes" if same else "NO"))
    if args.state:
        print("final state:", " ".join(str(v) for v in await dev.final_state()))
    flags = [k for k, v in (await dev.status()).items() if v]
    print("status flags set: " + (", ".join(flags) if flags else "none"))
    return 0


def main(argv=None) -> int:
    from model.errors import ConfigError  # noqa: PLC0415
    from model.network.config import NetworkConfig  # noqa: PLC0415
    from rtl.board import BOARDS  # noqa: PLC0415
    ap = Parser(prog="python -m host", description="Drive a board running a network bitstream over serial.")
    ap.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or COM3")
    ap.add_argument("--config", type=config_file(networks=True), required=True, help="the bitstream's config")
    ap.add_argument("--baud", type=positive_int("--baud"), default=BOARDS["ulx3s"].baud,
                    help=f"UART rate (default {BOARDS['ulx3s'].baud}, the bitstream's)")
    ap.add_argument("--load", action="store_true", help="load the config's parameters first")
    ap.add_argument("--utterances", type=int, default=5, help="test utterances to classify (default 5; 0: none)")
    ap.add_argument("--state", action="store_true", help="print the final state")
    try:
        args = ap.parse_args(argv)
        ncfg = NetworkConfig.load(args.config)
        t = SerialTransport(args.port, args.baud)
    except SystemExit as e:
        return e.code
    except (ConfigError, TransportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_session(Device(t, ncfg), args, ncfg))
    except (DeviceError, TransportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        t.close()


if __name__ == "__main__":
    raise SystemExit(main())
