"""Registry of cell kinds: a kind is one module here plus one line below.

:func:`make` turns a config's ``kind`` and options into a :class:`CellKind`
instance, the only object shared code asks about a cell's structure,
arithmetic and timing (see :mod:`model.kinds.base`).  The gateware
post-processor and the C++ step of a kind are found through its
``gateware`` and ``cpp`` module paths.
"""
from __future__ import annotations

from ..errors import ConfigError
from .base import Aux, CellKind, Option
from .cifg import Cifg
from .gru import Gru
from .lstm import Lstm

#: kind name -> class, in the order the docs and the bench list them.
REGISTRY: dict[str, type[CellKind]] = {k.name: k for k in (Lstm, Gru, Cifg)}


def names() -> tuple:
    return tuple(REGISTRY)


def option_names() -> tuple:
    """Every option key any kind takes (the ``[cell]`` keys beyond kind and sizes)."""
    out = []
    for k in REGISTRY.values():
        out += [o for o in k.options if o not in out]
    return tuple(out)


def all_points() -> tuple:
    """Every requantization point any kind uses, in a stable order."""
    out = []
    for k in REGISTRY.values():
        out += [p for p in k.all_points if p not in out]
    return tuple(out)


def make(kind, **options) -> CellKind:
    """The kind ``kind`` with ``options``; :class:`ConfigError` names a bad kind or option."""
    if kind not in REGISTRY:
        raise ConfigError(f"kind must be one of {', '.join(map(repr, REGISTRY))}, not {kind!r}")
    return REGISTRY[kind](**options)


def carried_options(options: dict, kind: str) -> dict:
    """The entries of ``options`` that kind ``kind`` takes: what a change of kind keeps."""
    takes = REGISTRY[kind].options if kind in REGISTRY else {}
    return {k: v for k, v in options.items() if k in takes}


def variants() -> list:
    """One instance of every kind for every combination of its options (for tests and comparisons)."""
    import itertools
    out = []
    for cls in REGISTRY.values():
        keys = list(cls.options)
        for vals in itertools.product(*(cls.options[k].values for k in keys)):
            out.append(cls(**dict(zip(keys, vals))))
    return out


__all__ = ["Aux", "CellKind", "Option", "REGISTRY", "make", "names", "option_names", "all_points",
           "carried_options", "variants"]
