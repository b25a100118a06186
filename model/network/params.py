"""Float parameters of a network: a stack of recurrent layers (one or two directions each) and an
optional dense head.

A layer holds one :class:`~model.params.CellParams` per direction, forward first; a bidirectional
layer's output is the concatenation ``[forward h(t), reverse h(t)]`` as PyTorch and ONNX give it,
so layer ``l + 1`` takes ``directions * hidden`` inputs.  The head is a linear layer on the last
layer's output (``logits = W y + b``), followed by the index of the largest logit.

State slots are ordered as PyTorch orders ``h_n``: slot ``layer * directions + direction``.
``initial_state`` is the network's default initial state (one tuple per slot of ``(hidden,)``
vectors in the kind's state order, broadcast over the batch), or None for zeros; an ONNX graph
whose ``initial_h`` / ``initial_c`` are constants brings one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import CellParams
from . import state

_NPZ_VERSION = 1


@dataclass(eq=False)
class HeadParams:
    """A dense layer ``logits = weight @ y + bias``: ``weight`` ``(classes, features)``, ``bias`` ``(classes,)``."""

    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        for name in ("weight", "bias"):
            try:
                a = np.array(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ValueError(f"head {name} must be a numeric array: {e}") from None
            if not np.all(np.isfinite(a)):
                raise ValueError(f"head {name} contains NaN or infinite values")
            setattr(self, name, a)
        if self.weight.ndim != 2 or min(self.weight.shape) < 1:
            raise ValueError(f"head weight must be a 2-D array (classes, features), not shape {self.weight.shape}")
        if self.bias.shape != (self.weight.shape[0],):
            raise ValueError(f"head bias has shape {self.bias.shape}; expected (classes,) = ({self.weight.shape[0]},)")

    @property
    def classes(self) -> int:
        return self.weight.shape[0]

    @property
    def features(self) -> int:
        return self.weight.shape[1]


@dataclass(eq=False)
class NetworkParams:
    """Layers (a list of tuples of :class:`CellParams`, one per direction), an optional head and an
    optional default initial state (see the module docstring).

    Raises ``ValueError`` naming the layer when the layers do not chain (layer ``l + 1``'s input size
    must be ``directions * hidden`` of layer ``l``), when the two directions of a layer differ in kind,
    options or sizes, when the head's features do not match the last layer's output, or when the
    initial state has the wrong structure.
    """

    layers: list
    head: HeadParams | None = None
    initial_state: list | None = None

    def __post_init__(self):
        if isinstance(self.layers, CellParams):
            self.layers = [self.layers]
        if not isinstance(self.layers, (list, tuple)) or not self.layers:
            raise ValueError("layers must be a non-empty list of layers (each a CellParams or a tuple of two)")
        layers = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, CellParams):
                layer = (layer,)
            if not isinstance(layer, (list, tuple)) or len(layer) not in (1, 2) \
                    or not all(isinstance(p, CellParams) for p in layer):
                raise ValueError(f"layer {i} must be a CellParams or a tuple of two (forward, reverse), "
                                 f"not {type(layer).__name__}")
            if len(layer) == 2:
                f, r = layer
                for what, a, b in (("kind", f.kind, r.kind), ("options", f.options, r.options),
                                   ("hidden size", f.hidden_size, r.hidden_size),
                                   ("input size", f.input_size, r.input_size)):
                    if a != b:
                        raise ValueError(f"layer {i}: the reverse direction's {what} {b!r} differs from the "
                                         f"forward direction's {a!r}")
            layers.append(tuple(layer))
        self.layers = layers
        for i in range(1, len(layers)):
            want = self.output_size(i - 1)
            if layers[i][0].input_size != want:
                raise ValueError(f"layer {i} takes {layers[i][0].input_size} inputs but layer {i - 1} gives "
                                 f"{want} ({self.directions(i - 1)} direction(s) x hidden {self.hidden_size(i - 1)})")
        if self.head is not None:
            if not isinstance(self.head, HeadParams):
                raise ValueError(f"head must be a HeadParams, not {type(self.head).__name__}")
            if self.head.features != self.output_size():
                raise ValueError(f"head takes {self.head.features} features but the last layer gives "
                                 f"{self.output_size()}")
        if self.initial_state is not None:
            self.initial_state = self._check_default_state(self.initial_state)

    # ---- structure -----------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def input_size(self) -> int:
        return self.layers[0][0].input_size

    def directions(self, layer: int) -> int:
        return len(self.layers[layer])

    def hidden_size(self, layer: int = -1) -> int:
        return self.layers[layer][0].hidden_size

    def output_size(self, layer: int = -1) -> int:
        """Features of layer ``layer``'s output: ``directions * hidden``."""
        return self.directions(layer) * self.hidden_size(layer)

    def slots(self) -> list:
        """``(layer, direction, CellParams)`` in PyTorch's ``h_n`` order."""
        return [(i, d, p) for i, layer in enumerate(self.layers) for d, p in enumerate(layer)]

    @property
    def uniform(self) -> bool:
        """States stack as PyTorch's ``(layers * directions, batch, hidden)`` arrays (:mod:`model.network.state`)."""
        return state.uniform(self.slots())

    def _check_default_state(self, state) -> list:
        slots = self.slots()
        if not isinstance(state, (list, tuple)) or len(state) != len(slots):
            raise ValueError(f"initial_state must be a list of {len(slots)} state tuples (one per layer and "
                             f"direction), not {type(state).__name__}")
        out = []
        for (i, d, p), s in zip(slots, state):
            names = [n for n, _ in p.cell.state]
            if not isinstance(s, (list, tuple)) or len(s) != len(names):
                raise ValueError(f"initial_state of layer {i} direction {d} must be a tuple ({', '.join(names)})")
            vs = []
            for n, v in zip(names, s):
                v = np.array(v, dtype=np.float64)
                if v.shape != (p.hidden_size,) or not np.all(np.isfinite(v)):
                    raise ValueError(f"initial_state {n} of layer {i} direction {d} must be a finite vector "
                                     f"of shape ({p.hidden_size},), not shape {v.shape}")
                vs.append(v)
            out.append(tuple(vs))
        return out

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def for_config(cls, ncfg, seed: int) -> "NetworkParams":
        """The parameters a network config runs with: its ``params`` file (checked against it), or random
        ones (each cell :meth:`CellParams.random` with its own seed derived from ``seed``, layer and direction;
        the head uniform in ``(-k, k)``, ``k = 1/sqrt(features)``, as PyTorch initializes ``nn.Linear``)."""
        if ncfg.params is not None:
            net = cls.load(ncfg.params)
            net.check_matches(ncfg)
            return net
        layers = [tuple(CellParams.random(c.kind, c.input_size, c.hidden_size, seed=[seed, i, d], **c.options)
                        for d in range(ncfg.directions[i])) for i, c in enumerate(ncfg.layers)]
        head = None
        if ncfg.head is not None:
            rng = np.random.default_rng([seed, len(layers)])
            k = 1.0 / np.sqrt(ncfg.head.features)
            head = HeadParams(rng.uniform(-k, k, (ncfg.head.classes, ncfg.head.features)),
                              rng.uniform(-k, k, ncfg.head.classes))
        return cls(layers, head)

    def check_matches(self, ncfg) -> None:
        """Raise ``ValueError`` naming the first place where these parameters and network config ``ncfg``
        disagree (layers, directions, each cell, the head)."""
        if self.num_layers != ncfg.num_layers:
            raise ValueError(f"the parameters have {self.num_layers} layer(s) but config {ncfg.name!r} has "
                             f"{ncfg.num_layers}")
        for i in range(self.num_layers):
            if self.directions(i) != ncfg.directions[i]:
                raise ValueError(f"layer {i} has {self.directions(i)} direction(s) in the parameters but "
                                 f"{ncfg.directions[i]} in config {ncfg.name!r}")
            for p in self.layers[i]:
                p.check_matches(ncfg.layers[i])
        if (self.head is None) != (ncfg.head is None):
            has = ("the parameters", "the config") if self.head is not None else ("the config", "the parameters")
            raise ValueError(f"{has[0]} have a head but {has[1]} do not")
        if self.head is not None and self.head.classes != ncfg.head.classes:
            raise ValueError(f"the head has {self.head.classes} classes in the parameters but "
                             f"{ncfg.head.classes} in config {ncfg.name!r}")

    # ---- files -----------------------------------------------------------------------
    def save(self, path) -> None:
        """Write to ``path`` as one ``.npz`` (each cell's arrays under ``l<layer>d<direction>_``)."""
        arrays = {"version": np.array(_NPZ_VERSION), "network": np.array(True),
                  "layers": np.array([self.directions(i) for i in range(self.num_layers)])}
        for i, d, p in self.slots():
            pre = f"l{i}d{d}_"
            arrays[pre + "kind"] = np.array(p.kind)
            arrays.update({pre + k: np.array(v) for k, v in p.options.items()})
            for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_peep"):
                if getattr(p, k) is not None:
                    arrays[pre + k] = getattr(p, k)
            if self.initial_state is not None:
                for (n, _), v in zip(p.cell.state, self.initial_state[self._slot(i, d)]):
                    arrays[pre + "init_" + n] = v
        if self.head is not None:
            arrays["head_weight"], arrays["head_bias"] = self.head.weight, self.head.bias
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def _slot(self, layer: int, direction: int) -> int:
        return sum(self.directions(i) for i in range(layer)) + direction

    @classmethod
    def load(cls, path) -> "NetworkParams":
        """Read a file written by :meth:`save`, or a single cell's :meth:`CellParams.save` file."""
        from .. import kinds
        with np.load(path, allow_pickle=False) as z:
            if "network" not in z.files:
                return cls([CellParams.load(path)])
            version = int(z["version"])
            if version != _NPZ_VERSION:
                raise ValueError(f"{path}: file version {version} is not supported (expected {_NPZ_VERSION})")
            layers, init = [], []
            for i, dirs in enumerate(z["layers"].tolist()):
                layer = []
                for d in range(dirs):
                    pre = f"l{i}d{d}_"
                    kind = str(z[pre + "kind"])
                    if kind not in kinds.REGISTRY:
                        raise ValueError(f"{path}: layer {i}: kind {kind!r} is not a registered cell kind")
                    opts = {k: str(z[pre + k]) for k in kinds.REGISTRY[kind].options if pre + k in z.files}
                    get = {k: (z[pre + k] if pre + k in z.files else None)
                           for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_peep")}
                    p = CellParams(kind, **get, options=opts)
                    layer.append(p)
                    names = [n for n, _ in p.cell.state]
                    if pre + "init_" + names[0] in z.files:
                        init.append(tuple(z[pre + "init_" + n] for n in names))
                layers.append(tuple(layer))
            head = HeadParams(z["head_weight"], z["head_bias"]) if "head_weight" in z.files else None
            return cls(layers, head, init or None)

    def __eq__(self, other):
        if not isinstance(other, NetworkParams):
            return NotImplemented

        def same(a, b):
            return a is None and b is None or (a is not None and b is not None and len(a) == len(b)
                                               and all(np.array_equal(x, y) for x, y in zip(a, b)))
        return (self.layers == other.layers
                and same(None if self.head is None else (self.head.weight, self.head.bias),
                         None if other.head is None else (other.head.weight, other.head.bias))
                and same(None if self.initial_state is None else [v for s in self.initial_state for v in s],
                         None if other.initial_state is None else [v for s in other.initial_state for v in s]))

    __hash__ = None


__all__ = ["HeadParams", "NetworkParams"]
