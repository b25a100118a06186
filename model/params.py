"""Cell parameters: float (PyTorch layout) and quantized (integer) forms.

``CellParams`` holds float64 arrays laid out exactly as PyTorch's ``nn.LSTM`` /
``nn.GRU`` store them, so a trained module imports with :func:`from_torch` and
no reshuffling:

===========  ==================  ===============================================
field        shape               meaning
===========  ==================  ===============================================
``w_ih``     ``(G*H, I)``        input weights, gate blocks stacked row-wise
``w_hh``     ``(G*H, H)``        recurrent weights
``b_ih``     ``(G*H,)``          input bias
``b_hh``     ``(G*H,)``          recurrent bias
``w_peep``   ``(3, H)`` or None  peephole weights, rows ``p_i, p_f, p_o``
===========  ==================  ===============================================

Gate order is the kind's (:attr:`model.kinds.CellKind.gates`), PyTorch's where
PyTorch has the cell: ``i, f, g, o`` for an LSTM (``G = 4``), ``r, z, n`` for a
GRU (``G = 3``); gate ``k`` owns rows ``k*H .. (k+1)*H - 1``.

``QParams`` holds the integers the hardware stores (int64 arrays): the weights
in ``formats['weight']``, one bias per row in ``formats['bias']`` (``b_ih +
b_hh`` summed in float, then quantized once) and the peephole weights in
``formats['peephole']``.  The one exception is a GRU with ``reset = 'after'``:
there ``b_hn`` sits inside the reset product ``r * (W_hn h + b_hn)``, so it
cannot be folded into ``b_in``; the ``n`` rows of ``bias`` hold ``b_in`` alone
and ``bias_hn`` holds ``b_hn``.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field

import numpy as np

from . import fixedpoint, kinds
from .errors import ConfigError
from .fixedpoint import Fmt
from .resources import check_memory

_NPZ_VERSION = 1


def _check_shape(name, arr, expected, meaning):
    if arr.shape != tuple(expected):
        raise ValueError(f"{name} has shape {arr.shape}; expected {meaning} = {tuple(expected)}")


def _arrays_equal(a, b):
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


class _Sizes:
    """The kind and sizes derived from the weight shapes, shared by float and integer parameters."""

    def _init_kind(self):
        if not isinstance(self.options, dict):
            raise ValueError(f"options must be a dict of the kind's options, not {self.options!r}")
        self.cell = kinds.make(self.kind, **self.options)
        self.options = dict(self.cell.opts)

    @property
    def gates(self) -> int:
        return self.cell.n_gates

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]


@dataclass(eq=False)
class CellParams(_Sizes):
    """Float64 parameters of one LSTM or GRU cell in PyTorch layout (see the module docstring).

    Parameters
    ----------
    kind : str
        A registered cell kind (:mod:`model.kinds`), e.g. 'lstm' or 'gru'.
    w_ih, w_hh, b_ih, b_hh : arrays
        Shapes ``(G*H, I)``, ``(G*H, H)``, ``(G*H,)``, ``(G*H,)``.
    w_peep : array of shape (3, H) or None
        Peephole weights (rows ``p_i, p_f, p_o``); required when the kind has peepholes
        (an LSTM with ``peephole != 'none'``), must be None otherwise.
    options : dict
        The kind's options, e.g. ``{"peephole": "c_new"}`` (LSTM) or ``{"reset": "before"}`` (GRU);
        defaults fill the rest.

    Raises
    ------
    ValueError
        On an unknown kind or option, a shape that does not match, or a
        non-finite value; the message names the field.

    ``==`` compares kind, options and every array exactly.
    """

    kind: str
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray
    w_peep: np.ndarray | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        self._init_kind()
        for name in ("w_ih", "w_hh", "b_ih", "b_hh", "w_peep"):
            v = getattr(self, name)
            if v is None:
                continue
            try:
                a = np.array(v, dtype=np.float64)  # a private copy
            except (TypeError, ValueError) as e:
                raise ValueError(f"{name} must be a numeric array: {e}") from None
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} contains NaN or infinite values")
            setattr(self, name, a)
        G = self.cell.n_gates
        if self.w_hh is None or self.w_hh.ndim != 2:
            raise ValueError(f"w_hh must be a 2-D array of shape ({G}*hidden, hidden), "
                             f"got {None if self.w_hh is None else self.w_hh.shape}")
        H = self.w_hh.shape[1]
        if H < 1:
            raise ValueError(f"w_hh has shape {self.w_hh.shape}: hidden size must be at least 1")
        _check_shape("w_hh", self.w_hh, (G * H, H), f"({G}*hidden, hidden) for a {self.kind.upper()}")
        if self.w_ih is None or self.w_ih.ndim != 2 or self.w_ih.shape[1] < 1:
            raise ValueError(f"w_ih must be a 2-D array of shape ({G}*hidden, input) with input >= 1, "
                             f"got {None if self.w_ih is None else self.w_ih.shape}")
        _check_shape("w_ih", self.w_ih, (G * H, self.w_ih.shape[1]),
                     f"({G}*hidden, input) with hidden = {H} (from w_hh)")
        for name in ("b_ih", "b_hh"):
            v = getattr(self, name)
            if v is None:
                raise ValueError(f"{name} is required (use zeros for no bias)")
            _check_shape(name, v, (G * H,), f"({G}*hidden,) with hidden = {H}")
        P = self.cell.peep_rows
        if not P:
            if self.w_peep is not None:
                raise ValueError(f"w_peep is given but a {self.cell.variant} has no peepholes; pass w_peep=None "
                                 f"or choose kind 'lstm' with peephole = 'c_prev' or 'c_new'")
        else:
            if self.w_peep is None:
                raise ValueError(f"a {self.cell.variant} needs w_peep, an array of shape ({P}, {H})")
            _check_shape("w_peep", self.w_peep, (P, H), f"({P}, hidden) (rows p_i, p_f, p_o) with hidden = {H}")

    def replace(self, **changes) -> "CellParams":
        """A copy with arrays or options changed, e.g. ``p.replace(peephole="c_new")``; a change of
        ``kind`` starts from the new kind's default options."""
        fields = {n: getattr(self, n) for n in ("kind", "w_ih", "w_hh", "b_ih", "b_hh", "w_peep")}
        opts = kinds.carried_options(self.options, changes.get("kind", self.kind))
        for k, v in changes.items():
            if k in fields:
                fields[k] = v
            else:
                opts[k] = v
        return CellParams(**fields, options=opts)

    def __eq__(self, other):
        if not isinstance(other, CellParams):
            return NotImplemented
        return ((self.kind, self.options) == (other.kind, other.options)
                and all(_arrays_equal(getattr(self, n), getattr(other, n))
                        for n in ("w_ih", "w_hh", "b_ih", "b_hh", "w_peep")))

    __hash__ = None

    # ---- construction --------------------------------------------------------------
    @classmethod
    def random(cls, kind, input_size, hidden_size, seed, scale=None, **options) -> "CellParams":
        """Uniform ``(-k, k)`` parameters, ``k = 1/sqrt(hidden_size)`` as PyTorch initializes, or ``scale``.

        ``options`` are the kind's (``peephole=``, ``reset=``, ...).  ``seed`` feeds
        ``numpy.random.default_rng``: the same seed gives the same parameters.
        """
        cell = kinds.make(kind, **options)
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        k = 1.0 / np.sqrt(hidden_size) if scale is None else float(scale)
        if not np.isfinite(k) or k < 0:
            raise ValueError(f"scale must be a finite number >= 0, not {scale!r}")
        rng = np.random.default_rng(seed)
        G, H, I = cell.n_gates, int(hidden_size), int(input_size)
        # the arrays, and the private copies __post_init__ takes of them
        check_memory(2 * 8 * (G * H * (I + H + 2) + cell.peep_rows * H),
                     f"random parameters for input_size {I}, hidden_size {H}")

        def u(*shape):
            return rng.uniform(-k, k, size=shape)

        w_ih, w_hh, b_ih, b_hh = u(G * H, I), u(G * H, H), u(G * H), u(G * H)
        w_peep = u(cell.peep_rows, H) if cell.peep_rows else None
        return cls(kind, w_ih, w_hh, b_ih, b_hh, w_peep, dict(cell.opts))

    @classmethod
    def for_config(cls, config, seed, scale=None) -> "CellParams":
        """The parameters a config runs with.

        When the config names a parameter file (top-level ``params``), that file's
        parameters, checked against the config (``seed`` and ``scale`` are then
        ignored); otherwise random parameters matching ``config`` (kind, sizes,
        options), see :meth:`random`.
        """
        path = getattr(config, "params", None)
        if path is not None:
            try:
                p = cls.load(path)
            except (OSError, ValueError) as e:
                raise ConfigError(f"params: {e}") from None
            try:
                p.check_matches(config)
            except ValueError as e:
                raise ConfigError(f"params: {path}: {e}") from None
            return p
        return cls.random(config.kind, config.input_size, config.hidden_size, seed, scale=scale,
                          **config.options)

    def check_matches(self, config) -> None:
        """Raise ``ValueError`` naming the first field where these parameters and ``config`` disagree."""
        pairs = [("kind", self.kind, config.kind),
                 ("input_size", self.input_size, config.input_size),
                 ("hidden_size", self.hidden_size, config.hidden_size),
                 *((k, v, config.options.get(k)) for k, v in self.options.items())]  # after kind: its options
        for name, mine, theirs in pairs:
            if mine != theirs:
                cname = getattr(config, "name", "the config")
                raise ValueError(f"parameters do not match config {cname!r}: {name} is {mine!r} "
                                 f"in the parameters but {theirs!r} in the config")

    # ---- files -------------------------------------------------------------------
    def save(self, path) -> None:
        """Write to ``path`` as ``.npz`` (exactly ``path``; no suffix is added)."""
        arrays = {"version": np.array(_NPZ_VERSION), "kind": np.array(self.kind),
                  **{k: np.array(v) for k, v in self.options.items()},
                  "w_ih": self.w_ih, "w_hh": self.w_hh, "b_ih": self.b_ih, "b_hh": self.b_hh}
        if self.w_peep is not None:
            arrays["w_peep"] = self.w_peep
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path) -> "CellParams":
        """Read a file written by :meth:`save`; ``ValueError`` naming the file for one that is not such a file."""
        try:
            z = np.load(path, allow_pickle=False)
        except (ValueError, zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"{path}: not a CellParams .npz file ({e or type(e).__name__})") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: not a CellParams .npz file (a single array, not an archive)")
        with z:
            missing = [k for k in ("kind", "w_ih", "w_hh", "b_ih", "b_hh") if k not in z.files]
            if missing:
                raise ValueError(f"{path}: not a CellParams file (missing {', '.join(missing)})")
            version = int(z["version"]) if "version" in z.files else _NPZ_VERSION
            if version != _NPZ_VERSION:
                raise ValueError(f"{path}: file version {version} is not supported (expected {_NPZ_VERSION})")
            kind = str(z["kind"])
            if kind not in kinds.REGISTRY:
                raise ValueError(f"{path}: kind {kind!r} is not a registered cell kind ({', '.join(kinds.names())})")
            options = {k: str(z[k]) for k in kinds.REGISTRY[kind].options if k in z.files}
            try:
                return cls(kind=kind, w_ih=z["w_ih"], w_hh=z["w_hh"], b_ih=z["b_ih"],
                           b_hh=z["b_hh"], w_peep=z["w_peep"] if "w_peep" in z.files else None, options=options)
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None


def torch_kind(module) -> str:
    """The registered kind of a ``torch.nn`` recurrent module (a kind's ``torch_class``); ``TypeError`` for
    another module type, ``ValueError`` for a projected LSTM (``proj_size != 0``)."""
    import torch.nn as nn

    by_class = {k.torch_class: k.name for k in kinds.REGISTRY.values() if k.torch_class}
    kind = next((n for c, n in by_class.items() if isinstance(module, getattr(nn, c))), None)
    if kind is None:
        raise TypeError(f"from_torch takes one of {', '.join('torch.nn.' + c for c in by_class)}, "
                        f"not {type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"{type(module).__name__} has proj_size = {module.proj_size}; projected LSTMs are not "
                         f"supported (proj_size must be 0)")
    return kind


def torch_array(module, attr: str) -> np.ndarray:
    """A parameter of a ``torch.nn`` module as a private float64 array."""
    return getattr(module, attr).detach().cpu().double().numpy().copy()


def torch_cell(module, kind: str, layer: int = 0, suffix: str = "") -> CellParams:
    """The cell of layer ``layer`` (``suffix`` ``"_reverse"`` for the reverse direction) of a PyTorch
    recurrent module; a module built with ``bias=False`` gives zero biases."""
    w_ih, w_hh = torch_array(module, f"weight_ih_l{layer}{suffix}"), torch_array(module, f"weight_hh_l{layer}{suffix}")
    if module.bias:
        b_ih, b_hh = torch_array(module, f"bias_ih_l{layer}{suffix}"), torch_array(module, f"bias_hh_l{layer}{suffix}")
    else:
        b_ih = b_hh = np.zeros(w_ih.shape[0])
    return CellParams(kind, w_ih, w_hh, b_ih, b_hh)


def from_torch(module) -> CellParams:
    """Parameters of a single-layer, unidirectional ``torch.nn.LSTM`` or ``torch.nn.GRU``
    (:func:`model.network.from_torch` takes any stack).

    ``batch_first`` does not matter (it does not change the weights). A module built
    with ``bias=False`` gives zero biases. A GRU imports as ``reset = 'after'``
    (PyTorch's formulation); an LSTM as ``peephole = 'none'``.

    Raises
    ------
    TypeError
        For any other module type.
    ValueError
        For ``num_layers != 1``, ``bidirectional=True`` or ``proj_size != 0``.
    """
    kind = torch_kind(module)
    name = type(module).__name__
    if module.num_layers != 1:
        raise ValueError(f"{name} has num_layers = {module.num_layers}; only single-layer modules "
                         f"import (one cell); split a stack into one module per layer")
    if module.bidirectional:
        raise ValueError(f"{name} is bidirectional; only unidirectional modules import")
    return torch_cell(module, kind)


# ---- quantized parameters ---------------------------------------------------------

@dataclass(eq=False)
class QParams(_Sizes):
    """Integer (int64) parameters as the hardware stores them.

    Members
    -------
    w_ih, w_hh : raw integers in ``formats['weight']``, shapes as in :class:`CellParams`.
    bias : ``(G*H,)`` raw integers in ``formats['bias']``: ``quantize(b_ih + b_hh)`` per row,
        except the ``n`` rows (the last ``H``) of a GRU with ``reset = 'after'``, which hold
        ``quantize(b_in)`` alone.
    bias_hn : ``(H,)`` raw ``quantize(b_hn)`` in ``formats['bias']`` for a GRU with
        ``reset = 'after'``; None otherwise.
    w_peep : ``(3, H)`` raw integers in ``formats['peephole']``, or None.
    saturated : dict field name -> number of values whose rounded value lay outside the
        format and was saturated (keys: the fields present, e.g. ``w_ih``, ``bias``).
    """

    kind: str
    w_ih: np.ndarray
    w_hh: np.ndarray
    bias: np.ndarray
    bias_hn: np.ndarray | None = None
    w_peep: np.ndarray | None = None
    options: dict = field(default_factory=dict)
    saturated: dict = field(default_factory=dict)

    def __post_init__(self):
        self._init_kind()
        for name in ("w_ih", "w_hh", "bias", "bias_hn", "w_peep"):
            v = getattr(self, name)
            if v is not None:
                a = np.asarray(v)
                if a.dtype.kind not in "iu":
                    raise ValueError(f"{name} must hold integers, not {a.dtype}")
                setattr(self, name, a.astype(np.int64))
        G = self.cell.n_gates
        if self.w_hh.ndim != 2 or self.w_ih.ndim != 2:
            raise ValueError(f"w_ih and w_hh must be 2-D, got shapes {self.w_ih.shape} and {self.w_hh.shape}")
        H, I = self.w_hh.shape[1], self.w_ih.shape[1]
        _check_shape("w_hh", self.w_hh, (G * H, H), f"({G}*hidden, hidden)")
        _check_shape("w_ih", self.w_ih, (G * H, I), f"({G}*hidden, input)")
        _check_shape("bias", self.bias, (G * H,), f"({G}*hidden,)")
        split = self.cell.split_bias
        if split != (self.bias_hn is not None):
            raise ValueError(f"bias_hn is required for a GRU with reset = 'after' and must be None otherwise "
                             f"(this is a {self.cell.variant})")
        if split:
            _check_shape("bias_hn", self.bias_hn, (H,), "(hidden,)")
        P = self.cell.peep_rows
        if bool(P) != (self.w_peep is not None):
            raise ValueError(f"w_peep must be given exactly when the kind has peepholes (this is a "
                             f"{self.cell.variant})")
        if self.w_peep is not None:
            _check_shape("w_peep", self.w_peep, (P, H), f"({P}, hidden)")

    @property
    def total_saturated(self) -> int:
        return int(sum(self.saturated.values()))

    def __eq__(self, other):
        if not isinstance(other, QParams):
            return NotImplemented
        return ((self.kind, self.options) == (other.kind, other.options)
                and all(_arrays_equal(getattr(self, n), getattr(other, n))
                        for n in ("w_ih", "w_hh", "bias", "bias_hn", "w_peep")))

    __hash__ = None

    def check_matches(self, config) -> None:
        """Raise ValueError unless cell kind, variant, sizes and value ranges fit ``config``."""
        for k, mine, theirs in [("kind", self.kind, config.kind),
                                *((o, self.options.get(o), v) for o, v in config.options.items())]:
            if mine != theirs:
                raise ValueError(f"qparams.{k} = {mine!r} does not match the config's {k} = {theirs!r}")
        shapes = {"w_ih": (config.rows, config.input_size), "w_hh": (config.rows, config.hidden_size)}
        for k, shp in shapes.items():
            if getattr(self, k).shape != shp:
                raise ValueError(f"qparams.{k} has shape {getattr(self, k).shape}; "
                                 f"config {config.name!r} needs {shp}")
        fmts = {"w_ih": "weight", "w_hh": "weight", "bias": "bias", "bias_hn": "bias", "w_peep": "peephole"}
        for k, t in fmts.items():
            v = getattr(self, k)
            if v is not None and not config.fmt(t).contains(v):
                f = config.fmt(t)
                raise ValueError(f"qparams.{k} holds values outside formats.{t} = {f} "
                                 f"(raw range [{f.min_int}, {f.max_int}])")

    def dequantize(self, config) -> CellParams:
        """The float values of these integers, as :class:`CellParams` (formats from ``config``).

        Combined biases go to ``b_ih`` with ``b_hh = 0``; a bias kept apart (``bias_hn`` of a
        reset-after GRU) goes to the last ``H`` rows of ``b_hh``.
        """
        wf, bf = config.formats["weight"], config.formats["bias"]
        H = self.hidden_size
        b_ih = bf.to_float(self.bias)
        b_hh = np.zeros_like(b_ih)
        if self.bias_hn is not None:
            b_hh[-H:] = bf.to_float(self.bias_hn)
        w_peep = None if self.w_peep is None else config.formats["peephole"].to_float(self.w_peep)
        return CellParams(self.kind, wf.to_float(self.w_ih), wf.to_float(self.w_hh), b_ih, b_hh,
                          w_peep, dict(self.options))


def _round_unbounded(x, fmt: Fmt, rounding: str):
    """``x * 2**frac_bits`` rounded as :func:`fixedpoint.quantize` rounds, before any overflow (float)."""
    y = np.ldexp(np.asarray(x, dtype=np.float64), fmt.frac_bits)
    if rounding == "truncate":
        return np.floor(y)
    if rounding == "half_up":
        return np.where(np.abs(y) >= 2.0 ** 52, y, np.floor(y + 0.5))
    return np.round(y)  # half_even


def quantize_counted(x, fmt: Fmt, rounding: str):
    """``(raw, n)``: ``x`` quantized into ``fmt`` with saturation, and how many values saturated."""
    q = fixedpoint.quantize(x, fmt, rounding, "saturate")
    r = _round_unbounded(x, fmt, rounding)
    return q, int(np.count_nonzero((r > fmt.max_int) | (r < fmt.min_int)))


def quantize(params: CellParams, config) -> QParams:
    """Quantize ``params`` into ``config``'s formats with ``config.param_rounding``, saturating.

    Checks ``params`` against ``config`` first (:meth:`CellParams.check_matches`).
    ``QParams.saturated`` records how many values of each field saturated.
    """
    params.check_matches(config)
    rounding = config.param_rounding
    wf, bf = config.formats["weight"], config.formats["bias"]
    sat = {}
    w_ih, sat["w_ih"] = quantize_counted(params.w_ih, wf, rounding)
    w_hh, sat["w_hh"] = quantize_counted(params.w_hh, wf, rounding)
    b, b_split = params.cell.fold_bias(params.b_ih, params.b_hh)
    bias, sat["bias"] = quantize_counted(b, bf, rounding)
    bias_hn = None
    if b_split is not None:
        bias_hn, sat["bias_hn"] = quantize_counted(b_split, bf, rounding)
    w_peep = None
    if params.w_peep is not None:
        w_peep, sat["w_peep"] = quantize_counted(params.w_peep, config.formats["peephole"], rounding)
    return QParams(params.kind, w_ih, w_hh, bias, bias_hn, w_peep, dict(params.options), sat)
