"""Bit-exact C++ reference of a network (:mod:`model.network.golden`): one cell header per layer and
direction, a network header with the layers in order and the head, a top function, a testbench and
its vectors.

``python -m hls.cpp --config configs/networks/tiny_net.toml --out build`` (a network file) writes
``build/<name>/hls/``:

- ``<name>-l<k>.h`` (and ``<name>-l<k>-rev.h`` for a bidirectional layer): the cell of layer ``k``
  in namespace ``rnnkit_<name>_l<k>`` (``..._l<k>_rev``), as :mod:`hls.cpp` writes one cell.
- ``<name>.h``: namespace ``rnnkit_<name>``: the ``State`` (h, c of every layer and direction, raw),
  the ``Outputs`` (every layer's output at every step), ``layer<k>`` (the reverse direction over the
  time-reversed sequence, ``[forward h(t), reverse h(t)]`` concatenated), ``head`` (the exact
  accumulator of :mod:`model.network.head`, one requantization into ``formats.logits``, the class) and
  ``sequence``.
- ``<name>_top.cpp``: the top function ``rnnkit_<name>_sequence``.
- ``<name>_tb.cpp`` and ``Makefile``: the testbench over a vector set of :mod:`hls.network_vectors`,
  which is written to ``build/<name>/vectors/``; ``--compile`` builds and runs it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from model.config import ConfigError, output_dir
from model.network import NetworkConfig

from . import network_vectors as nv
from .cli import network_params_for
from .cpp import (CXXFLAGS, DEFAULT_MAX_STEPS, OVERFLOW, ROUNDING, TB_READERS, TB_SCOREBOARD, HlsError, _array,
                  _array2, _Gen, ap_int_type, c_int_type, compile_tb, ident, makefile, write_changed)


class _NetGen:
    """Emits the C++ sources of one network and one quantized parameter set."""

    def __init__(self, ncfg: NetworkConfig, q, max_steps: int):
        if ncfg.head is not None and ncfg.head.every_step:
            raise HlsError("head.every_step = true: the C++ reference computes the head on a sequence's last "
                           "step (accepted: every_step = false; call head() on each step's output yourself)")
        self.ncfg, self.q, self.max_steps = ncfg, q, max_steps
        self.id = ident(ncfg.name)
        self.ns = f"rnnkit_{self.id}"
        #: per slot: (layer, direction, label, cell generator)
        self.slots = []
        for i, d, c in ncfg.slots():
            cfg = c if d == 0 else c.replace(name=f"{c.name}-{nv.DIRECTION_NAMES[d]}")
            try:
                self.slots.append((i, d, nv.slot_label(i, d), _Gen(cfg, q.layers[i][d], max_steps)))
            except HlsError as e:
                raise HlsError(f"layer {i}: {e}") from None
        self.digest = nv.network_digest(ncfg, q)

    def layer_slots(self, k: int) -> list:
        return [s for s in self.slots if s[0] == k]

    def state_members(self) -> list:
        """``(member, state tensor name, slot label, tensor)`` of ``State``: ``h_l0_fwd``, ``c_l0_fwd``, ..."""
        return [(f"{n}_{label}", n, label, t) for _, _, label, g in self.slots for n, t in g.state]

    # ---- network header ----------------------------------------------------------------------------
    def header(self) -> str:
        ncfg = self.ncfg
        last = len(ncfg.layers) - 1
        guard = f"RNNKIT_NET_{self.id.upper()}_H"
        includes = "\n".join(f'#include "{g.cfg.name}.h"' for *_, g in self.slots)
        aliases = "\n".join(f"namespace {label} = {g.ns};  // layer {i}, {('forward', 'reverse')[d]} direction"
                            for i, d, label, g in self.slots)
        desc = "; ".join(f"layer {k}: {c.variant}, {c.input_size} -> {ncfg.directions[k]} x {c.hidden_size}"
                         for k, c in enumerate(ncfg.layers))
        outs = "\n".join(
            f"constexpr int OUT{k} = {ncfg.directions[k]} * l{k}_fwd::HIDDEN_SIZE;  "
            f"// layer {k}'s output, formats.hidden {c.fmt('hidden')}\n"
            f"typedef l{k}_fwd::hidden_t y{k}_t;" for k, c in enumerate(ncfg.layers))
        state = "\n".join(f"    {a}::{t}_t {m}[{a}::HIDDEN_SIZE];" for m, _, a, t in self.state_members())
        ys = "\n".join(f"    y{k}_t y{k}[MAX_STEPS][OUT{k}];" for k in range(len(ncfg.layers)))
        layers = "\n".join(self.layer_fn(k) for k in range(len(ncfg.layers)))
        calls = "\n".join(f"    layer{k}({'x' if k == 0 else f'y.y{k - 1}'}, steps, y.y{k}, s_n);"
                          for k in range(len(ncfg.layers)))
        head = self.head() if ncfg.head is not None else ""
        if ncfg.head is not None:
            ret, hargs = "int", ", logits_t logits[CLASSES]"
            tail = f"    return head(y.y{last}[steps - 1], logits);\n"
            what = "the logits of the last step in logits; returns the class"
        else:
            ret, hargs, tail, what = "void", "", "", "no head"
        return f"""// {ncfg.name}: network of {len(ncfg.layers)} layer(s) ({desc}){
            f'; head of {ncfg.head.classes} classes' if ncfg.head is not None else ''}.
// Bit-exact C++ reference of model.network.golden for this config, generated by `python -m hls.cpp`;
// regenerate rather than edit.  Each cell is in its own header and namespace, with its own formats.
#ifndef {guard}
#define {guard}

{includes}

namespace {self.ns} {{

{aliases}

typedef int64_t wide_t;

constexpr int NUM_LAYERS = {len(ncfg.layers)};
constexpr int MAX_STEPS = RNNKIT_MAX_STEPS;  // array length of sequence()
constexpr const char* NETWORK_NAME = "{ncfg.name}";
constexpr const char* NETWORK_DIGEST = "{self.digest}";  // hls.network_vectors.network_digest
constexpr int INPUT_SIZE = l0_fwd::INPUT_SIZE;
typedef l0_fwd::input_t input_t;  // layer 0's formats.input {ncfg.layers[0].fmt('input')}

// Layer k's output y<k>[t] = [forward h(t), reverse h(t)], raw in its formats.hidden, is layer k+1's input.
{outs}

/// Every cell's state, raw in its layer's formats: h (and c) per layer and direction.  A reverse
/// direction's state is the one after it has consumed the steps from the last one down to t.
struct State {{
{state}
}};

/// Every layer's output at every step.
struct Outputs {{
{ys}
}};

{self.default_state()}{head}
// ---- layers -------------------------------------------------------------------------------------

{layers}
/// The network over x[0 .. steps-1] (1 <= steps <= MAX_STEPS; other values are clamped into that range)
/// from state s0: every layer's output in y, the final state in s_n, {what}.
inline {ret} sequence(const input_t x[MAX_STEPS][INPUT_SIZE], int steps, const State& s0, Outputs& y,
                      State& s_n{hargs}) {{
    if (steps > MAX_STEPS) steps = MAX_STEPS;
    if (steps < 1) steps = 1;
    s_n = s0;
{calls}
{tail}}}

}}  // namespace {self.ns}

// HLS top function (defined in {ncfg.name}_top.cpp).
{self.top_signature()};

#endif  // {guard}
"""

    def layer_fn(self, k: int) -> str:
        x_t, x_n = ("input_t", "INPUT_SIZE") if k == 0 else (f"y{k - 1}_t", f"OUT{k - 1}")
        parts = []
        for _, d, label, g in self.layer_slots(k):
            args = ", ".join(f"s.{n}_{label}" for n, _ in g.state)
            off = "" if d == 0 else f"l{k}_fwd::HIDDEN_SIZE + "
            if d == 0:
                loop, t = "int t = 0; t < MAX_STEPS; ++t", "t < steps"
                head = f"        if ({t}) {{\n"
            else:
                loop = "int i = 0; i < MAX_STEPS; ++i"
                head = ("        if (i < steps) {\n"
                        "            const int t = steps - 1 - i;  // the time-reversed sequence\n")
            parts.append(f"    for ({loop}) {{\n{head}"
                         f"            {label}::step(x[t], {args});\n"
                         f"            for (int u = 0; u < {label}::HIDDEN_SIZE; ++u) y[t][{off}u] = s.h_{label}[u];\n"
                         "        }\n    }\n")
        dirs = "forward over t = 0 .. steps-1" + (", reverse over t = steps-1 .. 0" if len(parts) == 2 else "")
        return (f"/// Layer {k}: {dirs}; the state in s is carried in and out.\n"
                f"inline void layer{k}(const {x_t} x[MAX_STEPS][{x_n}], int steps, y{k}_t y[MAX_STEPS][OUT{k}], "
                f"State& s) {{\n" + "".join(parts) + "}\n")

    def default_state(self) -> str:
        """``default_state``: zeros, or the raw default initial state the parameters bring (``QNetwork.initial_state``)."""
        init = self.q.initial_state
        tables, body = [], []
        for j, (_, _, a, g) in enumerate(self.slots):
            for k, (n, t) in enumerate(g.state):
                m = f"{n}_{a}"
                if init is None:
                    body.append(f"    for (int u = 0; u < {a}::HIDDEN_SIZE; ++u) s.{m}[u] = 0;")
                    continue
                tables.append(f"static const {a}::{t}_t DEFAULT_{m.upper()}[{a}::HIDDEN_SIZE] = {{{_array(init[j][k])}}};")
                body.append(f"    for (int u = 0; u < {a}::HIDDEN_SIZE; ++u) s.{m}[u] = DEFAULT_{m.upper()}[u];")
        what = "the one its parameters bring" if init is not None else "zeros: its parameters bring none"
        return ("\n".join(tables) + ("\n" if tables else "")
                + f"/// The network's default initial state ({what}).\n"
                "inline void default_state(State& s) {\n" + "\n".join(body) + "\n}\n")

    def head(self) -> str:
        hc, qh = self.ncfg.head, self.q.head
        last = len(self.ncfg.layers) - 1
        f = hc.formats
        acc = hc.acc_fmt
        rows_ap, rows_c, comments = [], [], []
        for t, name in (("weight", "head_weight_t"), ("bias", "head_bias_t"), ("logits", "logits_t")):
            rows_ap.append(f"typedef {ap_int_type(f[t].width, f[t].signed)} {name};")
            rows_c.append(f"typedef {c_int_type(f[t].width, f[t].signed)} {name};")
            comments.append(f"// {name}: head.formats.{t} = {f[t]} = {f[t].ap}: raw integer, "
                            f"value = raw * 2^-{f[t].frac_bits}")
        return f"""
// ---- head (model.network.head): logits = requant(W y + b) on the last step, class = argmax ----------
constexpr int CLASSES = {hc.classes};
constexpr int FEATURES = OUT{last};
{chr(10).join(comments)}
#ifdef RNNKIT_AP_INT
{chr(10).join(rows_ap)}
#else
{chr(10).join(rows_c)}
#endif
constexpr int LOGITS_FRAC = {f['logits'].frac_bits};
constexpr int LOGITS_WIDTH = {f['logits'].width};
// The accumulator W y + b is exact: {acc} = {acc.ap} (HeadConfig.acc_fmt), held in wide_t.
constexpr int HEAD_ACC_FRAC = {hc.acc_frac};  // max(Fw + Fy, Fb)
constexpr int HEAD_Y_SHIFT = {hc.y_shift};   // HEAD_ACC_FRAC - Fw - Fy
constexpr int HEAD_B_SHIFT = {hc.b_shift};   // HEAD_ACC_FRAC - Fb
static const head_weight_t HEAD_W[CLASSES][FEATURES] = {{{_array2(qh.weight)}}};
static const head_bias_t HEAD_B[CLASSES] = {{{_array(qh.bias)}}};

/// The logits of y (layer {last}'s output at one step), requantized once ({hc.mode.rounding}, {hc.mode.overflow}) into
/// head.formats.logits {f['logits']}; returns the index of the largest logit, the lowest one on a tie.
inline int head(const y{last}_t y[FEATURES], logits_t logits[CLASSES]) {{
    int best = 0;
    for (int k = 0; k < CLASSES; ++k) {{
        wide_t s = 0;
        for (int e = 0; e < FEATURES; ++e) s += wide_t(HEAD_W[k][e]) * wide_t(y[e]);
        const wide_t acc = l0_fwd::shift_left<HEAD_Y_SHIFT>(s) + l0_fwd::shift_left<HEAD_B_SHIFT>(wide_t(HEAD_B[k]));
        logits[k] = logits_t(l0_fwd::requantize<HEAD_ACC_FRAC, LOGITS_FRAC, LOGITS_WIDTH, true,
                                                l0_fwd::{ROUNDING[hc.mode.rounding]}, l0_fwd::{OVERFLOW[hc.mode.overflow]}>(acc));
        if (wide_t(logits[k]) > wide_t(logits[best])) best = k;
    }}
    return best;
}}
"""

    # ---- top, testbench, Makefile -------------------------------------------------------------------
    def top_signature(self) -> str:
        ns = self.ns
        h = self.ncfg.head is not None
        return (f"{'int' if h else 'void'} {ns}_sequence(const {ns}::input_t x[{ns}::MAX_STEPS][{ns}::INPUT_SIZE], "
                f"int steps,\n    const {ns}::State& s0, {ns}::Outputs& y, {ns}::State& s_n"
                + (f", {ns}::logits_t logits[{ns}::CLASSES])" if h else ")"))

    def top(self) -> str:
        h = self.ncfg.head is not None
        call = f"{'return ' if h else ''}{self.ns}::sequence(x, steps, s0, y, s_n{', logits' if h else ''});"
        return f"""// HLS top function for the network {self.ncfg.name}; generated by `python -m hls.cpp`.
// x: layer 0's input, raw; s0: the initial state of every layer and direction, raw; y: every layer's
// output; s_n: the final state{'; logits and the returned class: the head on the last step' if h else ''}.
#include "{self.ncfg.name}.h"

{self.top_signature()} {{
    {call}
}}
"""

    def testbench(self) -> str:
        ncfg, ns = self.ncfg, self.ns
        members = self.state_members()
        L = len(ncfg.layers)
        reads = ['    if (!read_hex(dir + "/x.hex", l0_fwd::INPUT_WIDTH, l0_fwd::INPUT_SIGNED, '
                 'total * net::INPUT_SIZE, x_in)) return 2;']
        decl = ["x_in"] + [f"y{k}_exp" for k in range(L)]
        for k in range(L):
            reads.append(f'    if (!read_hex(dir + "/y{k}.hex", l{k}_fwd::HIDDEN_WIDTH, l{k}_fwd::HIDDEN_SIGNED, '
                         f'total * net::OUT{k}, y{k}_exp)) return 2;')
        fill, cmp_state, cmp_default = [], [], []
        for m, n, label, t in members:
            a, T = label, t.upper()
            decl += [f"{m}_in", f"{m}_exp"]
            for tag, var in (("0", f"{m}_in"), ("n", f"{m}_exp")):
                reads.append(f'    if (!read_hex(dir + "/{n}{tag}_{label}.hex", {a}::{T}_WIDTH, {a}::{T}_SIGNED, '
                             f'size_t(seqs) * {a}::HIDDEN_SIZE, {var})) return 2;')
            fill.append(f"        for (int u = 0; u < {a}::HIDDEN_SIZE; ++u) "
                        f"s0.{m}[u] = {a}::{t}_t({m}_in[size_t(s) * {a}::HIDDEN_SIZE + u]);")
            cmp_default.append(f"    for (int u = 0; u < {a}::HIDDEN_SIZE; ++u)\n"
                               f'        sb.check("{n}0_{label}", "default_state", 0, 0, u, {m}_in[size_t(u)], '
                               f"s_default.{m}[u]);")
            cmp_state.append(f"        for (int u = 0; u < {a}::HIDDEN_SIZE; ++u)\n"
                             f'            sb.check("{n}n_{label}", "sequence", s, n - 1, u, '
                             f"{m}_exp[size_t(s) * {a}::HIDDEN_SIZE + u], s_n.{m}[u]);")
        cmp_y = "\n".join(
            f"        for (int t = 0; t < n; ++t)\n"
            f"            for (int e = 0; e < net::OUT{k}; ++e)\n"
            f'                sb.check("y{k}", "sequence", s, t, e, y{k}_exp[(at + t) * net::OUT{k} + e], ys.y{k}[t][e]);'
            for k in range(L))
        head = ncfg.head is not None
        if head:
            decl += ["logits_exp", "class_exp"]
            reads += ['    if (!read_hex(dir + "/logits.hex", net::LOGITS_WIDTH, true, size_t(seqs) * net::CLASSES, '
                      'logits_exp)) return 2;',
                      f'    if (!read_hex(dir + "/class.hex", {nv.COUNT_WIDTH}, false, size_t(seqs), class_exp)) return 2;']
            call = f"const int cls = {ns}_sequence(xs, n, s0, ys, s_n, logits);"
            cmp_head = ("        for (int k = 0; k < net::CLASSES; ++k)\n"
                        '            sb.check("logits", "sequence", s, n - 1, k, '
                        "logits_exp[size_t(s) * net::CLASSES + k], logits[k]);\n"
                        '        sb.check("class", "sequence", s, n - 1, 0, class_exp[size_t(s)], cls);\n')
            logits_decl = "static net::logits_t logits[net::CLASSES];\n"
        else:
            call, cmp_head, logits_decl = f"{ns}_sequence(xs, n, s0, ys, s_n);", "", ""
        aliases = "\n".join(f"namespace {label} = net::{label};" for _, _, label, _ in self.slots)
        return f"""// Testbench for the network {ncfg.name}: runs the top function over every sequence of a vector set
// written by hls.network_vectors (`python -m hls.cpp` writes one to ../vectors) and checks every layer's
// output at every step, the final state{', the logits and the class' if head else ''}.
// Usage: {ncfg.name}_tb <vector-dir>.  Exit status: 0 all match, 1 mismatches, 2 unusable input.
#include "{ncfg.name}.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace net = {ns};
{aliases}

{TB_READERS}
{TB_SCOREBOARD}
static net::input_t xs[net::MAX_STEPS][net::INPUT_SIZE];
static net::Outputs ys;
static net::State s0, s_n, s_default;
{logits_decl}
int main(int argc, char** argv) {{
    if (argc != 2) {{
        std::fprintf(stderr, "usage: %s <vector-dir>  (written by python -m hls.cpp for a network)\\n", argv[0]);
        return 2;
    }}
    const std::string dir = argv[1];
    std::string m, digest, sv;
    if (!read_text(dir + "/manifest.json", m)) return 2;
    if (!manifest_value(m, "network_digest", digest) || !manifest_value(m, "seqs", sv)) {{
        std::fprintf(stderr, "error: %s/manifest.json lacks network_digest or seqs\\n", dir.c_str());
        return 2;
    }}
    if (digest != net::NETWORK_DIGEST) {{
        std::fprintf(stderr, "error: the vectors in %s were written for another network or other parameters "
                     "than %s (network_digest differs)\\n", dir.c_str(), net::NETWORK_NAME);
        return 2;
    }}
    const int seqs = std::atoi(sv.c_str());
    std::vector<long long> lengths;
    if (!read_hex(dir + "/lengths.hex", {nv.COUNT_WIDTH}, false, size_t(seqs), lengths)) return 2;
    size_t total = 0;
    for (int s = 0; s < seqs; ++s) {{
        if (lengths[s] < 1 || lengths[s] > net::MAX_STEPS) {{
            std::fprintf(stderr, "error: sequence %d has %lld steps; this build takes 1 to MAX_STEPS = %d "
                         "(-DRNNKIT_MAX_STEPS=n)\\n", s, lengths[s], net::MAX_STEPS);
            return 2;
        }}
        total += size_t(lengths[s]);
    }}
    std::vector<long long> {', '.join(decl)};
{chr(10).join(reads)}
    Scoreboard sb;
    net::default_state(s_default);  // sequence 0 of the vectors starts from the default initial state
{chr(10).join(cmp_default)}
    size_t at = 0;  // the first step of sequence s in the concatenated files
    for (int s = 0; s < seqs; ++s) {{
        const int n = int(lengths[s]);
        for (int t = 0; t < n; ++t)
            for (int e = 0; e < net::INPUT_SIZE; ++e) xs[t][e] = net::input_t(x_in[(at + t) * net::INPUT_SIZE + e]);
{chr(10).join(fill)}
        {call}
{cmp_y}
{chr(10).join(cmp_state)}
{cmp_head}        at += size_t(n);
    }}
    std::printf("%s: %d sequences, %zu steps, %lld elements compared, %lld mismatches\\n", net::NETWORK_NAME,
                seqs, total, sb.compared, sb.mismatches);
    std::printf("%lld passed, %lld failed\\n", sb.compared - sb.mismatches, sb.mismatches);
    return sb.mismatches ? 1 : 0;
}}
"""


def generate(ncfg: NetworkConfig, q, out_dir, max_steps: int = DEFAULT_MAX_STEPS) -> dict:
    """Write every cell header, the network header, top, testbench and Makefile into ``out_dir``.

    Returns ``{"header", "top", "tb", "makefile", "cells"}`` (``cells``: the cell headers' paths).
    """
    g = _NetGen(ncfg, q, max_steps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = ncfg.name
    cells = write_changed({label: (out / f"{cg.cfg.name}.h", cg.header()) for _, _, label, cg in g.slots})
    headers = " ".join([f"{n}.h"] + [p.name for p in cells.values()])
    paths = write_changed({"header": (out / f"{n}.h", g.header()), "top": (out / f"{n}_top.cpp", g.top()),
                           "tb": (out / f"{n}_tb.cpp", g.testbench()), "makefile": (out / "Makefile",
                                                                                   makefile(n, headers))})
    return {**paths, "cells": list(cells.values())}


def default_lengths(ncfg: NetworkConfig, max_steps: int) -> list:
    """:data:`hls.network_vectors.DEFAULT_LENGTHS`, each at most what the build and a bidirectional layer take."""
    limit = min(max_steps, ncfg.max_steps) if ncfg.bidirectional else max_steps
    return [min(n, limit) for n in nv.DEFAULT_LENGTHS]


def run_testbench(exe, vectors) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), str(vectors)], capture_output=True, text=True)


def main(a) -> int:
    """``python -m hls.cpp`` on a network file (``a``: its parsed arguments)."""
    try:
        ncfg = NetworkConfig.load(a.config)
        q, src = network_params_for(ncfg, a.params, a.param_seed)
        out = output_dir(a.out, ncfg, "hls")
        paths = generate(ncfg, q, out, a.max_steps)
        lengths = default_lengths(ncfg, a.max_steps)
        vec = output_dir(a.out, ncfg, "vectors")
        nv.write(vec, ncfg, q, nv.make_sequences(ncfg, lengths, seed=1),
                 nv.make_states(ncfg, q, len(lengths), seed=2), source=src)
        exe = compile_tb(paths) if a.compile else None
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{ncfg.name} (network, {ncfg.num_layers} layer(s)): C++ reference in {out}/")
    for p in [*paths["cells"], paths["header"], paths["top"], paths["tb"], paths["makefile"]]:
        print(f"  {p.name}")
    print(f"  vectors: {vec}/ ({len(lengths)} sequences of {', '.join(map(str, lengths))} steps)")
    if exe is None:
        print(f"  test: make -C {out} check VECTORS={vec.resolve()}")
        return 0
    r = run_testbench(exe, vec)
    print(f"  {exe.name} (built: g++ {' '.join(CXXFLAGS)}), run on the vectors:")
    print("".join(f"    {line}\n" for line in (r.stdout + r.stderr).splitlines()), end="")
    return 0 if r.returncode == 0 else 1


__all__ = ["generate", "main"]
