"""The contract every cell kind fulfils: what shared code may ask a kind, and nothing else.

A kind is a subclass of :class:`CellKind` in its own module under
:mod:`model.kinds`, registered with :func:`model.kinds.register`.  Shared code
(config validation, parameters, the float and golden loops, the cycle model,
the gateware pipeline, the memory layout, export, the bench, calibration and
the C++ emitter) asks the kind instance for facts and steps and never compares
its name.  An instance carries the kind's options (``peephole`` of an LSTM,
``reset`` of a GRU, ...), validated once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class Option:
    """A kind's option: accepted values, the default and one line of meaning per value."""
    values: tuple
    default: str
    doc: str


@dataclass(frozen=True)
class Aux:
    """The auxiliary memory of a kind: its parameter, format tensor, and whether it is indexed by
    hardware row (``per = 'row'``) or by unit (``per = 'unit'``)."""
    name: str
    tensor: str
    per: str
    doc: str


class CellKind:
    """Base class of the cell kinds.  Class attributes declare the kind; methods derive from options.

    Class attributes
    ----------------
    name : str
        Registry key and the config's ``kind``.
    title : str
        Human name.
    options : dict[str, Option]
        The kind's own ``[cell]`` keys.
    gates : tuple[str]
        Gate names in parameter row-block order (PyTorch's where PyTorch has the cell).
    state : tuple[tuple[str, str]]
        State tensors ``(name, format tensor)``; element 0 is ``h``.
    unit_state : str
        Format tensor of the per-unit state memory the post-processor keeps (``c`` or ``h``).
    all_points : tuple[str]
        Every requantization point the kind may use (for config validation).
    gateware, cpp : str
        Module paths of the kind's gateware post-processor and C++ step emitter.
    qat : str or None
        Module path of the kind's quantization-aware training step (:mod:`study.qat_kinds`; ``None``:
        the kind has none).
    torch_class : str or None
        The ``torch.nn`` class this kind imports from (``None``: no PyTorch module).
    onnx_op : str or None
        The ONNX operator this kind imports from (``None``: none); :meth:`onnx_options` says which
        nodes of that operator the kind takes.
    onnx_gates : tuple[str]
        Gate names in the ONNX operator's row-block order.
    onnx_attributes : dict[str, object]
        The operator's kind-specific attributes and their ONNX defaults.
    onnx_activations : tuple[str]
        The operator's default ``activations`` for one direction (the functions the kind computes).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    options: ClassVar[dict] = {}
    gates: ClassVar[tuple]
    state: ClassVar[tuple] = (("h", "hidden"),)
    unit_state: ClassVar[str] = "hidden"
    all_points: ClassVar[tuple] = ("pre", "hidden")
    gateware: ClassVar[str]
    cpp: ClassVar[str]
    qat: ClassVar[str | None] = None
    torch_class: ClassVar[str | None] = None
    onnx_op: ClassVar[str | None] = None
    onnx_gates: ClassVar[tuple] = ()
    onnx_attributes: ClassVar[dict] = {}
    onnx_activations: ClassVar[tuple] = ()

    def __init__(self, **opts):
        unknown = sorted(set(opts) - set(self.options))
        if unknown:
            took = ", ".join(self.options) or "no options"
            raise ConfigError(f"{', '.join(unknown)} is not an option of kind = {self.name!r} (it takes: {took})")
        self.opts = {}
        for k, o in self.options.items():
            v = opts.get(k, o.default)
            if v not in o.values:
                raise ConfigError(f"{k} must be one of {', '.join(map(repr, o.values))}, not {v!r}")
            self.opts[k] = v

    def __getattr__(self, key):
        opts = self.__dict__.get("opts", {})
        if key in opts:
            return opts[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def __eq__(self, other):
        return isinstance(other, CellKind) and (self.name, self.opts) == (other.name, other.opts)

    def __hash__(self):
        return hash((self.name, tuple(sorted(self.opts.items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.opts.items())
        return f"{type(self).__name__}({args})"

    # ---- structure -------------------------------------------------------------------------------
    @property
    def n_gates(self) -> int:
        return len(self.gates)

    def gate_index(self, gate: str) -> int:
        return self.gates.index(gate)

    @property
    def variant(self) -> str:
        """A short human description including the options, e.g. ``gru (reset-after)``."""
        return self.name

    @property
    def hw_order(self) -> tuple:
        """Gate indices in the order the post-processor takes a unit's rows (the last one completes it)."""
        return tuple(range(self.n_gates))

    @property
    def gate_major(self) -> bool:
        """True when the rows run gate-major in several passes (see :meth:`pass_gates`)."""
        return len(self.pass_gates) > 1

    @property
    def pass_gates(self) -> tuple:
        """Hardware gate indices of each pass over ``z``; one pass by default."""
        return (tuple(range(self.n_gates)),)

    def tensors(self) -> tuple:
        """Format tensors this kind reads (each must be in ``[formats]``)."""
        raise NotImplementedError

    @property
    def requant_points(self) -> dict:
        """Requantization points in use, in pipeline order: point -> (format tensor, what it holds)."""
        raise NotImplementedError

    @property
    def points(self) -> tuple:
        """Requantization points in use, in pipeline order."""
        return tuple(self.requant_points)

    @property
    def status(self) -> dict:
        """Kind-specific sticky status bits: bit name -> requantization point (between ``sat_pre`` and
        ``sat_hidden`` in the ``status`` port)."""
        raise NotImplementedError

    @property
    def aux(self) -> Aux | None:
        """The auxiliary memory, or None."""
        return None

    def aux_value(self, q, gate: int | None, unit: int) -> int:
        """The auxiliary memory's raw word for ``gate`` (a gate index; None for a per-unit memory)
        of ``unit``, from the integer parameters ``q``."""
        raise NotImplementedError(f"kind {self.name!r} has no auxiliary memory")

    @property
    def split_x(self) -> bool:
        """True when the post-processor needs a row's ``x`` part apart from its ``h`` part."""
        return False

    def activations(self) -> tuple:
        """``(attribute, function, input tensor, output tensor)`` of each activation the step uses."""
        return (("sigmoid", "sigmoid", "pre", "gate"), ("tanh_pre", "tanh", "pre", "candidate"))

    def trace_formats(self) -> dict:
        """Golden trace name -> format tensor of its raw integers (None: accumulator units)."""
        raise NotImplementedError

    def trace_gates(self) -> dict:
        """Trace entries holding one value per gate -> the gate names, in row order."""
        return {}

    # ---- parameters ----------------------------------------------------------------------------
    @property
    def peep_rows(self) -> int:
        """Rows of the peephole weight array ``w_peep`` (0: the kind has none)."""
        return 0

    @property
    def split_bias(self) -> bool:
        """True when one gate's recurrent bias stays apart from its input bias (``bias_hn``)."""
        return False

    def fold_bias(self, b_ih, b_hh):
        """``(bias, bias_split or None)`` summed in float, before quantization."""
        return b_ih + b_hh, None

    @classmethod
    def onnx_options(cls, attrs: dict, peephole: bool) -> dict | None:
        """This kind's options for a node of :attr:`onnx_op` with kind-specific attributes ``attrs`` (every
        key of :attr:`onnx_attributes`) and a peephole input or not; None when the kind does not take it."""
        return None

    def from_onnx(self, W, R, B, P) -> dict:
        """``CellParams`` fields (PyTorch layout) from one direction of an ONNX node: ``W`` ``(G*H, I)``,
        ``R`` ``(G*H, H)``, ``B`` ``(2*G*H,)`` or None, ``P`` or None, rows in :attr:`onnx_gates` order
        (gate blocks of an ONNX gate this kind derives are dropped)."""
        H, n = R.shape[1], len(self.onnx_gates)
        order = [self.onnx_gates.index(g) for g in self.gates]

        def rows(a):
            return np.concatenate([a[k * H:(k + 1) * H] for k in order])

        B = np.zeros(2 * n * H) if B is None else B
        return {"w_ih": rows(W), "w_hh": rows(R), "b_ih": rows(B[:n * H]), "b_hh": rows(B[n * H:]),
                "w_peep": self.peep_from_onnx(P)}

    def peep_from_onnx(self, P):
        """``w_peep`` from the ONNX peephole input (None for a kind without peepholes)."""
        return None

    # ---- datapath --------------------------------------------------------------------------------
    def acc_terms(self, f) -> list:
        """Extra accumulator terms ``(max |raw|, frac)`` beyond ``W x``, ``W h`` and one bias."""
        return []

    def datapath(self, f, acc_frac: int) -> dict:
        """Kind-specific alignment fields of :class:`model.datapath.Datapath`."""
        return {}

    def multiplier_operands(self) -> tuple:
        """Format tensors multiplied in the lanes (operand width limits apply)."""
        return ("weight", "input", "hidden")

    # ---- timing ----------------------------------------------------------------------------------
    @property
    def row_to_h(self) -> int:
        """Cycles from a unit's last row entering the post-processor to its h register."""
        raise NotImplementedError

    @property
    def op_ready(self) -> int | None:
        """Multi-pass kinds: cycles from a first-pass row entering the post-processor to the second
        pass's operand being written and flagged; None for single-pass kinds."""
        return None

    # ---- steps -----------------------------------------------------------------------------------
    def float_step(self, p, xp, state: tuple, tr: dict | None) -> tuple:
        """One float64 step (:mod:`model.reference`)."""
        raise NotImplementedError

    def golden_step(self, cell, xp, state: tuple, tr: dict | None) -> tuple:
        """One bit-exact step (:mod:`model.golden`); ``cell`` is a :class:`model.golden.GoldenCell`."""
        raise NotImplementedError


def record(tr: dict | None, **values) -> None:
    """Append each value to ``tr[name]`` (a trace being recorded), or do nothing."""
    if tr is not None:
        for k, v in values.items():
            tr.setdefault(k, []).append(v)
