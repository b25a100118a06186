"""Verilog export of the gate pipeline, with a machine-readable port description.

:func:`write_verilog` writes two files into ``out_dir``:

- ``<config.name>.v``: the cell as one Verilog file, top module ``lstm_cell`` or ``gru_cell``,
  weights baked into the memories' initial contents.  Amaranth records the
  Python source line of every cell in ``(* src = "file:line" *)`` attributes;
  the absolute part of those paths is cut off (``rtl/cell.py:121``,
  ``amaranth/lib/fifo.py:...``), so the file is byte-identical between
  checkouts and machines with the same package versions.
- ``ports.json``: every top-level port (name, direction, width; for payload
  vectors the fields with bit offset, width and fixed-point format in both
  spellings), the config's sizes and formats, the write-port address map, the
  cycle model's figures and the output FIFO depth.

Command line (writes into ``<out>/<config name>/``)::

    python -m rtl.export --config configs/default.toml [--out build] [--seed 1] [--params p.npz]

Weights are random (``CellParams.for_config(config, seed)``) unless ``--params``
names a file written by ``CellParams.save``.  A config that cannot be loaded or
that the gateware refuses is reported in one line, exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape, Signal, Value
from amaranth.lib import data
from amaranth.lib.wiring import Flow

from model.cli import Parser, config_file, nonneg_int
from model.config import Config, ConfigError, output_dir
from model.params import CellParams, QParams, quantize

from .cell import RecurrentCell, sat_points, top_name
#: Version of the ``ports.json`` layout; bump it when a key changes meaning.
PORTS_SCHEMA = 1
#: Repository root: ``src`` paths inside it become relative to it.
REPO_ROOT = Path(__file__).resolve().parent.parent

_SRC_ATTR = re.compile(r'\(\* src = "([^"]*)" \*\)\n?')
_LOC = re.compile(r"^(?P<path>.*?)(?P<loc>(?::[0-9.\-]+)*)$")

#: What each one-bit stream and status field means.
_FLAG_DOC = {
    ("i", "last"): "set on element input_size-1 of x(t)",
    ("i", "first"): "set on element 0 of the first x of a sequence: the state restarts from zero",
    ("o", "last"): "set on element hidden_size-1 of h(t)",
    ("o", "first"): "set on element 0 of a sequence's first h(t) (the next cell's i takes it as its first)",
    ("status", "err_framing"): "sticky: last/first in the wrong place on the i stream",
    ("status", "err_overrun"): "sticky: internal overrun (never set by a valid config)",
    ("status", "err_addr"): "sticky: a w write to an address outside every memory (nothing written)",
    ("status", "err_busy"): "sticky: a w write while a step was in flight (nothing written)",
}
#: Tensor format carried by each multi-bit payload field whose format does not depend on an address.
_FIELD_TENSOR = {("i", "data"): "input", ("o", "data"): "hidden"}


# ---- src attributes ------------------------------------------------------------------------
def _roots() -> list[Path]:
    """Directories whose absolute prefix is cut from ``src`` paths, longest first."""
    roots = {REPO_ROOT}
    for p in sys.path:
        if p and os.path.isabs(p) and os.path.isdir(p):
            roots.add(Path(p).resolve())
    return sorted(roots, key=lambda r: len(str(r)), reverse=True)


def _relative_src(value: str, roots: list[Path]) -> str:
    """``/abs/repo/rtl/cell.py:12|/abs/site-packages/amaranth/x.py:3`` -> ``rtl/cell.py:12|amaranth/x.py:3``.

    An absolute path under no known root keeps only its file name.
    """
    out = []
    for item in value.split("|"):
        m = _LOC.match(item)
        path, loc = m.group("path"), m.group("loc")
        if os.path.isabs(path):
            rp = Path(path)
            for root in roots:
                try:
                    path = rp.relative_to(root).as_posix()
                    break
                except ValueError:
                    continue
            else:
                path = rp.name
        out.append(path + loc)
    return "|".join(out)


def strip_src_paths(text: str) -> str:
    """Make every ``(* src = ... *)`` attribute in Amaranth's Verilog free of absolute paths."""
    roots = _roots()
    return _SRC_ATTR.sub(lambda m: m.group(0).replace(m.group(1), _relative_src(m.group(1), roots)), text)


# ---- port description ----------------------------------------------------------------------
def _fmt_dict(fmt) -> dict:
    return {"format": str(fmt), "ap_fixed": fmt.ap, "signed": fmt.signed, "int_bits": fmt.int_bits,
            "frac_bits": fmt.frac_bits, "width": fmt.width}


def _regions(cell: RecurrentCell) -> list[dict]:
    cfg, lay = cell.config, cell.layout
    sch = lay.schedule
    order = ", ".join(cfg.cell.gates[g] for g in sch.gate_order)
    rows = (f"gate * {cfg.hidden_size} + unit, gates {order}" if sch.gate_major
            else f"unit * {sch.gates} + gate, gate order {order}")
    passes = (f"slots 0..{sch.pass_slots[0] - 1}: rows 0..{sch.pass_rows[0] - 1} (s*lanes + lane); slots "
              f"{sch.pass_slots[0]}..{sch.slots - 1}: rows {sch.pass_rows[0]}.. (pass 2)" if sch.gate_major
              else "slot s holds row s*lanes + lane")
    regions = []
    for lane in range(cfg.lanes):
        regions.append({"region": lane, "name": f"weight{lane}", "base": lane << lay.offset_bits,
                        "depth": lay.lane_depth, "tensor": "weight", **_fmt_dict(cfg.fmt("weight")),
                        "contents": (f"lane {lane}: for each slot s at s*{lay.slot_cycles}: W_ih[row] "
                                     f"({cfg.input_size}) then W_hh[row] ({cfg.hidden_size}); {passes}")})
    regions.append({"region": cfg.lanes, "name": "bias", "base": cfg.lanes << lay.offset_bits,
                    "depth": cfg.rows, "tensor": "bias", **_fmt_dict(cfg.fmt("bias")),
                    "contents": f"b_ih + b_hh (b_in alone for a reset-after GRU's n rows) by hardware row ({rows})"})
    if lay.aux:
        regions.append({"region": cfg.lanes + 1, "name": lay.aux.name, "base": (cfg.lanes + 1) << lay.offset_bits,
                        "depth": lay.aux_depth, "tensor": lay.aux.tensor, **_fmt_dict(cfg.fmt(lay.aux.tensor)),
                        "contents": f"{lay.aux.doc} ({rows if lay.aux.per == 'row' else 'unit'})"})
    return regions


def _fields(stream: str, layout: data.StructLayout, cell: RecurrentCell) -> list[dict]:
    cfg = cell.config
    fields = []
    for name, fld in layout:
        shape = Shape.cast(fld.shape)
        width = shape.width
        d = {"name": name, "offset": fld.offset, "width": width, "signed": shape.signed}
        tensor = _FIELD_TENSOR.get((stream, name))
        if tensor is not None:
            fmt = cfg.fmt(tensor)
            assert fmt.width == width, (stream, name, fmt, width)
            d.update({"tensor": tensor, "format": str(fmt), "ap_fixed": fmt.ap})
        elif (stream, name) == ("w", "data"):
            d.update({"format": None, "ap_fixed": None,
                      "meaning": "raw value; each region keeps the low bits of its own format (see write_port)"})
        elif (stream, name) == ("w", "addr"):
            d.update({"format": None, "ap_fixed": None,
                      "meaning": "region << offset_bits | offset (see write_port)"})
        elif (stream, name) in _FLAG_DOC:
            d["meaning"] = _FLAG_DOC[(stream, name)]
        elif stream == "status" and name in sat_points(cfg):
            d["meaning"] = (f"sticky: a value saturated (or wrapped) at requantization point "
                            f"{sat_points(cfg)[name]}")
        fields.append(d)
    return fields


_ROLE_DOC = {
    "valid": "stream handshake: the producer offers a transfer",
    "ready": "stream handshake: the consumer accepts a transfer",
}


def describe_ports(cell: RecurrentCell) -> list[dict]:
    """Every top-level port of the exported module, in the order ``clk``, ``rst``, then the signature's."""
    ports = [{"name": "clk", "direction": "input", "width": 1, "role": "clock",
              "meaning": "everything is clocked on the rising edge"},
             {"name": "rst", "direction": "input", "width": 1, "role": "reset",
              "meaning": "synchronous, active high"}]
    for path, member, value in cell.signature.flatten(cell):
        if not isinstance(Value.cast(value), Signal):
            continue  # a constant member (the ready of an always-ready stream) is no port
        name = "__".join(str(p) for p in path)
        d = {"name": name, "direction": "input" if member.flow == Flow.In else "output",
             "width": Shape.cast(member.shape).width}
        iface = path[0]
        if len(path) == 2:
            d["stream"] = iface
            d["role"] = path[1]
            if path[1] in _ROLE_DOC:
                d["meaning"] = _ROLE_DOC[path[1]]
        else:
            d["role"] = iface
        if isinstance(member.shape, data.StructLayout):
            d["fields"] = _fields(iface, member.shape, cell)
        ports.append(d)
    return ports


def describe(cell: RecurrentCell, verilog_name: str, weights: dict | None = None) -> dict:
    """The content of ``ports.json`` for ``cell``."""
    cfg, lay, cm = cell.config, cell.layout, cell.cycle_model
    return {
        "schema": PORTS_SCHEMA,
        "top": top_name(cfg),
        "verilog": verilog_name,
        "config": {"name": cfg.name, "kind": cfg.kind, "variant": cfg.variant, **cfg.options,
                   "input_size": cfg.input_size, "hidden_size": cfg.hidden_size, "rows": cfg.rows,
                   "lanes": cfg.lanes, "beat": cfg.beat,
                   "sigmoid": cfg.sigmoid.to_dict(), "tanh": cfg.tanh.to_dict()},
        "formats": {t: _fmt_dict(f) for t, f in cfg.formats.items() if f is not None},
        "format_convention": ("s<I>.<F> signed / u<I>.<F> unsigned, I counts the sign bit as in "
                              "ap_fixed<W,I>; raw integer r means r * 2**-F; payload structs are flat "
                              "vectors, first field in the low bits"),
        "weights": weights or {"source": "none (memories start at zero)"},
        "ports": describe_ports(cell),
        "write_port": {"addr_bits": lay.addr_bits, "offset_bits": lay.offset_bits,
                       "address": "region << offset_bits | offset", "always_ready": True,
                       "regions": _regions(cell)},
        "cycle_model": {"cycles_per_step": cm.cycles_per_step, "first_step_cycles": cm.first_step_cycles,
                        "first_output_latency": cm.first_output_latency,
                        "ideal_cycles_per_step": cm.ideal_cycles_per_step,
                        "mac_utilization": round(cm.mac_utilization, 6),
                        "slots": cm.slots, "slot_cycles": cm.slot_cycles},
        "output_fifo_depth": cell.out_depth,
    }


# ---- export ----------------------------------------------------------------------------------
def component_verilog(component, name: str) -> str:
    """Amaranth's Verilog for a ``wiring.Component`` with top module ``name``, ``src`` paths made relative."""
    # the ready of an always-ready stream is a constant, no port
    values = (Value.cast(value) for _path, _member, value in component.signature.flatten(component))
    ports = [v for v in values if isinstance(v, Signal)]
    return strip_src_paths(verilog.convert(component, name=name, emit_src=True, ports=ports))


def verilog_text(cell: RecurrentCell) -> str:
    """Amaranth's Verilog for ``cell`` (top module ``lstm_cell`` or ``gru_cell``)."""
    return component_verilog(cell, top_name(cell.config))


def write_verilog(config: Config, qparams: QParams | None, out_dir, *, weights: dict | None = None) -> dict:
    """Write ``<config.name>.v`` and ``ports.json`` into ``out_dir`` (created if missing).

    Returns ``{"verilog": Path, "ports": Path}``.  ``weights`` is recorded as-is in
    ``ports.json`` (where the baked-in parameters came from).  Raises
    :class:`rtl.cell.HardwareLimitError` (a ``ConfigError``) for a config the
    gateware cannot build.
    """
    out = Path(out_dir)
    cell = RecurrentCell(config, qparams)
    text = verilog_text(cell)
    out.mkdir(parents=True, exist_ok=True)
    vpath = out / f"{config.name}.v"
    ppath = out / "ports.json"
    if weights is None and qparams is not None:
        weights = {"source": "qparams"}
    vpath.write_text(text)
    ppath.write_text(json.dumps(describe(cell, vpath.name, weights), indent=2) + "\n")
    return {"verilog": vpath, "ports": ppath}


def load_for_export(config_path, params_path=None, seed: int = 1):
    """``(config, qparams, weights)`` for the command lines; raises ``ConfigError`` with a readable message."""
    cfg = Config.load(config_path)
    if params_path is None:
        p = CellParams.for_config(cfg, seed=seed)
        weights = {"source": "random", "seed": seed}
    else:
        try:
            p = CellParams.load(params_path)
        except FileNotFoundError:
            raise ConfigError(f"parameter file {str(params_path)!r} does not exist") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"{params_path}: cannot read parameters: {e}") from None
        weights = {"source": "file", "file": Path(params_path).name}
    try:
        q = quantize(p, cfg)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return cfg, q, weights


def add_common_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--config", type=config_file(networks=True), default="configs/default.toml",
                    help="cell or network config (TOML)")
    ap.add_argument("--out", default="build", help="output root; files go to <out>/<config name>/")
    ap.add_argument("--params", default=None, help="parameters (.npz from CellParams.save) to bake in")
    ap.add_argument("--seed", type=nonneg_int("--seed"), default=1,
                    help="seed of the random parameters (without --params)")


def main(argv=None) -> int:
    ap = Parser(prog="python -m rtl.export", description="Export the gate pipeline as Verilog plus ports.json.")
    add_common_args(ap)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # a bad argument, reported in one line
        return e.code
    from model.network.config import is_network_file  # noqa: PLC0415
    if is_network_file(args.config):
        return export_network(args)
    try:
        cfg, q, weights = load_for_export(args.config, args.params, args.seed)
        paths = write_verilog(cfg, q, output_dir(args.out, cfg), weights=weights)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    desc = json.loads(paths["ports"].read_text())
    cm = desc["cycle_model"]
    src = f"seed {args.seed}" if args.params is None else args.params
    print(f"config {cfg.name}: {cfg.variant}, input {cfg.input_size}, hidden {cfg.hidden_size}, "
          f"lanes {cfg.lanes}; weights: {src}")
    print(f"wrote {paths['verilog']}  (top module {top_name(cfg)}, {paths['verilog'].stat().st_size} bytes)")
    print(f"wrote {paths['ports']}  ({len(desc['ports'])} ports; {cm['cycles_per_step']} cycles/step, "
          f"first output after {cm['first_output_latency']} cycles, MAC utilization {cm['mac_utilization']:.3f})")
    return 0


def load_network_for_export(config_path, params_path=None, seed: int = 1):
    """``(network config, quantized network, weights)``; raises ``ConfigError`` with a readable message."""
    from model.network import golden  # noqa: PLC0415
    from model.network.config import NetworkConfig  # noqa: PLC0415
    from model.network.params import NetworkParams  # noqa: PLC0415
    ncfg = NetworkConfig.load(config_path)
    try:
        if params_path is None:
            net, weights = NetworkParams.for_config(ncfg, seed), {"source": "random", "seed": seed}
        else:
            net, weights = NetworkParams.load(params_path), {"source": "file", "file": Path(params_path).name}
        return ncfg, golden.quantize(net, ncfg), weights
    except FileNotFoundError:
        raise ConfigError(f"parameter file {str(params_path)!r} does not exist") from None
    except (OSError, ValueError) as e:
        raise ConfigError(str(e)) from None


def export_network(args) -> int:
    """``make verilog`` on a network config: ``<out>/<name>/<name>.v`` (top ``rnn_network``) and ``ports.json``."""
    from rtl.network import NETWORK_TOP, write_verilog as write_network  # noqa: PLC0415
    try:
        ncfg, q, _ = load_network_for_export(args.config, args.params, args.seed)
        paths = write_network(ncfg, q, output_dir(args.out, ncfg))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    desc = json.loads(paths["ports"].read_text())
    print(f"network {ncfg.name}: {ncfg.num_layers} layers, directions {list(ncfg.directions)}"
          f"{f', head {ncfg.head.classes} classes' if ncfg.head else ''}; weights: "
          f"{args.params or f'seed {args.seed}'}")
    print(f"wrote {paths['verilog']}  (top module {NETWORK_TOP}, {paths['verilog'].stat().st_size} bytes)")
    print(f"wrote {paths['ports']}  ({desc['cycle_model']['cycles_per_step']} cycles/step in a steady stream, "
          f"first output of a one-step sequence after {desc['cycle_model']['first_output_latency']} cycles)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
