"""GRU post-processor, one row per cycle, for both reset placements.

Stages, each relative to the one before (``A`` = ``model.latency.ACT``, ``P`` =
``model.latency.PRODUCT``: a product is registered before anything adds to it)::

    S1 row   SR = S1+1: acc, bias, aux, h(t-1) registered
    S2 = SR+1: [pre] (r, z rows) / [gru_hn] (reset-after n row's h part)   S3 = S2+1: activations in
    SG = S3+A: sigmoid out (r, z registered for the unit's later rows)

Reset-after (rows r, z, n per unit; ``acc_x`` splits the n row's dot product; the
n row is two rows behind r, so it meets r at SG-1 and z at SG)::

    SG-1 (n row): r * hn     SG-1+P: x part + r * hn      then [pre], tanh in (ST), z taken along
    SH = ST+A: (1 - z) * n, z * h(t-1)    SH+P: their sum   then [hidden], h register   (today h at 19)

Reset-before (gate-major: all r rows, all z rows, then the n rows of pass 2)::

    SG r row: r * h(t-1)   SG+P: [gru_rh]   SG+P+1: operand memory write; flag seen SG+P+2 (op_ready)
    SG z row: {z, 1 - z} memory     SG n row: its read (address at SG-1), SG+1 {z, 1 - z} and n
    registered, SG+2 again: (1 - z) * n, z * h(t-1)   SG+2+P: their sum   then [hidden], h
    (today h at 14)
"""
from __future__ import annotations

from amaranth import Cat, Mux, Signal, signed, unsigned

from model import latency

from ..gates import Extra, HOut, Row, activation_units, hidden_out, one_minus, prev_state, requant, shape_of
from ..ram import small_memory
from ..stages import Stages

R_GATE, Z_GATE, N_GATE = 0, 1, 2
S1 = 1


def _h_sum(p, dp, omz, z, n, hprev):
    """``(1 - z) * n + z * h(t-1)`` aligned at ``dp.out_frac`` (exact), given ``omz = 1 - z``: both
    products registered, their sum registered one stage later."""
    zn, zh = p.product(omz, n, "zn"), p.product(z, hprev, "zh")
    s = max(p.stage_of(zn), p.stage_of(zh))
    hsum = (p.at(zn, s) << dp.zn_shift) + (p.at(zh, s) << dp.zh_shift)
    return p.reg(hsum, s + 1, "hsum", signed(len(hsum) + 1))


def _hidden(m, p, cfg, dp, st, hsum, v, row: Row, state_w) -> HOut:
    """h from ``hsum``; h(t) also goes to the state memory as next step's h(t-1)."""
    s = p.stage_of(hsum)
    out = hidden_out(m, p, cfg, dp, st, hsum, p.at(v, s), p.at(row.unit, s, "u"), p.at(row.bank, s, "pp"))
    m.d.comb += [state_w.addr.eq(out.unit), state_w.bank.eq(out.bank), state_w.data.eq(out.h),
                 state_w.en.eq(out.valid)]
    assert p.stage_of(out.h) == cfg.cell.row_to_h, (p.stage_of(out.h), cfg.cell.row_to_h)
    return out


def post_process(m, cfg, dp, row: Row, st, state_w, extra: Extra) -> HOut:
    """Elaborate the GRU rows' arithmetic into ``m`` for the kind's reset placement; h(t) also goes to
    the state memory through ``state_w``; returns h at stage ``cfg.cell.row_to_h``."""
    p = Stages(m)
    for sig in (row.valid, row.gate, row.unit, row.bank):
        p.put(sig, S1)
    if cfg.cell.after:
        return _reset_after(m, p, cfg, dp, row, st, state_w)
    return _reset_before(m, p, cfg, dp, row, st, state_w, extra)


def _reset_after(m, p, cfg, dp, row: Row, st, state_w) -> HOut:
    """Rows r, z, n per unit; the n row's x and h parts arrive apart (``row.acc_x``)."""
    f = cfg.formats
    # SR: the row's memory words registered; the n row's h part (acc - acc_x) formed
    SR = S1 + 1
    acc, accx = p.reg(row.acc, SR, "acc"), p.reg(row.acc_x, SR, "accx")
    bias, aux = p.reg(row.bias, SR, "bias", reset_less=True), p.reg(row.aux, SR, "aux", reset_less=True)
    acch, hprev = p.reg(row.acc - row.acc_x, SR, "acch"), prev_state(p, row, SR, "hp")
    is_n = p.at(row.gate, SR, "hg") == N_GATE
    # S2: [pre] for r and z rows, [gru_hn] for the n row's h part
    S2 = SR + 1
    sum2 = p.reg(Mux(is_n, acch + (aux << dp.b_shift), acc + (bias << dp.b_shift)),
                 S2, "sum", signed(dp.acc_width + 2))
    xs2 = p.reg(accx + (bias << dp.b_shift), S2, "xs", signed(dp.acc_width + 1))
    pv2, n2 = p.at(row.valid, S2, "pv"), p.at(row.gate, S2, "hg") == N_GATE
    pre_p = requant(m, cfg, st, sum2, dp.acc_frac, "pre", "pre", pv2 & ~n2)
    pre_h = requant(m, cfg, st, sum2, dp.acc_frac, "gru_hn", "pre", pv2 & n2)
    # S3: r and z rows into the sigmoid; the n row's hn waits for r
    S3 = S2 + 1
    assert S3 == latency.ROW_TO_ACT, S3
    pre3 = p.reg(Mux(n2, pre_h, pre_p), S3, "pre", shape_of(f["pre"]))
    sig, tnh = activation_units(m, cfg)
    m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(p.at(row.valid, S3, "pv"))]
    # SG: r and z from the sigmoid, held for the n row (two and one rows behind)
    SG = S3 + latency.ACT
    v, hg = p.at(row.valid, SG, "pv"), p.at(row.gate, SG, "hg")
    r_r, z_r = Signal(shape_of(f["gate"]), name="r_r"), Signal(shape_of(f["gate"]), name="z_r")
    with m.If(v & (hg == R_GATE)):
        m.d.sync += r_r.eq(sig.y)
    with m.If(v & (hg == Z_GATE)):
        m.d.sync += z_r.eq(sig.y)
    # SG-1 (n row): r * hn; then x part + r * hn at nh_frac; then [pre] for the candidate
    SRN = SG - 1
    p.put(r_r, SRN)
    p.put(z_r, SG)
    rhn = p.product(r_r, p.at(pre3, SRN, "hn"), "rhn")
    SN = p.stage_of(rhn)
    nsum = (p.at(xs2, SN) << dp.nx_shift) + (rhn << dp.rhn_shift)
    nsum_g = p.reg(nsum, SN + 1, "nsum", signed(len(nsum) + 1))
    nv = p.reg(p.at(row.valid, SN, "pv") & (p.at(row.gate, SN, "hg") == N_GATE), SN + 1, "nv")
    pre_n = requant(m, cfg, st, nsum_g, dp.nh_frac, "pre", "pre", nv)
    # ST: tanh in; z of this unit and 1 - z taken along
    ST = SN + 2
    m.d.comb += [tnh.x.eq(p.reg(pre_n, ST, "pren", shape_of(f["pre"]))), tnh.valid_in.eq(1)]
    zc = p.at(z_r, ST, "zc")
    omz = p.reg(one_minus(cfg, p.at(z_r, ST - 1, "zc")), ST, "omz", signed(f["gate"].width + 2))
    # ST+A: (1 - z) * n + z * h(t-1)
    SH = ST + latency.ACT
    hsum = _h_sum(p, dp, omz, zc, p.put(tnh.y, SH), p.at(hprev, SH, "hp"))
    return _hidden(m, p, cfg, dp, st, hsum, nv, row, state_w)


def _reset_before(m, p, cfg, dp, row: Row, st, state_w, extra: Extra) -> HOut:
    """Gate-major rows; r rows write r*h(t-1) for pass 2 into ``extra.op_write``."""
    f = cfg.formats
    H = cfg.hidden_size
    # SR: the row's memory words registered
    SR = S1 + 1
    acc, bias, hprev = p.reg(row.acc, SR, "acc"), p.reg(row.bias, SR, "bias", reset_less=True), prev_state(p, row, SR, "hp")
    # S2: [pre]
    S2 = SR + 1
    sum2 = p.reg(acc + (bias << dp.b_shift), S2, "sum", signed(dp.acc_width + 1))
    pre = requant(m, cfg, st, sum2, dp.acc_frac, "pre", "pre", p.at(row.valid, S2, "pv"))
    # S3: both activation units
    S3 = S2 + 1
    assert S3 == latency.ROW_TO_ACT, S3
    pre3 = p.reg(pre, S3, "pre", shape_of(f["pre"]))
    pv3 = p.at(row.valid, S3, "pv")
    sig, tnh = activation_units(m, cfg)
    m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(pv3), tnh.x.eq(pre3), tnh.valid_in.eq(pv3)]
    SG = S3 + latency.ACT
    v, hg, u, hp = (p.at(row.valid, SG, "pv"), p.at(row.gate, SG, "hg"), p.at(row.unit, SG, "u"),
                    p.at(hprev, SG, "hp"))
    y = p.put(sig.y, SG)
    # z memories: z and 1 - z, written by the z rows at SG, read by the n rows (address at SG-1, data
    # at SG); holding 1 - z too keeps the subtraction away from the block RAM's slow read.  Two memories,
    # each no wider than a block RAM port (18 bits): a block RAM in its 36-bit mode keeps its read
    # register in the fabric (rtl.outreg)
    gw = f["gate"].width
    omz_w = Signal(signed(gw + 2), name="omz_w")
    m.d.comb += omz_w.eq(one_minus(cfg, y))
    zu = p.at(row.unit, SG - 1, "zu")
    zd1 = p.put(Signal(2 * gw + 2, name="zd1", reset_less=True), SG + 1)
    for name, word, part in (("zmem", y, zd1[:gw]), ("omzmem", omz_w, zd1[gw:])):
        # the reads need no view of a write in the same cycle: an n row (pass 2) reads its unit's z a
        # whole lane pipeline after the z row (pass 1) wrote it; the read data register has no reset,
        # so the block RAM can hold it (rtl.outreg)
        m.submodules[name] = mem = small_memory(shape=len(word), depth=H, init=[], collisions=False)
        w, r = mem.write_port(), mem.read_port()
        m.d.comb += [w.addr.eq(u), w.data.eq(word), w.en.eq(v & (hg == Z_GATE)), r.addr.eq(zu)]
        m.d.sync += part.eq(r.data)
    # r row: SG r * h(t-1), SG+P [gru_rh], SG+P+1 into the operand memory
    prh = p.product(y, hp, "prh")
    SP = p.stage_of(prh)
    rv = p.at(p.put(v & (hg == R_GATE), SG, "rv"), SP)
    rh = p.reg(requant(m, cfg, st, prh, dp.rh_frac, "gru_rh", "hidden", rv), SP + 1, "rh",
               signed(f["hidden"].width))
    rv2, ru, rp = p.at(rv, SP + 1), p.at(u, SP + 1, "ru"), p.at(row.bank, SP + 1, "rp")
    ow = extra.op_write
    m.d.comb += [ow.addr.eq(ru), ow.data.eq(rh), ow.en.eq(rv2)]
    with m.If(rv2 & (ru == H - 1)):
        m.d.sync += extra.op_ready[rp].eq(1)
    assert SP + 2 == cfg.cell.op_ready, (SP + 2, cfg.cell.op_ready)  # the flag is seen one cycle later
    # n row: SG+1 {z, 1 - z} and n registered, SG+2 registered again, then (1 - z) * n + z * h(t-1)
    n1 = p.reg(p.put(tnh.y, SG), SG + 1, "n")
    zd2 = p.at(zd1, SG + 2)
    z2 = p.put(zd2[:gw].as_signed() if f["gate"].signed else zd2[:gw], SG + 2, "z")
    omz = p.put(zd2[gw:].as_signed(), SG + 2, "omz")
    hsum = _h_sum(p, dp, omz, z2, n1, hp)
    return _hidden(m, p, cfg, dp, st, hsum, p.put(v & (hg == N_GATE), SG, "nv"), row, state_w)
