"""The GRU's QAT step: :meth:`model.kinds.gru.Gru.golden_step` on real values, both reset placements
(reset-after has the separate ``b_hn`` bias, ``bias_hn``; reset-before has none)."""
from __future__ import annotations

#: The options this step computes.
ACCEPTS = {"reset": ("after", "before")}


def step(m, xp, state, w_hh, bias, bias_hn):
    H, a = m.cfg.hidden_size, m.acts
    h = state[0]
    if bias_hn is not None:  # reset-after
        hp = h @ w_hh.T
        pre_rz = m.q(xp[:, :2 * H] + hp[:, :2 * H] + bias[:2 * H], "pre", "pre")
        r, z = a["sigmoid"](pre_rz[:, :H]), a["sigmoid"](pre_rz[:, H:])
        hn = m.q(hp[:, 2 * H:] + bias_hn, "pre", "gru_hn")
        pre_n = m.q(xp[:, 2 * H:] + bias[2 * H:] + r * hn, "pre", "pre")
    else:
        pre_rz = m.q(xp[:, :2 * H] + h @ w_hh[:2 * H].T + bias[:2 * H], "pre", "pre")
        r, z = a["sigmoid"](pre_rz[:, :H]), a["sigmoid"](pre_rz[:, H:])
        rh = m.q(r * h, "hidden", "gru_rh")
        pre_n = m.q(xp[:, 2 * H:] + rh @ w_hh[2 * H:].T + bias[2 * H:], "pre", "pre")
    n = a["tanh_pre"](pre_n)
    return (m.q((1.0 - z) * n + z * h, "hidden", "hidden"),)
