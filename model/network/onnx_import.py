"""Import an ONNX graph of ``LSTM`` / ``GRU`` nodes and an optional dense head as
:class:`~model.network.NetworkParams`.

The graph is interpreted, not pattern-matched: constants (initializers, ``Constant`` and the shape
arithmetic exporters emit, evaluated at the graph input's own sizes) are computed with NumPy, and
every tensor derived from the graph input carries a label per axis (``B`` batch, ``T`` time, ``F``
features, ``D`` direction, ``H`` hidden, ``1`` a unit axis).  The glue between recurrent nodes
(``Transpose``, ``Reshape``, ``Squeeze``, ``Unsqueeze``) must deliver ``(T, B, F)`` (``layout = 0``) or
``(B, T, F)`` (``layout = 1``) to the next node, with a bidirectional output's ``(D, H)`` merged in
that order (PyTorch's concatenation).  ``Gather`` or ``Slice`` of the last time step (or the final
hidden state of a one-direction layer) feeds the head: ``Gemm``, or ``MatMul`` and ``Add``, with
constant weights.  Which kind a node becomes is the registry's answer (a kind's ``onnx_op`` and
``onnx_options``).  Anything else is refused, naming the node, its operator and what is supported.

``initial_h`` / ``initial_c`` computed from constants become the network's default initial state
(zeros give none); given as graph inputs they are the caller's state at run time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import kinds
from ..params import CellParams
from .params import HeadParams, NetworkParams

#: Operators the importer interprets, beyond the recurrent ones of the registered kinds.
GLUE_OPS = ("Constant", "Identity", "Cast", "Shape", "Gather", "Slice", "Squeeze", "Unsqueeze", "Concat",
            "Reshape", "Transpose", "Expand", "ConstantOfShape", "Gemm", "MatMul", "Add")
#: Attributes every recurrent operator shares, with the values the kit computes.
COMMON_ATTRS = ("hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta", "clip")
DIRECTIONS = {"forward": 1, "bidirectional": 2}
_SYMBOLIC_DIM = 1009  # size used for the shape arithmetic of a symbolic input dimension


class OnnxImportError(ValueError):
    """A graph the importer cannot take; the message names the node, its operator and what is supported."""


@dataclass
class Sym:
    """A tensor derived from the graph input: one label per axis, its sizes, the layer that produced it
    (-1: the graph input) and whether its time axis was reduced to the last step."""
    labels: tuple
    sizes: tuple
    layer: int = -1
    last: bool = False
    final_dirs: int = 0  # > 0: a final-state output (Y_h / Y_c) of a layer with this many directions


@dataclass
class _Layer:
    kind: object
    cells: list
    hidden: int
    init: list = field(default_factory=list)


def from_onnx(path) -> NetworkParams:
    """Read ``path`` (an ``.onnx`` file, or an ``onnx.ModelProto``) into :class:`NetworkParams`."""
    import onnx
    from onnx import numpy_helper

    model = path if isinstance(path, onnx.ModelProto) else _load(path)
    g = model.graph
    vals: dict = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in vals]
    if not inputs:
        raise OnnxImportError("the graph has no input besides its initializers")
    for i in inputs:
        dims = [d.dim_value if d.HasField("dim_value") else _SYMBOLIC_DIM + k
                for k, d in enumerate(i.type.tensor_type.shape.dim)]
        vals[i.name] = Sym(tuple(f"{i.name}:{k}" for k in range(len(dims))), tuple(dims))
    st = _State(vals)
    for node in g.node:
        st.node(node)
    if not st.layers:
        raise OnnxImportError(f"the graph has no recurrent node (supported: {', '.join(_rnn_ops())})")
    out = st.vals.get(g.output[0].name)
    head = st.head if isinstance(out, Sym) and out.labels[-1] == "C" else None
    if head is None and not (isinstance(out, Sym) and out.layer == len(st.layers) - 1):
        raise OnnxImportError(f"graph output {g.output[0].name!r} is neither the last layer's output nor a head "
                              f"on it")
    layers = [tuple(layer.cells) for layer in st.layers]
    init = [s for layer in st.layers for s in layer.init]
    default = init if init and any(np.any(v) for s in init for v in s) else None
    return NetworkParams(layers, head, default)


def _load(path):
    import onnx
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        raise OnnxImportError(f"ONNX file {str(path)!r} does not exist")
    try:
        return onnx.load(str(p))
    except Exception as e:  # onnx raises DecodeError and others for a file that is not a model
        raise OnnxImportError(f"{path}: not an ONNX model ({type(e).__name__}: {e})") from None


def _rnn_ops() -> tuple:
    return tuple(dict.fromkeys(k.onnx_op for k in kinds.REGISTRY.values() if k.onnx_op))


def _attrs(node) -> dict:
    from onnx import helper
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else [x.decode() if isinstance(x, bytes) else x
                                                                for x in v] if isinstance(v, list) else v
    return out


class _State:
    """The interpreter: values by name, the layers found so far, the head."""

    def __init__(self, vals):
        self.vals = vals
        self.layers: list[_Layer] = []
        self.head = None
        self.pending_bias = None  # (name of a MatMul's output, weight) waiting for its Add
        self.bind: dict = {}  # graph-input label -> T / B / F, fixed by the first recurrent node

    def err(self, node, what):
        return OnnxImportError(f"ONNX node {node.name or '(unnamed)'!r} (op {node.op_type}): {what}")

    def get(self, node, k, const=False):
        name = node.input[k] if k < len(node.input) else ""
        if not name:
            return None
        if name not in self.vals:
            raise self.err(node, f"input {name!r} is not produced by any earlier node")
        v = self.vals[name]
        if const and isinstance(v, Sym):
            raise self.err(node, f"input {k} ({name!r}) must be a constant, but it depends on the graph input")
        return v

    def lab(self, label):
        return self.bind.get(label, label)

    def node(self, node):
        op = node.op_type
        if op in _rnn_ops():
            return self.rnn(node)
        if op not in GLUE_OPS:
            raise self.err(node, f"operator not supported; supported: {', '.join(_rnn_ops() + GLUE_OPS)}")
        ins = [self.get(node, k) for k in range(len(node.input))]
        a = _attrs(node)
        if not any(isinstance(v, Sym) for v in ins) and op not in ("Gemm", "MatMul"):
            out = self.const(node, op, ins, a)
        else:
            out = self.sym(node, op, ins, a)
        self.vals[node.output[0]] = out

    # ---- constants --------------------------------------------------------------------------
    def const(self, node, op, ins, a):
        from onnx import numpy_helper
        if op == "Constant":
            if "value" not in a:
                raise self.err(node, f"only the 'value' attribute is supported, not {', '.join(a)}")
            return numpy_helper.to_array(a["value"])
        if op == "Add":
            return ins[0] + ins[1]
        x = ins[0]
        if op in ("Identity", "Cast"):
            return x if op == "Identity" else x.astype(_onnx_dtype(a["to"]))
        if op == "Shape":
            return np.array(x.shape, dtype=np.int64)
        if op == "Gather":
            return np.take(x, ins[1], axis=a.get("axis", 0))
        if op == "Unsqueeze":
            for ax in sorted(int(v) % (x.ndim + len(ins[1])) for v in ins[1]):
                x = np.expand_dims(x, ax)
            return x
        if op == "Squeeze":
            return np.squeeze(x, axis=None if len(ins) < 2 or ins[1] is None else tuple(int(v) for v in ins[1]))
        if op == "Concat":
            return np.concatenate([np.atleast_1d(v) for v in ins], axis=a["axis"])
        if op == "Reshape":
            return x.reshape(_reshape_dims(x.shape, ins[1], a.get("allowzero", 0)))
        if op == "Transpose":
            return np.transpose(x, a.get("perm"))
        if op == "Expand":
            return x * np.ones(tuple(int(v) for v in ins[1]), dtype=x.dtype)
        if op == "ConstantOfShape":
            v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            return np.full(tuple(int(d) for d in x), v.reshape(-1)[0], dtype=v.dtype)
        if op == "Slice":
            return x[_slices(x.ndim, ins)]
        raise self.err(node, "operator not supported on constants")

    # ---- tensors derived from the input -------------------------------------------------------
    def sym(self, node, op, ins, a):
        x = ins[0]
        if op in ("Gemm", "MatMul"):
            return self.dense(node, op, ins, a)
        if op == "Add":
            return self.add(node, ins)
        if not isinstance(x, Sym):
            raise self.err(node, "only its first input may depend on the graph input")
        if op in ("Identity", "Cast"):
            return x
        if op == "Shape":
            return np.array(x.sizes, dtype=np.int64)
        if op == "Transpose":
            perm = a.get("perm", list(range(len(x.labels)))[::-1])
            return Sym(tuple(x.labels[p] for p in perm), tuple(x.sizes[p] for p in perm), x.layer, x.last,
                       x.final_dirs)
        if op == "Squeeze":
            axes = [int(v) % len(x.labels) for v in ins[1]] if len(ins) > 1 and ins[1] is not None else \
                [k for k, s in enumerate(x.sizes) if s == 1]
            if "axes" in a:
                axes = [int(v) % len(x.labels) for v in a["axes"]]
            for k in axes:
                if x.sizes[k] != 1:
                    raise self.err(node, f"squeezes axis {k} of size {x.sizes[k]}")
            labels = [self.merge_unit(x, k) for k in range(len(x.labels)) if k not in axes]
            return Sym(tuple(labels), tuple(s for k, s in enumerate(x.sizes) if k not in axes), x.layer,
                       x.last, x.final_dirs)
        if op == "Unsqueeze":
            labels, sizes = list(x.labels), list(x.sizes)
            axes = ins[1] if len(ins) > 1 else a["axes"]
            for ax in sorted(int(v) % (len(labels) + len(axes)) for v in axes):
                labels.insert(ax, "1")
                sizes.insert(ax, 1)
            return Sym(tuple(labels), tuple(sizes), x.layer, x.last, x.final_dirs)
        if op == "Reshape":
            return self.reshape(node, x, _reshape_dims(x.sizes, ins[1], a.get("allowzero", 0)))
        if op in ("Gather", "Slice"):
            return self.last_step(node, op, x, ins, a)
        if op == "Concat":
            return self.stack_finals(node, ins, a)
        if op == "Expand":
            if tuple(int(v) for v in ins[1]) not in (x.sizes, tuple(1 for _ in x.sizes)):
                raise self.err(node, "expands a tensor derived from the graph input")
            return x
        raise self.err(node, "not supported on a tensor derived from the graph input")

    def stack_finals(self, node, ins, a):
        """``Concat`` of final states along their direction axis: PyTorch's ``h_n`` (axis ``S``, one entry
        per layer and direction); its last entry is the last layer's final state."""
        if not all(isinstance(v, Sym) and v.final_dirs and v.labels[0] == "D" for v in ins) \
                or int(a.get("axis", 0)) != 0:
            raise self.err(node, "only the concatenation of final states along their direction axis (PyTorch's "
                                 "h_n) is supported on tensors derived from the graph input")
        last = ins[-1]
        return Sym(("S",) + last.labels[1:], (sum(v.sizes[0] for v in ins),) + last.sizes[1:], last.layer, True,
                   last.final_dirs)

    def merge_unit(self, x, k):
        """The label of axis ``k`` once its size-1 neighbour axis is squeezed: an ``H`` of a one-direction
        layer is its output's ``F``."""
        lab = x.labels[k]
        if lab == "H" and "D" in x.labels and x.sizes[x.labels.index("D")] == 1:
            return "F"
        return lab

    def reshape(self, node, x, dims):
        """Only merges of adjacent axes and insertion or removal of size-1 axes; ``(D, H)`` merges to ``F``."""
        labels, sizes, out = list(x.labels), list(x.sizes), []
        k = 0
        for d in dims:
            group = []
            prod = 1
            while k < len(sizes) and (prod < d or (not group)) and prod * sizes[k] <= d:
                group.append(k)
                prod *= sizes[k]
                k += 1
            if prod != d:
                if d == 1:
                    out.append("1")
                    continue
                raise self.err(node, f"reshapes {tuple(sizes)} to {tuple(dims)}: only merging adjacent axes is "
                                     f"supported")
            names = [labels[j] for j in group if not (sizes[j] == 1 and len(group) > 1)]
            if len(names) == 1:
                out.append(self.merge_unit(x, group[0]) if len(group) > 1 else names[0])
            elif names == ["D", "H"]:
                out.append("F")
            else:
                raise self.err(node, f"merges axes {names} into one; only (direction, hidden) -> features is "
                                     f"supported")
        while k < len(sizes) and sizes[k] == 1:
            k += 1
        if k != len(sizes):
            raise self.err(node, f"reshapes {tuple(sizes)} to {tuple(dims)}: not supported")
        return Sym(tuple(out), tuple(int(d) for d in dims), x.layer, x.last, x.final_dirs)

    def last_step(self, node, op, x, ins, a):
        """``Gather`` / ``Slice`` of the last time step (index -1 or steps - 1) or of the final state's
        only direction."""
        axis = int(a.get("axis", 0)) if op == "Gather" else None
        if op == "Slice":
            starts, ends = ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), np.int64)
            if len(axes) != 1 or int(steps[0]) != 1:
                raise self.err(node, "only a slice of one axis with step 1 is supported")
            axis = int(axes[0]) % len(x.labels)
            n = x.sizes[axis]
            s, e = int(starts[0]), int(ends[0])
            s, e = (s + n if s < 0 else s), min(e + n if e < 0 else e, n)
            if not (s == n - 1 and e == n):
                raise self.err(node, f"slices [{int(starts[0])}:{int(ends[0])}] of an axis of size {n}; only the "
                                     f"last element is supported")
        else:
            axis %= len(x.labels)
            idx = np.asarray(ins[1]).reshape(-1)
            if np.asarray(ins[1]).ndim != 0 or int(idx[0]) not in (-1, x.sizes[axis] - 1):
                raise self.err(node, f"gathers {np.asarray(ins[1]).tolist()} on axis {axis}; only a scalar index "
                                     f"of the last element is supported")
        lab = self.lab(x.labels[axis])
        if lab == "T":
            keep = op == "Slice"
        elif (lab == "D" and x.sizes[axis] == 1) or (lab == "S" and x.final_dirs == 1):
            keep = op == "Slice"
        else:
            raise self.err(node, f"takes the last element of the {lab!r} axis; only the time axis (or the single "
                                 f"direction of a final state) is supported")
        labels = [("1" if k == axis else "F" if (lab in "DS" and l == "H" and not keep) else l)
                  for k, l in enumerate(x.labels)]
        sizes = list(x.sizes)
        if not keep:
            del labels[axis], sizes[axis]
        else:
            sizes[axis] = 1
        return Sym(tuple(labels), tuple(sizes), x.layer, True, x.final_dirs)

    # ---- recurrent nodes ----------------------------------------------------------------------
    def rnn(self, node):
        a = _attrs(node)
        op = node.op_type
        cands = [k for k in kinds.REGISTRY.values() if k.onnx_op == op]
        own = {k: v for c in cands for k, v in c.onnx_attributes.items()}
        unknown = sorted(set(a) - set(COMMON_ATTRS) - set(own))
        if unknown:
            raise self.err(node, f"attribute {unknown[0]} is not supported (supported: "
                                 f"{', '.join(COMMON_ATTRS + tuple(own))})")
        for k in ("clip", "activation_alpha", "activation_beta"):
            if k in a:
                raise self.err(node, f"attribute {k} = {a[k]!r} is not supported (the kit computes unclipped "
                                     f"default activations)")
        W, R, B = (self.get(node, k, const=True) for k in (1, 2, 3))
        P = self.get(node, 7, const=True) if len(node.input) > 7 else None
        if self.get(node, 4) is not None:
            raise self.err(node, "input sequence_lens is not supported (sequences run to their full length)")
        opts = None
        kind_cls = None
        for c in cands:
            o = c.onnx_options({k: a.get(k, v) for k, v in own.items()}, P is not None)
            if o is not None:
                kind_cls, opts = c, o
                break
        if kind_cls is None:
            given = ", ".join(f"{k} = {a.get(k, v)}" for k, v in own.items())
            raise self.err(node, f"no registered cell kind computes this node ({given}"
                                 f"{', with peephole input P' if P is not None else ''})")
        kind = kind_cls(**opts)
        direction = a.get("direction", "forward")
        if direction not in DIRECTIONS:
            raise self.err(node, f"attribute direction = {direction!r} is not supported (supported: "
                                 f"{', '.join(DIRECTIONS)})")
        D = DIRECTIONS[direction]
        if "activations" in a:
            want = list(kind_cls.onnx_activations) * D
            if a["activations"] != want:
                raise self.err(node, f"attribute activations = {a['activations']} is not supported (supported: "
                                     f"{want}, the defaults)")
        H = int(a["hidden_size"])
        layout = int(a.get("layout", 0))
        if layout not in (0, 1):
            raise self.err(node, f"attribute layout = {layout} is not supported (supported: 0, 1)")
        if W.shape[0] != D or R.shape[0] != D:
            raise self.err(node, f"weights have {W.shape[0]} direction(s) but direction = {direction!r}")
        x = self.get(node, 0)
        if not isinstance(x, Sym) or x.last or x.final_dirs:
            raise self.err(node, "input X must be the graph input or a sequence output of the previous "
                                 "recurrent node")
        want_layer = len(self.layers) - 1
        if x.layer != want_layer:
            raise self.err(node, f"input X comes from {'the graph input' if x.layer < 0 else f'layer {x.layer}'}"
                                 f"; layers must form one chain")
        order = ("T", "B", "F") if layout == 0 else ("B", "T", "F")
        if x.layer < 0 and not self.bind:
            if len(x.labels) != 3:
                raise self.err(node, f"input X has {len(x.labels)} axes; expected 3")
            self.bind = dict(zip(x.labels, order))
        got = tuple(self.lab(lab) for lab in x.labels)
        if got != order:
            raise self.err(node, f"input X arrives with axes {got}; layout = {layout} needs {order}")
        cells = []
        for d in range(D):
            f = kind.from_onnx(W[d].astype(np.float64), R[d].astype(np.float64),
                               None if B is None else B[d].astype(np.float64),
                               None if P is None else P[d].astype(np.float64))
            cells.append(CellParams(kind.name, **f, options=dict(kind.opts)))
        layer = _Layer(kind, cells, H)
        names = [n for n, _ in kind.state]
        init = [self.get(node, k) for k in (5, 6)][:len(names)]
        for v in init:
            if isinstance(v, Sym) and (v.layer >= 0 or any(lab in self.bind for lab in v.labels)):
                raise self.err(node, "an initial state computed from the input sequence is not supported")
        init = [None if isinstance(v, Sym) else v for v in init]  # a graph input: the caller's state
        per = []
        for v, n in zip(init + [None] * (len(names) - len(init)), names):
            if v is None:
                v = np.zeros((D, 1, H))
            v = np.asarray(v, dtype=np.float64)
            if v.ndim != 3 or v.shape[0] != D or v.shape[2] != H:
                raise self.err(node, f"initial {n} has shape {v.shape}; expected ({D}, batch, {H})")
            if np.any(v != v[:, :1]):
                raise self.err(node, f"initial {n} differs between batch elements; only a state shared by "
                                     f"every sequence imports (give per-sequence states at run time)")
            per.append(v[:, 0])
        layer.init = [tuple(per[j][d] for j in range(len(names))) for d in range(D)]
        self.layers.append(layer)
        n = len(self.layers) - 1
        T, Bsz = x.sizes[got.index("T")], x.sizes[got.index("B")]
        ysz = (T, D, Bsz, H) if layout == 0 else (Bsz, T, D, H)
        ylab = tuple(x.labels[got.index(o)] for o in ("T",)) + ("D",) + (x.labels[got.index("B")],) + ("H",) \
            if layout == 0 else (x.labels[got.index("B")], x.labels[got.index("T")], "D", "H")
        self.vals[node.output[0]] = Sym(ylab, ysz, n) if node.output[0] else None
        final_lab = ("D", x.labels[got.index("B")], "H") if layout == 0 else (x.labels[got.index("B")], "D", "H")
        final_sz = (D, Bsz, H) if layout == 0 else (Bsz, D, H)
        for out in node.output[1:]:
            if out:
                self.vals[out] = Sym(final_lab, final_sz, n, True, D)

    # ---- head -----------------------------------------------------------------------------------
    def dense(self, node, op, ins, a):
        x, w = ins[0], ins[1]
        if not isinstance(x, Sym) or isinstance(w, Sym):
            raise self.err(node, "only a dense layer on the network's output with constant weights is supported")
        if self.head is not None or x.layer != len(self.layers) - 1:
            raise self.err(node, "only one dense layer, on the last recurrent layer's output, is supported")
        labs = tuple(self.lab(v) for v in x.labels)
        if labs != ("B", "F") or not x.last:
            raise self.err(node, f"the dense layer's input has axes {labs}"
                                 f"{'' if x.last else ' (every time step)'}; supported: (B, F) of the last step")
        if x.final_dirs > 1:
            raise self.err(node, "a head on the final state of a bidirectional layer is not supported; take the "
                                 "output's last step")
        w = np.asarray(w, dtype=np.float64)
        if op == "Gemm":
            if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
                raise self.err(node, "only transA = 0, alpha = 1 and beta = 1 are supported")
            w = w if a.get("transB", 0) else w.T
            b = np.zeros(w.shape[0]) if len(ins) < 3 or ins[2] is None else \
                np.broadcast_to(np.asarray(ins[2], dtype=np.float64).reshape(-1), (w.shape[0],))
            self.set_head(node, w, b)
            return Sym(("B", "C"), (x.sizes[0], w.shape[0]), x.layer, True)
        self.pending_bias = (node.output[0], w.T)
        return Sym(("B", "M"), (x.sizes[0], w.shape[1]), x.layer, True)

    def add(self, node, ins):
        x, b = ins
        if isinstance(b, Sym):
            x, b = b, x
        if self.pending_bias is None or node.input[list(ins).index(x)] != self.pending_bias[0] \
                or isinstance(b, Sym):
            raise self.err(node, "Add is supported only as the bias of a MatMul head")
        w = self.pending_bias[1]
        self.set_head(node, w, np.broadcast_to(np.asarray(b, dtype=np.float64).reshape(-1), (w.shape[0],)))
        self.pending_bias = None
        return Sym(("B", "C"), (x.sizes[0], w.shape[0]), x.layer, True)

    def set_head(self, node, w, b):
        try:
            self.head = HeadParams(w, b)
        except ValueError as e:
            raise self.err(node, str(e)) from None
        feats = len(self.layers[-1].cells) * self.layers[-1].hidden
        if self.head.features != feats:
            raise self.err(node, f"the head takes {self.head.features} features but the last layer gives {feats}")


def _reshape_dims(in_shape, shape, allowzero):
    dims = [int(v) for v in np.asarray(shape).reshape(-1)]
    dims = [in_shape[k] if d == 0 and not allowzero else d for k, d in enumerate(dims)]
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1]))
        dims[dims.index(-1)] = int(np.prod(in_shape)) // max(known, 1)
    return dims


def _slices(ndim, ins):
    starts, ends = ins[1], ins[2]
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
    steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    sl = [slice(None)] * ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        sl[int(ax)] = slice(int(s), int(min(e, 2 ** 62)) if e > 0 else int(e), int(st))
    return tuple(sl)


def _onnx_dtype(to):
    from onnx import helper
    return helper.tensor_dtype_to_np_dtype(to)


__all__ = ["OnnxImportError", "from_onnx"]
