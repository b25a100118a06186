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

from dataclasses import dataclass

from .config import Config, ConfigError
from .fixedpoint import bits_for

#: Integer sums whose magnitude stays below this are exact in float64.
FLOAT_EXACT = 2 ** 53
#: Widest intermediate the int64 golden model accepts.
MAX_ACC_WIDTH = 62


@dataclass(frozen=True)
class Datapath:
    """Fractional positions (``*_frac``), left shifts (``*_shift``) and widths of each stage."""

    acc_frac: int
    x_shift: int
    h_shift: int
    b_shift: int
    p_shift: int
    acc_width: int
    acc_max: int
    cell_frac: int          # f*c + i*g aligned here (LSTM)
    fc_shift: int
    ig_shift: int
    out_frac: int           # LSTM: o*tanh(c);  GRU: (1-z)*n + z*h
    nh_frac: int            # GRU reset-after: acc_nx and r*hn aligned here
    nx_shift: int
    rhn_shift: int
    zn_shift: int
    zh_shift: int
    proj_max: int           # largest |W x| or |W h| dot product, in its own units

    @classmethod
    def from_config(cls, cfg: Config) -> "Datapath":
        f = cfg.formats
        fw, fx, fh, fb = (f[t].frac_bits for t in ("weight", "input", "hidden", "bias"))
        fc, fg, fcand, fca, fpre = (f[t].frac_bits if f[t] else 0
                                    for t in ("cell", "gate", "candidate", "cell_act", "pre"))
        peep = cfg.kind == "lstm" and cfg.peephole != "none"
        fp = f["peephole"].frac_bits if peep else 0
        fracs = [fw + fx, fw + fh, fb] + ([fp + fc] if peep else [])
        acc_frac = max(fracs)
        wmax = f["weight"].max_abs_int
        xproj = cfg.input_size * wmax * f["input"].max_abs_int
        hproj = cfg.hidden_size * wmax * f["hidden"].max_abs_int
        acc_max = ((xproj << (acc_frac - fw - fx)) + (hproj << (acc_frac - fw - fh))
                   + (f["bias"].max_abs_int << (acc_frac - fb)))
        if cfg.kind == "gru" and cfg.reset == "after":
            acc_max += f["bias"].max_abs_int << (acc_frac - fb)  # b_hn on top of b_in
        if peep:
            acc_max += (f["peephole"].max_abs_int * f["cell"].max_abs_int) << (acc_frac - fp - fc)
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
        cell_frac = max(fg + fc, fg + fcand)
        if cfg.kind == "lstm":
            out_frac = fg + fca
            zn_shift = zh_shift = 0
        else:
            out_frac = max(fg + fcand, fg + fh)
            zn_shift, zh_shift = out_frac - fg - fcand, out_frac - fg - fh
        nh_frac = max(acc_frac, fg + fpre)
        return cls(
            acc_frac=acc_frac, x_shift=acc_frac - fw - fx, h_shift=acc_frac - fw - fh,
            b_shift=acc_frac - fb, p_shift=(acc_frac - fp - fc) if peep else 0,
            acc_width=acc_width, acc_max=acc_max,
            cell_frac=cell_frac, fc_shift=cell_frac - fg - fc, ig_shift=cell_frac - fg - fcand,
            out_frac=out_frac, nh_frac=nh_frac, nx_shift=nh_frac - acc_frac, rhn_shift=nh_frac - fg - fpre,
            zn_shift=zn_shift, zh_shift=zh_shift, proj_max=proj_max)
