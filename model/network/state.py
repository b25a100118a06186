"""The two ways a network's state is written, and the conversion between them.

- **Stacked** (PyTorch's ``h_n`` / ``c_n``): for a uniform network (every layer has the same state
  tensors and hidden size), a tuple in the kind's state order of arrays shaped
  ``(layers * directions, batch, hidden)``; a network with one state tensor (a GRU) also accepts
  the bare array, as PyTorch users write it.
- **Per slot**: a list with one state tuple per layer and direction, each array ``(batch, hidden)``
  in the cell's own convention (:mod:`model.reference`); any network, mixed ones included.

The functions take the network's slots, ``(layer, direction, cell)`` triples whose ``cell`` (a
:class:`~model.params.CellParams` or a :class:`~model.config.Config`) has ``.cell`` (the kind) and
``.hidden_size``.  Float states are float64; raw states (``dtype`` int64) must hold integers.
"""
from __future__ import annotations

import numpy as np


def uniform(slots) -> bool:
    """Every slot has the same state tensors and hidden size, so states stack as PyTorch's arrays."""
    return len({(_names(c), c.hidden_size) for _, _, c in slots}) == 1


def _names(c) -> tuple:
    return tuple(n for n, _ in c.cell.state)


def default_slots(slots, batch: int, default=None, dtype=np.float64) -> list:
    """Per-slot state for ``batch`` sequences: ``default`` (per slot, ``(hidden,)`` vectors) broadcast, or zeros."""
    out = []
    for k, (_, _, c) in enumerate(slots):
        if default is None:
            out.append(tuple(np.zeros((batch, c.hidden_size), dtype=dtype) for _ in c.cell.state))
        else:
            out.append(tuple(np.broadcast_to(v, (batch, c.hidden_size)).astype(dtype) for v in default[k]))
    return out


def to_slots(slots, state, batch: int, default=None, dtype=np.float64) -> list:
    """``state`` (stacked, bare or per slot; None for ``default`` or zeros) -> per-slot tuples of arrays."""
    if state is None:
        return default_slots(slots, batch, default, dtype)
    if isinstance(state, list) and len(state) == len(slots) and all(isinstance(s, (tuple, list)) for s in state):
        out = []
        for (i, d, c), s in zip(slots, state):
            names = _names(c)
            if len(s) != len(names):
                raise ValueError(f"state of layer {i} direction {d} must be a tuple ({', '.join(names)}), "
                                 f"not {len(s)} arrays")
            out.append(tuple(_array(v, (batch, c.hidden_size), dtype, f"state {n} of layer {i} direction {d}")
                             for n, v in zip(names, s)))
        return out
    if not uniform(slots):
        raise ValueError(f"state of a network whose layers differ in state or hidden size must be a list of "
                         f"{len(slots)} per-layer-and-direction state tuples")
    names = _names(slots[0][2])
    if not isinstance(state, (tuple, list)):
        if len(names) != 1:
            raise ValueError(f"state must be a tuple ({', '.join(names)}) of (layers * directions, batch, hidden) "
                             f"arrays, not a bare {type(state).__name__}")
        state = (state,)
    if len(state) != len(names):
        raise ValueError(f"state must be a tuple ({', '.join(names)}) of (layers * directions, batch, hidden) "
                         f"arrays, not {len(state)} arrays")
    shape = (len(slots), batch, slots[0][2].hidden_size)
    stacked = [_array(v, shape, dtype, f"state {n}", "(layers * directions, batch, hidden)")
               for n, v in zip(names, state)]
    return [tuple(s[k] for s in stacked) for k in range(len(slots))]


def from_slots(slots, states: list):
    """Per-slot state tuples -> the stacked tuple for a uniform network, else the per-slot list."""
    if not uniform(slots):
        return [tuple(s) for s in states]
    return tuple(np.stack([s[j] for s in states]) for j in range(len(states[0])))


def _array(v, shape, dtype, what, meaning=None):
    a = np.asarray(v)
    if dtype != np.float64 and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must hold raw integers, not dtype {a.dtype}")
    a = a.astype(dtype)
    if a.shape != shape:
        raise ValueError(f"{what} has shape {a.shape}; expected {meaning + ' = ' if meaning else ''}{shape}")
    return a
