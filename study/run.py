"""Run a quantization study: every point of a sweep through the bit-exact golden model, plus hardware cost.

::

    python -m study.run [configs/studies/default.toml] [--jobs 2] [--scheduler tcp://host:8786]
                        [--out reports/quant] [--no-synth]

For each point: the formats (widths from the sweep, integer bits from the
calibration on the training set), the golden model over the test set, the
classifier head on its last hidden state, and the gateware's synthesis
counts for one target (cached under ``build/quant/synth/`` by a hash of
everything the netlist depends on).  A network model (:mod:`study.netpoint`)
gets formats per layer and for the head, and its cost is the whole network's
(``rtl.network``).  Points run on a Dask cluster (:mod:`study.distributed`: a
local one with ``--jobs`` workers, default 2, or ``--scheduler``'s) with a
progress bar and an ETA; a point that fails is reported and the others go on.
Results go to ``reports/quant/<study>/`` (:mod:`study.report`).

The functions a study is built from are public: :func:`prepare` (model, data,
calibration, float reference), :func:`point_config` (a point's validated
config), :func:`evaluate` (one config through the golden model) and
:func:`quantized_head`.

Sequences of different lengths: the golden model runs each group of
equal-length test sequences as one batch from a zero state and reads ``h`` at
the last step, which is exactly what the hardware computes when a sequence
is streamed alone with its ``first`` flag (no padding, no truncation).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import golden
from model.cli import Parser, positive_int
from model.config import Config, ConfigError, output_dir
from model.fixedpoint import Fmt, quantize as quantize_values
from model.network import HeadParams
from model.params import quantize
from rtl.source import source_digest

from . import calibrate, data, distributed, models, netpoint, sweep as sweep_mod
from .calibrate import CalibrationError
from .inputs import modes as input_modes, quantize_inputs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STUDY = ROOT / "configs" / "studies" / "default.toml"
REPORTS = ROOT / "reports" / "quant"
SYNTH_CACHE = ROOT / "build" / "quant" / "synth"
SAT_KEYS = ("weight", "bias", "input", "pre", "cell", "hidden", "gru_hn", "gru_rh")


@dataclass
class Context:
    """Everything a point's evaluation needs; built once, sent to every worker once."""

    sweep: object
    model: object
    test: object            # data.Dataset, normalised
    groups: dict            # length -> test indices
    ranges: object          # tensor -> observed max |value| on the training set (a network: per layer, head)
    float_h: np.ndarray     # (n_test, features) float reference, last step
    float_pred: np.ndarray
    synth: bool = True
    max_steps: int = 1      # the task's longest sequence (a bidirectional layer's buffer)
    synth_cache: Path = SYNTH_CACHE  # shared by every worker (on a cluster: a path they all see)


def prepare(sw, synth: bool = True, log=print) -> Context:
    """Load the model and data, calibrate on the training set, run the float reference on the test set."""
    m = models.open_model(sw.model, sw.data, sw.normalise)
    train, test = m.datasets()
    if sw.test_subset:
        test = test.subset(np.arange(min(sw.test_subset, len(test.seqs))))
    ranges = (calibrate.observe_network_ranges if m.network else calibrate.observe_ranges)(m.params, train.seqs)
    fh = m.float_last_h(test.seqs)
    fpred = m.head(fh).argmax(1)
    log(f"[quant] {sw.name}: model {m.name} ({m.describe()}), "
        f"{len(train.seqs)} training sequences calibrated, {len(test.seqs)} test sequences; float accuracy "
        f"{np.mean(fpred == test.labels):.4f}")
    return Context(sw, m, test, data.by_length(test.seqs), ranges, fh, fpred, synth, m.longest())


def point_formats(ctx: Context, point) -> dict:
    """``{tensor: Fmt}`` of a point: ``uniform``, or calibrated integer bits at the point's widths."""
    s = point.layer_settings(0)
    if s["uniform"]:
        f = Fmt.parse(s["uniform"])
        return {t: f for t in calibrate.TENSORS}
    return calibrate.choose_formats(ctx.ranges, point.widths(), ctx.sweep.margin)


def point_config(ctx: Context, point, index: int):
    """The validated config of a point, a cell's :class:`Config` or a network's
    :class:`~model.network.NetworkConfig` (raises SweepError naming the point)."""
    s = point.layer_settings(0)
    p = ctx.model.params
    try:
        if ctx.model.network:
            return netpoint.point_config(ctx.model, ctx.ranges, point, f"{ctx.sweep.name}-{index}",
                                         ctx.sweep.margin, ctx.max_steps)
        if len(point.settings["layers"]) > 1:
            raise netpoint.PointError(f"layers has {len(point.settings['layers'])} tables but model "
                                      f"{ctx.model.name!r} is a single cell")
        fmts = point_formats(ctx, point)
        return Config.from_dict({
            "name": f"{ctx.sweep.name}-{index}", "kind": p.kind, "input_size": p.input_size,
            "hidden_size": p.hidden_size, **p.options,
            "formats": {t: str(f) for t, f in fmts.items()},
            "modes": {"rounding": s["rounding"], "overflow": s["overflow"]},
            "sigmoid": s["sigmoid"], "tanh": s["tanh"], "lanes": s["lanes"],
            "params": str(ctx.model.path.with_name(ctx.model.meta["params"])),
        })
    except (ConfigError, CalibrationError, netpoint.PointError) as e:
        raise sweep_mod.SweepError(f"{ctx.sweep.path}: point {point.label!r}: {e}") from None


def evaluate(ctx: Context, cfg, head_bits: int = 8, input_rounding: str = "half_even",
             input_overflow: str = "saturate") -> dict:
    """Accuracy, agreement with float, last-h error and saturation counts of one config (golden model).

    The float inputs are quantized into ``formats.input`` with ``input_rounding`` and ``input_overflow``
    (:mod:`study.inputs`).  A network config's head, when the sweep's head is ``quantized``, is the
    golden model's own (its formats in ``cfg.head``; ``head_bits`` applies to single cells)."""
    if ctx.model.network:
        return _evaluate_network(ctx, cfg, (input_rounding, input_overflow))
    q = quantize(ctx.model.params, cfg)
    sat = {k: 0 for k in SAT_KEYS}
    sat["weight"] = q.saturated.get("w_ih", 0) + q.saturated.get("w_hh", 0)
    sat["bias"] = q.saturated.get("bias", 0) + q.saturated.get("bias_hn", 0)
    n = len(ctx.test.seqs)
    h_raw = np.empty((n, cfg.hidden_size), dtype=np.int64)
    fin = cfg.fmt("input")
    for _, idx in ctx.groups.items():
        x = np.stack([ctx.test.seqs[i] for i in idx])
        xq, n_sat = quantize_inputs(x, fin, input_rounding, input_overflow)
        sat["input"] += n_sat
        res = golden.run(q, xq, cfg)
        h_raw[idx] = res.outputs[:, -1]
        for k, v in res.saturated.items():
            sat[k] += v
    fh = cfg.fmt("hidden")
    h = fh.to_float(h_raw)
    if ctx.sweep.head == "quantized":
        logits, head_fmt = quantized_head(ctx.model, h_raw, fh, head_bits, cfg.param_rounding)
    else:
        logits, head_fmt = ctx.model.head(h), None
    return _scores(ctx, h, logits.argmax(1), sat, head_fmt)


def _evaluate_network(ctx: Context, ncfg, in_modes: tuple) -> dict:
    _, y_raw, logits, sat = netpoint.golden_run(ctx.model.params, ncfg, ctx.test.seqs, ctx.groups, in_modes)
    y = ncfg.layers[-1].fmt("hidden").to_float(y_raw)
    if ctx.sweep.head == "quantized":
        pred, head_fmt = logits.argmax(1), " ".join(f"{t}={f}" for t, f in ncfg.head.formats.items())
    else:
        pred, head_fmt = ctx.model.head(y).argmax(1), None
    row = _scores(ctx, y, pred, {k: sat.get(k, 0) for k in SAT_KEYS}, head_fmt)
    row["sat_layers"] = " ".join(f"L{i}:{n}" for i, n in enumerate(sat["layers"]))
    row["sat_head"] = sat["head"]
    return row


def _scores(ctx: Context, h, pred, sat: dict, head_fmt) -> dict:
    err = h - ctx.float_h
    return {"accuracy": float(np.mean(pred == ctx.test.labels)),
            "agreement": float(np.mean(pred == ctx.float_pred)),
            "max_abs": float(np.abs(err).max()), "rms": float(np.sqrt(np.mean(err ** 2))),
            **{f"sat_{k}": v for k, v in sat.items()}, "head_format": head_fmt}


def quantized_head(head, h_raw, fh, bits: int, rounding: str):
    """``(logits, weight format)``: integer logits of the dense ``head`` (a :class:`model.HeadParams`, or a
    trained model's) on raw hidden states ``h_raw`` in format ``fh``; weights in a calibrated ``bits``-bit
    format, exact products and sums, bias at their scale (``frac_bits`` of weight plus ``fh``)."""
    w, b = (head.weight, head.bias) if isinstance(head, HeadParams) else (head.head_w, head.head_b)
    wf = calibrate.choose_format("weight", bits, float(np.abs(w).max()))
    wq = quantize_values(w, wf, rounding, "saturate")
    frac = wf.frac_bits + fh.frac_bits
    bq = np.round(np.ldexp(b, frac)).astype(np.int64)
    return h_raw @ wq.T + bq, str(wf)


# ---- hardware cost ---------------------------------------------------------------------------------------

def hardware_key(cfg: Config, q, target: str, src_digest: str) -> str:
    """Hash of everything the synthesized netlist depends on (config content, weights, target, sources)."""
    d = cfg.to_dict()
    d.pop("name")
    d.pop("params", None)
    h = hashlib.sha256(json.dumps({"config": d, "target": target, "src": src_digest}, sort_keys=True).encode())
    for a in (q.w_ih, q.w_hh, q.bias, q.bias_hn, q.w_peep):
        h.update(b"-" if a is None else np.ascontiguousarray(a, dtype=np.int64).tobytes())
    return h.hexdigest()[:20]


def network_key(ncfg, q, target: str, src_digest: str) -> str:
    """:func:`hardware_key` of a network: every layer's config content, the directions, the buffer length,
    the head's config, every cell's and the head's weights, the target and the sources."""
    layers = [{k: v for k, v in c.to_dict().items() if k not in ("name", "params")} for c in ncfg.layers]
    head = ncfg.head.to_dict() if ncfg.head is not None else None
    h = hashlib.sha256(json.dumps({"layers": layers, "directions": ncfg.directions, "max_steps": ncfg.max_steps,
                                   "head": head, "target": target, "src": src_digest}, sort_keys=True).encode())
    for qp in (qp for layer in q.layers for qp in layer):
        h.update(hardware_key(ncfg.layers[0], qp, target, src_digest).encode())
    if q.head is not None:
        for a in (q.head.weight, q.head.bias):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
    return h.hexdigest()[:20]


def hardware_cost(cfg: Config, target: str, src_digest: str, cache: Path = SYNTH_CACHE) -> dict:
    """LUTs, FFs, DSPs and BRAMs of the gateware for ``cfg`` on ``target`` (Yosys), cached.

    A config the gateware cannot build (``rtl.cell.HardwareLimitError``, e.g. an
    ``exact`` activation) or a failing tool gives ``hw_status = 'unavailable'`` and
    the reason, never an exception.
    """
    if target == "none":
        return {"hw_status": "skipped", "hw_reason": "target = 'none'"}
    from model.params import CellParams  # noqa: PLC0415
    q = quantize(CellParams.for_config(cfg, seed=1), cfg)
    return _synthesized(cfg.replace(name="cell"), q, target, cache / hardware_key(cfg, q, target, src_digest))


def network_cost(ncfg, net, target: str, src_digest: str, cache: Path = SYNTH_CACHE) -> dict:
    """:func:`hardware_cost` of a whole network (``rtl.network``: every layer's cells, a bidirectional
    layer's sequence buffer, the head) with the trained parameters ``net``."""
    if target == "none":
        return {"hw_status": "skipped", "hw_reason": "target = 'none'"}
    from model.network import golden as netgolden  # noqa: PLC0415
    q = netgolden.quantize(net, ncfg)
    return _synthesized(dataclasses.replace(ncfg, name="network"), q, target,
                        cache / network_key(ncfg, q, target, src_digest))


def _synthesized(cfg, q, target: str, d: Path) -> dict:
    """The synthesis counts of ``cfg`` with parameters ``q``, from ``d/result.json`` or a Yosys run there."""
    res_file = d / "result.json"
    if res_file.exists():
        return json.loads(res_file.read_text())
    try:
        from rtl.cell import HardwareLimitError  # noqa: PLC0415
        from rtl.synth import synthesize  # noqa: PLC0415
    except Exception as e:  # noqa: BLE001  (gateware missing or broken: cost is unavailable)
        return {"hw_status": "unavailable", "hw_reason": f"gateware import failed: {type(e).__name__}: {e}"}
    try:
        rep = synthesize(cfg, q, d, targets=(target,), pnr=False, log=lambda *a, **k: None)
    except HardwareLimitError as e:
        out = {"hw_status": "unavailable", "hw_reason": str(e)}
        _write_result(res_file, out)
        return out
    except Exception as e:  # noqa: BLE001  (tool failure: reported, not cached)
        return {"hw_status": "unavailable", "hw_reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    s = rep["targets"][target]["summary"]
    out = {"hw_status": "ok", "hw_reason": "", "luts": s["luts"], "ffs": s["ffs"], "dsps": s["dsps"],
           "brams": s["brams"], "synth_s": rep["targets"][target]["seconds"]}
    _write_result(res_file, out)
    return out


def _write_result(res_file: Path, out: dict) -> None:
    """Write a cache entry whole or not at all: workers sharing the cache never read half a file."""
    res_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = res_file.with_name(f"{res_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, res_file)


# ---- the points -------------------------------------------------------------------------------------------

_LIMITED = False


def _limit_threads():
    """One BLAS thread per worker process: the points are the parallelism."""
    global _LIMITED
    if _LIMITED:
        return
    _LIMITED = True
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
        threadpool_limits(1)
    except ImportError:
        pass


def _work(shared, item) -> dict:
    """One point on a worker: its scores (:func:`evaluate`) and its hardware cost; ``shared`` is
    ``(context, source digest)``."""
    ctx, src = shared
    _limit_threads()
    k, point, cfg = item
    t0 = time.perf_counter()
    row = {"index": k, "label": point.label, "group": point.group}
    row.update(evaluate(ctx, cfg, point.settings["head_bits"], *input_modes(point.settings)))
    t1 = time.perf_counter()
    if not ctx.synth:
        row.update({"hw_status": "skipped", "hw_reason": "--no-synth"})
    elif ctx.model.network:
        row.update(network_cost(cfg, ctx.model.params, ctx.sweep.target, src, ctx.synth_cache))
    else:
        row.update(hardware_cost(cfg, ctx.sweep.target, src, ctx.synth_cache))
    row["eval_s"] = round(t1 - t0, 2)
    row["hw_s"] = round(time.perf_counter() - t1, 2)
    return row


def run(sw, jobs: int = 2, synth: bool = True, progress: bool = True, log=print, scheduler: str | None = None) -> dict:
    """Evaluate every point of sweep ``sw``; return ``{context, configs, rows, failed, seconds, jobs, where}``.

    The points run on a Dask cluster (:func:`study.distributed.run_all`): a local one with ``jobs`` worker
    processes, the one whose scheduler is at ``scheduler``, or in this process (``jobs = 1``, no
    scheduler).  ``rows`` holds the points that ran, by index; ``failed`` the others with their error."""
    t0 = time.perf_counter()
    ctx = prepare(sw, synth, log)
    configs = [point_config(ctx, p, k) for k, p in enumerate(sw.points)]
    items = [(k, p, c) for k, (p, c) in enumerate(zip(sw.points, configs))]
    rows, failed = [], []
    where = scheduler or (f"a local Dask cluster of {jobs} worker processes" if jobs > 1 else "one process")
    log(f"[quant] {sw.name}: {len(items)} points on {where}")
    bar = None
    if progress:
        from tqdm import tqdm  # noqa: PLC0415
        bar = tqdm(total=len(items), desc=f"[quant] {sw.name}", unit="point", file=sys.stderr,
                   dynamic_ncols=True)

    def done(item, row, error):
        if error is None:
            rows.append(row)
        else:
            failed.append({"index": item[0], "label": item[1].label, "group": item[1].group, "error": error})
            log(f"[quant] {sw.name}: point {item[1].label!r} failed: {error}")
        if bar:
            bar.update(1)

    try:
        distributed.run_all(_work, (ctx, source_digest()), items, done, scheduler=scheduler, workers=jobs)
    finally:
        if bar:
            bar.close()
    rows.sort(key=lambda r: r["index"])
    failed.sort(key=lambda r: r["index"])
    for r in rows:
        p, c = sw.points[r["index"]], configs[r["index"]]
        r["settings"] = p.settings
        r["formats"] = netpoint.formats(c) if ctx.model.network else \
            {t: str(f) for t, f in c.formats.items() if f is not None}
    return {"context": ctx, "configs": configs, "rows": rows, "failed": failed,
            "seconds": time.perf_counter() - t0, "jobs": jobs, "where": where}


def main(argv=None) -> int:
    ap = Parser(prog="python -m study.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("study", nargs="?", default=str(DEFAULT_STUDY),
                    help="sweep file, or a name in configs/studies/ (default: default)")
    ap.add_argument("--jobs", type=positive_int("--jobs"), default=2,
                    help="worker processes of the local Dask cluster (default 2; 1: in this process)")
    ap.add_argument("--scheduler", type=_scheduler, default=None,
                    help="address of an existing Dask scheduler (tcp://host:8786) instead of a local cluster")
    ap.add_argument("--out", type=_out_dir, default=str(REPORTS),
                    help="reports root (OUT); files go to <out>/<study>/")
    ap.add_argument("--no-synth", action="store_true", help="skip the hardware cost (no Yosys)")
    args = ap.parse_args(argv)
    have = sorted(p.stem for p in (ROOT / "configs" / "studies").glob("*.toml"))
    if not args.study.strip():
        ap.error(f"study (STUDY) is empty; accepted: a sweep file path or one of {', '.join(have)}")
    path = Path(args.study)
    if not path.suffix and not path.exists():
        path = ROOT / "configs" / "studies" / f"{args.study}.toml"
        if not path.is_file():
            print(f"error: study {args.study!r}: no sweep file {path}; accepted: a sweep file path or one of "
                  f"{', '.join(have)}", file=sys.stderr)
            return 2
    from . import report  # noqa: PLC0415
    try:
        sw = sweep_mod.load(path)
        folder = output_dir(args.out, sw)
        res = run(sw, jobs=args.jobs, synth=not args.no_synth, scheduler=args.scheduler)
    except (sweep_mod.SweepError, models.ModelError, data.DataError, ConfigError, CalibrationError,
            distributed.ClusterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = report.write(res, folder)
    print(report.summary(res))
    print(f"[quant] {len(res['rows'])} points in {res['seconds']:.1f} s; wrote {out}")
    if res["failed"]:
        print(f"[quant] {len(res['failed'])} of {len(sw.points)} points failed (listed in {out / 'report.md'})",
              file=sys.stderr)
        return 1
    return 0


def _scheduler(text):
    try:
        return distributed.check_address(text)
    except distributed.ClusterError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _out_dir(text):
    if not text.strip():
        raise argparse.ArgumentTypeError("--out (OUT) must be a folder path, not an empty string")
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"--out (OUT) = {text!r} is a file; accepted: a folder (created if missing)")
    return text


if __name__ == "__main__":
    raise SystemExit(main())
