"""Fixed-point formats and the integer rounding/saturation rules every stage shares.

A value in format ``Fmt(signed, int_bits, frac_bits)`` is stored as the integer
``raw`` and means ``raw * 2**-frac_bits``.  ``int_bits`` counts the sign bit for
signed formats, exactly as the ``I`` of ``ap_fixed<W, I>`` does, so
``width = int_bits + frac_bits`` in both cases.

Short spelling: ``s3.12`` is signed with 3 integer bits (sign included) and 12
fractional bits (``ap_fixed<15,3>``); ``u1.15`` is unsigned (``ap_ufixed<16,1>``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

ROUNDING_MODES = ("truncate", "half_up", "half_even")
OVERFLOW_MODES = ("saturate", "wrap")

#: Widest format the int64 golden model can carry with headroom for products.
MAX_WIDTH = 40

_SHORT = re.compile(r"^\s*([su])\s*(-?\d+)\s*\.\s*(-?\d+)\s*$")
_AP = re.compile(r"^\s*ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*>\s*$")


class FormatError(ValueError):
    """A fixed-point format or mode that cannot be used."""


@dataclass(frozen=True)
class Fmt:
    """A fixed-point format: ``signed``, ``int_bits`` (sign included), ``frac_bits``."""

    signed: bool
    int_bits: int
    frac_bits: int

    def __post_init__(self):
        for name in ("int_bits", "frac_bits"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise FormatError(f"{name} must be an integer, not {v!r}")
        if self.frac_bits < 0:
            raise FormatError(f"frac_bits must be >= 0, not {self.frac_bits}")
        lo = 1 if self.signed else 0
        if self.int_bits < lo:
            raise FormatError(
                f"int_bits must be >= {lo} for a {'signed' if self.signed else 'unsigned'} "
                f"format (the sign bit counts), not {self.int_bits}")
        if not 1 <= self.width <= MAX_WIDTH:
            raise FormatError(f"width (int_bits + frac_bits) must be in 1..{MAX_WIDTH}, not {self.width}")
        if self.signed and self.width < 2:
            raise FormatError("a signed format needs a width of at least 2")

    # ---- derived properties -------------------------------------------------
    @property
    def width(self) -> int:
        return self.int_bits + self.frac_bits

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def resolution(self) -> float:
        return 2.0 ** -self.frac_bits

    @property
    def min(self) -> float:
        return self.min_int * self.resolution

    @property
    def max(self) -> float:
        return self.max_int * self.resolution

    @property
    def max_abs_int(self) -> int:
        return max(abs(self.min_int), abs(self.max_int))

    @property
    def ap(self) -> str:
        """The Vivado/Vitis HLS spelling, e.g. ``ap_fixed<16,4>``."""
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.int_bits}>"

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.int_bits}.{self.frac_bits}"

    # ---- parsing ------------------------------------------------------------
    @classmethod
    def parse(cls, text) -> "Fmt":
        """Parse ``s3.12``, ``u1.15``, ``ap_fixed<16,4>`` or ``ap_ufixed<8,1>``."""
        if isinstance(text, Fmt):
            return text
        if not isinstance(text, str):
            raise FormatError(f"a format must be a string like 's3.12' or 'ap_fixed<16,4>', not {text!r}")
        m = _SHORT.match(text)
        if m:
            return cls(m.group(1) == "s", int(m.group(2)), int(m.group(3)))
        m = _AP.match(text)
        if m:
            width, ib = int(m.group(2)), int(m.group(3))
            return cls(m.group(1) == "", ib, width - ib)
        raise FormatError(f"cannot parse format {text!r}: expected 's<int>.<frac>', 'u<int>.<frac>', "
                          f"'ap_fixed<W,I>' or 'ap_ufixed<W,I>'")

    # ---- conversions ----------------------------------------------------------
    def to_float(self, raw):
        return np.asarray(raw, dtype=np.float64) * self.resolution

    def contains(self, raw) -> bool:
        raw = np.asarray(raw)
        return bool(np.all((raw >= self.min_int) & (raw <= self.max_int)))


def check_rounding(mode: str, field: str = "rounding") -> str:
    if mode not in ROUNDING_MODES:
        raise FormatError(f"{field} must be one of {', '.join(ROUNDING_MODES)}, not {mode!r}")
    return mode


def check_overflow(mode: str, field: str = "overflow") -> str:
    if mode not in OVERFLOW_MODES:
        raise FormatError(f"{field} must be one of {', '.join(OVERFLOW_MODES)}, not {mode!r}")
    return mode


def shift_round(x, shift: int, rounding: str):
    """``x * 2**-shift`` rounded to an integer (``shift`` may be <= 0: exact left shift)."""
    x = np.asarray(x, dtype=np.int64)
    if shift <= 0:
        return x << np.int64(-shift)
    s = np.int64(shift)
    if rounding == "truncate":
        return x >> s
    if rounding == "half_up":
        return (x + (np.int64(1) << (s - 1))) >> s
    if rounding == "half_even":
        q = x >> s
        r = x & ((np.int64(1) << s) - 1)
        half = np.int64(1) << (s - 1)
        return q + ((r > half) | ((r == half) & ((q & 1) == 1)))
    raise FormatError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}")


def overflow(x, fmt: Fmt, mode: str):
    """Bring integers into ``fmt``'s range by saturating or wrapping."""
    x = np.asarray(x, dtype=np.int64)
    if mode == "saturate":
        return np.clip(x, fmt.min_int, fmt.max_int)
    if mode == "wrap":
        m = np.int64(1) << np.int64(fmt.width)
        y = x & (m - 1)
        if fmt.signed:
            y = np.where(y > fmt.max_int, y - m, y)
        return y
    raise FormatError(f"overflow must be one of {', '.join(OVERFLOW_MODES)}, not {mode!r}")


def requantize(raw, from_frac: int, fmt: Fmt, rounding: str = "half_even",
               overflow_mode: str = "saturate", return_flags: bool = False):
    """Integers with ``from_frac`` fractional bits -> integers in ``fmt``.

    Rounding happens first (when bits are dropped), then overflow handling.
    With ``return_flags`` also returns a boolean array, True where the value
    did not fit (saturated or wrapped).
    """
    y = shift_round(raw, from_frac - fmt.frac_bits, rounding)
    out = overflow(y, fmt, overflow_mode)
    if return_flags:
        return out, out != y
    return out


def quantize(x, fmt: Fmt, rounding: str = "half_even", overflow_mode: str = "saturate"):
    """Floats -> integers in ``fmt``."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise FormatError("cannot quantize NaN or infinite values")
    y = np.ldexp(x, fmt.frac_bits)  # exact scaling by a power of two
    lim = float(2 ** 62)
    y = np.clip(y, -lim, lim)
    if rounding == "truncate":
        r = np.floor(y)
    elif rounding == "half_up":
        r = np.floor(y + 0.5)
        # y + 0.5 can round up in float for |y| >= 2**52; those y are integers already
        r = np.where(np.abs(y) >= 2.0 ** 52, y, r)
    elif rounding == "half_even":
        r = np.round(y)  # numpy rounds half to even
    else:
        raise FormatError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}")
    return overflow(r.astype(np.int64), fmt, overflow_mode)


# ---- slow exact reference (for tests and documentation) -----------------------

def requantize_exact(raw: int, from_frac: int, fmt: Fmt, rounding: str, overflow_mode: str) -> int:
    """Scalar requantization done with ``fractions.Fraction``: the independent definition."""
    v = Fraction(int(raw), 2 ** from_frac) * (2 ** fmt.frac_bits)
    return _round_fit(v, fmt, rounding, overflow_mode)


def quantize_exact(x: float, fmt: Fmt, rounding: str, overflow_mode: str) -> int:
    return _round_fit(Fraction(x) * (2 ** fmt.frac_bits), fmt, rounding, overflow_mode)


def _round_fit(v: Fraction, fmt: Fmt, rounding: str, overflow_mode: str) -> int:
    import math
    fl = math.floor(v)
    rem = v - fl
    if rounding == "truncate":
        n = fl
    elif rounding == "half_up":
        n = fl + (1 if rem >= Fraction(1, 2) else 0)
    else:
        if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
            n = fl + 1
        else:
            n = fl
    if overflow_mode == "saturate":
        return max(fmt.min_int, min(fmt.max_int, n))
    m = 2 ** fmt.width
    n %= m
    if fmt.signed and n >= m // 2:
        n -= m
    return n


def bits_for(max_abs: int, signed: bool = True) -> int:
    """Width of the smallest two's complement (or unsigned) integer holding ``[-max_abs, max_abs]``."""
    max_abs = int(max_abs)
    return max_abs.bit_length() + (1 if signed else 0)
