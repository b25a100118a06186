"""The contract between the shared gate pipeline (:mod:`rtl.cell`) and each cell kind's post-processor.

The shared pipeline hands every weight row to the kind's post-processor
(:mod:`rtl.kinds`, found through the kind's ``gateware``) at stage P1 as a
:class:`Row`; the post-processor returns each unit's new hidden value as an
:class:`HOut` at stage ``cfg.cell.row_to_h``, drives the state write port
(``addr`` the unit, ``bank`` the row's bank, ``data``, ``en``; the cell finds the
sequence's state from the bank) and sets its status bits.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Const, Mux, Signal, signed, unsigned

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
    unit's state from the previous step (c(t-1) or h(t-1)) and ``prev0`` its initial state, the one to
    use when ``sos`` (the row's step starts a sequence): :func:`prev_state` chooses.
    """
    valid: Signal
    acc: Signal
    acc_x: Signal | None
    gate: Signal
    unit: Signal
    bank: Signal
    bias: object
    aux: object
    prev: Signal
    prev0: Signal
    sos: Signal


@dataclass
class HOut:
    """A unit's hidden value at stage ``row_to_h``: valid, value, unit index and h bank (:class:`Row`)."""
    valid: Signal
    h: Signal
    unit: Signal
    bank: Signal


@dataclass
class Extra:
    """Resources only some kinds use: the pass-2 operand memory's write port and its ready flags.

    ``op_ready[b]``: every operand of the step with h bank ``b`` is written.
    """
    op_write: object = None
    op_ready: object = None


def prev_state(p, row: Row, stage: int, name: str):
    """The unit's previous state at ``stage`` (the row's memory words' stage, P2): ``row.prev``, or
    ``row.prev0`` at a sequence start.  Both memory words are registered at ``stage`` and chosen after
    their registers (on the way into the next stage's), so no cycle holds a memory read and the choice."""
    mem, init, sos = (p.reg(v, stage, f"{name}_{t}")
                      for v, t in ((row.prev, "mem"), (row.prev0, "init"), (row.sos, "sos")))
    return p.put(Mux(sos, init, mem), stage, name)


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


def sat_points(cfg) -> dict:
    """Saturation status bit -> requantization point of ``model.golden`` whose saturations set it."""
    return {"sat_pre": "pre", **cfg.cell.status, "sat_hidden": "hidden"}


def requant(m, cfg, st, value, frac: int, point: str, tensor: str, valid):
    """``value`` (``frac`` fraction bits) requantized into ``formats[tensor]`` with point ``point``'s
    modes (combinational); the point's sticky status bit is set when ``valid`` and it saturated, one
    cycle later (the flag is registered first, so the rounding adder does not also drive the status
    register's set input)."""
    mode = cfg.mode(point)
    out, sat = requantize(value, frac, cfg.fmt(tensor), mode.rounding, mode.overflow)
    bit = {p: b for b, p in sat_points(cfg).items()}[point]
    flag = Signal(name=f"sat_{tensor}_{point}")
    m.d.sync += flag.eq(valid & sat)
    with m.If(flag):
        m.d.sync += getattr(st, bit).eq(1)
    return out


def hidden_out(m, stages, cfg, dp, st, value, v, unit, bank) -> HOut:
    """[hidden] requantize ``value`` (at ``dp.out_frac``; ``value``, ``v``, ``unit`` and ``bank`` belong to
    one stage); h is registered one stage later, the post-processor's last (``row_to_h``)."""
    s = stages.stage_of(value) + 1
    h = stages.reg(requant(m, cfg, st, value, dp.out_frac, "hidden", "hidden", v), s, "h_out",
                   signed(cfg.fmt("hidden").width))
    return HOut(stages.at(v, s), h, stages.at(unit, s), stages.at(bank, s))
