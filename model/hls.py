"""HLS-ready, bit-exact C++ reference of the configured cell, generated from ``model/``.

``python -m model.hls --config configs/tiny.toml --out build`` writes
``build/<config-name>/hls/``:

- ``<name>.h``: the header-only cell in namespace ``rnnkit_<name>``: compile-time
  sizes, ``const`` weight, bias, peephole and activation tables, the rounding and
  overflow helpers (``shift_round``, ``overflow``, ``requantize``, the points
  ``RQ_pre`` ... ``RQ_gru_rh``), the activations (``sigmoid``, ``tanh_pre``,
  ``tanh_cell``), and ``step`` / ``sequence``.  Integer arithmetic only; fixed loop
  bounds; no dynamic memory, recursion or floating point.
- ``<name>_top.cpp``: the two top functions for an HLS tool,
  ``rnnkit_<name>_step`` and ``rnnkit_<name>_sequence``.
- ``<name>_tb.cpp``: a testbench ``main`` that reads a vector directory written by
  :mod:`model.vectors` and checks every element of h(t) (and c(t)) of every step,
  through both top functions; exit status 0 only when all match.
- ``Makefile``: ``make tb`` and ``make check VECTORS=<dir>`` with ``g++``.

Types are ``<cstdint>`` integers of the smallest standard width holding each
format; defining ``RNNKIT_AP_INT`` switches the tensor types to ``ap_int<W>`` /
``ap_uint<W>`` of the exact width (``<ap_int.h>`` from the HLS tool).  All
arithmetic runs on ``wide_t`` (``int64_t``); the datapath record guarantees every
intermediate fits 62 bits.  No pragmas are emitted.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .activations import make_activation
from .config import Config, ConfigError
from .datapath import Datapath
from .params import QParams
from .vectors import config_digest, load_config_arg, nonneg_int, params_for, positive_int

#: Default compile-time length of the sequence top function's arrays.
DEFAULT_MAX_STEPS = 32
ROUNDING = {"truncate": "TRUNCATE", "half_up": "HALF_UP", "half_even": "HALF_EVEN"}
OVERFLOW = {"saturate": "SATURATE", "wrap": "WRAP"}


class HlsError(ValueError):
    """A config or argument the C++ generator cannot take; the message names it."""


def ident(name: str) -> str:
    """A C++ identifier made from a config name."""
    s = re.sub(r"\W", "_", name)
    return s if s and not s[0].isdigit() else "c_" + s


def c_int_type(width: int, signed: bool) -> str:
    for w in (8, 16, 32, 64):
        if width <= w:
            return f"{'' if signed else 'u'}int{w}_t"
    raise HlsError(f"no integer type holds {width} bits")


def ap_int_type(width: int, signed: bool) -> str:
    return f"ap_{'' if signed else 'u'}int<{width}>"


def _array(values, per_line: int = 16, indent: str = "    ") -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return ("\n" + indent) + (",\n" + indent).join(lines) + "\n"


def _array2(values, indent: str = "    ") -> str:
    rows = [("{" + ", ".join(str(int(v)) for v in row) + "}") for row in np.asarray(values)]
    return ("\n" + indent) + (",\n" + indent).join(rows) + "\n"


class _Gen:
    """Emits the C++ sources for one config and one parameter set."""

    def __init__(self, cfg: Config, q: QParams, max_steps: int):
        q.check_matches(cfg)
        for fn in ("sigmoid", "tanh"):
            spec = getattr(cfg, fn)
            if spec.method == "exact":
                raise HlsError(f"{fn}.method = 'exact' has no integer definition (it evaluates the function in "
                               f"floating point); accepted for C++/HLS: lut, lut_interp, pwl, hard")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise HlsError(f"max_steps must be a positive integer, not {max_steps!r}")
        self.cfg, self.q, self.max_steps = cfg, q, max_steps
        self.dp = Datapath.from_config(cfg)
        self.id = ident(cfg.name)
        self.ns = f"rnnkit_{self.id}"
        self.lstm = cfg.kind == "lstm"
        self.peep = self.lstm and cfg.peephole != "none"
        f = cfg.formats
        self.acts = [("sigmoid", make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"]), "pre", "gate"),
                     ("tanh_pre", make_activation("tanh", cfg.tanh, f["pre"], f["candidate"]), "pre", "candidate")]
        if self.lstm:
            self.acts.append(("tanh_cell", make_activation("tanh", cfg.tanh, f["cell"], f["cell_act"]),
                              "cell", "cell_act"))

    # ---- pieces ------------------------------------------------------------------------------------
    def tensors(self) -> list[str]:
        t = ["input", "weight", "bias"] + (["peephole"] if self.peep else []) + ["pre", "gate", "candidate"]
        if self.lstm:
            t += ["cell", "cell_act"]
        return t + ["hidden"]

    def fmt_comment(self, tensor: str) -> str:
        f = self.cfg.fmt(tensor)
        return f"formats.{tensor} = {f} = {f.ap}: raw integer, value = raw * 2^-{f.frac_bits}"

    def typedefs(self) -> str:
        rows_ap, rows_c = [], []
        for t in self.tensors():
            f = self.cfg.fmt(t)
            rows_ap.append(f"typedef {ap_int_type(f.width, f.signed)} {t}_t;")
            rows_c.append(f"typedef {c_int_type(f.width, f.signed)} {t}_t;")
        aw = self.dp.acc_width
        rows_ap.append(f"typedef ap_int<{aw}> acc_t;")
        rows_c.append(f"typedef {c_int_type(aw, True)} acc_t;")
        comments = [f"// {t}_t: {self.fmt_comment(t)}" for t in self.tensors()]
        comments.append(f"// acc_t: gate-row accumulator, s{aw - self.dp.acc_frac}.{self.dp.acc_frac} = "
                        f"ap_fixed<{aw},{aw - self.dp.acc_frac}>, exact (acc_width {aw})")
        return ("\n".join(comments) + "\n#ifdef RNNKIT_AP_INT\n" + "\n".join(rows_ap) + "\n#else\n"
                + "\n".join(rows_c) + "\n#endif\n")

    def constants(self) -> str:
        cfg, dp = self.cfg, self.dp
        f = cfg.formats
        lines = [
            f"constexpr int INPUT_SIZE = {cfg.input_size};",
            f"constexpr int HIDDEN_SIZE = {cfg.hidden_size};",
            f"constexpr int GATES = {cfg.gates};  // {'i, f, g, o' if self.lstm else 'r, z, n'} (PyTorch order)",
            f"constexpr int ROWS = GATES * HIDDEN_SIZE;",
            "#ifndef RNNKIT_MAX_STEPS",
            f"#define RNNKIT_MAX_STEPS {self.max_steps}",
            "#endif",
            "constexpr int MAX_STEPS = RNNKIT_MAX_STEPS;  // array length of sequence()",
            f'constexpr const char* CONFIG_NAME = "{cfg.name}";',
            f'constexpr const char* CONFIG_DIGEST = "{config_digest(cfg)}";  // model.vectors.config_digest',
            "",
            "// Fraction bits of each tensor (formats.<tensor>.frac_bits) and widths.",
        ]
        for t in self.tensors():
            lines.append(f"constexpr int {t.upper()}_FRAC = {f[t].frac_bits};  "
                         f"constexpr int {t.upper()}_WIDTH = {f[t].width};  "
                         f"constexpr bool {t.upper()}_SIGNED = {'true' if f[t].signed else 'false'};")
        lines += [
            "",
            "// Alignment (model.datapath.Datapath): exact left shifts onto the accumulator's fraction.",
            f"constexpr int ACC_FRAC = {dp.acc_frac};   // A = max(Fw+Fx, Fw+Fh, Fb{', Fp+Fc' if self.peep else ''})",
            f"constexpr int ACC_WIDTH = {dp.acc_width};",
            f"constexpr int X_SHIFT = {dp.x_shift};    // A - Fw - Fx",
            f"constexpr int H_SHIFT = {dp.h_shift};    // A - Fw - Fh",
            f"constexpr int B_SHIFT = {dp.b_shift};    // A - Fb",
        ]
        if self.peep:
            lines.append(f"constexpr int P_SHIFT = {dp.p_shift};    // A - Fp - Fc")
        if self.lstm:
            lines += [f"constexpr int CELL_SUM_FRAC = {dp.cell_frac};  // C = max(Fg+Fc, Fg+Fcand)",
                      f"constexpr int FC_SHIFT = {dp.fc_shift};",
                      f"constexpr int IG_SHIFT = {dp.ig_shift};",
                      f"constexpr int OUT_FRAC = {dp.out_frac};  // o * tanh(c): Fg + Fca"]
        else:
            lines += [f"constexpr int OUT_FRAC = {dp.out_frac};  // Q = max(Fg+Fcand, Fg+Fh)",
                      f"constexpr int ZN_SHIFT = {dp.zn_shift};",
                      f"constexpr int ZH_SHIFT = {dp.zh_shift};",
                      f"constexpr wide_t ONE = {1 << f['gate'].frac_bits};  // 1.0 in formats.gate"]
            if cfg.reset == "after":
                lines += [f"constexpr int NH_FRAC = {dp.nh_frac};  // N = max(A, Fg+Fpre)",
                          f"constexpr int NX_SHIFT = {dp.nx_shift};",
                          f"constexpr int RHN_SHIFT = {dp.rhn_shift};"]
        return "\n".join(lines) + "\n"

    def params(self) -> str:
        q = self.q
        out = [f"// Parameters (model.quantize_params), PyTorch layout: gate k owns rows k*H .. (k+1)*H-1.",
               f"static const weight_t W_IH[ROWS][INPUT_SIZE] = {{{_array2(q.w_ih)}}};",
               f"static const weight_t W_HH[ROWS][HIDDEN_SIZE] = {{{_array2(q.w_hh)}}};",
               f"static const bias_t BIAS[ROWS] = {{{_array(q.bias)}}};"]
        if q.bias_hn is not None:
            out.append(f"// b_hn, kept apart: it sits inside r * (W_hn h + b_hn)\n"
                       f"static const bias_t BIAS_HN[HIDDEN_SIZE] = {{{_array(q.bias_hn)}}};")
        if q.w_peep is not None:
            out.append(f"// peephole weights, rows p_i, p_f, p_o\n"
                       f"static const peephole_t W_PEEP[3][HIDDEN_SIZE] = {{{_array2(q.w_peep)}}};")
        return "\n".join(out) + "\n"

    def requant_points(self) -> str:
        cfg = self.cfg
        pts = [("pre", "pre", "gate pre-activations")]
        if self.lstm:
            pts.append(("cell", "cell", "f*c + i*g"))
        pts.append(("hidden", "hidden", "o*tanh(c)" if self.lstm else "(1-z)*n + z*h"))
        if not self.lstm:
            pts.append(("gru_hn", "pre", "W_hn h + b_hn") if cfg.reset == "after"
                       else ("gru_rh", "hidden", "r * h(t-1)"))
        out = []
        for point, tensor, what in pts:
            m = cfg.mode(point)
            T = tensor.upper()
            out.append(
                f"// [{point}] {what} -> formats.{tensor} {cfg.fmt(tensor)}: {m.rounding}, {m.overflow}\n"
                f"template <int FROM_FRAC>\n"
                f"inline wide_t RQ_{point}(wide_t v) {{\n"
                f"    return requantize<FROM_FRAC, {T}_FRAC, {T}_WIDTH, {T}_SIGNED, "
                f"{ROUNDING[m.rounding]}, {OVERFLOW[m.overflow]}>(v);\n}}\n")
        return "\n".join(out)

    def activation(self, name: str, act, in_t: str, out_t: str) -> str:
        hw = act.hw()
        spec = act.spec
        u = name.upper()
        desc = f"{act.fn} {spec.method}" + (f", {spec.size} entries over [-{spec.range:g}, {spec.range:g})"
                                            if spec.method in ("lut", "lut_interp") else "")
        head = (f"// {name}: {desc}; formats.{in_t} {act.in_fmt} -> formats.{out_t} {act.out_fmt}\n"
                f"// (model.activations: a = |x|, p = P(a) clamped to pos_max, mirror for x < 0)\n")
        body = []
        m = spec.method
        if m in ("lut", "lut_interp"):
            tbl = hw["table"]
            head += f"static const {out_t}_t {u}_TABLE[{len(tbl)}] = {{{_array(tbl)}}};\n"
            s, imax = hw["index_shift"], hw["index_max"]
            if m == "lut":
                if s >= 0:
                    body.append(f"    wide_t j = a >> {s};")
                else:
                    body.append(f"    wide_t j = (a < {imax + 1} ? a : wide_t({imax + 1})) * {1 << -s};")
                body.append(f"    if (j > {imax}) j = {imax};")
                body.append(f"    wide_t p = wide_t({u}_TABLE[j]);")
            elif s <= 0:
                body.append(f"    wide_t j = (a < {imax} ? a : wide_t({imax})) * {1 << -s};")
                body.append(f"    if (j > {imax}) j = {imax};")
                body.append(f"    wide_t p = wide_t({u}_TABLE[j]);")
            else:
                body += [f"    wide_t j = a >> {s};",
                         f"    if (j > {imax}) j = {imax};",
                         f"    const wide_t r = a & {(1 << s) - 1};",
                         f"    const wide_t jn = j + 1 > {imax} ? wide_t({imax}) : j + 1;",
                         f"    const wide_t t0 = wide_t({u}_TABLE[j]);",
                         f"    const wide_t t1 = wide_t({u}_TABLE[jn]);",
                         f"    wide_t p = t0;",
                         f"    if (j < {imax}) p = t0 + (((t1 - t0) * r + {hw['round']}) >> {s});"]
        else:
            segs = hw["segments"]
            for k, sg in enumerate(segs):
                if sg["slope"]:
                    ts = sg["term_shift"]
                    term = f"(a >> {ts})" if ts > 0 else (f"(a * {1 << -ts})" if ts < 0 else "a")
                    val = f"{term} + {sg['offset_raw']}"
                else:
                    val = f"{sg['offset_raw']}"
                if k == 0:
                    body.append(f"    wide_t p = {val};")
                else:
                    body.append(f"    if (a >= {sg['lo_raw']}) p = {val};")
        mirror = (f"{hw['one']} - p" if hw["mirror"] == "one_minus" else "-p")
        return (head +
                f"inline {out_t}_t {name}({in_t}_t x_in) {{\n"
                f"    const wide_t x = wide_t(x_in);\n"
                f"    const wide_t a = x < 0 ? -x : x;  // |x|, {hw['abs_bits']} bits unsigned\n"
                + "\n".join(body) + "\n"
                f"    if (p > {hw['pos_max']}) p = {hw['pos_max']};  // pos_max = min(one, out_max)\n"
                f"    return {out_t}_t(x < 0 ? {mirror} : p);\n}}\n")

    def projections(self) -> str:
        return """// Exact dot products (model.golden: W x << sx, W h << sh), each row in int64.
// xproj: (W_ih x << X_SHIFT) + (bias << B_SHIFT) for every row.
inline void xproj(const input_t x[INPUT_SIZE], acc_t out[ROWS]) {
    for (int r = 0; r < ROWS; ++r) {
        wide_t s = 0;
        for (int k = 0; k < INPUT_SIZE; ++k) s += wide_t(W_IH[r][k]) * wide_t(x[k]);
        out[r] = acc_t(shift_left<X_SHIFT>(s) + shift_left<B_SHIFT>(wide_t(BIAS[r])));
    }
}

// hproj: W_hh v << H_SHIFT for the NROWS rows starting at ROW0.
template <int ROW0, int NROWS>
inline void hproj(const hidden_t v[HIDDEN_SIZE], acc_t out[NROWS]) {
    for (int r = 0; r < NROWS; ++r) {
        wide_t s = 0;
        for (int k = 0; k < HIDDEN_SIZE; ++k) s += wide_t(W_HH[ROW0 + r][k]) * wide_t(v[k]);
        out[r] = acc_t(shift_left<H_SHIFT>(s));
    }
}
"""

    def lstm_step(self) -> str:
        cfg = self.cfg
        H = "HIDDEN_SIZE"
        pi = pf = po = ""
        if self.peep:
            pi = " + shift_left<P_SHIFT>(wide_t(W_PEEP[0][u]) * c_prev)"
            pf = " + shift_left<P_SHIFT>(wide_t(W_PEEP[1][u]) * c_prev)"
            if cfg.peephole == "c_prev":
                po = " + shift_left<P_SHIFT>(wide_t(W_PEEP[2][u]) * c_prev)"
            else:
                po = " + shift_left<P_SHIFT>(wide_t(W_PEEP[2][u]) * c_new)"
        c_new_o = cfg.peephole == "c_new"
        lines = [
            "/// One LSTM step: x = x(t); h, c = h(t-1), c(t-1) on entry and h(t), c(t) on return.",
            "/// x: formats.input; h: formats.hidden; c: formats.cell (see the typedefs).",
            f"inline void step(const input_t x[INPUT_SIZE], hidden_t h[{H}], cell_t c[{H}]) {{",
            "    acc_t ax[ROWS];",
            "    acc_t ah[ROWS];",
            "    xproj(x, ax);",
            "    hproj<0, ROWS>(h, ah);  // reads h(t-1) for every row before any h(t) is written",
            f"    for (int u = 0; u < {H}; ++u) {{",
            "        const wide_t c_prev = wide_t(c[u]);",
            f"        const wide_t acc_i = wide_t(ax[0 * {H} + u]) + wide_t(ah[0 * {H} + u]){pi};",
            f"        const wide_t acc_f = wide_t(ax[1 * {H} + u]) + wide_t(ah[1 * {H} + u]){pf};",
            f"        const wide_t acc_g = wide_t(ax[2 * {H} + u]) + wide_t(ah[2 * {H} + u]);",
            f"        const wide_t acc_o0 = wide_t(ax[3 * {H} + u]) + wide_t(ah[3 * {H} + u]);",
            "        const gate_t i = sigmoid(pre_t(RQ_pre<ACC_FRAC>(acc_i)));",
            "        const gate_t f = sigmoid(pre_t(RQ_pre<ACC_FRAC>(acc_f)));",
            "        const candidate_t g = tanh_pre(pre_t(RQ_pre<ACC_FRAC>(acc_g)));",
            "        const wide_t c_new = RQ_cell<CELL_SUM_FRAC>(shift_left<FC_SHIFT>(wide_t(f) * c_prev)",
            "                                                  + shift_left<IG_SHIFT>(wide_t(i) * wide_t(g)));",
            ("        // c_new peephole: o's pre-activation takes p_o * c(t), after c(t) is requantized"
             if c_new_o else "        // o's accumulator is complete before c(t) exists"),
            f"        const wide_t acc_o = acc_o0{po};",
            "        const gate_t o = sigmoid(pre_t(RQ_pre<ACC_FRAC>(acc_o)));",
            "        const cell_act_t tc = tanh_cell(cell_t(c_new));",
            "        const wide_t h_new = RQ_hidden<OUT_FRAC>(wide_t(o) * wide_t(tc));",
            "        c[u] = cell_t(c_new);",
            "        h[u] = hidden_t(h_new);",
            "    }",
            "}",
            "",
            "/// Up to MAX_STEPS steps (fixed bound; steps <= MAX_STEPS of them run).  h, c: state in and",
            "/// out, as for step(); h_seq[t], c_seq[t]: h(t), c(t) of every step run.",
            "inline void sequence(const input_t x[MAX_STEPS][INPUT_SIZE], int steps,",
            f"                     hidden_t h_seq[MAX_STEPS][{H}], cell_t c_seq[MAX_STEPS][{H}],",
            f"                     hidden_t h[{H}], cell_t c[{H}]) {{",
            "    for (int t = 0; t < MAX_STEPS; ++t) {",
            "        if (t < steps) {",
            "            step(x[t], h, c);",
            f"            for (int u = 0; u < {H}; ++u) {{",
            "                h_seq[t][u] = h[u];",
            "                c_seq[t][u] = c[u];",
            "            }",
            "        }",
            "    }",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def gru_step(self) -> str:
        H = "HIDDEN_SIZE"
        after = self.cfg.reset == "after"
        lines = [
            f"/// One GRU step (reset {'after' if after else 'before'} the matrix product): x = x(t);",
            "/// h = h(t-1) on entry and h(t) on return.  x: formats.input; h: formats.hidden.",
            f"inline void step(const input_t x[INPUT_SIZE], hidden_t h[{H}]) {{",
            "    acc_t ax[ROWS];",
            "    xproj(x, ax);",
        ]
        if after:
            lines += [
                "    acc_t ah[ROWS];",
                "    hproj<0, ROWS>(h, ah);  // reads h(t-1) for every row before any h(t) is written",
                f"    for (int u = 0; u < {H}; ++u) {{",
                f"        const gate_t r = sigmoid(pre_t(RQ_pre<ACC_FRAC>(wide_t(ax[0 * {H} + u]) + wide_t(ah[0 * {H} + u]))));",
                f"        const gate_t z = sigmoid(pre_t(RQ_pre<ACC_FRAC>(wide_t(ax[1 * {H} + u]) + wide_t(ah[1 * {H} + u]))));",
                f"        const wide_t acc_nh = wide_t(ah[2 * {H} + u]) + shift_left<B_SHIFT>(wide_t(BIAS_HN[u]));",
                "        const wide_t hn = RQ_gru_hn<ACC_FRAC>(acc_nh);",
                f"        const wide_t xn = wide_t(ax[2 * {H} + u]);  // W_in x + b_in: no h term",
                "        const wide_t acc_n = shift_left<NX_SHIFT>(xn) + shift_left<RHN_SHIFT>(wide_t(r) * hn);",
                "        const candidate_t n = tanh_pre(pre_t(RQ_pre<NH_FRAC>(acc_n)));",
                "        const wide_t h_new = RQ_hidden<OUT_FRAC>(shift_left<ZN_SHIFT>((ONE - wide_t(z)) * wide_t(n))",
                "                                               + shift_left<ZH_SHIFT>(wide_t(z) * wide_t(h[u])));",
                "        h[u] = hidden_t(h_new);",
                "    }",
                "}",
            ]
        else:
            lines += [
                f"    acc_t ah[2 * {H}];",
                f"    hproj<0, 2 * {H}>(h, ah);",
                f"    gate_t z[{H}];",
                f"    hidden_t rh[{H}];",
                f"    for (int u = 0; u < {H}; ++u) {{",
                f"        const gate_t r = sigmoid(pre_t(RQ_pre<ACC_FRAC>(wide_t(ax[0 * {H} + u]) + wide_t(ah[0 * {H} + u]))));",
                f"        z[u] = sigmoid(pre_t(RQ_pre<ACC_FRAC>(wide_t(ax[1 * {H} + u]) + wide_t(ah[1 * {H} + u]))));",
                "        rh[u] = hidden_t(RQ_gru_rh<GATE_FRAC + HIDDEN_FRAC>(wide_t(r) * wide_t(h[u])));",
                "    }",
                f"    acc_t anh[{H}];",
                f"    hproj<2 * {H}, {H}>(rh, anh);  // W_hn (r * h)",
                f"    for (int u = 0; u < {H}; ++u) {{",
                f"        const candidate_t n = tanh_pre(pre_t(RQ_pre<ACC_FRAC>(wide_t(ax[2 * {H} + u]) + wide_t(anh[u]))));",
                "        const wide_t h_new = RQ_hidden<OUT_FRAC>(shift_left<ZN_SHIFT>((ONE - wide_t(z[u])) * wide_t(n))",
                "                                               + shift_left<ZH_SHIFT>(wide_t(z[u]) * wide_t(h[u])));",
                "        h[u] = hidden_t(h_new);",
                "    }",
                "}",
            ]
        lines += [
            "",
            "/// Up to MAX_STEPS steps (fixed bound; steps <= MAX_STEPS of them run).  h: state in and",
            "/// out, as for step(); h_seq[t]: h(t) of every step run.",
            "inline void sequence(const input_t x[MAX_STEPS][INPUT_SIZE], int steps,",
            f"                     hidden_t h_seq[MAX_STEPS][{H}], hidden_t h[{H}]) {{",
            "    for (int t = 0; t < MAX_STEPS; ++t) {",
            "        if (t < steps) {",
            "            step(x[t], h);",
            f"            for (int u = 0; u < {H}; ++u) h_seq[t][u] = h[u];",
            "        }",
            "    }",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def top_signatures(self) -> tuple[str, str]:
        ns, p = self.ns, f"rnnkit_{self.id}"
        if self.lstm:
            step = (f"void {p}_step(const {ns}::input_t x[{ns}::INPUT_SIZE], {ns}::hidden_t h[{ns}::HIDDEN_SIZE], "
                    f"{ns}::cell_t c[{ns}::HIDDEN_SIZE])")
            seq = (f"void {p}_sequence(const {ns}::input_t x[{ns}::MAX_STEPS][{ns}::INPUT_SIZE], int steps,\n"
                   f"    {ns}::hidden_t h_seq[{ns}::MAX_STEPS][{ns}::HIDDEN_SIZE], "
                   f"{ns}::cell_t c_seq[{ns}::MAX_STEPS][{ns}::HIDDEN_SIZE],\n"
                   f"    {ns}::hidden_t h[{ns}::HIDDEN_SIZE], {ns}::cell_t c[{ns}::HIDDEN_SIZE])")
        else:
            step = f"void {p}_step(const {ns}::input_t x[{ns}::INPUT_SIZE], {ns}::hidden_t h[{ns}::HIDDEN_SIZE])"
            seq = (f"void {p}_sequence(const {ns}::input_t x[{ns}::MAX_STEPS][{ns}::INPUT_SIZE], int steps,\n"
                   f"    {ns}::hidden_t h_seq[{ns}::MAX_STEPS][{ns}::HIDDEN_SIZE], "
                   f"{ns}::hidden_t h[{ns}::HIDDEN_SIZE])")
        return step, seq

    # ---- files -------------------------------------------------------------------------------------
    def header(self) -> str:
        cfg, dp = self.cfg, self.dp
        guard = f"RNNKIT_{self.id.upper()}_H"
        step_sig, seq_sig = self.top_signatures()
        modes = ", ".join(f"{p} {cfg.mode(p).rounding}/{cfg.mode(p).overflow}" for p in self.points())
        acts = "\n".join(self.activation(*a) for a in self.acts)
        return f"""// {cfg.name}: {cfg.variant}, input {cfg.input_size}, hidden {cfg.hidden_size}.
// Bit-exact C++ reference of model.golden for this config, generated by `python -m model.hls`;
// regenerate rather than edit.  Requantization modes: {modes}.
// Integer arithmetic only: products and sums exact in int64 (the accumulator needs {dp.acc_width} bits),
// precision dropped only in the RQ_<point> functions.  Right shifts of negative values must be
// arithmetic (implementation-defined before C++20; arithmetic in g++ and clang).
#ifndef {guard}
#define {guard}

#include <cstdint>
#ifdef RNNKIT_AP_INT
#include <ap_int.h>
#endif

namespace {self.ns} {{

typedef int64_t wide_t;  // every intermediate; the datapath keeps them within 62 bits

{self.typedefs()}
{self.constants()}
// ---- rounding and overflow (model.fixedpoint) -------------------------------------------------

enum Rounding {{ TRUNCATE = 0, HALF_UP = 1, HALF_EVEN = 2 }};
enum Overflow {{ SATURATE = 0, WRAP = 1 }};

/// x * 2^S, exact (a multiplication, so negative x is well defined).
template <int S>
inline wide_t shift_left(wide_t x) {{
    return x * (wide_t(1) << S);
}}

/// x * 2^-SHIFT rounded to an integer; SHIFT <= 0 is an exact left shift (fixedpoint.shift_round).
template <int SHIFT, Rounding R>
inline wide_t shift_round(wide_t x) {{
    const int L = SHIFT < 0 ? -SHIFT : 0;
    const int S = SHIFT > 0 ? SHIFT : 1;
    if (SHIFT <= 0) return shift_left<L>(x);
    const wide_t half = wide_t(1) << (S - 1);
    if (R == TRUNCATE) return x >> S;                     // floor
    if (R == HALF_UP) return (x + half) >> S;             // floor(v + 1/2)
    const wide_t q = x >> S;                              // HALF_EVEN: ties to the even neighbour
    const wide_t rem = x & ((wide_t(1) << S) - 1);
    return q + ((rem > half || (rem == half && (q & 1) != 0)) ? 1 : 0);
}}

/// Bring x into a W-bit format: clamp (SATURATE) or keep the low W bits (WRAP) (fixedpoint.overflow).
template <int W, bool SIGNED, Overflow O>
inline wide_t overflow(wide_t x) {{
    const wide_t lo = SIGNED ? -(wide_t(1) << (W - 1)) : wide_t(0);
    const wide_t hi = SIGNED ? (wide_t(1) << (W - 1)) - 1 : (wide_t(1) << W) - 1;
    if (O == SATURATE) return x < lo ? lo : (x > hi ? hi : x);
    const wide_t m = wide_t(1) << W;
    wide_t y = x & (m - 1);
    if (SIGNED && y > hi) y -= m;
    return y;
}}

/// Integers with FROM_FRAC fraction bits -> a (W, F, SIGNED) format: round first, then overflow.
template <int FROM_FRAC, int F, int W, bool SIGNED, Rounding R, Overflow O>
inline wide_t requantize(wide_t raw) {{
    return overflow<W, SIGNED, O>(shift_round<FROM_FRAC - F, R>(raw));
}}

// ---- requantization points (README, Numerics contract) ----------------------------------------

{self.requant_points()}
// ---- activations (model.activations, integer definitions) -------------------------------------

{acts}
// ---- parameters -------------------------------------------------------------------------------

{self.params()}
{self.projections()}
// ---- the cell ---------------------------------------------------------------------------------

{self.lstm_step() if self.lstm else self.gru_step()}
}}  // namespace {self.ns}

// HLS top functions (defined in {cfg.name}_top.cpp): one step, and a whole sequence.
{step_sig};
{seq_sig};

#endif  // {guard}
"""

    def points(self) -> list[str]:
        if self.lstm:
            return ["pre", "cell", "hidden"]
        return ["pre", "gru_hn" if self.cfg.reset == "after" else "gru_rh", "hidden"]

    def top(self) -> str:
        step_sig, seq_sig = self.top_signatures()
        ns = self.ns
        if self.lstm:
            sbody, qbody = f"{ns}::step(x, h, c);", f"{ns}::sequence(x, steps, h_seq, c_seq, h, c);"
        else:
            sbody, qbody = f"{ns}::step(x, h);", f"{ns}::sequence(x, steps, h_seq, h);"
        return f"""// HLS top functions for {self.cfg.name} ({self.cfg.variant}); generated by `python -m model.hls`.
// Set one of them as the top function in the HLS tool.  Formats of the arguments:
//   x: {self.fmt_comment('input')}
//   h: {self.fmt_comment('hidden')}
""" + (f"//   c: {self.fmt_comment('cell')}\n" if self.lstm else "") + f"""#include "{self.cfg.name}.h"

// One step: x(t) in; state (h{', c' if self.lstm else ''}) = state(t-1) in, state(t) out.
{step_sig} {{
    {sbody}
}}

// A sequence: x[0 .. steps-1] (steps <= MAX_STEPS = {self.max_steps} unless RNNKIT_MAX_STEPS is set);
// state in and out as for the step; h_seq{'/c_seq' if self.lstm else ''} receive every step's state.
{seq_sig} {{
    {qbody}
}}
"""

    def testbench(self) -> str:
        ns, p, lstm = self.ns, f"rnnkit_{self.id}", self.lstm
        weights = [("w_ih", "W_IH", "cell::ROWS * cell::INPUT_SIZE", "WEIGHT", "&cell::W_IH[0][0]"),
                   ("w_hh", "W_HH", "cell::ROWS * cell::HIDDEN_SIZE", "WEIGHT", "&cell::W_HH[0][0]"),
                   ("bias", "BIAS", "cell::ROWS", "BIAS", "cell::BIAS")]
        if self.q.bias_hn is not None:
            weights.append(("bias_hn", "BIAS_HN", "cell::HIDDEN_SIZE", "BIAS", "cell::BIAS_HN"))
        if self.q.w_peep is not None:
            weights.append(("w_peep", "W_PEEP", "3 * cell::HIDDEN_SIZE", "PEEPHOLE", "&cell::W_PEEP[0][0]"))
        wchecks = "\n".join(
            f'    ok = check_params(dir, "{f}", {c}, cell::{t}_WIDTH, cell::{t}_SIGNED, {ptr}) && ok;'
            for f, _, c, t, ptr in weights)
        c_decl = "static cell::cell_t c_seq[cell::MAX_STEPS][cell::HIDDEN_SIZE];\n" if lstm else ""
        zero = ("h[u] = 0; c[u] = 0; " if lstm else "h[u] = 0; ")
        state_decl = ("cell::hidden_t h[cell::HIDDEN_SIZE];\n        cell::cell_t c[cell::HIDDEN_SIZE];\n" if lstm
                      else "cell::hidden_t h[cell::HIDDEN_SIZE];\n")
        state_decl += f"        for (int u = 0; u < cell::HIDDEN_SIZE; ++u) {{ {zero}}}  // zero state (ap_int has no zero default)"
        step_call = f"{p}_step(x, h, c);" if lstm else f"{p}_step(x, h);"
        seq_call = (f"{p}_sequence(xs, n, h_seq, c_seq, h, c);" if lstm else f"{p}_sequence(xs, n, h_seq, h);")
        c_read = ('    std::vector<long long> c_exp;\n'
                  '    if (!read_hex(dir + "/c.hex", cell::CELL_WIDTH, cell::CELL_SIGNED, '
                  'size_t(seqs * steps * cell::HIDDEN_SIZE), c_exp)) return 2;\n') if lstm else ""
        c_cmp_step = ('                sb.check("c", "step", s, t, u, c_exp[k], c[u]);\n') if lstm else ""
        c_cmp_seq = ('                    sb.check("c", "sequence", s, t0 + t, u, c_exp[k], c_seq[t][u]);\n'
                     if lstm else "")
        return f"""// Testbench for {self.cfg.name}: runs both top functions over a vector set written by
// `make vectors` / `python -m model.vectors` and checks every element of every step.
// Usage: {self.cfg.name}_tb <vector-dir>.  Exit status: 0 all match, 1 mismatches, 2 unusable input.
#include "{self.cfg.name}.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cell = {ns};

static bool read_text(const std::string& path, std::string& out) {{
    std::ifstream f(path.c_str());
    if (!f) {{
        std::fprintf(stderr, "error: cannot open %s\\n", path.c_str());
        return false;
    }}
    std::stringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}}

// The value of a top-level "key": <int> or "key": "<string>" in the manifest (model.vectors writes them once).
static bool manifest_value(const std::string& m, const std::string& key, std::string& out) {{
    const std::string pat = "\\"" + key + "\\": ";
    const size_t at = m.find(pat);
    if (at == std::string::npos) return false;
    size_t b = at + pat.size(), e = b;
    if (m[b] == '"') {{
        e = m.find('"', b + 1);
        if (e == std::string::npos) return false;
        out = m.substr(b + 1, e - b - 1);
        return true;
    }}
    while (e < m.size() && (m[e] == '-' || (m[e] >= '0' && m[e] <= '9'))) ++e;
    out = m.substr(b, e - b);
    return !out.empty();
}}

// One value per line, two's complement hex in `width` bits (the $readmemh files of model.vectors).
static bool read_hex(const std::string& path, int width, bool is_signed, size_t count, std::vector<long long>& out) {{
    std::string text;
    if (!read_text(path, text)) return false;
    std::istringstream in(text);
    std::string line;
    size_t n = 0;
    out.clear();
    while (std::getline(in, line)) {{
        ++n;
        const size_t cmt = line.find("//");
        if (cmt != std::string::npos) line = line.substr(0, cmt);
        const size_t b = line.find_first_not_of(" \\t\\r");
        if (b == std::string::npos) continue;
        const size_t e = line.find_last_not_of(" \\t\\r");
        const std::string tok = line.substr(b, e - b + 1);
        char* end = nullptr;
        const unsigned long long u = std::strtoull(tok.c_str(), &end, 16);
        if (*end != '\\0' || (width < 64 && (u >> width) != 0)) {{
            std::fprintf(stderr, "error: %s line %zu: '%s' is not a %d-bit hex value\\n", path.c_str(), n,
                         tok.c_str(), width);
            return false;
        }}
        long long v = (long long)u;
        if (is_signed && width < 64 && ((u >> (width - 1)) & 1)) v -= (long long)(1ULL << width);
        out.push_back(v);
    }}
    if (out.size() != count) {{
        std::fprintf(stderr, "error: %s holds %zu values, expected %zu\\n", path.c_str(), out.size(), count);
        return false;
    }}
    return true;
}}

// The parameter file must equal the parameters compiled into the header.
template <typename T>
static bool check_params(const std::string& dir, const char* name, int count, int width, bool is_signed,
                         const T* compiled) {{
    std::vector<long long> v;
    if (!read_hex(dir + "/" + name + ".hex", width, is_signed, size_t(count), v)) return false;
    for (int k = 0; k < count; ++k) {{
        if (v[k] != (long long)compiled[k]) {{
            std::fprintf(stderr, "error: %s.hex entry %d is %lld but the header holds %lld: the vectors were "
                         "written with other parameters than this header was generated from\\n",
                         name, k, v[k], (long long)compiled[k]);
            return false;
        }}
    }}
    return true;
}}

struct Scoreboard {{
    long long compared = 0, mismatches = 0;
    template <typename T>
    void check(const char* tensor, const char* top, int s, int t, int u, long long want, const T& got_v) {{
        const long long got = (long long)got_v;
        ++compared;
        if (got == want) return;
        if (++mismatches <= 10)
            std::printf("MISMATCH %s (%s top): sequence %d, step %d, element %d: expected %lld, got %lld\\n",
                        tensor, top, s, t, u, want, got);
    }}
}};

static cell::input_t xs[cell::MAX_STEPS][cell::INPUT_SIZE];
static cell::hidden_t h_seq[cell::MAX_STEPS][cell::HIDDEN_SIZE];
{c_decl}
int main(int argc, char** argv) {{
    if (argc != 2) {{
        std::fprintf(stderr, "usage: %s <vector-dir>  (written by make vectors CONFIG=...)\\n", argv[0]);
        return 2;
    }}
    const std::string dir = argv[1];
    std::string m, digest, sv, tv;
    if (!read_text(dir + "/manifest.json", m)) return 2;
    if (!manifest_value(m, "config_digest", digest) || !manifest_value(m, "seqs", sv) ||
        !manifest_value(m, "steps", tv)) {{
        std::fprintf(stderr, "error: %s/manifest.json lacks config_digest, seqs or steps\\n", dir.c_str());
        return 2;
    }}
    if (digest != cell::CONFIG_DIGEST) {{
        std::fprintf(stderr, "error: the vectors in %s were written for another config than %s "
                     "(config_digest differs)\\n", dir.c_str(), cell::CONFIG_NAME);
        return 2;
    }}
    const int seqs = std::atoi(sv.c_str()), steps = std::atoi(tv.c_str());
    bool ok = true;
{wchecks}
    if (!ok) return 2;
    std::vector<long long> x_in, h_exp;
    if (!read_hex(dir + "/x.hex", cell::INPUT_WIDTH, cell::INPUT_SIGNED,
                  size_t(seqs * steps * cell::INPUT_SIZE), x_in)) return 2;
    if (!read_hex(dir + "/h.hex", cell::HIDDEN_WIDTH, cell::HIDDEN_SIGNED,
                  size_t(seqs * steps * cell::HIDDEN_SIZE), h_exp)) return 2;
{c_read}
    Scoreboard sb;
    // 1. the step top function, one call per step
    for (int s = 0; s < seqs; ++s) {{
        {state_decl}
        for (int t = 0; t < steps; ++t) {{
            cell::input_t x[cell::INPUT_SIZE];
            for (int e = 0; e < cell::INPUT_SIZE; ++e)
                x[e] = cell::input_t(x_in[size_t((s * steps + t) * cell::INPUT_SIZE + e)]);
            {step_call}
            for (int u = 0; u < cell::HIDDEN_SIZE; ++u) {{
                const size_t k = size_t((s * steps + t) * cell::HIDDEN_SIZE + u);
                sb.check("h", "step", s, t, u, h_exp[k], h[u]);
{c_cmp_step}            }}
        }}
    }}
    // 2. the sequence top function, in chunks of at most MAX_STEPS steps, state carried between them
    for (int s = 0; s < seqs; ++s) {{
        {state_decl}
        for (int t0 = 0; t0 < steps; t0 += cell::MAX_STEPS) {{
            const int n = steps - t0 < cell::MAX_STEPS ? steps - t0 : cell::MAX_STEPS;
            for (int t = 0; t < n; ++t)
                for (int e = 0; e < cell::INPUT_SIZE; ++e)
                    xs[t][e] = cell::input_t(x_in[size_t((s * steps + t0 + t) * cell::INPUT_SIZE + e)]);
            {seq_call}
            for (int t = 0; t < n; ++t) {{
                for (int u = 0; u < cell::HIDDEN_SIZE; ++u) {{
                    const size_t k = size_t((s * steps + t0 + t) * cell::HIDDEN_SIZE + u);
                    sb.check("h", "sequence", s, t0 + t, u, h_exp[k], h_seq[t][u]);
{c_cmp_seq}                }}
            }}
        }}
    }}
    std::printf("%s: %d sequences x %d steps, %lld elements compared, %lld mismatches\\n", cell::CONFIG_NAME,
                seqs, steps, sb.compared, sb.mismatches);
    std::printf("%lld passed, %lld failed\\n", sb.compared - sb.mismatches, sb.mismatches);
    return sb.mismatches ? 1 : 0;
}}
"""

    def makefile(self) -> str:
        n = self.cfg.name
        return f"""# Build and run the C++ testbench of {n} (generated by `python -m model.hls`).
CXX      ?= g++
CXXFLAGS ?= {" ".join(CXXFLAGS)}
VECTORS  ?= ../vectors
# folder with Xilinx's ap_int.h, for the ap_int<W> build (tb-ap, check-ap)
AP_TYPES ?=

.PHONY: tb check tb-ap check-ap clean
tb: {n}_tb

{n}_tb: {n}_tb.cpp {n}_top.cpp {n}.h
\t$(CXX) $(CXXFLAGS) -o $@ {n}_tb.cpp {n}_top.cpp

check: {n}_tb
\t./{n}_tb $(VECTORS)

tb-ap: {n}_tb_ap

{n}_tb_ap: {n}_tb.cpp {n}_top.cpp {n}.h
\t@test -f "$(AP_TYPES)/ap_int.h" || (echo "set AP_TYPES to a folder holding ap_int.h" && false)
\t$(CXX) $(CXXFLAGS) {" ".join(AP_CXXFLAGS)} -isystem $(AP_TYPES) -o $@ {n}_tb.cpp {n}_top.cpp

check-ap: {n}_tb_ap
\t./{n}_tb_ap $(VECTORS)

clean:
\trm -f {n}_tb {n}_tb_ap
"""


def generate(cfg: Config, q: QParams, out_dir, max_steps: int = DEFAULT_MAX_STEPS) -> dict:
    """Write the header, top, testbench and Makefile for ``cfg`` with parameters ``q`` into ``out_dir``.

    Returns ``{"header", "top", "tb", "makefile"}`` paths.  Files are rewritten only when their text changed.
    """
    g = _Gen(cfg, q, max_steps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = cfg.name
    files = {"header": (out / f"{n}.h", g.header()), "top": (out / f"{n}_top.cpp", g.top()),
             "tb": (out / f"{n}_tb.cpp", g.testbench()), "makefile": (out / "Makefile", g.makefile())}
    for path, text in files.values():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return {k: p for k, (p, _) in files.items()}


#: Flags of the warning-free build the tests require.
CXXFLAGS = ("-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror")
#: Extra flags for the ``ap_int`` build.  Xilinx's headers read an uninitialized member in
#: ``ap_private``'s default constructor, which g++ reports as (maybe-)uninitialized use.
AP_CXXFLAGS = ("-DRNNKIT_AP_INT", "-Wno-uninitialized", "-Wno-maybe-uninitialized")
GXX_INSTALL_HINT = "apt-get install -y g++ (Debian/Ubuntu, as root; `make hls` and `make test` do this when they can)"


def find_cxx(cxx: str | None = None) -> str:
    """The C++ compiler to use (``cxx``, else ``$CXX``, else ``g++``); raises HlsError naming how to get it."""
    name = cxx or os.environ.get("CXX") or "g++"
    path = shutil.which(name)
    if path is None:
        raise HlsError(f"C++ compiler {name!r} not found on PATH: {GXX_INSTALL_HINT}, or set CXX")
    return path


def ap_types_include() -> Path | None:
    """A folder holding Xilinx's ``ap_int.h``: ``$RNNKIT_AP_TYPES``, else the copy the ``hls4ml``
    package ships (found without importing it), else None."""
    env = os.environ.get("RNNKIT_AP_TYPES")
    if env:
        return Path(env) if (Path(env) / "ap_int.h").is_file() else None
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    return d if (d / "ap_int.h").is_file() else None


def compile_tb(paths: dict, exe=None, cxx: str | None = None, extra_flags=(), ap_include=None) -> Path:
    """Compile the generated testbench and top functions with ``CXXFLAGS`` (warnings are errors).

    ``ap_include``: a folder with ``ap_int.h``; the tensor types are then ``ap_int<W>`` (``AP_CXXFLAGS``).
    """
    exe = Path(exe) if exe is not None else paths["tb"].with_suffix("")
    ap = (*AP_CXXFLAGS, "-isystem", str(ap_include)) if ap_include is not None else ()
    cmd = [find_cxx(cxx), *CXXFLAGS, *ap, *extra_flags, "-o", str(exe), str(paths["tb"]), str(paths["top"])]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise HlsError(f"compiling the C++ testbench failed ({' '.join(cmd)}):\n{r.stdout}{r.stderr}")
    return exe


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.hls", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="config TOML (make: CONFIG)")
    ap.add_argument("--out", default="build", help="output root; files go to <out>/<config-name>/hls/")
    ap.add_argument("--param-seed", type=nonneg_int("--param-seed", "PARAM_SEED"), default=1,
                    help="seed of the random parameters (default 1, as make sim and make vectors)")
    ap.add_argument("--params", default=None, help="CellParams .npz file instead of random parameters")
    ap.add_argument("--compile", action="store_true",
                    help="also build the testbench with g++ (" + " ".join(CXXFLAGS) + ")")
    ap.add_argument("--max-steps", type=positive_int("--max-steps", "MAX_STEPS"), default=DEFAULT_MAX_STEPS,
                    help=f"array length of the sequence top function (default {DEFAULT_MAX_STEPS})")
    a = ap.parse_args(argv)
    try:
        cfg = load_config_arg(a.config)
        q, _ = params_for(cfg, a.params, a.param_seed)
        out = Path(a.out) / cfg.name / "hls"
        paths = generate(cfg, q, out, a.max_steps)
        exe = compile_tb(paths) if a.compile else None
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{cfg.name} ({cfg.variant}): C++ reference in {out}/")
    for p in paths.values():
        print(f"  {p.name}")
    if exe is not None:
        print(f"  {exe.name} (built: g++ {' '.join(CXXFLAGS)})")
    print(f"  test: make -C {out} check VECTORS={(Path(a.out) / cfg.name / 'vectors').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
