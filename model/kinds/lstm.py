"""The LSTM, with or without peephole connections (``peephole = 'none' | 'c_prev' | 'c_new'``).

Gate order and weight layout are PyTorch's (``i, f, g, o``)::

    i = sigmoid(W_i z + b_i [+ p_i * c(t-1)])      f = sigmoid(W_f z + b_f [+ p_f * c(t-1)])
    g = tanh(W_g z + b_g)                          c(t) = f * c(t-1) + i * g
    o = sigmoid(W_o z + b_o [+ p_o * c_o])         h(t) = o * tanh(c(t))

with ``c_o = c(t-1)`` for ``c_prev`` and ``c_o = c(t)`` for ``c_new`` (ONNX's
peephole).  Bit-exact steps follow the numerics contract: exact accumulator,
requantization at ``pre``, ``cell`` and ``hidden`` only.

:class:`LstmFamily` holds the arithmetic; a kind that derives one of ``i``,
``f`` from the other overrides :meth:`LstmFamily.couple` and its gate list.
"""
from __future__ import annotations

import numpy as np

from .. import latency
from ..activations import sigmoid_float
from .base import Aux, CellKind, Option, record

#: Peephole weight rows: gate name -> row of ``w_peep``.
PEEP_ROW = {"i": 0, "f": 1, "o": 2}


class LstmFamily(CellKind):
    """Shared arithmetic of the LSTM kinds: gates by name, ``o`` after the cell update."""

    state = (("h", "hidden"), ("c", "cell"))
    unit_state = "cell"
    all_points = ("pre", "cell", "hidden")
    torch_class = None
    onnx_op = "LSTM"
    onnx_gates = ("i", "o", "f", "g")
    onnx_attributes = {"input_forget": 0}
    onnx_activations = ("Sigmoid", "Tanh", "Tanh")
    onnx_peep = ("i", "o", "f")  # rows of ONNX's P

    @property
    def hw_order(self) -> tuple:
        # o first (its sum waits for nothing), g last: the g row completes the unit's cell update
        order = ["o"] + [g for g in ("i", "f") if g in self.gates] + ["g"]
        return tuple(self.gate_index(g) for g in order)

    @property
    def peephole_mode(self) -> str:
        return "none"

    def peep_from_onnx(self, P):
        if not self.peep_rows:
            return None
        H = len(P) // 3
        out = np.empty((3, H))
        for g, row in PEEP_ROW.items():
            k = self.onnx_peep.index(g)
            out[row] = P[k * H:(k + 1) * H]
        return out

    def tensors(self) -> tuple:
        t = ("input", "weight", "bias", "pre", "gate", "candidate", "cell", "cell_act", "hidden")
        return t + (("peephole",) if self.peep_rows else ())

    @property
    def requant_points(self) -> dict:
        return {"pre": ("pre", "gate pre-activations"), "cell": ("cell", "f*c + i*g"),
                "hidden": ("hidden", "o*tanh(c)")}

    @property
    def status(self) -> dict:
        return {"sat_cell": "cell"}

    def activations(self) -> tuple:
        return super().activations() + (("tanh_cell", "tanh", "cell", "cell_act"),)

    def trace_formats(self) -> dict:
        return {"acc": None, "pre": "pre", "i": "gate", "f": "gate", "g": "candidate", "o": "gate",
                "cell": "cell", "cell_act": "cell_act", "hidden": "hidden"}

    def trace_gates(self) -> dict:
        return {"pre": list(self.gates)}

    def couple(self, gates: dict, one):
        """``(i, f)`` from the computed sigmoid gates (``one`` is 1.0 in their units)."""
        return gates["i"], gates["f"]

    # ---- peepholes -------------------------------------------------------------------------------
    def _peep_prev(self) -> tuple:
        """Gates whose pre-activation takes ``p * c(t-1)``."""
        mode = self.peephole_mode
        if mode == "none":
            return ()
        return tuple(g for g in ("i", "f") if g in self.gates) + (("o",) if mode == "c_prev" else ())

    def acc_terms(self, f) -> list:
        if not self.peep_rows:
            return []
        return [(f["peephole"].max_abs_int * f["cell"].max_abs_int, f["peephole"].frac_bits + f["cell"].frac_bits)]

    def datapath(self, f, acc_frac: int) -> dict:
        fg, fc, fcand, fca = (f[t].frac_bits for t in ("gate", "cell", "candidate", "cell_act"))
        cell_frac = max(fg + fc, fg + fcand)
        fp = f["peephole"].frac_bits if self.peep_rows else 0
        return {"cell_frac": cell_frac, "fc_shift": cell_frac - fg - fc, "ig_shift": cell_frac - fg - fcand,
                "out_frac": fg + fca, "p_shift": (acc_frac - fp - fc) if self.peep_rows else 0}

    def multiplier_operands(self) -> tuple:
        return super().multiplier_operands() + (("peephole",) if self.peep_rows else ())

    @property
    def aux(self):
        if self.peep_rows:
            return Aux("w_peep", "peephole", "row", "peephole weights by hardware row (0 for rows without one)")
        return None

    def aux_value(self, q, gate, unit):
        name = self.gates[gate]
        return int(q.w_peep[PEEP_ROW[name], unit]) if name in PEEP_ROW else 0

    # ---- timing ----------------------------------------------------------------------------------
    @property
    def row_to_h(self) -> int:
        P, A = latency.PRODUCT, latency.ACT
        sg = latency.ROW_TO_ACT + (P if self.peep_rows else 0) + A  # gate values, the g row's tanh
        sm = sg + P + 1 + 1      # f*c and i*g registered, their sum, [cell]: c(t) registered
        so = sm + A              # tanh(c(t))
        if self.peephole_mode == "c_new":
            so = max(so, sm + P + 1 + 1 + A)  # p_o*c(t) registered, o's sum, [pre], o's sigmoid
        return so + P + 1        # o*tanh(c) registered, [hidden]: h registered

    # ---- steps -----------------------------------------------------------------------------------
    def _blk(self, gate: str, H: int) -> slice:
        k = self.gate_index(gate)
        return slice(k * H, (k + 1) * H)

    def float_step(self, p, xp, state, tr):
        H = p.hidden_size
        h, c = state
        a = xp + h @ p.w_hh.T + p.b_hh
        pre = {g: a[:, self._blk(g, H)] for g in self.gates}
        for g in self._peep_prev():
            pre[g] = pre[g] + p.w_peep[PEEP_ROW[g]] * c
        i, f = self.couple({g: sigmoid_float(pre[g]) for g in ("i", "f") if g in self.gates}, 1.0)
        g = np.tanh(pre["g"])
        c_new = f * c + i * g
        if self.peephole_mode == "c_new":
            pre["o"] = pre["o"] + p.w_peep[PEEP_ROW["o"]] * c_new
        o, tc = sigmoid_float(pre["o"]), np.tanh(c_new)
        h_new = o * tc
        if tr is not None:  # the concatenation is for the trace only
            record(tr, pre=np.concatenate([pre[k] for k in self.gates], axis=1), i=i, f=f, g=g, o=o,
                   cell=c_new, cell_act=tc, hidden=h_new)
        return h_new, c_new

    def golden_step(self, cell, xp, state, tr):
        dp, H = cell.dp, cell.cfg.hidden_size
        h, c = state
        acc = xp + cell.hproj(h) + cell.bias
        peep = cell.q.w_peep
        for gname in self._peep_prev():
            acc[:, self._blk(gname, H)] += (peep[PEEP_ROW[gname]] * c) << dp.p_shift
        pre = {g: cell.requant(acc[:, self._blk(g, H)], dp.acc_frac, "pre", "pre")
               for g in self.gates if g != "o"}
        one = 1 << cell.cfg.fmt("gate").frac_bits
        i, f = self.couple({g: cell.sigmoid(pre[g]) for g in ("i", "f") if g in self.gates}, one)
        g = cell.tanh_pre(pre["g"])
        c_new = cell.requant((f * c << dp.fc_shift) + (i * g << dp.ig_shift), dp.cell_frac, "cell", "cell")
        if self.peephole_mode == "c_new":
            acc[:, self._blk("o", H)] += (peep[PEEP_ROW["o"]] * c_new) << dp.p_shift
        pre["o"] = cell.requant(acc[:, self._blk("o", H)], dp.acc_frac, "pre", "pre")
        o = cell.sigmoid(pre["o"])
        tc = cell.tanh_cell(c_new)
        h_new = cell.requant(o * tc, dp.out_frac, "hidden", "hidden")
        if tr is not None:  # the concatenation is for the trace only
            record(tr, acc=acc, pre=np.concatenate([pre[k] for k in self.gates], axis=1), i=i, f=f, g=g, o=o,
                   cell=c_new, cell_act=tc, hidden=h_new)
        return h_new, c_new


class Lstm(LstmFamily):
    """LSTM (PyTorch's ``nn.LSTM``), optionally with peephole connections."""

    name = "lstm"
    title = "LSTM"
    gates = ("i", "f", "g", "o")
    options = {"peephole": Option(("none", "c_prev", "c_new"), "none",
                                  "none: plain LSTM; c_prev: i, f, o see c(t-1); c_new: i, f see c(t-1), "
                                  "o sees c(t) (ONNX)")}
    gateware = "rtl.kinds.lstm"
    cpp = "hls.kinds.lstm"
    qat = "study.qat_kinds.lstm"
    torch_class = "LSTM"

    @classmethod
    def onnx_options(cls, attrs, peephole):
        if attrs["input_forget"]:
            return None
        return {"peephole": "c_new" if peephole else "none"}  # ONNX's o sees the new cell state

    @property
    def peephole_mode(self) -> str:
        return self.peephole

    @property
    def peep_rows(self) -> int:
        return 0 if self.peephole == "none" else 3

    @property
    def variant(self) -> str:
        return "lstm" if self.peephole == "none" else f"peephole-lstm ({self.peephole})"

    @property
    def hls4ml_layer(self) -> str | None:
        """hls4ml 1.3's layer for this variant (``model.hls4ml_profile.LAYERS``): its LSTM has no peepholes."""
        return None if self.peep_rows else "LSTM"
