"""The one cell configuration object: loaded from TOML, validated once, shared by every stage."""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .fixedpoint import (Fmt, FormatError, OVERFLOW_MODES, ROUNDING_MODES)

ACT_METHODS = ("exact", "lut", "lut_interp", "pwl", "hard")
#: Methods whose data is a table with ``size`` entries over ``[-range, range)``.
TABLE_METHODS = ("lut", "lut_interp")

#: Tensors with their own format, and what each holds.
TENSORS = {
    "input": "x(t), the input vector",
    "weight": "W_ih and W_hh",
    "bias": "b_ih + b_hh per gate row (b_in and b_hn apart for a reset-after GRU)",
    "peephole": "peephole weights p_i, p_f, p_o",
    "pre": "gate pre-activations (requantized accumulator)",
    "gate": "sigmoid outputs i, f, o / r, z",
    "candidate": "tanh candidate g / n",
    "cell": "cell state c(t)",
    "cell_act": "tanh(c(t))",
    "hidden": "hidden state h(t)",
}
#: Keys of the optional ``[bench]`` section: the cocotb bench's bound on h against the float reference.
BENCH_KEYS = ("float_max_abs", "float_rms")
#: A tensor a config lacks but another kind needs takes the format of its stand-in in
#: :meth:`Config.as_kind` (a GRU config names no cell formats: c(t) like pre, tanh(c) like the candidate).
FORMAT_STANDINS = {"cell": "pre", "cell_act": "candidate"}
#: What a config ``name`` may be: it names the output folder ``<out>/<name>/`` and the generated files.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
#: Largest ``input_size`` and ``hidden_size`` accepted (the float parameters alone grow as 32 * hidden**2 bytes).
MAX_SIZE = 4096
#: The file in ``<out>/<name>/`` recording which config file wrote that folder (see :func:`output_dir`).
OWNER_FILE = ".config-source"
#: Tensors whose values take both signs: their formats must be signed.
SIGNED_TENSORS = ("input", "weight", "bias", "peephole", "pre", "candidate", "cell", "cell_act", "hidden")


def points() -> tuple:
    """Named requantization points of every registered kind (see docs, 'Numerics contract')."""
    from . import kinds
    return kinds.all_points()


#: Most multipliers a cell may have (``[hardware] lanes * beat``): a fully parallel LSTM 6->20 (2,080) fits,
#: one of 13->100 (45,200) does not (no FPGA the kit targets holds it, and its Verilog is too large to
#: simulate in reasonable time).
MAX_MULTIPLIERS = 4096
#: Most sequences one cell may interleave (``[hardware] interleave``): its h memory holds two vectors per
#: sequence and every stream word carries the sequence's index, so the depth is bounded where the state
#: memories of the default LSTM (2 x 64 x 100 h words) still fit a few block RAMs.
MAX_INTERLEAVE = 64

@dataclass(frozen=True)
class ActSpec:
    """An activation approximation: ``method`` plus, for tables, ``size`` entries over ``[-range, range)``."""

    method: str
    size: int = 0
    range: float = 0.0

    def to_dict(self) -> dict:
        if self.method in TABLE_METHODS:
            return {"method": self.method, "size": self.size, "range": self.range}
        return {"method": self.method}

    def __str__(self) -> str:
        return f"{self.method}/{self.size}/{self.range:g}" if self.method in TABLE_METHODS else self.method


@dataclass(frozen=True)
class Mode:
    rounding: str = "half_even"
    overflow: str = "saturate"


@dataclass(frozen=True)
class Config:
    name: str
    kind: str
    input_size: int
    hidden_size: int
    formats: dict  # tensor name -> Fmt
    sigmoid: ActSpec
    tanh: ActSpec
    options: dict = field(default_factory=dict)  # the kind's own options, e.g. {"peephole": "none"}
    modes: dict = field(default_factory=dict)  # point name -> Mode
    param_rounding: str = "half_even"
    lanes: int = 1
    beat: int = 1
    interleave: int = 1  # sequences sharing the pipeline, time-multiplexed (rtl.cell)
    params: str | None = None  # absolute path of a CellParams .npz, or None (random seeded parameters)
    float_max_abs: float | None = None  # [bench]: bound on h against the float reference (None: derived)
    float_rms: float | None = None

    def __post_init__(self):
        from . import kinds
        object.__setattr__(self, "_cell", kinds.make(self.kind, **self.options))
        object.__setattr__(self, "_source", None)

    @property
    def source(self) -> Path | None:
        """The config file this config was loaded from (resolved), or None for one built in code."""
        return self._source

    # ---- derived ---------------------------------------------------------------
    @property
    def cell(self):
        """The cell kind (:class:`model.kinds.CellKind`) with this config's options."""
        return self._cell

    @property
    def gates(self) -> int:
        return self.cell.n_gates

    @property
    def rows(self) -> int:
        return self.gates * self.hidden_size

    @property
    def variant(self) -> str:
        return self.cell.variant

    def fmt(self, tensor: str) -> Fmt:
        return self.formats[tensor]

    def mode(self, point: str) -> Mode:
        return self.modes[point]

    def replace(self, **changes) -> "Config":
        """A new validated config with some fields changed (``formats``/``modes`` entries merge).

        ``formats`` maps tensors to formats (``Fmt`` or text such as ``"ap_fixed<8,3>"``); only the
        tensors given change.  ``modes`` takes ``rounding`` and/or ``overflow`` for every
        requantization point, a point's table (``{"pre": {"rounding": "truncate"}}``) or
        :class:`Mode`, or a :class:`Mode` for every point; what is not given keeps its value.
        A change of ``kind`` drops the old kind's options (give the new kind's as keywords).
        Raises :class:`ConfigError` naming the field, the value and what is accepted.
        """
        from . import kinds
        d = self.to_dict()
        keep = kinds.carried_options(self.options, changes.get("kind", self.kind))
        for o in set(self.options) - set(keep):
            d.pop(o)
        for k, v in changes.items():
            if k in ("formats",):
                if not isinstance(v, dict):
                    raise ConfigError(f"formats must be a dict of tensor -> format, not {v!r}")
                try:
                    d["formats"].update({t: str(Fmt.parse(f)) for t, f in v.items()})
                except FormatError as e:
                    raise ConfigError(f"formats: {e}") from None
            elif k == "modes":
                d["modes"] = _merge_modes(d["modes"], v)
            elif k in ("sigmoid", "tanh") and isinstance(v, ActSpec):
                d[k] = v.to_dict()
            else:
                d[k] = v
        return Config.from_dict(d)

    def as_kind(self, kind) -> "Config":
        """This config as another cell kind (a :class:`model.kinds.CellKind`) at the same sizes, formats,
        activations and lanes, with random parameters; a format the other kind needs and this config
        lacks takes its stand-in's (:data:`FORMAT_STANDINS`), a format it does not use is dropped."""
        d = {k: v for k, v in self.to_dict().items() if k not in self.cell.options and k != "params"}
        suffix = "-".join(str(v).replace("=", "").replace("-", "") for v in kind.opts.values())
        d.update(kind=kind.name, **kind.opts, name=f"{self.name}-as-{kind.name}" + (f"-{suffix}" if suffix else ""))
        need = kind.tensors()
        f = {t: v for t, v in d["formats"].items() if t in need}
        for t, standin in FORMAT_STANDINS.items():
            if t in need and t not in f:
                f[t] = d["formats"][standin]
        d["formats"] = f
        return Config.from_dict(d)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "input_size": self.input_size,
            "hidden_size": self.hidden_size, **self.options,
            "formats": {t: str(f) for t, f in self.formats.items() if f is not None},
            "modes": {p: dataclasses.asdict(m) for p, m in self.modes.items()},
            "param_rounding": self.param_rounding,
            "sigmoid": self.sigmoid.to_dict(), "tanh": self.tanh.to_dict(),
            "lanes": self.lanes, "beat": self.beat, "interleave": self.interleave,
            **({"params": self.params} if self.params is not None else {}),
            **({"float_max_abs": self.float_max_abs, "float_rms": self.float_rms}
               if self.float_max_abs is not None else {}),
        }

    # ---- loading -----------------------------------------------------------------
    @classmethod
    def load(cls, path) -> "Config":
        path = Path(path)
        return build_from_file(path, _flatten_toml(read_toml(path), path), cls.from_dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """A validated config from the flat fields of a config file (what :meth:`to_dict` returns).

        Required: ``kind``, ``input_size``, ``hidden_size``, ``formats`` (tensor -> format text, every
        tensor the kind uses, :data:`TENSORS`), ``sigmoid`` and ``tanh`` (a method name or
        ``{method, size, range}``).  Optional: ``name``, the kind's options (e.g. ``mode`` of a GRU),
        ``modes`` (``rounding``/``overflow`` for every point and per-point tables), ``param_rounding``,
        ``lanes``, ``beat``, ``interleave``, ``params`` (a parameter ``.npz``) and the bench bound.  Raises
        :class:`ConfigError` naming the field, the value and what is accepted.
        """
        from . import kinds
        d = dict(d)
        option_keys = kinds.option_names()
        known = {"name", "kind", "input_size", "hidden_size", "formats", "modes", "param_rounding", "sigmoid",
                 "tanh", "lanes", "beat", "interleave", "params", *BENCH_KEYS, *option_keys}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(known))}")
        name = _name(d.get("name", "unnamed"))
        kind = d.get("kind")
        options = {k: d[k] for k in option_keys if k in d}
        cell = kinds.make(kind, **options)
        input_size = _size(d, "input_size")
        hidden_size = _size(d, "hidden_size")
        formats = _formats(d.get("formats"), cell)
        modes = _modes(d.get("modes", {}))
        param_rounding = _choice(d, "param_rounding", ROUNDING_MODES, "half_even")
        sigmoid = _act(d.get("sigmoid"), "sigmoid", formats)
        tanh = _act(d.get("tanh"), "tanh", formats)
        lanes = _posint(d, "lanes", 1)
        beat = _posint(d, "beat", 1)
        rows = cell.n_gates * hidden_size
        if lanes > rows:
            raise ConfigError(f"lanes = {lanes} exceeds the number of weight rows ({rows} = gates x hidden_size)")
        if lanes * beat > MAX_MULTIPLIERS:
            raise ConfigError(f"lanes * beat = {lanes} * {beat} = {lanes * beat} multipliers exceeds the limit of "
                              f"{MAX_MULTIPLIERS} (model.config.MAX_MULTIPLIERS)")
        if beat > input_size + hidden_size:
            raise ConfigError(f"beat = {beat} exceeds input_size + hidden_size = {input_size + hidden_size} "
                              f"(the z elements a lane can take in one cycle)")
        interleave = _posint(d, "interleave", 1)
        if interleave > MAX_INTERLEAVE:
            raise ConfigError(f"interleave = {interleave} exceeds the limit of {MAX_INTERLEAVE} sequences "
                              f"(model.config.MAX_INTERLEAVE)")
        params = _params_path(d.get("params"))
        max_abs, rms = _bench_bound(d)
        cfg = cls(name=name, kind=kind, input_size=input_size, hidden_size=hidden_size,
                  formats=formats, sigmoid=sigmoid, tanh=tanh, options=dict(cell.opts),
                  modes=modes, param_rounding=param_rounding, lanes=lanes, beat=beat, interleave=interleave,
                  params=params,
                  float_max_abs=max_abs, float_rms=rms)
        from .datapath import Datapath  # the accumulator must fit: checked once, here
        Datapath.from_config(cfg)
        return cfg


def build_from_file(path: Path, table: dict, build):
    """``build(table)`` for the config file ``path``: the name defaults to the file's stem, a ``params``
    path is taken relative to the file, errors name the file, and the result remembers it as its
    ``source`` (the folder ``output_dir`` claims)."""
    table.setdefault("name", path.stem)
    if isinstance(table.get("params"), str):
        table["params"] = str((path.parent / table["params"]).resolve())
    try:
        obj = build(table)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    object.__setattr__(obj, "_source", path.resolve())
    return obj


def read_toml(path: Path) -> dict:
    """The table of the TOML file ``path``; a ``ConfigError`` naming the file when it is missing, not
    UTF-8 or not TOML."""
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                          f"accepted: a TOML file encoded in UTF-8") from None


def section_keys() -> dict:
    """Keys of each TOML section; ``[cell]`` takes every registered kind's options."""
    from . import kinds
    return {"cell": ("kind", "input_size", "hidden_size", *kinds.option_names()),
            "hardware": ("lanes", "beat", "interleave"),
            "activations": ("sigmoid", "tanh"),
            "bench": BENCH_KEYS}


def _flatten_toml(raw: dict, path) -> dict:
    """TOML sections ``[cell] [formats] [modes] [activations] [hardware] [bench]`` -> one flat dict."""
    d = {}
    allowed = {"name", "cell", "formats", "modes", "activations", "hardware", "bench", "param_rounding", "params"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}")
    for k in ("name", "param_rounding", "params"):
        if k in raw:
            d[k] = raw[k]
    for section, keys in section_keys().items():
        sub = raw.get(section, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        unknown = sorted(set(sub) - set(keys))
        if unknown:
            raise ConfigError(f"{path}: [{section}]: unknown key(s) {', '.join(unknown)}; "
                              f"accepted: {', '.join(keys)}")
        if section != "activations":
            d.update(sub)
    if "formats" in raw:
        d["formats"] = raw["formats"]
    if "modes" in raw:
        d["modes"] = raw["modes"]
    d.update(raw.get("activations", {}))
    return d


def _params_path(v) -> str | None:
    """The ``params`` field: None, or an existing ``.npz`` file (made absolute)."""
    if v is None:
        return None
    if not isinstance(v, str) or not v:
        raise ConfigError(f"params must be the path of a parameter file (.npz, relative to the config file), "
                          f"not {v!r}")
    p = Path(v)
    if p.suffix != ".npz":
        raise ConfigError(f"params = {v!r} must name a .npz file written by CellParams.save")
    if not p.is_file():
        raise ConfigError(f"params = {v!r}: the file does not exist (make train writes the trained models)")
    return str(p.resolve())


def _bench_bound(d) -> tuple:
    """``[bench] float_max_abs, float_rms``: both positive numbers, or neither (the bench derives a bound)."""
    given = [k for k in BENCH_KEYS if d.get(k) is not None]
    if not given:
        return None, None
    if len(given) == 1:
        missing = next(k for k in BENCH_KEYS if k not in given)
        raise ConfigError(f"[bench] gives {given[0]} without {missing}: give both (the bounds on max |h - float| "
                          f"and on its RMS) or neither (the bench then derives them from the formats)")
    out = []
    for k in BENCH_KEYS:
        v = d[k]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise ConfigError(f"{k} must be a positive number, not {v!r}")
        out.append(float(v))
    return tuple(out)


def _choice(d, key, accepted, default):
    v = d.get(key, default)
    if v not in accepted:
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, accepted))}, not {v!r}")
    return v


def _name(name):
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(f"name must be a non-empty string matching {NAME_PATTERN} (a letter or digit, then up "
                          f"to 63 letters, digits, '_', '.' or '-'; it names the output folder), not {name!r}")
    return name


def _size(d, key):
    v = _posint(d, key)
    if v > MAX_SIZE:
        raise ConfigError(f"{key} = {v} exceeds the largest size the kit accepts, {MAX_SIZE}")
    return v


def output_dir(root, config, *sub: str) -> Path:
    """``<root>/<config.name>/<sub...>``: the one place a config's (or a study's) name becomes an output path.

    The name is checked again (it can never lead out of ``root``), ``<root>/<name>/`` is created and
    claimed for the config's file (its ``source``) in :data:`OWNER_FILE`: a folder that another file of
    the same name wrote is refused with a ``ConfigError`` rather than overwritten.  An object without a
    file (a config built in code) claims nothing.  ``sub`` folders are not created.
    """
    name = _name(config.name)
    folder = Path(root) / name
    source = getattr(config, "source", None)
    owner = folder / OWNER_FILE
    if source is not None and owner.is_file():
        prev = owner.read_text().strip()
        if prev != str(source):
            raise ConfigError(f"{folder}/ holds the outputs of {prev}, another file named {name!r}; "
                              f"give {source} its own name, or remove {folder}/")
    folder.mkdir(parents=True, exist_ok=True)
    if source is not None:
        owner.write_text(f"{source}\n")
    return folder.joinpath(*sub)


def _posint(d, key, default=None):
    v = d.get(key, default)
    if v is None:
        raise ConfigError(f"{key} is required (a positive integer)")
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ConfigError(f"{key} must be a positive integer, not {v!r}")
    return v


def _formats(raw, cell) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError("formats is required: a table giving a format for each of " + ", ".join(TENSORS))
    unknown = sorted(set(raw) - set(TENSORS))
    if unknown:
        raise ConfigError(f"formats: unknown tensor(s) {', '.join(unknown)}; accepted: {', '.join(TENSORS)}")
    out = {}
    need = cell.tensors()
    for t in TENSORS:
        if t not in raw:
            if t not in need:
                out[t] = None  # not part of this cell
                continue
            raise ConfigError(f"formats.{t} is required for kind = {cell.name!r} ({TENSORS[t]})")
        try:
            out[t] = Fmt.parse(raw[t])
        except FormatError as e:
            raise ConfigError(f"formats.{t}: {e}") from None
    for t in ("gate",):
        if out[t].frac_bits < 1:
            raise ConfigError(f"formats.{t} = {out[t]} has no fractional bits; a gate in [0, 1] needs some")
    for t in SIGNED_TENSORS:
        if out[t] is not None and not out[t].signed:
            raise ConfigError(f"formats.{t} = {out[t]} must be signed (values of both signs occur)")
    return out


def _modes(raw) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError("modes must be a table of point -> {rounding, overflow}")
    default = Mode()
    top = {k: v for k, v in raw.items() if k in ("rounding", "overflow")}
    if top:
        default = _mode(top, "modes")
    out = {}
    all_points = points()
    for k, v in raw.items():
        if k in ("rounding", "overflow"):
            continue
        if k not in all_points:
            raise ConfigError(f"modes: unknown requantization point {k!r}; accepted: "
                              f"rounding, overflow, {', '.join(all_points)}")
        if not isinstance(v, dict):
            raise ConfigError(f"modes.{k} must be a table with rounding and/or overflow")
        out[k] = _mode({**dataclasses.asdict(default), **v}, f"modes.{k}")
    for p in all_points:
        out.setdefault(p, default)
    return out


def _merge_modes(current: dict, changes) -> dict:
    """``current`` (point -> ``{rounding, overflow}``) with ``changes`` merged (see :meth:`Config.replace`)."""
    if isinstance(changes, Mode):
        changes = dataclasses.asdict(changes)
    if not isinstance(changes, dict):
        raise ConfigError(f"modes must be a dict of point -> Mode or {{rounding, overflow}} (rounding and overflow "
                          f"keys: every point), or a Mode, not {changes!r}")
    out = {p: dict(m) for p, m in current.items()}
    every = {k: v for k, v in changes.items() if k in ("rounding", "overflow")}
    if every:
        _mode(every, "modes")
        for m in out.values():
            m.update(every)
    for p, m in changes.items():
        if p in every:
            continue
        if isinstance(m, Mode):
            m = dataclasses.asdict(m)
        if not isinstance(m, dict):
            raise ConfigError(f"modes.{p} must be a Mode or a dict with rounding and/or overflow "
                              f"(e.g. {{'rounding': 'truncate'}}), not {m!r}")
        out[p] = {**out.get(p, {}), **m}
    return out


def _mode(v, where) -> Mode:
    unknown = sorted(set(v) - {"rounding", "overflow"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; accepted: rounding, overflow")
    r = v.get("rounding", "half_even")
    o = v.get("overflow", "saturate")
    if r not in ROUNDING_MODES:
        raise ConfigError(f"{where}.rounding must be one of {', '.join(ROUNDING_MODES)}, not {r!r}")
    if o not in OVERFLOW_MODES:
        raise ConfigError(f"{where}.overflow must be one of {', '.join(OVERFLOW_MODES)}, not {o!r}")
    return Mode(r, o)


def _act(raw, fn, formats) -> ActSpec:
    if raw is None:
        raise ConfigError(f"{fn} is required: a table like {{method = 'lut_interp', size = 64, range = 8.0}}")
    if isinstance(raw, str):
        raw = {"method": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{fn} must be a table with method (and size, range for tables), not {raw!r}")
    unknown = sorted(set(raw) - {"method", "size", "range"})
    if unknown:
        raise ConfigError(f"{fn}: unknown key(s) {', '.join(unknown)}; accepted: method, size, range")
    method = raw.get("method")
    if method not in ACT_METHODS:
        raise ConfigError(f"{fn}.method must be one of {', '.join(ACT_METHODS)}, not {method!r}")
    if method not in TABLE_METHODS:
        for k in ("size", "range"):
            if k in raw:
                raise ConfigError(f"{fn}.{k} applies only to methods {', '.join(TABLE_METHODS)}, "
                                  f"not to {method!r}")
        return ActSpec(method)
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 4 or size & (size - 1):
        raise ConfigError(f"{fn}.size must be a power of two >= 4 (entries over the full range), not {size!r}")
    if size > 1 << 16:
        raise ConfigError(f"{fn}.size = {size} is too large; at most {1 << 16} entries")
    rng = raw.get("range")
    if not isinstance(rng, (int, float)) or isinstance(rng, bool) or rng <= 0:
        raise ConfigError(f"{fn}.range must be a positive power of two (the table covers [-range, range)), "
                          f"not {rng!r}")
    m, e = math.frexp(float(rng))
    if m != 0.5:
        raise ConfigError(f"{fn}.range must be a power of two (e.g. 4.0 or 8.0), not {rng!r}")
    step_exp = e - 1 + 1 - int(math.log2(size))  # log2(2*range/size)
    in_fmt = formats["pre"]
    if -step_exp > in_fmt.frac_bits:
        raise ConfigError(f"{fn}: {size} entries over [-{rng}, {rng}) need a step of 2**{step_exp}, finer than "
                          f"formats.pre = {in_fmt} resolves (2**-{in_fmt.frac_bits}); use size <= "
                          f"{int(2 * rng * 2 ** in_fmt.frac_bits)}")
    return ActSpec(method, size, float(rng))
