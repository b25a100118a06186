"""The contract between the shared gate pipeline (:mod:`rtl.cell`) and each cell kind's post-processor.

The shared pipeline hands every weight row to the kind's post-processor
(:mod:`rtl.kinds`, found through the kind's ``gateware``) at stage P1 as a
:class:`Row`; the post-processor returns each unit's new hidden value as an
:class:`HOut` at stage ``cfg.cell.row_to_h``, drives the state memory's write
port and sets its status bits.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Const, Signal, signed, unsigned

from model import latency
from model.activations import make_activation

from .activation import ActivationUnit
from .requant import requantize


@dataclass
class Row:
    """A row at stage P1.

    ``acc`` is the lane's dot product; ``acc_x`` its ``x`` part alone (reset-after
    GRU only); ``gate`` the hardware gate index; ``bias`` and ``aux`` the memory
    words of the row (``aux`` per the kind's :attr:`model.kinds.CellKind.aux`); ``prev`` the
    unit's state from the previous step (c(t-1) or h(t-1)), zero at a sequence start.
    """
    valid: Signal
    acc: Signal
    acc_x: Signal | None
    gate: Signal
    unit: Signal
    par: Signal
    bias: object
    aux: object
    prev: Signal


@dataclass
class HOut:
    """A unit's hidden value at stage ``row_to_h``: valid, value, unit index and h bank parity."""
    valid: Signal
    h: Signal
    unit: Signal
    par: Signal


@dataclass
class Extra:
    """Resources only some kinds use: the pass-2 operand memory's write port and its ready flags.

    ``op_ready[p]``: every operand of the step with h-bank parity ``p`` is written.
    """
    op_write: object = None
    op_ready: object = None


def shape_of(fmt):
    """Amaranth shape of a :class:`model.fixedpoint.Fmt`'s raw integers."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def activation_units(m, cfg):
    """One unit per activation of the kind (:meth:`model.kinds.CellKind.activations`: sigmoid
    pre -> gate, tanh pre -> candidate, and tanh(c) cell -> cell_act for the LSTM kinds), in that
    order; each has ``model.latency.ACT``."""
    f = cfg.formats
    units = []
    for attr, fn, fin, fout in cfg.cell.activations():
        unit = ActivationUnit(make_activation(fn, getattr(cfg, fn), f[fin], f[fout]))
        assert unit.latency == latency.ACT
        m.submodules[attr] = unit
        units.append(unit)
    return units


def one_minus(cfg, gate):
    """``1 - gate`` in the gate format's fraction: exact, unsigned and two bits wider than the gate
    format (a gate lies in [0, 1], so the value does too and may equal 1.0)."""
    fmt = cfg.fmt("gate")
    return Const(1 << fmt.frac_bits, unsigned(fmt.width + 1)) - gate


def delay(m, sig, n: int, name: str, start: int):
    """``sig`` delayed by ``n`` registers named ``{name}{start + 1}`` .. ``{name}{start + n}``."""
    for k in range(n):
        nxt = Signal.like(sig, name=f"{name}{start + k + 1}")
        m.d.sync += nxt.eq(sig)
        sig = nxt
    return sig


def hidden_out(m, cfg, dp, st, value, v, unit, par, stage: int) -> HOut:
    """[hidden] requantize ``value`` (at ``dp.out_frac``, valid with ``v`` at ``stage``); h registered at ``stage + 1``."""
    mh = cfg.mode("hidden")
    hval, hsat = requantize(value, dp.out_frac, cfg.fmt("hidden"), mh.rounding, mh.overflow)
    with m.If(v & hsat):
        m.d.sync += st.sat_hidden.eq(1)
    h = Signal(signed(cfg.fmt("hidden").width), name="h_out")
    m.d.sync += h.eq(hval)
    return HOut(delay(m, v, 1, "hv", stage), h, delay(m, unit, 1, "hu", stage), delay(m, par, 1, "hpp", stage))
