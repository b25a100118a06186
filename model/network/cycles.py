"""Cycle model of the network gateware (:mod:`rtl.network`): steady-state cycles per step and
first-output latency, from each layer's cell model (:mod:`model.cycles`) and the head's timing.

The layers are chained through streams: layer ``l + 1`` takes h(t) of layer ``l`` as it leaves, so in
a steady stream every layer runs at the pace of the slowest, ``cycles_per_step = max`` over the
layers.  The first output follows one sequence's first step down the stack: layer ``l``'s element
``u`` of h(0) leaves ``x_to_h(l, u)`` cycles after the last element of its x(0) arrived, and layer
``l + 1``'s x(0) is complete when layer ``l``'s last element leaves.  With a head, the first logit
of a one-step sequence comes ``head_cycles`` after the last layer's last element.  Cycles count from
the transfer of the first x element, with x one element per cycle and ``o`` always ready.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..cycles import CycleModel, x_to_h
from .config import NetworkConfig


def head_cycles(head) -> int:
    """Cycles from the transfer of a computed step's last element to its first logit on ``o``: one cycle
    to start, ``features + 2`` per class (one product a cycle, then the last product and the sum), and one
    to emit."""
    return head.classes * (head.features + 2) + 1


@dataclass(frozen=True)
class NetworkCycleModel:
    layers: tuple             # CycleModel per layer
    cycles_per_step: int
    slowest_layer: int
    first_output_latency: int
    head_latency: int | None

    @property
    def balance(self) -> tuple:
        """Each layer's cycles per step over the slowest's: 1.0 for a layer that sets the pace."""
        return tuple(c.cycles_per_step / self.cycles_per_step for c in self.layers)

    @classmethod
    def for_config(cls, ncfg: NetworkConfig) -> "NetworkCycleModel":
        models = tuple(CycleModel.for_config(c) for c in ncfg.layers)
        slowest = max(range(len(models)), key=lambda k: models[k].cycles_per_step)
        last_in = ncfg.layers[0].input_size - 1
        first = None
        for c in ncfg.layers:
            first = last_in + x_to_h(c, 0)
            last_in = last_in + x_to_h(c, c.hidden_size - 1)
        head = None
        if ncfg.head is not None:
            head = head_cycles(ncfg.head)
            first = last_in + head
        return cls(models, models[slowest].cycles_per_step, slowest, first, head)
