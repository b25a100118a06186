"""How a study turns its float inputs into a point's ``input`` format: what the host streams.

The hardware receives integer inputs, so their quantization happens before the
cell, with the point's ``input_rounding`` and ``input_overflow`` (sweep keys;
default ``half_even`` and ``saturate``, the host's choice in
:func:`model.golden.quantize_input`).  The point's ``rounding`` and
``overflow`` govern the requantization points inside the cell.
"""
from __future__ import annotations

from model.fixedpoint import Fmt, quantize
from model.params import quantize_counted


def modes(settings: dict) -> tuple[str, str]:
    """``(rounding, overflow)`` that quantize the inputs at a point with ``settings``."""
    return settings["input_rounding"], settings["input_overflow"]


def describe(settings: dict) -> str:
    """``half_even/saturate``: the input modes of a point, as the report writes them."""
    return "/".join(modes(settings))


def quantize_inputs(x, fmt: Fmt, rounding: str = "half_even", overflow: str = "saturate"):
    """``(raw, n)``: ``x`` quantized into ``fmt`` with ``rounding`` and ``overflow``, and how many values lay
    outside ``fmt`` after rounding (saturated or wrapped)."""
    raw, n = quantize_counted(x, fmt, rounding)
    return (raw if overflow == "saturate" else quantize(x, fmt, rounding, overflow)), n
