"""Cycle model of the network gateware (:mod:`rtl.network`): steady-state cycles per step, the
first-output latency and, for a sequence of any length, the cycle its first output leaves; from each
layer's cell model (:mod:`model.cycles`), the bidirectional layer's phases and the head's timing.

Cycles count from the transfer of the first x element, with x offered one element per cycle and the
output always ready.  Layers are chained through streams; each step's events are followed down the
stack:

- A unidirectional layer's h(t) element ``u`` leaves ``x_to_h(u)`` cycles after the last element of
  its x(t) arrived, or ``cycles_per_step`` after the same element of h(t - 1) when the layer is the
  one setting the pace: the later of the two.  In a steady stream every layer runs at the pace of
  the slowest, so ``cycles_per_step`` is the largest of the layers'.
- A bidirectional layer (:class:`rtl.network.BiLayer`) takes a whole sequence, then runs both
  directions over it at once (both cells have the same timing) and sends the steps out one element
  per cycle: its first output leaves ``(input - 1) + x_to_h(hidden - 1) + (T - 1) * cycles_per_step
  + latency.BIDIR`` cycles after its last input element, and it takes the next sequence the cycle
  after its last output.
- The head starts on a sequence's last step once its last element has arrived and gives its first
  logit :func:`head_cycles` later.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import latency
from ..cycles import CycleModel, x_to_h
from .config import NetworkConfig


def head_cycles(head) -> int:
    """Cycles from the transfer of a computed step's last element to its first logit on ``o``: one cycle
    to start, ``features + 5`` per class (one product address a cycle, then the last product's read,
    its registered operands, its product, the sum and the requantized logit), and one to emit."""
    return head.classes * (head.features + 5) + 1


@dataclass(frozen=True)
class NetworkCycleModel:
    config: NetworkConfig
    layers: tuple             # CycleModel per layer
    cycles_per_step: int      # steady state of a unidirectional stack (the slowest layer's)
    slowest_layer: int
    first_output_latency: int  # a one-step sequence: its first output word
    head_latency: int | None

    @property
    def balance(self) -> tuple:
        """Each layer's cycles per step over the slowest's: 1.0 for a layer that sets the pace."""
        return tuple(c.cycles_per_step / self.cycles_per_step for c in self.layers)

    def bidirectional_cycles(self, layer: int, steps: int) -> int:
        """Cycles bidirectional layer ``layer`` holds a sequence of ``steps`` steps fed one element per
        cycle: input, both directions, output, up to taking the next sequence's first element."""
        c = self.config.layers[layer]
        return steps * c.input_size + self._bidir_core(layer, steps) + 2 * steps * c.hidden_size - 1

    def _bidir_core(self, layer: int, steps: int) -> int:
        c, cm = self.config.layers[layer], self.layers[layer]
        return c.input_size - 1 + x_to_h(c, c.hidden_size - 1) + (steps - 1) * cm.cycles_per_step + latency.BIDIR

    def latency(self, steps: int) -> int:
        """The cycle the first output word of a ``steps``-step sequence leaves: the first h element of the
        last layer, or the first logit (computed on the last step)."""
        if steps < 1:
            raise ValueError(f"steps must be a positive integer, not {steps!r}")
        ncfg = self.config
        in_last = [t * ncfg.input_size + ncfg.input_size - 1 for t in range(steps)]  # x(t)'s last element
        first = None  # per step: the cycle its element 0 leaves the layer
        for k, c in enumerate(ncfg.layers):
            H, cps = c.hidden_size, self.layers[k].cycles_per_step
            if ncfg.directions[k] == 1:
                first, out = [], []
                for t in range(steps):
                    f, e = in_last[t] + x_to_h(c, 0), in_last[t] + x_to_h(c, H - 1)
                    first.append(max(f, first[-1] + cps) if first else f)
                    out.append(max(e, out[-1] + cps) if out else e)
                in_last = out
            else:
                start = in_last[-1] + self._bidir_core(k, steps)
                first = [start + 2 * H * t for t in range(steps)]
                in_last = [start + 2 * H * (t + 1) - 1 for t in range(steps)]
        if ncfg.head is not None:
            return in_last[0 if ncfg.head.every_step else -1] + head_cycles(ncfg.head)
        if ncfg.outputs == "last":
            return first[-1] - (2 * ncfg.layers[-1].hidden_size * (steps - 1) if ncfg.directions[-1] == 2 else 0)
        return first[0]

    @classmethod
    def for_config(cls, ncfg: NetworkConfig) -> "NetworkCycleModel":
        models = tuple(CycleModel.for_config(c) for c in ncfg.layers)
        slowest = max(range(len(models)), key=lambda k: models[k].cycles_per_step)
        head = head_cycles(ncfg.head) if ncfg.head is not None else None
        m = cls(ncfg, models, models[slowest].cycles_per_step, slowest, 0, head)
        object.__setattr__(m, "first_output_latency", m.latency(1))
        return m
