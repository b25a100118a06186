"""Bit-exact fixed-point golden model of every cell kind: the shared loop around each kind's
``golden_step`` (:mod:`model.kinds`).

Integer arithmetic only, following the numerics contract (docs, 'Numerics
contract'): exact products and sums in a derived-width accumulator, precision
lost only at the named requantization points the kind declares (``pre``,
``cell``, ``hidden``, ``gru_hn``, ``gru_rh``).  Vectorized over the batch.

Dot products run as float64 BLAS matrix products on integer values: exact,
because :class:`~model.datapath.Datapath` proves every sum stays below 2**53.

There is no command line here: ``python -m model.summary --config ...`` runs the
golden model on a config and prints its error against float.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from .activations import make_activation
from .config import Config
from .datapath import Datapath
from .fixedpoint import quantize, requantize
from .params import QParams
from .resources import check_memory


@dataclass
class GoldenResult:
    """``outputs`` (batch, steps, hidden) and ``state`` (the kind's state tuple) as raw integers.

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
        return tuple(self.config.fmt(t).to_float(s) for (_, t), s in zip(self.config.cell.state, self.state))


@dataclass
class GoldenCell:
    """What a kind's ``golden_step`` works with: config, integer parameters, datapath, activations
    (attributes named by the kind's :meth:`~model.kinds.CellKind.activations`), and the
    requantization and projection helpers.  Counts saturations per point in ``sat``."""

    cfg: Config
    q: QParams
    dp: Datapath = field(init=False)

    def __post_init__(self):
        cfg, f = self.cfg, self.cfg.formats
        self.dp = Datapath.from_config(cfg)
        for attr, fn, fin, fout in cfg.cell.activations():
            setattr(self, attr, make_activation(fn, getattr(cfg, fn), f[fin], f[fout]))
        self.wx = self.q.w_ih.astype(np.float64).T.copy()
        self.wh = self.q.w_hh.astype(np.float64).T.copy()
        self.bias = self.q.bias.astype(np.int64) << self.dp.b_shift
        self.sat = {}

    def requant(self, v, frac, point, tensor):
        """``v`` (``frac`` fraction bits) into ``formats[tensor]`` with point ``point``'s modes."""
        m = self.cfg.mode(point)
        out, flags = requantize(v, frac, self.cfg.fmt(tensor), m.rounding, m.overflow, return_flags=True)
        self.sat[point] = self.sat.get(point, 0) + int(np.count_nonzero(flags))
        return out

    def hproj(self, h, rows=slice(None)):
        """``W_hh[rows] h`` aligned to the accumulator (exact)."""
        return (h.astype(np.float64) @ self.wh[:, rows]).astype(np.int64) << self.dp.h_shift


def quantize_input(x, config: Config) -> np.ndarray:
    """Float inputs -> raw integers in ``formats.input`` (round half to even, saturate)."""
    return quantize(x, config.fmt("input"), "half_even", "saturate")


def initial_state(config: Config, batch: int) -> tuple:
    """The all-zero state, one raw int64 array per state tensor of the kind."""
    return tuple(np.zeros((batch, config.hidden_size), dtype=np.int64) for _ in config.cell.state)


def run(qparams: QParams, x, config: Config, state=None, trace: bool = False) -> GoldenResult:
    """Run the cell over ``x`` (batch, steps, input).

    ``x`` of an integer dtype is taken as raw values in ``formats.input``; a float
    array is quantized first with :func:`quantize_input`.  ``state`` is the kind's
    state tuple (``(h, c)`` for the LSTM kinds, ``(h,)`` for a GRU), raw integers; zeros when omitted.
    """
    if not isinstance(qparams, QParams):
        raise TypeError(f"golden.run takes quantized parameters (QParams, from model.params.quantize(params, "
                        f"config)), not {type(qparams).__name__}")
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
    check_memory(run_bytes(config, B, T, trace), f"the golden model over {B} sequences x {T} steps "
                                                 f"of config {config.name!r}")
    state = initial_state(config, B) if state is None else _check_state(state, config, B)
    cell = GoldenCell(config, qparams)
    kind = config.cell
    xproj = (x.astype(np.float64) @ cell.wx).astype(np.int64) << cell.dp.x_shift
    tr = {} if trace else None
    outs = np.empty((B, T, config.hidden_size), dtype=np.int64)
    for t in range(T):
        state = kind.golden_step(cell, xproj[:, t], state, tr)
        outs[:, t] = state[0]
    traced = {k: np.stack(v, axis=1) for k, v in tr.items()} if trace else None
    return GoldenResult(config, outs, tuple(state), dict(cell.sat), traced)


def run_bytes(config: Config, batch: int, steps: int, trace: bool = False) -> int:
    """About the most memory :func:`run` holds at once: the weights as float64, the input and its
    projection (float64, then int64), the outputs, and with ``trace`` every row and unit of every step kept
    several times over."""
    bt, rows, h, i = batch * steps, config.rows, config.hidden_size, config.input_size
    per_step = i + 2 * rows + h + (4 * (rows + 4 * h) if trace else 0)
    return 8 * (rows * (i + h) + bt * per_step)


def _check_state(state, cfg: Config, batch: int) -> tuple:
    names = [n for n, _ in cfg.cell.state]
    if not isinstance(state, (tuple, list)) or len(state) != len(names):
        raise ValueError(f"state must be a tuple ({', '.join(names)}) of raw integer arrays for a {cfg.variant}")
    out = []
    for (n, t), s in zip(cfg.cell.state, state):
        s = np.asarray(s)
        if s.shape != (batch, cfg.hidden_size):
            raise ValueError(f"state {n} must have shape ({batch}, {cfg.hidden_size}), not {s.shape}")
        if not np.issubdtype(s.dtype, np.integer) or not cfg.fmt(t).contains(s):
            raise ValueError(f"state {n} must hold raw integers in formats.{t} = {cfg.fmt(t)}")
        out.append(s.astype(np.int64))
    return tuple(out)


def main() -> int:
    print("error: model.golden has no command line; run the golden model on a config with "
          "python -m model.summary --config CONFIG", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
