"""Golden model: bit-exact against a scalar Python-int restatement of the contract, close to float."""
import copy

import numpy as np
import pytest

from model import golden, reference
from model.activations import make_activation
from model.config import Config
from model.fixedpoint import requantize_exact
from model.params import CellParams, quantize as quantize_params

BASE = {
    "name": "t", "kind": "lstm", "input_size": 3, "hidden_size": 5,
    "formats": {"input": "s3.8", "weight": "s2.7", "bias": "s3.6", "pre": "s4.7", "gate": "u1.9",
                "candidate": "s1.10", "cell": "s3.9", "cell_act": "s1.8", "hidden": "s1.9",
                "peephole": "s1.6"},
    "sigmoid": {"method": "lut", "size": 64, "range": 8.0},
    "tanh": {"method": "lut_interp", "size": 32, "range": 4.0},
    "modes": {"rounding": "half_even", "cell": {"rounding": "half_up"}, "hidden": {"rounding": "truncate"}},
    "lanes": 1,
}
VARIANTS = [
    {"kind": "lstm"}, {"kind": "lstm", "peephole": "c_prev"}, {"kind": "lstm", "peephole": "c_new"},
    {"kind": "gru", "reset": "after"}, {"kind": "gru", "reset": "before"},
    {"kind": "lstm", "sigmoid": {"method": "pwl"}, "tanh": {"method": "hard"},
     "modes": {"overflow": "wrap", "rounding": "half_up"}},
    {"kind": "cifg", "coupling": "i=1-f"}, {"kind": "cifg", "coupling": "f=1-i"},
    {"kind": "cifg", "coupling": "f=1-i", "sigmoid": {"method": "hard"}, "modes": {"overflow": "wrap"}},
]


def cfg_for(**changes):
    d = copy.deepcopy(BASE)
    d.update(changes)
    return Config.from_dict(d)


class Scalar:
    """The numerics contract restated per element with Python ints and Fraction rounding."""

    def __init__(self, cfg, q):
        self.c, self.q, f = cfg, q, cfg.formats
        self.F = {t: f[t].frac_bits for t in f if f[t] is not None}
        self.sig = make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"]).evaluate
        self.tanh = make_activation("tanh", cfg.tanh, f["pre"], f["candidate"]).evaluate
        self.tanh_c = make_activation("tanh", cfg.tanh, f["cell"], f["cell_act"]).evaluate
        self.sat = 0

    def rq(self, value, frac, point, tensor):
        m = self.c.mode(point)
        return requantize_exact(value, frac, self.c.fmt(tensor), m.rounding, m.overflow)

    def act(self, fn, v):
        return int(fn(np.array([v], dtype=np.int64))[0])

    def acc(self, row, x, h, extra=()):
        """Exact rational sum of W_x x + W_h h + b (+ extra terms), returned at frac A."""
        F, q = self.F, self.q
        terms = [(int(q.w_ih[row, j]) * int(x[j]), F["weight"] + F["input"]) for j in range(len(x))]
        terms += [(int(q.w_hh[row, j]) * int(h[j]), F["weight"] + F["hidden"]) for j in range(len(h))]
        terms += [(int(q.bias[row]), F["bias"])] + list(extra)
        A = max(fr for _, fr in terms)
        return sum(v << (A - fr) for v, fr in terms), A

    def lstm(self, x, h, c):
        """LSTM and peephole LSTM (rows i, f, g, o); CIFG (rows f, g, o with i = 1 - f, or rows
        i, g, o with f = 1 - i, the derived gate exact in the gate fraction)."""
        H, F, q = self.c.hidden_size, self.F, self.q
        peep = self.c.options.get("peephole", "none")
        coupling = self.c.options.get("coupling")
        pf = F["peephole"] + F["cell"]
        one = 1 << F["gate"]
        h2, c2 = [], []
        for k in range(H):
            def pre(gate, cc=None, prow=None):
                extra = [(int(q.w_peep[prow, k]) * cc, pf)] if cc is not None else []
                a, A = self.acc(gate * H + k, x, h, extra)
                return self.rq(a, A, "pre", "pre")
            if coupling is None:
                pi = pre(0, c[k] if peep != "none" else None, 0)
                pf_ = pre(1, c[k] if peep != "none" else None, 1)
                i, f, g = self.act(self.sig, pi), self.act(self.sig, pf_), self.act(self.tanh, pre(2))
                o_row = 3
            elif coupling == "i=1-f":
                f, g = self.act(self.sig, pre(0)), self.act(self.tanh, pre(1))
                i, o_row = one - f, 2
            else:
                i, g = self.act(self.sig, pre(0)), self.act(self.tanh, pre(1))
                f, o_row = one - i, 2
            C = max(F["gate"] + F["cell"], F["gate"] + F["candidate"])
            cn = self.rq((f * c[k] << (C - F["gate"] - F["cell"])) + (i * g << (C - F["gate"] - F["candidate"])),
                         C, "cell", "cell")
            cc = {"none": None, "c_prev": c[k], "c_new": cn}[peep]
            o = self.act(self.sig, pre(o_row, cc, 2))
            tc = self.act(self.tanh_c, cn)
            h2.append(self.rq(o * tc, F["gate"] + F["cell_act"], "hidden", "hidden"))
            c2.append(cn)
        return h2, c2

    def gru(self, x, h):
        H, F, q = self.c.hidden_size, self.F, self.q
        zero = [0] * H
        r = [self.act(self.sig, self.rq(*self.acc(k, x, h), "pre", "pre")) for k in range(H)]
        z = [self.act(self.sig, self.rq(*self.acc(H + k, x, h), "pre", "pre")) for k in range(H)]
        out = []
        for k in range(H):
            row = 2 * H + k
            if self.c.options["reset"] == "after":
                ax, A = self.acc(row, x, zero)  # W_in x + b_in
                ah, _ = self.acc(row, [0] * len(x), h, [(int(q.bias_hn[k]), F["bias"])])
                ah -= int(q.bias[row]) << (A - F["bias"])  # acc() always adds b_in; W_hn h + b_hn only
                hn = self.rq(ah, A, "gru_hn", "pre")
                N = max(A, F["gate"] + F["pre"])
                pre_n = self.rq((ax << (N - A)) + (r[k] * hn << (N - F["gate"] - F["pre"])), N, "pre", "pre")
            else:
                rh = [self.rq(r[j] * h[j], F["gate"] + F["hidden"], "gru_rh", "hidden") for j in range(H)]
                pre_n = self.rq(*self.acc(row, x, rh), "pre", "pre")
            n = self.act(self.tanh, pre_n)
            one = 1 << F["gate"]
            Q = max(F["gate"] + F["candidate"], F["gate"] + F["hidden"])
            v = ((one - z[k]) * n << (Q - F["gate"] - F["candidate"])) + (z[k] * h[k] << (Q - F["gate"] - F["hidden"]))
            out.append(self.rq(v, Q, "hidden", "hidden"))
        return out


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(str(x) for x in v.values())[:40])
def test_bit_exact_against_scalar_restatement(variant):
    cfg = cfg_for(**variant)
    p = CellParams.for_config(cfg, seed=3, scale=1.5)
    q = quantize_params(p, cfg)
    rng = np.random.default_rng(7)
    x = rng.uniform(-4, 4, (8, 12, cfg.input_size))
    res = golden.run(q, x, cfg)
    xq = golden.quantize_input(x, cfg)
    ref = Scalar(cfg, q)
    for b in range(x.shape[0]):
        h = [0] * cfg.hidden_size
        c = [0] * cfg.hidden_size
        for t in range(x.shape[1]):
            xs = [int(v) for v in xq[b, t]]
            if cfg.kind == "gru":
                h = ref.gru(xs, h)
            else:
                h, c = ref.lstm(xs, h, c)
            assert res.outputs[b, t].tolist() == h, f"batch {b} step {t}"
        assert res.state[0][b].tolist() == h
        if cfg.kind != "gru":
            assert res.state[1][b].tolist() == c


@pytest.mark.parametrize("variant", VARIANTS[:5], ids=lambda v: "-".join(str(x) for x in v.values()))
def test_state_carries_over_and_batch_is_independent(variant):
    cfg = cfg_for(**variant)
    q = quantize_params(CellParams.for_config(cfg, seed=1), cfg)
    x = np.random.default_rng(2).uniform(-2, 2, (3, 8, cfg.input_size))
    whole = golden.run(q, x, cfg)
    first = golden.run(q, x[:, :5], cfg)
    rest = golden.run(q, x[:, 5:], cfg, state=first.state)
    assert np.array_equal(whole.outputs, np.concatenate([first.outputs, rest.outputs], axis=1))
    one = golden.run(q, x[1:2], cfg)
    assert np.array_equal(one.outputs[0], whole.outputs[1])


@pytest.mark.parametrize("kind", ["lstm", "gru", "cifg"])
def test_trace_matches_outputs(kind):
    cfg = cfg_for(kind=kind)
    q = quantize_params(CellParams.for_config(cfg, seed=1), cfg)
    x = np.random.default_rng(2).uniform(-2, 2, (2, 4, cfg.input_size))
    res = golden.run(q, x, cfg, trace=True)
    assert np.array_equal(res.trace["hidden"], res.outputs)
    names = {"r", "z", "n", "pre_n"} if kind == "gru" else {"acc", "pre", "i", "f", "g", "o", "cell", "cell_act"}
    assert names <= set(res.trace)
    assert all(v.shape[:2] == (2, 4) for v in res.trace.values())


@pytest.mark.parametrize("kind,extra", [("lstm", {}), ("lstm", {"peephole": "c_prev"}), ("gru", {}),
                                        ("gru", {"reset": "before"}), ("cifg", {"coupling": "i=1-f"}),
                                        ("cifg", {"coupling": "f=1-i"})])
def test_close_to_float_reference(kind, extra):
    """16-bit activations and cell state, 12-bit weights, |w| < 1: max-abs error <= 1e-2 over 100 steps."""
    cfg = Config.from_dict({
        "name": "acc", "kind": kind, "input_size": 13, "hidden_size": 32, **extra,
        "formats": {"input": "s4.12", "weight": "s1.11", "bias": "s4.12", "pre": "s5.11", "gate": "u1.15",
                    "candidate": "s1.15", "cell": "s4.12", "cell_act": "s1.15", "hidden": "s1.15",
                    "peephole": "s1.11"},
        "sigmoid": {"method": "lut_interp", "size": 256, "range": 8.0},
        "tanh": {"method": "lut_interp", "size": 256, "range": 4.0},
    })
    p = CellParams.for_config(cfg, seed=11, scale=0.9)
    q = quantize_params(p, cfg)
    x = np.random.default_rng(5).uniform(-1, 1, (16, 100, 13))
    got = golden.run(q, x, cfg).outputs_float()
    want, _ = reference.run(p, x)
    err = np.abs(got - want)
    assert err.max() <= 1e-2, f"max-abs {err.max():.2e}, rms {np.sqrt((err ** 2).mean()):.2e}"


def test_saturation_is_counted():
    cfg = cfg_for(formats={**BASE["formats"], "cell": "s1.9"})
    q = quantize_params(CellParams.for_config(cfg, seed=1, scale=2.0), cfg)
    x = np.full((1, 20, 3), 3.0)
    res = golden.run(q, x, cfg)
    assert res.saturated["cell"] > 0


def test_bad_inputs():
    cfg = cfg_for()
    q = quantize_params(CellParams.for_config(cfg, seed=1), cfg)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, steps, 3\), not \(2, 3\)"):
        golden.run(q, np.zeros((2, 3)), cfg)
    with pytest.raises(ValueError, match="formats.input"):
        golden.run(q, np.full((1, 1, 3), 10 ** 6), cfg)
    with pytest.raises(ValueError, match=r"state h must have shape \(1, 5\)"):
        golden.run(q, np.zeros((1, 1, 3)), cfg, state=(np.zeros((2, 5), int), np.zeros((2, 5), int)))
    with pytest.raises(ValueError, match="qparams.kind = 'lstm' does not match"):
        golden.run(q, np.zeros((1, 1, 3)), cfg_for(kind="gru"))
    with pytest.raises(ValueError, match="qparams.w_ih has shape"):
        golden.run(q, np.zeros((1, 1, 4)), cfg_for(input_size=4))
