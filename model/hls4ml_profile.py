"""hls4ml 1.3's LSTM and GRU arithmetic, bit for bit, as integer NumPy (the ``hls4ml`` profile).

What it reproduces is the Vivado backend's ``io_parallel`` / latency-strategy
layers (``nnet_recurrent.h``, ``nnet_dense_latency.h``, ``nnet_activation.h``
of hls4ml 1.3.0) as a model converted from a PyTorch ``nn.LSTM`` / ``nn.GRU``
computes them in hls4ml's C++ simulation.  Every ``ap_fixed`` of hls4ml uses
its defaults, ``AP_TRN`` (floor) and ``AP_WRAP``:

* **Weights and biases** are written by hls4ml's writer as decimal text with as
  many decimals as the type has fractional bits (``'{:.Ff}'`` of the float32
  value), then read back as a double and truncated into the type
  (:func:`quantize_weights`).  The decimal rounding can carry a weight one LSB
  up, so this is not ``floor(w * 2**F)``.
* **Inputs** arrive as float32 and are truncated into the input type.
* **Matrix products** (``dense_latency``): every product ``x_i * w_ij`` is
  truncated into ``accum_t`` on its own, the bias is cast into ``accum_t``, and
  the sum wraps in ``accum_t``.  ``W x + b`` and ``U h + b_h`` are two such
  products, each requantized to ``accum_t`` before they are added (wrapping).
* **Sigmoid and tanh** are 1024-entry tables of ``ap_fixed<18,8>`` over
  [-8, 8) and [-4, 4), filled from float (``expf``, ``tanhf``) by truncation,
  indexed by ``int(x * 1024 / 16) + 512`` (sigmoid) or ``int(x * 1024 / 8) + 512``
  (tanh), where ``int()`` rounds toward zero, clamped to the table; the entry is
  then cast into ``accum_t``.
* **LSTM**: ``c = (result_t)(g*i + c*f)`` and ``h = (result_t)(o * tanh(c))``,
  products and sum exact before the one cast; ``tanh(c)`` reads ``c`` in
  ``result_t``.
* **GRU** (reset after, PyTorch gate order ``r, z, n``): ``r * (U_n h + b_hn)``
  is cast into ``accum_t``, added to ``W_n x + b_in`` (wrapping), and
  ``h = (result_t)(n * (1 - z) + h * z)``.

Why: a user of hls4ml can get the answer of their hardware from this profile
many times faster than from hls4ml's C++ simulation, and compare it with the
kit's exact accumulation at the same formats (``study/hls4ml_compare.py``).
The formats are the kit's :class:`~model.fixedpoint.Fmt` (``int_bits``
includes the sign, as ``I`` in ``ap_fixed<W,I>``).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from .fixedpoint import Fmt, FormatError, overflow, quantize, requantize
from .params import CellParams

#: hls4ml's default table type and size for sigmoid and tanh.
TABLE_TYPE = "ap_fixed<18,8>"
TABLE_SIZE = 1024
#: Width of the tables' input ranges: sigmoid covers [-8, 8), tanh [-4, 4).
SIGMOID_SPAN = 16
TANH_SPAN = 8


#: The integer types the matrix products run in, narrowest first, each with its unsigned twin.
_NARROW = ((np.int16, np.uint16), (np.int32, np.uint32), (np.int64, np.uint64))


class Hls4mlError(ValueError):
    """Parameters or types the hls4ml profile cannot reproduce."""


@dataclass(frozen=True)
class Hls4mlTypes:
    """The ``ap_fixed`` types of one hls4ml recurrent layer (all ``AP_TRN``, ``AP_WRAP``).

    ``input`` is the input layer's ``result_t``; the others are the LSTM/GRU
    layer's ``weight_t``, ``bias_t``, ``recurrent_weight_t``,
    ``recurrent_bias_t``, ``accum_t``, ``result_t`` and ``table_t``.
    """

    input: Fmt
    weight: Fmt
    bias: Fmt
    recurrent_weight: Fmt
    recurrent_bias: Fmt
    accum: Fmt
    result: Fmt
    table: Fmt = Fmt.parse(TABLE_TYPE)
    table_size: int = TABLE_SIZE

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "table_size":
                if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 2:
                    raise Hls4mlError(f"table_size must be an integer >= 2, not {v!r}")
                continue
            try:
                object.__setattr__(self, f.name, Fmt.parse(v))
            except FormatError as e:
                raise Hls4mlError(f"{f.name}: {e}") from None

    @classmethod
    def uniform(cls, fmt, table=TABLE_TYPE, table_size: int = TABLE_SIZE) -> "Hls4mlTypes":
        """One format for every tensor, as hls4ml's ``default_precision`` gives (tables keep ``table``)."""
        return cls(*([fmt] * 7), table=table, table_size=table_size)

    def as_dict(self) -> dict:
        """``{name: 'ap_fixed<W,I>'}`` of every type (``table_size`` as an integer)."""
        return {f.name: (getattr(self, f.name) if f.name == "table_size" else getattr(self, f.name).ap)
                for f in fields(self)}


# ---- quantization as hls4ml's writer and its C++ testbench do it -------------------------------------------

def quantize_weights(values, fmt: Fmt) -> np.ndarray:
    """Raw integers of ``values`` as hls4ml stores them: the float32 value printed with
    ``max(0, frac_bits)`` decimals, read as a double and truncated (floor) and wrapped into ``fmt``."""
    v = np.asarray(values, dtype=np.float32)
    spec = f"{{:.{max(0, fmt.frac_bits)}f}}"
    text = np.array([float(spec.format(float(a))) for a in v.ravel()], dtype=np.float64).reshape(v.shape)
    return quantize(text, fmt, "truncate", "wrap")


def quantize_input(x, fmt: Fmt) -> np.ndarray:
    """Raw integers of float inputs as ``predict`` passes them: float32, truncated and wrapped into ``fmt``."""
    return quantize(np.asarray(x, dtype=np.float32).astype(np.float64), fmt, "truncate", "wrap")


def cast(raw, frac: int, fmt: Fmt) -> np.ndarray:
    """An ``ap_fixed`` assignment: raw integers with ``frac`` fractional bits into ``fmt`` (AP_TRN, AP_WRAP)."""
    return requantize(raw, frac, fmt, "truncate", "wrap")


# ---- the activation tables --------------------------------------------------------------------------------

def _table_inputs(span: int, size: int) -> np.ndarray:
    """``in_val`` of each entry: ``span * (ii - size/2) / size`` (computed in double, stored as float)."""
    ii = np.arange(size, dtype=np.float64)
    return (span * (ii - size / 2.0) / size).astype(np.float32)


def sigmoid_table(fmt: Fmt = Fmt.parse(TABLE_TYPE), size: int = TABLE_SIZE) -> np.ndarray:
    """Raw entries of hls4ml's sigmoid table: ``(float)(1.0 / (1 + expf(-x)))`` truncated into ``fmt``."""
    x = _table_inputs(SIGMOID_SPAN, size)
    e = np.exp(-x.astype(np.float64)).astype(np.float32)       # expf, correctly rounded
    s = np.float32(1) + e                                        # float addition
    return quantize((1.0 / s.astype(np.float64)).astype(np.float32).astype(np.float64), fmt, "truncate", "wrap")


def tanh_table(fmt: Fmt = Fmt.parse(TABLE_TYPE), size: int = TABLE_SIZE) -> np.ndarray:
    """Raw entries of hls4ml's tanh table: ``tanhf(x)`` truncated into ``fmt``."""
    x = _table_inputs(TANH_SPAN, size)
    t = np.tanh(x.astype(np.float64)).astype(np.float32)
    return quantize(t.astype(np.float64), fmt, "truncate", "wrap")


def table_index(raw, frac: int, span: int, size: int) -> np.ndarray:
    """``int(x * size / span) + (span / 2) * size / span`` clamped to ``0 .. size - 1``, where ``int()``
    truncates toward zero (``ap_fixed::to_int``) and ``x = raw * 2**-frac``."""
    raw = np.asarray(raw, dtype=np.int64)
    num = raw * np.int64(size)
    den = np.int64(span) << np.int64(frac)
    q = np.abs(num) // den
    data_round = np.where(num < 0, -q, q)
    return np.clip(data_round + (span // 2) * size // span, 0, size - 1)


# ---- the layers ---------------------------------------------------------------------------------------------

@dataclass
class Hls4mlCell:
    """One hls4ml recurrent layer: the integer parameters, the types it computes with and the pieces its
    two layers share (``dense_latency``, the tables, the sequence loop).

    Build it with :meth:`from_params`, which returns the layer class the cell's kind declares
    (:func:`layer_class`); :meth:`run` gives ``h`` at every step (raw integers in ``types.result``),
    :meth:`last_h` what a layer with ``return_sequences = False`` returns.  A layer class names
    hls4ml's layer (``layer``), the number of state arrays it carries (``h`` first) and its ``step``.
    """

    layer: ClassVar[str]
    state_size: ClassVar[int]

    types: Hls4mlTypes
    w: np.ndarray        # (G*H, I) in types.weight
    u: np.ndarray        # (G*H, H) in types.recurrent_weight
    b: np.ndarray        # (G*H,) in types.bias
    b_h: np.ndarray      # (G*H,) in types.recurrent_bias

    def __post_init__(self):
        self._sig = sigmoid_table(self.types.table, self.types.table_size)
        self._tanh = tanh_table(self.types.table, self.types.table_size)

    @classmethod
    def from_params(cls, params: CellParams, types: Hls4mlTypes) -> "Hls4mlCell":
        """The layer hls4ml builds from the PyTorch module holding ``params`` (float32 weights).

        Raises Hls4mlError for what hls4ml cannot build: a cell whose kind declares no hls4ml layer
        (peephole or coupled-gate LSTMs, reset-before GRUs: hls4ml's GRU template always applies the
        reset gate after the product), and types the layer cannot compile with (:meth:`check_types`).
        """
        if not isinstance(params, CellParams):
            raise Hls4mlError(f"params must be a model.CellParams, not {type(params).__name__}")
        if not isinstance(types, Hls4mlTypes):
            raise Hls4mlError(f"types must be an Hls4mlTypes, not {type(types).__name__}")
        layer = layer_class(params)
        layer.check_types(types)
        t = types
        return layer(t, quantize_weights(params.w_ih, t.weight), quantize_weights(params.w_hh, t.recurrent_weight),
                     quantize_weights(params.b_ih, t.bias), quantize_weights(params.b_hh, t.recurrent_bias))

    @classmethod
    def check_types(cls, types: Hls4mlTypes) -> None:
        """Raise Hls4mlError for types this layer's C++ does not compile with (none by default)."""

    @property
    def hidden_size(self) -> int:
        return self.u.shape[1]

    # -- the pieces, named as in nnet_recurrent.h --
    def dense(self, x, x_fmt: Fmt, w, w_fmt: Fmt, b, b_fmt: Fmt) -> np.ndarray:
        """``dense_latency``: each product truncated into accum_t, the bias cast into it, the sum wrapped.

        The wrap makes the sum modular, so it runs in the narrowest integer type that holds a shifted
        product and ``accum_t`` (two's complement arithmetic wraps the same), one input at a time.
        """
        acc = self.types.accum
        shift = x_fmt.frac_bits + w_fmt.frac_bits - acc.frac_bits
        bits = max(x_fmt.width + w_fmt.width - min(shift, 0), acc.width)
        if bits > 64:
            raise Hls4mlError(f"types: a product of {x_fmt.ap} and {w_fmt.ap} aligned to accum {acc.ap} needs "
                              f"{bits} bits; the profile computes in at most 64")
        dtype, unsigned = next((d, u) for d, u in _NARROW if bits <= np.iinfo(d).bits)
        xt, wt = x.astype(dtype), w.T.astype(dtype)
        total = np.empty((x.shape[0], w.shape[0]), dtype=dtype)
        total[:] = cast(b, b_fmt.frac_bits, acc).astype(dtype)
        prod = np.empty_like(total)
        for i in range(wt.shape[0]):
            np.multiply(xt[:, i, None], wt[i], out=prod)
            if shift > 0:
                np.right_shift(prod, shift, out=prod)          # floor, as AP_TRN
            elif shift < 0:
                np.left_shift(prod, -shift, out=prod)
            np.add(total, prod, out=total)
        spare = np.iinfo(dtype).bits - acc.width
        if not acc.signed or spare == 0:
            return overflow(total.astype(np.int64), acc, "wrap")
        # the wrap into a signed accum_t: sign-extend from its width (shift left unsigned, right signed)
        np.left_shift(total.view(unsigned), spare, out=total.view(unsigned))
        np.right_shift(total, spare, out=total)
        return total.astype(np.int64)

    def sigmoid(self, raw, frac: int) -> np.ndarray:
        t = self.types
        idx = table_index(raw, frac, SIGMOID_SPAN, t.table_size)
        return cast(self._sig[idx], t.table.frac_bits, t.accum)

    def tanh(self, raw, frac: int) -> np.ndarray:
        t = self.types
        idx = table_index(raw, frac, TANH_SPAN, t.table_size)
        return cast(self._tanh[idx], t.table.frac_bits, t.accum)

    def run(self, x) -> np.ndarray:
        """``h`` at every step, raw integers in ``types.result``, shape ``(batch, steps, hidden)``.

        ``x`` is float ``(batch, steps, input)`` (converted as ``predict`` does) or, of an integer
        dtype, raw integers already in ``types.input``; the state starts at zero.
        """
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.w.shape[1]:
            raise Hls4mlError(f"x must have shape (batch, steps, {self.w.shape[1]}), not {x.shape}")
        t = self.types
        if np.issubdtype(x.dtype, np.integer):
            if not t.input.contains(x):
                raise Hls4mlError(f"raw x values must lie in the input type {t.input.ap}: "
                                  f"[{t.input.min_int}, {t.input.max_int}], got [{x.min()}, {x.max()}]")
            xq = x.astype(np.int64)
        else:
            xq = quantize_input(x, t.input)
        batch, steps, _ = xq.shape
        wx = self.dense(xq.reshape(batch * steps, -1), t.input, self.w, t.weight, self.b, t.bias)
        wx = wx.reshape(batch, steps, -1)
        state = (np.zeros((batch, self.hidden_size), dtype=np.int64),) * self.state_size
        out = np.empty((batch, steps, self.hidden_size), dtype=np.int64)
        for k in range(steps):
            state = self.step(wx[:, k], state)
            out[:, k] = state[0]
        return out

    def last_h(self, x) -> np.ndarray:
        """``h`` after the last step (what hls4ml's layer returns without ``return_sequences``)."""
        return self.run(x)[:, -1]

    def step(self, wx, state) -> tuple:
        """The next state from ``W x + b`` of this step (raw, in ``accum_t``) and the state."""
        raise NotImplementedError

    def _recurrent(self, h):
        t = self.types
        return self.dense(h, t.result, self.u, t.recurrent_weight, self.b_h, t.recurrent_bias)


class Hls4mlLstm(Hls4mlCell):
    """hls4ml's ``LSTM`` (``lstm_static``): gates ``i, f, g, o``, state ``(h, c)``."""

    layer = "LSTM"
    state_size = 2

    @classmethod
    def check_types(cls, types: Hls4mlTypes) -> None:
        """Its input, accum and result types must be one (nnet_recurrent.h passes one for the other)."""
        t = types
        if not t.input == t.accum == t.result:
            raise Hls4mlError(f"types: hls4ml 1.3's LSTM compiles only when input, accum and result are one type "
                              f"(nnet_recurrent.h passes one for the other), not {t.input.ap}, {t.accum.ap} and "
                              f"{t.result.ap}")

    def step(self, wx, state):
        h, c = state
        t = self.types
        fa, fr = t.accum.frac_bits, t.result.frac_bits
        n = self.hidden_size
        uh = self._recurrent(h)
        pre = overflow(wx + uh, t.accum, "wrap")                      # i, f, g, o
        i, f, o = (self.sigmoid(pre[:, k * n:(k + 1) * n], fa) for k in (0, 1, 3))
        g = self.tanh(pre[:, 2 * n:3 * n], fa)
        # g*i + c*f exactly (input, accum and result are one type, so both have 2 fa fractional bits), one cast
        c = cast(g * i + c * f, 2 * fa, t.result)
        h = cast(o * self.tanh(c, fr), 2 * fa, t.result)
        return h, c


class Hls4mlGru(Hls4mlCell):
    """hls4ml's ``GRU`` (``gru_static``, the reset gate applied after the product): gates ``r, z, n``,
    state ``(h,)``."""

    layer = "GRU"
    state_size = 1

    def step(self, wx, state):
        (h,) = state
        t = self.types
        fa, fr = t.accum.frac_bits, t.result.frac_bits
        n = self.hidden_size
        uh = self._recurrent(h)
        rz = self.sigmoid(overflow(wx[:, :2 * n] + uh[:, :2 * n], t.accum, "wrap"), fa)
        r, z = rz[:, :n], rz[:, n:]
        rh = cast(r * uh[:, 2 * n:], 2 * fa, t.accum)
        cand = self.tanh(overflow(wx[:, 2 * n:] + rh, t.accum, "wrap"), fa)
        one = np.int64(1) << np.int64(fa)
        # n*(1-z) (2 fa) + h*z (fr + fa) exactly, then one cast
        if fa >= fr:
            total, frac = cand * (one - z) + (h * z << np.int64(fa - fr)), 2 * fa
        else:
            total, frac = (cand * (one - z) << np.int64(fr - fa)) + h * z, fr + fa
        return (cast(total, frac, t.result),)


#: hls4ml's recurrent layers by the name a kind declares (``hls4ml_layer``).
LAYERS = {c.layer: c for c in (Hls4mlLstm, Hls4mlGru)}


def layer_class(params: CellParams) -> type:
    """The layer class of ``params``' cell: the one its kind declares as ``hls4ml_layer`` (a kind without
    that attribute, or with None for the variant, has no hls4ml layer: Hls4mlError)."""
    name = getattr(params.cell, "hls4ml_layer", None)
    if name is None:
        raise Hls4mlError(f"params: hls4ml 1.3 has a plain LSTM and a reset-after GRU, not kind "
                          f"{params.kind!r} with options {params.options}")
    return LAYERS[name]
