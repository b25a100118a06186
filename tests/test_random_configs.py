"""Random valid configs (hypothesis): golden against the ``Fraction`` restatement, gateware against golden.

Every registered kind with every combination of its options (``model.kinds.variants``), sizes,
a format for every tensor, rounding and overflow modes per requantization point, activation
methods and table shapes, lanes and the parameter rounding are drawn; a draw that
``Config.from_dict`` (or, for the gateware, ``rtl.cell.check_buildable``) refuses is discarded.
``make test`` runs a fixed, reproducible set; ``pytest --long`` many more, freshly drawn.  The
summary prints how many configs each test ran.
"""
import numpy as np
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from model import golden, kinds
from model.config import TABLE_METHODS, TENSORS, ConfigError
from model.config import Config
from model.fixedpoint import OVERFLOW_MODES, ROUNDING_MODES
from model.params import CellParams, quantize
from rtl.cell import MAX_OPERAND_BITS, check_buildable, sat_points
from sim import amsim
from test_golden import Scalar

#: (examples in make test, examples with --long) per test.
EXAMPLES = {"golden": (150, 2000), "gateware": (40, 400)}
HW_METHODS = ("lut", "lut_interp", "pwl", "hard")


@st.composite
def configs(draw, hardware: bool):
    """A valid config; with ``hardware`` also one the gateware builds (no ``exact`` activation,
    multiplier operands within ``MAX_OPERAND_BITS``, ``lanes <= input + hidden``)."""
    cell = draw(st.sampled_from(kinds.variants()))
    n_in, n_hid = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    operands = cell.multiplier_operands()
    formats = {}
    for t in TENSORS:
        signed = t != "gate" or draw(st.booleans())
        ib = draw(st.integers(1 if not signed or t != "gate" else 2, 5))
        fb = draw(st.integers(1, 12))
        if hardware and t in operands:
            fb = min(fb, MAX_OPERAND_BITS - ib)
        formats[t] = f"{'s' if signed else 'u'}{ib}.{fb}"
    acts = {}
    for fn in ("sigmoid", "tanh"):
        method = draw(st.sampled_from(HW_METHODS if hardware else HW_METHODS + ("exact",)))
        acts[fn] = {"method": method}
        if method in TABLE_METHODS:  # no finer a step than formats.pre resolves
            log_range = draw(st.integers(1, 3))
            pre_frac = int(formats["pre"].split(".")[1])
            acts[fn].update(range=float(2 ** log_range),
                            size=2 ** draw(st.integers(2, min(8, log_range + 1 + pre_frac))))
    modes = {p: {"rounding": draw(st.sampled_from(ROUNDING_MODES)), "overflow": draw(st.sampled_from(OVERFLOW_MODES))}
             for p in cell.requant_points}
    rows = cell.n_gates * n_hid
    lanes = draw(st.integers(1, min(rows, n_in + n_hid) if hardware else rows))
    d = {"name": "random", "kind": cell.name, **cell.opts, "input_size": n_in, "hidden_size": n_hid,
         "formats": formats, "modes": modes, "lanes": lanes, **acts,
         "param_rounding": draw(st.sampled_from(ROUNDING_MODES))}
    try:
        cfg = Config.from_dict(d)
        if hardware:
            check_buildable(cfg)
    except ConfigError:
        reject()
    return cfg


def budget(long_mode, which):
    return settings(max_examples=EXAMPLES[which][long_mode], deadline=None, derandomize=not long_mode,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def scalar_outputs(cfg, q, xq):
    """(batch, steps, hidden) outputs of the scalar restatement (``tests/test_golden.py``), from a zero state."""
    ref, H = Scalar(cfg, q), cfg.hidden_size
    out = np.zeros((*xq.shape[:2], H), dtype=np.int64)
    for b in range(xq.shape[0]):
        h, c = [0] * H, [0] * H
        for t in range(xq.shape[1]):
            xs = [int(v) for v in xq[b, t]]
            if cfg.cell.unit_state == "hidden":
                h = ref.gru(xs, h)
            else:
                h, c = ref.lstm(xs, h, c)
            out[b, t] = h
    return out


def test_golden_matches_fraction_restatement(long_mode, record_count):
    """Two sequences of four steps (inputs over twice the stimulus range, so formats saturate) through
    the golden model and through the scalar ``Fraction`` restatement: equal on every element."""
    ran = []

    @budget(long_mode, "golden")
    @given(cfg=configs(hardware=False), seed=st.integers(0, 2 ** 16), scale=st.sampled_from([0.5, 1.0, 2.0]))
    def check(cfg, seed, scale):
        q = quantize(CellParams.for_config(cfg, seed=seed, scale=scale), cfg)
        x = np.random.default_rng(seed).uniform(-4, 4, (2, 4, cfg.input_size))
        got = golden.run(q, x, cfg).outputs
        want = scalar_outputs(cfg, q, golden.quantize_input(x, cfg))
        bad = np.argwhere(got != want)
        assert bad.size == 0, f"{cfg.to_dict()}: first mismatch at (batch, step, unit) {tuple(bad[0])}"
        ran.append(cfg.kind)

    check()
    record_count("random configs, golden vs Fraction restatement", len(ran))
    assert len(ran) >= EXAMPLES["golden"][long_mode] // 2
    assert set(ran) == set(kinds.names())


def test_gateware_matches_golden(long_mode, record_count):
    """Two sequences (three steps, then one) through the gateware on Amaranth's simulator with random
    backpressure: bit-exact against the golden model, each saturation bit equal to whether the golden
    model saturated at its point, no error bit."""
    ran = []

    @budget(long_mode, "gateware")
    @given(cfg=configs(hardware=True), seed=st.integers(0, 2 ** 16))
    def check(cfg, seed):
        q = quantize(CellParams.for_config(cfg, seed=seed, scale=1.0), cfg)
        rng = np.random.default_rng(seed)
        seqs = [golden.quantize_input(rng.uniform(-2, 2, (1, n, cfg.input_size)), cfg)[0] for n in (3, 1)]
        res = amsim.run(cfg, q, seqs, seed=seed, in_idle=0.2, out_stall=0.2, max_stall=4)
        saturated = {}
        for x, got in zip(seqs, res.outputs):
            r = golden.run(q, x[None], cfg)
            bad = np.argwhere(got != r.outputs[0])
            assert bad.size == 0, f"{cfg.to_dict()}: first mismatch at (step, unit) {tuple(bad[0])}"
            for p, n in r.saturated.items():
                saturated[p] = saturated.get(p, 0) + n
        want = {bit: int(saturated.get(p, 0) > 0) for bit, p in sat_points(cfg).items()}
        assert {bit: res.status[bit] for bit in want} == want, cfg.to_dict()
        assert not any(res.status[b] for b in res.status if b not in want), res.status
        ran.append(cfg.kind)

    check()
    record_count("random configs, gateware vs golden (Amaranth simulator)", len(ran))
    assert len(ran) >= EXAMPLES["gateware"][long_mode] // 2
