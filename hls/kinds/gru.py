"""C++ step of the GRU, both reset placements, as in ``model.golden``."""
from __future__ import annotations


def constants(cfg, dp) -> list[str]:
    lines = [f"constexpr int OUT_FRAC = {dp.out_frac};  // Q = max(Fg+Fcand, Fg+Fh)",
             f"constexpr int ZN_SHIFT = {dp.zn_shift};",
             f"constexpr int ZH_SHIFT = {dp.zh_shift};",
             f"constexpr wide_t ONE = {1 << cfg.fmt('gate').frac_bits};  // 1.0 in formats.gate"]
    if cfg.cell.after:
        lines += [f"constexpr int NH_FRAC = {dp.nh_frac};  // N = max(A, Fg+Fpre)",
                  f"constexpr int NX_SHIFT = {dp.nx_shift};",
                  f"constexpr int RHN_SHIFT = {dp.rhn_shift};"]
    return lines


def step(cfg) -> list[str]:
    H = "HIDDEN_SIZE"
    after = cfg.cell.after
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
    return lines
