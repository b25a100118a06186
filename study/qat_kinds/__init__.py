"""Each cell kind's quantization-aware training step (:mod:`study.qat`), one module per kind, found
through :mod:`model.kinds`.

A kind's ``qat`` names its module here (``None``: the kind has no QAT step).  The module defines
``ACCEPTS`` (``{option: accepted values}`` of the kind's options the step computes) and
``step(m, xp, state, w_hh, bias, bias_hn)``: one time step on real values, every requantization
point through ``m.q`` (:class:`study.qat`'s cell), returning the kind's state tuple (``h`` first).
"""
from __future__ import annotations

import importlib


def steps(kind):
    """The QAT step module of ``kind`` (a :class:`model.kinds.CellKind`), or None when it has none."""
    return importlib.import_module(kind.qat) if kind.qat else None
