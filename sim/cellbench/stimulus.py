"""Stimulus: input sequences (random, or read from ``RNNKIT_INPUTS``), valid/ready stall patterns, exact
drain patterns for ``o.ready`` and the reset points of a step's phases."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hls.vectors import STIMULUS_RANGE
from model import golden
from model.config import Config
from model.cycles import CycleModel
from rtl.layout import Layout


def make_sequences(cfg: Config, rng: np.random.Generator, lengths) -> list[np.ndarray]:
    """Raw ``formats.input`` sequences of the given lengths, uniform in [-2, 2] before quantization."""
    return [golden.quantize_input(rng.uniform(-STIMULUS_RANGE, STIMULUS_RANGE, (1, n, cfg.input_size)), cfg)[0]
            for n in lengths]


def file_sequences(cfg: Config, path: str | None) -> list[np.ndarray] | None:
    """The sequences of the ``.npz`` at ``path`` (raw integers), or None when ``path`` is None."""
    if not path:
        return None
    with np.load(path, allow_pickle=False) as z:
        seqs = [np.asarray(z[k], dtype=np.int64) for k in z.files]
    if not seqs:
        raise ValueError(f"RNNKIT_INPUTS {path}: no sequences in the file")
    f = cfg.fmt("input")
    for k, x in enumerate(seqs):
        if x.ndim != 2 or x.shape[1] != cfg.input_size or len(x) == 0:
            raise ValueError(f"RNNKIT_INPUTS {path}: sequence {k} must have shape (steps >= 1, "
                             f"{cfg.input_size}), not {x.shape}")
        if not f.contains(x):
            raise ValueError(f"RNNKIT_INPUTS {path}: sequence {k} holds values outside formats.input = {f} "
                             f"(raw range [{f.min_int}, {f.max_int}])")
    return seqs


@dataclass
class Pattern:
    """Random gaps: before each element (input valid low) or between ready-high stretches.

    ``p`` chance of a gap, short gaps of 1..``short`` cycles, a gap is long
    (``long`` = (lo, hi) cycles) with chance ``long_p``; ``run`` = max ready-high stretch.
    ``force_long_at = k``: the k-th gap decision (0-based) is always a long stall, so every
    run has at least one.
    """
    p: float = 0.0
    short: int = 8
    long_p: float = 0.0
    long: tuple = (100, 400)
    run: int = 12
    force_long_at: int | None = None

    def gap(self, rng, k: int | None = None) -> int:
        if k is not None and k == self.force_long_at:
            return int(rng.integers(self.long[0], self.long[1] + 1))
        if self.p <= 0 or rng.random() >= self.p:
            return 0
        if self.long_p and rng.random() < self.long_p:
            return int(rng.integers(self.long[0], self.long[1] + 1))
        return int(rng.integers(1, self.short + 1))

    def mean_gap(self) -> float:
        return self.p * ((1 - self.long_p) * (self.short + 1) / 2 + self.long_p * sum(self.long) / 2)


NO_STALLS = Pattern()
STALLS_IN = Pattern(p=0.35, short=6, long_p=0.03, long=(60, 300), force_long_at=4)
STALLS_OUT = Pattern(p=0.4, short=10, long_p=0.04, long=(100, 400), run=8, force_long_at=2)
MILD = Pattern(p=0.05, short=3)
WRITE_GAPS = Pattern(p=0.2, short=4)


@dataclass(frozen=True)
class Drain:
    """An exact ``o.ready`` pattern: low for ``first`` cycles, then before every ``every``-th element
    (counting from 0) low for ``gap`` cycles, high otherwise (one element taken per gap when
    ``every`` is 1: a trickle)."""
    first: int
    gap: int
    every: int = 1

    def gap_before(self, k: int) -> int:
        return (self.first if k == 0 else 0) + (self.gap if k % self.every == 0 and k else 0)

    def mean_gap(self) -> float:
        return self.gap / self.every + 1


#: The trickle drain: ready low for 3,000 cycles, then one element per 400 low cycles.
TRICKLE = Drain(first=3000, gap=400)


def long_ready_low(cfg: Config) -> Drain:
    """``ready`` low for three whole steps plus the first-output latency before every other h(t)."""
    cm = CycleModel.for_config(cfg)
    return Drain(first=0, gap=3 * cm.cycles_per_step + cm.first_output_latency, every=2 * cfg.hidden_size)


def reset_phases(cfg: Config) -> dict:
    """Per phase of a one-step sequence: (reset offset in cycles after its first x element was accepted,
    the most h elements of it that may leave before the reset, the low-``ready`` gap before its second
    h element or None).  ``loading`` is meant for an input that pauses after that first element.  The
    step issues its rows in ``slots * slot_cycles`` cycles once x(0) is complete; its last h is written
    at the latest ``first_output_latency + first_step_cycles`` cycles after the first x element."""
    cm, lay = CycleModel.for_config(cfg), Layout.for_config(cfg)
    n_in, n_hid = cfg.input_size, cfg.hidden_size
    issue_end = n_in + lay.slots * lay.slot_cycles
    drained = cm.first_output_latency + cm.first_step_cycles + 10
    return {
        "loading": (5, 0, None),                      # x(0) partly in the input buffer
        "mac": (n_in + 2, 0, None),                   # the first rows issuing
        "post": (issue_end + 2, n_hid - 1, None),     # every row issued, h not complete
        "draining": (drained, 1, drained + 20),       # all of h queued, one element taken
    }
