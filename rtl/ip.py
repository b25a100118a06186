"""``make ip``: the AXI core of a config as one folder a build system or an SoC flow can take.

::

    python -m rtl.ip --config configs/networks/fsdd_lstm2x32.toml [--out build] [--params p.npz] [--seed 1]

writes ``<out>/<config name>/ip/``:

- ``<name>_axi.v``: the Verilog, top module ``rnn_axi`` (:mod:`rtl.axi`), the parameters baked in;
- ``regmap.json``, ``<name>_regs.h``, ``regmap.md``: the register map (:mod:`rtl.regmap`);
- ``<name>.core``: a FuseSoC CAPI2 core (VLNV :func:`vlnv`) with a ``default`` target (the Verilog) and a
  ``lint`` target (Verilator, lint only): ``fusesoc --cores-root <folder> run --target lint <vlnv>``.

A config that cannot be loaded or that the gateware refuses is reported in one line, exit status 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

from model.cli import Parser
from model.config import ConfigError, output_dir

from .axi import AXI_TOP, write_verilog
from .export import add_common_args, load_network_for_export

#: FuseSoC vendor and library of the kit's cores.
VENDOR, LIBRARY = "rnnkit", "rnn"
CORE_VERSION = "1.0.0"


def vlnv(name: str) -> str:
    """The core's VLNV: ``rnnkit:rnn:<name with - and . as _>:1.0.0``."""
    return f"{VENDOR}:{LIBRARY}:{name.replace('-', '_').replace('.', '_')}:{CORE_VERSION}"


def core_file(name: str, verilog: str, header: str, description: str) -> str:
    """A CAPI2 core file for the wrapper's Verilog (and the register header as a user file)."""
    return f"""CAPI=2:
name: {vlnv(name)}
description: "{description}"

filesets:
  rtl:
    files:
      - {verilog}
    file_type: verilogSource
  sw:
    files:
      - {header}: {{is_include_file: true}}
      - regmap.json
      - regmap.md
    file_type: user

targets:
  default:
    filesets: [rtl, sw]
    toplevel: {AXI_TOP}
  lint:
    default_tool: verilator
    filesets: [rtl]
    toplevel: {AXI_TOP}
    tools:
      verilator:
        mode: lint-only
        verilator_options: [-Wno-fatal]
"""


def write_ip(ncfg, qnet, out_dir) -> dict:
    """Write the IP folder's files into ``out_dir``; their paths by kind."""
    paths = write_verilog(ncfg, qnet, out_dir)
    desc = (f"rnnkit {ncfg.name}: {ncfg.num_layers}-layer {'/'.join(c.kind for c in ncfg.layers)} network"
            f"{f' with a {ncfg.head.classes}-class head' if ncfg.head else ''}, AXI4-Stream and AXI4-Lite")
    paths["core"] = Path(out_dir) / f"{ncfg.name}.core"
    paths["core"].write_text(core_file(ncfg.name, paths["verilog"].name, paths["header"].name, desc))
    return paths


def main(argv=None) -> int:
    ap = Parser(prog="python -m rtl.ip", description="The AXI core of a config: Verilog, register map, FuseSoC core.")
    add_common_args(ap)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return e.code
    try:
        ncfg, q, _ = load_network_for_export(args.config, args.params, args.seed)
        out = output_dir(args.out, ncfg, "ip")
        paths = write_ip(ncfg, q, out)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{ncfg.name}: AXI core (top {AXI_TOP}), weights "
          f"{args.params or (Path(ncfg.params).name if ncfg.params else f'seed {args.seed}')}")
    for kind in ("verilog", "json", "header", "markdown", "core"):
        print(f"wrote {paths[kind]}")
    print(f"FuseSoC: fusesoc --cores-root {out} run --target lint {vlnv(ncfg.name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
