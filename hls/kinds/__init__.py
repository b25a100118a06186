"""Each cell kind's C++ step, one module per kind, found through :mod:`model.kinds`.

A kind's ``cpp`` names its module here; the module defines ``constants(cfg, dp)``
(lines of ``constexpr`` alignment constants beyond the shared ones) and
``step(cfg)`` (the lines of ``inline void step(...)``, whose arguments are the
input and the kind's state arrays in :attr:`model.kinds.CellKind.state` order).
"""
from __future__ import annotations

import importlib


def emitter(kind):
    """The C++ emitter module of ``kind`` (a :class:`model.kinds.CellKind`)."""
    return importlib.import_module(kind.cpp)
