"""Gateware building blocks against the golden model, in Amaranth's simulator.

- ``rtl.requant.requantize``: every rounding x overflow mode on many
  ``(value shape, from_frac, fmt)`` combinations (left and right shifts, shifts
  wider than the value, unsigned sources and targets); narrow values are
  checked exhaustively, wide ones on their edges plus random codes.
- ``rtl.activation.ActivationUnit``: every hardware method for sigmoid and tanh,
  every input code streamed back to back, each output checked against
  ``Activation.evaluate`` exactly ``LATENCY`` cycles later; plus gaps in
  ``valid_in``, corner formats, and the default-sized formats.
"""
import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Fragment, Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from model.config import ActSpec
from model.activations import make_activation
from model.fixedpoint import Fmt, OVERFLOW_MODES, ROUNDING_MODES, requantize as model_requantize
from rtl.activation import ActivationUnit, HW_METHODS
from rtl.requant import align, requantize, resize


# ---- requantize ---------------------------------------------------------------------

#: (value shape, from_frac, target format)
REQUANT_CASES = [
    (signed(8), 4, "s2.2"),      # right shift 2 into a narrower format
    (signed(8), 7, "s1.6"),      # shift 1: every odd code is a tie
    (signed(8), 2, "s4.4"),      # left shift 2, can overflow
    (signed(8), 3, "s8.3"),      # left shift into a wide format, never overflows
    (signed(8), -2, "s12.0"),    # negative from_frac: left shift 2
    (signed(8), 6, "u1.3"),      # signed -> unsigned: negatives saturate to 0
    (signed(8), 8, "u0.3"),      # unsigned target without integer bits
    (unsigned(8), 5, "u2.1"),    # unsigned -> unsigned
    (unsigned(8), 3, "s3.2"),    # unsigned -> signed
    (unsigned(6), 0, "u3.3"),    # unsigned left shift 3, can overflow
    (signed(9), 0, "s8.0"),      # value one bit wider than the target, no shift
    (signed(9), 2, "s6.0"),      # one bit wider after the shift; rounding carries into overflow
    (signed(6), 9, "s2.0"),      # shift wider than the value
    (signed(6), 6, "s2.0"),      # shift exactly the value's width
    (signed(6), 5, "s2.0"),      # only the sign bit kept
    (unsigned(4), 4, "u1.0"),    # unsigned, every bit dropped
    (unsigned(5), 8, "u1.1"),    # unsigned value shifted out entirely
    (signed(2), 1, "s2.0"),      # tiny
    (unsigned(1), 0, "u1.0"),    # 1-bit
    (signed(24), 20, "s2.5"),    # wide, shift 15
    (signed(32), 10, "s4.12"),   # wide, left shift 2
    (unsigned(20), 16, "s2.14"), # wide unsigned -> signed
    (signed(36), 30, "s5.11"),   # accumulator-like
]


def _shape_limits(shape):
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def _requant_values(shape, from_frac, fmt, rng):
    """Every code for narrow shapes; edges, ties and random codes for wide ones."""
    lo, hi = _shape_limits(shape)
    if shape.width <= 10:
        return np.arange(lo, hi + 1, dtype=np.int64)
    s = from_frac - fmt.frac_bits
    vals = {lo, lo + 1, hi - 1, hi, 0, 1, -1}
    for b in (fmt.max_int, fmt.max_int + 1, fmt.min_int, fmt.min_int - 1, 0, 1, -1, 2, -2):
        if s > 0:
            c = b << s
            h = 1 << (s - 1)
            offs = (-h - 1, -h, -h + 1, -1, 0, 1, h - 1, h, h + 1)
        else:
            c = b >> -s
            offs = (-1, 0, 1)
        vals.update(c + o for o in offs)
    vals.update(int(v) for v in rng.integers(lo, hi, size=300, endpoint=True))
    return np.array(sorted(v for v in vals if lo <= v <= hi), dtype=np.int64)


class _RequantBank(Elaboratable):
    """One requantize expression per case, each fed by its own input signal."""

    def __init__(self, cases, rounding, overflow):
        self.ins, self.outs, self.flags = [], [], []
        self._exprs = []
        for shape, from_frac, fmt in cases:
            fmt = Fmt.parse(fmt)
            i = Signal(shape)
            out, flag = requantize(i, from_frac, fmt, rounding, overflow)
            assert out.shape() == (signed if fmt.signed else unsigned)(fmt.width)
            assert len(flag) == 1
            o, f = Signal(out.shape()), Signal()
            self.ins.append(i), self.outs.append(o), self.flags.append(f)
            self._exprs += [o.eq(out), f.eq(flag)]

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self._exprs
        return m


@pytest.mark.parametrize("overflow", OVERFLOW_MODES)
@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_requantize_matches_model(rounding, overflow):
    rng = np.random.default_rng(hash((rounding, overflow)) % 2**32)
    dut = _RequantBank(REQUANT_CASES, rounding, overflow)
    vals = [_requant_values(shape, ff, Fmt.parse(f), rng) for shape, ff, f in REQUANT_CASES]
    expect = [model_requantize(v, ff, Fmt.parse(f), rounding, overflow, return_flags=True)
              for v, (_, ff, f) in zip(vals, REQUANT_CASES)]
    got = [([], []) for _ in REQUANT_CASES]
    n = max(len(v) for v in vals)

    async def bench(ctx):
        for k in range(n):
            active = [c for c in range(len(vals)) if k < len(vals[c])]
            for c in active:
                ctx.set(dut.ins[c], int(vals[c][k]))
            for c in active:
                got[c][0].append(ctx.get(dut.outs[c]))
                got[c][1].append(ctx.get(dut.flags[c]))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    for c, (shape, ff, f) in enumerate(REQUANT_CASES):
        out, flag = np.array(got[c][0]), np.array(got[c][1], dtype=bool)
        bad = np.flatnonzero((out != expect[c][0]) | (flag != expect[c][1]))
        assert bad.size == 0, (
            f"{shape} from_frac={ff} -> {f} {rounding}/{overflow}: value {vals[c][bad[0]]} gave "
            f"({out[bad[0]]}, {flag[bad[0]]}), model ({expect[c][0][bad[0]]}, {expect[c][1][bad[0]]}); "
            f"{bad.size} mismatches")


def test_requantize_rejects_bad_arguments():
    v = Signal(signed(8))
    with pytest.raises(ValueError, match="rounding"):
        requantize(v, 4, Fmt.parse("s2.2"), "nearest", "saturate")
    with pytest.raises(ValueError, match="overflow"):
        requantize(v, 4, Fmt.parse("s2.2"), "truncate", "clip")
    with pytest.raises(ValueError, match="from_frac"):
        requantize(v, 1.5, Fmt.parse("s2.2"), "truncate", "wrap")
    with pytest.raises(ValueError, match="shift"):
        align(v, -1)
    with pytest.raises(ValueError, match="width"):
        resize(v, 0, True)


def test_align_and_resize_shapes():
    v = Signal(signed(8))
    assert align(v, 3).shape() == signed(11)
    assert align(Signal(4), 0).shape() == unsigned(4)
    assert resize(v, 12, True).shape() == signed(12)
    assert resize(v, 5, False).shape() == unsigned(5)
    # a string format is accepted too
    out, _ = requantize(v, 4, "u2.6", "half_even", "saturate")
    assert out.shape() == unsigned(8)


# ---- ActivationUnit -------------------------------------------------------------------

#: The activation latency, stated by hand (model.latency.ACT must agree).
LAT = 5


def _run_stream(unit, codes, valids):
    """Drive one code per cycle; return per-cycle (valid_out, y) lists, ``unit.latency`` cycles longer."""
    n = len(codes)
    vo, ys = [], []

    async def bench(ctx):
        for t in range(n + unit.latency):
            if t < n:
                ctx.set(unit.x, int(codes[t]))
                ctx.set(unit.valid_in, int(valids[t]))
            else:
                ctx.set(unit.valid_in, 0)
            vo.append(ctx.get(unit.valid_out))   # y, valid_out are registers: pre-edge values
            ys.append(ctx.get(unit.y))
            await ctx.tick()

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(vo), np.array(ys, dtype=np.int64)


def _check_stream(act, codes, valids=None, lat=LAT):
    unit = ActivationUnit(act)
    assert unit.latency == lat
    codes = np.asarray(codes, dtype=np.int64)
    valids = np.ones(len(codes), dtype=np.int64) if valids is None else np.asarray(valids)
    vo, ys = _run_stream(unit, codes, valids)
    assert not vo[:lat].any(), "valid_out before the first input could arrive"
    np.testing.assert_array_equal(vo[lat:], valids, err_msg="valid_out is not valid_in delayed by the latency")
    want = act.evaluate(codes)
    got = ys[lat:]
    sel = valids.astype(bool)
    bad = np.flatnonzero(sel & (got != want))
    assert bad.size == 0, (f"{act}: x={codes[bad[0]]} gave y={got[bad[0]]}, model {want[bad[0]]}; "
                           f"{bad.size} mismatches")


def _spec(fn, method, size=None, rng=None):
    if method in ("lut", "lut_interp"):
        return ActSpec(method, size or 32, rng or (8.0 if fn == "sigmoid" else 4.0))
    return ActSpec(method)


SMALL_OUT = {"sigmoid": "u1.10", "tanh": "s1.10"}


@pytest.mark.parametrize("method", HW_METHODS)
@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_activation_every_code_back_to_back(fn, method):
    act = make_activation(fn, _spec(fn, method), "s4.6", SMALL_OUT[fn])
    _check_stream(act, act.codes())


#: Corner formats: index shifts s < 0, s = 0, s = 1; sigmoid into a signed
#: format (pos_max clamp), tanh without clamp; unsigned inputs; positive
#: pwl term shifts (out_frac < in_frac + slope_shift).
CORNERS = [
    ("sigmoid", ActSpec("lut", 256, 2.0), "s3.4", "u1.10"),          # lut, s = -2
    ("tanh", ActSpec("lut", 32, 4.0), "s3.4", "s1.10"),              # lut, s = 0
    ("sigmoid", ActSpec("lut_interp", 64, 2.0), "s3.4", "u1.10"),    # interp, s = 0
    ("tanh", ActSpec("lut_interp", 256, 2.0), "s3.4", "s1.10"),      # interp, s = -2
    ("tanh", ActSpec("lut_interp", 16, 4.0), "s3.4", "s1.10"),       # interp, s = 1
    ("sigmoid", ActSpec("lut_interp", 16, 8.0), "s4.6", "s1.10"),    # signed sigmoid out
    ("sigmoid", ActSpec("pwl"), "s4.6", "s1.10"),                    # top segment clamped
    ("sigmoid", ActSpec("hard"), "s4.6", "s1.10"),
    ("tanh", ActSpec("pwl"), "s4.6", "s2.8"),                        # no clamp needed
    ("sigmoid", ActSpec("pwl"), "u3.5", "u1.10"),                    # unsigned input
    ("tanh", ActSpec("lut_interp", 32, 4.0), "u3.5", "s1.10"),
    ("sigmoid", ActSpec("lut", 64, 8.0), "u3.5", "u0.8"),            # u0.8: pos_max < one
    ("sigmoid", ActSpec("pwl"), "s3.7", "u1.5"),                     # term shifts > 0
    ("tanh", ActSpec("pwl"), "s3.7", "s1.5"),
    ("tanh", ActSpec("hard"), "s3.7", "s1.5"),
    ("sigmoid", ActSpec("pwl"), "s3.1", "u1.8"),                     # coarse input: equal lo_raw
    ("tanh", ActSpec("pwl"), "s3.1", "s1.8"),
]


@pytest.mark.parametrize("fn,spec,in_fmt,out_fmt", CORNERS,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}" for c in CORNERS])
def test_activation_corner_formats(fn, spec, in_fmt, out_fmt):
    act = make_activation(fn, spec, in_fmt, out_fmt)
    _check_stream(act, act.codes())


def test_activation_gaps_in_valid():
    rng = np.random.default_rng(7)
    act = make_activation("sigmoid", _spec("sigmoid", "lut_interp"), "s4.6", "u1.10")
    codes = rng.permutation(act.codes())[:600]
    valids = rng.integers(0, 2, size=len(codes))
    valids[:3] = [1, 0, 1]
    _check_stream(act, codes, valids)


@pytest.mark.parametrize("fn,out_fmt", [("sigmoid", "u1.15"), ("tanh", "s1.15")])
def test_activation_default_formats(fn, out_fmt):
    rng = np.random.default_rng(11 if fn == "sigmoid" else 12)
    act = make_activation(fn, ActSpec("lut_interp", 64, 8.0 if fn == "sigmoid" else 4.0), "s5.11", out_fmt)
    i = act.in_fmt
    extremes = [i.min_int, i.min_int + 1, -1, 0, 1, i.max_int - 1, i.max_int]
    # the table edges +-1 LSB: |x| = range and the last interpolation interval
    hw = act.hw()
    edge = hw["index_max"] << hw["index_shift"]
    extremes += [edge - 1, edge, edge + 1, -edge + 1, -edge, -edge - 1]
    codes = np.concatenate([extremes, rng.integers(i.min_int, i.max_int, size=2500, endpoint=True)])
    _check_stream(act, codes)


@pytest.mark.parametrize("method", ["lut", "pwl", "hard"])
def test_activation_default_formats_other_methods(method):
    rng = np.random.default_rng(13)
    for fn, out_fmt in (("sigmoid", "u1.15"), ("tanh", "s1.15")):
        act = make_activation(fn, _spec(fn, method, size=256), "s5.11", out_fmt)
        i = act.in_fmt
        codes = np.concatenate([[i.min_int, i.min_int + 1, -1, 0, 1, i.max_int],
                                rng.integers(i.min_int, i.max_int, size=500, endpoint=True)])
        _check_stream(act, codes)


def test_activation_ports_and_properties():
    act = make_activation("sigmoid", ActSpec("lut_interp", 64, 8.0), "s5.11", "u1.15")
    unit = ActivationUnit(act)
    members = dict(unit.signature.members)
    assert set(members) == {"x", "valid_in", "y", "valid_out"}
    assert unit.x.shape() == signed(16)
    assert unit.y.shape() == unsigned(16)
    assert len(unit.valid_in) == len(unit.valid_out) == 1
    assert unit.latency == 5 and unit.act is act
    tanh = ActivationUnit(make_activation("tanh", ActSpec("pwl"), "u3.5", "s1.15"))
    assert tanh.x.shape() == unsigned(8) and tanh.y.shape() == signed(16)
    np.testing.assert_array_equal(unit.model([-5, 0, 5]), act.evaluate([-5, 0, 5]))
    for u in (unit, tanh):          # both elaborate (and so count as used)
        Fragment.get(u, None)


def test_activation_refuses_exact():
    act = make_activation("tanh", ActSpec("exact"), "s5.11", "s1.15")
    with pytest.raises(ValueError, match=r"hardware has no 'exact' method.*'lut', 'lut_interp', 'pwl', 'hard'"):
        ActivationUnit(act)


def test_activation_refuses_non_activation():
    with pytest.raises(TypeError, match="act must be"):
        ActivationUnit("sigmoid")


@pytest.mark.parametrize("method", ["lut_interp", "pwl"])
def test_activation_verilog_export(method):
    from amaranth.back import verilog
    fn = "sigmoid"
    act = make_activation(fn, _spec(fn, method, size=64), "s5.11", "u1.15")
    text = verilog.convert(ActivationUnit(act), name=f"act_{method}")
    assert f"module act_{method}" in text
    for port in ("x", "valid_in", "y", "valid_out", "clk", "rst"):
        assert port in text


def test_activation_latency_follows_model_latency(monkeypatch):
    """model.latency.ACT is the one definition: a larger value pads the unit's output, every value
    still exact; a value below the core's five stages is refused with a message."""
    from model import latency
    act = make_activation("sigmoid", ActSpec("lut_interp", 32, 8.0), Fmt.parse("s4.8"), Fmt.parse("u1.10"))
    codes = np.arange(-(1 << 11), 1 << 11, 7)
    monkeypatch.setattr(latency, "ACT", 7)
    _check_stream(act, codes, lat=7)
    monkeypatch.setattr(latency, "ACT", 4)
    with pytest.raises(ValueError, match=r"model.latency.ACT = 4 is below the activation unit's 5 core stages"):
        ActivationUnit(act)
