"""Automatic mixed precision: the cheapest per-tensor widths and activation methods within an accuracy tolerance.

::

    python -m study.mixed [--model fsdd_lstm32] [--tolerance 0.5] [--out reports/mixed]
                          [--config-out configs/mixed] [--no-synth]

The cost is the LUT count of the gateware on ECP5 (Yosys, as the quantization
study measures it: :func:`study.run.hardware_cost`, cached under
``build/quant/synth/``).  Synthesis takes minutes per point, so the search
asks a :class:`CostModel` instead: LUTs linear in each tensor's width plus a
term per sigmoid and tanh method, fitted by least squares to a few
synthesized points of this model (:data:`FIT_POINTS`, varying one tensor at a
time) together with the committed default study's synthesized points
(``reports/quant/default/results.csv``; those netlists come from an earlier
gateware, so they get their own offset term).  The model is checked against
held-out synthesized points (:data:`HELD_OUT`) and against the searched
config, and the report gives each error.

The search is greedy from the study's 8-bit point (8-bit weights and
activations, 16-bit bias, pre-activation and cell state, interpolated 64-entry
tables): at every step it tries the moves (one tensor one bit narrower, or one
activation another method of :data:`ACT_CHOICES`) in order of predicted
saving and takes the first whose accuracy on the *search half* of the test set
stays within the tolerance of float there; a move that fails is not tried again.
Accuracy is the golden model's (float head).  The other half of the test set
(the *report half*) is never seen by the search: the report gives the found
config's accuracy there and on the whole test set, next to the best uniform
and the best hand-picked point of the default study, all re-synthesized on
the current gateware.  The found config is written as a TOML file ready for
``make sim CONFIG=...``.
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np

from model.cli import Parser
from model.config import ActSpec, Config, ConfigError
from model.fixedpoint import Fmt

from . import calibrate, data, models, run as study_run, sweep as sweep_mod
from .qat import cell_tensors, finish_axes, golden_predict, make_config, point_widths, save_figure

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "mixed"
CONFIGS = ROOT / "configs" / "mixed"
STUDY_REPORT = ROOT / "reports" / "quant" / "default" / "results.csv"
TARGET = "ecp5"
#: Activation approximations the search may pick (the first is the start).
ACT_CHOICES = {
    "sigmoid": ({"method": "lut_interp", "size": 64, "range": 8.0}, {"method": "lut_interp", "size": 16, "range": 8.0},
                {"method": "lut", "size": 64, "range": 8.0}, "pwl", "hard"),
    "tanh": ({"method": "lut_interp", "size": 64, "range": 4.0}, {"method": "lut_interp", "size": 16, "range": 4.0},
             {"method": "lut", "size": 64, "range": 4.0}, "pwl", "hard"),
}
#: Narrowest width the search gives a tensor.
MIN_BITS = 2
#: Points synthesized to fit the cost model: label, widths changed from the 8-bit start, sigmoid and tanh
#: (indices into :data:`ACT_CHOICES`).
FIT_POINTS = (
    ("start", {}, 0, 0), ("input 4", {"input": 4}, 0, 0), ("gate 4", {"gate": 4}, 0, 0),
    ("candidate 4", {"candidate": 4}, 0, 0), ("cell_act 4", {"cell_act": 4}, 0, 0), ("hidden 4", {"hidden": 4}, 0, 0),
    ("bias 8", {"bias": 8}, 0, 0), ("weight 4, pre 10, cell 10, pwl", {"weight": 4, "pre": 10, "cell": 10}, 3, 3),
)
#: Points synthesized only to check the cost model.
HELD_OUT = (
    ("held-out A", {"weight": 4, "input": 6, "bias": 10, "pre": 10, "gate": 5, "candidate": 6, "cell": 12,
                    "cell_act": 5, "hidden": 6}, 3, 1),
    ("held-out B", {"weight": 3, "input": 5, "bias": 8, "pre": 8, "gate": 4, "candidate": 4, "cell": 10,
                    "cell_act": 4, "hidden": 5}, 4, 3),
)
#: ``[bench]`` bound of the written config (max-abs, RMS of h against float): h's whole range, 2 (h in [-1, 1]).
BENCH_BOUND = (2.0, 2.0)
#: Search rounds at most: after a round whose searched config the cost model misses by more than
#: :data:`REFIT_WITHIN` (relative), that synthesized config joins the fit and the search runs again.
ROUNDS = 3
REFIT_WITHIN = 0.05
#: Seed of the stratified split of the test set into the search half and the report half.
SPLIT_SEED = 15


class MixedError(ValueError):
    """A model, tolerance or setting the search cannot use."""


def act_key(spec) -> str:
    """``lut_interp/64``, ``pwl``: an activation's name in the cost model (the study's results.csv spelling)."""
    s = spec if isinstance(spec, ActSpec) else ActSpec(**spec) if isinstance(spec, dict) else ActSpec(spec)
    return f"{s.method}/{s.size}" if s.size else s.method


ACT_KEYS = {fn: tuple(act_key(c) for c in choices) for fn, choices in ACT_CHOICES.items()}


def start_widths() -> dict:
    """The search's start: the quantization study's 8-bit point."""
    return point_widths(8, 8)


def config_at(model, ranges, widths: dict, sig: int, tanh: int, name: str) -> Config:
    """The config at ``widths`` with sigmoid and tanh ``ACT_CHOICES[fn][index]``."""
    return make_config(model, ranges, widths, name, ACT_CHOICES["sigmoid"][sig], ACT_CHOICES["tanh"][tanh])


# ---- the cost model --------------------------------------------------------------------------------------------

class CostModel:
    """LUTs ~ ``c0 + sum_t a_t * width_t + s[sigmoid method] + t[tanh method]`` (+ an offset for the committed
    study's older netlists), least squares; the first method of each function is the reference (0)."""

    def __init__(self, tensors: tuple):
        self.tensors = tuple(tensors)
        self.names = (["constant", "older netlists"] + [f"width {t}" for t in self.tensors]
                      + [f"sigmoid {k}" for k in ACT_KEYS["sigmoid"][1:]] + [f"tanh {k}" for k in ACT_KEYS["tanh"][1:]])
        self.coef = None

    def features(self, widths: dict, sig: str, tanh: str, older: bool = False) -> np.ndarray:
        acts = [float(sig == k) for k in ACT_KEYS["sigmoid"][1:]] + [float(tanh == k) for k in ACT_KEYS["tanh"][1:]]
        return np.array([1.0, float(older)] + [float(widths[t]) for t in self.tensors] + acts)

    def features_of(self, cfg: Config) -> np.ndarray:
        return self.features({t: cfg.fmt(t).width for t in self.tensors}, act_key(cfg.sigmoid), act_key(cfg.tanh))

    def fit(self, X, y) -> "CostModel":
        self.X, self.y = [np.asarray(x) for x in X], [float(v) for v in y]
        A, b = np.asarray(self.X), np.asarray(self.y)
        ridge = 1e-3 * np.eye(A.shape[1])  # a feature no point varies gets 0, not an arbitrary value
        self.coef = np.linalg.solve(A.T @ A + ridge, A.T @ b)
        return self

    def refit_with(self, cfg: Config, luts: int) -> "CostModel":
        """A copy fitted to this model's points plus ``cfg`` synthesized to ``luts``."""
        cm = CostModel(self.tensors)
        cm.n_study = getattr(self, "n_study", 0)
        return cm.fit(self.X + [self.features_of(cfg)], self.y + [luts])

    def predict(self, cfg: Config) -> float:
        return float(self.features_of(cfg) @ self.coef)


def study_rows(tensors: tuple, path: Path = STUDY_REPORT) -> list:
    """``(widths, sigmoid, tanh, luts, label)`` of the committed default study's synthesized points with
    calibrated per-tensor formats, the modes the search keeps (half_even, saturate) and activations in
    :data:`ACT_CHOICES`."""
    if not path.is_file():
        return []
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if (r["hw_status"] != "ok" or r["uniform"] or (r["rounding"], r["overflow"]) != ("half_even", "saturate")
                    or r["sigmoid"] not in ACT_KEYS["sigmoid"] or r["tanh"] not in ACT_KEYS["tanh"]):
                continue
            fm = dict(kv.split("=") for kv in r["formats"].split())
            out.append(({t: Fmt.parse(fm[t]).width for t in tensors}, r["sigmoid"], r["tanh"], int(r["luts"]),
                        r["label"]))
    return out


def synthesized(cfg: Config, src: str) -> dict:
    """:func:`study.run.hardware_cost` of ``cfg`` on :data:`TARGET` (cached)."""
    return study_run.hardware_cost(cfg, TARGET, src)


def fit_cost_model(model, ranges, src: str, log=print, use_study: bool = True) -> tuple:
    """``(cost model, rows)``: the model fitted to :data:`FIT_POINTS` (synthesized) and the study's points;
    rows ``{label, role, luts, predicted, ffs, dsps, brams}`` for the fit and the :data:`HELD_OUT` points."""
    tensors = cell_tensors(model.params)
    cm = CostModel(tensors)
    X, y, rows = [], [], []
    for role, points in (("fit", FIT_POINTS), ("held out", HELD_OUT)):
        for label, change, s, t in points:
            cfg = config_at(model, ranges, {**start_widths(), **change}, s, t, "cost")
            log(f"[mixed] synthesis of {label!r} ({role}) ...")
            hw = synthesized(cfg, src)
            if hw.get("hw_status") != "ok":
                raise MixedError(f"synthesis of cost-model point {label!r} failed: {hw.get('hw_reason')}")
            rows.append({"label": label, "role": role, "cfg": cfg, **{k: hw[k] for k in ("luts", "ffs", "dsps", "brams")}})
            if role == "fit":
                X.append(cm.features_of(cfg))
                y.append(hw["luts"])
    n_study = 0
    if use_study:
        for widths, sig, tanh, luts, _ in study_rows(tensors):
            X.append(cm.features(widths, sig, tanh, older=True))
            y.append(luts)
            n_study += 1
    cm.fit(X, y)
    cm.n_study = n_study
    for r in rows:
        r["predicted"] = cm.predict(r["cfg"])
    return cm, rows


# ---- accuracy ----------------------------------------------------------------------------------------------------

class Halves:
    """The test set split (stratified, :data:`SPLIT_SEED`) into the search half and the report half."""

    def __init__(self, model):
        self.model = model
        _, test = model.datasets()
        self.test = test
        self.search_idx, self.report_idx = data.split(test.labels, SPLIT_SEED, 0.5)
        fpred = model.head(model.float_last_h(test.seqs)).argmax(1)
        self.float = self.scores(fpred)

    def scores(self, pred) -> dict:
        """Accuracy on the search half, the report half and the whole test set."""
        ok = pred == self.test.labels
        return {"search": float(ok[self.search_idx].mean()), "report": float(ok[self.report_idx].mean()),
                "test": float(ok.mean())}

    def evaluate(self, cfg: Config, halves=("search", "report")) -> dict:
        """Accuracies of ``cfg`` (golden model, float head), running only the sequences ``halves`` need."""
        idx = np.sort(np.concatenate([self.search_idx if h == "search" else self.report_idx for h in halves]))
        pred = np.full(len(self.test.seqs), -1)
        _, pred[idx] = golden_predict(self.model.params, self.model.head_params, cfg, [self.test.seqs[i] for i in idx])
        s = self.scores(pred)
        return {h: s[h] for h in halves} | ({"test": s["test"]} if len(halves) == 2 else {})


# ---- the search --------------------------------------------------------------------------------------------------

def search(model, ranges, halves: Halves, cm: CostModel, tolerance_pp: float, log=print) -> tuple:
    """Greedy search (see the module docstring); returns ``(config, steps)`` where each step is
    ``{move, accepted, search accuracy, predicted LUTs}``."""
    floor = halves.float["search"] - tolerance_pp / 100
    widths, act = start_widths(), {"sigmoid": 0, "tanh": 0}
    tensors = cell_tensors(model.params)

    def cfg_of(w, a):
        return config_at(model, ranges, w, a["sigmoid"], a["tanh"], f"{model.name}_mixed")

    cur = cfg_of(widths, act)
    acc = halves.evaluate(cur, ("search",))["search"]
    steps = [{"move": "start (8-bit point)", "accepted": acc >= floor, "search": acc, "predicted": cm.predict(cur)}]
    log(f"[mixed] start: search-half accuracy {acc:.4f} (floor {floor:.4f}), predicted {cm.predict(cur):.0f} LUTs")
    failed = set()
    while True:
        moves = []
        for t in tensors:
            if t not in failed and widths[t] > MIN_BITS:
                moves.append((t, {**widths, t: widths[t] - 1}, act, f"{t} {widths[t]} -> {widths[t] - 1} bits"))
        for fn in ("sigmoid", "tanh"):
            for k in range(len(ACT_CHOICES[fn])):
                if k != act[fn] and (fn, k) not in failed:
                    a = {**act, fn: k}
                    moves.append(((fn, k), widths, a, f"{fn} {ACT_KEYS[fn][act[fn]]} -> {ACT_KEYS[fn][k]}"))
        base = cm.predict(cur)
        cands = []
        for key, w, a, text in moves:
            try:
                c = cfg_of(w, a)
            except (ConfigError, calibrate.CalibrationError, ValueError):
                failed.add(key)
                continue
            saving = base - cm.predict(c)
            if saving > 0:
                cands.append((saving, key, w, a, text, c))
        cands.sort(key=lambda m: -m[0])
        took = False
        for saving, key, w, a, text, c in cands:
            acc = halves.evaluate(c, ("search",))["search"]
            ok = acc >= floor
            steps.append({"move": text, "accepted": ok, "search": acc, "predicted": cm.predict(c)})
            log(f"[mixed] {text}: search-half accuracy {acc:.4f}, predicted saving {saving:.0f} LUTs -> "
                f"{'taken' if ok else 'refused'}")
            if ok:
                widths, act, cur, took = w, a, c, True
                break
            failed.add(key)
        if not took:
            return cur, steps


# ---- the points of the default study ------------------------------------------------------------------------------

def study_best(tolerance_pp: float, path: Path = STUDY_REPORT) -> dict:
    """``{'uniform': index, 'hand-picked': index}``: the cheapest uniform point and the cheapest other point of
    the committed default study within ``tolerance_pp`` of float on the whole test set (its own LUT counts)."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["hw_status"] == "ok"]
    fl = max(float(r["accuracy"]) for r in rows if r["label"].startswith("16-bit"))
    ok = [r for r in rows if float(r["accuracy"]) >= fl - tolerance_pp / 100 - 1e-12]
    out = {}
    for kind, sel in (("uniform", [r for r in ok if r["uniform"]]), ("hand-picked", [r for r in ok if not r["uniform"]])):
        if sel:
            out[kind] = int(min(sel, key=lambda r: int(r["luts"]))["index"])
    return out


def study_configs(tolerance_pp: float) -> list:
    """``(role, label, config)`` of :func:`study_best`'s points, built as the study builds them
    (:func:`study.run.prepare`, :func:`study.run.point_config`)."""
    sw = sweep_mod.load(study_run.DEFAULT_STUDY)
    ctx = study_run.prepare(sw, synth=False, log=lambda *a: None)
    return [(role, sw.points[k].label, study_run.point_config(ctx, sw.points[k], k))
            for role, k in study_best(tolerance_pp).items()]


# ---- the config file ----------------------------------------------------------------------------------------------

def config_toml(cfg: Config, path: Path, header: list) -> str:
    """The TOML text of ``cfg`` for a file at ``path`` (the parameter path relative to it)."""
    import os  # noqa: PLC0415
    rel = os.path.relpath(cfg.params, path.parent)
    acts = []
    for fn in ("sigmoid", "tanh"):
        d = getattr(cfg, fn).to_dict()
        acts.append(f"{fn:<7} = " + (f'{{ method = "{d["method"]}", size = {d["size"]}, range = {d["range"]} }}'
                                     if "size" in d else f'"{d["method"]}"'))
    fm = [f'{t:<9} = "{f}"{" " * (7 - len(str(f)))}# {f.ap}' for t, f in cfg.formats.items() if f is not None]
    opts = [f'{k} = "{v}"' for k, v in cfg.options.items()]
    m = cfg.mode("pre")
    bench = [] if cfg.float_max_abs is None else [
        "", "[bench]", "# The cocotb bench's bound on h against float: the range of h only, as for configs/fsdd_lstm32.toml",
        "# (the bench's real check is bit-exactness against the golden model; the accuracy is in the report).",
        f"float_max_abs = {cfg.float_max_abs}", f"float_rms = {cfg.float_rms}"]
    return "\n".join([*(f"# {h}" for h in header), f'name = "{cfg.name}"', f'params = "{rel}"', "", "[cell]",
                      f'kind = "{cfg.kind}"', *opts, f"input_size = {cfg.input_size}",
                      f"hidden_size = {cfg.hidden_size}", "", "[formats]", *fm, "", "[modes]",
                      f'rounding = "{m.rounding}"', f'overflow = "{m.overflow}"', "", "[activations]", *acts, "",
                      "[hardware]", f"lanes = {cfg.lanes}", f"beat = {cfg.beat}", *bench, ""])


# ---- the report --------------------------------------------------------------------------------------------------

def _fmt_row(cfg: Config) -> str:
    return " ".join(f"{t}={f}" for t, f in cfg.formats.items() if f is not None) + \
        f" sigmoid={act_key(cfg.sigmoid)} tanh={act_key(cfg.tanh)}"


def write_report(res: dict, out: Path) -> Path:
    """README.md, cost_model.csv, search.csv and cost_model.png into ``out``."""
    from .report import _pct, _table  # noqa: PLC0415
    out.mkdir(parents=True, exist_ok=True)
    cm, cost_rows, fl = res["cost_model"], res["cost_rows"], res["float"]
    with open(out / "cost_model.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "role", "luts", "predicted", "error_pct", "ffs", "dsps", "brams", "formats"])
        for r in cost_rows:
            w.writerow([r["label"], r["role"], r["luts"], round(r["predicted"], 1),
                        round(100 * (r["predicted"] - r["luts"]) / r["luts"], 2), r["ffs"], r["dsps"], r["brams"],
                        _fmt_row(r["cfg"])])
    with open(out / "search.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["round", "step", "move", "accepted", "search_accuracy", "predicted_luts"])
        for r in res["rounds"]:
            for k, s in enumerate(r["steps"]):
                w.writerow([r["round"], k, s["move"], int(s["accepted"]), s["search"], round(s["predicted"], 1)])
    _plot(cost_rows, out / "cost_model.png")
    held = [r for r in cost_rows if r["role"] != "fit"]
    err = [abs(r["predicted"] - r["luts"]) / r["luts"] for r in held]
    cmp_rows = res["compare"]
    lines = [f"# Automatic mixed precision: `{res['model']}`", "",
             f"The cheapest gateware (ECP5 LUTs) whose accuracy stays within {res['tolerance']:g} pp of float, found by "
             "`study.mixed` (`make mixed`; the manual is `docs/qat.md`). Every accuracy is the golden model's, i.e. "
             "the gateware's, with the float head on the last hidden state; post-training quantization of the "
             "trained float model (no retraining).", "",
             f"- Test set split (stratified, seed {SPLIT_SEED}) into a **search half** ({len(res['halves'].search_idx)} "
             f"sequences), the only data the search sees, and a **report half** ({len(res['halves'].report_idx)}), "
             "which it never sees. Float accuracy: search half " + _pct(fl["search"]) + ", report half "
             + _pct(fl["report"]) + ", whole test set " + _pct(fl["test"]) + ".",
             f"- Accepted: search-half accuracy >= {_pct(fl['search'] - res['tolerance'] / 100)} (float there minus "
             f"{res['tolerance']:g} pp).",
             "- Search: greedy from the default study's 8-bit point; each step tries one tensor one bit narrower, or "
             "sigmoid/tanh another of lut_interp/64, lut_interp/16, lut/64, pwl, hard, in order of "
             "predicted saving, takes the first within the tolerance; a refused move is not tried again. Modes stay "
             "round half to even and saturation, 8 lanes, integer bits calibrated on the training set.",
             f"- Rounds: the searched config is synthesized; when the cost model misses it by more than "
             f"{100 * REFIT_WITHIN:g} %, it joins the fit and the search runs again (at most {ROUNDS} rounds). The "
             "result is the round whose config synthesized to the fewest LUTs.",
             f"- Wall time {res['seconds'] / 60:.1f} min ({res['evaluations']} golden-model evaluations).", "",
             "## Result", ""]
    fl_row = ["float (float64 reference)", _pct(fl["search"]), _pct(fl["report"]), _pct(fl["test"])] + ["-"] * 7
    lines += _table(["point", "search half", "report half", "test set", "LUTs", "FFs", "DSPs", "BRAMs",
                     "predicted LUTs", "LUTs in the study report", "formats"],
                    [fl_row] + [[c["label"], _pct(c["acc"]["search"]), _pct(c["acc"]["report"]), _pct(c["acc"]["test"]),
                                 *(c["hw"].get(k, "n/a") for k in ("luts", "ffs", "dsps", "brams")),
                                 f"{c['predicted']:.0f}", c.get("study_luts", "-"), f"`{_fmt_row(c['cfg'])}`"]
                                for c in cmp_rows])
    lines += ["", f"The searched config is `{res['config_path']}`: `make sim CONFIG={res['config_path']}` runs it "
              "through the gateware. LUTs, FFs, DSPs and BRAMs are Yosys `synth_ecp5` counts on the current gateware "
              "(every row synthesized here, cached in `build/quant/synth/`); the study report's own LUT counts "
              "come from an earlier gateware and are shown for reference.", "",
              "Against the other points: " + "; ".join(_versus(cmp_rows[-1], c) for c in cmp_rows[:-1]) + ".", "",
              "## Cost model", "",
              f"LUTs linear in every tensor's width plus one term per sigmoid and tanh method (against lut_interp/64), "
              f"fitted by least squares to the {sum(r['role'] == 'fit' for r in cost_rows)} points below marked "
              f"*fit* (synthesized here) and the {cm.n_study} calibrated, half-even, saturating points of the committed "
              "default study (`reports/quant/default/results.csv`, an offset term for their older netlists). "
              f"Error on the points it was not fitted to: mean {100 * np.mean(err):.1f} %, worst "
              f"{100 * np.max(err):.1f} %. A round's searched config is predicted by the model of that round "
              "(before it joined the fit); the study's points by the first model.", ""]
    lines += _table(["round", "predicted LUTs", "LUTs (Yosys)", "error", "search half", "formats"],
                    [[r["round"], f"{r['predicted']:.0f}", r["hw"]["luts"],
                      f"{100 * (r['predicted'] - r['hw']['luts']) / r['hw']['luts']:+.1f} %",
                      _pct(r["search"]),
                      f"`{_fmt_row(r['cfg'])}`"] for r in res["rounds"]])
    lines += [""]
    lines += _table(["point", "role", "LUTs (Yosys)", "predicted", "error"],
                    [[r["label"], r["role"], r["luts"], f"{r['predicted']:.0f}",
                      f"{100 * (r['predicted'] - r['luts']) / r['luts']:+.1f} %"] for r in cost_rows])
    fin = res["final_cost_model"]
    lines += ["", "Coefficients (LUTs per bit of width, or per method) of the first model and of the last round's:", ""]
    lines += _table(["term", "first", "last"], [[n, f"{a:.1f}", f"{b:.1f}"] for n, a, b in zip(cm.names, cm.coef, fin.coef)])
    lines += ["", "![cost_model.png](cost_model.png)", "", "## Search", "",
              f"Every move tried in round {res['chosen']} (the result), in order; every round in `search.csv`:", ""]
    steps = next(r["steps"] for r in res["rounds"] if r["round"] == res["chosen"])
    lines += _table(["step", "move", "search half", "predicted LUTs", "taken"],
                    [[k, s["move"], _pct(s["search"]), f"{s['predicted']:.0f}", "yes" if s["accepted"] else "no"]
                     for k, s in enumerate(steps)])
    lines.append("")
    (out / "README.md").write_text("\n".join(lines))
    return out


def _versus(best: dict, other: dict) -> str:
    a, b = best["hw"].get("luts"), other["hw"].get("luts")
    if a is None or b is None:
        return f"no synthesis for {other['label']}"
    d = 100 * (best["acc"]["report"] - other["acc"]["report"])
    return (f"{abs(b - a)} LUTs {'fewer' if a <= b else 'more'} than {other['label']} "
            f"({100 * (a - b) / b:+.1f} %), {d:+.2f} pp on the report half")


def _plot(rows, path: Path) -> None:
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for role, mark in (("fit", "o"), ("held out", "s"), ("checked", "^")):
        sel = [r for r in rows if r["role"] == role]
        if sel:
            ax.plot([r["luts"] for r in sel], [r["predicted"] for r in sel], mark, label=role)
    lo = min(min(r["luts"], r["predicted"]) for r in rows) * 0.95
    hi = max(max(r["luts"], r["predicted"]) for r in rows) * 1.05
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("LUTs, Yosys synth_ecp5")
    ax.set_ylabel("LUTs, cost model")
    finish_axes(ax)
    save_figure(fig, path)


# ---- the command line ------------------------------------------------------------------------------------------------

def run(model_name: str, tolerance_pp: float, config_out: Path, log=print) -> dict:
    """The whole flow: cost model, search, synthesis and evaluation of the result and the study's points."""
    from rtl.source import source_digest  # noqa: PLC0415
    t0 = time.perf_counter()
    m = models.load(model_name)
    if m.network:
        raise MixedError(f"model {model_name!r} is a network; the search takes one-cell models")
    train, _ = m.datasets()
    ranges = calibrate.observe_ranges(m.params, train.seqs)
    src = source_digest()
    cm, cost_rows = fit_cost_model(m, ranges, src, log, use_study=m.name == sweep_mod.load(study_run.DEFAULT_STUDY).model)
    halves = Halves(m)
    log(f"[mixed] float accuracy: search half {halves.float['search']:.4f}, report half {halves.float['report']:.4f}")
    rounds, first_cm = [], cm
    for k in range(1, ROUNDS + 1):
        cfg, steps = search(m, ranges, halves, cm, tolerance_pp, log)
        log(f"[mixed] round {k}: synthesis of the searched config ...")
        hw = synthesized(cfg, src)
        if hw.get("hw_status") != "ok":
            raise MixedError(f"synthesis of the searched config failed: {hw.get('hw_reason')}")
        pred = cm.predict(cfg)
        rounds.append({"round": k, "cfg": cfg, "steps": steps, "hw": hw, "predicted": pred,
                       "search": halves.evaluate(cfg, ("search",))["search"]})
        cost_rows.append({"label": f"searched, round {k}", "role": "checked", "cfg": cfg, "predicted": pred,
                          **{f: hw[f] for f in ("luts", "ffs", "dsps", "brams")}})
        log(f"[mixed] round {k}: {hw['luts']} LUTs, predicted {pred:.0f}")
        if abs(pred - hw["luts"]) <= REFIT_WITHIN * hw["luts"]:
            break
        cm = cm.refit_with(cfg, hw["luts"])
    chosen = min(rounds, key=lambda r: (r["hw"]["luts"], r["round"]))
    best = chosen["cfg"]
    compare = []
    points = [("start (8-bit point)", config_at(m, ranges, start_widths(), 0, 0, "start"), None)]
    if m.name == sweep_mod.load(study_run.DEFAULT_STUDY).model:
        study = {int(r["index"]): r for r in csv.DictReader(open(STUDY_REPORT, newline=""))}
        best_idx = study_best(tolerance_pp)
        for (role, label, cfg) in study_configs(tolerance_pp):
            points.append((f"study's best {role}: {label}", cfg, study[best_idx[role]]["luts"]))
    points.append((f"mixed precision (searched, round {chosen['round']})", best, None))
    for label, cfg, study_luts in points:
        log(f"[mixed] synthesis and evaluation of {label!r} ...")
        hw = synthesized(cfg, src)
        row = {"label": label, "cfg": cfg, "acc": halves.evaluate(cfg), "hw": hw, "predicted": first_cm.predict(cfg)}
        if study_luts is not None:
            row["study_luts"] = study_luts
            if hw.get("hw_status") == "ok":
                cost_rows.append({"label": label, "role": "checked", "cfg": cfg, "predicted": row["predicted"],
                                  **{f: hw[f] for f in ("luts", "ffs", "dsps", "brams")}})
        compare.append(row)
    config_out.mkdir(parents=True, exist_ok=True)
    path = config_out / f"{m.name}.toml"
    acc = compare[-1]["acc"]
    header = [f"Mixed precision for the trained {m.describe()} ({m.name}), found by `make mixed` (study.mixed):",
              f"the cheapest ECP5 LUT count the search found within {tolerance_pp:g} pp of float on the search half",
              f"of the test set. Golden-model accuracy: search half {100 * acc['search']:.2f} %, report half "
              f"{100 * acc['report']:.2f} %, test set {100 * acc['test']:.2f} %",
              f"(float {100 * halves.float['test']:.2f} %); reports/mixed/README.md has the comparison.",
              f"`make sim CONFIG={_rel(path)}` runs it through the gateware."]
    bench = dict(zip(("float_max_abs", "float_rms"), BENCH_BOUND))
    path.write_text(config_toml(best.replace(name=f"{m.name}_mixed", **bench), path, header))
    Config.load(path)  # what make sim will read
    return {"model": m.name, "tolerance": tolerance_pp, "float": halves.float, "halves": halves,
            "cost_model": first_cm, "final_cost_model": cm, "cost_rows": cost_rows, "rounds": rounds,
            "chosen": chosen["round"], "compare": compare, "config_path": _rel(path),
            "evaluations": sum(len(r["steps"]) for r in rounds), "seconds": time.perf_counter() - t0}


def _rel(p: Path) -> str:
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def _tolerance(text: str) -> float:
    import argparse  # noqa: PLC0415
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v < 100:
        raise argparse.ArgumentTypeError(f"--tolerance must be a number of percentage points in (0, 100), not {text!r}")
    return v


def main(argv=None) -> int:
    ap = Parser(prog="python -m study.mixed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fsdd_lstm32", help="trained one-cell model (default fsdd_lstm32)")
    ap.add_argument("--tolerance", type=_tolerance, default=0.5,
                    help="accepted accuracy loss against float on the search half, in pp (default 0.5)")
    ap.add_argument("--out", default=str(REPORTS), help="report folder (default reports/mixed)")
    ap.add_argument("--config-out", default=str(CONFIGS), help="folder of the searched config (default configs/mixed)")
    args = ap.parse_args(argv)
    try:
        res = run(args.model, args.tolerance, Path(args.config_out))
    except (MixedError, models.ModelError, ConfigError, calibrate.CalibrationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = write_report(res, Path(args.out))
    print(f"[mixed] wrote {res['config_path']} and {_rel(out / 'README.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
