"""Formats, quantization and requantization against an independent Fraction-based definition."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.fixedpoint import (Fmt, FormatError, OVERFLOW_MODES, ROUNDING_MODES, bits_for, quantize,
                              quantize_exact, requantize, requantize_exact)

formats = st.builds(
    lambda s, i, f: Fmt(s, i + (1 if s else 0), f),
    st.booleans(), st.integers(0, 12), st.integers(1, 16))
modes = st.tuples(st.sampled_from(ROUNDING_MODES), st.sampled_from(OVERFLOW_MODES))


def test_format_properties():
    """s3.12: width 15, raw range [-16384, 16383], value range [-4, 4 - 2**-12]."""
    f = Fmt.parse("s3.12")
    assert (f.width, f.min_int, f.max_int) == (15, -16384, 16383)
    assert f.min == -4.0 and f.max == 4.0 - 2 ** -12 and f.resolution == 2 ** -12
    assert f.ap == "ap_fixed<15,3>" and str(f) == "s3.12"
    u = Fmt.parse("ap_ufixed<16,1>")
    assert (u.signed, u.int_bits, u.frac_bits, u.max_int) == (False, 1, 15, 65535)
    assert str(u) == "u1.15" and u.ap == "ap_ufixed<16,1>"


@given(formats)
def test_parse_print_roundtrip(f):
    assert Fmt.parse(str(f)) == f
    assert Fmt.parse(f.ap) == f


@pytest.mark.parametrize("text,needle", [
    ("s3", "cannot parse"), ("x3.4", "cannot parse"), ("s0.8", "int_bits must be >= 1"),
    ("u2.-1", "frac_bits must be >= 0"), ("s30.30", "width"), ("ap_fixed<1,1>", "at least 2"), (12, "must be a string"),
])
def test_parse_rejects(text, needle):
    with pytest.raises(FormatError, match=needle):
        Fmt.parse(text)


@settings(max_examples=400)
@given(st.integers(-(2 ** 40), 2 ** 40), st.integers(0, 24), formats, modes)
def test_requantize_matches_fraction(raw, from_frac, fmt, mode):
    got = int(requantize(np.array([raw]), from_frac, fmt, *mode)[0])
    assert got == requantize_exact(raw, from_frac, fmt, *mode)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("ovf", OVERFLOW_MODES)
def test_requantize_ties_and_extremes(rounding, ovf):
    """Every tie (x.5 and -x.5) near zero and the format's extreme values, vectorized at once."""
    fmt = Fmt(True, 4, 2)
    raw = np.arange(-2 ** 9, 2 ** 9, dtype=np.int64)  # 3 frac bits in -> 2 out: every other value a tie
    got = requantize(raw, 3, fmt, rounding, ovf)
    want = [requantize_exact(int(r), 3, fmt, rounding, ovf) for r in raw]
    assert got.tolist() == want
    ext = np.array([fmt.min_int, fmt.max_int, fmt.min_int - 1, fmt.max_int + 1, -(2 ** 61), 2 ** 61 - 1])
    assert requantize(ext, 2, fmt, rounding, ovf).tolist() == [
        requantize_exact(int(r), 2, fmt, rounding, ovf) for r in ext]


def test_rounding_hand_cases():
    """1 frac bit -> 0: 2.5 -> 2 (even) / 3 (up) / 2 (floor); -2.5 -> -2 / -2 / -3; -1.5 -> -2 / -1 / -2."""
    f = Fmt(True, 8, 0)
    raw = np.array([5, -5, -3])
    assert requantize(raw, 1, f, "half_even").tolist() == [2, -2, -2]
    assert requantize(raw, 1, f, "half_up").tolist() == [3, -2, -1]
    assert requantize(raw, 1, f, "truncate").tolist() == [2, -3, -2]


def test_wrap_and_saturate_hand_cases():
    """u0.3 (0..7): 9 wraps to 1, saturates to 7; s2.0 (-2..1): 2 wraps to -2, -3 wraps to 1."""
    assert requantize(np.array([9]), 0, Fmt(False, 3, 0), "truncate", "wrap").tolist() == [1]
    assert requantize(np.array([9]), 0, Fmt(False, 3, 0), "truncate", "saturate").tolist() == [7]
    assert requantize(np.array([2, -3]), 0, Fmt(True, 2, 0), "truncate", "wrap").tolist() == [-2, 1]


def test_requantize_flags():
    out, flags = requantize(np.array([100, 3, -100]), 0, Fmt(True, 4, 0), return_flags=True)
    assert out.tolist() == [7, 3, -8] and flags.tolist() == [True, False, True]


@settings(max_examples=300)
@given(st.floats(-1e6, 1e6, allow_nan=False), formats, modes)
def test_quantize_matches_fraction(x, fmt, mode):
    assert int(quantize(np.array([x]), fmt, *mode)[0]) == quantize_exact(x, fmt, *mode)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_quantize_ties(rounding):
    fmt = Fmt(True, 6, 2)
    xs = np.arange(-64, 64) / 8.0  # every other value a tie at 2 frac bits
    got = quantize(xs, fmt, rounding, "saturate")
    assert got.tolist() == [quantize_exact(float(x), fmt, rounding, "saturate") for x in xs]


def test_quantize_rejects_nan():
    with pytest.raises(FormatError, match="NaN"):
        quantize(np.array([np.nan]), Fmt(True, 2, 2))


def test_bad_modes_rejected():
    with pytest.raises(FormatError, match="rounding must be one of"):
        requantize(np.array([3]), 1, Fmt(True, 4, 0), "nearest")
    with pytest.raises(FormatError, match="overflow must be one of"):
        requantize(np.array([3]), 1, Fmt(True, 4, 0), "half_up", "clamp")


@given(st.integers(0, 2 ** 50))
def test_bits_for(m):
    w = bits_for(m)
    assert -(2 ** (w - 1)) <= -m and m <= 2 ** (w - 1) - 1
    assert m == 0 or m > 2 ** (w - 2) - 1  # one bit fewer would not hold it
