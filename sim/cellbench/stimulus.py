"""Stimulus: input sequences (random, or read from ``RNNKIT_INPUTS``) and valid/ready stall patterns."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hls.vectors import STIMULUS_RANGE
from model import golden
from model.config import Config


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
