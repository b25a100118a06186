"""LSTM-family post-processor, one row per cycle in the kind's ``hw_order`` (``o, i, f, g`` per
unit for an LSTM; a kind that derives one of ``i``, ``f`` from the other has no row for it and
its ``1 - x`` is formed exactly as the computed gate is registered).

Stages, each relative to the one before (``A`` = ``model.latency.ACT``)::

    S1 row: sum = acc + b (+ p*c(t-1))     S2 = S1+1: [pre] requantize      S3 = S2+1: activation in
    SG = S3+A: gate values; the g row: f*c + i*g        SC = SG+1: [cell]    SM = SC+1: c(t) -> c memory
    SC + 1 + A: tanh(c)        peephole c_new: SM+1 o sum + p_o*c(t), SM+2 [pre], sigmoid SM+2+A
    SO = the later of those: o * tanh(c)     SO+1: [hidden]      SO+2 = row_to_h: h register

(LSTM today: SG = 6, SM = 8, SO = 11, h at 13; ``c_new`` SO = 13, h at 15.)
"""
from __future__ import annotations

from amaranth import Mux, Signal, signed

from model import latency
from model.activations import make_activation

from ..activation import ActivationUnit
from ..gates import HOut, Row, activation_units, hidden_out, one_minus, requant, shape_of
from ..stages import Stages


def post_process(m, cfg, dp, row: Row, st, state_w, extra=None) -> HOut:
    """Elaborate the LSTM-family rows' arithmetic into ``m``; c(t) goes to the state memory through
    ``state_w``; returns h at stage ``cfg.cell.row_to_h``."""
    f = cfg.formats
    kind = cfg.cell
    A = latency.ACT
    hw = {kind.gates[g]: k for k, g in enumerate(kind.hw_order)}  # gate name -> hardware gate index
    O, G = hw["o"], hw["g"]
    c_new = kind.peephole_mode == "c_new"
    p = Stages(m)
    S1 = 1
    for sig in (row.valid, row.gate, row.unit, row.par, row.prev):
        p.put(sig, S1)
    total = row.acc + (row.bias << dp.b_shift)
    if kind.peep_rows:
        # c_new: o gets its peephole term from c(t) later
        skip = (row.gate == G) | (row.gate == O) if c_new else (row.gate == G)
        total = total + (Mux(skip, 0, row.aux * row.prev) << dp.p_shift)
    # S2: requantize to the pre-activation format
    S2 = S1 + 1
    sum2 = p.reg(total, S2, "sum", signed(dp.acc_width + 1))
    pv2, hg2 = p.at(row.valid, S2, "pv"), p.at(row.gate, S2, "hg")
    pre = requant(m, cfg, st, sum2, dp.acc_frac, "pre", "pre", pv2 & ((hg2 != O) if c_new else 1))
    if c_new:
        # the o row's sum and p_o, held for the unit's g row (taken along from S2)
        po2 = p.reg(row.aux, S2, "po", signed(f["peephole"].width))
        osum_r, po_r = Signal.like(sum2, name="osum_r"), Signal.like(po2, name="po_r")
        with m.If(pv2 & (hg2 == O)):
            m.d.sync += [osum_r.eq(sum2), po_r.eq(po2)]
        p.put(osum_r, S2)
        p.put(po_r, S2)
    # S3: activation units
    S3 = S2 + 1
    pre3 = p.reg(pre, S3, "pre", shape_of(f["pre"]))
    pv3 = p.at(row.valid, S3, "pv")
    sig, tnh, tnc = activation_units(m, cfg)
    m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(pv3), tnh.x.eq(pre3), tnh.valid_in.eq(pv3)]
    # SG: gate values (a derived gate is one minus the computed one, exact, one bit wider), held for
    # the unit's later rows; the g row forms the cell sum
    SG = S3 + A
    v, hgd = p.at(row.valid, SG, "pv"), p.at(row.gate, SG, "hg")
    gv = {}
    for name in ("o", "i", "f"):
        gv[name] = Signal(shape_of(f["gate"]) if name in hw else signed(f["gate"].width + 2), name=f"{name}_r")
    with m.If(v):
        with m.Switch(hgd):
            for name in ("o", "i", "f"):
                if name in hw:
                    with m.Case(hw[name]):
                        m.d.sync += gv[name].eq(sig.y)
                        for derived in (d for d in ("i", "f") if d not in hw and name != "o"):
                            m.d.sync += gv[derived].eq(one_minus(cfg, sig.y))
    o_r, i_r, f_r = (p.put(gv[n], SG) for n in ("o", "i", "f"))
    csum = (f_r * p.at(row.prev, SG, "c") << dp.fc_shift) + (i_r * p.put(tnh.y, SG) << dp.ig_shift)
    # SC: [cell] requantize c(t)
    SC = SG + 1
    csum_c = p.reg(csum, SC, "csum", signed(len(csum) + 1))
    cv = p.reg(v & (hgd == G), SC, "cv")
    o_c = p.reg(o_r, SC, "o")
    cnew = requant(m, cfg, st, csum_c, dp.cell_frac, "cell", "cell", cv)
    # SM: c(t) into the state memory and the tanh(c) unit
    SM = SC + 1
    c_m = p.reg(cnew, SM, "c", signed(f["cell"].width))
    cv_m, u_m = p.at(cv, SM), p.at(row.unit, SM, "u")
    m.d.comb += [state_w.addr.eq(u_m), state_w.data.eq(c_m), state_w.en.eq(cv_m),
                 tnc.x.eq(c_m), tnc.valid_in.eq(cv_m)]
    tc = p.put(tnc.y, SM + A)
    if c_new:
        # SM+1: o's pre-activation with p_o * c(t); SM+2: [pre]; then its own sigmoid
        osum = p.reg(p.at(osum_r, SM) + ((p.at(po_r, SM) * c_m) << dp.p_shift), SM + 1, "osum",
                     signed(len(sum2) + 1))
        pre_o = requant(m, cfg, st, osum, dp.acc_frac, "pre", "pre", p.at(cv, SM + 1))
        pre_o2 = p.reg(pre_o, SM + 2, "pre_o", shape_of(f["pre"]))
        m.submodules.sig_o = sig_o = ActivationUnit(make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"]))
        assert sig_o.latency == A
        m.d.comb += [sig_o.x.eq(pre_o2), sig_o.valid_in.eq(1)]
        o_final = p.put(sig_o.y, SM + 2 + A)
    else:
        o_final = o_c
    # SO: o * tanh(c); SO+1: [hidden]; SO+2: h
    SO = max(p.stage_of(o_final), p.stage_of(tc))
    oc = p.reg(p.at(o_final, SO) * p.at(tc, SO), SO + 1, "oc", signed(len(o_final) + len(tc) + 1))
    out = hidden_out(m, p, cfg, dp, st, oc, p.at(cv, SO + 1), p.at(row.unit, SO + 1, "u"),
                     p.at(row.par, SO + 1, "pp"))
    assert p.stage_of(out.h) == kind.row_to_h, (p.stage_of(out.h), kind.row_to_h)
    return out
