"""Configs in which every datapath shift matters and every status bit can fire, for every registered kind.

The shipped configs give most tensors the same fraction bits, so most alignment shifts of
:class:`model.datapath.Datapath` are 0 there and a gateware or C++ bug that drops or swaps two of
them goes unseen.  Each alignment is a maximum over a few candidates (the accumulator's fraction
over ``W x``, ``W h``, the bias and the kind's extra terms; a kind's own sums likewise), so the
candidate that sets the maximum always has shift 0: no single config makes every shift non-zero.
Format sets built from ``configs/tiny.toml`` with :meth:`Config.as_kind` and :meth:`Config.replace`
lead each maximum from opposite sides:

- ``x_leads``: ``W x`` sets the accumulator's fraction, the candidate's fraction is below the
  hidden state's and the cell state's below the candidate's; wide integer parts except a cell
  state below 1.0, so only ``cell`` saturates.
- ``b_leads``: the bias sets it, the hidden state's fraction is below the candidate's, the cell
  state's above it; a narrow pre-activation and hard activations (a gate of exactly 1.0), so
  ``pre``, ``gru_hn`` and ``hidden`` saturate and ``cell`` does not; as many lanes as a slot has
  cycles.
- ``x_only``: ``b_leads``'s formats with small recurrent parameters, so the pre-activations
  saturate while ``W_hh h + b_hh`` does not; short slots.

The tests check that across the sets every shift a kind derives from its formats is non-zero at
least once, and every two of them differ at least once (so swapping them changes some result),
then run both gateware (Amaranth's simulator) and the C++ reference bit-exact against the golden
model, with every status bit equal to the golden model's saturation record, zero included.  Two
more: the accumulator at its worst case, and the framing bit for a misplaced ``first``.
"""
import hashlib
import itertools
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hls import cpp, vectors
from model import golden, kinds
from model.config import Config
from model.datapath import Datapath
from model.fixedpoint import Fmt
from model.params import CellParams, quantize
from rtl.cell import ERROR_BITS
from rtl.gates import sat_points
from sim import amsim

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "shift-tests" / os.environ.get("PYTEST_XDIST_WORKER", "main")

X_LEADS = dict(input="s3.12", weight="s2.8", hidden="s2.10", bias="s3.12", peephole="s2.6", cell="s1.6",
               gate="u1.11", candidate="s1.9", cell_act="s2.9", pre="s6.11")
B_LEADS = dict(input="s2.8", weight="s2.7", hidden="s1.10", bias="s2.20", peephole="s2.4", cell="s5.14",
               gate="u1.9", candidate="s1.12", cell_act="s1.14", pre="s3.8")
HARD = {"sigmoid": {"method": "hard"}, "tanh": {"method": "hard"}}

#: label -> (formats of every tensor any kind uses, other config changes, parameter scale, factor on the
#: recurrent parameters W_hh and b_hh).
SETS = {
    "x_leads": (X_LEADS, dict(input_size=3, hidden_size=8, lanes=3), 2.0, 1.0),
    # as many lanes as a slot has cycles: a slot's rows leave the serializer just as the next slot's arrive
    "b_leads": (B_LEADS, dict(input_size=3, hidden_size=8, lanes=11, **HARD), 3.0, 1.0),
    # h(t-1) hardly counts: the pre-activations saturate on W x alone while W_hh h + b_hh stays small;
    # slots of 6 cycles, so a reset-before GRU's second pass must wait for its last r * h(t-1)
    "x_only": (B_LEADS, dict(input_size=3, hidden_size=3, lanes=2, **HARD), 3.0, 0.02),
}

#: Points whose saturation no format can cause, and why (their status bit must stay 0).
CANNOT_FIRE = {"gru_rh": "r * h(t-1) with 0 <= r <= 1 lies within h(t-1)'s own range, in h's own format "
                         "after dropping the gate's fraction bits (rounding cannot pass h(t-1) either)"}

VARIANTS = kinds.variants()
IDS = [k.variant for k in VARIANTS]
TINY = Config.load(ROOT / "configs" / "tiny.toml")


def shift_config(kind, label) -> tuple:
    """(config, quantized parameters) of ``kind`` with the set ``label``, built from the tiny config."""
    formats, changes, scale, recurrent = SETS[label]
    cfg = TINY.replace(formats={"peephole": formats["peephole"]}).as_kind(kind)
    cfg = cfg.replace(name=f"shifts-{label}", formats={t: formats[t] for t in kind.tensors()}, **changes)
    p = CellParams.for_config(cfg, seed=1, scale=scale)
    return cfg, quantize(p.replace(w_hh=p.w_hh * recurrent, b_hh=p.b_hh * recurrent), cfg)


def shifts(dp: Datapath) -> dict:
    """Every ``*_shift`` field of a datapath, common and the kind's own."""
    fields = {k: getattr(dp, k) for k in ("x_shift", "h_shift", "b_shift")}
    return {**fields, **{k: v for k, v in dp.extra.items() if k.endswith("_shift")}}


def derived_shifts(kind) -> set:
    """The shifts ``kind`` derives from its formats: those that change over random fraction bits (a
    shift a kind fixes, such as an unused peephole's, does not)."""
    rng = np.random.default_rng(0)
    base = shift_config(kind, "x_leads")[0]
    seen = {}
    for _ in range(12):
        f = {t: str(Fmt(fmt.signed, fmt.int_bits, int(rng.integers(2, 12)))) for t, fmt in base.formats.items()
             if fmt is not None}
        for k, v in shifts(Datapath.from_config(base.replace(formats=f))).items():
            seen.setdefault(k, set()).add(v)
    return {k for k, vals in seen.items() if len(vals) > 1}


def stimulus(cfg, seed) -> list:
    """Three sequences of raw inputs over every input code (so the narrow formats overflow)."""
    f = cfg.fmt("input")
    rng = np.random.default_rng(seed)
    return [rng.integers(f.min_int, f.max_int + 1, (n, cfg.input_size)) for n in (5, 1, 4)]


def golden_run(cfg, q, seqs) -> tuple:
    """Golden h(t) of each sequence (each from the zero state) and saturations per point, summed."""
    outs, sat = [], {}
    for x in seqs:
        r = golden.run(q, x[None], cfg)
        outs.append(r.outputs[0])
        for p, n in r.saturated.items():
            sat[p] = sat.get(p, 0) + n
    return outs, sat


@pytest.mark.parametrize("kind", VARIANTS, ids=IDS)
def test_every_shift_is_nonzero_in_some_config_and_no_two_always_equal(kind):
    cfgs = [shift_config(kind, label)[0] for label in SETS]
    got = [shifts(Datapath.from_config(c)) for c in cfgs]
    used = derived_shifts(kind)
    assert {"x_shift", "h_shift", "b_shift"} <= used
    for name in sorted(used):
        assert any(g[name] != 0 for g in got), (name, got)
    for a, b in itertools.combinations(sorted(used), 2):
        assert any(g[a] != g[b] for g in got), (a, b, got)


@pytest.mark.parametrize("kind", VARIANTS, ids=IDS)
def test_every_status_bit_fires_in_one_config_and_not_in_another(kind):
    """Golden saturation records over the sets: each point of the kind saturates under one set and
    not under another (a stuck status bit would then show in the gateware test), except the points
    in CANNOT_FIRE, which never saturate; under ``x_only`` the pre-activations saturate and the
    kind's own points do not (a bit set by another point's rows would then show)."""
    records = []
    for label in SETS:
        cfg, q = shift_config(kind, label)
        records.append(golden_run(cfg, q, stimulus(cfg, seed=7))[1])
    x_only = records[list(SETS).index("x_only")]
    assert x_only["pre"] > 0 and all(x_only[p] == 0 for p in kind.status.values()), x_only
    for point in sat_points(cfg).values():
        counts = [r[point] for r in records]
        if point in CANNOT_FIRE:
            assert counts == [0] * len(counts), (point, counts)
        else:
            assert 0 in counts and any(counts), (point, counts)


@pytest.mark.parametrize("label", list(SETS))
@pytest.mark.parametrize("kind", VARIANTS, ids=IDS)
def test_gateware_bit_exact_with_every_status_bit(kind, label):
    """Amaranth's simulator, random stalls on both streams: every h(t) element equals the golden
    model's, and each saturation bit is set exactly when the golden model saturated at its point."""
    cfg, q = shift_config(kind, label)
    seqs = stimulus(cfg, seed=7)
    want, sat = golden_run(cfg, q, seqs)
    res = amsim.run(cfg, q, seqs, seed=3, in_idle=0.3, out_stall=0.3, max_stall=6)
    for n, (w, g) in enumerate(zip(want, res.outputs)):
        bad = np.argwhere(g != w)
        assert bad.size == 0, f"sequence {n}: {len(bad)} mismatches, first at (step, unit) {tuple(bad[0])}"
    assert {b: res.status[b] for b in sat_points(cfg)} == {b: int(sat[p] > 0) for b, p in sat_points(cfg).items()}
    assert {b: res.status[b] for b in ERROR_BITS} == {b: 0 for b in ERROR_BITS}


@pytest.mark.parametrize("label", list(SETS))
@pytest.mark.parametrize("kind", VARIANTS, ids=IDS)
def test_cpp_reference_bit_exact(kind, label, tmp_path):
    """The generated C++ (both top functions) reproduces the golden h(t) and state on every element."""
    cfg, q = shift_config(kind, label)
    out = BUILD / f"{kind.variant}-{label}".replace(" ", "").replace("(", "-").replace(")", "").replace("=", "")
    paths = cpp.generate(cfg, q, out / "hls", max_steps=3)
    key = hashlib.sha256(b"".join(p.read_bytes() for p in paths.values()) + " ".join(cpp.CXXFLAGS).encode())
    exe, stamp = out / "tb", out / "tb.key"
    if not exe.exists() or not stamp.exists() or stamp.read_text() != key.hexdigest():
        cpp.compile_tb(paths, exe)
        stamp.write_text(key.hexdigest())
    x = np.stack([s[:4] for s in stimulus(cfg, seed=7) if len(s) >= 4])
    vectors.write(tmp_path, cfg, q, x)
    r = subprocess.run([str(exe), str(tmp_path)], capture_output=True, text=True, timeout=120)
    per_step = cfg.hidden_size * len(cfg.cell.state)
    assert r.returncode == 0 and f"{2 * x.size // cfg.input_size * per_step} passed, 0 failed" in r.stdout, \
        r.stdout + r.stderr


@pytest.mark.parametrize("kind", VARIANTS, ids=IDS)
def test_accumulator_holds_its_worst_case(kind):
    """Every weight at the format's most negative value times every input at its most negative value:
    the x part of the first step's dot product is input_size * min_w * min_x (aligned), which needs
    the accumulator's full derived width (a register one bit narrower holds at most
    2**(acc_width - 2) - 1).  The gateware stays bit-exact with the golden model."""
    cfg = shift_config(kind, "x_leads")[0].replace(input_size=10, hidden_size=2, lanes=2)
    fw, fx = cfg.fmt("weight"), cfg.fmt("input")
    p = CellParams.for_config(cfg, seed=1)
    q = quantize(p.replace(w_ih=np.full_like(p.w_ih, fw.min)), cfg)
    dp = Datapath.from_config(cfg)
    assert (cfg.input_size * fw.min_int * fx.min_int) << dp.x_shift > (1 << (dp.acc_width - 2)) - 1
    seqs = [np.full((2, cfg.input_size), fx.min_int, dtype=np.int64)]
    want, _ = golden_run(cfg, q, seqs)
    assert np.array_equal(amsim.run(cfg, q, seqs).outputs[0], want[0])


@pytest.mark.parametrize("first_at", [0, 1])
def test_framing_bit_for_first_on_a_later_element(first_at):
    """``first`` belongs on element 0 of a vector: on element 1 (with ``last`` where it belongs)
    err_framing is set; on element 0 it stays 0."""
    from amaranth.sim import Simulator

    from rtl.cell import RecurrentCell
    cfg = TINY
    dut = RecurrentCell(cfg, None)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    seen = []

    async def bench(ctx):
        for e in range(cfg.input_size):
            ctx.set(dut.i.payload, {"data": 1, "last": int(e == cfg.input_size - 1), "first": int(e == first_at)})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(2)
        seen.append(ctx.get(dut.status.err_framing))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [int(first_at != 0)]


def test_lut_activations_reach_their_top():
    """A status bit after an activation can fire only if the activation reaches its top.
    sigmoid lut, 64 entries over [-8, 8) into u1.9: step 2**-2, top entry T[31] = sigmoid(7.875)
    = 0.9996199 -> 511.805 -> 512, exactly 1.0 (the clamp is min(1.0, u1.9's largest) = 512);
    mirrored at the most negative input: 512 - 512 = 0.
    tanh lut, 64 entries over [-4, 4) into s1.9: step 2**-3, T[31] = tanh(3.9375) = 0.9992420
    -> 511.612 -> 512, clamped to s1.9's largest, 511; -511 at the most negative input."""
    from model.activations import make_activation
    from model.config import ActSpec
    pre = Fmt.parse("s4.8")
    sig = make_activation("sigmoid", ActSpec("lut", 64, 8.0), pre, Fmt.parse("u1.9"))
    tanh = make_activation("tanh", ActSpec("lut", 64, 4.0), pre, Fmt.parse("s1.9"))
    assert sig.evaluate([pre.max_int, pre.min_int]).tolist() == [512, 0]
    assert tanh.evaluate([pre.max_int, pre.min_int]).tolist() == [511, -511]
