"""Cell parameters: construction, validation, PyTorch import, files, quantization."""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from model.config import Config
from model.fixedpoint import quantize as fx_quantize
from model.params import CellParams, QParams, from_torch, quantize
from model.reference import run

FORMATS = {"input": "s4.12", "weight": "s2.14", "bias": "s4.12", "pre": "s5.11", "gate": "u1.15",
           "candidate": "s1.15", "cell": "s4.12", "cell_act": "s1.15", "hidden": "s1.15"}


def make_config(kind="lstm", I=5, H=8, opts=None, rounding="half_even", **fmts):
    opts = dict(opts or {})
    formats = {**FORMATS, **fmts}
    if opts.get("peephole", "none") != "none":
        formats.setdefault("peephole", "s2.14")
    return Config.from_dict({
        "name": "t", "kind": kind, "input_size": I, "hidden_size": H, **opts,
        "formats": formats, "param_rounding": rounding,
        "sigmoid": {"method": "lut_interp", "size": 64, "range": 8.0},
        "tanh": {"method": "lut_interp", "size": 64, "range": 4.0},
    })


VARIANTS = [("lstm", {"peephole": "none"}), ("lstm", {"peephole": "c_prev"}), ("lstm", {"peephole": "c_new"}),
            ("gru", {"reset": "after"}), ("gru", {"reset": "before"}),
            ("cifg", {"coupling": "i=1-f"}), ("cifg", {"coupling": "f=1-i"})]
GATES = {"lstm": 4, "gru": 3, "cifg": 3}  # weight rows per unit, by hand


def vid(v):
    return v if isinstance(v, str) else "-".join(v.values())


def peephole_of(opts):
    return opts.get("peephole", "none")


def split_bias(opts):
    """Only the reset-after GRU keeps b_hn apart."""
    return opts.get("reset") == "after"



# ---- construction and validation ---------------------------------------------------------

@pytest.mark.parametrize("kind,opts", VARIANTS, ids=vid)
def test_random_shapes_and_seed(kind, opts):
    p = CellParams.random(kind, 5, 8, seed=3, **opts)
    G = GATES[kind]
    assert (p.gates, p.input_size, p.hidden_size) == (G, 5, 8)
    assert p.w_ih.shape == (G * 8, 5) and p.w_hh.shape == (G * 8, 8)
    assert p.b_ih.shape == p.b_hh.shape == (G * 8,)
    assert (p.w_peep is None) == (peephole_of(opts) == "none")
    for a in (p.w_ih, p.w_hh, p.b_ih, p.b_hh):
        assert a.dtype == np.float64
        assert np.all(np.abs(a) < 1 / math.sqrt(8))
    assert p == CellParams.random(kind, 5, 8, seed=3, **opts)
    assert p != CellParams.random(kind, 5, 8, seed=4, **opts)


def test_random_scale():
    p = CellParams.random("gru", 4, 100, seed=0, scale=3.0)
    assert np.abs(p.w_ih).max() > 2.5 and np.abs(p.w_ih).max() < 3.0


@pytest.mark.parametrize("kind,opts", VARIANTS, ids=vid)
def test_for_config_and_check_matches(kind, opts):
    cfg = make_config(kind, 3, 6, opts)
    p = CellParams.for_config(cfg, seed=1)
    assert (p.kind, p.input_size, p.hidden_size, p.options) == (kind, 3, 6, opts)
    p.check_matches(cfg)


@pytest.mark.parametrize("change,field", [
    ({"kind": "gru"}, "kind"), ({"input_size": 4}, "input_size"), ({"hidden_size": 7}, "hidden_size"),
    ({"peephole": "c_prev"}, "peephole"),
])
def test_check_matches_names_field(change, field):
    p = CellParams.random("lstm", 3, 6, seed=0)
    args = {"kind": "lstm", "I": 3, "H": 6, "opts": {"peephole": "none"}}
    for k, v in change.items():
        if k == "peephole":
            args["opts"] = {"peephole": v}
        elif k == "kind":
            args.update(kind=v, opts={})
        else:
            args[{"input_size": "I", "hidden_size": "H"}[k]] = v
    with pytest.raises(ValueError, match=rf"\b{field} is "):
        p.check_matches(make_config(**args))


def test_check_matches_reset_gru_only():
    g = CellParams.random("gru", 3, 6, seed=0, reset="after")
    with pytest.raises(ValueError, match=r"reset is 'after' in the parameters but 'before'"):
        g.check_matches(make_config("gru", 3, 6, {"reset": "before"}))
    c = CellParams.random("cifg", 3, 6, seed=0, coupling="f=1-i")
    with pytest.raises(ValueError, match=r"coupling is 'f=1-i' in the parameters but 'i=1-f'"):
        c.check_matches(make_config("cifg", 3, 6, {"coupling": "i=1-f"}))


def _good(kind="lstm", I=3, H=2):
    G = GATES[kind]
    return dict(kind=kind, w_ih=np.zeros((G * H, I)), w_hh=np.zeros((G * H, H)),
                b_ih=np.zeros(G * H), b_hh=np.zeros(G * H))


@pytest.mark.parametrize("changes,match", [
    ({"kind": "rnn"}, r"kind must be one of 'lstm', 'gru', 'cifg', not 'rnn'"),
    ({"options": {"peephole": "yes"}}, r"peephole must be one of"),
    ({"kind": "gru", "options": {"reset": "middle"}}, r"reset must be one of"),
    ({"kind": "gru", "w_ih": np.zeros((6, 3)), "w_hh": np.zeros((6, 2)), "b_ih": np.zeros(6),
      "b_hh": np.zeros(6), "options": {"peephole": "c_prev"}, "w_peep": np.zeros((3, 2))},
     r"peephole is not an option of kind = 'gru' \(it takes: reset\)"),
    ({"kind": "cifg", "w_ih": np.zeros((6, 3)), "w_hh": np.zeros((6, 2)), "b_ih": np.zeros(6),
      "b_hh": np.zeros(6), "w_peep": np.zeros((3, 2))}, r"w_peep is given but a cifg-lstm \(i=1-f\) has no peepholes"),
    ({"kind": "cifg", "w_ih": np.zeros((8, 3)), "w_hh": np.zeros((8, 2)), "b_ih": np.zeros(8),
      "b_hh": np.zeros(8)}, r"w_hh has shape \(8, 2\); expected \(3\*hidden, hidden\) .* = \(6, 2\)"),
    ({"w_hh": np.zeros((8, 3))}, r"w_hh has shape \(8, 3\); expected \(4\*hidden, hidden\) .* = \(12, 3\)"),
    ({"w_hh": np.zeros(8)}, r"w_hh must be a 2-D array .* got \(8,\)"),
    ({"w_ih": np.zeros((6, 3))}, r"w_ih has shape \(6, 3\); expected \(4\*hidden, input\) .* = \(8, 3\)"),
    ({"w_ih": np.zeros(8)}, r"w_ih must be a 2-D array"),
    ({"b_ih": np.zeros(7)}, r"b_ih has shape \(7,\); expected \(4\*hidden,\) .* = \(8,\)"),
    ({"b_hh": np.zeros((8, 1))}, r"b_hh has shape \(8, 1\)"),
    ({"options": {"peephole": "c_prev"}}, r"peephole-lstm \(c_prev\) needs w_peep, an array of shape \(3, 2\)"),
    ({"options": {"peephole": "c_new"}, "w_peep": np.zeros((4, 2))},
     r"w_peep has shape \(4, 2\); expected .* = \(3, 2\)"),
    ({"w_peep": np.zeros((3, 2))}, r"w_peep is given but a lstm has no peepholes"),
    ({"b_hh": np.full(8, np.nan)}, r"b_hh contains NaN"),
    ({"b_ih": None}, r"b_ih is required"),
])
def test_cellparams_rejects(changes, match):
    with pytest.raises(ValueError, match=match):
        CellParams(**{**_good(), **changes})


def test_cellparams_copies_inputs():
    d = _good()
    p = CellParams(**d)
    d["w_ih"][0, 0] = 5.0
    assert p.w_ih[0, 0] == 0.0


# ---- PyTorch import ----------------------------------------------------------------------

@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
def test_from_torch_roundtrip(cls, bias, batch_first):
    torch.manual_seed(0)
    m = cls(4, 6, bias=bias, batch_first=batch_first)  # float32 module: import widens to float64
    p = from_torch(m)
    assert p.kind == cls.__name__.lower() and p.options == ({"peephole": "none"} if p.kind == "lstm"
                                                            else {"reset": "after"})
    assert np.array_equal(p.w_ih, m.weight_ih_l0.detach().double().numpy())
    assert np.array_equal(p.w_hh, m.weight_hh_l0.detach().double().numpy())
    if bias:
        assert np.array_equal(p.b_hh, m.bias_hh_l0.detach().double().numpy())
    else:
        assert not np.any(p.b_ih) and not np.any(p.b_hh)
    m = m.double()
    x = np.random.default_rng(1).normal(size=(3, 7, 4))
    xt = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    with torch.no_grad():
        yt = m(xt)[0].numpy()
    if not batch_first:
        yt = yt.transpose(1, 0, 2)
    y, _ = run(p, x)
    assert np.max(np.abs(y - yt)) <= 1e-9


def test_from_torch_does_not_alias():
    m = torch.nn.GRU(2, 3)
    p = from_torch(m)
    with torch.no_grad():
        m.weight_ih_l0.add_(1.0)
    assert not np.array_equal(p.w_ih, m.weight_ih_l0.detach().double().numpy())


@pytest.mark.parametrize("module,exc,match", [
    (lambda: torch.nn.LSTM(3, 4, num_layers=2), ValueError, r"LSTM has num_layers = 2; only single-layer"),
    (lambda: torch.nn.GRU(3, 4, num_layers=3), ValueError, r"GRU has num_layers = 3"),
    (lambda: torch.nn.LSTM(3, 4, bidirectional=True), ValueError, r"LSTM is bidirectional"),
    (lambda: torch.nn.GRU(3, 4, bidirectional=True), ValueError, r"GRU is bidirectional"),
    (lambda: torch.nn.LSTM(3, 4, proj_size=2), ValueError, r"proj_size = 2"),
    (lambda: torch.nn.Linear(3, 4), TypeError, r"torch.nn.LSTM, torch.nn.GRU, not Linear"),
    (lambda: torch.nn.RNN(3, 4), TypeError, r"not RNN"),
])
def test_from_torch_rejects(module, exc, match):
    with pytest.raises(exc, match=match):
        from_torch(module())


# ---- files -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,opts", VARIANTS, ids=vid)
def test_npz_roundtrip_exact(tmp_path, kind, opts):
    p = CellParams.random(kind, 3, 5, seed=9, scale=2.0, **opts)
    p.b_hh[0] = 1e-300  # awkward values survive exactly
    p.w_ih[0, 0] = -0.1
    path = tmp_path / "cell.params"  # no .npz suffix: saved under exactly this name
    p.save(path)
    assert path.is_file()
    q = CellParams.load(path)
    assert q == p
    assert (q.kind, q.options) == (kind, opts)
    assert all(type(v) is str for v in (q.kind, *q.options.values()))
    for n in ("w_ih", "w_hh", "b_ih", "b_hh"):
        assert getattr(q, n).tobytes() == getattr(p, n).tobytes()


def test_load_rejects_other_npz(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"not a CellParams file \(missing kind"):
        CellParams.load(path)


# ---- quantization ------------------------------------------------------------------------

def _exact_round(x, fmt, rounding):
    """Unbounded exact rounding of x * 2**frac (Fraction), independent of model.fixedpoint."""
    v = Fraction(float(x)) * 2 ** fmt.frac_bits
    if rounding == "truncate":
        return math.floor(v)
    if rounding == "half_up":
        return math.floor(v + Fraction(1, 2))
    return round(v)  # Python rounds a Fraction half to even


def _expected(values, fmt, rounding):
    """(ints, saturated count) computed element by element."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    raw = [_exact_round(v, fmt, rounding) for v in flat]
    sat = sum(1 for r in raw if not fmt.min_int <= r <= fmt.max_int)
    ints = [min(fmt.max_int, max(fmt.min_int, r)) for r in raw]
    return np.array(ints, dtype=np.int64).reshape(np.shape(values)), sat


@pytest.mark.parametrize("rounding", ["half_even", "half_up", "truncate"])
@pytest.mark.parametrize("kind,opts", VARIANTS, ids=vid)
def test_quantize_values(kind, opts, rounding):
    cfg = make_config(kind, 4, 6, opts, rounding=rounding)
    p = CellParams.for_config(cfg, seed=2, scale=1.0)
    q = quantize(p, cfg)
    assert isinstance(q, QParams)
    assert (q.kind, q.options) == (kind, opts)
    wf, bf = cfg.formats["weight"], cfg.formats["bias"]
    H = 6
    assert np.array_equal(q.w_ih, _expected(p.w_ih, wf, rounding)[0])
    assert np.array_equal(q.w_hh, _expected(p.w_hh, wf, rounding)[0])
    b = p.b_ih + p.b_hh
    if split_bias(opts):
        b[2 * H:] = p.b_ih[2 * H:]
        assert np.array_equal(q.bias_hn, _expected(p.b_hh[2 * H:], bf, rounding)[0])
        assert np.array_equal(q.bias_hn, fx_quantize(p.b_hh[2 * H:], bf, rounding))
    else:
        assert q.bias_hn is None
    assert np.array_equal(q.bias, _expected(b, bf, rounding)[0])
    assert np.array_equal(q.bias, fx_quantize(b, bf, rounding))
    if peephole_of(opts) != "none":
        assert np.array_equal(q.w_peep, _expected(p.w_peep, cfg.formats["peephole"], rounding)[0])
    else:
        assert q.w_peep is None
    for name, fmt in (("w_ih", wf), ("w_hh", wf), ("bias", bf), ("bias_hn", bf),
                      ("w_peep", cfg.formats["peephole"])):
        a = getattr(q, name)
        if a is not None:
            assert a.dtype == np.int64
            assert fmt.contains(a)
            assert q.saturated[name] == 0
    assert q.total_saturated == 0


def test_gru_after_bias_split_by_hand():
    cfg = make_config("gru", 1, 2, {"reset": "after"}, bias="s4.4")
    H = 2
    p = CellParams("gru", np.zeros((6, 1)), np.zeros((6, 2)),
                   b_ih=np.array([0.5, 0.25, 1.0, -1.0, 0.125, -0.0625]),
                   b_hh=np.array([0.25, 0.5, 2.0, 1.0, 3.0, 0.75]))
    q = quantize(p, cfg)
    # r, z rows combined; n rows b_in only; b_hn separate (all in units of 2**-4)
    assert q.bias.tolist() == [12, 12, 48, 0, 2, -1]
    assert q.bias_hn.tolist() == [48, 12]
    before = quantize(p.replace(reset="before"), cfg.replace(reset="before"))
    assert before.bias.tolist() == [12, 12, 48, 0, 50, 11] and before.bias_hn is None
    assert H == len(q.bias_hn)


@pytest.mark.parametrize("rounding", ["half_even", "half_up", "truncate"])
@pytest.mark.parametrize("kind,opts", VARIANTS, ids=vid)
def test_saturation_counts(kind, opts, rounding):
    cfg = make_config(kind, 5, 8, opts, rounding=rounding, bias="s2.12")
    p = CellParams.for_config(cfg, seed=4, scale=3.5)  # weights in s2.14 cover [-2, 2)
    q = quantize(p, cfg)
    wf, bf = cfg.formats["weight"], cfg.formats["bias"]
    exp = {"w_ih": _expected(p.w_ih, wf, rounding), "w_hh": _expected(p.w_hh, wf, rounding)}
    H = 8
    b = p.b_ih + p.b_hh
    if split_bias(opts):
        b[2 * H:] = p.b_ih[2 * H:]
        exp["bias_hn"] = _expected(p.b_hh[2 * H:], bf, rounding)
    exp["bias"] = _expected(b, bf, rounding)
    if peephole_of(opts) != "none":
        exp["w_peep"] = _expected(p.w_peep, cfg.formats["peephole"], rounding)
    assert set(q.saturated) == set(exp)
    for name, (ints, sat) in exp.items():
        assert np.array_equal(getattr(q, name), ints), name
        assert q.saturated[name] == sat, name
    assert exp["w_ih"][1] > 0 and exp["w_hh"][1] > 0  # the test does exercise saturation
    assert q.total_saturated == sum(s for _, s in exp.values())
    assert np.count_nonzero(q.w_hh == wf.max_int) + np.count_nonzero(q.w_hh == wf.min_int) >= exp["w_hh"][1]


@pytest.mark.parametrize("rounding,expect", [("half_even", 1), ("half_up", 1), ("truncate", 0)])
def test_saturation_at_the_boundary(rounding, expect):
    """max + 1/2 LSB rounds up (max_int is odd) and saturates, except when truncating; min - 1/2 LSB
    saturates only when truncating (min_int is even)."""
    cfg = make_config("lstm", 1, 1, rounding=rounding, weight="s2.4")
    wf = cfg.formats["weight"]
    p = CellParams("lstm", np.zeros((4, 1)), np.zeros((4, 1)), np.zeros(4), np.zeros(4))
    p.w_ih[0, 0] = wf.max + wf.resolution / 2
    p.w_ih[1, 0] = wf.max + wf.resolution / 4  # rounds to max: not a saturation
    p.w_ih[2, 0] = wf.min - wf.resolution / 2  # min_int is even: half_even and half_up give min
    q = quantize(p, cfg)
    assert q.w_ih[0, 0] == wf.max_int and q.w_ih[1, 0] == wf.max_int and q.w_ih[2, 0] == wf.min_int
    lower = {"half_even": 0, "half_up": 0, "truncate": 1}[rounding]
    assert q.saturated["w_ih"] == expect + lower


@pytest.mark.parametrize("kind,opts", VARIANTS, ids=vid)
def test_dequantize(kind, opts):
    cfg = make_config(kind, 4, 6, opts)
    p = CellParams.for_config(cfg, seed=5, scale=1.0)
    q = quantize(p, cfg)
    d = q.dequantize(cfg)
    assert (d.kind, d.options) == (kind, opts)
    wf, bf = cfg.formats["weight"], cfg.formats["bias"]
    assert np.array_equal(d.w_ih, q.w_ih * 2.0 ** -wf.frac_bits)
    assert np.max(np.abs(d.w_hh - p.w_hh)) <= wf.resolution / 2
    # the float biases the cell sees are preserved to within the rounding
    H = 6
    if split_bias(opts):
        assert np.array_equal(d.b_hh[:2 * H], np.zeros(2 * H))
        assert np.array_equal(d.b_hh[2 * H:], q.bias_hn * bf.resolution)
        assert np.max(np.abs(d.b_hh - p.b_hh)[2 * H:]) <= bf.resolution / 2
        assert np.max(np.abs(d.b_ih[2 * H:] - p.b_ih[2 * H:])) <= bf.resolution / 2
    else:
        assert not np.any(d.b_hh)
        assert np.max(np.abs(d.b_ih - (p.b_ih + p.b_hh))) <= bf.resolution / 2
    assert np.array_equal(d.b_ih, q.bias * bf.resolution)
    if peephole_of(opts) != "none":
        assert np.array_equal(d.w_peep, q.w_peep * cfg.formats["peephole"].resolution)
    # quantizing the dequantized values is the identity
    assert quantize(d, cfg) == q
    # and the float cell barely moves
    x = np.random.default_rng(0).normal(size=(2, 5, 4))
    assert np.max(np.abs(run(d, x)[0] - run(p, x)[0])) < 1e-3


def test_quantize_checks_config():
    cfg = make_config("gru", 4, 6, {"reset": "before"})
    with pytest.raises(ValueError, match=r"reset is 'after'"):
        quantize(CellParams.random("gru", 4, 6, seed=0, reset="after"), cfg)


def test_qparams_validation():
    cfg = make_config("gru", 2, 3)
    q = quantize(CellParams.for_config(cfg, seed=0), cfg)
    with pytest.raises(ValueError, match=r"bias_hn is required"):
        QParams("gru", q.w_ih, q.w_hh, q.bias, None)
    with pytest.raises(ValueError, match=r"w_ih must hold integers"):
        QParams("gru", q.w_ih * 0.5, q.w_hh, q.bias, q.bias_hn)
    with pytest.raises(ValueError, match=r"bias has shape \(8,\)"):
        QParams("gru", q.w_ih, q.w_hh, q.bias[:8], q.bias_hn)
