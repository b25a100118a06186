"""Row schedule and cycle model of the gate pipeline in ``rtl/``, for every cell kind.

The gateware is a fixed-latency pipeline, so its timing follows from the row
schedule, the stage latencies of :mod:`model.latency` and each kind's
``row_to_h`` and ``op_ready`` (:mod:`model.kinds`); ``rtl`` builds its delay
lines from the same numbers.

Schedule: the lanes compute weight rows; in slot ``s`` lane ``l`` computes one
row while ``z = [x(t); h(t-1)]`` streams past, ``beat`` elements per cycle:
``slot_cycles = ceil((input + hidden) / beat)`` cycles (chunk ``j`` holds z
elements ``j * beat ..``, the last chunk zero-padded).

* Single-pass kinds (e.g. the LSTM and the reset-after GRU): rows unit-major
  in the kind's ``hw_order`` (``o, i, f, g`` or ``r, z, n`` per unit),
  ``ceil(rows / lanes)`` slots.
* Reset-before GRU: two passes.  Pass 1 computes all ``r`` rows, then all ``z``
  rows, over ``[x; h(t-1)]``; pass 2 computes the ``n`` rows over ``[x; r*h(t-1)]``
  and waits at its first ``h`` element until every ``r*h`` is known.

Post-processors: ``posts`` of them, unit ``u`` owned by post-processor
``u % posts``; each takes one row per cycle, its rows of a slot in row order
(its queue).  One post-processor when ``lanes <= slot_cycles``; otherwise
``ceil(lanes / slot_cycles)`` (at most ``hidden``), raised until every slot but
a step's last fits its queues into ``slot_cycles`` cycles (the next slot's sums
replace the lanes' hold registers then).

Timing: the lanes hand a slot's accumulators to the post-processors
``latency.lane(beat)`` cycles after the slot's last issue; a row at queue position
``q`` enters its post-processor ``q`` cycles later (``q + latency.CHOICE`` with several
post-processors, whose lane choice has two registered levels), and a unit's hidden value is
registered ``row_to_h`` cycles after its last row entered.  Step ``t + 1`` streams
its ``x`` chunks at once, but its first chunk with an ``h`` element waits until
all of ``h(t)`` is written (``h_wait``); a reset-before GRU's pass 2 may also wait
for ``r*h`` (``rh_wait``).  Those waits are the only overhead in a steady stream.
When a step's last slot overfills a queue (longer than ``slot_cycles``), the issue
pauses ``drain`` cycles after the step's last chunk, so that the next step's sums
do not replace the lanes' hold registers before the post-processors have taken
every row of that slot.  A step also starts only once the step two before it is complete; that
wait (``start_wait``, non-zero only when a step's slots are shorter than the
post-processing drain) is hidden by the h wait, except when two sequence starts
follow each other: the second then takes ``first_step_cycles + start_wait``.
The output stream carries one h element per cycle, in unit order, from one FIFO
per post-processor: a step takes at least ``hidden`` cycles.  Ideal cycles per
step are ``rows * (input + hidden) / (lanes * beat)``; MAC utilization is ideal /
predicted.

Interleave: ``interleave = N`` sequences share the pipeline, each with its own
two h banks and unit state; a step waits only for its own sequence's previous
step.  With the sequences taking turns a step each (``rtl.streams.interleaved_order``),
each sequence advances one step per *round* of ``cycles_per_step`` cycles:
``max(N * issue, issue + h_wait, N * hidden, N * input)`` where ``issue`` is a step's
``slots * slot_cycles + rh_wait + drain`` cycles; the h wait is hidden as soon as the
other ``N - 1`` sequences' issue covers it.  MAC utilization is then ``N * ideal / cycles_per_step``.  The ``N * input`` bound
(x arrives one element per cycle) is a bound, not an exact figure, when it is the
largest term.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from . import latency

__all__ = ["Schedule", "CycleModel", "rh_wait", "round_cycles", "x_to_h"]


@dataclass(frozen=True)
class Schedule:
    """Which hardware row each lane computes in each slot, and which post-processor takes it.

    Hardware rows are numbered in post-processing order: unit-major
    (``row = unit * gates + hw_gate``) or, for the reset-before GRU, gate-major
    (``row = hw_gate * hidden + unit``).  ``pass_rows`` are the rows per pass;
    ``posts`` post-processors, unit ``u`` owned by ``u % posts`` (see the module docstring).
    """
    hidden: int
    lanes: int
    gates: int
    gate_order: tuple
    gate_major: bool
    pass_rows: tuple
    slot_cycles: int
    input: int
    beat: int
    posts: int

    @classmethod
    def for_config(cls, cfg) -> "Schedule":
        H, kind, beat = cfg.hidden_size, cfg.cell, cfg.beat
        k = math.ceil((cfg.input_size + H) / beat)
        sch = cls(H, cfg.lanes, kind.n_gates, kind.hw_order, kind.gate_major,
                  tuple(len(p) * H for p in kind.pass_gates), k, cfg.input_size, beat, 1)
        if cfg.lanes <= k:
            return sch
        posts = min(H, math.ceil(cfg.lanes / k))
        while True:
            sch = replace(sch, posts=posts)
            if posts == H or sch.fits:
                return sch
            posts += 1

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

    def post_of(self, row: int) -> int:
        """The post-processor taking hardware row ``row`` (the one owning its unit)."""
        return self.unit_gate(row)[0] % self.posts

    def queues(self, slot: int) -> tuple:
        """Per post-processor, the hardware rows of slot ``slot`` it takes, in the order it takes them."""
        out = [[] for _ in range(self.posts)]
        first = sum(self.slot_rows[:slot])
        for r in range(first, first + self.slot_rows[slot]):
            out[self.post_of(r)].append(r)
        return tuple(tuple(q) for q in out)

    def queue_position(self, row: int) -> int:
        """How many rows its post-processor takes before ``row`` in ``row``'s slot."""
        return self.queues(self.slot_of(row)[0])[self.post_of(row)].index(row)

    def longest_queue(self, slot: int) -> int:
        return max(len(q) for q in self.queues(slot))

    @property
    def fits(self) -> bool:
        """Every slot but a step's last hands its rows over within ``slot_cycles`` cycles."""
        return all(self.longest_queue(s) <= self.slot_cycles for s in range(self.slots - 1))

    @property
    def h_chunk(self) -> int:
        """The first z chunk holding an h element: where a step waits for h(t-1)."""
        return self.input // self.beat

    @property
    def x_end_chunk(self) -> int:
        """The chunk holding x's last element."""
        return (self.input - 1) // self.beat


def _h_written(cfg, sch: Schedule, unit: int) -> int:
    """Cycle h[unit] is registered, counted from the issue of its done row's slot's last chunk."""
    row = sch.unit_done_row(unit)
    return _to_post(sch) + sch.queue_position(row) + cfg.cell.row_to_h


def _to_post(sch: Schedule) -> int:
    """Cycles from a slot's last issue to its first row in a post-processor: the lanes, then the choice
    of a row's sum out of the lanes (two levels with several post-processors)."""
    return latency.lane(sch.beat) + latency.choice(sch.posts)


def rh_wait(cfg) -> int:
    """A two-pass kind's wait at pass 2's first h element for the last ``r*h`` (0 for single-pass kinds);
    every step has it, a sequence's first one too (its ``r*h0``)."""
    if cfg.cell.op_ready is None:
        return 0
    sch = Schedule.for_config(cfg)
    s_r, _ = sch.slot_of(sch.hidden - 1)
    p_r = sch.queue_position(sch.hidden - 1)
    ready = (s_r + 1) * sch.slot_cycles - 1 + _to_post(sch) + p_r + cfg.cell.op_ready
    return max(0, ready - (sch.pass_slots[0] * sch.slot_cycles + sch.h_chunk))


def x_to_h(cfg, unit: int) -> int:
    """Cycles from the transfer of a sequence's first x(0)'s last element to the transfer of its h(0)'s
    element ``unit`` on ``o`` (the first step of a sequence never waits for h; ``o`` ready; the output
    takes one element per cycle, in unit order)."""
    sch = Schedule.for_config(cfg)

    def written(u):
        s, _ = sch.slot_of(sch.unit_done_row(u))
        wait = rh_wait(cfg) if s >= sch.pass_slots[0] and len(sch.pass_slots) > 1 else 0
        return latency.INPUT + (s + 1) * sch.slot_cycles - 1 + wait + _h_written(cfg, sch, u)

    return max(written(v) + (unit - v) for v in range(unit + 1)) + latency.FIFO


def round_cycles(issue: int, h_wait: int, hidden: int, input_size: int, n: int) -> int:
    """Cycles of a round (every one of ``n`` interleaved sequences one step; see the module docstring) for
    steps of ``issue`` cycles that wait ``h_wait`` for h(t-1); the output stream takes one element per
    cycle, the input stream one."""
    return max(n * issue, issue + h_wait, n * hidden, n * input_size)


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
    cycles_per_step: int  # of each sequence: one round (every sequence one step)
    first_step_cycles: int
    first_output_latency: int
    ideal_cycles_per_step: float
    beat: int
    posts: int
    drain: int
    hidden: int
    input: int
    interleave: int = 1

    @property
    def mac_utilization(self) -> float:
        return self.interleave * self.ideal_cycles_per_step / self.cycles_per_step

    @property
    def steps_per_cycle(self) -> float:
        """Steps of all sequences together per cycle (``interleave / cycles_per_step``)."""
        return self.interleave / self.cycles_per_step

    def with_interleave(self, n: int) -> "CycleModel":
        """The same pipeline with ``n`` sequences interleaved (what ``for_config`` gives for ``interleave = n``)."""
        return replace(self, interleave=n, cycles_per_step=round_cycles(
            self.slots * self.slot_cycles + self.rh_wait + self.drain, self.h_wait, self.hidden, self.input, n))

    @classmethod
    def for_config(cls, cfg) -> "CycleModel":
        sch = Schedule.for_config(cfg)
        k, S = sch.slot_cycles, sch.slots
        # cycle 0 = a step's last issue; h(t) is complete (flag seen) one cycle after its last unit is written
        h_done = max((sch.slot_of(sch.unit_done_row(u))[0] - (S - 1)) * k + _h_written(cfg, sch, u)
                     for u in range(sch.hidden)) + 1
        rh = rh_wait(cfg)  # pass 2's first h element waits for the last r row's r*h
        # the issue pauses until the last slot's queues are no longer than a slot
        drain = max(0, sch.longest_queue(S - 1) - k)
        h_wait = max(0, h_done - (1 + drain + sch.h_chunk))
        first_step = S * k + rh + drain
        # a step starts only once the step two before it is complete; only a sequence's first
        # step (which skips the h wait) can leave that one in flight
        start_wait = max(0, h_done - 1 - drain - first_step)
        # first output: unit 0's last row; the first step of a sequence never waits
        first = cfg.input_size - 1 + x_to_h(cfg, 0)
        H, N = sch.hidden, cfg.interleave
        cycles = round_cycles(first_step, h_wait, H, cfg.input_size, N)
        return cls(rows=sch.rows, slots=S, slot_cycles=k, last_slot_rows=sch.slot_rows[-1], h_wait=h_wait,
                   rh_wait=rh, start_wait=start_wait, cycles_per_step=cycles, interleave=N, hidden=H,
                   input=cfg.input_size,
                   first_step_cycles=max(first_step, H), first_output_latency=first,
                   ideal_cycles_per_step=sch.rows * (cfg.input_size + H) / (cfg.lanes * sch.beat),
                   beat=sch.beat, posts=sch.posts, drain=drain)
