"""Numerics of the dense head: formats, the exact accumulator, quantized parameters and the
bit-exact logits and class.

``logits = requant(W y + b)``: ``y`` is the last layer's output (raw, in its ``hidden`` format),
``W`` in ``formats.weight``, ``b`` in ``formats.bias``.  Products and the sum are exact in an
accumulator with ``max(Fw + Fy, Fb)`` fraction bits whose width is derived from the worst case (like
the cell's :class:`~model.datapath.Datapath`); one requantization (point ``head``, the head's
``rounding`` and ``overflow``) gives ``formats.logits``.  The class is the index of the largest
logit, the lowest index on a tie.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Mode, _mode
from ..datapath import MAX_ACC_WIDTH
from ..errors import ConfigError
from ..fixedpoint import Fmt, FormatError, bits_for, requantize
from ..params import quantize_counted

#: The head's format tensors and what each holds (``acc`` is optional: derived when absent).
HEAD_TENSORS = {"weight": "head weights", "bias": "head biases", "logits": "the logits (the head's output)",
                "acc": "the accumulator W y + b (exact; derived when not given)"}


@dataclass(frozen=True)
class HeadConfig:
    """``classes`` outputs on ``features`` inputs in format ``in_fmt``; formats and the one mode."""

    classes: int
    features: int
    in_fmt: Fmt
    formats: dict
    mode: Mode
    param_rounding: str = "half_even"
    every_step: bool = False  # logits on every step, not only on a sequence's last

    @property
    def acc_frac(self) -> int:
        return max(self.formats["weight"].frac_bits + self.in_fmt.frac_bits, self.formats["bias"].frac_bits)

    @property
    def y_shift(self) -> int:
        return self.acc_frac - self.formats["weight"].frac_bits - self.in_fmt.frac_bits

    @property
    def b_shift(self) -> int:
        return self.acc_frac - self.formats["bias"].frac_bits

    @property
    def acc_max(self) -> int:
        f = self.formats
        return ((self.features * f["weight"].max_abs_int * self.in_fmt.max_abs_int << self.y_shift)
                + (f["bias"].max_abs_int << self.b_shift))

    @property
    def acc_fmt(self) -> Fmt:
        """The accumulator's format: ``formats.acc`` when given, else the narrowest exact one."""
        return self.formats.get("acc") or Fmt(True, bits_for(self.acc_max) - self.acc_frac, self.acc_frac)

    def to_dict(self) -> dict:
        return {"classes": self.classes, "formats": {t: str(f) for t, f in self.formats.items()},
                "modes": {"rounding": self.mode.rounding, "overflow": self.mode.overflow},
                "every_step": self.every_step}

    @classmethod
    def from_dict(cls, d: dict, features: int, in_fmt: Fmt, param_rounding: str) -> "HeadConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"[head] must be a table with classes, formats and modes, not {d!r}")
        unknown = sorted(set(d) - {"classes", "formats", "modes", "every_step"})
        if unknown:
            raise ConfigError(f"[head]: unknown key(s) {', '.join(unknown)}; accepted: classes, formats, modes, "
                              f"every_step")
        every = d.get("every_step", False)
        if not isinstance(every, bool):
            raise ConfigError(f"head.every_step must be true or false, not {every!r}")
        classes = d.get("classes")
        if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
            raise ConfigError(f"head.classes must be a positive integer, not {classes!r}")
        raw = d.get("formats")
        if not isinstance(raw, dict):
            raise ConfigError("[head.formats] is required: weight, bias and logits (acc optional)")
        unknown = sorted(set(raw) - set(HEAD_TENSORS))
        if unknown:
            raise ConfigError(f"head.formats: unknown tensor(s) {', '.join(unknown)}; accepted: "
                              f"{', '.join(HEAD_TENSORS)}")
        formats = {}
        for t in HEAD_TENSORS:
            if t not in raw:
                if t == "acc":
                    continue
                raise ConfigError(f"head.formats.{t} is required ({HEAD_TENSORS[t]})")
            try:
                formats[t] = Fmt.parse(raw[t])
            except FormatError as e:
                raise ConfigError(f"head.formats.{t}: {e}") from None
            if not formats[t].signed:
                raise ConfigError(f"head.formats.{t} = {formats[t]} must be signed")
        m = d.get("modes", {})
        if not isinstance(m, dict):
            raise ConfigError(f"head.modes must be a table with rounding and/or overflow, not {m!r}")
        mode = _mode(m, "head.modes")
        hc = cls(classes, features, in_fmt, formats, mode, param_rounding, every)
        exact = Fmt(True, bits_for(hc.acc_max) - hc.acc_frac, hc.acc_frac)
        acc = formats.get("acc")
        if acc is not None and (acc.frac_bits != hc.acc_frac or acc.max_int < hc.acc_max):
            raise ConfigError(f"head.formats.acc = {acc} cannot hold W y + b exactly: it needs {hc.acc_frac} "
                              f"fraction bits and at least {exact.int_bits} integer bits ({exact}), or leave it out")
        if exact.width > MAX_ACC_WIDTH:
            raise ConfigError(f"head formats too wide: the accumulator needs {exact.width} bits (limit "
                              f"{MAX_ACC_WIDTH}); narrow head.formats.weight or bias")
        return hc


@dataclass(eq=False)
class QHead:
    """Raw head parameters: ``weight`` ``(classes, features)`` and ``bias`` ``(classes,)`` int64, and how many
    values saturated in quantization."""
    weight: np.ndarray
    bias: np.ndarray
    saturated: dict


def quantize_head(head, hc: HeadConfig) -> QHead:
    """Float :class:`~model.network.HeadParams` into ``hc``'s formats (``param_rounding``, saturating)."""
    if head.weight.shape != (hc.classes, hc.features):
        raise ValueError(f"head weight has shape {head.weight.shape}; the config's head needs "
                         f"(classes, features) = ({hc.classes}, {hc.features})")
    sat = {}
    w, sat["head_weight"] = quantize_counted(head.weight, hc.formats["weight"], hc.param_rounding)
    b, sat["head_bias"] = quantize_counted(head.bias, hc.formats["bias"], hc.param_rounding)
    return QHead(w, b, sat)


def logits(q: QHead, hc: HeadConfig, y) -> tuple:
    """``(logits, saturated)``: raw logits of raw ``y`` (``(..., features)``) and how many saturated."""
    y = np.asarray(y, dtype=np.int64)
    acc = ((y.astype(np.float64) @ q.weight.T.astype(np.float64)).astype(np.int64) << hc.y_shift) \
        + (q.bias << hc.b_shift)
    out, flags = requantize(acc, hc.acc_frac, hc.formats["logits"], hc.mode.rounding, hc.mode.overflow,
                            return_flags=True)
    return out, int(np.count_nonzero(flags))


def classes(raw_logits) -> np.ndarray:
    """The index of the largest logit over the last axis, the lowest index on a tie."""
    return np.argmax(raw_logits, axis=-1)
