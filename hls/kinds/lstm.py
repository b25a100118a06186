"""C++ step of the LSTM family, generated from the kind's gate list.

Rows are addressed by gate name (``ax[k * H + u]`` for gate ``k`` of the kind's
row order); a gate derived from another (``i = 1 - f`` or ``f = 1 - i``) is
``ONE - x``, exact, as in ``model.golden``.
"""
from __future__ import annotations


def constants(cfg, dp) -> list[str]:
    kind = cfg.cell
    lines = [f"constexpr int CELL_SUM_FRAC = {dp.cell_frac};  // C = max(Fg+Fc, Fg+Fcand)",
             f"constexpr int FC_SHIFT = {dp.fc_shift};",
             f"constexpr int IG_SHIFT = {dp.ig_shift};",
             f"constexpr int OUT_FRAC = {dp.out_frac};  // o * tanh(c): Fg + Fca"]
    if kind.peep_rows:
        lines.append(f"constexpr int P_SHIFT = {dp.p_shift};    // A - Fp - Fc")
    if any(g not in kind.gates for g in ("i", "f")):
        lines.append(f"constexpr wide_t ONE = {1 << cfg.fmt('gate').frac_bits};  // 1.0 in formats.gate")
    return lines


def step(cfg) -> list[str]:
    kind = cfg.cell
    H = "HIDDEN_SIZE"
    k = {g: kind.gate_index(g) for g in kind.gates}
    mode = kind.peephole_mode
    peep = {}
    if mode != "none":
        peep = {"i": "c_prev", "f": "c_prev", "o": "c_prev" if mode == "c_prev" else "c_new"}
    prow = {"i": 0, "f": 1, "o": 2}

    def acc(g, name):
        term = (f" + shift_left<P_SHIFT>(wide_t(W_PEEP[{prow[g]}][u]) * {peep[g]})"
                if g in peep and peep[g] == "c_prev" else "")
        return (f"        const wide_t {name} = wide_t(ax[{k[g]} * {H} + u]) + wide_t(ah[{k[g]} * {H} + u]){term};")

    lines = [
        f"/// One {kind.variant} step: x = x(t); h, c = h(t-1), c(t-1) on entry and h(t), c(t) on return.",
        "/// x: formats.input; h: formats.hidden; c: formats.cell (see the typedefs).",
        f"inline void step(const input_t x[INPUT_SIZE], hidden_t h[{H}], cell_t c[{H}]) {{",
        "    acc_t ax[ROWS];",
        "    acc_t ah[ROWS];",
        "    xproj(x, ax);",
        "    hproj<0, ROWS>(h, ah);  // reads h(t-1) for every row before any h(t) is written",
        f"    for (int u = 0; u < {H}; ++u) {{",
        "        const wide_t c_prev = wide_t(c[u]);",
    ]
    for g in kind.gates:
        lines.append(acc(g, f"acc_{g}" if g != "o" else "acc_o0"))
    for g in ("i", "f"):
        if g in k:
            lines.append(f"        const wide_t {g} = sigmoid(pre_t(RQ_pre<ACC_FRAC>(acc_{g})));")
    for g, other in (("i", "f"), ("f", "i")):
        if g not in k:
            lines.append(f"        const wide_t {g} = ONE - {other};  // coupled gate, exact")
    lines += [
        "        const candidate_t g = tanh_pre(pre_t(RQ_pre<ACC_FRAC>(acc_g)));",
        "        const wide_t c_new = RQ_cell<CELL_SUM_FRAC>(shift_left<FC_SHIFT>(f * c_prev)",
        "                                                  + shift_left<IG_SHIFT>(i * wide_t(g)));",
    ]
    if peep.get("o") == "c_new":
        lines += ["        // c_new peephole: o's pre-activation takes p_o * c(t), after c(t) is requantized",
                  f"        const wide_t acc_o = acc_o0 + shift_left<P_SHIFT>(wide_t(W_PEEP[{prow['o']}][u]) * c_new);"]
    else:
        lines += ["        // o's accumulator is complete before c(t) exists",
                  "        const wide_t acc_o = acc_o0;"]
    lines += [
        "        const gate_t o = sigmoid(pre_t(RQ_pre<ACC_FRAC>(acc_o)));",
        "        const cell_act_t tc = tanh_cell(cell_t(c_new));",
        "        const wide_t h_new = RQ_hidden<OUT_FRAC>(wide_t(o) * wide_t(tc));",
        "        c[u] = cell_t(c_new);",
        "        h[u] = hidden_t(h_new);",
        "    }",
        "}",
    ]
    return lines
