"""Each cell kind's post-processor, one module per kind, found through :mod:`model.kinds`.

A kind's ``gateware`` names its module here; the module defines
``post_process(m, cfg, dp, row, st, state_w, extra) -> HOut`` (the contract in
:mod:`rtl.gates`).  :func:`post_processor` is the only lookup shared code does.
"""
from __future__ import annotations

import importlib


def post_processor(kind):
    """The ``post_process`` function of ``kind`` (a :class:`model.kinds.CellKind`)."""
    return importlib.import_module(kind.gateware).post_process
