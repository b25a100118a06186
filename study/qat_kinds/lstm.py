"""The LSTM's QAT step: :meth:`model.kinds.lstm.LstmFamily.golden_step` without peepholes, on real values."""
from __future__ import annotations

#: The options this step computes.
ACCEPTS = {"peephole": ("none",)}


def step(m, xp, state, w_hh, bias, bias_hn):
    H, a = m.cfg.hidden_size, m.acts
    h, c = state
    pre = m.q(xp + h @ w_hh.T + bias, "pre", "pre")
    i, f, o = (a["sigmoid"](pre[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
    g = a["tanh_pre"](pre[:, 2 * H:3 * H])
    c_new = m.q(f * c + i * g, "cell", "cell")
    return m.q(o * a["tanh_cell"](c_new), "hidden", "hidden"), c_new
