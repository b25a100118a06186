"""HLS-ready, bit-exact C++ reference of the configured cell, generated from ``model/``.

``python -m hls.cpp --config configs/tiny.toml --out build`` writes
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
  :mod:`hls.vectors` and checks every element of every state tensor (h(t), and c(t) for
  the LSTM kinds) of every step,
  through both top functions; exit status 0 only when all match.
- ``Makefile``: ``make tb`` and ``make check VECTORS=<dir>`` with ``g++``.

Types are ``<cstdint>`` integers of the smallest standard width holding each
format; defining ``RNNKIT_AP_INT`` switches the tensor types to ``ap_int<W>`` /
``ap_uint<W>`` of the exact width (``<ap_int.h>`` from the HLS tool).  All
arithmetic runs on ``wide_t`` (``int64_t``); the datapath record guarantees every
intermediate fits 62 bits.  No pragmas are emitted.

Everything here is shared by the cell kinds; each kind's alignment constants
and ``step`` body come from its emitter in :mod:`hls.kinds`.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from model.activations import make_activation
from model.cli import Parser, config_file, nonneg_int, positive_int
from model.config import TENSORS, Config, ConfigError, output_dir
from model.datapath import Datapath
from model.network.config import is_network_file
from model.params import QParams

from .cli import params_for
from .kinds import emitter
from .vectors import config_digest

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


#: C++ helpers of the generated testbenches: reading the manifest and the ``$readmemh`` files.
TB_READERS = r"""static bool read_text(const std::string& path, std::string& out) {
    std::ifstream f(path.c_str());
    if (!f) {
        std::fprintf(stderr, "error: cannot open %s\n", path.c_str());
        return false;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    out = ss.str();
    return true;
}

// The value of a top-level "key": <int> or "key": "<string>" in the manifest (hls.vectors writes them once).
static bool manifest_value(const std::string& m, const std::string& key, std::string& out) {
    const std::string pat = "\"" + key + "\": ";
    const size_t at = m.find(pat);
    if (at == std::string::npos) return false;
    size_t b = at + pat.size(), e = b;
    if (m[b] == '"') {
        e = m.find('"', b + 1);
        if (e == std::string::npos) return false;
        out = m.substr(b + 1, e - b - 1);
        return true;
    }
    while (e < m.size() && (m[e] == '-' || (m[e] >= '0' && m[e] <= '9'))) ++e;
    out = m.substr(b, e - b);
    return !out.empty();
}

// One value per line, two's complement hex in `width` bits (the $readmemh files of hls.vectors).
static bool read_hex(const std::string& path, int width, bool is_signed, size_t count, std::vector<long long>& out) {
    std::string text;
    if (!read_text(path, text)) return false;
    std::istringstream in(text);
    std::string line;
    size_t n = 0;
    out.clear();
    while (std::getline(in, line)) {
        ++n;
        const size_t cmt = line.find("//");
        if (cmt != std::string::npos) line = line.substr(0, cmt);
        const size_t b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos) continue;
        const size_t e = line.find_last_not_of(" \t\r");
        const std::string tok = line.substr(b, e - b + 1);
        char* end = nullptr;
        const unsigned long long u = std::strtoull(tok.c_str(), &end, 16);
        if (*end != '\0' || (width < 64 && (u >> width) != 0)) {
            std::fprintf(stderr, "error: %s line %zu: '%s' is not a %d-bit hex value\n", path.c_str(), n,
                         tok.c_str(), width);
            return false;
        }
        long long v = (long long)u;
        if (is_signed && width < 64 && ((u >> (width - 1)) & 1)) v -= (long long)(1ULL << width);
        out.push_back(v);
    }
    if (out.size() != count) {
        std::fprintf(stderr, "error: %s holds %zu values, expected %zu\n", path.c_str(), out.size(), count);
        return false;
    }
    return true;
}
"""

#: C++ tally of the generated testbenches: counts comparisons and prints the first mismatches.
TB_SCOREBOARD = r"""struct Scoreboard {
    long long compared = 0, mismatches = 0;
    template <typename T>
    void check(const char* tensor, const char* top, int s, int t, int u, long long want, const T& got_v) {
        const long long got = (long long)got_v;
        ++compared;
        if (got == want) return;
        if (++mismatches <= 10)
            std::printf("MISMATCH %s (%s top): sequence %d, step %d, element %d: expected %lld, got %lld\n",
                        tensor, top, s, t, u, want, got);
    }
};
"""


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
        self.kind = cfg.cell
        self.emit = emitter(self.kind)
        f = cfg.formats
        self.acts = [(attr, make_activation(fn, getattr(cfg, fn), f[fin], f[fout]), fin, fout)
                     for attr, fn, fin, fout in self.kind.activations()]
        #: state arrays (name, tensor) in step() argument order; h first
        self.state = self.kind.state

    # ---- pieces ------------------------------------------------------------------------------------
    def tensors(self) -> list[str]:
        need = set(self.kind.tensors())
        return [t for t in TENSORS if t in need]

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
            f"constexpr int GATES = {cfg.gates};  // {', '.join(self.kind.gates)} (row order)",
            "constexpr int ROWS = GATES * HIDDEN_SIZE;",
            "#ifndef RNNKIT_MAX_STEPS",
            f"#define RNNKIT_MAX_STEPS {self.max_steps}",
            "#endif",
            "constexpr int MAX_STEPS = RNNKIT_MAX_STEPS;  // array length of sequence()",
            f'constexpr const char* CONFIG_NAME = "{cfg.name}";',
            f'constexpr const char* CONFIG_DIGEST = "{config_digest(cfg)}";  // hls.vectors.config_digest',
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
            f"constexpr int ACC_FRAC = {dp.acc_frac};   // A = max(Fw+Fx, Fw+Fh, Fb{', Fp+Fc' if self.kind.peep_rows else ''})",
            f"constexpr int ACC_WIDTH = {dp.acc_width};",
            f"constexpr int X_SHIFT = {dp.x_shift};    // A - Fw - Fx",
            f"constexpr int H_SHIFT = {dp.h_shift};    // A - Fw - Fh",
            f"constexpr int B_SHIFT = {dp.b_shift};    // A - Fb",
        ]
        lines += self.emit.constants(cfg, dp)
        return "\n".join(lines) + "\n"

    def params(self) -> str:
        q = self.q
        out = ["// Parameters (model.quantize_params), PyTorch layout: gate k owns rows k*H .. (k+1)*H-1.",
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
        pts = [(point, tensor, what) for point, (tensor, what) in self.kind.requant_points.items()]
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
                         "    wide_t p = t0;",
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

    def state_params(self, prefix: str = "") -> str:
        """``hidden_t h[HIDDEN_SIZE], cell_t c[HIDDEN_SIZE]`` (the kind's state arrays)."""
        return ", ".join(f"{prefix}{t}_t {n}[{prefix}HIDDEN_SIZE]" for n, t in self.state)

    def seq_params(self, prefix: str = "") -> str:
        """``hidden_t h_seq[MAX_STEPS][HIDDEN_SIZE], ...`` (every step's state)."""
        return ", ".join(f"{prefix}{t}_t {n}_seq[{prefix}MAX_STEPS][{prefix}HIDDEN_SIZE]" for n, t in self.state)

    def names(self, suffix: str = "") -> str:
        return ", ".join(n + suffix for n, _ in self.state)

    def cell_step(self) -> str:
        """The kind's ``step`` and the shared ``sequence`` around it."""
        H = "HIDDEN_SIZE"
        names = "/".join(n for n, _ in self.state)
        copies = [f"                {n}_seq[t][u] = {n}[u];" for n, _ in self.state]
        lines = self.emit.step(self.cfg) + [
            "",
            "/// Up to MAX_STEPS steps (fixed bound; steps <= MAX_STEPS of them run).  "
            f"{names}: state in and",
            f"/// out, as for step(); {'/'.join(n + '_seq[t]' for n, _ in self.state)}: the state after every step run.",
            "inline void sequence(const input_t x[MAX_STEPS][INPUT_SIZE], int steps,",
            f"                     {self.seq_params()},",
            f"                     {self.state_params()}) {{",
            "    for (int t = 0; t < MAX_STEPS; ++t) {",
            "        if (t < steps) {",
            f"            step(x[t], {self.names()});",
            f"            for (int u = 0; u < {H}; ++u) {{",
            *copies,
            "            }",
            "        }",
            "    }",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def top_signatures(self) -> tuple[str, str]:
        ns, p = self.ns, f"rnnkit_{self.id}"
        step = f"void {p}_step(const {ns}::input_t x[{ns}::INPUT_SIZE], {self.state_params(ns + '::')})"
        seq = (f"void {p}_sequence(const {ns}::input_t x[{ns}::MAX_STEPS][{ns}::INPUT_SIZE], int steps,\n"
               f"    {self.seq_params(ns + '::')},\n"
               f"    {self.state_params(ns + '::')})")
        return step, seq

    # ---- files -------------------------------------------------------------------------------------
    def header(self) -> str:
        cfg, dp = self.cfg, self.dp
        guard = f"RNNKIT_{self.id.upper()}_H"
        step_sig, seq_sig = self.top_signatures()
        modes = ", ".join(f"{p} {cfg.mode(p).rounding}/{cfg.mode(p).overflow}" for p in self.points())
        acts = "\n".join(self.activation(*a) for a in self.acts)
        return f"""// {cfg.name}: {cfg.variant}, input {cfg.input_size}, hidden {cfg.hidden_size}.
// Bit-exact C++ reference of model.golden for this config, generated by `python -m hls.cpp`;
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

{self.cell_step()}
}}  // namespace {self.ns}

// HLS top functions (defined in {cfg.name}_top.cpp): one step, and a whole sequence.
{step_sig};
{seq_sig};

#endif  // {guard}
"""

    def points(self) -> list[str]:
        return list(self.kind.points)

    def top(self) -> str:
        step_sig, seq_sig = self.top_signatures()
        ns = self.ns
        sbody = f"{ns}::step(x, {self.names()});"
        qbody = f"{ns}::sequence(x, steps, {self.names('_seq')}, {self.names()});"
        return f"""// HLS top functions for {self.cfg.name} ({self.cfg.variant}); generated by `python -m hls.cpp`.
// Set one of them as the top function in the HLS tool.  Formats of the arguments:
//   x: {self.fmt_comment('input')}
//   h: {self.fmt_comment('hidden')}
""" + "".join(f"//   {n}: {self.fmt_comment(t)}\n" for n, t in self.state[1:]) + f"""#include "{self.cfg.name}.h"

// One step: x(t) in; state ({self.names()}) = state(t-1) in, state(t) out.
{step_sig} {{
    {sbody}
}}

// A sequence: x[0 .. steps-1] (steps <= MAX_STEPS = {self.max_steps} unless RNNKIT_MAX_STEPS is set);
// state in and out as for the step; {'/'.join(n + '_seq' for n, _ in self.state)} receive every step's state.
{seq_sig} {{
    {qbody}
}}
"""

    def testbench(self) -> str:
        ns, p = self.ns, f"rnnkit_{self.id}"
        extra = self.state[1:]  # state tensors beyond h, each checked like h
        weights = [("w_ih", "W_IH", "cell::ROWS * cell::INPUT_SIZE", "WEIGHT", "&cell::W_IH[0][0]"),
                   ("w_hh", "W_HH", "cell::ROWS * cell::HIDDEN_SIZE", "WEIGHT", "&cell::W_HH[0][0]"),
                   ("bias", "BIAS", "cell::ROWS", "BIAS", "cell::BIAS")]
        if self.q.bias_hn is not None:
            weights.append(("bias_hn", "BIAS_HN", "cell::HIDDEN_SIZE", "BIAS", "cell::BIAS_HN"))
        if self.q.w_peep is not None:
            weights.append(("w_peep", "W_PEEP", f"{self.q.w_peep.shape[0]} * cell::HIDDEN_SIZE", "PEEPHOLE",
                            "&cell::W_PEEP[0][0]"))
        wchecks = "\n".join(
            f'    ok = check_params(dir, "{f}", {c}, cell::{t}_WIDTH, cell::{t}_SIGNED, {ptr}) && ok;'
            for f, _, c, t, ptr in weights)
        c_decl = "".join(f"static cell::{t}_t {n}_seq[cell::MAX_STEPS][cell::HIDDEN_SIZE];\n" for n, t in extra)
        zero = "".join(f"{n}[u] = 0; " for n, _ in self.state)
        state_decl = "".join(f"cell::{t}_t {n}[cell::HIDDEN_SIZE];\n        " for n, t in self.state)
        state_decl += f"for (int u = 0; u < cell::HIDDEN_SIZE; ++u) {{ {zero}}}  // zero state (ap_int has no zero default)"
        step_call = f"{p}_step(x, {self.names()});"
        seq_call = f"{p}_sequence(xs, n, {self.names('_seq')}, {self.names()});"
        c_read = "".join(f'    std::vector<long long> {n}_exp;\n'
                         f'    if (!read_hex(dir + "/{n}.hex", cell::{t.upper()}_WIDTH, cell::{t.upper()}_SIGNED, '
                         f'size_t(seqs * steps * cell::HIDDEN_SIZE), {n}_exp)) return 2;\n' for n, t in extra)
        c_cmp_step = "".join(f'                sb.check("{n}", "step", s, t, u, {n}_exp[k], {n}[u]);\n'
                             for n, _ in extra)
        c_cmp_seq = "".join(f'                    sb.check("{n}", "sequence", s, t0 + t, u, {n}_exp[k], '
                            f'{n}_seq[t][u]);\n' for n, _ in extra)
        return f"""// Testbench for {self.cfg.name}: runs both top functions over a vector set written by
// `make vectors` / `python -m hls.vectors` and checks every element of every step.
// Usage: {self.cfg.name}_tb <vector-dir>.  Exit status: 0 all match, 1 mismatches, 2 unusable input.
#include "{self.cfg.name}.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cell = {ns};

{TB_READERS}
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

{TB_SCOREBOARD}
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
        return makefile(self.cfg.name, f"{self.cfg.name}.h")


def makefile(n: str, headers: str) -> str:
    """The testbench Makefile of the sources ``<n>_tb.cpp``, ``<n>_top.cpp`` and ``headers``."""
    return f"""# Build and run the C++ testbench of {n} (generated by `python -m hls.cpp`).
CXX      ?= g++
CXXFLAGS ?= {" ".join(CXXFLAGS)}
VECTORS  ?= ../vectors
# folder with Xilinx's ap_int.h, for the ap_int<W> build (tb-ap, check-ap)
AP_TYPES ?=

.PHONY: tb check tb-ap check-ap clean
tb: {n}_tb

{n}_tb: {n}_tb.cpp {n}_top.cpp {headers}
\t$(CXX) $(CXXFLAGS) -o $@ {n}_tb.cpp {n}_top.cpp

check: {n}_tb
\t./{n}_tb $(VECTORS)

tb-ap: {n}_tb_ap

{n}_tb_ap: {n}_tb.cpp {n}_top.cpp {headers}
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
    return write_changed(files)


def write_changed(files: dict) -> dict:
    """Write ``{key: (path, text)}``, each file only when its text changed; returns ``{key: path}``."""
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
    ap = Parser(prog="python -m hls.cpp", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, type=config_file(networks=True),
                    help="config TOML, a cell's or a network's (make: CONFIG)")
    ap.add_argument("--out", default="build", help="output root; files go to <out>/<config-name>/hls/")
    ap.add_argument("--param-seed", type=nonneg_int("--param-seed", "PARAM_SEED"), default=1,
                    help="seed of the random parameters (default 1, as make sim and make vectors)")
    ap.add_argument("--params", default=None, help="CellParams .npz file (NetworkParams for a network) instead "
                                                      "of random parameters")
    ap.add_argument("--compile", action="store_true",
                    help="also build the testbench with g++ (" + " ".join(CXXFLAGS) + "); for a network, run it")
    ap.add_argument("--max-steps", type=positive_int("--max-steps", "MAX_STEPS"), default=DEFAULT_MAX_STEPS,
                    help=f"array length of the sequence top function (default {DEFAULT_MAX_STEPS})")
    a = ap.parse_args(argv)
    from . import network  # a network file: the layers' cells, the network around them (hls.network)
    try:
        if is_network_file(a.config):
            return network.main(a)
        cfg = Config.load(a.config)
        q, _ = params_for(cfg, a.params, a.param_seed)
        out = output_dir(a.out, cfg, "hls")
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
    print(f"  test: make -C {out} check VECTORS={(out.parent / 'vectors').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
