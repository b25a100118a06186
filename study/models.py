"""Trained models as committed under ``models/``: ``<name>.npz`` (parameters) + ``<name>.json``.

The ``.npz`` is written by :meth:`model.params.CellParams.save` for a single
cell, or by :meth:`model.network.NetworkParams.save` (head included) for a
stack or a bidirectional model, whose ``.json`` gives ``layers`` or
``bidirectional``; the ``.json`` holds everything else needed to reproduce the
numbers: task, split (seed and indices), normalisation, the linear head on the
last step's output, the training settings and the float accuracy measured by
PyTorch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.params import CellParams
from model import network, reference
from model.network import NetworkParams

from . import data

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"


class ModelError(ValueError):
    """A trained-model name or file that cannot be used."""


@dataclass
class TrainedModel:
    name: str
    params: CellParams | NetworkParams
    head_w: np.ndarray     # (classes, features)
    head_b: np.ndarray     # (classes,)
    norm: data.Normalizer
    meta: dict
    path: Path

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def network(self) -> bool:
        """Whether the parameters are a :class:`NetworkParams` (a stack or a bidirectional model)."""
        return isinstance(self.params, NetworkParams)

    @property
    def first_cell(self) -> CellParams:
        """The cell of a single-cell model, or the first layer's forward cell of a network."""
        return self.params.layers[0][0] if self.network else self.params

    @property
    def features(self) -> int:
        """Inputs of the head: the hidden size, or a network's last-layer ``directions * hidden``."""
        return self.params.output_size() if self.network else self.params.hidden_size

    def describe(self) -> str:
        """``lstm, input 13, hidden 32``, with ``2 layers`` and ``bidirectional`` for a network."""
        c = self.first_cell
        text = f"{c.kind}, input {c.input_size}, hidden {c.hidden_size}"
        if self.network:
            n = self.params.num_layers
            two = any(self.params.directions(i) == 2 for i in range(n))
            text += f", {n} layer{'s' if n > 1 else ''}" + (", bidirectional" if two else "")
        return text

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.meta["split"]
        return np.asarray(s["train"], dtype=np.int64), np.asarray(s["test"], dtype=np.int64)

    def datasets(self) -> tuple[data.Dataset, data.Dataset]:
        """(train, test) with the normalisation applied (float64 sequences)."""
        ds = data.load(self.task)
        tr, te = self.split()
        train, test = ds.subset(tr), ds.subset(te)
        train.seqs, test.seqs = self.norm(train.seqs), self.norm(test.seqs)
        return train, test

    def head(self, h) -> np.ndarray:
        """Logits of the float head for hidden states ``h`` (..., hidden)."""
        return np.asarray(h, dtype=np.float64) @ self.head_w.T + self.head_b

    def float_last_h(self, seqs) -> np.ndarray:
        """The head's input for each sequence (run alone, zero initial state): the float64 reference's
        last hidden state, or a network's last-layer output at the last step (:func:`model.network.run`)."""
        run = network.run if self.network else reference.run
        out = np.empty((len(seqs), self.features))
        for n, idx in data.by_length(seqs).items():
            x = np.stack([seqs[i] for i in idx])
            h, _ = run(self.params, x)
            out[idx] = h[:, -1]
        return out


def resolve(name_or_path) -> Path:
    """``fsdd_lstm32`` -> ``models/fsdd_lstm32.json``; a path to a ``.json`` or ``.npz`` is taken as given."""
    p = Path(name_or_path)
    if p.suffix in (".json", ".npz"):
        p = p.with_suffix(".json")
    else:
        p = MODELS_DIR / f"{name_or_path}.json"
    if not p.is_file():
        have = sorted(q.stem for q in MODELS_DIR.glob("*.json"))
        raise ModelError(f"model {str(name_or_path)!r}: {p} does not exist; available: {', '.join(have) or 'none'} "
                         f"(make train creates them)")
    return p


#: Keys every trained model's metadata file carries (written by ``make train``).
META_KEYS = ("name", "params", "head", "normalisation", "split", "task")


def load(name_or_path) -> TrainedModel:
    """The trained model named (or whose ``.json`` / ``.npz`` path is) ``name_or_path``."""
    p = resolve(name_or_path)
    try:
        meta = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"{p}: not a trained model's metadata (invalid JSON: {e})") from None
    missing = [k for k in META_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ModelError(f"{p}: not a trained model's metadata (make train writes them); missing key(s) "
                         f"{', '.join(missing)}")
    stacked = meta.get("layers", 1) > 1 or meta.get("bidirectional", False)
    params = (NetworkParams if stacked else CellParams).load(p.with_name(meta["params"]))
    return TrainedModel(meta["name"], params, np.asarray(meta["head"]["weight"], dtype=np.float64),
                        np.asarray(meta["head"]["bias"], dtype=np.float64),
                        data.Normalizer.from_dict(meta["normalisation"]), meta, p)


def for_params_file(npz_path) -> TrainedModel | None:
    """The trained model whose parameter file is ``npz_path`` (its ``.json`` beside it), or None."""
    p = Path(npz_path).with_suffix(".json")
    return load(p) if p.is_file() else None
