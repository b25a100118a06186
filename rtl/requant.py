"""Requantization as pure Amaranth expressions, mirroring :func:`model.fixedpoint.requantize`.

A value holding an integer with ``from_frac`` fractional bits is brought to a
fixed-point format ``fmt`` in two steps, exactly as the golden model does:

1. **Rounding** (``shift = from_frac - fmt.frac_bits``).  For ``shift <= 0`` the
   value is shifted left, exactly.  For ``shift > 0``, with ``half = 2**(shift-1)``
   and floor (arithmetic) right shifts:

   - ``truncate``:  ``v >> shift``
   - ``half_up``:   ``(v + half) >> shift``
   - ``half_even``: ``(v + half - 1 + v[shift]) >> shift``; ``v[shift]`` is the
     lowest kept bit, i.e. the parity of the truncated quotient, which turns an
     exact tie into "round to even" and leaves every other case as half_up.

   Amaranth's ``+`` is widening (the sum is one bit wider than its widest
   operand), so adding the rounding constant can never wrap.

2. **Overflow** into ``fmt``: ``saturate`` clips to ``[fmt.min_int, fmt.max_int]``,
   ``wrap`` keeps the low ``fmt.width`` bits (two's complement reinterpretation
   for a signed ``fmt``).  The flag is 1 when the rounded value lies outside
   ``fmt``'s range (it was saturated or wrapped).  Without a rounding adder the
   range is tested on the bits above the format's magnitude; with one, on the
   value before it, against the constants where the rounded value leaves the
   range, so the range tests run beside the adder, not after it.

Everything is combinational; put registers around it as the timing needs.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value

from model.fixedpoint import Fmt, check_overflow, check_rounding

__all__ = ["requantize", "align", "resize"]


def _shape_range(shape) -> tuple[int, int]:
    """The smallest and largest integer a value of ``shape`` can hold."""
    w = shape.width
    if shape.signed:
        return -(1 << (w - 1)), (1 << (w - 1)) - 1
    return 0, (1 << w) - 1


def resize(value, width: int, signed_: bool) -> Value:
    """``value`` sign- (or zero-) extended or truncated to exactly ``width`` bits,
    returned with shape ``signed(width)`` if ``signed_`` else ``unsigned(width)``.

    Truncation keeps the low bits (two's complement wrap); extension follows the
    signedness of ``value``, so the integer is preserved whenever it fits."""
    value = Value.cast(value)
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, not {width!r}")
    n = len(value)
    if n == 0:
        v = Const(0, width)
    elif n < width:
        fill = value[-1].replicate(width - n) if value.shape().signed else Const(0, width - n)
        v = Cat(value, fill)
    else:
        v = value[:width]
    return v.as_signed() if signed_ else v.as_unsigned()


def align(value, shift: int) -> Value:
    """``value * 2**shift`` for a constant ``shift >= 0``: an exact (widening) left shift."""
    if not isinstance(shift, int) or isinstance(shift, bool) or shift < 0:
        raise ValueError(f"shift must be a non-negative integer, not {shift!r}")
    return Value.cast(value).shift_left(shift)


def _round(value: Value, shift: int, rounding: str) -> Value:
    """``value * 2**-shift`` rounded as :func:`model.fixedpoint.shift_round` does."""
    if shift <= 0:
        return value.shift_left(-shift)
    sgn = value.shape().signed
    if rounding == "truncate":
        y = value.shift_right(shift)
    elif rounding == "half_up":
        y = (value + (1 << (shift - 1))).shift_right(shift)
    else:  # half_even
        if shift < len(value):
            parity = value[shift]
        elif sgn:
            parity = value[-1]          # bits above the top are copies of the sign
        else:
            parity = Const(0, 1)
        y = (value + ((1 << (shift - 1)) - 1) + parity).shift_right(shift)
    if len(y) == 0:                     # unsigned value shifted out entirely
        y = Const(0, 1)
    return y


def _out_of_range(y: Value, fmt: Fmt):
    """``(y > fmt.max_int, y < fmt.min_int)`` from bit tests, not comparators (no carry chain after
    the rounding adder); ``None`` for a side ``y``'s shape can never cross.

    ``fmt`` holds ``[-2**m, 2**m)`` (signed, ``m = width - 1``) or ``[0, 2**m)`` (unsigned,
    ``m = width``): ``y`` is above it when it is non-negative with a bit at ``m`` or higher set,
    below it when it is negative and (signed ``fmt``) not every bit from ``m`` up is one."""
    n, y_signed = len(y), y.shape().signed
    m = fmt.width - 1 if fmt.signed else fmt.width
    top = n - 1 if y_signed else n              # y[m:top] are the bits above fmt's magnitude
    neg = y[n - 1] if y_signed else Const(0, 1)
    ymin, ymax = _shape_range(y.shape())
    hi = ~neg & y[m:top].any() if ymax > fmt.max_int else None
    lo = None
    if ymin < fmt.min_int:
        lo = neg & ~y[m:top].all() if fmt.signed else neg
    return hi, lo


def _rounds_out_of_range(value: Value, shift: int, fmt: Fmt):
    """``(y > fmt.max_int, y < fmt.min_int)`` for ``y`` the rounded ``value`` (``shift > 0``,
    half_up or half_even) as comparisons of ``value`` with constants: carry chains beside the
    rounding adder rather than after it; ``None`` for a side ``value``'s shape can never cross.

    With ``half = 2**(shift-1)``, ``y`` exceeds ``max_int`` from ``v = (max_int + 1) * 2**shift
    - half`` up and falls below ``min_int`` under ``v = min_int * 2**shift - half``.  Both modes
    agree at these ties: ``max_int`` is odd and ``min_int - 1`` is odd in every format, so
    half_even, like half_up, rounds the tie above ``max_int`` out of range and the tie below
    ``min_int`` into it."""
    half = 1 << (shift - 1)
    hi_from = ((fmt.max_int + 1) << shift) - half
    lo_under = (fmt.min_int << shift) - half
    vmin, vmax = _shape_range(value.shape())
    hi = value >= hi_from if vmax >= hi_from else None
    lo = value < lo_under if vmin < lo_under else None
    return hi, lo


def requantize(value, from_frac: int, fmt: Fmt, rounding: str, overflow: str):
    """Combinational requantization; returns ``(out, flag)``.

    Parameters
    ----------
    value : Value-castable
        Signed or unsigned integer with ``from_frac`` fractional bits.
    from_frac : int
        Fractional bits of ``value`` (any integer; ``from_frac < fmt.frac_bits``
        shifts left, exactly).
    fmt : Fmt or str
        Target format.
    rounding : str
        ``'truncate'``, ``'half_up'`` or ``'half_even'``.
    overflow : str
        ``'saturate'`` or ``'wrap'``.

    Returns
    -------
    out : Value
        Shape ``signed(fmt.width)`` or ``unsigned(fmt.width)``; equals
        ``model.fixedpoint.requantize(value, from_frac, fmt, rounding, overflow)``.
    flag : Value
        ``unsigned(1)``; 1 when the rounded value did not fit ``fmt``.

    Raises
    ------
    ValueError
        For an unknown rounding/overflow mode, a bad format or a non-integer ``from_frac``.
    """
    value = Value.cast(value)
    if not isinstance(from_frac, int) or isinstance(from_frac, bool):
        raise ValueError(f"from_frac must be an integer, not {from_frac!r}")
    if not isinstance(fmt, Fmt):
        fmt = Fmt.parse(fmt)
    check_rounding(rounding)
    check_overflow(overflow)
    if len(value) == 0:
        value = Const(0, 1)

    shift = from_frac - fmt.frac_bits
    y = _round(value, shift, rounding)
    if shift > 0 and rounding != "truncate":
        hi, lo = _rounds_out_of_range(value, shift, fmt)
    else:
        hi, lo = _out_of_range(y, fmt)
    flags = [f for f in (hi, lo) if f is not None]
    flag = Const(0, 1) if not flags else (flags[0] if len(flags) == 1 else flags[0] | flags[1])

    if overflow == "saturate":
        sat = y
        if lo is not None:
            sat = Mux(lo, fmt.min_int, sat)
        if hi is not None:
            sat = Mux(hi, fmt.max_int, sat)
        out = resize(sat, fmt.width, fmt.signed)
    else:  # wrap: keep the low bits
        out = resize(y, fmt.width, fmt.signed)
    return out, flag
