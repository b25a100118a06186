"""The two ways a network's state is written, and the conversion between them.

- **Stacked** (PyTorch's ``h_n`` / ``c_n``): for a uniform network (every layer has the same state
  tensors and hidden size), a tuple in the kind's state order of arrays shaped
  ``(layers * directions, batch, hidden)``; a network with one state tensor (a GRU) also accepts
  the bare array, as PyTorch users write it.
- **Per slot**: a list with one state tuple per layer and direction, each array ``(batch, hidden)``
  in the cell's own convention (:mod:`model.reference`); any network, mixed ones included.

:func:`to_slots` accepts either and returns per-slot float64 arrays; :func:`from_slots` returns the
stacked form for a uniform network and the per-slot list otherwise.
"""
from __future__ import annotations

import numpy as np


def default_slots(net, batch: int, dtype=np.float64) -> list:
    """The network's default initial state (zeros unless it carries one), per slot, for ``batch`` sequences."""
    out = []
    for k, (_, _, p) in enumerate(net.slots()):
        if net.initial_state is None:
            out.append(tuple(np.zeros((batch, p.hidden_size), dtype=dtype) for _ in p.cell.state))
        else:
            out.append(tuple(np.broadcast_to(v, (batch, p.hidden_size)).astype(dtype)
                             for v in net.initial_state[k]))
    return out


def to_slots(net, state, batch: int, dtype=np.float64) -> list:
    """``state`` (stacked, bare or per slot; None for the default) -> per-slot tuples of ``dtype`` arrays."""
    slots = net.slots()
    if state is None:
        return default_slots(net, batch, dtype)
    if isinstance(state, list) and len(state) == len(slots) and all(isinstance(s, (tuple, list)) for s in state):
        out = []
        for (i, d, p), s in zip(slots, state):
            names = [n for n, _ in p.cell.state]
            if len(s) != len(names):
                raise ValueError(f"state of layer {i} direction {d} must be a tuple ({', '.join(names)}), "
                                 f"not {len(s)} arrays")
            out.append(tuple(_array(v, (batch, p.hidden_size), dtype, f"state {n} of layer {i} direction {d}")
                             for n, v in zip(names, s)))
        return out
    if not net.uniform:
        raise ValueError(f"state of a network whose layers differ in state or hidden size must be a list of "
                         f"{len(slots)} per-layer-and-direction state tuples")
    names = net.state_names()
    if not isinstance(state, (tuple, list)):
        if len(names) != 1:
            raise ValueError(f"state must be a tuple ({', '.join(names)}) of (layers * directions, batch, hidden) "
                             f"arrays, not a bare {type(state).__name__}")
        state = (state,)
    if len(state) != len(names):
        raise ValueError(f"state must be a tuple ({', '.join(names)}) of (layers * directions, batch, hidden) "
                         f"arrays, not {len(state)} arrays")
    shape = (len(slots), batch, net.hidden_size(0))
    stacked = [_array(v, shape, dtype, f"state {n}", "(layers * directions, batch, hidden)") for n, v in zip(names, state)]
    return [tuple(s[k] for s in stacked) for k in range(len(slots))]


def from_slots(net, slots: list):
    """Per-slot state tuples -> the stacked tuple for a uniform network, else the per-slot list."""
    if not net.uniform:
        return [tuple(s) for s in slots]
    return tuple(np.stack([s[j] for s in slots]) for j in range(len(slots[0])))


def _array(v, shape, dtype, what, meaning=None):
    a = np.asarray(v)
    if dtype != np.float64 and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must hold raw integers, not dtype {a.dtype}")
    a = a.astype(dtype)
    if a.shape != shape:
        raise ValueError(f"{what} has shape {a.shape}; expected {meaning + ' = ' if meaning else ''}{shape}")
    return a
