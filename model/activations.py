"""Hardware-friendly sigmoid and tanh, each defined once as integer arithmetic.

``make_activation(fn, spec, in_fmt, out_fmt)`` returns an :class:`Activation`
that maps raw integers in ``in_fmt`` to raw integers in ``out_fmt``.  The
integer definition (:meth:`Activation.evaluate`) is the contract: the golden
model calls it (through the fast :meth:`Activation.__call__`), and the gateware
builds the same steps from the constants in :meth:`Activation.hw`.

Every method follows the same three steps, which is all the hardware does:

1. **Magnitude.**  ``a = |x_raw|``.  For a signed ``in_fmt`` the most negative
   code ``-2**(W-1)`` has magnitude ``2**(W-1)``, which needs ``W`` bits as an
   *unsigned* number (``hw()["abs_bits"]``); it is never wrapped.
2. **Positive half.**  ``p = P(a)``, an integer with ``out_fmt.frac_bits``
   fractional bits approximating ``f(a * 2**-in_frac)`` for ``f(x), x >= 0``
   (sigmoid in ``[1/2, 1]``, tanh in ``[0, 1]``).  ``P`` is one of the methods
   below.  ``p`` is then clamped to ``pos_max = min(one, out_fmt.max_int)``
   where ``one = 2**out_frac`` (table entries are already stored clamped).
   This is the only saturation: 1.0 does not fit ``s1.15`` or ``u0.16``.
3. **Mirror.**  For ``x_raw < 0``: sigmoid gives ``one - p``, tanh gives
   ``-p``; for ``x_raw >= 0`` the result is ``p``.  Because the clamp happens
   before the mirror, the symmetry is exact for every code whose negation is
   representable: ``sig(x) + sig(-x) == one`` and ``tanh(-x) == -tanh(x)``.
   The mirrored value always fits ``out_fmt`` (``p >= one/2`` for sigmoid and
   ``pos_max <= -out_fmt.min_int`` for tanh), so no second saturation exists.
   (Consequence: with ``one > out_fmt.max_int``, e.g. sigmoid into ``s1.15``,
   sigmoid of a large negative input is 1 LSB, not 0.)

Methods for the positive half ``P(a)`` (``in_frac``/``out_frac`` are the
fractional bits of ``in_fmt``/``out_fmt``):

``exact``
    ``quantize(f(a * 2**-in_frac), out_fmt, half_even, saturate)`` in floating
    point.  Reference only; there is no hardware for it (``hw()`` says so).
``lut``
    Uniform table of ``spec.size`` entries over ``[-R, R)`` (``R = spec.range``);
    by symmetry only the ``size/2`` entries for ``[0, R)`` are stored.  The step
    is ``2R/size = 2**-k`` and ``s = in_frac - k``::

        j = min(a >> s, size/2 - 1)          (a << -s when s < 0)
        P = T[j],   T[j] = quantize(f((j + 1/2) * 2**-k))   (midpoint sampling)

``lut_interp``
    ``size/2 + 1`` entries ``T[j] = quantize(f(j * 2**-k))``, ``j = 0..size/2``::

        j = a >> s,  r = a & (2**s - 1)
        P = T[size/2]                                      if j >= size/2
        P = T[j] + (((T[j+1] - T[j]) * r + 2**(s-1)) >> s)  otherwise
        (for s <= 0 there is no fraction: P = T[min(a << -s, size/2)])

    one multiply (``delta * r``) and a round-half-up shift.
``pwl``
    Piecewise linear with power-of-two slopes.  Sigmoid is PLAN (Amin, Curtis,
    Hayes-Gill 1997); tanh is PLAN mapped through ``tanh(x) = 2 sig(2x) - 1``::

        sigmoid                               tanh
        0     <= a < 1      a/4 + 0.5         0      <= a < 0.5     a
        1     <= a < 2.375  a/8 + 0.625       0.5    <= a < 1.1875  a/2 + 0.25
        2.375 <= a < 5      a/32 + 0.84375    1.1875 <= a < 2.5     a/8 + 0.6875
        5     <= a          1                 2.5    <= a           1

    Segment ``i`` starts at ``lo_raw = ceil(lo * 2**in_frac)``; the active
    segment is the last one with ``a >= lo_raw`` (a priority chain of
    comparisons with constants).  Its value is
    ``shift_round(a, in_frac + slope_shift - out_frac, truncate) + offset_raw``
    (``offset_raw = round_half_even(offset * 2**out_frac)``, exact whenever
    ``out_frac >= 5``) or just ``offset_raw`` for the flat top segment, whose
    offset is ``one``.  Note: PLAN as published is *not* monotone: the lines
    meet at 7/3, not at the breakpoint 2.375, so sigmoid drops by 2**-8 at
    ``a = 2.375`` (tanh: 2**-7 at 1.1875).  We keep the published constants.
``hard``
    The same segment machinery with fewer segments: sigmoid ``a/4 + 0.5`` for
    ``a < 2``, else 1; tanh ``a`` for ``a < 1``, else 1.

``python -m model.activations`` prints the error table (see :func:`error_table`).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .config import ACT_METHODS, TABLE_METHODS, ActSpec
from .fixedpoint import Fmt, FormatError, quantize, shift_round

FUNCTIONS = ("sigmoid", "tanh")

#: Inputs at most this wide are served from a precomputed table of every code.
DIRECT_TABLE_MAX_WIDTH = 20

#: Widest in_fmt for which :meth:`Activation.error` visits every code; wider
#: formats are measured on an evenly spaced subset (see the method).
ERROR_FULL_MAX_WIDTH = 24

#: Segments of the piecewise-linear methods, for the positive half ``a >= 0``:
#: ``(lo, slope_shift, offset)``; slope ``2**-slope_shift``; ``slope_shift=None``
#: is the flat top segment whose value is ``one`` (offset 1.0).
SEGMENTS = {
    ("sigmoid", "pwl"): ((0.0, 2, 0.5), (1.0, 3, 0.625), (2.375, 5, 0.84375), (5.0, None, 1.0)),
    ("tanh", "pwl"): ((0.0, 0, 0.0), (0.5, 1, 0.25), (1.1875, 3, 0.6875), (2.5, None, 1.0)),
    ("sigmoid", "hard"): ((0.0, 2, 0.5), (2.0, None, 1.0)),
    ("tanh", "hard"): ((0.0, 0, 0.0), (1.0, None, 1.0)),
}

#: Headroom: intermediate products/shifts must stay below 2**62 in int64.
_INT64_BITS = 62


def sigmoid_float(x):
    """``1 / (1 + exp(-x))`` in float64 without overflow for large ``|x|`` (the float reference's sigmoid)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_pos(x):
    """sigmoid for x >= 0 (stable form)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _float_fn(fn):
    """The exact float function over all reals (used for error measurement)."""
    if fn == "sigmoid":
        return lambda x: 0.5 + 0.5 * np.tanh(0.5 * np.asarray(x, dtype=np.float64))
    return lambda x: np.tanh(np.asarray(x, dtype=np.float64))


def _pos_fn(fn):
    """The exact float function on x >= 0 (used for tables and 'exact')."""
    return _sigmoid_pos if fn == "sigmoid" else (lambda x: np.tanh(np.asarray(x, dtype=np.float64)))


def _as_fmt(value, name) -> Fmt:
    if isinstance(value, Fmt):
        return value
    if isinstance(value, str):
        try:
            return Fmt.parse(value)
        except FormatError as e:
            raise ValueError(f"{name}: {e}") from None
    raise ValueError(f"{name} must be a Fmt or a format string like 's5.11', not {value!r}")


class Activation:
    """One sigmoid or tanh approximation between two fixed-point formats.

    Build it with :func:`make_activation`.  Attributes ``fn``, ``spec``,
    ``in_fmt``, ``out_fmt`` are read-only.  See the module docstring for the
    integer definition.
    """

    __slots__ = ("_fn", "_spec", "_in", "_out", "_one", "_pos_max", "_k", "_s",
                 "_table", "_segments", "_direct")

    def __init__(self, fn: str, spec: ActSpec, in_fmt: Fmt, out_fmt: Fmt):
        if not isinstance(fn, str) or fn not in FUNCTIONS:
            raise ValueError(f"fn must be one of {', '.join(map(repr, FUNCTIONS))}, not {fn!r}")
        if not isinstance(spec, ActSpec):
            raise ValueError(f"spec must be an ActSpec(method, size, range), not {spec!r}")
        in_fmt = _as_fmt(in_fmt, "in_fmt")
        out_fmt = _as_fmt(out_fmt, "out_fmt")
        _check_spec(fn, spec, in_fmt)
        _check_out(fn, out_fmt)
        self._fn, self._spec, self._in, self._out = fn, spec, in_fmt, out_fmt
        self._one = 1 << out_fmt.frac_bits
        self._pos_max = min(self._one, out_fmt.max_int)
        self._k = self._s = None
        self._table = self._segments = self._direct = None
        m = spec.method
        if m in TABLE_METHODS:
            n = int(spec.size).bit_length() - 1
            e = math.frexp(float(spec.range))[1] - 1  # range = 2**e
            self._k = n - 1 - e                       # step = 2R/size = 2**-k
            self._s = in_fmt.frac_bits - self._k
            self._table = self._build_table()
        elif m in ("pwl", "hard"):
            self._segments = self._build_segments()
        self._check_int64()

    # ---- read-only attributes ---------------------------------------------------
    fn = property(lambda self: self._fn, doc="'sigmoid' or 'tanh'")
    spec = property(lambda self: self._spec, doc="the ActSpec")
    in_fmt = property(lambda self: self._in, doc="format of the raw input")
    out_fmt = property(lambda self: self._out, doc="format of the raw output")

    def __repr__(self):
        s = self._spec
        extra = f", size={s.size}, range={s.range:g}" if s.method in TABLE_METHODS else ""
        return f"<Activation {self._fn} {s.method}{extra} {self._in} -> {self._out}>"

    # ---- construction helpers ------------------------------------------------------
    def _build_table(self):
        f = _pos_fn(self._fn)
        half = self._spec.size // 2
        step = 2.0 ** -self._k
        if self._spec.method == "lut":
            xs = (np.arange(half, dtype=np.float64) + 0.5) * step
        else:
            xs = np.arange(half + 1, dtype=np.float64) * step
        t = quantize(f(xs), self._out, "half_even", "saturate")
        return np.minimum(t, self._pos_max).astype(np.int64)

    def _build_segments(self):
        in_frac, out_frac = self._in.frac_bits, self._out.frac_bits
        segs = []
        for lo, slope_shift, offset in SEGMENTS[(self._fn, self._spec.method)]:
            lo_raw = math.ceil(Fraction(lo) * 2 ** in_frac)
            if slope_shift is None:
                segs.append({"lo": lo, "lo_raw": lo_raw, "slope": 0, "slope_shift": 0,
                             "term_shift": 0, "offset": offset, "offset_raw": self._one})
            else:
                segs.append({"lo": lo, "lo_raw": lo_raw, "slope": 1, "slope_shift": slope_shift,
                             "term_shift": in_frac + slope_shift - out_frac, "offset": offset,
                             "offset_raw": round(Fraction(offset) * 2 ** out_frac)})
        return segs

    def _check_int64(self):
        """Refuse format combinations whose intermediates would not fit int64."""
        abs_bits = self._in.width
        m = self._spec.method
        need = 0
        if m == "lut_interp" and self._s > 0:
            d = int(np.max(np.diff(self._table))) if len(self._table) > 1 else 0
            need = max(d, 1).bit_length() + self._s + 1
        elif m in ("pwl", "hard"):
            need = max(abs_bits + max(-sg["term_shift"], 0) for sg in self._segments)
        if need > _INT64_BITS:
            raise ValueError(f"in_fmt = {self._in} with out_fmt = {self._out} needs {need}-bit "
                             f"intermediates for {self._fn} {m}; at most {_INT64_BITS} are supported")

    # ---- the integer definition ----------------------------------------------------
    def _check_raw(self, raw) -> np.ndarray:
        x = np.asarray(raw)
        if x.dtype.kind not in "iu":
            raise TypeError(f"{self._fn} input must be raw integers in {self._in}, "
                            f"not an array of dtype {x.dtype}")
        x = x.astype(np.int64, copy=False)
        if x.size and (x.min() < self._in.min_int or x.max() > self._in.max_int):
            raise ValueError(f"{self._fn} input out of range for in_fmt = {self._in}: raw values must be in "
                             f"[{self._in.min_int}, {self._in.max_int}], got [{x.min()}, {x.max()}]")
        return x

    def _positive(self, a: np.ndarray) -> np.ndarray:
        """P(a): the positive half in out_frac raw, clamped to pos_max."""
        m = self._spec.method
        if m == "exact":
            v = _pos_fn(self._fn)(np.ldexp(a.astype(np.float64), -self._in.frac_bits))
            p = quantize(v, self._out, "half_even", "saturate")
        elif m == "lut":
            half = self._spec.size // 2
            if self._s >= 0:
                j = a >> np.int64(self._s)
            else:  # cap first so the left shift cannot overflow; the cap is above the clamp
                j = np.minimum(a, half) << np.int64(-self._s)
            p = self._table[np.minimum(j, half - 1)]
        elif m == "lut_interp":
            half = self._spec.size // 2
            t = self._table
            if self._s <= 0:
                j = np.minimum(a, half) << np.int64(-self._s)
                p = t[np.minimum(j, half)]
            else:
                s = np.int64(self._s)
                j = np.minimum(a >> s, half)
                r = a & ((np.int64(1) << s) - 1)
                jn = np.minimum(j + 1, half)
                frac = ((t[jn] - t[j]) * r + (np.int64(1) << (s - 1))) >> s
                p = t[j] + np.where(j >= half, 0, frac)
        else:  # pwl, hard: priority chain over segment starts
            p = None
            for sg in self._segments:
                if sg["slope"]:
                    v = shift_round(a, sg["term_shift"], "truncate") + sg["offset_raw"]
                else:
                    v = np.full(a.shape, sg["offset_raw"], dtype=np.int64)
                p = v if p is None else np.where(a >= sg["lo_raw"], v, p)
        return np.minimum(p, self._pos_max)

    def evaluate(self, raw) -> np.ndarray:
        """The integer definition: int64 raw in ``in_fmt`` -> int64 raw in ``out_fmt``."""
        x = self._check_raw(raw)
        a = np.abs(x)
        p = self._positive(a)
        if self._fn == "sigmoid":
            y = np.where(x < 0, self._one - p, p)
        else:
            y = np.where(x < 0, -p, p)
        return np.asarray(y, dtype=np.int64)

    def __call__(self, raw) -> np.ndarray:
        """Same result as :meth:`evaluate`; narrow inputs are served by indexing a
        table of the output for every input code (built on first use)."""
        if self._in.width > DIRECT_TABLE_MAX_WIDTH:
            return self.evaluate(raw)
        x = self._check_raw(raw)
        if self._direct is None:
            self._direct = self.evaluate(self.codes())
        return np.asarray(self._direct[x - self._in.min_int])

    def codes(self) -> np.ndarray:
        """Every raw code of ``in_fmt``, ascending."""
        return np.arange(self._in.min_int, self._in.max_int + 1, dtype=np.int64)

    # ---- hardware data -----------------------------------------------------------------
    def hw(self) -> dict:
        """Everything the gateware needs, as plain Python ints (and a few strings).

        Always present:

        - ``fn``: 'sigmoid' or 'tanh'; ``method``: the spec's method.
        - ``synthesizable``: 0 for 'exact' (hardware must refuse it), else 1.
          For 'exact' only ``fn``, ``method``, ``synthesizable``, ``in_fmt``,
          ``out_fmt`` are given.
        - ``in_fmt``, ``out_fmt``: short spellings ('s5.11'); ``in_width``,
          ``in_frac``, ``in_signed`` (0/1), ``out_width``, ``out_frac``,
          ``out_signed`` (0/1).
        - ``abs_bits``: width of the unsigned magnitude ``a = |x|`` (= in_width;
          holds ``2**(W-1)`` for the most negative code).
        - ``mirror``: 'one_minus' (sigmoid: ``y = one - p`` for x < 0) or
          'negate' (tanh: ``y = -p`` for x < 0).
        - ``one``: ``2**out_frac``, the raw value of 1.0 used by the sigmoid mirror
          and as the top segment of pwl/hard.
        - ``pos_max``: clamp of the positive half before mirroring,
          ``min(one, out_max)``.
        - ``out_min``, ``out_max``: raw limits of ``out_fmt`` (every output is inside).

        'lut':

        - ``table``: ``size/2`` entries (raw out_fmt, each in [0, pos_max]),
          entry j = f((j + 1/2) * step).
        - ``index_shift``: ``s``; ``j = a >> s`` (``a << -s`` if negative).
        - ``index_max``: ``size/2 - 1``, the clamp of ``j``.
        - ``size``, ``range_exp`` (range = 2**range_exp), ``step_exp``
          (step = 2**step_exp): documentation of where the table came from.

        'lut_interp':

        - ``table``: ``size/2 + 1`` entries, entry j = f(j * step).
        - ``index_shift``: ``s``; ``j = a >> s``, ``r = a & (2**s - 1)``.
        - ``frac_bits``: ``max(s, 0)``, the width of ``r``.
        - ``round``: ``2**(s-1)`` (0 when s <= 0), added before ``>> s``.
        - ``index_max``: ``size/2``; ``j >= index_max`` gives ``table[index_max]``.
        - ``delta_bits``: bits of the largest ``table[j+1] - table[j]`` (an
          unsigned multiplier operand; the product has ``delta_bits + frac_bits`` bits).
        - ``size``, ``range_exp``, ``step_exp`` as for 'lut'.

        'pwl' and 'hard':

        - ``segments``: list of dicts in ascending ``lo_raw``; the active segment
          is the last with ``a >= lo_raw`` (segment 0 has ``lo_raw = 0``).  Keys:
          ``lo_raw`` (raw in_fmt magnitude where it starts), ``slope`` (1: has the
          term ``a * 2**-slope_shift``, 0: constant), ``slope_shift``,
          ``term_shift`` (``in_frac + slope_shift - out_frac``: the slope term is
          ``a >> term_shift``, truncating, or ``a << -term_shift`` if negative),
          ``offset_raw`` (raw out_frac, added to the slope term; ``one`` for the
          flat top segment).
        """
        i, o = self._in, self._out
        d = {"fn": self._fn, "method": self._spec.method,
             "synthesizable": int(self._spec.method != "exact"),
             "in_fmt": str(i), "out_fmt": str(o)}
        if self._spec.method == "exact":
            return d
        d.update({"in_width": i.width, "in_frac": i.frac_bits, "in_signed": int(i.signed),
                  "out_width": o.width, "out_frac": o.frac_bits, "out_signed": int(o.signed),
                  "abs_bits": i.width, "mirror": "one_minus" if self._fn == "sigmoid" else "negate",
                  "one": self._one, "pos_max": self._pos_max,
                  "out_min": o.min_int, "out_max": o.max_int})
        m = self._spec.method
        if m in TABLE_METHODS:
            half = self._spec.size // 2
            d.update({"table": [int(v) for v in self._table], "index_shift": self._s,
                      "size": int(self._spec.size), "range_exp": math.frexp(float(self._spec.range))[1] - 1,
                      "step_exp": -self._k})
            if m == "lut":
                d["index_max"] = half - 1
            else:
                dmax = int(np.max(np.diff(self._table)))
                d.update({"index_max": half, "frac_bits": max(self._s, 0),
                          "round": (1 << (self._s - 1)) if self._s > 0 else 0,
                          "delta_bits": dmax.bit_length()})
        else:
            d["segments"] = [{k: int(sg[k]) for k in
                              ("lo_raw", "slope", "slope_shift", "term_shift", "offset_raw")}
                             for sg in self._segments]
        return d

    # ---- accuracy -------------------------------------------------------------------------
    def error(self) -> tuple[float, float]:
        """``(max_abs, rms)`` of the output against the exact float function over
        every input code of ``in_fmt`` (for ``in_fmt.width > ERROR_FULL_MAX_WIDTH``
        an evenly spaced subset of ``2**ERROR_FULL_MAX_WIDTH`` codes including both ends)."""
        if self._in.width <= ERROR_FULL_MAX_WIDTH:
            x = self.codes()
        else:
            x = np.unique(np.linspace(self._in.min_int, self._in.max_int,
                                      1 << ERROR_FULL_MAX_WIDTH).round().astype(np.int64))
        y = self._out.to_float(self(x))
        err = y - _float_fn(self._fn)(self._in.to_float(x))
        return float(np.max(np.abs(err))), float(np.sqrt(np.mean(err * err)))


def _check_spec(fn, spec, in_fmt):
    m = spec.method
    if m not in ACT_METHODS:
        raise ValueError(f"{fn} spec.method must be one of {', '.join(map(repr, ACT_METHODS))}, not {m!r}")
    if m not in TABLE_METHODS:
        if spec.size or spec.range:
            raise ValueError(f"{fn} spec.size/spec.range apply only to methods "
                             f"{', '.join(map(repr, TABLE_METHODS))}; method {m!r} takes size=0, range=0 "
                             f"(got size={spec.size!r}, range={spec.range!r})")
        return
    size = spec.size
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 4 or size & (size - 1):
        raise ValueError(f"{fn} spec.size must be a power of two >= 4 (entries over the full range "
                         f"[-range, range)), not {size!r}")
    rng = spec.range
    if (not isinstance(rng, (int, float, np.integer, np.floating)) or isinstance(rng, bool)
            or not math.isfinite(rng) or rng <= 0 or math.frexp(float(rng))[0] != 0.5):
        raise ValueError(f"{fn} spec.range must be a positive power of two (e.g. 4.0 or 8.0), not {rng!r}")


def _check_out(fn, out_fmt):
    if out_fmt.frac_bits < 1:
        raise ValueError(f"out_fmt = {out_fmt} has no fractional bits; {fn} outputs need frac_bits >= 1")
    if fn == "tanh" and not out_fmt.signed:
        raise ValueError(f"out_fmt = {out_fmt} is unsigned; tanh outputs are in [-1, 1] and need a signed format")


def make_activation(fn: str, spec: ActSpec, in_fmt: Fmt, out_fmt: Fmt) -> Activation:
    """The activation ``fn`` ('sigmoid' or 'tanh') approximated by ``spec`` from
    raw ``in_fmt`` to raw ``out_fmt``.  Raises ``ValueError`` naming the bad argument."""
    return Activation(fn, spec, in_fmt, out_fmt)


# ---- error table ----------------------------------------------------------------------------

DEFAULT_RANGES = {"sigmoid": 8.0, "tanh": 4.0}


def error_table(in_fmt, out_fmt, sizes=(64, 256, 1024), ranges=None) -> list[dict]:
    """Rows ``{fn, method, size, range, max_abs, rms}`` for every method.

    ``out_fmt`` is one format for both functions, or a dict ``{fn: Fmt}`` (only
    the functions it names get rows).  Table methods use ``ranges[fn]``
    (default sigmoid 8, tanh 4) and each size in ``sizes``; the others have
    ``size = 0``, ``range = 0``.
    """
    in_fmt = _as_fmt(in_fmt, "in_fmt")
    outs = dict(out_fmt) if isinstance(out_fmt, dict) else {fn: out_fmt for fn in FUNCTIONS}
    ranges = {**DEFAULT_RANGES, **(ranges or {})}
    rows = []
    for fn, of in outs.items():
        specs = [ActSpec("exact")]
        for m in TABLE_METHODS:
            specs += [ActSpec(m, int(n), float(ranges[fn])) for n in sizes]
        specs += [ActSpec("pwl"), ActSpec("hard")]
        for sp in specs:
            mx, rms = make_activation(fn, sp, in_fmt, of).error()
            rows.append({"fn": fn, "method": sp.method, "size": sp.size, "range": sp.range,
                         "max_abs": mx, "rms": rms})
    return rows


def format_error_table(rows, in_fmt=None, out_fmts=None) -> str:
    lines = []
    if in_fmt is not None:
        lines.append(f"in_fmt {in_fmt}; out_fmt " + ", ".join(f"{k} {v}" for k, v in (out_fmts or {}).items()))
    lines.append(f"{'fn':8} {'method':11} {'size':>5} {'range':>5} {'max_abs':>9} {'rms':>9}")
    for r in rows:
        size = str(r["size"]) if r["size"] else "-"
        rng = f"{r['range']:g}" if r["range"] else "-"
        lines.append(f"{r['fn']:8} {r['method']:11} {size:>5} {rng:>5} {r['max_abs']:9.6f} {r['rms']:9.6f}")
    return "\n".join(lines)


def main():
    in_fmt = Fmt.parse("s5.11")
    outs = {"sigmoid": Fmt.parse("u1.15"), "tanh": Fmt.parse("s1.15")}
    print(format_error_table(error_table(in_fmt, outs), in_fmt, outs))


if __name__ == "__main__":
    main()
