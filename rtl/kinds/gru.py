"""GRU gate math of the post-processor, one row per cycle, for both reset placements.

Reset-after (rows r, z, n per unit; ``acc_x`` splits the n row's dot product)::

    P1 r/z: acc + b   n: x part + b_in, h part + b_hn     P2 [pre] / [gru_hn] requant
    P3..P6 sigmoid (r, z)   P5 (n) x part + r * hn   P6 [pre]   P7..P10 tanh
    P10 (1 - z) * n + z * h(t-1)   P11 [hidden]   P12 h register

Reset-before (gate-major: all r rows, all z rows, then the n rows of pass 2)::

    P1 acc + b   P2 [pre]   P3..P6 sigmoid / tanh
    P6 r: r * h(t-1)   P7 [gru_rh] -> P8 operand memory (pass 2 reads it as its h part)
    P6 z: z memory     n: z read (P5 -> P6, registered P7), P8 1 - z, (1 - z) * n + z * h(t-1)
    P9 [hidden]   P10 h register
"""
from __future__ import annotations

from amaranth import Mux, Signal, signed
from amaranth.lib import memory

from model import latency

from ..gates import Extra, HOut, Row, activation_units, delay, hidden_out, one_minus, shape_of
from ..requant import requantize

R_GATE, Z_GATE, N_GATE = 0, 1, 2


def _one_minus(m, cfg, z, name, domain="comb"):
    """``1 - z`` as a signal (combinational, or registered with ``domain = 'sync'``)."""
    out = Signal(signed(cfg.fmt("gate").width + 2), name=name)
    m.d[domain] += out.eq(one_minus(cfg, z))
    return out


def _h_sum(dp, omz, z, n, hprev):
    """``(1 - z) * n + z * h(t-1)`` aligned at ``dp.out_frac`` (exact), given ``omz = 1 - z``."""
    return (omz * n << dp.zn_shift) + ((z * hprev) << dp.zh_shift)


def _hidden(m, cfg, dp, st, hsum, v, u, pp, stage: int, state_w) -> HOut:
    """h from ``hsum`` (a register at ``stage``); h(t) also goes to the state memory as next step's h(t-1)."""
    out = hidden_out(m, cfg, dp, st, hsum, v, u, pp, stage)
    m.d.comb += [state_w.addr.eq(out.unit), state_w.data.eq(out.h), state_w.en.eq(out.valid)]
    return out


def post_process(m, cfg, dp, row: Row, st, state_w, extra: Extra) -> HOut:
    """Elaborate the GRU rows' arithmetic into ``m`` for the kind's reset placement; h(t) also goes to
    the state memory through ``state_w``; returns h at stage ``cfg.cell.row_to_h``."""
    if cfg.cell.after:
        return _reset_after(m, cfg, dp, row, st, state_w)
    return _reset_before(m, cfg, dp, row, st, state_w, extra)


def _reset_after(m, cfg, dp, row: Row, st, state_w) -> HOut:
    """Rows r, z, n per unit; the n row's x and h parts arrive apart (``row.acc_x``)."""
    f = cfg.formats
    A = latency.ACT
    is_n = row.gate == N_GATE
    xs = row.acc_x + (row.bias << dp.b_shift)
    hs = (row.acc - row.acc_x) + (row.aux << dp.b_shift)
    # P2: [pre] for r and z rows, [gru_hn] for the n row's h part
    pv2, sum2 = Signal(name="pv2"), Signal(signed(dp.acc_width + 2), name="sum2")
    xs2 = Signal(signed(dp.acc_width + 1), name="xs2")
    m.d.sync += [pv2.eq(row.valid), sum2.eq(Mux(is_n, hs, row.acc + (row.bias << dp.b_shift))), xs2.eq(xs)]
    hg2, u2, pp2, hp2 = (delay(m, s, 1, n, 1) for s, n in
                         ((row.gate, "hg"), (row.unit, "u"), (row.par, "pp"), (row.prev, "hp")))
    n2 = hg2 == N_GATE
    mp, mn = cfg.mode("pre"), cfg.mode("gru_hn")
    pre_p, sat_p = requantize(sum2, dp.acc_frac, f["pre"], mp.rounding, mp.overflow)
    pre_h, sat_h = requantize(sum2, dp.acc_frac, f["pre"], mn.rounding, mn.overflow)
    with m.If(pv2 & ~n2 & sat_p):
        m.d.sync += st.sat_pre.eq(1)
    with m.If(pv2 & n2 & sat_h):
        m.d.sync += st.sat_hn.eq(1)
    # P3: r and z rows into the sigmoid; the n row's hn waits for r
    pv3, pre3 = Signal(name="pv3"), Signal(shape_of(f["pre"]), name="pre3")
    m.d.sync += [pv3.eq(pv2), pre3.eq(Mux(n2, pre_h, pre_p))]
    sig, tnh = activation_units(m, cfg)
    m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(pv3)]
    hn5 = delay(m, pre3, 2, "hn", 3)
    xs5 = delay(m, xs2, 3, "xs", 2)
    v5, hg5, u5, pp5, hp5 = (delay(m, s, 3, n, 2) for s, n in
                             ((pv2, "pv"), (hg2, "hg"), (u2, "u"), (pp2, "pp"), (hp2, "hp")))
    # P6: r and z from the sigmoid (the n row two or more cycles later reads them)
    v6, hg6 = delay(m, v5, 1, "pv", 5), delay(m, hg5, 1, "hg", 5)
    r_r, z_r = Signal(shape_of(f["gate"]), name="r_r"), Signal(shape_of(f["gate"]), name="z_r")
    with m.If(v6 & (hg6 == R_GATE)):
        m.d.sync += r_r.eq(sig.y)
    with m.If(v6 & (hg6 == Z_GATE)):
        m.d.sync += z_r.eq(sig.y)
    # P5 (n row): x part + r * hn at nh_frac
    nsum6 = Signal(signed(max(len(xs5) + dp.nx_shift, len(r_r) + len(hn5) + dp.rhn_shift) + 2), name="nsum6")
    m.d.sync += nsum6.eq((xs5 << dp.nx_shift) + ((r_r * hn5) << dp.rhn_shift))
    nv6 = delay(m, v5 & (hg5 == N_GATE), 1, "nv", 5)
    u6, pp6, hp6 = (delay(m, s, 1, n, 5) for s, n in ((u5, "u"), (pp5, "pp"), (hp5, "hp")))
    # P6: [pre] for the candidate; z of this unit is final now, take it along
    pre_n, sat_n = requantize(nsum6, dp.nh_frac, f["pre"], mp.rounding, mp.overflow)
    with m.If(nv6 & sat_n):
        m.d.sync += st.sat_pre.eq(1)
    pre7, zc7 = Signal(shape_of(f["pre"]), name="pren7"), Signal.like(z_r, name="zc7")
    m.d.sync += [pre7.eq(pre_n), zc7.eq(z_r)]
    m.d.comb += [tnh.x.eq(pre7), tnh.valid_in.eq(1)]
    nv, u10, pp10, hp10 = (delay(m, s, 1 + A, n, 6) for s, n in
                           ((nv6, "nv"), (u6, "u"), (pp6, "pp"), (hp6, "hp")))
    z10 = delay(m, zc7, A, "zc", 7)
    # P10: (1 - z) * n + z * h(t-1)
    hsum11 = Signal(signed(len(tnh.y) + len(z10) + len(hp10) + dp.zn_shift + dp.zh_shift + 4), name="hsum11")
    m.d.sync += hsum11.eq(_h_sum(dp, _one_minus(m, cfg, z10, "omz10"), z10, tnh.y, hp10))
    v11, u11, pp11 = (delay(m, s, 1, n, 10) for s, n in ((nv, "nv"), (u10, "u"), (pp10, "pp")))
    assert 11 + 1 == cfg.cell.row_to_h
    return _hidden(m, cfg, dp, st, hsum11, v11, u11, pp11, 11, state_w)


def _reset_before(m, cfg, dp, row: Row, st, state_w, extra: Extra) -> HOut:
    """Gate-major rows; r rows write r*h(t-1) for pass 2 into ``extra.op_write``."""
    f = cfg.formats
    H = cfg.hidden_size
    A = latency.ACT
    # P2: [pre]
    pv2, sum2 = Signal(name="pv2"), Signal(signed(dp.acc_width + 1), name="sum2")
    m.d.sync += [pv2.eq(row.valid), sum2.eq(row.acc + (row.bias << dp.b_shift))]
    hg2, u2, hp2, pp2 = (delay(m, s, 1, n, 1) for s, n in
                         ((row.gate, "hg"), (row.unit, "u"), (row.prev, "hp"), (row.par, "pp")))
    mp = cfg.mode("pre")
    pre, sat = requantize(sum2, dp.acc_frac, f["pre"], mp.rounding, mp.overflow)
    with m.If(pv2 & sat):
        m.d.sync += st.sat_pre.eq(1)
    # P3: both activation units
    pv3, pre3 = Signal(name="pv3"), Signal(shape_of(f["pre"]), name="pre3")
    m.d.sync += [pv3.eq(pv2), pre3.eq(pre)]
    sig, tnh = activation_units(m, cfg)
    m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(pv3), tnh.x.eq(pre3), tnh.valid_in.eq(pv3)]
    v6, hg6, u6, hp6, pp6 = (delay(m, s, 1 + A, n, 2) for s, n in
                             ((pv2, "pv"), (hg2, "hg"), (u2, "u"), (hp2, "hp"), (pp2, "pp")))
    u5 = delay(m, u2, A, "zu", 2)  # the n row's z memory read address
    # z memory: written by the z rows at P6, read by the n rows at P5 -> P6, held in a register at P7
    m.submodules.zmem = zmem = memory.Memory(shape=shape_of(f["gate"]), depth=H, init=[])
    zw = zmem.write_port()
    zr = zmem.read_port(transparent_for=(zw,))
    m.d.comb += [zw.addr.eq(u6), zw.data.eq(sig.y), zw.en.eq(v6 & (hg6 == Z_GATE)),
                 zr.addr.eq(u5), zr.en.eq(1)]
    # P6, r row: r * h(t-1) (P7 [gru_rh]) into the operand memory at P8
    prh7 = Signal(signed(len(sig.y) + len(hp6) + 1), name="prh7")
    m.d.sync += prh7.eq(sig.y * hp6)
    rv7, u7, pp7 = (delay(m, s, 1, n, 6) for s, n in ((v6 & (hg6 == R_GATE), "rv"), (u6, "u"), (pp6, "pp")))
    mr = cfg.mode("gru_rh")
    rh, rsat = requantize(prh7, dp.rh_frac, f["hidden"], mr.rounding, mr.overflow)
    with m.If(rv7 & rsat):
        m.d.sync += st.sat_rh.eq(1)
    rh8 = Signal(signed(f["hidden"].width), name="rh8")
    m.d.sync += rh8.eq(rh)
    rv8, ru8, rp8 = (delay(m, s, 1, n, 7) for s, n in ((rv7, "rv"), (u7, "ru"), (pp7, "rp")))
    ow = extra.op_write
    m.d.comb += [ow.addr.eq(ru8), ow.data.eq(rh8), ow.en.eq(rv8)]
    with m.If(rv8 & (ru8 == H - 1)):
        m.d.sync += extra.op_ready[rp8].eq(1)
    assert 8 + 1 == cfg.cell.op_ready
    # P7: z from the memory (Yosys may fold this register into the block RAM), P8: 1 - z,
    # P8 (n row): (1 - z) * n + z * h(t-1)
    z7, n7 = Signal.like(zr.data, name="z7"), Signal.like(tnh.y, name="n7")
    m.d.sync += [z7.eq(zr.data), n7.eq(tnh.y)]
    omz8, z8 = _one_minus(m, cfg, z7, "omz8", "sync"), delay(m, z7, 1, "z", 7)
    n8, hp8 = delay(m, n7, 1, "n", 7), delay(m, hp6, 2, "hp", 6)
    hsum9 = Signal(signed(len(n8) + len(z8) + len(hp8) + dp.zn_shift + dp.zh_shift + 4), name="hsum9")
    m.d.sync += hsum9.eq(_h_sum(dp, omz8, z8, n8, hp8))
    v9, u9, pp9 = (delay(m, s, 3, n, 6) for s, n in ((v6 & (hg6 == N_GATE), "nv"), (u6, "hu"), (pp6, "hp")))
    assert 9 + 1 == cfg.cell.row_to_h
    return _hidden(m, cfg, dp, st, hsum9, v9, u9, pp9, 9, state_w)
