"""LSTM-family post-processor, one row per cycle in the kind's ``hw_order`` (``o, i, f, g`` per
unit for an LSTM; a kind that derives one of ``i``, ``f`` from the other has no row for it and
its ``1 - x`` is formed exactly as the computed gate is registered).

::

    P1 sum = acc + b + p*c(t-1)   P2 [pre] requant   P3..P6 sigmoid / tanh unit
    P6 (g row) f*c + i*g   P7 [cell] requant -> c memory   P8..P11 tanh(c)
    P11 o*tanh(c)   P12 [hidden] requant   P13 h register
    (peephole c_new: P8 o sum + p_o*c(t), P9 [pre], P10..P13 sigmoid, h two cycles later)
"""
from __future__ import annotations

from amaranth import Mux, Signal, signed

from model import latency
from model.activations import make_activation

from ..activation import ActivationUnit
from ..gates import HOut, Row, activation_units, delay, hidden_out, one_minus, shape_of
from ..requant import requantize


def post_process(m, cfg, dp, row: Row, st, state_w, extra=None) -> HOut:
    """Elaborate the LSTM-family rows' arithmetic into ``m``; c(t) goes to the state memory through
    ``state_w``; returns h at stage ``cfg.cell.row_to_h``."""
    f = cfg.formats
    kind = cfg.cell
    hw = {kind.gates[g]: k for k, g in enumerate(kind.hw_order)}  # gate name -> hardware gate index
    O, G = hw["o"], hw["g"]
    peep = kind.peep_rows > 0
    c_new = kind.peephole_mode == "c_new"
    cprev1 = row.prev
    total = row.acc + (row.bias << dp.b_shift)
    if peep:
        # c_new: o gets its peephole term from c(t) later, at P8
        skip = (row.gate == G) | (row.gate == O) if c_new else (row.gate == G)
        total = total + (Mux(skip, 0, row.aux * cprev1) << dp.p_shift)
    # P2: requantize to the pre-activation format
    pv2, sum2 = Signal(name="pv2"), Signal(signed(dp.acc_width + 1), name="sum2")
    hg2, u2, pp2, c2 = (Signal.like(row.gate, name="hg2"), Signal.like(row.unit, name="u2"),
                        Signal(name="pp2"), Signal.like(cprev1, name="c2"))
    m.d.sync += [pv2.eq(row.valid), sum2.eq(total), hg2.eq(row.gate), u2.eq(row.unit), pp2.eq(row.par),
                 c2.eq(cprev1)]
    mp = cfg.mode("pre")
    pre, sat = requantize(sum2, dp.acc_frac, f["pre"], mp.rounding, mp.overflow)
    with m.If(pv2 & sat & ((hg2 != O) if c_new else 1)):
        m.d.sync += st.sat_pre.eq(1)
    if c_new:
        # o row: keep its sum and p_o; the unit's g row takes them along (P2..P8)
        p2 = Signal(signed(f["peephole"].width), name="p2")
        osum_r, po_r = Signal.like(sum2, name="osum_r"), Signal.like(p2, name="po_r")
        m.d.sync += p2.eq(row.aux)
        with m.If(pv2 & (hg2 == O)):
            m.d.sync += [osum_r.eq(sum2), po_r.eq(p2)]
        osum_d, po_d = delay(m, osum_r, 6, "osum", 2), delay(m, po_r, 6, "po", 2)
    # P3: activation units
    pv3, pre3 = Signal(name="pv3"), Signal(shape_of(f["pre"]), name="pre3")
    m.d.sync += [pv3.eq(pv2), pre3.eq(pre)]
    hg3, u3, pp3, c3 = (delay(m, s, 1, n, 2) for s, n in ((hg2, "hg"), (u2, "u"), (pp2, "pp"), (c2, "c")))
    sig, tnh, tnc = activation_units(m, cfg)
    m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(pv3), tnh.x.eq(pre3), tnh.valid_in.eq(pv3)]
    A = latency.ACT
    v, hgd, ud, cd, ppd = (delay(m, s, A, n, 3) for s, n in
                           ((pv3, "pv"), (hg3, "hg"), (u3, "u"), (c3, "c"), (pp3, "pp")))
    # P6: gate values (a derived gate is one minus the computed one, exact, one bit wider);
    # the g row triggers the cell update
    gv = {}
    for name in ("o", "i", "f"):
        wide = name not in hw
        gv[name] = Signal(signed(f["gate"].width + 2) if wide else shape_of(f["gate"]), name=f"{name}_r")
    with m.If(v):
        with m.Switch(hgd):
            for name in ("o", "i", "f"):
                if name in hw:
                    with m.Case(hw[name]):
                        m.d.sync += gv[name].eq(sig.y)
                        for derived in (d for d in ("i", "f") if d not in hw and name != "o"):
                            m.d.sync += gv[derived].eq(one_minus(cfg, sig.y))
    o_r, i_r, f_r = gv["o"], gv["i"], gv["f"]
    cv7, o7 = Signal(name="cv7"), Signal.like(o_r, name="o7")
    csum = (f_r * cd << dp.fc_shift) + (i_r * tnh.y << dp.ig_shift)
    csum7 = Signal(signed(len(csum) + 1), name="csum7")
    m.d.sync += [cv7.eq(v & (hgd == G)), csum7.eq(csum), o7.eq(o_r)]
    u7, pp7 = delay(m, ud, 1, "u", 6), delay(m, ppd, 1, "pp", 6)
    # P7: requantize c(t)
    mc = cfg.mode("cell")
    cnew, csat = requantize(csum7, dp.cell_frac, f["cell"], mc.rounding, mc.overflow)
    with m.If(cv7 & csat):
        m.d.sync += st.sat_cell.eq(1)
    c8 = Signal(signed(f["cell"].width), name="c8")
    m.d.sync += c8.eq(cnew)
    cv8, o8, u8, pp8 = (delay(m, s, 1, n, 7) for s, n in ((cv7, "cv"), (o7, "o"), (u7, "u"), (pp7, "pp")))
    m.d.comb += [state_w.addr.eq(u8), state_w.data.eq(c8), state_w.en.eq(cv8),
                 tnc.x.eq(c8), tnc.valid_in.eq(cv8)]
    tc_y = tnc.y
    if c_new:
        # P8: o's pre-activation with p_o * c(t); P9: [pre] requantize; P10..P13: sigmoid
        osum9 = Signal(signed(len(sum2) + 1), name="osum9")
        m.d.sync += osum9.eq(osum_d + ((po_d * c8) << dp.p_shift))
        pre_o, osat = requantize(osum9, dp.acc_frac, f["pre"], mp.rounding, mp.overflow)
        pre10 = Signal(shape_of(f["pre"]), name="pre10")
        m.d.sync += pre10.eq(pre_o)
        m.submodules.sig_o = sig_o = ActivationUnit(make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"]))
        assert sig_o.latency == latency.ACT
        v9 = delay(m, cv8, 1, "ov", 8)
        with m.If(v9 & osat):
            m.d.sync += st.sat_pre.eq(1)
        m.d.comb += [sig_o.x.eq(pre10), sig_o.valid_in.eq(1)]
        tc_y = delay(m, tnc.y, kind.C_NEW_EXTRA, "tc", 11)
    n_rest = kind.row_to_h - 10
    v, od, ud, ppd = (delay(m, s, n_rest, n, 8) for s, n in ((cv8, "cv"), (o8, "o"), (u8, "u"), (pp8, "pp")))
    # P11 (P13 for c_new): o * tanh(c); P12 [hidden]
    last = kind.row_to_h - 2
    o_final = sig_o.y if c_new else od
    oc = Signal(signed(len(o_final) + len(tc_y) + 1), name=f"oc{last + 1}")
    m.d.sync += oc.eq(o_final * tc_y)
    v, ud, ppd = (delay(m, s, 1, n, last) for s, n in ((v, "cv"), (ud, "u"), (ppd, "pp")))
    assert last + 2 == kind.row_to_h and n_rest + 10 == kind.row_to_h
    return hidden_out(m, cfg, dp, st, oc, v, ud, ppd, last + 1)
