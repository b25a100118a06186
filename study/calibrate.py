"""Calibration: pick each tensor's integer bits from the ranges observed on training data.

:func:`observe_ranges` runs the float cell (float64, the same equations as
:mod:`model.reference`) over the training sequences and records the largest
magnitude of every tensor of the numerics contract; :func:`int_bits` turns a
magnitude into integer bits (sign bit included, as in ``ap_fixed<W,I>``); and
:func:`choose_formats` gives each tensor a format of the requested width with
those integer bits and the rest as fraction bits.

:func:`observe_network_ranges` does the same for every layer of a network
(each layer's input is the float output of the layer below, both directions
of a layer share its ranges) and for the head (weight, bias and logits).

``margin`` multiplies the observed magnitude before the bits are chosen
(1.0 = exactly the observed range, 2.0 = one spare integer bit), for data that
may reach further than the training set did.
"""
from __future__ import annotations

import math

import numpy as np

from model.fixedpoint import Fmt
from model.params import CellParams
from model import reference
from model.network.reference import head as float_head, run_slots

from .data import by_length

#: The tensors of the numerics contract a study gives formats, in report order.
TENSORS = ("input", "weight", "bias", "pre", "gate", "candidate", "cell", "cell_act", "hidden")
#: Tensors whose values lie in [0, 1]: unsigned formats.
UNSIGNED = ("gate",)


class CalibrationError(ValueError):
    """A width, margin or range that cannot give a format."""



def observe_ranges(params: CellParams, seqs) -> dict:
    """``{tensor: max |value|}`` over ``seqs`` (each run alone from a zero state), float64.

    Keys: ``input``, ``weight``, ``bias``, ``pre``, ``gate``, ``candidate``,
    ``hidden`` and, for an LSTM, ``cell`` and ``cell_act`` (a GRU reports 0 for those).
    ``pre`` covers every pre-activation the golden model requantizes to ``pre``
    (for a reset-after GRU also ``W_hn h + b_hn``).  Peephole cells are not supported.
    """
    r = _parameter_ranges(params)
    for _, idx in by_length(seqs).items():
        _record(params, np.stack([np.asarray(seqs[i], dtype=np.float64) for i in idx]), r)
    return r


def observe_network_ranges(net, seqs) -> tuple:
    """``(layers, head)``: per layer the ranges of :func:`observe_ranges` over both directions, the
    layer's input being the float output of the layer below; ``head`` is ``{weight, bias, logits}``
    (the logits of the last step), or None for a network without a head."""
    layers = [_parameter_ranges(*layer) for layer in net.layers]
    head = None if net.head is None else {"weight": float(np.abs(net.head.weight).max()),
                                          "bias": float(np.abs(net.head.bias).max()), "logits": 0.0}
    for _, idx in by_length(seqs).items():
        x = np.stack([np.asarray(seqs[i], dtype=np.float64) for i in idx])

        def cell(i, d, xs, state):
            return _record(net.layers[i][d], xs, layers[i]), ()

        outs, _ = run_slots(net.layers, x, [None] * len(net.slots()), cell)
        if head is not None:
            head["logits"] = max(head["logits"], float(np.abs(float_head(net, outs[-1][:, -1])).max()))
    return layers, head


def _parameter_ranges(*cells: CellParams) -> dict:
    """Ranges with the weights and biases of ``cells`` (the directions of one layer) filled in."""
    r = {k: 0.0 for k in ("input", "pre", "gate", "candidate", "cell", "cell_act", "hidden")}
    r["weight"] = r["bias"] = 0.0
    for params in cells:
        if params.cell.peep_rows:
            raise CalibrationError("observe_ranges supports cells without peepholes only")
        r["weight"] = max(r["weight"], float(max(np.abs(params.w_ih).max(), np.abs(params.w_hh).max())))
        b, b_split = params.cell.fold_bias(params.b_ih, params.b_hh)  # the biases as the hardware stores them
        r["bias"] = max(r["bias"], float(max(np.abs(b).max(), 0.0 if b_split is None else np.abs(b_split).max())))
    return r


def _record(params: CellParams, x, r: dict) -> np.ndarray:
    """Run ``params`` over the batch ``x`` from a zero state, widen the ranges ``r``; return the outputs."""
    def upd(k, v):
        r[k] = max(r[k], float(np.abs(v).max()))

    fmts = params.cell.trace_formats()
    upd("input", x)
    h, tr = reference.run_trace(params, x)
    for name, v in tr.items():
        if fmts.get(name) in r:
            upd(fmts[name], v)
    return h


def int_bits(max_abs: float, signed: bool = True, margin: float = 1.0) -> int:
    """Fewest integer bits (sign included when ``signed``) whose range reaches ``margin * max_abs``.

    Signed ``I`` covers ``[-2**(I-1), 2**(I-1))``; unsigned ``I`` covers ``[0, 2**I)``.  A
    magnitude equal to the upper limit counts as covered (it saturates by less than one LSB).
    """
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not margin >= 1.0 \
            or not math.isfinite(margin):
        raise CalibrationError(f"margin must be a number >= 1.0 (the factor on the observed range), not {margin!r}")
    if not math.isfinite(max_abs) or max_abs < 0:
        raise CalibrationError(f"an observed range must be a finite magnitude >= 0, not {max_abs!r}")
    m = max_abs * margin
    bits = 0 if m <= 1.0 else math.ceil(math.log2(m))
    while 2.0 ** bits < m:  # guard against rounding in log2
        bits += 1
    return bits + 1 if signed else bits


def choose_format(tensor: str, width: int, max_abs: float, margin: float = 1.0) -> Fmt:
    """The ``width``-bit format for ``tensor`` with integer bits from :func:`int_bits`.

    When the range needs more integer bits than the width holds, the format keeps
    every bit for the integer part (gates keep one fraction bit): values beyond
    it saturate, which the saturation counts then show.
    """
    if not isinstance(width, int) or isinstance(width, bool) or not 2 <= width <= 40:
        raise CalibrationError(f"width of {tensor} must be an integer from 2 to 40, not {width!r}")
    signed = tensor not in UNSIGNED
    i = int_bits(max_abs, signed, margin)
    i = min(i, width - 1 if tensor == "gate" else width)
    return Fmt(signed, i, width - i)


def choose_formats(ranges: dict, widths: dict, margin: float = 1.0) -> dict:
    """``{tensor: Fmt}`` for every tensor in ``widths`` (``{tensor: bits}``), from ``ranges``."""
    missing = sorted(set(widths) - set(ranges))
    if missing:
        raise CalibrationError(f"no observed range for {', '.join(missing)}; have {', '.join(sorted(ranges))}")
    return {t: choose_format(t, w, ranges[t], margin) for t, w in widths.items()}
