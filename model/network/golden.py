"""Bit-exact golden model of a network: each layer's cells through :func:`model.golden.run`, the
reverse direction on the time-reversed sequence, the directions' raw outputs concatenated (they share
the layer's ``hidden`` format, which is the next layer's ``input`` format), then the head
(:mod:`model.network.head`).

A state is carried between calls by passing a result's ``state`` back in (stateful streaming:
a long sequence in chunks gives exactly the outputs of the whole sequence at once).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import golden as cell_golden
from ..fixedpoint import quantize as quantize_values
from ..params import quantize as quantize_cell
from . import head as head_numerics
from .config import NetworkConfig
from .params import NetworkParams
from .reference import run_slots
from .state import from_slots, to_slots


@dataclass(eq=False)
class QNetwork:
    """Raw parameters of a network: per layer a tuple of :class:`QParams` (one per direction), the
    :class:`~model.network.head.QHead` or None, and the default initial state (raw, per slot) or None."""
    layers: list
    head: head_numerics.QHead | None = None
    initial_state: list | None = None

    @property
    def total_saturated(self) -> int:
        n = sum(q.total_saturated for layer in self.layers for q in layer)
        return n + (sum(self.head.saturated.values()) if self.head is not None else 0)


def quantize(net: NetworkParams, ncfg: NetworkConfig) -> QNetwork:
    """Quantize every cell into its layer's formats, the head into the head's, the default initial
    state into each layer's state formats (half-even, saturating)."""
    net.check_matches(ncfg)
    layers = [tuple(quantize_cell(p, ncfg.layers[i]) for p in layer) for i, layer in enumerate(net.layers)]
    head = head_numerics.quantize_head(net.head, ncfg.head) if net.head is not None else None
    init = None
    if net.initial_state is not None:
        init = [tuple(quantize_values(v, c.fmt(t), "half_even", "saturate") for (_, t), v in zip(c.cell.state, s))
                for (_, _, c), s in zip(ncfg.slots(), net.initial_state)]
    return QNetwork(layers, head, init)


@dataclass
class NetworkResult:
    """Raw results: ``outputs`` per layer ``(batch, steps, directions * hidden)``, the final ``state`` in the
    form :mod:`model.network.state` describes, ``logits`` and ``classes`` of the head (None without one),
    and ``saturated`` counts per layer and point (``{"layer 0": {...}, "head": n}``)."""
    outputs: list
    state: object
    saturated: dict
    logits: np.ndarray | None = None
    classes: np.ndarray | None = None

    def __iter__(self):
        return iter((self.outputs[-1], self.state))


def run(qnet: QNetwork, x, ncfg: NetworkConfig, state=None, head_every_step: bool | None = None) -> NetworkResult:
    """Run the network over ``x`` (batch, steps, input): float (quantized to layer 0's ``input`` format) or
    raw integers.  ``state`` is raw, stacked or per slot (None: the default initial state, or zeros).
    ``head_every_step`` (default: the config's ``head.every_step``) gives logits for every step."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != ncfg.input_size:
        raise ValueError(f"x must have shape (batch, steps, {ncfg.input_size}), not {x.shape}")
    bidir_steps = x.shape[1] if ncfg.bidirectional else 0
    if bidir_steps > ncfg.max_steps:
        raise ValueError(f"x has {bidir_steps} steps but a bidirectional layer buffers at most "
                         f"network.max_steps = {ncfg.max_steps}")
    slots = ncfg.slots()
    start = to_slots(slots, state, x.shape[0], qnet.initial_state, dtype=np.int64)
    sat = {}

    def cell(i, d, xs, s):
        r = cell_golden.run(qnet.layers[i][d], xs, ncfg.layers[i], state=s)
        layer = sat.setdefault(f"layer {i}", {})
        for k, v in r.saturated.items():
            layer[k] = layer.get(k, 0) + v
        return r.outputs, r.state

    outs, finals = run_slots(qnet.layers, x, start, cell)
    logits = classes = None
    if ncfg.head is not None:
        every = ncfg.head.every_step if head_every_step is None else head_every_step
        y = outs[-1] if every else outs[-1][:, -1]
        logits, sat["head"] = head_numerics.logits(qnet.head, ncfg.head, y)
        classes = head_numerics.classes(logits)
    return NetworkResult(outs, from_slots(slots, finals), sat, logits, classes)


__all__ = ["NetworkResult", "QNetwork", "quantize", "run"]
