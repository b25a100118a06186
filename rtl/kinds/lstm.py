"""LSTM-family post-processor, one row per cycle in the kind's ``hw_order`` (``o, i, f, g`` per
unit for an LSTM; a kind that derives one of ``i``, ``f`` from the other has no row for it and
its ``1 - x`` is formed exactly as the computed gate is registered).

Stages, each relative to the one before (``A`` = ``model.latency.ACT``, ``P`` =
``model.latency.PRODUCT``: a product is registered before anything adds to it)::

    S1 row     SR = S1+1: acc, bias, aux, c(t-1) registered     peephole: SR+P p*c(t-1)
    SS: acc + b (+ p*c)     S2 = SS+1: [pre] requantize      S3 = S2+1: activation in
    SG = S3+A: gate values; the g row: f*c, i*g     SG+P: f*c + i*g     SC = SG+P+1: [cell]
    SM = SC+1: c(t) -> c memory      SM+A: tanh(c)
    peephole c_new: SM+P o sum + p_o*c(t), then [pre], sigmoid at SM+P+2+A
    SO = the later of those: o * tanh(c)     SO+P: [hidden]      SO+P+1 = row_to_h: h register

(LSTM today: SG = 9, SM = 12, SO = 17, h at 19; peephole ``c_prev`` one stage later, h at 20;
``c_new`` SO = 21, h at 23.)
"""
from __future__ import annotations

from amaranth import Mux, Signal, signed

from model import latency
from model.activations import make_activation

from ..activation import ActivationUnit
from ..gates import HOut, Row, activation_units, hidden_out, one_minus, prev_state, requant, shape_of
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
    for sig in (row.valid, row.gate, row.unit, row.bank):
        p.put(sig, S1)
    # SR: the row's memory words registered before any arithmetic
    SR = S1 + 1
    acc, bias = p.reg(row.acc, SR, "acc"), p.reg(row.bias, SR, "bias", reset_less=True)
    prev = prev_state(p, row, SR, "prev")  # c(t-1)
    if kind.peep_rows:
        # c_new: o gets its peephole term from c(t) later
        skip = (row.gate == G) | (row.gate == O) if c_new else (row.gate == G)
        aux = p.reg(row.aux, SR, "aux")
        pc = p.product(p.reg(Mux(skip, 0, row.aux), SR, "auxm"), prev, "pc")
        SS = p.stage_of(pc)
        total = p.at(p.reg(acc + (bias << dp.b_shift), SR + 1, "accb"), SS) + (pc << dp.p_shift)
    else:
        SS = SR
        total = acc + (bias << dp.b_shift)
    # S2: requantize to the pre-activation format
    S2 = SS + 1
    sum2 = p.reg(total, S2, "sum", signed(dp.acc_width + 1))
    pv2, hg2 = p.at(row.valid, S2, "pv"), p.at(row.gate, S2, "hg")
    pre = requant(m, cfg, st, sum2, dp.acc_frac, "pre", "pre", pv2 & ((hg2 != O) if c_new else 1))
    if c_new:
        # the o row's sum and p_o, held for the unit's g row (taken along from S2)
        po2 = p.at(aux, S2, "po")
        osum_r, po_r = Signal.like(sum2, name="osum_r"), Signal.like(po2, name="po_r")
        with m.If(pv2 & (hg2 == O)):
            m.d.sync += [osum_r.eq(sum2), po_r.eq(po2)]
        p.put(osum_r, S2)
        p.put(po_r, S2)
    # S3: activation units
    S3 = S2 + 1
    assert S3 == latency.ROW_TO_ACT + (latency.PRODUCT if kind.peep_rows else 0), S3
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
    fc = p.product(f_r, p.at(prev, SG, "c"), "fc")
    ig = p.product(i_r, p.put(tnh.y, SG), "ig")
    csum = (fc << dp.fc_shift) + (ig << dp.ig_shift)
    # SC: [cell] requantize c(t)
    SC = p.stage_of(fc) + 1
    csum_c = p.reg(csum, SC, "csum", signed(len(csum) + 1))
    cv = p.at(p.put(v & (hgd == G), SG, "gv"), SC, "cv")
    cnew = requant(m, cfg, st, csum_c, dp.cell_frac, "cell", "cell", cv)
    # SM: c(t) into the state memory and the tanh(c) unit
    SM = SC + 1
    c_m = p.reg(cnew, SM, "c", signed(f["cell"].width))
    cv_m, u_m = p.at(cv, SM), p.at(row.unit, SM, "u")
    m.d.comb += [state_w.addr.eq(u_m), state_w.bank.eq(p.at(row.bank, SM, "bm")), state_w.data.eq(c_m),
                 state_w.en.eq(cv_m),
                 tnc.x.eq(c_m), tnc.valid_in.eq(cv_m)]
    tc = p.put(tnc.y, SM + A)
    if c_new:
        # SM+P: o's pre-activation with p_o * c(t); then [pre] and its own sigmoid
        poc = p.product(p.at(po_r, SM), c_m, "poc")
        so = p.stage_of(poc)
        osum = p.reg(p.at(osum_r, so) + (poc << dp.p_shift), so + 1, "osum", signed(len(sum2) + 1))
        pre_o = requant(m, cfg, st, osum, dp.acc_frac, "pre", "pre", p.at(cv, so + 1))
        pre_o2 = p.reg(pre_o, so + 2, "pre_o", shape_of(f["pre"]))
        m.submodules.sig_o = sig_o = ActivationUnit(make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"]))
        assert sig_o.latency == A
        m.d.comb += [sig_o.x.eq(pre_o2), sig_o.valid_in.eq(1)]
        o_final = p.put(sig_o.y, so + 2 + A)
    else:
        o_final = o_r
    # SO: o * tanh(c); SO+P: [hidden]; SO+P+1: h
    oc = p.product(o_final, tc, "oc")
    SO = p.stage_of(oc)
    out = hidden_out(m, p, cfg, dp, st, oc, p.at(cv, SO), p.at(row.unit, SO, "u"), p.at(row.bank, SO, "pp"))
    assert p.stage_of(out.h) == kind.row_to_h, (p.stage_of(out.h), kind.row_to_h)
    return out
