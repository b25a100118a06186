"""The GRU, with the reset gate after (PyTorch, Keras) or before (the original GRU) the matrix product.

Gate order and weight layout are PyTorch's (``r, z, n``)::

    r = sigmoid(W_r x + b_ir + U_r h + b_hr)       z = sigmoid(W_z x + b_iz + U_z h + b_hz)
    n = tanh(W_n x + b_in + r * (U_n h + b_hn))    reset = 'after'
    n = tanh(W_n x + b_in + U_n (r * h) + b_hn)    reset = 'before'
    h(t) = (1 - z) * n + z * h(t-1)

Reset-after keeps ``b_hn`` apart (it sits inside the reset product) and
requantizes ``U_n h + b_hn`` at point ``gru_hn``; reset-before requantizes
``r * h(t-1)`` at ``gru_rh`` and runs two passes over ``z`` (the ``n`` rows
need every ``r * h``).  ``1 - z`` is exact in the gate fraction.
"""
from __future__ import annotations

import numpy as np

from .. import latency
from ..activations import sigmoid_float
from .base import Aux, CellKind, Option, record


class Gru(CellKind):
    """GRU (PyTorch's ``nn.GRU`` is ``reset = 'after'``)."""

    name = "gru"
    title = "GRU"
    gates = ("r", "z", "n")
    options = {"reset": Option(("after", "before"), "after",
                               "after: n = tanh(W x + b + r * (U h + b_hn)) (PyTorch, Keras); "
                               "before: n = tanh(W x + U (r * h) + b) (original GRU)")}
    all_points = ("pre", "gru_hn", "gru_rh", "hidden")
    gateware = "rtl.kinds.gru"
    cpp = "hls.kinds.gru"
    qat = "study.qat_kinds.gru"
    torch_class = "GRU"
    onnx_op = "GRU"
    onnx_gates = ("z", "r", "n")
    onnx_attributes = {"linear_before_reset": 0}
    onnx_activations = ("Sigmoid", "Tanh")

    @classmethod
    def onnx_options(cls, attrs, peephole):
        if peephole:
            return None
        return {"reset": "after" if attrs["linear_before_reset"] else "before"}

    @property
    def after(self) -> bool:
        return self.reset == "after"

    @property
    def variant(self) -> str:
        return f"gru (reset-{self.reset})"

    @property
    def hls4ml_layer(self) -> str | None:
        """hls4ml 1.3's layer for this variant (``model.hls4ml_profile.LAYERS``): its GRU resets after the product."""
        return "GRU" if self.after else None

    @property
    def pass_gates(self) -> tuple:
        return ((0, 1), (2,)) if not self.after else ((0, 1, 2),)

    def tensors(self) -> tuple:
        return ("input", "weight", "bias", "pre", "gate", "candidate", "hidden")

    @property
    def requant_points(self) -> dict:
        mid = {"gru_hn": ("pre", "W_hn h + b_hn")} if self.after else {"gru_rh": ("hidden", "r * h(t-1)")}
        return {"pre": ("pre", "gate pre-activations"), **mid, "hidden": ("hidden", "(1-z)*n + z*h")}

    @property
    def status(self) -> dict:
        return {"sat_hn": "gru_hn"} if self.after else {"sat_rh": "gru_rh"}

    @property
    def aux(self):
        return Aux("bias_hn", "bias", "unit", "b_hn by unit") if self.after else None

    def aux_value(self, q, gate, unit):
        return int(q.bias_hn[unit])

    @property
    def split_x(self) -> bool:
        return self.after

    def trace_formats(self) -> dict:
        common = {"acc": None, "pre_rz": "pre", "r": "gate", "z": "gate", "pre_n": "pre", "n": "candidate",
                  "hidden": "hidden"}
        return {**common, **({"acc_nh": None, "hn": "pre"} if self.after else {"rh": "hidden"})}

    def trace_gates(self) -> dict:
        return {"pre_rz": ["r", "z"]}

    # ---- parameters ------------------------------------------------------------------------------
    @property
    def split_bias(self) -> bool:
        return self.after

    def fold_bias(self, b_ih, b_hh):
        if not self.after:
            return b_ih + b_hh, None
        H = len(b_ih) // 3
        b = b_ih + b_hh
        b[2 * H:] = b_ih[2 * H:]
        return b, b_hh[2 * H:].copy()

    # ---- datapath --------------------------------------------------------------------------------
    def acc_terms(self, f) -> list:
        # reset-after: b_hn joins the h part of the same accumulator
        return [(f["bias"].max_abs_int, f["bias"].frac_bits)] if self.after else []

    def datapath(self, f, acc_frac: int) -> dict:
        fg, fh, fcand, fpre = (f[t].frac_bits for t in ("gate", "hidden", "candidate", "pre"))
        out_frac = max(fg + fcand, fg + fh)
        nh_frac = max(acc_frac, fg + fpre)
        return {"out_frac": out_frac, "zn_shift": out_frac - fg - fcand, "zh_shift": out_frac - fg - fh,
                "nh_frac": nh_frac, "nx_shift": nh_frac - acc_frac, "rhn_shift": nh_frac - fg - fpre,
                "rh_frac": fg + fh}

    # ---- timing ----------------------------------------------------------------------------------
    @property
    def row_to_h(self) -> int:
        P, A = latency.PRODUCT, latency.ACT
        sg = latency.ROW_TO_ACT + A  # sigmoid out
        if self.after:
            # n row, one stage before r's sigmoid output stage (the r row is two rows ahead): r*hn
            # registered, x part + r*hn, [pre] into the tanh, tanh
            sh = sg - 1 + P + 1 + 1 + A
        else:
            # n row: tanh and z (sg), both registered, 1 - z
            sh = sg + 1 + 1
        return sh + P + 1 + 1    # (1-z)*n and z*h(t-1) registered, their sum, [hidden]: h registered

    @property
    def op_ready(self):
        # r row: sigmoid out, r*h(t-1) registered, [gru_rh] and written, flag seen
        return None if self.after else latency.ROW_TO_ACT + latency.ACT + latency.PRODUCT + 1 + 1

    # ---- steps -----------------------------------------------------------------------------------
    def float_step(self, p, xp, state, tr):
        H = p.hidden_size
        h = state[0]
        if self.after:
            a = h @ p.w_hh.T + p.b_hh
            pre_rz = xp[:, :2 * H] + a[:, :2 * H]
            r, z = sigmoid_float(pre_rz[:, :H]), sigmoid_float(pre_rz[:, H:])
            record(tr, hn=a[:, 2 * H:])
            pre_n = xp[:, 2 * H:] + r * a[:, 2 * H:]
        else:
            pre_rz = xp[:, :2 * H] + (h @ p.w_hh[:2 * H].T + p.b_hh[:2 * H])
            r, z = sigmoid_float(pre_rz[:, :H]), sigmoid_float(pre_rz[:, H:])
            if tr is not None:
                record(tr, rh=r * h)
            pre_n = xp[:, 2 * H:] + (r * h) @ p.w_hh[2 * H:].T + p.b_hh[2 * H:]
        n = np.tanh(pre_n)
        h_new = (1.0 - z) * n + z * h
        record(tr, pre_rz=pre_rz, r=r, z=z, pre_n=pre_n, n=n, hidden=h_new)
        return (h_new,)

    def golden_step(self, cell, xp, state, tr):
        cfg, dp, H = cell.cfg, cell.dp, cell.cfg.hidden_size
        h = state[0]
        one = 1 << cfg.fmt("gate").frac_bits
        acc = xp + cell.bias
        if self.after:
            hp = cell.hproj(h)
            acc[:, :2 * H] += hp[:, :2 * H]
            pre_rz = cell.requant(acc[:, :2 * H], dp.acc_frac, "pre", "pre")
            r, z = cell.sigmoid(pre_rz[:, :H]), cell.sigmoid(pre_rz[:, H:])
            acc_nh = hp[:, 2 * H:] + (cell.q.bias_hn.astype(np.int64) << dp.b_shift)
            hn = cell.requant(acc_nh, dp.acc_frac, "gru_hn", "pre")
            acc_n = (acc[:, 2 * H:] << dp.nx_shift) + ((r * hn) << dp.rhn_shift)
            pre_n = cell.requant(acc_n, dp.nh_frac, "pre", "pre")
            record(tr, acc_nh=acc_nh, hn=hn)
        else:
            acc[:, :2 * H] += cell.hproj(h, slice(0, 2 * H))
            pre_rz = cell.requant(acc[:, :2 * H], dp.acc_frac, "pre", "pre")
            r, z = cell.sigmoid(pre_rz[:, :H]), cell.sigmoid(pre_rz[:, H:])
            rh = cell.requant(r * h, dp.rh_frac, "gru_rh", "hidden")
            acc[:, 2 * H:] += cell.hproj(rh, slice(2 * H, 3 * H))
            pre_n = cell.requant(acc[:, 2 * H:], dp.acc_frac, "pre", "pre")
            record(tr, rh=rh)
        n = cell.tanh_pre(pre_n)
        h_new = cell.requant((((one - z) * n) << dp.zn_shift) + ((z * h) << dp.zh_shift), dp.out_frac,
                             "hidden", "hidden")
        record(tr, acc=acc, pre_rz=pre_rz, r=r, z=z, pre_n=pre_n, n=n, hidden=h_new)
        return (h_new,)
