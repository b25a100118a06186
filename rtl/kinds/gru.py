"""GRU post-processor, one row per cycle, for both reset placements.

Stages, each relative to the one before (``A`` = ``model.latency.ACT``)::

    S1 row   S2 = S1+1: [pre] (r, z rows) / [gru_hn] (reset-after n row's h part)   S3 = S2+1: activations in
    SG = S3+A: sigmoid out (r, z registered for the unit's later rows)

Reset-after (rows r, z, n per unit; ``acc_x`` splits the n row's dot product; the
n row is two rows behind r, so it meets r at SG-1 and z at SG)::

    SG-1 (n row): x part + r * hn      SG: [pre]      SG+1: z taken, tanh in
    SG+1+A: (1 - z) * n + z * h(t-1)   then [hidden], h register      (today h at 12)

Reset-before (gate-major: all r rows, all z rows, then the n rows of pass 2)::

    SG r row: r * h(t-1)   SG+1: [gru_rh]   SG+2: operand memory write; flag seen SG+3 (op_ready)
    SG z row: z memory     SG n row: z read (address at SG-1), SG+1 z and n registered,
    SG+2: 1 - z            SG+3: (1 - z) * n + z * h(t-1)   then [hidden], h      (today h at 10)
"""
from __future__ import annotations

from amaranth import Mux, Signal, signed
from amaranth.lib import memory

from model import latency

from ..gates import Extra, HOut, Row, activation_units, hidden_out, one_minus, requant, shape_of
from ..stages import Stages

R_GATE, Z_GATE, N_GATE = 0, 1, 2
S1 = 1


def _h_sum(dp, omz, z, n, hprev):
    """``(1 - z) * n + z * h(t-1)`` aligned at ``dp.out_frac`` (exact), given ``omz = 1 - z``."""
    return (omz * n << dp.zn_shift) + ((z * hprev) << dp.zh_shift)


def _hidden(m, p, cfg, dp, st, hsum, v, row: Row, state_w) -> HOut:
    """h from ``hsum``; h(t) also goes to the state memory as next step's h(t-1)."""
    s = p.stage_of(hsum)
    out = hidden_out(m, p, cfg, dp, st, hsum, p.at(v, s), p.at(row.unit, s, "u"), p.at(row.par, s, "pp"))
    m.d.comb += [state_w.addr.eq(out.unit), state_w.data.eq(out.h), state_w.en.eq(out.valid)]
    assert p.stage_of(out.h) == cfg.cell.row_to_h, (p.stage_of(out.h), cfg.cell.row_to_h)
    return out


def post_process(m, cfg, dp, row: Row, st, state_w, extra: Extra) -> HOut:
    """Elaborate the GRU rows' arithmetic into ``m`` for the kind's reset placement; h(t) also goes to
    the state memory through ``state_w``; returns h at stage ``cfg.cell.row_to_h``."""
    p = Stages(m)
    for sig in (row.valid, row.gate, row.unit, row.par, row.prev):
        p.put(sig, S1)
    if cfg.cell.after:
        return _reset_after(m, p, cfg, dp, row, st, state_w)
    return _reset_before(m, p, cfg, dp, row, st, state_w, extra)


def _reset_after(m, p, cfg, dp, row: Row, st, state_w) -> HOut:
    """Rows r, z, n per unit; the n row's x and h parts arrive apart (``row.acc_x``)."""
    f = cfg.formats
    is_n = row.gate == N_GATE
    # S2: [pre] for r and z rows, [gru_hn] for the n row's h part
    S2 = S1 + 1
    sum2 = p.reg(Mux(is_n, (row.acc - row.acc_x) + (row.aux << dp.b_shift), row.acc + (row.bias << dp.b_shift)),
                 S2, "sum", signed(dp.acc_width + 2))
    xs2 = p.reg(row.acc_x + (row.bias << dp.b_shift), S2, "xs", signed(dp.acc_width + 1))
    pv2, n2 = p.at(row.valid, S2, "pv"), p.at(row.gate, S2, "hg") == N_GATE
    pre_p = requant(m, cfg, st, sum2, dp.acc_frac, "pre", "pre", pv2 & ~n2)
    pre_h = requant(m, cfg, st, sum2, dp.acc_frac, "gru_hn", "pre", pv2 & n2)
    # S3: r and z rows into the sigmoid; the n row's hn waits for r
    S3 = S2 + 1
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
    # SG-1 (n row): x part + r * hn at nh_frac; SG: [pre] for the candidate
    SRN = SG - 1
    p.put(r_r, SRN)
    p.put(z_r, SG)
    nsum = (p.at(xs2, SRN) << dp.nx_shift) + ((r_r * p.at(pre3, SRN, "hn")) << dp.rhn_shift)
    nsum_g = p.reg(nsum, SG, "nsum", signed(len(nsum) + 1))
    nv = p.reg(p.at(row.valid, SRN, "pv") & (p.at(row.gate, SRN, "hg") == N_GATE), SG, "nv")
    pre_n = requant(m, cfg, st, nsum_g, dp.nh_frac, "pre", "pre", nv)
    # SG+1: tanh in, z of this unit taken along
    ST = SG + 1
    m.d.comb += [tnh.x.eq(p.reg(pre_n, ST, "pren", shape_of(f["pre"]))), tnh.valid_in.eq(1)]
    zc = p.reg(z_r, ST, "zc")
    # ST+A: (1 - z) * n + z * h(t-1)
    SH = ST + latency.ACT
    z_h, n_h = p.at(zc, SH), p.put(tnh.y, SH)
    omz = Signal(signed(f["gate"].width + 2), name=f"omz{SH}")
    m.d.comb += omz.eq(one_minus(cfg, z_h))
    hsum = _h_sum(dp, omz, z_h, n_h, p.at(row.prev, SH, "hp"))
    hsum_r = p.reg(hsum, SH + 1, "hsum", signed(len(n_h) + len(z_h) + len(row.prev) + dp.zn_shift + dp.zh_shift + 4))
    return _hidden(m, p, cfg, dp, st, hsum_r, nv, row, state_w)


def _reset_before(m, p, cfg, dp, row: Row, st, state_w, extra: Extra) -> HOut:
    """Gate-major rows; r rows write r*h(t-1) for pass 2 into ``extra.op_write``."""
    f = cfg.formats
    H = cfg.hidden_size
    # S2: [pre]
    S2 = S1 + 1
    sum2 = p.reg(row.acc + (row.bias << dp.b_shift), S2, "sum", signed(dp.acc_width + 1))
    pre = requant(m, cfg, st, sum2, dp.acc_frac, "pre", "pre", p.at(row.valid, S2, "pv"))
    # S3: both activation units
    S3 = S2 + 1
    pre3 = p.reg(pre, S3, "pre", shape_of(f["pre"]))
    pv3 = p.at(row.valid, S3, "pv")
    sig, tnh = activation_units(m, cfg)
    m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(pv3), tnh.x.eq(pre3), tnh.valid_in.eq(pv3)]
    SG = S3 + latency.ACT
    v, hg, u, hp = (p.at(row.valid, SG, "pv"), p.at(row.gate, SG, "hg"), p.at(row.unit, SG, "u"),
                    p.at(row.prev, SG, "hp"))
    y = p.put(sig.y, SG)
    # z memory: written by the z rows at SG, read by the n rows (address at SG-1, data at SG)
    m.submodules.zmem = zmem = memory.Memory(shape=shape_of(f["gate"]), depth=H, init=[])
    zw = zmem.write_port()
    zr = zmem.read_port(transparent_for=(zw,))
    m.d.comb += [zw.addr.eq(u), zw.data.eq(y), zw.en.eq(v & (hg == Z_GATE)),
                 zr.addr.eq(p.at(row.unit, SG - 1, "zu")), zr.en.eq(1)]
    # r row: SG r * h(t-1), SG+1 [gru_rh], SG+2 into the operand memory
    prh = p.reg(y * hp, SG + 1, "prh", signed(len(y) + len(hp) + 1))
    rv = p.reg(v & (hg == R_GATE), SG + 1, "rv")
    rh = p.reg(requant(m, cfg, st, prh, dp.rh_frac, "gru_rh", "hidden", rv), SG + 2, "rh",
               signed(f["hidden"].width))
    rv2, ru, rp = p.at(rv, SG + 2), p.at(u, SG + 2, "ru"), p.at(row.par, SG + 2, "rp")
    ow = extra.op_write
    m.d.comb += [ow.addr.eq(ru), ow.data.eq(rh), ow.en.eq(rv2)]
    with m.If(rv2 & (ru == H - 1)):
        m.d.sync += extra.op_ready[rp].eq(1)
    assert SG + 3 == cfg.cell.op_ready, (SG + 3, cfg.cell.op_ready)  # the flag is seen one cycle later
    # n row: SG+1 z and n registered (Yosys may fold the z register into the block RAM),
    # SG+2 1 - z, SG+3 (1 - z) * n + z * h(t-1)
    z1, n1 = p.reg(p.put(zr.data, SG), SG + 1, "z"), p.reg(p.put(tnh.y, SG), SG + 1, "n")
    omz = p.reg(one_minus(cfg, z1), SG + 2, "omz", signed(f["gate"].width + 2))
    z2, n2 = p.at(z1, SG + 2), p.at(n1, SG + 2)
    hsum = _h_sum(dp, omz, z2, n2, p.at(hp, SG + 2))
    hsum_r = p.reg(hsum, SG + 3, "hsum", signed(len(n2) + len(z2) + len(hp) + dp.zn_shift + dp.zh_shift + 4))
    return _hidden(m, p, cfg, dp, st, hsum_r, p.put(v & (hg == N_GATE), SG, "nv"), row, state_w)
