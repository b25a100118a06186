"""Sweep files: which points a quantization study evaluates.

A sweep file is TOML::

    name = "default"              # optional; defaults to the file name
    model = "fsdd_lstm32"         # a trained model in models/ (make train), or a model file (below)
    data = "my_data.npz"          # optional: outside data (study.data.load_file) instead of the model's task
    normalise = false             # an ONNX model: fit a per-feature normalisation on data's training split
    description = "..."           # optional, printed in the report
    target = "ecp5"               # synthesis target for the cost columns: ecp5 | ice40 | xilinx | none
    head = "float"                # classifier head: float (default) | quantized
    margin = 1.0                  # calibration headroom factor (>= 1.0)
    test_subset = 0               # evaluate only the first N test sequences (0 = all)
    cost = "luts"                 # cost axis of the Pareto front: luts | ffs | dsps | brams

    [defaults]                    # every point starts from these (all keys optional)
    weight_bits = 8
    act_bits = 8                  # gate, candidate, cell_act, hidden (and input, unless input_bits)
    cell_bits = 16
    acc_bits = 16                 # the requantized accumulator (pre-activation); the sum itself is exact
    bias_bits = 16
    sigmoid = { method = "lut_interp", size = 64, range = 8.0 }
    tanh = { method = "lut_interp", size = 64, range = 4.0 }

    [[grid]]                      # every combination of the list-valued keys
    label = "bits"
    weight_bits = [4, 6, 8]
    act_bits = [6, 8]

    [[point]]                     # one point
    label = "uniform ap_fixed<8,3>"
    uniform = "ap_fixed<8,3>"     # one format for every tensor (overrides the *_bits keys)

    [[point]]                     # a network model: the second layer at 4 bits
    label = "layer 1 at 4 bits"
    layers = [{}, { weight_bits = 4, act_bits = 4 }]

``model`` is a name in ``models/`` or a file, relative to the sweep file: a
kit model's ``.json`` / ``.npz`` (parameters, head and normalisation, as
``make train`` writes them) or an ``.onnx`` graph with its recurrent layers
and a dense head (:func:`model.from_onnx`), which needs ``data``.  ``data``
(relative to the sweep file) replaces the model's own task and split.

Point keys (:data:`POINT_KEYS`): the widths above plus ``input_bits``,
``head_bits`` (quantized head), ``rounding`` and ``overflow`` (every
requantization point), ``input_rounding`` and ``input_overflow`` (how the
float inputs are quantized into the ``input`` format; default ``half_even``
and ``saturate``), ``sigmoid``, ``tanh``, ``lanes``,
``uniform``, ``layers`` and ``label``.  Formats are derived per point: each tensor gets
its width from these keys and its integer bits from the calibration
(:mod:`study.calibrate`), unless ``uniform`` fixes one format for all.
``layers`` holds one table per layer of a network model, in order, with the
point keys (:data:`LAYER_KEYS`) that layer takes differently from the point; in
a ``[[grid]]`` a list of such arrays is an axis.
"""
from __future__ import annotations

import math
import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from model.fixedpoint import OVERFLOW_MODES, ROUNDING_MODES, Fmt, FormatError

TOP_KEYS = {"name", "model", "data", "normalise", "description", "target", "head", "margin", "test_subset",
            "cost", "defaults", "grid", "point"}
#: What a ``model`` file may be (anything else is a name in ``models/``).
MODEL_SUFFIXES = (".json", ".npz", ".onnx")
TARGETS = ("ecp5", "ice40", "xilinx", "none")
HEADS = ("float", "quantized")
COSTS = ("luts", "ffs", "dsps", "brams")
BITS_KEYS = ("weight_bits", "bias_bits", "input_bits", "act_bits", "cell_bits", "acc_bits", "head_bits")
POINT_KEYS = BITS_KEYS + ("rounding", "overflow", "input_rounding", "input_overflow", "sigmoid", "tanh", "lanes",
                          "uniform", "layers", "label")
#: Keys a table of ``layers`` may give for its layer (the input modes belong to the network's input).
LAYER_KEYS = tuple(k for k in POINT_KEYS if k not in ("head_bits", "layers", "label", "input_rounding",
                                                      "input_overflow"))
MIN_BITS, MAX_BITS = 2, 32
#: Values of every point key unless the file's [defaults] says otherwise.
BUILTIN_DEFAULTS = {
    "weight_bits": 8, "bias_bits": 16, "input_bits": None, "act_bits": 8, "cell_bits": 16, "acc_bits": 16,
    "head_bits": 8, "rounding": "half_even", "overflow": "saturate",
    "input_rounding": "half_even", "input_overflow": "saturate",
    "sigmoid": {"method": "lut_interp", "size": 64, "range": 8.0},
    "tanh": {"method": "lut_interp", "size": 64, "range": 4.0},
    "lanes": 8, "uniform": None, "layers": (),
}


class SweepError(ValueError):
    """A sweep file that cannot be used; the message names the file, the place, the key and what is accepted."""


@dataclass
class Point:
    """One point of a sweep: ``label``, ``group`` (the [[grid]]/[[point]] it came from) and its settings."""

    label: str
    group: str
    settings: dict
    axes: tuple = ()   # the keys a [[grid]] varies; () for a [[point]]

    def layer_settings(self, layer: int) -> dict:
        """The settings of layer ``layer``: the point's, with that layer's ``layers`` table over them."""
        over = self.settings["layers"][layer] if layer < len(self.settings["layers"]) else {}
        return {**self.settings, **over}

    def widths(self, layer: int = 0) -> dict:
        """``{tensor: bits}`` for every tensor of the contract in layer ``layer`` (``uniform`` points have none)."""
        s = self.layer_settings(layer)
        act = s["act_bits"]
        return {"input": s["input_bits"] or act, "weight": s["weight_bits"], "bias": s["bias_bits"],
                "pre": s["acc_bits"], "gate": act, "candidate": act, "cell": s["cell_bits"], "cell_act": act,
                "hidden": act}


@dataclass
class Sweep:
    name: str
    path: Path
    model: str
    description: str = ""
    target: str = "ecp5"
    head: str = "float"
    margin: float = 1.0
    test_subset: int = 0
    cost: str = "luts"
    points: list = field(default_factory=list)
    data: str | None = None     # absolute path of a data file, or None (the model's own task and split)
    normalise: bool = False


def load(path) -> Sweep:
    """Parse and check a sweep file; raise :class:`SweepError` naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path}: not valid TOML: {e}") from None
    try:
        return parse(raw, path)
    except SweepError as e:
        raise SweepError(f"{path}: {e}") from None


def parse(raw: dict, path=Path("sweep.toml")) -> Sweep:
    """A :class:`Sweep` from the TOML tables ``raw`` (see the module docstring)."""
    path = Path(path)
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise SweepError(f"unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(TOP_KEYS))}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise SweepError(f"name must be a non-empty string without spaces or slashes, not {name!r}")
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise SweepError(f"model is required: the name of a trained model in models/ (e.g. 'fsdd_lstm32') or a "
                         f"model file ({', '.join(MODEL_SUFFIXES)}), not {model!r}")
    if Path(model).suffix in MODEL_SUFFIXES:
        model = _file(path, "model", model, MODEL_SUFFIXES)
    data = raw.get("data")
    if data is not None:
        data = _file(path, "data", data, (".npz",))
    normalise = raw.get("normalise", False)
    if not isinstance(normalise, bool):
        raise SweepError(f"normalise must be true or false, not {normalise!r}")
    desc = raw.get("description", "")
    if not isinstance(desc, str):
        raise SweepError(f"description must be a string, not {desc!r}")
    target = _choice(raw, "target", TARGETS, "ecp5")
    head = _choice(raw, "head", HEADS, "float")
    cost = _choice(raw, "cost", COSTS, "luts")
    margin = raw.get("margin", 1.0)
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not math.isfinite(margin) or margin < 1.0:
        raise SweepError(f"margin must be a number >= 1.0 (factor on the observed ranges), not {margin!r}")
    subset = raw.get("test_subset", 0)
    if not isinstance(subset, int) or isinstance(subset, bool) or subset < 0:
        raise SweepError(f"test_subset must be an integer >= 0 (0 = the whole test set), not {subset!r}")

    defaults = dict(BUILTIN_DEFAULTS)
    dtab = raw.get("defaults", {})
    if not isinstance(dtab, dict):
        raise SweepError("[defaults] must be a table of point keys")
    defaults.update(_check_settings(dtab, "[defaults]", allow_lists=False, allow_label=False))

    points = []
    grids = raw.get("grid", [])
    singles = raw.get("point", [])
    for key, tabs in (("grid", grids), ("point", singles)):
        if not isinstance(tabs, list) or not all(isinstance(t, dict) for t in tabs):
            raise SweepError(f"{key} must be an array of tables, written [[{key}]]")
    for n, p in enumerate(singles, 1):
        where = f"[[point]] {n}"
        s = _check_settings(p, where, allow_lists=False)
        label = s.pop("label", f"point{n}")
        points.append(Point(label, label, {**defaults, **s}))
    for n, g in enumerate(grids, 1):
        where = f"[[grid]] {n}" + (f" ({g['label']!r})" if isinstance(g.get("label"), str) else "")
        s = _check_settings(g, where, allow_lists=True)
        label = s.pop("label", f"grid{n}")
        axes = {k: v for k, v in s.items() if isinstance(v, list)}
        fixed = {k: v for k, v in s.items() if not isinstance(v, list)}
        if not axes:
            raise SweepError(f"{where}: a grid needs at least one list-valued key (e.g. weight_bits = [4, 8]); "
                             f"use [[point]] for a single point")
        for combo in itertools.product(*axes.values()):
            vals = dict(zip(axes, combo))
            sub = ", ".join(f"{k}={_short(v)}" for k, v in vals.items())
            points.append(Point(f"{label}: {sub}", label, {**defaults, **fixed, **vals}, tuple(axes)))
    if not points:
        raise SweepError("the sweep is empty: give at least one [[grid]] or [[point]]")
    seen = {}
    for p in points:
        if p.label in seen:
            raise SweepError(f"two points share the label {p.label!r}; labels must be unique")
        seen[p.label] = p
    return Sweep(name, path, model, desc, target, head, float(margin), subset, cost, points, data, normalise)


def _file(sweep_path: Path, key: str, value, suffixes) -> str:
    """The absolute path of the file ``value`` that key ``key`` names, relative to the sweep file's folder
    (read, and checked, when the study loads the model and data)."""
    if not isinstance(value, str) or Path(value).suffix not in suffixes:
        raise SweepError(f"{key} must be a file path ending in {' or '.join(suffixes)}, not {value!r}")
    return str((sweep_path.parent / value).resolve())


def describe_layers(layers) -> str:
    """``layers`` in a few words: ``L0 weight_bits=4 act_bits=4; L1 -`` (``-``: as the point)."""
    return "; ".join(f"L{i} " + (" ".join(f"{k}={_short(v)}" for k, v in t.items()) or "-")
                     for i, t in enumerate(layers))


def _short(v) -> str:
    if isinstance(v, tuple):
        return describe_layers(v)
    if isinstance(v, dict):
        m = v.get("method")
        return f"{m}{v['size']}" if "size" in v else str(m)
    return str(v)


def _choice(raw, key, accepted, default):
    v = raw.get(key, default)
    if v not in accepted:
        raise SweepError(f"{key} must be one of {', '.join(map(repr, accepted))}, not {v!r}")
    return v


def _check_settings(tab: dict, where: str, allow_lists: bool, allow_label: bool = True, keys=POINT_KEYS) -> dict:
    keys = set(keys) - (set() if allow_label else {"label"})
    unknown = sorted(set(tab) - keys)
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(keys))}")
    out = {}
    for k, v in tab.items():
        if k == "label":
            if not isinstance(v, str) or not v:
                raise SweepError(f"{where}: label must be a non-empty string, not {v!r}")
            out[k] = v
            continue
        if k == "layers" and not (allow_lists and isinstance(v, list) and v and all(isinstance(x, list) for x in v)):
            out[k] = _check_value(k, v, where)  # one value (an array of tables), not a grid axis
            continue
        if isinstance(v, list):
            if not allow_lists:
                raise SweepError(f"{where}: {k} = {v!r}: lists are only accepted in a [[grid]]")
            if not v:
                raise SweepError(f"{where}: {k} is an empty list; a grid axis needs at least one value")
            out[k] = [_check_value(k, x, where) for x in v]
        else:
            out[k] = _check_value(k, v, where)
    return out


def _check_value(k, v, where):
    if k in BITS_KEYS or k == "lanes":
        lo, hi = (MIN_BITS, MAX_BITS) if k != "lanes" else (1, 4096)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            what = "bits" if k != "lanes" else "MAC lanes"
            raise SweepError(f"{where}: {k} must be an integer from {lo} to {hi} ({what}), not {v!r}")
        return v
    if k in ("rounding", "input_rounding", "overflow", "input_overflow"):
        accepted = ROUNDING_MODES if k.endswith("rounding") else OVERFLOW_MODES
        if v not in accepted:
            raise SweepError(f"{where}: {k} must be one of {', '.join(accepted)}, not {v!r}")
        return v
    if k in ("sigmoid", "tanh"):
        if isinstance(v, str):
            v = {"method": v}
        if not isinstance(v, dict):
            raise SweepError(f"{where}: {k} must be a method name or a table {{method, size, range}}, not {v!r}")
        return dict(v)  # checked in full when the point's config is built
    if k == "uniform":
        try:
            Fmt.parse(v)
        except (FormatError, TypeError, AttributeError) as e:
            raise SweepError(f"{where}: uniform = {v!r} is not a format ({e}); "
                             f"write e.g. 'ap_fixed<8,3>' or 's3.5'") from None
        return v
    if k == "layers":
        if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
            raise SweepError(f"{where}: layers must be an array of tables, one per layer (e.g. "
                             f"[{{}}, {{ weight_bits = 4 }}]), not {v!r}")
        return tuple(_check_settings(t, f"{where}: layers[{n}]", allow_lists=False, allow_label=False,
                                     keys=LAYER_KEYS) for n, t in enumerate(v))
    raise SweepError(f"{where}: unknown key {k!r}")
