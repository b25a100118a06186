"""The link from a study to the hardware: real test utterances for the cocotb bench, and their classes.

When a config's ``params`` names a trained model (its ``.json`` beside the
``.npz``), :func:`prepare` writes the first ``n`` test sequences of that
model's split, normalised and quantized to ``formats.input``, as the ``.npz``
the bench streams (``RNNKIT_INPUTS``), and computes the golden model's and the
float model's classes for them.  :func:`table` applies the same head to the
hidden states the hardware produced and lines the classes up with the labels.
:func:`prepare_network` and :func:`network_table` do the same for a network
config, whose golden model and hardware compute the head themselves: the
hardware's classes are compared with the golden model's directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import golden
from model.network import golden as network_golden
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


def _write(params, cfg, n: int, path):
    """``(model, test positions, float sequences, raw sequences, labels)`` of the first ``n`` test utterances
    of the trained model whose parameter file is ``params``, the raw ones (``cfg``'s ``formats.input``)
    written to ``path``; None without a trained model."""
    if not params:
        return None
    m = models.for_params_file(params)
    if m is None:
        return None
    _, test = m.datasets()
    idx = list(range(min(n, len(test.seqs))))
    seqs = [test.seqs[i] for i in idx]
    raw = [golden.quantize_input(s[None], cfg)[0] for s in seqs]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, *raw)
    return m, idx, seqs, raw, test.labels[idx]


def _utterances(m, path, idx, labels, seqs, raw, gpred, gh) -> Utterances:
    split_test = m.split()[1]
    fpred = m.head(m.float_last_h(seqs)).argmax(1)
    return Utterances(m, Path(path), [int(split_test[i]) for i in idx], labels, fpred, np.asarray(gpred), gh,
                      [len(x) for x in raw])


def prepare(cfg, n: int, path) -> Utterances | None:
    """Write the first ``n`` test utterances of ``cfg``'s trained model to ``path``; None without one."""
    got = _write(getattr(cfg, "params", None), cfg, n, path)
    if got is None:
        return None
    m, idx, seqs, raw, labels = got
    q = quantize(m.params, cfg)
    gh = [golden.run(q, x[None], cfg).outputs[0, -1] for x in raw]
    gpred = [int(np.argmax(m.head(cfg.fmt("hidden").to_float(h)))) for h in gh]
    return _utterances(m, path, idx, labels, seqs, raw, gpred, gh)


def prepare_network(ncfg, n: int, path) -> Utterances | None:
    """:func:`prepare` for a :class:`~model.network.NetworkConfig` with a head: the utterances in layer 0's
    ``formats.input``, the golden classes from the network golden model's head, each utterance run alone
    (``golden_h``: the last layer's raw output at the last step); None without a trained model."""
    got = _write(ncfg.params, ncfg.layers[0], n, path)
    if got is None:
        return None
    m, idx, seqs, raw, labels = got
    q = network_golden.quantize(m.params, ncfg)
    res = [network_golden.run(q, x[None], ncfg) for x in raw]
    return _utterances(m, path, idx, labels, seqs, raw, [int(r.classes[0]) for r in res],
                       [r.outputs[-1][0, -1] for r in res])


def hardware_classes(u: Utterances, cfg, last_h) -> list:
    """Classes from the head applied to the hardware's last hidden states (raw integers per sequence)."""
    return [int(np.argmax(u.model.head(cfg.fmt("hidden").to_float(np.asarray(h))))) for h in last_h]


def table(u: Utterances, cfg, last_h) -> tuple[list[str], bool]:
    """Lines of the per-utterance table and whether every hardware h and class equals the golden model's."""
    hw = hardware_classes(u, cfg, last_h) if last_h else []
    same_h = [last_h is not None and k < len(last_h) and np.array_equal(np.asarray(last_h[k]), u.golden_h[k])
              for k in range(len(u.labels))]
    return _lines(u, hw, same_h)


def network_table(u: Utterances, classes) -> tuple[list[str], bool]:
    """Lines of the per-utterance table and whether every class the network hardware gave equals the
    golden model's (``classes``: one per utterance, in order)."""
    return _lines(u, list(classes or []), [True] * len(u.labels))


def _lines(u: Utterances, hw: list, same_h: list) -> tuple[list[str], bool]:
    ok = len(hw) == len(u.labels)
    hw = hw + [None] * len(u.labels)
    lines = [f"{'utterance':>9}  {'frames':>6}  {'label':>5}  {'hardware':>8}  {'golden':>6}  {'float':>5}",]
    for k, lab in enumerate(u.labels):
        ok &= bool(same_h[k]) and hw[k] == u.golden_pred[k]
        lines.append(f"{u.test_index[k]:>9}  {u.frames[k]:>6}  {int(lab):>5}  {str(hw[k]):>8}  {int(u.golden_pred[k]):>6}  "
                     f"{int(u.float_pred[k]):>5}")
    return lines, ok
