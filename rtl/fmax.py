"""ECP5 Fmax of every shipped config against the kit's clock targets, so the targets are checked by the kit's own
command rather than by figures copied into the docs.

::

    python -m rtl.fmax [--configs configs/default.toml,configs/tiny.toml] [--out build/fmax] [--timeout S]

``make fmax`` runs it (``CONFIGS=a.toml,b.toml`` for a subset; docs/gateware.md, "Every shipped config").

**The shipped configs** are every ``configs/**/*.toml`` except those in ``configs/studies/``: each is a cell
config (``Config.load``) or a network config (``NetworkConfig.load``, a file with a ``[network]`` or
``[[layer]]`` section).  ``configs/studies/`` holds the quantization studies' sweep files (``python -m study.run``:
a model, a grid of points, a cost), which describe experiments, not hardware, and load as neither.  Cell configs in
``configs/`` come first, then the sub-folders (``mixed/``, ``networks/``), each in name order.  ``--configs``
names others, inside ``configs/`` or not; each must exist and load.

**The targets** have one home, :data:`TARGET_MHZ`: 125 MHz for the default-sized LSTM and GRUs
(``configs/default.toml``, ``configs/gru.toml``, ``configs/gru_before.toml``), :data:`DEFAULT_TARGET_MHZ`
(110 MHz) for every other config.

Per config, :func:`rtl.synth.synthesize` exports it (with the parameters it names, else random ones of seed 1,
as ``make synth`` does), runs Yosys and nextpnr-ecp5 out of context on an LFE5U-85F with the config's target as
nextpnr's ``--freq`` (placement seed 1) into ``<out>/<config name>/``, with its cache: an unchanged config is read
back in seconds.  A config whose writable memories cannot fit the part is skipped by ``make synth``'s skip rule.
A config meets its target when nextpnr's Fmax is at least the target; one that is not placed (over the part,
skipped) or whose place and route failed has no Fmax, shows why, and counts as missed.

Prints one progress line per config (``[fmax i/n name] ...``, synthesis's own lines prefixed the same way), then
the table: config, what it builds (:func:`rtl.synth.describe`), Fmax, target, met or MISSED, LUTs, FFs, DSPs,
block RAMs and nextpnr's critical path.  Writes ``fmax.json`` and ``fmax.md`` (the table) into ``<out>/``
(default ``build/fmax``), rewritten after every config so an interrupted run leaves the configs done so far.
Exit status 0 when every config meets its target, 1 otherwise.

Bad input (a config that does not exist or does not load, an empty ``--configs``, two configs of one name, a
``--timeout`` that is not a positive number) is refused in one line naming the option and the value, exit status
2, before any synthesis.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from model.cli import Parser, config_file, positive_number
from model.config import ConfigError, output_dir
from model.network.config import NetworkConfig, is_network_file

from .export import load_for_export, load_network_for_export
from .synth import ToolError, describe, synthesize

ROOT = Path(__file__).resolve().parent.parent
#: The folder of the shipped configs, and its sub-folder that holds study sweep files, not hardware.
CONFIGS, STUDIES = "configs", "studies"
#: Clock target per config (its path from the repository root), in MHz; every other config has
#: :data:`DEFAULT_TARGET_MHZ`.
TARGET_MHZ = {"configs/default.toml": 125.0, "configs/gru.toml": 125.0, "configs/gru_before.toml": 125.0}
DEFAULT_TARGET_MHZ = 110.0
#: The measured target: the one with place and route, hence an Fmax.
TARGET = "ecp5"
#: Default output root.
DEFAULT_OUT = Path("build") / "fmax"
#: Output files in ``<out>/``.
FILES = ("fmax.md", "fmax.json")
#: Table columns: (row key, heading).
COLUMNS = (("config", "config"), ("builds", "cell / network"), ("fmax_mhz", "Fmax MHz"),
           ("target_mhz", "target MHz"), ("result", "result"), ("luts", "LUTs"), ("ffs", "FFs"),
           ("dsps", "DSPs"), ("brams", "BRAMs"), ("critical_path", "critical path"))


@dataclass
class Entry:
    """One config to measure: its path as shown, its target, what it loads to and, once measured, its row."""
    path: str
    target_mhz: float
    config: object
    qparams: object
    weights: dict
    folder: Path
    row: dict = field(default_factory=dict)


def shipped_configs(root: Path = ROOT) -> list:
    """The shipped configs (module docstring) as paths from ``root`` (``configs/default.toml``), in table order."""
    base = Path(root) / CONFIGS
    rel = [p.relative_to(root) for p in base.rglob("*.toml") if p.relative_to(base).parts[0] != STUDIES]
    return [p.as_posix() for p in sorted(rel, key=lambda p: (len(p.parts), p.as_posix()))]


def target_of(path) -> float:
    """The clock target of the config file ``path`` (:data:`TARGET_MHZ`, else :data:`DEFAULT_TARGET_MHZ`)."""
    p = Path(path).resolve()
    key = p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else None
    return TARGET_MHZ.get(key, DEFAULT_TARGET_MHZ)


def config_list(text: str) -> list:
    """``--configs``: comma-separated config files, each existing and loading (a cell or a network config);
    a file named twice is measured once, order kept."""
    one = config_file("--configs", "CONFIGS", networks=True)
    words = [w.strip() for w in str(text).split(",")]
    if not any(words):
        raise argparse.ArgumentTypeError(f"--configs (CONFIGS) is empty ({text!r}); accepted: comma-separated "
                                         f"config files, e.g. configs/default.toml,configs/tiny.toml")
    files = {}
    for w in filter(None, words):
        files.setdefault(Path(one(w)).resolve(), w)
    return list(files.values())


def load(items, out_root, label: str) -> list:
    """An :class:`Entry` per ``(path as shown, file)`` of ``items``, loaded and given its output folder
    ``<out_root>/<config name>/``.

    Raises :class:`ConfigError` starting with ``label`` for a config that does not load, or for two configs of
    one name (:func:`model.config.output_dir`)."""
    entries = []
    for shown, path in items:
        try:
            loader = load_network_for_export if is_network_file(path) else load_for_export
            cfg, q, weights = loader(path)
            folder = output_dir(out_root, cfg)
        except ConfigError as e:
            raise ConfigError(f"{label}: {e}") from None
        entries.append(Entry(shown, target_of(path), cfg, q, weights, folder))
    return entries


# ---- the rows ---------------------------------------------------------------------------------------------

def critical_path_text(c: dict | None) -> str | None:
    """nextpnr's critical path (:func:`rtl.synth.critical_path`) in one line, or None without one."""
    if not c or not c.get("from"):
        return None
    src = c.get("sources") or []
    text = f"{c['from']} -> {c['to']}"
    if src:
        text += f" ({', '.join(src[:3])}{', ...' if len(src) > 3 else ''})"
    if c.get("logic_ns") is not None:
        text += f"; {c['logic_ns']:g} ns logic + {c['routing_ns']:g} ns routing"
    return text


def row_of(e: Entry, report: dict) -> dict:
    """The table row of ``e`` from its :func:`rtl.synth.synthesize` report."""
    row = {"fmax_mhz": None, "met": False, "reason": None}
    if TARGET in report.get("skipped", {}):
        row["reason"] = f"skipped: {report['skipped'][TARGET]}"
        return row
    r = report["targets"][TARGET]
    s = r["summary"]
    p = report.get("nextpnr") or {}
    row.update(luts=s["luts"], ffs=s["ffs"], dsps=s["dsps"], brams=s["brams"],
               cached=bool(r.get("cached")) and "nextpnr_error" not in report and (not p or bool(p.get("cached"))))
    if p.get("fmax_mhz"):
        row.update(fmax_mhz=p["fmax_mhz"], met=p["fmax_mhz"] >= e.target_mhz, device=p.get("device"),
                   critical_path=critical_path_text(p.get("critical_path")))
    elif r.get("over_part"):
        row["reason"] = f"not placed: {r['over_part']}"
    elif report.get("nextpnr_error"):
        row["reason"] = f"place and route failed: {report['nextpnr_error']}"
    elif report.get("nextpnr_skipped"):
        row["reason"] = f"not placed: {report['nextpnr_skipped']}"
    else:
        row["reason"] = "nextpnr reported no Fmax"
    return row


def _base_row(e: Entry) -> dict:
    kind = "network" if isinstance(e.config, NetworkConfig) else "cell"
    return {"config": e.path, "name": e.config.name, "kind": kind,
            "builds": f"{'network: ' if kind == 'network' else ''}{describe(e.config)}", "target_mhz": e.target_mhz}


def result_text(row: dict) -> str:
    """``met``, ``MISSED`` or ``MISSED: <why there is no Fmax>``."""
    if row.get("met"):
        return "met"
    return f"MISSED: {row['reason']}" if row.get("reason") else "MISSED"


# ---- outputs ----------------------------------------------------------------------------------------------

def _cell(key: str, row: dict) -> str:
    v = row.get(key)
    if key == "result":
        v = result_text(row)
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    if key == "config":
        return f"`{v}`"
    return str(v).replace("|", "\\|")


def summary_line(result: dict) -> str:
    rows = result["rows"]
    missed = [r["name"] for r in rows if not r.get("met")]
    done = "" if result["done"] == result["total"] else f" ({result['done']} of {result['total']} measured)"
    if not missed:
        return f"Every config meets its clock target: {len(rows)} of {len(rows)}{done}."
    return (f"{len(rows) - len(missed)} of {len(rows)} configs meet their clock target{done}; "
            f"missed: {', '.join(missed)}.")


def markdown(result: dict) -> str:
    """``fmax.md``: the table and the summary line."""
    by_target = {}
    for path, mhz in TARGET_MHZ.items():
        by_target.setdefault(mhz, []).append(path)
    targets = "; ".join(f"{mhz:g} MHz for {', '.join(paths)}" for mhz, paths in by_target.items())
    lines = ["# ECP5 Fmax against the clock targets", "",
             f"Yosys and nextpnr-ecp5 out of context on an {result['device'] or 'LFE5U-85F'}, placement seed 1, "
             f"each config's target as nextpnr's --freq. Targets: {targets}; {DEFAULT_TARGET_MHZ:g} MHz for every "
             f"other config.", "",
             "| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(k, r) for k, _ in COLUMNS) + " |" for r in result["rows"]]
    lines += ["", summary_line(result), ""]
    return "\n".join(lines)


def write_outputs(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "fmax.md").write_text(markdown(result))
    (out / "fmax.json").write_text(json.dumps(result, indent=2) + "\n")


# ---- the run ----------------------------------------------------------------------------------------------

def summarize(entries: list, done: int) -> dict:
    """The result record (``fmax.json``) of the first ``done`` entries."""
    rows = [e.row for e in entries[:done]]
    device = next((r["device"] for r in rows if r.get("device")), None)
    return {"target": TARGET, "device": device, "targets_mhz": TARGET_MHZ, "default_target_mhz": DEFAULT_TARGET_MHZ,
            "done": done, "total": len(entries), "met": all(r.get("met") for r in rows), "rows": rows}


def measure(entries: list, out: Path, *, timeout=None, log=print) -> dict:
    """Synthesize, place and route every entry in turn; write the outputs after each; return the result record."""
    n = len(entries)
    for i, e in enumerate(entries, 1):
        tag = f"[fmax {i}/{n} {e.config.name}]"
        e.row = _base_row(e)
        log(f"{tag} {e.row['builds']}, target {e.target_mhz:g} MHz: synthesizing into {e.folder}/")
        t0 = time.perf_counter()
        try:
            report = synthesize(e.config, e.qparams, e.folder, targets=(TARGET,), pnr=True, freq=e.target_mhz,
                                timeout=timeout, weights=e.weights, cache=True, skip_unfit=True,
                                log=lambda m, tag=tag: log(f"{tag} {m}"))
            e.row.update(row_of(e, report))
        except (ToolError, ConfigError) as err:
            e.row.update(fmax_mhz=None, met=False, reason=f"failed: {str(err).splitlines()[0]}")
        e.row["seconds"] = round(time.perf_counter() - t0, 1)
        write_outputs(summarize(entries, i), out)
        r = e.row
        fmax = f"Fmax {r['fmax_mhz']:g} MHz" if r.get("fmax_mhz") else "no Fmax"
        how = " (cached)" if r.get("cached") else f" in {r['seconds']:.0f} s"
        log(f"{tag} {fmax}, target {e.target_mhz:g} MHz: {result_text(r)}{how}")
    return summarize(entries, n)


def main(argv=None) -> int:
    ap = Parser(prog="python -m rtl.fmax",
                description="ECP5 Fmax (Yosys, nextpnr-ecp5, cached) of every shipped config against its clock "
                            "target; a table, fmax.json and fmax.md; exit status 1 when a config misses its target.")
    ap.add_argument("--configs", type=config_list, default=None,
                    help="comma-separated config files (default: every shipped config, configs/studies/ aside)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help=f"output root (default {DEFAULT_OUT})")
    ap.add_argument("--timeout", type=positive_number("--timeout"), default=None,
                    help="seconds allowed per tool run")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # a bad argument, reported in one line
        return e.code
    if args.configs is None:
        items, label = [(p, ROOT / p) for p in shipped_configs()], "a shipped config"
    else:
        items, label = [(p, p) for p in args.configs], "--configs (CONFIGS)"
    out = Path(args.out)
    try:
        entries = load(items, out, label)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = measure(entries, out, timeout=args.timeout, log=lambda m: print(m, flush=True))
    print()
    print(markdown(result))
    print(f"wrote {', '.join(str(out / f) for f in FILES)}  ({time.perf_counter() - t0:.1f} s)")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
