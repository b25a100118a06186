"""Automatic mixed precision: the cheapest per-layer, per-tensor widths and activation methods within an
accuracy tolerance.

::

    python -m study.mixed [--model fsdd_lstm32] [--tolerance 0.5] [--out reports/mixed]
                          [--config-out configs/mixed]

The model is a trained one-cell model (``fsdd_lstm32``) or network (``fsdd_lstm2x32``).  A
:class:`CellSubject` or :class:`NetworkSubject` says what the search varies and how a point becomes a
config, an accuracy and a cost: one width per tensor and one sigmoid and one tanh method for a cell; the
same for every layer of a network, independently (``l0.weight``, ``l1.sigmoid``; a layer's input beyond
the first is the layer below's hidden format), whose head keeps the quantization study's 8-bit weights and
16-bit bias and logits.

The cost is the LUT count of the gateware on ECP5 (Yosys, as the quantization study measures it:
:func:`study.run.hardware_cost`, :func:`study.run.network_cost`, cached under ``build/quant/synth/``).
Synthesis takes minutes per point, so the search asks a :class:`CostModel` instead: LUTs linear in each
tensor's width plus a term per sigmoid and tanh method, each summed over a network's layers (the layers
share the coefficients), fitted by least squares to a few synthesized points of this model (the subject's
``fit_points``, each changing one thing in every layer) together with the synthesized points of the
committed quantization study of the same model (:func:`study_for`; those netlists may come from an earlier
gateware, so they get their own offset term).  The model is checked against held-out synthesized points
(``held_out``) and against the searched config, and the report gives each error.

The search is greedy from the study's 8-bit point (8-bit weights and activations, 16-bit bias,
pre-activation and cell state, interpolated 64-entry tables): at every step it tries the moves (one
tensor of one layer one bit narrower, or one activation of one layer another method of
:data:`ACT_CHOICES`) in order of predicted saving and takes the first whose accuracy on the *search half*
of the test set stays within the tolerance of float there (for a network, also with no saturation at a
requantization point of its layers there: each sets a status bit, and the network bench fails on any); a
move that fails is not tried again.
Accuracy is the golden model's: a cell's with the float head, a network's with its own quantized head
(what the network gateware computes).  The other half of the test set (the *report half*) is never seen
by the search: the report gives the found config's accuracy there and on the whole test set, next to the
best uniform and the best hand-picked points of the study, all re-synthesized on the current gateware.
The found config is written as a TOML file ready for ``make sim CONFIG=...``.
"""
from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

from model.cli import Parser
from model.config import ActSpec, Config, ConfigError
from model.fixedpoint import Fmt
from model.network import NetworkConfig

from . import calibrate, data, models, netpoint, run as study_run, sweep as sweep_mod
from .qat import cell_tensors, finish_axes, golden_predict, make_config, point_widths, save_figure

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "mixed"
CONFIGS = ROOT / "configs" / "mixed"
STUDIES = ROOT / "configs" / "studies"
TARGET = "ecp5"
DEFAULT_MODEL = "fsdd_lstm32"
#: Activation approximations the search may pick (the first is the start).
ACT_CHOICES = {
    "sigmoid": ({"method": "lut_interp", "size": 64, "range": 8.0}, {"method": "lut_interp", "size": 16, "range": 8.0},
                {"method": "lut", "size": 64, "range": 8.0}, "pwl", "hard"),
    "tanh": ({"method": "lut_interp", "size": 64, "range": 4.0}, {"method": "lut_interp", "size": 16, "range": 4.0},
             {"method": "lut", "size": 64, "range": 4.0}, "pwl", "hard"),
}
#: Narrowest width the search gives a tensor.
MIN_BITS = 2
#: A cell's points synthesized to fit the cost model: label, widths changed from the 8-bit start, sigmoid and
#: tanh (indices into :data:`ACT_CHOICES`).
FIT_POINTS = (
    ("start", {}, 0, 0), ("input 4", {"input": 4}, 0, 0), ("gate 4", {"gate": 4}, 0, 0),
    ("candidate 4", {"candidate": 4}, 0, 0), ("cell_act 4", {"cell_act": 4}, 0, 0), ("hidden 4", {"hidden": 4}, 0, 0),
    ("bias 8", {"bias": 8}, 0, 0), ("weight 4, pre 10, cell 10, pwl", {"weight": 4, "pre": 10, "cell": 10}, 3, 3),
)
#: A cell's points synthesized only to check the cost model.
HELD_OUT = (
    ("held-out A", {"weight": 4, "input": 6, "bias": 10, "pre": 10, "gate": 5, "candidate": 6, "cell": 12,
                    "cell_act": 5, "hidden": 6}, 3, 1),
    ("held-out B", {"weight": 3, "input": 5, "bias": 8, "pre": 8, "gate": 4, "candidate": 4, "cell": 10,
                    "cell_act": 4, "hidden": 5}, 4, 3),
)
#: A network's fit points (every layer changed alike; the study's points vary the widths layer by layer, so
#: these vary what the study does not: the activation methods, the bias and the pre-activation).
NET_FIT_POINTS = (
    ("start", {}, 0, 0), ("sigmoid lut_interp/16", {}, 1, 0), ("tanh lut_interp/16", {}, 0, 1),
    ("bias 8, pre 10, gate 5, candidate 5", {"bias": 8, "pre": 10, "gate": 5, "candidate": 5}, 0, 0),
)
#: A network's held-out points: none (a network synthesizes in many minutes); the searched config and the
#: study's points of the comparison, synthesized on the current gateware, check the model.
NET_HELD_OUT = ()
#: A network's search rounds at most (each one more synthesis of the network).
NET_ROUNDS = 2
#: The activation methods (indices into :data:`ACT_CHOICES`) a network's search may pick: the two interpolated
#: tables, each fitted by one synthesized point (a network synthesizes in minutes, so each method is a point).
NET_ACT_CHOICES = (0, 1)
#: ``[bench]`` bound of a written cell config (max-abs, RMS of h against float): h's whole range, 2 (h in [-1, 1]).
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


def base(key: str) -> str:
    """The tensor or function of a search key: ``l1.weight`` -> ``weight``, ``sigmoid`` -> ``sigmoid``."""
    return key.rsplit(".", 1)[-1]


def start_widths() -> dict:
    """The search's start: the quantization study's 8-bit point."""
    return point_widths(8, 8)


def config_at(model, ranges, widths: dict, sig: int, tanh: int, name: str) -> Config:
    """A cell's config at ``widths`` with sigmoid and tanh ``ACT_CHOICES[fn][index]``."""
    return make_config(model, ranges, widths, name, ACT_CHOICES["sigmoid"][sig], ACT_CHOICES["tanh"][tanh])


# ---- what the search varies -----------------------------------------------------------------------------------

class CellSubject:
    """A one-cell model: a width per tensor (``keys``), one sigmoid and one tanh (``slots``), the float
    head, the cell's gateware.

    Parameters
    ----------
    model : study.models.TrainedModel
    ranges : dict, optional
        Calibrated ranges (default: observed on the training set).
    """

    fit_points, held_out, act_choices = FIT_POINTS, HELD_OUT, tuple(range(len(ACT_CHOICES["sigmoid"])))
    rounds = ROUNDS
    head_text = "the float head on the last hidden state"

    def __init__(self, model, ranges=None):
        self.model = model
        self.ranges = calibrate.observe_ranges(model.params, model.datasets()[0].seqs) if ranges is None else ranges
        self.tensors = cell_tensors(model.params)
        self.keys = self.tensors
        self.slots = ("sigmoid", "tanh")
        self.fixed = {}

    def start(self) -> tuple:
        """``(widths, acts)``: the 8-bit point, the first method of every function."""
        return {t: w for t, w in start_widths().items() if t in self.keys}, dict.fromkeys(self.slots, 0)

    def point(self, change: dict, sig: int, tanh: int) -> tuple:
        """``(widths, acts)`` of a fit or held-out point: ``change`` by tensor (every layer) or by key."""
        widths, _ = self.start()
        return ({k: change.get(k, change.get(base(k), w)) for k, w in widths.items()},
                {s: sig if base(s) == "sigmoid" else tanh for s in self.slots})

    def config(self, widths: dict, acts: dict, name: str) -> Config:
        return config_at(self.model, self.ranges, {**start_widths(), **widths}, acts["sigmoid"], acts["tanh"], name)

    def state_of(self, cfg: Config) -> tuple:
        """``(widths, acts)`` of a config, acts by :func:`act_key`."""
        return ({t: cfg.fmt(t).width for t in self.keys},
                {"sigmoid": act_key(cfg.sigmoid), "tanh": act_key(cfg.tanh)})

    def predict(self, cfg: Config, seqs) -> tuple:
        """``(classes, saturations)``: a cell's saturations are not counted (its bench checks its status
        bits against the golden model's), so 0."""
        return golden_predict(self.model.params, self.model.head_params, cfg, seqs)[1], 0

    def synthesized(self, cfg: Config, src: str) -> dict:
        """:func:`study.run.hardware_cost` on :data:`TARGET` (cached)."""
        return study_run.hardware_cost(cfg, TARGET, src)

    def describe(self, cfg: Config) -> str:
        return " ".join(f"{t}={f}" for t, f in cfg.formats.items() if f is not None) + \
            f" sigmoid={act_key(cfg.sigmoid)} tanh={act_key(cfg.tanh)}"

    def toml(self, cfg: Config, path: Path, header: list) -> str:
        bench = dict(zip(("float_max_abs", "float_rms"), BENCH_BOUND))
        return config_toml(cfg.replace(name=f"{self.model.name}_mixed", **bench), path, header)

    def load(self, path: Path):
        return Config.load(path)


#: Saturation counts of :func:`study.netpoint.golden_run` that set no status bit of the network gateware.
NOT_STATUS = ("weight", "bias", "input", "layers", "head")


class NetworkSubject(CellSubject):
    """A network: a width per layer and tensor (``l<layer>.<tensor>``; no input beyond layer 0), a sigmoid
    and a tanh per layer, the head at the quantization study's 8-bit point, the network's gateware."""

    fit_points, held_out, act_choices = NET_FIT_POINTS, NET_HELD_OUT, NET_ACT_CHOICES
    rounds = NET_ROUNDS
    head_text = "the network's quantized head (weights 8 bits, bias and logits 16), as the gateware computes it"

    def __init__(self, model, ranges=None):
        self.model = model
        net = model.params
        if any(net.directions(i) != 1 for i in range(net.num_layers)) or net.head is None:
            raise MixedError(f"model {model.name!r}: the search takes networks of one-direction layers with a head")
        self.ranges = calibrate.observe_network_ranges(net, model.datasets()[0].seqs) if ranges is None else ranges
        self.tensors = cell_tensors(net.layers[0][0])
        self.keys = tuple(f"l{i}.{t}" for i in range(net.num_layers) for t in cell_tensors(net.layers[i][0])
                          if i == 0 or t != "input")
        self.slots = tuple(f"l{i}.{fn}" for i in range(net.num_layers) for fn in ACT_CHOICES)
        settings = {**sweep_mod.BUILTIN_DEFAULTS, "uniform": None}
        self.head_formats = netpoint.head_formats(self.ranges[1], settings, 1.0)
        self.fixed = {f"head.{t}": f.width for t, f in self.head_formats.items()}
        self.max_steps = model.longest()

    def start(self) -> tuple:
        w = start_widths()
        return {k: w[base(k)] for k in self.keys}, dict.fromkeys(self.slots, 0)

    def config(self, widths: dict, acts: dict, name: str) -> NetworkConfig:
        net, d = self.model.params, sweep_mod.BUILTIN_DEFAULTS
        layers = []
        for i in range(net.num_layers):
            own = {base(k): w for k, w in widths.items() if k.startswith(f"l{i}.")}
            layers.append((calibrate.choose_formats(self.ranges[0][i], own),
                           {**d, **{fn: ACT_CHOICES[fn][acts[f"l{i}.{fn}"]] for fn in ACT_CHOICES}}))
        raw = netpoint.network_tables(self.model, layers, (self.head_formats, d), name, self.max_steps)
        raw["params"] = str(self.model.path.with_name(self.model.meta["params"]))
        return NetworkConfig.from_toml(raw)

    def state_of(self, ncfg: NetworkConfig) -> tuple:
        return ({k: ncfg.layers[int(k[1:k.index(".")])].fmt(base(k)).width for k in self.keys},
                {s: act_key(getattr(ncfg.layers[int(s[1:s.index(".")])], base(s))) for s in self.slots})

    def predict(self, ncfg: NetworkConfig, seqs) -> tuple:
        """``(classes, saturations)``: saturations at the layers' requantization points, which set the
        network's status bits (the network bench, ``sim/netbench``, fails on any)."""
        _, _, logits, sat = netpoint.golden_run(self.model.params, ncfg, seqs, data.by_length(seqs))
        return logits.argmax(1), sum(v for k, v in sat.items() if k not in NOT_STATUS)

    def synthesized(self, ncfg: NetworkConfig, src: str) -> dict:
        """:func:`study.run.network_cost` on :data:`TARGET` (cached)."""
        return study_run.network_cost(ncfg, self.model.params, TARGET, src)

    def describe(self, ncfg: NetworkConfig) -> str:
        return " / ".join(f"l{i}: " + CellSubject.describe(self, c) for i, c in enumerate(ncfg.layers))

    def toml(self, ncfg: NetworkConfig, path: Path, header: list) -> str:
        return network_toml(ncfg, self.model.params, path, header)

    def load(self, path: Path):
        return NetworkConfig.load(path)


def subject_of(model) -> CellSubject:
    """The :class:`NetworkSubject` of a network model, else the :class:`CellSubject`."""
    return NetworkSubject(model) if model.network else CellSubject(model)


# ---- the cost model --------------------------------------------------------------------------------------------

class CostModel:
    """LUTs ~ ``c0 + sum_t a_t * width_t + s[sigmoid method] + t[tanh method]`` (+ an offset for the committed
    study's older netlists), least squares; a network's widths and methods are summed over its layers; the
    first method of each function is the reference (0).  ``state_of`` maps a config to ``(widths, acts)``."""

    def __init__(self, tensors: tuple, state_of=None):
        self.tensors = tuple(tensors)
        self.state_of = state_of
        self.names = (["constant", "older netlists"] + [f"width {t}" for t in self.tensors]
                      + [f"sigmoid {k}" for k in ACT_KEYS["sigmoid"][1:]] + [f"tanh {k}" for k in ACT_KEYS["tanh"][1:]])
        self.coef = None

    def features(self, widths: dict, acts: dict, older: bool = False) -> np.ndarray:
        """Features of ``widths`` (``{key: bits}``) and ``acts`` (``{slot: act_key}``), keys per :func:`base`."""
        w = [float(sum(b for k, b in widths.items() if base(k) == t)) for t in self.tensors]
        a = [float(sum(base(s) == fn and v == key for s, v in acts.items()))
             for fn in ACT_KEYS for key in ACT_KEYS[fn][1:]]
        return np.array([1.0, float(older)] + w + a)

    def features_of(self, cfg) -> np.ndarray:
        return self.features(*self.state_of(cfg))

    def fit(self, X, y) -> "CostModel":
        self.X, self.y = [np.asarray(x) for x in X], [float(v) for v in y]
        A, b = np.asarray(self.X), np.asarray(self.y)
        ridge = 1e-3 * np.eye(A.shape[1])  # a feature no point varies gets 0, not an arbitrary value
        self.coef = np.linalg.solve(A.T @ A + ridge, A.T @ b)
        return self

    def refit_with(self, cfg, luts: int) -> "CostModel":
        """A copy fitted to this model's points plus ``cfg`` synthesized to ``luts``."""
        cm = CostModel(self.tensors, self.state_of)
        cm.n_study = getattr(self, "n_study", 0)
        return cm.fit(self.X + [self.features_of(cfg)], self.y + [luts])

    def predict(self, cfg) -> float:
        return float(self.features_of(cfg) @ self.coef)

    def predict_state(self, widths: dict, acts: dict) -> float:
        """The prediction for a search state: ``widths`` and ``acts`` as indices into :data:`ACT_CHOICES`."""
        return float(self.features(widths, {s: ACT_KEYS[base(s)][i] for s, i in acts.items()}) @ self.coef)


def study_for(model_name: str):
    """The committed quantization study of ``model_name`` (the default study first, then the others of
    ``configs/studies/`` by name) that has results, or None."""
    for path in [study_run.DEFAULT_STUDY, *sorted(STUDIES.glob("*.toml"))]:
        sw = sweep_mod.load(path)
        if sw.model == model_name and (study_run.REPORTS / sw.name / "results.csv").is_file():
            return sw
    return None


def results_path(sw) -> Path:
    return study_run.REPORTS / sw.name / "results.csv"


def study_rows(subject: CellSubject, path: Path) -> list:
    """``(widths, acts, luts, label)`` of the study's synthesized points the search could reach: calibrated
    per-tensor formats, the modes the search keeps (half_even, saturate), activations in
    :data:`ACT_CHOICES` and the subject's fixed formats (a network's head)."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if (r["hw_status"] != "ok" or r["uniform"] or (r["rounding"], r["overflow"]) != ("half_even", "saturate")
                    or r["sigmoid"] not in ACT_KEYS["sigmoid"] or r["tanh"] not in ACT_KEYS["tanh"]):
                continue
            fm = {k: Fmt.parse(v).width for k, v in (kv.split("=") for kv in r["formats"].split())}
            if any(fm.get(k) != w for k, w in subject.fixed.items()):
                continue
            out.append(({k: fm[k] for k in subject.keys}, {s: r[base(s)] for s in subject.slots}, int(r["luts"]),
                        r["label"]))
    return out


def fit_cost_model(subject: CellSubject, src: str, study_path: Path | None, log=print) -> tuple:
    """``(cost model, rows)``: the model fitted to the subject's fit points (synthesized) and the study's
    points; rows ``{label, role, luts, predicted, ffs, dsps, brams}`` for the fit and the held-out points."""
    cm = CostModel(subject.tensors, subject.state_of)
    X, y, rows = [], [], []
    for role, points in (("fit", subject.fit_points), ("held out", subject.held_out)):
        for label, change, s, t in points:
            cfg = subject.config(*subject.point(change, s, t), "cost")
            log(f"[mixed] synthesis of {label!r} ({role}) ...")
            hw = subject.synthesized(cfg, src)
            if hw.get("hw_status") != "ok":
                raise MixedError(f"synthesis of cost-model point {label!r} failed: {hw.get('hw_reason')}")
            rows.append({"label": label, "role": role, "cfg": cfg, **{k: hw[k] for k in ("luts", "ffs", "dsps", "brams")}})
            if role == "fit":
                X.append(cm.features_of(cfg))
                y.append(hw["luts"])
    n_study = 0
    for widths, acts, luts, _ in (study_rows(subject, study_path) if study_path is not None else []):
        X.append(cm.features(widths, acts, older=True))
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

    def __init__(self, subject: CellSubject):
        self.subject = subject
        model = subject.model
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

    def evaluate(self, cfg, halves=("search", "report")) -> dict:
        """Accuracies of ``cfg`` (golden model), running only the sequences ``halves`` need."""
        idx = np.sort(np.concatenate([self.search_idx if h == "search" else self.report_idx for h in halves]))
        pred = np.full(len(self.test.seqs), -1)
        pred[idx], saturated = self.subject.predict(cfg, [self.test.seqs[i] for i in idx])
        s = self.scores(pred)
        return {h: s[h] for h in halves} | ({"test": s["test"]} if len(halves) == 2 else {}) | {"saturated": saturated}


# ---- the search --------------------------------------------------------------------------------------------------

def search(subject: CellSubject, halves: Halves, cm: CostModel, tolerance_pp: float, log=print) -> tuple:
    """Greedy search (see the module docstring); returns ``(config, steps)`` where each step is
    ``{move, accepted, search accuracy, predicted LUTs}``."""
    floor = halves.float["search"] - tolerance_pp / 100
    widths, act = subject.start()
    name = f"{subject.model.name}_mixed"
    cur = subject.config(widths, act, name)
    ev = halves.evaluate(cur, ("search",))
    acc = ev["search"]
    steps = [{"move": "start (8-bit point)", "accepted": acc >= floor, "search": acc, "predicted": cm.predict(cur),
              "saturated": ev.get("saturated", 0)}]
    log(f"[mixed] start: search-half accuracy {acc:.4f} (floor {floor:.4f}), predicted {cm.predict(cur):.0f} LUTs")
    failed = set()
    while True:
        moves = []
        for k in subject.keys:
            if k not in failed and widths[k] > MIN_BITS:
                moves.append((k, {**widths, k: widths[k] - 1}, act, f"{k} {widths[k]} -> {widths[k] - 1} bits"))
        for s in subject.slots:
            keys = ACT_KEYS[base(s)]
            for i in subject.act_choices:
                if i != act[s] and (s, i) not in failed:
                    moves.append(((s, i), widths, {**act, s: i}, f"{s} {keys[act[s]]} -> {keys[i]}"))
        pred = cm.predict(cur)
        cands = []
        for key, w, a, text in moves:
            saving = pred - cm.predict_state(w, a)
            if saving > 0:
                cands.append((saving, key, w, a, text))
        cands.sort(key=lambda m: -m[0])
        took = False
        for saving, key, w, a, text in cands:
            try:
                c = subject.config(w, a, name)
            except (ConfigError, calibrate.CalibrationError, ValueError):
                failed.add(key)
                continue
            ev = halves.evaluate(c, ("search",))
            acc, sat = ev["search"], ev.get("saturated", 0)
            ok = acc >= floor and not sat
            steps.append({"move": text, "accepted": ok, "search": acc, "predicted": cm.predict(c), "saturated": sat})
            log(f"[mixed] {text}: search-half accuracy {acc:.4f}, {sat} saturations, predicted saving {saving:.0f} LUTs -> "
                f"{'taken' if ok else 'refused'}")
            if ok:
                widths, act, cur, took = w, a, c, True
                break
            failed.add(key)
        if not took:
            return cur, steps


# ---- the points of the study ------------------------------------------------------------------------------------

def point_role(row: dict) -> str:
    """``uniform`` (one format for every tensor), ``hand-picked`` (the same settings in every layer) or
    ``hand-picked per layer`` (a point with a ``layers`` table) of a study's results row."""
    return "uniform" if row["uniform"] else "hand-picked per layer" if row.get("layers") else "hand-picked"


def study_best(tolerance_pp: float, path: Path) -> dict:
    """``{role: index}``: the cheapest point of each :func:`point_role` of the committed study at ``path``
    within ``tolerance_pp`` of float on the whole test set (its own LUT counts; float is its 16-bit point)."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["hw_status"] == "ok"]
    fl = max(float(r["accuracy"]) for r in rows if r["label"].startswith("16-bit"))
    ok = [r for r in rows if float(r["accuracy"]) >= fl - tolerance_pp / 100 - 1e-12]
    out = {}
    for role in ("uniform", "hand-picked", "hand-picked per layer"):
        sel = [r for r in ok if point_role(r) == role]
        if sel:
            out[role] = int(min(sel, key=lambda r: int(r["luts"]))["index"])
    return out


def study_configs(sw, tolerance_pp: float) -> list:
    """``(role, label, config, study's LUTs)`` of :func:`study_best`'s points, built as the study builds them
    (:func:`study.run.prepare`, :func:`study.run.point_config`)."""
    ctx = study_run.prepare(sw, synth=False, log=lambda *a: None)
    rows = {int(r["index"]): r for r in csv.DictReader(open(results_path(sw), newline=""))}
    return [(role, sw.points[k].label, study_run.point_config(ctx, sw.points[k], k), rows[k]["luts"])
            for role, k in study_best(tolerance_pp, results_path(sw)).items()]


# ---- the config files ---------------------------------------------------------------------------------------------

def _act_line(fn: str, spec) -> str:
    d = spec.to_dict()
    return f"{fn:<7} = " + (f'{{ method = "{d["method"]}", size = {d["size"]}, range = {d["range"]} }}'
                            if "size" in d else f'"{d["method"]}"')


def _format_lines(formats: dict) -> list:
    return [f'{t:<9} = "{f}"{" " * (7 - len(str(f)))}# {f.ap}' for t, f in formats.items() if f is not None]


def config_toml(cfg: Config, path: Path, header: list) -> str:
    """The TOML text of ``cfg`` for a file at ``path`` (the parameter path relative to it)."""
    rel = os.path.relpath(cfg.params, path.parent)
    opts = [f'{k} = "{v}"' for k, v in cfg.options.items()]
    m = cfg.mode("pre")
    bench = [] if cfg.float_max_abs is None else [
        "", "[bench]", "# The cocotb bench's bound on h against float: the range of h only, as for configs/fsdd_lstm32.toml",
        "# (the bench's real check is bit-exactness against the golden model; the accuracy is in the report).",
        f"float_max_abs = {cfg.float_max_abs}", f"float_rms = {cfg.float_rms}"]
    return "\n".join([*(f"# {h}" for h in header), f'name = "{cfg.name}"', f'params = "{rel}"', "", "[cell]",
                      f'kind = "{cfg.kind}"', *opts, f"input_size = {cfg.input_size}",
                      f"hidden_size = {cfg.hidden_size}", "", "[formats]", *_format_lines(cfg.formats), "", "[modes]",
                      f'rounding = "{m.rounding}"', f'overflow = "{m.overflow}"', "", "[activations]",
                      *(_act_line(fn, getattr(cfg, fn)) for fn in ACT_CHOICES), "",
                      "[hardware]", f"lanes = {cfg.lanes}", f"beat = {cfg.beat}", *bench, ""])


def network_toml(ncfg: NetworkConfig, net, path: Path, header: list) -> str:
    """The TOML text of a network config of the trained ``net`` (one-direction layers, a head) for a file at
    ``path``: one ``[[layer]]`` with its own formats, modes, activations and lanes per layer (a layer's
    input beyond the first is derived from the layer below)."""
    rel = os.path.relpath(ncfg.params, path.parent)
    first = ncfg.layers[0]
    opts = [f'{k} = "{v}"' for k, v in first.options.items()]
    lines = [*(f"# {h}" for h in header), f'name = "{ncfg.name}"', f'params = "{rel}"', "", "[network]",
             f"layers = {ncfg.num_layers}", f"max_steps = {ncfg.max_steps}", "", "[cell]", f'kind = "{first.kind}"',
             *opts, f"input_size = {first.input_size}", f"hidden_size = {first.hidden_size}"]
    for i, c in enumerate(ncfg.layers):
        m = c.mode("pre")
        fm = {t: f for t, f in c.formats.items() if i == 0 or t != "input"}
        lines += ["", "[[layer]]" + ("" if i == 0 else f"             # layer {i}: input {c.fmt('input')} "
                                     f"(layer {i - 1}'s hidden, derived)"),
                  "[layer.formats]", *_format_lines(fm), "[layer.modes]", f'rounding = "{m.rounding}"',
                  f'overflow = "{m.overflow}"', "[layer.activations]",
                  *(_act_line(fn, getattr(c, fn)) for fn in ACT_CHOICES), "[layer.hardware]", f"lanes = {c.lanes}",
                  f"beat = {c.beat}"]
    h = ncfg.head
    lines += ["", "[head]", f"classes = {h.classes}", "[head.formats]", *_format_lines(h.formats),
              "[head.modes]", f'rounding = "{h.mode.rounding}"', f'overflow = "{h.mode.overflow}"', ""]
    return "\n".join(lines)


# ---- the report --------------------------------------------------------------------------------------------------

def write_report(res: dict, out: Path) -> Path:
    """README.md, cost_model.csv, search.csv and cost_model.png into ``out``."""
    from .report import _pct, _table  # noqa: PLC0415
    out.mkdir(parents=True, exist_ok=True)
    cm, cost_rows, fl, subject = res["cost_model"], res["cost_rows"], res["float"], res["subject"]
    _fmt_row = subject.describe
    with open(out / "cost_model.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "role", "luts", "predicted", "error_pct", "ffs", "dsps", "brams", "formats"])
        for r in cost_rows:
            w.writerow([r["label"], r["role"], r["luts"], round(r["predicted"], 1),
                        round(100 * (r["predicted"] - r["luts"]) / r["luts"], 2), r["ffs"], r["dsps"], r["brams"],
                        _fmt_row(r["cfg"])])
    with open(out / "search.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["round", "step", "move", "accepted", "search_accuracy", "saturations", "predicted_luts"])
        for r in res["rounds"]:
            for k, s in enumerate(r["steps"]):
                w.writerow([r["round"], k, s["move"], int(s["accepted"]), s["search"], s["saturated"],
                            round(s["predicted"], 1)])
    _plot(cost_rows, out / "cost_model.png")
    held = [r for r in cost_rows if r["role"] != "fit"]
    err = [abs(r["predicted"] - r["luts"]) / r["luts"] for r in held]
    cmp_rows = res["compare"]
    lines = [f"# Automatic mixed precision: `{res['model']}`", "",
             f"The cheapest gateware (ECP5 LUTs) whose accuracy stays within {res['tolerance']:g} pp of float, found by "
             "`study.mixed` (`make mixed`; the manual is `docs/qat.md`). Every accuracy is the golden model's, i.e. "
             f"the gateware's, with {subject.head_text}; post-training quantization of the "
             "trained float model (no retraining).", "",
             f"- Test set split (stratified, seed {SPLIT_SEED}) into a **search half** ({len(res['halves'].search_idx)} "
             f"sequences), the only data the search sees, and a **report half** ({len(res['halves'].report_idx)}), "
             "which it never sees. Float accuracy: search half " + _pct(fl["search"]) + ", report half "
             + _pct(fl["report"]) + ", whole test set " + _pct(fl["test"]) + ".",
             f"- Accepted: search-half accuracy >= {_pct(fl['search'] - res['tolerance'] / 100)} (float there minus "
             f"{res['tolerance']:g} pp).",
             f"- Search: greedy from the 8-bit point of the study `{res['study']}`; each step tries one tensor "
             f"{'of one layer ' if subject.model.network else ''}one bit narrower, or "
             f"sigmoid/tanh {'of one layer ' if subject.model.network else ''}another of "
             + ", ".join(ACT_KEYS["sigmoid"][i] for i in subject.act_choices) + ", in order of "
             "predicted saving, takes the first within the tolerance"
             f"{' and without a saturation in the layers (a status bit, which fails the network bench)' if subject.model.network else ''}"
             "; a refused move is not tried again. Modes stay "
             "round half to even and saturation, 8 lanes, integer bits calibrated on the training set.",
             f"- Rounds: the searched config is synthesized; when the cost model misses it by more than "
             f"{100 * REFIT_WITHIN:g} %, it joins the fit and the search runs again (at most {subject.rounds} "
             f"round{'s' if subject.rounds > 1 else ''}). The "
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
              *([] if res["study"] == "none" or any("best uniform" in c["label"] for c in cmp_rows) else [
                  f"No uniform point of the study (one `ap_fixed` format for every tensor) is within "
                  f"{res['tolerance']:g} pp of float, so the comparison is with its hand-picked points: *hand-picked* "
                  "gives every layer the same widths, *hand-picked per layer* changes one layer's.", ""]),
              "## Cost model", "",
              f"LUTs linear in every tensor's width plus one term per sigmoid and tanh method (against lut_interp/64)"
              f"{', each summed over the layers' if subject.model.network else ''}, "
              f"fitted by least squares to the {sum(r['role'] == 'fit' for r in cost_rows)} points below marked "
              f"*fit* (synthesized here) and the {cm.n_study} calibrated, half-even, saturating points of the committed "
              f"study (`{res['study_results']}`, an offset term for their older netlists). "
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
    lines += _table(["step", "move", "search half", "saturations", "predicted LUTs", "taken"],
                    [[k, s["move"], _pct(s["search"]), s["saturated"], f"{s['predicted']:.0f}",
                      "yes" if s["accepted"] else "no"] for k, s in enumerate(steps)])
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
    subject = subject_of(m)
    src = source_digest()
    sw = study_for(m.name)
    cm, cost_rows = fit_cost_model(subject, src, None if sw is None else results_path(sw), log)
    halves = Halves(subject)
    log(f"[mixed] float accuracy: search half {halves.float['search']:.4f}, report half {halves.float['report']:.4f}")
    rounds, first_cm = [], cm
    for k in range(1, subject.rounds + 1):
        cfg, steps = search(subject, halves, cm, tolerance_pp, log)
        log(f"[mixed] round {k}: synthesis of the searched config ...")
        hw = subject.synthesized(cfg, src)
        if hw.get("hw_status") != "ok":
            raise MixedError(f"synthesis of the searched config failed: {hw.get('hw_reason')}")
        pred = cm.predict(cfg)
        rounds.append({"round": k, "cfg": cfg, "steps": steps, "hw": hw, "predicted": pred,
                       "search": halves.evaluate(cfg, ("search",))["search"]})
        cost_rows.append({"label": f"searched, round {k}", "role": "checked", "cfg": cfg, "predicted": pred,
                          **{f: hw[f] for f in ("luts", "ffs", "dsps", "brams")}})
        log(f"[mixed] round {k}: {hw['luts']} LUTs, predicted {pred:.0f}")
        if abs(pred - hw["luts"]) <= REFIT_WITHIN * hw["luts"] or k == subject.rounds:
            break
        cm = cm.refit_with(cfg, hw["luts"])
    chosen = min(rounds, key=lambda r: (r["hw"]["luts"], r["round"]))
    best = chosen["cfg"]
    compare = []
    points = [("start (8-bit point)", subject.config(*subject.start(), "start"), None)]
    if sw is not None:
        for role, label, cfg, luts in study_configs(sw, tolerance_pp):
            points.append((f"study's best {role}: {label}", cfg, luts))
    points.append((f"mixed precision (searched, round {chosen['round']})", best, None))
    for label, cfg, study_luts in points:
        log(f"[mixed] synthesis and evaluation of {label!r} ...")
        hw = subject.synthesized(cfg, src)
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
              f"(float {100 * halves.float['test']:.2f} %); {report_dir(m.name).relative_to(ROOT)}/README.md has the "
              "comparison.", f"`make sim CONFIG={_rel(path)}` runs it through the gateware."]
    path.write_text(subject.toml(best, path, header))
    subject.load(path)  # what make sim will read
    return {"model": m.name, "subject": subject, "tolerance": tolerance_pp, "float": halves.float, "halves": halves,
            "study": "none" if sw is None else sw.name,
            "study_results": "none" if sw is None else _rel(results_path(sw)),
            "cost_model": first_cm, "final_cost_model": cm, "cost_rows": cost_rows, "rounds": rounds,
            "chosen": chosen["round"], "compare": compare, "config_path": _rel(path),
            "evaluations": sum(len(r["steps"]) for r in rounds), "seconds": time.perf_counter() - t0}


def report_dir(model_name: str) -> Path:
    """Where the report of ``model_name`` goes by default: ``reports/mixed/`` for :data:`DEFAULT_MODEL`,
    ``reports/mixed/<model>/`` for any other."""
    return REPORTS if model_name == DEFAULT_MODEL else REPORTS / model_name


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
    ap.add_argument("--model", default=DEFAULT_MODEL, help=f"trained model, a cell or a network of one-direction "
                    f"layers with a head (default {DEFAULT_MODEL})")
    ap.add_argument("--tolerance", type=_tolerance, default=0.5,
                    help="accepted accuracy loss against float on the search half, in pp (default 0.5)")
    ap.add_argument("--out", help=f"report folder (default reports/mixed for {DEFAULT_MODEL}, "
                    "reports/mixed/<model> for another)")
    ap.add_argument("--config-out", default=str(CONFIGS), help="folder of the searched config (default configs/mixed)")
    args = ap.parse_args(argv)
    try:
        res = run(args.model, args.tolerance, Path(args.config_out))
    except (MixedError, models.ModelError, ConfigError, calibrate.CalibrationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = write_report(res, Path(args.out) if args.out else report_dir(res["model"]))
    print(f"[mixed] wrote {res['config_path']} and {_rel(out / 'README.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
