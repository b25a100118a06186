"""Row schedule and cycle model of the gate pipeline in ``rtl/``, for every cell kind.

The gateware is a fixed-latency pipeline, so its timing follows from the row
schedule, the stage latencies of :mod:`model.latency` and each kind's
``row_to_h`` and ``op_ready`` (:mod:`model.kinds`); ``rtl`` builds its delay
lines from the same numbers.

Schedule: the lanes compute weight rows; in slot ``s`` lane ``l`` computes one
row while ``z = [x(t); h(t-1)]`` streams past, ``input + hidden`` cycles.

* Single-pass kinds (e.g. the LSTM and the reset-after GRU): rows unit-major
  in the kind's ``hw_order`` (``o, i, f, g`` or ``r, z, n`` per unit),
  ``ceil(rows / lanes)`` slots.
* Reset-before GRU: two passes.  Pass 1 computes all ``r`` rows, then all ``z``
  rows, over ``[x; h(t-1)]``; pass 2 computes the ``n`` rows over ``[x; r*h(t-1)]``
  and waits at its first ``h`` element until every ``r*h`` is known.

Timing: the lanes hand a slot's accumulators to the post-processor
``LANE_LATENCY`` cycles after the slot's last issue; it takes one row per cycle,
and a unit's hidden value is registered ``row_to_h`` cycles after its last row
entered.  Step ``t + 1`` streams its ``x`` part at once, but its first ``h``
element waits until all of ``h(t)`` is written (``h_wait``); a reset-before
GRU's pass 2 may also wait for ``r*h`` (``rh_wait``).  Those waits are the only
overhead in a steady stream.  A step also starts only once the step two before
it is complete; that wait (``start_wait``, non-zero only when a step's slots are
shorter than the post-processing drain) is hidden by the h wait, except when two
sequence starts follow each other: the second then takes
``first_step_cycles + start_wait``.  Ideal cycles per step are
``rows * (input + hidden) / lanes``; MAC utilization is ideal / predicted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import latency

__all__ = ["Schedule", "CycleModel", "rh_wait", "x_to_h"]


@dataclass(frozen=True)
class Schedule:
    """Which hardware row each lane computes in each slot.

    Hardware rows are numbered in post-processing order: unit-major
    (``row = unit * gates + hw_gate``) or, for the reset-before GRU, gate-major
    (``row = hw_gate * hidden + unit``).  ``pass_rows`` are the rows per pass.
    """
    hidden: int
    lanes: int
    gates: int
    gate_order: tuple
    gate_major: bool
    pass_rows: tuple
    slot_cycles: int

    @classmethod
    def for_config(cls, cfg) -> "Schedule":
        H, kind = cfg.hidden_size, cfg.cell
        return cls(H, cfg.lanes, kind.n_gates, kind.hw_order, kind.gate_major,
                   tuple(len(p) * H for p in kind.pass_gates), cfg.input_size + H)

    @property
    def rows(self) -> int:
        return self.gates * self.hidden

    @property
    def pass_slots(self) -> tuple:
        return tuple(math.ceil(r / self.lanes) for r in self.pass_rows)

    @property
    def slots(self) -> int:
        return sum(self.pass_slots)

    @property
    def slot_rows(self) -> tuple:
        """Rows computed in each slot (the last slot of each pass may be part-filled)."""
        out = []
        for rows, slots in zip(self.pass_rows, self.pass_slots):
            out += [self.lanes] * (slots - 1) + [rows - (slots - 1) * self.lanes]
        return tuple(out)

    def slot_of(self, row: int) -> tuple:
        """(slot, lane) computing hardware row ``row``."""
        base_row = base_slot = 0
        for rows, slots in zip(self.pass_rows, self.pass_slots):
            if row < base_row + rows:
                s, lane = divmod(row - base_row, self.lanes)
                return base_slot + s, lane
            base_row, base_slot = base_row + rows, base_slot + slots
        raise IndexError(f"row {row} out of range (rows = {self.rows})")

    def unit_gate(self, row: int) -> tuple:
        """(unit, hardware gate index) of hardware row ``row``."""
        if self.gate_major:
            g, u = divmod(row, self.hidden)
        else:
            u, g = divmod(row, self.gates)
        return u, g

    def torch_row(self, row: int) -> int:
        """The PyTorch weight row (``gate * hidden + unit``) of hardware row ``row``."""
        u, g = self.unit_gate(row)
        return self.gate_order[g] * self.hidden + u

    def unit_done_row(self, unit: int) -> int:
        """The hardware row whose post-processing produces ``h[unit]``."""
        return (self.gates - 1) * self.hidden + unit if self.gate_major else unit * self.gates + self.gates - 1


def rh_wait(cfg) -> int:
    """A two-pass kind's wait at pass 2's first h element for the last ``r*h`` (0 for single-pass kinds);
    every step has it, a sequence's first one too (its ``r*h0``)."""
    if cfg.cell.op_ready is None:
        return 0
    sch = Schedule.for_config(cfg)
    s_r, p_r = sch.slot_of(sch.hidden - 1)
    ready = (s_r + 1) * sch.slot_cycles - 1 + latency.LANE + p_r + cfg.cell.op_ready
    return max(0, ready - (sch.pass_slots[0] * sch.slot_cycles + cfg.input_size))


def x_to_h(cfg, unit: int) -> int:
    """Cycles from the transfer of a sequence's first x(0)'s last element to the transfer of its h(0)'s
    element ``unit`` on ``o`` (the first step of a sequence never waits for h; ``o`` ready)."""
    sch = Schedule.for_config(cfg)
    s, p = sch.slot_of(sch.unit_done_row(unit))
    wait = rh_wait(cfg) if s >= sch.pass_slots[0] and len(sch.pass_slots) > 1 else 0
    return (latency.INPUT + (s + 1) * sch.slot_cycles - 1 + wait + latency.LANE + p + cfg.cell.row_to_h
            + latency.FIFO)


@dataclass(frozen=True)
class CycleModel:
    """Predicted timing of a config's gateware, in clock cycles (see the module docstring)."""
    rows: int
    slots: int
    slot_cycles: int
    last_slot_rows: int
    h_wait: int
    rh_wait: int
    start_wait: int
    cycles_per_step: int
    first_step_cycles: int
    first_output_latency: int
    ideal_cycles_per_step: float

    @property
    def mac_utilization(self) -> float:
        return self.ideal_cycles_per_step / self.cycles_per_step

    @classmethod
    def for_config(cls, cfg) -> "CycleModel":
        sch = Schedule.for_config(cfg)
        k, lanes = sch.slot_cycles, cfg.lanes
        last = sch.slot_rows[-1]
        rth = cfg.cell.row_to_h
        # Cycle 0 = a slot's last issue; its row at lane position p enters the post-processor
        # at latency.LANE + p and h(t) is complete (flag seen) row_to_h + 1 cycles after the last.
        h_done = latency.LANE + last - 1 + rth + 1
        h_wait = max(0, h_done - (1 + cfg.input_size))
        # a step starts only once the step two before it is complete; only a sequence's first
        # step (which skips the h wait) can leave that one in flight
        rh = rh_wait(cfg)  # pass 2's first h element waits for the last r row's r*h
        start_wait = max(0, h_done - 1 - (sch.slots * k + rh))
        # first output: unit 0's last row; the first step of a sequence never waits
        first = cfg.input_size - 1 + x_to_h(cfg, 0)
        return cls(rows=sch.rows, slots=sch.slots, slot_cycles=k, last_slot_rows=last, h_wait=h_wait,
                   rh_wait=rh, start_wait=start_wait, cycles_per_step=sch.slots * k + h_wait + rh,
                   first_step_cycles=sch.slots * k + rh, first_output_latency=first,
                   ideal_cycles_per_step=sch.rows * k / lanes)
