"""Cycle model of the LSTM gate pipeline in ``rtl/``: cycles per step and first-output latency.

The gateware is a fixed-latency pipeline, so its timing follows from a few stage
latencies (named below; each ``rtl`` component asserts it matches them):

* ``slots = ceil(rows / lanes)``: each lane computes one weight row per slot;
  a slot streams ``z = [x(t); h(t-1)]``, i.e. ``input + hidden`` cycles.
* The lanes hand a slot's ``lanes`` accumulators to the post-processor
  ``LANE_LATENCY`` cycles after the slot's last issue; it takes one row per
  cycle, and a unit's hidden value leaves ``ROW_TO_H`` cycles after its last
  row (``g``) entered.
* Step ``t + 1`` may stream its ``x`` part at once, but its first ``h`` element
  waits until all of ``h(t)`` is written: that wait is the only overhead in a
  steady stream, ``max(0, last_slot_rows + LANE_LATENCY + ROW_TO_H + 1 - input)``.

Ideal cycles per step are ``rows * (input + hidden) / lanes``; MAC utilization
is ideal / predicted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import Config

#: Issue -> weight/z memory read -> product register -> accumulator (and hold register).
LANE_LATENCY = 3
#: Latency of every activation unit (table read, interpolation, mirror).
ACT_LATENCY = 3
#: Post-processor: row issue (P0) .. pre-activation into the activation unit (P3).
ROW_TO_ACT = 3
#: Gate value (P6) -> cell sum (P7) -> c(t) register (P8) -> tanh(c) (P11) -> h register (P12).
ACT_TO_H = 1 + 1 + ACT_LATENCY + 1
ROW_TO_H = ROW_TO_ACT + ACT_LATENCY + ACT_TO_H
#: Peephole ``c_new``: o's pre-activation waits for c(t): add p_o*c(t) (P9), requantize (P10),
#: a second sigmoid (P13), then h (P14): two cycles more than the tanh(c) path.
C_NEW_EXTRA = 2


def row_to_h(cfg: Config) -> int:
    """Cycles from a unit's last row entering the post-processor to its h register."""
    return ROW_TO_H + (C_NEW_EXTRA if cfg.kind == "lstm" and cfg.peephole == "c_new" else 0)
#: Output FIFO (first-word-fall-through, buffered): h register -> element valid on the output stream.
FIFO_LATENCY = 2
#: Input: the vector is usable the cycle after its last element's handshake.
INPUT_LATENCY = 1
#: Hardware row order within a unit: (o, i, f, g) as PyTorch gate indices.
HW_GATE_ORDER = (3, 0, 1, 2)


@dataclass(frozen=True)
class CycleModel:
    rows: int
    slots: int
    slot_cycles: int
    last_slot_rows: int
    h_wait: int
    cycles_per_step: int
    first_step_cycles: int
    first_output_latency: int
    ideal_cycles_per_step: float

    @property
    def mac_utilization(self) -> float:
        return self.ideal_cycles_per_step / self.cycles_per_step

    @classmethod
    def for_config(cls, cfg: Config) -> "CycleModel":
        if cfg.kind != "lstm":
            raise ValueError(f"the cycle model covers kind = 'lstm', not {cfg.kind!r}")
        rows, lanes = cfg.rows, cfg.lanes
        k = cfg.input_size + cfg.hidden_size
        slots = math.ceil(rows / lanes)
        last = rows - (slots - 1) * lanes
        # last issue of a step at cycle 0; its last row enters the post-processor at
        # LANE_LATENCY + last - 1 and h(t) is complete ROW_TO_H + 1 cycles later.
        h_done = LANE_LATENCY + last - 1 + row_to_h(cfg) + 1
        h_wait = max(0, h_done - (1 + cfg.input_size))
        # first output: unit 0's last row (g, row 3) sits in slot 3 // lanes at position 3 % lanes
        g_slot, g_pos = divmod(len(HW_GATE_ORDER) - 1, lanes)
        first = (cfg.input_size - 1 + INPUT_LATENCY + (g_slot + 1) * k - 1 + LANE_LATENCY + g_pos
                 + row_to_h(cfg) + FIFO_LATENCY)
        return cls(rows=rows, slots=slots, slot_cycles=k, last_slot_rows=last, h_wait=h_wait,
                   cycles_per_step=slots * k + h_wait, first_step_cycles=slots * k,
                   first_output_latency=first, ideal_cycles_per_step=rows * k / lanes)
