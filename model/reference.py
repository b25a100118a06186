"""Float64 reference of the cells: the mathematics every fixed-point stage approximates.

Shapes: ``x`` is ``(batch, steps, input)``; outputs are ``(batch, steps, hidden)``.
State is always a tuple of ``(batch, hidden)`` float64 arrays: ``(h, c)`` for an
LSTM, ``(h,)`` for a GRU.  ``state=None`` means zeros.

LSTM (PyTorch gate order ``i, f, g, o``; ``W x`` stands for the gate's rows of
``w_ih @ x`` and ``U h`` for its rows of ``w_hh @ h``)::

    i = sigmoid(W_i x + b_ii + U_i h + b_hi + p_i * c(t-1))
    f = sigmoid(W_f x + b_if + U_f h + b_hf + p_f * c(t-1))
    g = tanh   (W_g x + b_ig + U_g h + b_hg)
    c(t) = f * c(t-1) + i * g
    o = sigmoid(W_o x + b_io + U_o h + b_ho + p_o * c_o)
    h(t) = o * tanh(c(t))

where the ``p`` terms exist only with a peephole, and ``c_o = c(t-1)`` for
``peephole = 'c_prev'``, ``c_o = c(t)`` for ``peephole = 'c_new'``.

GRU (PyTorch gate order ``r, z, n``)::

    r = sigmoid(W_r x + b_ir + U_r h + b_hr)
    z = sigmoid(W_z x + b_iz + U_z h + b_hz)
    n = tanh(W_n x + b_in + r * (U_n h + b_hn))        reset = 'after'  (PyTorch, Keras)
    n = tanh(W_n x + b_in + U_n (r * h) + b_hn)        reset = 'before' (original GRU)
    h(t) = (1 - z) * n + z * h(t-1)

The input projection ``x @ w_ih.T + b_ih`` does not depend on ``h``; :func:`run`
computes it for all steps at once and loops over steps only for the recurrent part.
"""
from __future__ import annotations

import numpy as np

from .params import CellParams


def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def zero_state(params: CellParams, batch: int) -> tuple:
    """The all-zero state for ``batch`` sequences: ``(h, c)`` for an LSTM, ``(h,)`` for a GRU."""
    z = np.zeros((batch, params.hidden_size))
    return (z, z.copy()) if params.kind == "lstm" else (z,)


def _check_state(params: CellParams, state, batch: int) -> tuple:
    if state is None:
        return zero_state(params, batch)
    names = ("h", "c") if params.kind == "lstm" else ("h",)
    want = "(h, c)" if params.kind == "lstm" else "(h,)"
    if not isinstance(state, (tuple, list)) or len(state) != len(names):
        raise ValueError(f"state for a {params.kind.upper()} must be a tuple {want} of (batch, hidden) "
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
    """One step given the input projection ``xp = x @ w_ih.T + b_ih`` of shape (batch, G*H).

    With ``tr``, each intermediate (see :func:`run_trace`) is appended to ``tr[name]``.
    """
    H = p.hidden_size
    h = state[0]
    if p.kind == "lstm":
        c = state[1]
        a = xp + h @ p.w_hh.T + p.b_hh
        ai, af, ag, ao = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        if p.peephole != "none":
            ai = ai + p.w_peep[0] * c
            af = af + p.w_peep[1] * c
        i, f, g = sigmoid(ai), sigmoid(af), np.tanh(ag)
        c_new = f * c + i * g
        if p.peephole == "c_prev":
            ao = ao + p.w_peep[2] * c
        elif p.peephole == "c_new":
            ao = ao + p.w_peep[2] * c_new
        o, tc = sigmoid(ao), np.tanh(c_new)
        h_new = o * tc
        if tr is not None:
            for k, v in (("pre", np.concatenate([ai, af, ag, ao], axis=1)), ("i", i), ("f", f), ("g", g),
                         ("o", o), ("cell", c_new), ("cell_act", tc), ("hidden", h_new)):
                tr.setdefault(k, []).append(v)
        return h_new, c_new
    # GRU
    rec = {}
    if p.reset == "after":
        a = h @ p.w_hh.T + p.b_hh
        pre_rz = xp[:, :2 * H] + a[:, :2 * H]
        r, z = sigmoid(pre_rz[:, :H]), sigmoid(pre_rz[:, H:])
        rec["hn"] = a[:, 2 * H:]
        pre_n = xp[:, 2 * H:] + r * a[:, 2 * H:]
    else:
        pre_rz = xp[:, :2 * H] + (h @ p.w_hh[:2 * H].T + p.b_hh[:2 * H])
        r, z = sigmoid(pre_rz[:, :H]), sigmoid(pre_rz[:, H:])
        rec["rh"] = r * h
        pre_n = xp[:, 2 * H:] + (r * h) @ p.w_hh[2 * H:].T + p.b_hh[2 * H:]
    n = np.tanh(pre_n)
    h_new = (1.0 - z) * n + z * h
    if tr is not None:
        rec.update(pre_rz=pre_rz, r=r, z=z, pre_n=pre_n, n=n, hidden=h_new)
        for k, v in rec.items():
            tr.setdefault(k, []).append(v)
    return (h_new,)


def run_step(params: CellParams, x_t, state=None) -> tuple:
    """One step: ``x_t`` of shape ``(batch, input)`` -> the new state tuple (``h`` is element 0)."""
    x_t = _check_x(params, x_t, 2)
    state = _check_state(params, state, x_t.shape[0])
    return _step(params, x_t @ params.w_ih.T + params.b_ih, state)


def run(params: CellParams, x, state=None) -> tuple:
    """Run the cell over ``x`` of shape ``(batch, steps, input)``.

    Returns ``(outputs, final_state)``: ``outputs`` is ``(batch, steps, hidden)`` float64
    (``h`` after every step) and ``final_state`` is ``(h, c)`` for an LSTM, ``(h,)`` for a GRU.
    """
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
    model's trace names: an LSTM gives ``pre`` (i, f, g, o pre-activations,
    peephole terms included), ``i``, ``f``, ``g``, ``o``, ``cell``, ``cell_act``
    and ``hidden``; a GRU ``pre_rz``, ``r``, ``z``, ``pre_n``, ``n``, ``hidden``
    and ``hn`` (``W_hn h + b_hn``, reset-after) or ``rh`` (``r * h(t-1)``, reset-before).
    """
    x = _check_x(params, x, 3)
    state = zero_state(params, x.shape[0])
    xp = x @ params.w_ih.T + params.b_ih
    tr: dict = {}
    for t in range(x.shape[1]):
        state = _step(params, xp[:, t], state, tr)
    trace = {k: np.stack(v, axis=1) for k, v in tr.items()}
    return trace["hidden"], trace
