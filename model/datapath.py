"""Widths and alignment shifts of every arithmetic stage, derived once from a config.

The golden model and the gateware both read this record, so the binary point of
every intermediate value is decided in one place.  All alignments are exact left
shifts onto the widest fractional position in play; bits are dropped only at the
named requantization points (``pre``, ``cell``, ``hidden``, ``gru_hn``, ``gru_rh``).

::

    x (Fx) --*W (Fw)--> <<sx --+
    h (Fh) --*W (Fw)--> <<sh --+--> acc (acc_frac, acc_width) --[pre]--> pre --> sigma/tanh
    b (Fb) -----------> <<sb --+
    p*c (Fp+Fc) ------> <<sp --+   (peephole LSTM)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError
from .fixedpoint import bits_for

#: Integer sums whose magnitude stays below this are exact in float64.
FLOAT_EXACT = 2 ** 53
#: Widest intermediate the int64 golden model accepts.
MAX_ACC_WIDTH = 62


@dataclass(frozen=True)
class Datapath:
    """Fractional positions (``*_frac``), left shifts (``*_shift``) and widths of each stage.

    The fields below are common to every kind; the kind adds its own (its
    :meth:`~model.kinds.CellKind.datapath`, e.g. ``cell_frac`` of an LSTM or
    ``nh_frac`` of a GRU), read as attributes too.
    """

    acc_frac: int
    x_shift: int
    h_shift: int
    b_shift: int
    acc_width: int
    acc_max: int
    proj_max: int           # largest |W x| or |W h| dot product, in its own units
    extra: dict = field(default_factory=dict)

    def __getattr__(self, key):
        extra = self.__dict__.get("extra", {})
        if key in extra:
            return extra[key]
        raise AttributeError(f"the datapath has no field {key!r} (kind fields: {', '.join(extra) or 'none'})")

    @classmethod
    def from_config(cls, cfg) -> "Datapath":
        f, cell = cfg.formats, cfg.cell
        fw, fx, fh, fb = (f[t].frac_bits for t in ("weight", "input", "hidden", "bias"))
        terms = cell.acc_terms(f)
        acc_frac = max([fw + fx, fw + fh, fb] + [fr for _, fr in terms])
        wmax = f["weight"].max_abs_int
        xproj = cfg.input_size * wmax * f["input"].max_abs_int
        hproj = cfg.hidden_size * wmax * f["hidden"].max_abs_int
        acc_max = ((xproj << (acc_frac - fw - fx)) + (hproj << (acc_frac - fw - fh))
                   + (f["bias"].max_abs_int << (acc_frac - fb)))
        acc_max += sum(m << (acc_frac - fr) for m, fr in terms)
        proj_max = max(xproj, hproj)
        acc_width = bits_for(acc_max)
        if acc_width > MAX_ACC_WIDTH:
            raise ConfigError(
                f"formats too wide for hidden_size={cfg.hidden_size}, input_size={cfg.input_size}: the "
                f"accumulator needs {acc_width} bits (limit {MAX_ACC_WIDTH}); narrow formats.weight, "
                f"input, hidden or bias")
        if proj_max >= FLOAT_EXACT:
            raise ConfigError(
                f"formats too wide for hidden_size={cfg.hidden_size}, input_size={cfg.input_size}: a dot "
                f"product reaches 2**{proj_max.bit_length()} (limit 2**53 for exact float64 sums); "
                f"narrow formats.weight, input or hidden")
        return cls(acc_frac=acc_frac, x_shift=acc_frac - fw - fx, h_shift=acc_frac - fw - fh,
                   b_shift=acc_frac - fb, acc_width=acc_width, acc_max=acc_max, proj_max=proj_max,
                   extra=cell.datapath(f, acc_frac))
