"""Float64 reference of a network: layers in order, each direction a cell of :mod:`model.reference`,
then the head.  PyTorch's conventions throughout (``x`` batch-first).

A reverse direction runs the cell over the time-reversed sequence; its output at step ``t`` is its
state after consuming steps ``T-1 .. t``, and its final state is the one after step 0, exactly as
``nn.LSTM(bidirectional=True)`` reports them.
"""
from __future__ import annotations

import numpy as np

from .. import reference as cell_reference
from .params import NetworkParams
from .state import from_slots, to_slots


def check_x(net: NetworkParams, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != net.input_size:
        raise ValueError(f"x has shape {x.shape}; expected 3-D (batch, steps, input) with input = {net.input_size}")
    return x


def run_slots(layers, x, slots: list, run_cell) -> tuple:
    """The layer loop shared by the float and golden networks over ``layers`` (each a sequence with one entry
    per direction): ``run_cell(layer, direction, x, state)`` returns ``(outputs, final_state)`` of one cell;
    returns ``(per-layer outputs, final per-slot states)``."""
    outs, finals, k = [], [], 0
    y = x
    for i, layer in enumerate(layers):
        parts = []
        for d in range(len(layer)):
            xs = y if d == 0 else y[:, ::-1]
            o, s = run_cell(i, d, np.ascontiguousarray(xs), slots[k])
            parts.append(o if d == 0 else o[:, ::-1])
            finals.append(tuple(s))
            k += 1
        y = np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]
        outs.append(y)
    return outs, finals


def run(net: NetworkParams, x, state=None, all_layers: bool = False) -> tuple:
    """``(outputs, final_state)``: outputs of the last layer ``(batch, steps, directions * hidden)`` (every
    layer's, in a list, with ``all_layers``) and the final state in the form :mod:`model.network.state`
    describes (stacked for a uniform network)."""
    x = check_x(net, x)
    start = to_slots(net.slots(), state, x.shape[0], net.initial_state)
    outs, finals = run_slots(net.layers, x, start, lambda i, d, xs, s: cell_reference.run(net.layers[i][d], xs, s))
    return (outs if all_layers else outs[-1]), from_slots(net.slots(), finals)


def head(net: NetworkParams, y) -> np.ndarray:
    """Logits ``W y + b`` of the head over the last axis of ``y``."""
    if net.head is None:
        raise ValueError("this network has no head (give one to from_torch / from_onnx, or in NetworkParams)")
    return np.asarray(y, dtype=np.float64) @ net.head.weight.T + net.head.bias


def classify(net: NetworkParams, x, state=None, every_step: bool = False) -> tuple:
    """``(logits, classes)`` of the head on the last step's output (``(batch, classes)``, ``(batch,)``), or on
    every step's with ``every_step`` (``(batch, steps, classes)``, ``(batch, steps)``).  The class is the
    index of the largest logit, the first one on a tie."""
    y, _ = run(net, x, state)
    logits = head(net, y if every_step else y[:, -1])
    return logits, np.argmax(logits, axis=-1)
