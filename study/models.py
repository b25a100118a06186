"""Trained models as committed under ``models/``: ``<name>.npz`` (parameters) + ``<name>.json``.

The ``.npz`` is written by :meth:`model.params.CellParams.save` for a single
cell, or by :meth:`model.network.NetworkParams.save` (head included) for a
stack or a bidirectional model, whose ``.json`` gives ``layers`` or
``bidirectional``; the ``.json`` holds everything else needed to reproduce the
numbers: task, split (seed and indices), normalisation, the linear head on the
last step's output, the training settings and the float accuracy measured by
PyTorch.

:func:`open_model` also takes a model from outside the kit: a kit model file
with outside data, or an ONNX graph (:func:`model.from_onnx`: its recurrent
layers and its dense head) with a data file (:func:`study.data.load_file`).
An ONNX graph carries no normalisation: its inputs are taken as they are, or
normalised per feature on the data's training split (``normalise``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.params import CellParams
from model import network, reference
from model.network import HeadParams, NetworkParams
from model.network.onnx_import import OnnxImportError

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
    data_file: Path | None = None  # outside data (study.data.load_file) instead of the task's split

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

    def raw_datasets(self) -> tuple[data.Dataset, data.Dataset]:
        """(train, test) as stored: the data file's parts, or the task's split."""
        if self.data_file is not None:
            return data.load_file(self.data_file)
        if self.task not in data.TASKS:
            raise ModelError(f"model {self.name!r} was trained on {self.task!r}, not a packaged task "
                             f"({', '.join(data.TASKS)}): give the sweep its data file (data = ...)")
        ds = data.load(self.task)
        tr, te = self.split()
        return ds.subset(tr), ds.subset(te)

    def datasets(self) -> tuple[data.Dataset, data.Dataset]:
        """(train, test) with the normalisation applied (float64 sequences)."""
        train, test = self.raw_datasets()
        train.seqs, test.seqs = self.norm(train.seqs), self.norm(test.seqs)
        return train, test

    def longest(self) -> int:
        """Steps of the longest sequence of the task (or of the data file), every part."""
        if self.data_file is not None:
            return max(len(s) for part in self.raw_datasets() for s in part.seqs)
        return max(len(x) for x in data.load(self.task).seqs)

    @property
    def head_params(self) -> HeadParams:
        """The classifier head as :class:`model.HeadParams` (``weight`` (classes, features), ``bias``)."""
        return HeadParams(self.head_w, self.head_b)

    def head(self, h) -> np.ndarray:
        """Logits of the float head for hidden states ``h`` (..., features)."""
        return head_logits(self.head_params, h)

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


def save(path, params: CellParams | NetworkParams, head: HeadParams, norm: data.Normalizer, task: str,
         task_description: str, **extra) -> Path:
    """Write a model in the kit's format: ``<path>.npz`` (the parameters) and ``<path>.json`` (the metadata
    :func:`load` reads: head, normalisation, task; ``extra`` keys such as ``training`` or
    ``float_test_accuracy`` are kept for the report).  ``task`` names data that is not packaged
    (e.g. ``"file:my_data.npz"``): such a model is studied with a sweep's ``data`` file.  Returns the
    ``.json`` path."""
    path = Path(path).with_suffix("")
    net = isinstance(params, NetworkParams)
    if net and params.num_layers == 1 and params.directions(0) == 1:
        raise ModelError("a one-layer, one-direction model is saved as its cell: give params.layers[0][0]")
    params.save(path.with_suffix(".npz"))
    first = params.layers[0][0] if net else params
    meta = {"name": path.name, "task": task, "task_description": task_description, "kind": first.kind,
            "input_size": first.input_size, "hidden_size": first.hidden_size,
            **({"layers": params.num_layers} if net and params.num_layers > 1 else {}),
            **({"bidirectional": True} if net and params.directions(0) == 2 else {}),
            "n_classes": len(head.bias), "params": path.name + ".npz",
            "split": extra.pop("split", {"method": "the data file's own train and test parts"}),
            "normalisation": {"method": "per-feature (x - mean) / std over all training frames", **norm.to_dict()},
            "head": {"weight": head.weight.tolist(), "bias": head.bias.tolist()}, **extra}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return path.with_suffix(".json")


def head_logits(head: HeadParams, h) -> np.ndarray:
    """Float64 logits ``h @ weight.T + bias`` of a dense head for features ``h`` (..., features)."""
    return np.asarray(h, dtype=np.float64) @ head.weight.T + head.bias


def open_model(model, data_file=None, normalise: bool = False) -> TrainedModel:
    """The model a study evaluates: ``model`` is a name in ``models/``, a kit model's ``.json`` / ``.npz``, or an
    ``.onnx`` graph (which needs ``data_file``); ``data_file`` replaces a kit model's task and split;
    ``normalise`` fits an ONNX model's input normalisation on the data's training split.  Raises
    :class:`ModelError` or :class:`study.data.DataError` naming the file and what does not fit."""
    data_file = None if data_file is None else Path(data_file)
    if Path(model).suffix != ".onnx":
        if normalise:
            raise ModelError(f"normalise applies to ONNX models only; model {str(model)!r} carries its own "
                             f"normalisation")
        m = load(model)
        m.data_file = data_file
    else:
        m = _onnx_model(Path(model), data_file, normalise)
    if data_file is not None:
        _check_fits(m, *m.raw_datasets())
    return m


def _onnx_model(path: Path, data_file: Path | None, normalise: bool) -> TrainedModel:
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist (a sweep's paths are relative to the sweep file)")
    if data_file is None:
        raise ModelError(f"model {str(path)!r} is an ONNX graph: give the sweep's data (an .npz with x_train, "
                         f"y_train, x_test, y_test)")
    try:
        net = network.from_onnx(path)
    except (OnnxImportError, OSError) as e:
        raise ModelError(f"{path}: {e}") from None
    if net.head is None:
        raise ModelError(f"{path}: the graph has no dense head (Gemm, or MatMul and Add, on the last step); a "
                         f"study classifies with it")
    train, test = data.load_file(data_file)
    norm = data.Normalizer.fit(train.seqs) if normalise else \
        data.Normalizer(np.zeros(train.n_features), np.ones(train.n_features))
    meta = {"name": path.stem, "params": path.name, "task": train.task,
            "task_description": f"data file `{data_file.name}` ({len(train.seqs)} training and {len(test.seqs)} test "
                                f"sequences, {train.n_features} features per step)",
            "normalisation": {"method": "per-feature (x - mean) / std over all training frames" if normalise
                              else "none (the inputs as the data file holds them)", **norm.to_dict()}}
    return TrainedModel(path.stem, net, net.head.weight, net.head.bias, norm, meta, path, data_file)


def _check_fits(m: TrainedModel, train: data.Dataset, test: data.Dataset) -> None:
    """A data file must give the model's input size and no class beyond its head."""
    where = f"data file {m.data_file}"
    if train.n_features != m.first_cell.input_size:
        raise data.DataError(f"{where}: {train.n_features} features per step, but model {m.name!r} takes "
                             f"{m.first_cell.input_size} inputs")
    if train.n_classes > len(m.head_b):
        raise data.DataError(f"{where}: labels reach {train.n_classes - 1}, but model {m.name!r}'s head has "
                             f"{len(m.head_b)} classes (0 to {len(m.head_b) - 1})")


def for_params_file(npz_path) -> TrainedModel | None:
    """The trained model whose parameter file is ``npz_path`` (its ``.json`` beside it), or None."""
    p = Path(npz_path).with_suffix(".json")
    return load(p) if p.is_file() else None
