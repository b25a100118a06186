"""Float64 reference of the cells: the mathematics every fixed-point stage approximates.

Shapes: ``x`` is ``(batch, steps, input)``; outputs are ``(batch, steps, hidden)``.
State is always a tuple of ``(batch, hidden)`` float64 arrays in the kind's
order (:attr:`model.kinds.CellKind.state`): ``(h, c)`` for the LSTM kinds,
``(h,)`` for a GRU.  ``state=None`` means zeros.

Each kind's step (its equations in its module's docstring under :mod:`model.kinds`)
is its ``float_step``.  The
input projection ``x @ w_ih.T + b_ih`` does not depend on ``h``; :func:`run`
computes it for all steps at once and loops over steps only for the recurrent part.
"""
from __future__ import annotations

import numpy as np

from .activations import sigmoid_float as sigmoid
from .params import CellParams

__all__ = ["sigmoid", "zero_state", "run_step", "run", "run_trace"]


def zero_state(params: CellParams, batch: int) -> tuple:
    """The all-zero state for ``batch`` sequences, one array per state tensor of the kind."""
    return tuple(np.zeros((batch, params.hidden_size)) for _ in params.cell.state)


def _check_state(params: CellParams, state, batch: int) -> tuple:
    if state is None:
        return zero_state(params, batch)
    names = [n for n, _ in params.cell.state]
    want = "(" + ", ".join(names) + ("," if len(names) == 1 else "") + ")"
    if not isinstance(state, (tuple, list)) or len(state) != len(names):
        raise ValueError(f"state for a {params.cell.variant} must be a tuple {want} of (batch, hidden) "
                         f"arrays, not {type(state).__name__}"
                         + (f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""))
    out = []
    for name, s in zip(names, state):
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (batch, params.hidden_size):
            raise ValueError(f"state {name} has shape {s.shape}; expected (batch, hidden) = "
                             f"({batch}, {params.hidden_size})")
        out.append(s)
    return tuple(out)


def _check_x(params: CellParams, x, ndim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    want = "(batch, steps, input)" if ndim == 3 else "(batch, input)"
    if x.ndim != ndim or x.shape[-1] != params.input_size:
        raise ValueError(f"x has shape {x.shape}; expected {ndim}-D {want} with input = {params.input_size}")
    return x


def _step(p: CellParams, xp, state, tr: dict | None = None) -> tuple:
    """One step given the input projection ``xp = x @ w_ih.T + b_ih`` of shape (batch, G*H)."""
    return p.cell.float_step(p, xp, state, tr)


def run_step(params: CellParams, x_t, state=None) -> tuple:
    """One step: ``x_t`` of shape ``(batch, input)`` -> the new state tuple (``h`` is element 0)."""
    x_t = _check_x(params, x_t, 2)
    state = _check_state(params, state, x_t.shape[0])
    return _step(params, x_t @ params.w_ih.T + params.b_ih, state)


def run(params, x, state=None) -> tuple:
    """Run the cell over ``x`` of shape ``(batch, steps, input)``.

    Returns ``(outputs, final_state)``: ``outputs`` is ``(batch, steps, hidden)`` float64
    (``h`` after every step) and ``final_state`` the kind's state tuple (``(h, c)`` or ``(h,)``).
    A :class:`~model.network.NetworkParams` runs as :func:`model.network.run` (PyTorch's shapes:
    outputs ``(batch, steps, directions * hidden)``, states ``(layers * directions, batch, hidden)``).
    """
    if not isinstance(params, CellParams):
        from . import network
        if isinstance(params, network.NetworkParams):
            return network.run(params, x, state)
        raise TypeError(f"params must be CellParams or NetworkParams, not {type(params).__name__}")
    x = _check_x(params, x, 3)
    batch, steps, _ = x.shape
    state = _check_state(params, state, batch)
    xp = x @ params.w_ih.T + params.b_ih  # (batch, steps, G*H): all steps at once
    out = np.empty((batch, steps, params.hidden_size))
    for t in range(steps):
        state = _step(params, xp[:, t], state)
        out[:, t] = state[0]
    return out, state


def run_trace(params: CellParams, x) -> tuple:
    """Run from the zero state and record every intermediate: ``(outputs, trace)``.

    ``trace`` maps a name to a ``(batch, steps, ...)`` array, with the golden
    model's trace names (the kind's ``trace_formats``, accumulators aside): an
    LSTM gives ``pre`` (pre-activations of its gates in row order, peephole
    terms included), ``i``, ``f``, ``g``, ``o``, ``cell``, ``cell_act`` and
    ``hidden``; a GRU ``pre_rz``, ``r``, ``z``, ``pre_n``, ``n``, ``hidden`` and
    ``hn`` (``W_hn h + b_hn``, reset-after) or ``rh`` (``r * h(t-1)``, reset-before).
    """
    x = _check_x(params, x, 3)
    state = zero_state(params, x.shape[0])
    xp = x @ params.w_ih.T + params.b_ih
    tr: dict = {}
    for t in range(x.shape[1]):
        state = _step(params, xp[:, t], state, tr)
    trace = {k: np.stack(v, axis=1) for k, v in tr.items()}
    if not trace:  # no steps: nothing recorded, as golden.run(trace=True) gives
        return np.empty((x.shape[0], 0, params.hidden_size)), trace
    return trace["hidden"], trace
