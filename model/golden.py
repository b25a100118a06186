"""Bit-exact fixed-point golden model of the LSTM, peephole LSTM and GRU cells.

Integer arithmetic only, following the numerics contract (README, 'Numerics
contract'): exact products and sums in a derived-width accumulator, precision
lost only at the named requantization points ``pre``, ``cell``, ``hidden``,
``gru_hn`` and ``gru_rh``.  Vectorized over the batch.

Dot products run as float64 BLAS matrix products on integer values: exact,
because :class:`~model.datapath.Datapath` proves every sum stays below 2**53.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import make_activation
from .config import Config
from .datapath import Datapath
from .fixedpoint import quantize, requantize
from .params import QParams


@dataclass
class GoldenResult:
    """``outputs`` (batch, steps, hidden) and ``state`` ((h, c) or (h,)) as raw integers.

    ``trace`` maps an intermediate's name to a (batch, steps, ...) int64 array
    when requested; ``saturated`` counts values that did not fit, per point.
    Unpacks as ``outputs, state = result`` like :func:`model.reference.run`.
    """

    config: Config
    outputs: np.ndarray
    state: tuple
    saturated: dict
    trace: dict | None = None

    def __iter__(self):
        return iter((self.outputs, self.state))

    def outputs_float(self) -> np.ndarray:
        return self.config.fmt("hidden").to_float(self.outputs)

    def state_float(self) -> tuple:
        fmts = ("hidden", "cell")
        return tuple(self.config.fmt(t).to_float(s) for t, s in zip(fmts, self.state))


@dataclass
class _Cell:
    cfg: Config
    q: QParams
    dp: Datapath = field(init=False)

    def __post_init__(self):
        cfg, f = self.cfg, self.cfg.formats
        self.dp = Datapath.from_config(cfg)
        self.sigmoid = make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"])
        self.tanh_pre = make_activation("tanh", cfg.tanh, f["pre"], f["candidate"])
        if cfg.kind == "lstm":
            self.tanh_cell = make_activation("tanh", cfg.tanh, f["cell"], f["cell_act"])
        self.wx = self.q.w_ih.astype(np.float64).T.copy()
        self.wh = self.q.w_hh.astype(np.float64).T.copy()
        self.bias = self.q.bias.astype(np.int64) << self.dp.b_shift
        self.sat = {}

    def requant(self, v, frac, point, tensor):
        m = self.cfg.mode(point)
        out, flags = requantize(v, frac, self.cfg.fmt(tensor), m.rounding, m.overflow, return_flags=True)
        self.sat[point] = self.sat.get(point, 0) + int(np.count_nonzero(flags))
        return out

    def hproj(self, h, rows=slice(None)):
        return (h.astype(np.float64) @ self.wh[:, rows]).astype(np.int64) << self.dp.h_shift


def _lstm_step(cell: _Cell, xp, h, c, tr):
    cfg, dp, H = cell.cfg, cell.dp, cell.cfg.hidden_size
    acc = xp + cell.hproj(h) + cell.bias
    peep = cell.q.w_peep if cfg.peephole != "none" else None
    if peep is not None:
        acc[:, 0:H] += (peep[0] * c) << dp.p_shift
        acc[:, H:2 * H] += (peep[1] * c) << dp.p_shift
        if cfg.peephole == "c_prev":
            acc[:, 3 * H:] += (peep[2] * c) << dp.p_shift
    pre = cell.requant(acc[:, :3 * H] if cfg.peephole == "c_new" else acc, dp.acc_frac, "pre", "pre")
    i = cell.sigmoid(pre[:, 0:H])
    f = cell.sigmoid(pre[:, H:2 * H])
    g = cell.tanh_pre(pre[:, 2 * H:3 * H])
    c_new = cell.requant((f * c << dp.fc_shift) + (i * g << dp.ig_shift), dp.cell_frac, "cell", "cell")
    if cfg.peephole == "c_new":
        acc[:, 3 * H:] += (peep[2] * c_new) << dp.p_shift
        pre_o = cell.requant(acc[:, 3 * H:], dp.acc_frac, "pre", "pre")
        pre = np.concatenate([pre, pre_o], axis=1)
    o = cell.sigmoid(pre[:, 3 * H:])
    tc = cell.tanh_cell(c_new)
    h_new = cell.requant(o * tc, dp.out_frac, "hidden", "hidden")
    if tr is not None:
        for k, v in (("acc", acc), ("pre", pre), ("i", i), ("f", f), ("g", g), ("o", o),
                     ("cell", c_new), ("cell_act", tc), ("hidden", h_new)):
            tr.setdefault(k, []).append(v)
    return h_new, c_new


def _gru_step(cell: _Cell, xp, h, tr):
    cfg, dp, H = cell.cfg, cell.dp, cell.cfg.hidden_size
    one = 1 << cfg.fmt("gate").frac_bits
    rec = {}
    if cfg.reset == "after":
        hp = cell.hproj(h)
        acc = xp + cell.bias
        acc[:, :2 * H] += hp[:, :2 * H]
        pre_rz = cell.requant(acc[:, :2 * H], dp.acc_frac, "pre", "pre")
        r, z = cell.sigmoid(pre_rz[:, :H]), cell.sigmoid(pre_rz[:, H:])
        acc_nh = hp[:, 2 * H:] + (cell.q.bias_hn.astype(np.int64) << dp.b_shift)
        hn = cell.requant(acc_nh, dp.acc_frac, "gru_hn", "pre")
        acc_n = (acc[:, 2 * H:] << dp.nx_shift) + ((r * hn) << dp.rhn_shift)
        pre_n = cell.requant(acc_n, dp.nh_frac, "pre", "pre")
        rec.update(acc_nh=acc_nh, hn=hn)
    else:
        acc = xp + cell.bias
        acc[:, :2 * H] += cell.hproj(h, slice(0, 2 * H))
        pre_rz = cell.requant(acc[:, :2 * H], dp.acc_frac, "pre", "pre")
        r, z = cell.sigmoid(pre_rz[:, :H]), cell.sigmoid(pre_rz[:, H:])
        rh = cell.requant(r * h, cfg.fmt("gate").frac_bits + cfg.fmt("hidden").frac_bits, "gru_rh", "hidden")
        acc[:, 2 * H:] += cell.hproj(rh, slice(2 * H, 3 * H))
        pre_n = cell.requant(acc[:, 2 * H:], dp.acc_frac, "pre", "pre")
        rec.update(rh=rh)
    n = cell.tanh_pre(pre_n)
    h_new = cell.requant((((one - z) * n) << dp.zn_shift) + ((z * h) << dp.zh_shift), dp.out_frac,
                         "hidden", "hidden")
    if tr is not None:
        rec.update(acc=acc, pre_rz=pre_rz, r=r, z=z, pre_n=pre_n, n=n, hidden=h_new)
        for k, v in rec.items():
            tr.setdefault(k, []).append(v)
    return h_new


def quantize_input(x, config: Config) -> np.ndarray:
    """Float inputs -> raw integers in ``formats.input`` (round half to even, saturate)."""
    return quantize(x, config.fmt("input"), "half_even", "saturate")


def initial_state(config: Config, batch: int) -> tuple:
    z = np.zeros((batch, config.hidden_size), dtype=np.int64)
    return (z, z.copy()) if config.kind == "lstm" else (z,)


def run(qparams: QParams, x, config: Config, state=None, trace: bool = False) -> GoldenResult:
    """Run the cell over ``x`` (batch, steps, input).

    ``x`` of an integer dtype is taken as raw values in ``formats.input``; a float
    array is quantized first with :func:`quantize_input`.  ``state`` is ``(h, c)``
    for an LSTM, ``(h,)`` for a GRU, raw integers; zeros when omitted.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != config.input_size:
        raise ValueError(f"x must have shape (batch, steps, {config.input_size}), not {x.shape}")
    if np.issubdtype(x.dtype, np.floating):
        x = quantize_input(x, config)
    elif not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"x must be an integer (raw) or float array, not dtype {x.dtype}")
    elif not config.fmt("input").contains(x):
        f = config.fmt("input")
        raise ValueError(f"raw x values must lie in formats.input = {f} range [{f.min_int}, {f.max_int}], "
                         f"got [{x.min()}, {x.max()}]")
    qparams.check_matches(config)
    B, T, _ = x.shape
    state = initial_state(config, B) if state is None else _check_state(state, config, B)
    cell = _Cell(config, qparams)
    xproj = (x.astype(np.float64) @ cell.wx).astype(np.int64) << cell.dp.x_shift
    tr = {} if trace else None
    outs = np.empty((B, T, config.hidden_size), dtype=np.int64)
    h = state[0]
    c = state[1] if config.kind == "lstm" else None
    for t in range(T):
        if config.kind == "lstm":
            h, c = _lstm_step(cell, xproj[:, t], h, c, tr)
        else:
            h = _gru_step(cell, xproj[:, t], h, tr)
        outs[:, t] = h
    final = (h, c) if config.kind == "lstm" else (h,)
    traced = {k: np.stack(v, axis=1) for k, v in tr.items()} if trace else None
    return GoldenResult(config, outs, final, dict(cell.sat), traced)


def _check_state(state, cfg: Config, batch: int) -> tuple:
    names = ("h", "c") if cfg.kind == "lstm" else ("h",)
    if not isinstance(state, (tuple, list)) or len(state) != len(names):
        raise ValueError(f"state must be a tuple ({', '.join(names)}) of raw integer arrays for a {cfg.kind}")
    out = []
    for n, s, t in zip(names, state, ("hidden", "cell")):
        s = np.asarray(s)
        if s.shape != (batch, cfg.hidden_size):
            raise ValueError(f"state {n} must have shape ({batch}, {cfg.hidden_size}), not {s.shape}")
        if not np.issubdtype(s.dtype, np.integer) or not cfg.fmt(t).contains(s):
            raise ValueError(f"state {n} must hold raw integers in formats.{t} = {cfg.fmt(t)}")
        out.append(s.astype(np.int64))
    return tuple(out)
