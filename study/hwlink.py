"""The link from a study to the hardware: real test utterances for the cocotb bench, and their classes.

When a config's ``params`` names a trained model (its ``.json`` beside the
``.npz``), :func:`prepare` writes the first ``n`` test sequences of that
model's split, normalised and quantized to ``formats.input``, as the ``.npz``
the bench streams (``RNNKIT_INPUTS``), and computes the golden model's and the
float model's classes for them.  :func:`table` applies the same head to the
hidden states the hardware produced and lines the classes up with the labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import golden
from model.params import quantize

from . import models


@dataclass
class Utterances:
    model: object
    path: Path
    test_index: list      # positions in the dataset
    labels: np.ndarray
    float_pred: np.ndarray
    golden_pred: np.ndarray
    golden_h: list        # raw last h per sequence
    frames: list          # steps per sequence


def prepare(cfg, n: int, path) -> Utterances | None:
    """Write the first ``n`` test utterances of ``cfg``'s trained model to ``path``; None without one."""
    if not getattr(cfg, "params", None):
        return None
    m = models.for_params_file(cfg.params)
    if m is None:
        return None
    _, test = m.datasets()
    idx = list(range(min(n, len(test.seqs))))
    seqs = [test.seqs[i] for i in idx]
    raw = [golden.quantize_input(s[None], cfg)[0] for s in seqs]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, *raw)
    q = quantize(m.params, cfg)
    gh = [golden.run(q, x[None], cfg).outputs[0, -1] for x in raw]
    gpred = np.array([int(np.argmax(m.head(cfg.fmt("hidden").to_float(h)))) for h in gh])
    fpred = m.head(m.float_last_h(seqs)).argmax(1)
    split_test = m.split()[1]
    return Utterances(m, path, [int(split_test[i]) for i in idx], test.labels[idx], fpred, gpred, gh,
                      [len(x) for x in raw])


def hardware_classes(u: Utterances, cfg, last_h) -> list:
    """Classes from the head applied to the hardware's last hidden states (raw integers per sequence)."""
    return [int(np.argmax(u.model.head(cfg.fmt("hidden").to_float(np.asarray(h))))) for h in last_h]


def table(u: Utterances, cfg, last_h) -> tuple[list[str], bool]:
    """Lines of the per-utterance table and whether every hardware h and class equals the golden model's."""
    hw = (hardware_classes(u, cfg, last_h) if last_h else []) + [None] * len(u.labels)
    lines = [f"{'utterance':>9}  {'frames':>6}  {'label':>5}  {'hardware':>8}  {'golden':>6}  {'float':>5}",]
    ok = len(last_h or []) == len(u.labels)
    for k, lab in enumerate(u.labels):
        same_h = last_h is not None and k < len(last_h) and np.array_equal(np.asarray(last_h[k]), u.golden_h[k])
        ok &= bool(same_h) and hw[k] == u.golden_pred[k]
        lines.append(f"{u.test_index[k]:>9}  {u.frames[k]:>6}  {int(lab):>5}  {str(hw[k]):>8}  {int(u.golden_pred[k]):>6}  "
                     f"{int(u.float_pred[k]):>5}")
    return lines, ok
