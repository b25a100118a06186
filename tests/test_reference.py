"""The float reference against PyTorch (LSTM, GRU reset-after) and against a scalar loop (the rest)."""
import math
import re

import numpy as np
import pytest
import torch

from model.params import CellParams, from_torch
from model import reference
from model.reference import run, run_step, sigmoid, zero_state

TOL = 1e-9


def _torch_module(kind, I, H, batch_first, seed):
    torch.manual_seed(seed)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    return cls(I, H, batch_first=batch_first).double()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("I,H", [(7, 37), (13, 100), (1, 1)])
def test_matches_torch(kind, batch_first, I, H):
    B, T = 5, 12
    m = _torch_module(kind, I, H, batch_first, seed=I * 1000 + H)
    with torch.no_grad():  # make biases and weights a little larger than the default init
        for p in m.parameters():
            p.mul_(1.5)
    params = from_torch(m)
    rng = np.random.default_rng(H)
    x = rng.normal(size=(B, T, I))
    h0 = rng.uniform(-0.8, 0.8, size=(B, H))
    c0 = rng.uniform(-2, 2, size=(B, H))
    xt = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    h0t = torch.from_numpy(h0[None])
    with torch.no_grad():
        if kind == "lstm":
            yt, (hn, cn) = m(xt, (h0t, torch.from_numpy(c0[None])))
            state = (h0, c0)
        else:
            yt, hn = m(xt, h0t)
            state = (h0,)
    yt = yt.numpy()
    if not batch_first:
        yt = yt.transpose(1, 0, 2)
    y, final = run(params, x, state)
    assert y.shape == (B, T, H) and y.dtype == np.float64
    assert np.max(np.abs(y - yt)) <= TOL
    assert np.max(np.abs(final[0] - hn[0].numpy())) <= TOL
    if kind == "lstm":
        assert len(final) == 2
        assert np.max(np.abs(final[1] - cn[0].numpy())) <= TOL
    else:
        assert len(final) == 1


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zero_initial_state_is_default(kind):
    p = CellParams.random(kind, 3, 4, seed=1)
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    y0, s0 = run(p, x)
    y1, s1 = run(p, x, zero_state(p, 2))
    assert np.array_equal(y0, y1)
    assert all(np.array_equal(a, b) for a, b in zip(s0, s1))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_run_step_and_split_sequence(kind):
    """run over T steps == run_step T times == run over two halves chained by the state."""
    p = CellParams.random(kind, 4, 6, seed=2, scale=0.8)
    x = np.random.default_rng(3).normal(size=(3, 8, 4))
    y, s = run(p, x)
    st = None
    for t in range(8):
        st = run_step(p, x[:, t], st)
        assert np.allclose(st[0], y[:, t], rtol=0, atol=1e-14)
    ya, sa = run(p, x[:, :5])
    yb, sb = run(p, x[:, 5:], sa)
    assert np.allclose(np.concatenate([ya, yb], axis=1), y, rtol=0, atol=1e-14)
    assert all(np.allclose(a, b, rtol=0, atol=1e-14) for a, b in zip(sb, s))


def test_zero_steps_returns_initial_state():
    p = CellParams.random("lstm", 2, 3, seed=0)
    h0, c0 = np.ones((4, 3)), -np.ones((4, 3))
    y, (h, c) = run(p, np.zeros((4, 0, 2)), (h0, c0))
    assert y.shape == (4, 0, 3)
    assert np.array_equal(h, h0) and np.array_equal(c, c0)


def test_sigmoid_is_stable():
    x = np.array([-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = sigmoid(x)
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert np.allclose(s, [1 / (1 + math.exp(-v)) if abs(v) < 700 else float(v > 0) for v in x],
                       rtol=1e-15, atol=0)


# ---- independent scalar implementation ---------------------------------------------

def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def _dot(row, vec):
    return sum(float(a) * float(b) for a, b in zip(row, vec))


def scalar_lstm(p, x, h, c):
    """One sequence, unit by unit. x: (T, I); h, c: lists of H floats."""
    H = p.hidden_size
    outs = []
    for xt in x:
        pre = [_dot(p.w_ih[r], xt) + p.b_ih[r] + _dot(p.w_hh[r], h) + p.b_hh[r] for r in range(4 * H)]
        c_new, h_new = [], []
        for k in range(H):
            ai, af, ag, ao = pre[k], pre[H + k], pre[2 * H + k], pre[3 * H + k]
            if p.options["peephole"] != "none":
                ai += p.w_peep[0, k] * c[k]
                af += p.w_peep[1, k] * c[k]
            ck = _sig(af) * c[k] + _sig(ai) * math.tanh(ag)
            if p.options["peephole"] == "c_prev":
                ao += p.w_peep[2, k] * c[k]
            elif p.options["peephole"] == "c_new":
                ao += p.w_peep[2, k] * ck
            c_new.append(ck)
            h_new.append(_sig(ao) * math.tanh(ck))
        h, c = h_new, c_new
        outs.append(h)
    return outs, h, c


def scalar_gru(p, x, h):
    H = p.hidden_size
    outs = []
    for xt in x:
        gx = [_dot(p.w_ih[r], xt) + p.b_ih[r] for r in range(3 * H)]
        r = [_sig(gx[k] + _dot(p.w_hh[k], h) + p.b_hh[k]) for k in range(H)]
        z = [_sig(gx[H + k] + _dot(p.w_hh[H + k], h) + p.b_hh[H + k]) for k in range(H)]
        if p.options["reset"] == "after":
            n = [math.tanh(gx[2 * H + k] + r[k] * (_dot(p.w_hh[2 * H + k], h) + p.b_hh[2 * H + k]))
                 for k in range(H)]
        else:
            rh = [r[j] * h[j] for j in range(H)]
            n = [math.tanh(gx[2 * H + k] + _dot(p.w_hh[2 * H + k], rh) + p.b_hh[2 * H + k])
                 for k in range(H)]
        h = [(1 - z[k]) * n[k] + z[k] * h[k] for k in range(H)]
        outs.append(h)
    return outs, h


def _inputs(I, H, B=3, T=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, I)), rng.uniform(-0.9, 0.9, size=(B, H)), rng.uniform(-2, 2, size=(B, H))


@pytest.mark.parametrize("peephole", ["none", "c_prev", "c_new"])
def test_lstm_matches_scalar_loop(peephole):
    I, H = 3, 4
    p = CellParams.random("lstm", I, H, seed=5, scale=1.2, peephole=peephole)
    x, h0, c0 = _inputs(I, H)
    y, (h, c) = run(p, x, (h0, c0))
    for b in range(x.shape[0]):
        outs, hs, cs = scalar_lstm(p, x[b], list(h0[b]), list(c0[b]))
        assert np.max(np.abs(y[b] - np.array(outs))) <= 1e-12
        assert np.max(np.abs(h[b] - hs)) <= 1e-12 and np.max(np.abs(c[b] - cs)) <= 1e-12


@pytest.mark.parametrize("reset", ["after", "before"])
def test_gru_matches_scalar_loop(reset):
    I, H = 3, 4
    p = CellParams.random("gru", I, H, seed=6, scale=1.2, reset=reset)
    x, h0, _ = _inputs(I, H)
    y, (h,) = run(p, x, (h0,))
    for b in range(x.shape[0]):
        outs, hs = scalar_gru(p, x[b], list(h0[b]))
        assert np.max(np.abs(y[b] - np.array(outs))) <= 1e-12
        assert np.max(np.abs(h[b] - hs)) <= 1e-12


def test_peephole_conventions_differ():
    p1 = CellParams.random("lstm", 3, 4, seed=7, peephole="c_prev", scale=1.0)
    p2 = p1.replace(peephole="c_new")
    x, h0, c0 = _inputs(3, 4)
    assert np.max(np.abs(run(p1, x, (h0, c0))[0] - run(p2, x, (h0, c0))[0])) > 1e-3


@pytest.mark.parametrize("peephole", ["c_prev", "c_new"])
def test_zero_peephole_is_plain_lstm(peephole):
    plain = CellParams.random("lstm", 5, 6, seed=8)
    peep = CellParams("lstm", plain.w_ih, plain.w_hh, plain.b_ih, plain.b_hh,
                      w_peep=np.zeros((3, 6)), options={"peephole": peephole})
    x, h0, c0 = _inputs(5, 6)
    y0, s0 = run(plain, x, (h0, c0))
    y1, s1 = run(peep, x, (h0, c0))
    assert np.array_equal(y0, y1)
    assert all(np.array_equal(a, b) for a, b in zip(s0, s1))


def _gru_pair(seed, scale=1.0):
    after = CellParams.random("gru", 3, 5, seed=seed, scale=scale, reset="after")
    before = after.replace(reset="before")
    return after, before


def test_reset_before_differs_from_after():
    after, before = _gru_pair(9)
    x, h0, _ = _inputs(3, 5)
    assert np.max(np.abs(run(after, x, (h0,))[0] - run(before, x, (h0,))[0])) > 1e-3


def test_reset_placement_irrelevant_without_recurrent_candidate():
    """With W_hn = 0 and b_hn = 0 the candidate is tanh(W_in x + b_in) in both placements."""
    after, before = _gru_pair(10)
    H = 5
    for p in (after, before):
        p.w_hh[2 * H:] = 0.0
        p.b_hh[2 * H:] = 0.0
    x, h0, _ = _inputs(3, 5)
    ya, sa = run(after, x, (h0,))
    yb, sb = run(before, x, (h0,))
    assert np.array_equal(ya, yb) and np.array_equal(sa[0], sb[0])


def test_reset_placement_irrelevant_when_reset_gate_open():
    """With r == 1 (W_ir = W_hr = 0, b_ir large), r * (U h + b) == U (r * h) + b."""
    after, before = _gru_pair(11)
    H = 5
    for p in (after, before):
        p.w_ih[:H] = 0.0
        p.w_hh[:H] = 0.0
        p.b_ih[:H] = 50.0  # sigmoid(50) == 1.0 in float64
        p.b_hh[:H] = 0.0
    x, h0, _ = _inputs(3, 5)
    ya, _ = run(after, x, (h0,))
    yb, _ = run(before, x, (h0,))
    assert np.max(np.abs(ya - yb)) <= 1e-15


# ---- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 3), (2, 4, 3, 1), (2, 4, 5)])
def test_bad_x_shape(shape):
    p = CellParams.random("lstm", 3, 2, seed=0)
    msg = re.escape(f"x has shape {shape}; expected 3-D (batch, steps, input) with input = 3")
    with pytest.raises(ValueError, match=msg):
        run(p, np.zeros(shape))


def test_bad_x_shape_run_step():
    p = CellParams.random("gru", 3, 2, seed=0)
    with pytest.raises(ValueError, match=r"x has shape \(2, 1, 3\); expected 2-D \(batch, input\)"):
        run_step(p, np.zeros((2, 1, 3)))


@pytest.mark.parametrize("kind,state,match", [
    ("lstm", np.zeros((2, 4)), r"must be a tuple \(h, c\)"),
    ("lstm", (np.zeros((2, 4)),), r"must be a tuple \(h, c\).*length 1"),
    ("lstm", (np.zeros((2, 4)), np.zeros((2, 5))), r"state c has shape \(2, 5\); expected .* = \(2, 4\)"),
    ("lstm", (np.zeros((3, 4)), np.zeros((2, 4))), r"state h has shape \(3, 4\); expected .* = \(2, 4\)"),
    ("gru", np.zeros((2, 4)), r"must be a tuple \(h,\)"),
    ("gru", (np.zeros((1, 2, 4)),), r"state h has shape \(1, 2, 4\)"),
])
def test_bad_state(kind, state, match):
    p = CellParams.random(kind, 3, 4, seed=0)
    with pytest.raises(ValueError, match=match):
        run(p, np.zeros((2, 5, 3)), state)


@pytest.mark.parametrize("kind,opts", [("lstm", {}), ("gru", {"reset": "after"}), ("gru", {"reset": "before"}),
                                       ("cifg", {"coupling": "i=1-f"}), ("cifg", {"coupling": "f=1-i"})])
def test_run_trace_is_consistent(kind, opts):
    """run_trace's outputs equal run's (checked against PyTorch above), and its intermediates
    recombine into them by the cell equations: LSTM h = o * tanh(c), c = f * c(t-1) + i * g with
    the gates the sigmoid / tanh of the traced pre-activations; GRU h = (1 - z) * n + z * h(t-1),
    n = tanh(pre_n), and reset-after pre_n = (x part) + r * hn."""
    p = CellParams.random(kind, 3, 4, seed=5, **opts)
    x = np.random.default_rng(6).normal(0, 1, (2, 5, 3))
    out, tr = reference.run_trace(p, x)
    want, _ = reference.run(p, x)
    assert np.array_equal(out, want)
    H = 4
    h_prev = np.concatenate([np.zeros((2, 1, H)), out[:, :-1]], axis=1)
    if kind == "lstm":
        pre = tr["pre"]
        assert np.allclose(tr["i"], reference.sigmoid(pre[..., :H]), atol=1e-15)
        assert np.allclose(tr["g"], np.tanh(pre[..., 2 * H:3 * H]), atol=1e-15)
    if kind == "cifg":  # rows (f or i), g, o; the other gate is one minus the computed one
        pre = tr["pre"]
        computed, derived = ("f", "i") if opts["coupling"] == "i=1-f" else ("i", "f")
        assert np.allclose(tr[computed], reference.sigmoid(pre[..., :H]), atol=1e-15)
        assert np.allclose(tr[derived], 1.0 - tr[computed], atol=1e-15)
        assert np.allclose(tr["g"], np.tanh(pre[..., H:2 * H]), atol=1e-15)
    if kind != "gru":
        c_prev = np.concatenate([np.zeros((2, 1, H)), tr["cell"][:, :-1]], axis=1)
        assert np.allclose(tr["cell"], tr["f"] * c_prev + tr["i"] * tr["g"], atol=1e-12)
        assert np.allclose(out, tr["o"] * np.tanh(tr["cell"]), atol=1e-12)
    else:
        reset = opts["reset"]
        assert np.allclose(tr["n"], np.tanh(tr["pre_n"]), atol=1e-15)
        assert np.allclose(out, (1 - tr["z"]) * tr["n"] + tr["z"] * h_prev, atol=1e-12)
        if reset == "after":
            xn = x @ p.w_ih[2 * H:].T + p.b_ih[2 * H:]
            assert np.allclose(tr["pre_n"], xn + tr["r"] * tr["hn"], atol=1e-12)
        else:
            assert np.allclose(tr["rh"], tr["r"] * h_prev, atol=1e-15)


@pytest.mark.parametrize("coupling", ["i=1-f", "f=1-i"])
def test_cifg_matches_torch_lstm_with_negated_rows(coupling):
    """CIFG against PyTorch, independently: since 1 - sigmoid(a) = sigmoid(-a), a CIFG cell equals an
    nn.LSTM whose derived gate's rows are the computed gate's rows negated (weights and biases).
    float64, 1e-9."""
    I, H = 4, 6
    p = CellParams.random("cifg", I, H, seed=21, scale=1.3, coupling=coupling)
    comp, g, o = (slice(k * H, (k + 1) * H) for k in range(3))

    def rows(a):
        if coupling == "i=1-f":  # LSTM rows i, f, g, o with i = -f rows
            return np.concatenate([-a[comp], a[comp], a[g], a[o]])
        return np.concatenate([a[comp], -a[comp], a[g], a[o]])  # f = -i rows

    m = torch.nn.LSTM(I, H, batch_first=True).double()
    with torch.no_grad():
        for name, a in (("weight_ih_l0", p.w_ih), ("weight_hh_l0", p.w_hh), ("bias_ih_l0", p.b_ih),
                        ("bias_hh_l0", p.b_hh)):
            getattr(m, name).copy_(torch.from_numpy(rows(a)))
    x, h0, c0 = _inputs(I, H, B=3, T=7, seed=4)
    with torch.no_grad():
        yt, (hn, cn) = m(torch.from_numpy(x), (torch.from_numpy(h0[None]), torch.from_numpy(c0[None])))
    y, (h, c) = run(p, x, (h0, c0))
    assert np.max(np.abs(y - yt.numpy())) <= 1e-9
    assert np.max(np.abs(c - cn[0].numpy())) <= 1e-9 and np.max(np.abs(h - hn[0].numpy())) <= 1e-9
    # the two conventions are different cells on the same weights
    other = p.replace(coupling="f=1-i" if coupling == "i=1-f" else "i=1-f")
    assert np.max(np.abs(run(other, x, (h0, c0))[0] - y)) > 1e-3
