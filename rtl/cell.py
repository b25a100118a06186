"""The LSTM gate pipeline: MAC lanes, post-processor, element-serial streams, write port.

::

    i (x elements) --> x double buffer --+
                                          +--> z = [x(t); h(t-1)] broadcast
                         h double buffer --+          |
                                                      v
     lane 0..L-1:  weight memory --> w * z (prod) --> acc (+= prod << shift) --> hold[l]
                                                                                  |
     post-processor, one row per cycle (hardware gate order o, i, f, g):          v
       P0 hold[q], bias/peephole/c(t-1) reads  P1 sum = acc + b + p*c  P2 [pre] requant
       P3..P6 sigmoid / tanh unit   P6 (g row) f*c + i*g  P7 [cell] requant -> c memory
       P8..P11 tanh(c)   P11 [hidden] requant o*tanh(c)  P12 h memory + output FIFO --> o
       (peephole c_new: P8 o sum + p_o*c(t), P9 [pre], P10..P13 sigmoid, h two cycles later)

Timing is fixed; ``model.cycles`` holds the stage latencies and predicts cycles
per step and first-output latency from them.  Ports:

- ``i``: stream of ``{data: formats.input, last, first}``; one x(t) element per
  transfer, ``last`` on element ``input_size - 1``, ``first`` on the first
  element of a sequence (h and c start from zero).
- ``o``: stream of ``{data: formats.hidden, last}``; h(t) element-serial.
- ``w``: stream of ``{addr, data}`` writes into the weight, bias and peephole
  memories (address map in :mod:`rtl.layout`); always ready.
- ``status``: sticky bits ``sat_pre``, ``sat_cell``, ``sat_hidden`` (a value
  saturated or wrapped at that point), ``err_framing`` (``last``/``first`` in
  the wrong place), ``err_overrun`` (internal; never set in a valid config).
"""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from model import cycles
from model.activations import make_activation
from model.config import Config, ConfigError
from model.datapath import Datapath
from model.params import QParams

from .activation import ActivationUnit
from .layout import Layout, memory_images
from .requant import requantize

#: Widest multiplier operand the lanes accept (one 18x18 DSP block per lane).
MAX_OPERAND_BITS = 18


class HardwareLimitError(ConfigError):
    """A valid config that this gateware cannot build; the message names the field and the limit."""


def check_buildable(cfg: Config):
    """Raise :class:`HardwareLimitError` for configs outside the gateware's limits."""
    if cfg.kind != "lstm":
        raise HardwareLimitError(f"kind = {cfg.kind!r}: the gate pipeline builds kind = 'lstm' only")
    for fn in ("sigmoid", "tanh"):
        if getattr(cfg, fn).method == "exact":
            raise HardwareLimitError(f"{fn}.method = 'exact' has no hardware; accepted: lut, lut_interp, pwl, hard")
    k = cfg.input_size + cfg.hidden_size
    if cfg.lanes > k:
        raise HardwareLimitError(
            f"lanes = {cfg.lanes} exceeds input_size + hidden_size = {k}: the post-processor takes one "
            f"row per cycle and must finish a slot's {cfg.lanes} rows within the {k}-cycle slot")
    ops = ["weight", "input", "hidden"] + (["peephole"] if cfg.peephole != "none" else [])
    for t in ops:
        if cfg.fmt(t).width > MAX_OPERAND_BITS:
            raise HardwareLimitError(f"formats.{t} = {cfg.fmt(t)} is {cfg.fmt(t).width} bits wide; "
                                     f"multiplier operands are limited to {MAX_OPERAND_BITS} bits")


def _shape(fmt):
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


STATUS = data.StructLayout({"sat_pre": 1, "sat_cell": 1, "sat_hidden": 1, "err_framing": 1, "err_overrun": 1})


class LSTMCell(wiring.Component):
    """LSTM / peephole-LSTM (``c_prev`` or ``c_new``) step engine; weights baked in from ``qparams``."""

    def __init__(self, config: Config, qparams: QParams | None = None):
        try:
            check_buildable(config)
        except HardwareLimitError:
            self._MustUse__silence = True  # refused before construction: nothing to elaborate
            raise
        if qparams is not None:
            qparams.check_matches(config)
        self._cfg = config
        self._q = qparams
        self._dp = Datapath.from_config(config)
        self._lay = Layout.for_config(config)
        self._cm = cycles.CycleModel.for_config(config)
        f = config.formats
        self.out_depth = 2 * config.hidden_size + config.lanes + 4
        wdata = max(f["weight"].width, f["bias"].width, f["peephole"].width if f["peephole"] else 0)
        super().__init__({
            "i": In(stream.Signature(data.StructLayout(
                {"data": signed(f["input"].width), "last": 1, "first": 1}))),
            "o": Out(stream.Signature(data.StructLayout({"data": signed(f["hidden"].width), "last": 1}))),
            "w": In(stream.Signature(data.StructLayout(
                {"addr": unsigned(self._lay.addr_bits), "data": signed(wdata)}))),
            "status": Out(STATUS),
        })

    @property
    def config(self) -> Config:
        return self._cfg

    @property
    def layout(self) -> Layout:
        return self._lay

    @property
    def cycle_model(self) -> cycles.CycleModel:
        return self._cm

    def elaborate(self, platform):
        m = Module()
        cfg, dp, lay = self._cfg, self._dp, self._lay
        f = cfg.formats
        H, I, L, S, R, K = cfg.hidden_size, cfg.input_size, cfg.lanes, lay.slots, cfg.rows, lay.slot_cycles
        last_rows = R - (S - 1) * L
        peep = cfg.peephole != "none"
        c_new = cfg.peephole == "c_new"
        img = memory_images(cfg, self._q)
        st = self.status

        # ---- input: double-buffered x(t) -------------------------------------------------
        m.submodules.xmem = xmem = memory.Memory(shape=signed(f["input"].width), depth=2 * I, init=[])
        xw, xr = xmem.write_port(), xmem.read_port()
        bank_full = Array(Signal(name=f"x_full{b}") for b in range(2))
        bank_sos = Array(Signal(name=f"x_sos{b}") for b in range(2))
        wb, wi, cur_first = Signal(), Signal(range(max(I, 2))), Signal()
        m.d.comb += self.i.ready.eq(~bank_full[wb])
        pl = self.i.payload
        with m.If(self.i.valid & self.i.ready):
            m.d.comb += [xw.addr.eq(wb * I + wi), xw.data.eq(pl.data), xw.en.eq(1)]
            first = Mux(wi == 0, pl.first, cur_first)
            with m.If(wi == 0):
                m.d.sync += cur_first.eq(pl.first)
            with m.Elif(pl.first):
                m.d.sync += st.err_framing.eq(1)
            with m.If(wi == I - 1):
                m.d.sync += [bank_full[wb].eq(1), bank_sos[wb].eq(first), wb.eq(~wb), wi.eq(0)]
                with m.If(~pl.last):
                    m.d.sync += st.err_framing.eq(1)
            with m.Else():
                m.d.sync += wi.eq(wi + 1)
                with m.If(pl.last):
                    m.d.sync += st.err_framing.eq(1)

        # ---- h(t) double buffer, c(t) memory ------------------------------------------
        m.submodules.hmem = hmem = memory.Memory(shape=signed(f["hidden"].width), depth=2 * H, init=[])
        hw_, hr = hmem.write_port(), hmem.read_port()
        m.submodules.cmem = cmem = memory.Memory(shape=signed(f["cell"].width), depth=H, init=[])
        cw, cr = cmem.write_port(), cmem.read_port()

        # ---- sequencer ----------------------------------------------------------------------
        s, j = Signal(range(max(S, 2))), Signal(range(K))
        rb, par, sos, need_first = Signal(), Signal(), Signal(), Signal(init=1)
        h_done = Array(Signal(name=f"h_done{b}") for b in range(2))
        credits = Signal(range(self.out_depth + 1), init=self.out_depth)
        at_start = (s == 0) & (j == 0)
        at_h = (s == 0) & (j == I)
        issue = Signal()
        m.d.comb += issue.eq(Mux(at_start, bank_full[rb] & (credits >= H),
                                 Mux(at_h, sos | h_done[~par], 1)))
        pop = self.o.valid & self.o.ready
        m.d.sync += credits.eq(credits - Mux(issue & at_start, H, 0) + pop)
        with m.If(issue):
            with m.If(j == K - 1):
                m.d.sync += [j.eq(0), s.eq(Mux(s == S - 1, 0, s + 1))]
            with m.Else():
                m.d.sync += j.eq(j + 1)
            with m.If(at_start):
                m.d.sync += [par.eq(~par), sos.eq(bank_sos[rb] | need_first), need_first.eq(0),
                             h_done[~par].eq(0)]
            with m.If((s == S - 1) & (j == I - 1)):
                m.d.sync += [bank_full[rb].eq(0), rb.eq(~rb)]
        m.d.comb += [xr.addr.eq(rb * I + j), xr.en.eq(issue),
                     hr.addr.eq(Mux(par, 0, H) + j - I), hr.en.eq(issue)]

        # stage 1: memory data; stage 2: product; stage 3: accumulate
        v1, first1, last1, isx1, zero1, s1, par1, sos1 = (Signal(name=n) for n in
                                                          ("v1", "first1", "last1", "isx1", "zero1",
                                                           "s1", "par1", "sos1"))
        slot1 = Signal(range(max(S, 2)))
        m.d.sync += [v1.eq(issue), first1.eq(j == 0), last1.eq(j == K - 1), isx1.eq(j < I),
                     zero1.eq(sos), slot1.eq(s), par1.eq(par), sos1.eq(sos)]
        z1 = Signal(signed(max(f["input"].width, f["hidden"].width)))
        m.d.comb += z1.eq(Mux(isx1, xr.data, Mux(zero1, 0, hr.data)))
        v2, first2, last2, isx2, par2, sos2 = (Signal(name=n) for n in
                                               ("v2", "first2", "last2", "isx2", "par2", "sos2"))
        slot2 = Signal(range(max(S, 2)))
        m.d.sync += [v2.eq(v1), first2.eq(first1), last2.eq(last1), isx2.eq(isx1), slot2.eq(slot1),
                     par2.eq(par1), sos2.eq(sos1)]
        done2 = v2 & last2
        acc_shape = signed(dp.acc_width)
        hold = []
        for lane in range(L):
            wm = memory.Memory(shape=signed(f["weight"].width), depth=lay.lane_depth, init=img["lanes"][lane])
            m.submodules[f"wmem{lane}"] = wm
            rp, wp = wm.read_port(), wm.write_port()
            m.d.comb += [rp.addr.eq(s * K + j), rp.en.eq(issue),
                         wp.addr.eq(self.w.payload.addr[:lay.offset_bits]), wp.data.eq(self.w.payload.data),
                         wp.en.eq(self.w.valid & (self.w.payload.addr[lay.offset_bits:] == lane))]
            prod = Signal(signed(f["weight"].width + z1.shape().width), name=f"prod{lane}")
            acc = Signal(acc_shape, name=f"acc{lane}")
            h = Signal(acc_shape, name=f"hold{lane}")
            m.d.sync += prod.eq(rp.data * z1)
            nxt = Mux(first2, 0, acc) + Mux(isx2, prod << dp.x_shift, prod << dp.h_shift)
            with m.If(v2):
                m.d.sync += acc.eq(nxt)
            with m.If(done2):
                m.d.sync += h.eq(nxt)
            hold.append(h)
        hold = Array(hold)

        # ---- post-processor: serializer -------------------------------------------------------
        busy, q = Signal(), Signal(range(max(L, 2)))
        nrows = Signal(range(L + 1))
        rowc, unit, hg = Signal(range(max(R, 2))), Signal(range(max(H, 2))), Signal(2)
        pp_par, pp_sos = Signal(), Signal()
        with m.If(busy):
            m.d.sync += q.eq(q + 1)
            with m.If(q == nrows - 1):
                m.d.sync += busy.eq(0)
            with m.If(rowc == R - 1):
                m.d.sync += [rowc.eq(0), unit.eq(0), hg.eq(0)]
            with m.Else():
                m.d.sync += [rowc.eq(rowc + 1), hg.eq(hg + 1)]
                with m.If(hg == 3):
                    m.d.sync += unit.eq(unit + 1)
        with m.If(done2):
            m.d.sync += [busy.eq(1), q.eq(0), nrows.eq(Mux(slot2 == S - 1, last_rows, L)),
                         pp_par.eq(par2), pp_sos.eq(sos2)]
            with m.If(busy & (q != nrows - 1)):
                m.d.sync += st.err_overrun.eq(1)

        m.submodules.bmem = bmem = memory.Memory(shape=signed(f["bias"].width), depth=R, init=img["bias"])
        br, bw = bmem.read_port(), bmem.write_port()
        wsel = self.w.payload.addr[lay.offset_bits:]
        waddr = self.w.payload.addr[:lay.offset_bits]
        m.d.comb += [br.addr.eq(rowc), bw.addr.eq(waddr), bw.data.eq(self.w.payload.data),
                     bw.en.eq(self.w.valid & (wsel == L)), cr.addr.eq(unit), self.w.ready.eq(1)]
        if peep:
            m.submodules.pmem = pmem = memory.Memory(shape=signed(f["peephole"].width), depth=R,
                                                      init=img["peep"])
            pr, pw = pmem.read_port(), pmem.write_port()
            m.d.comb += [pr.addr.eq(rowc), pw.addr.eq(waddr), pw.data.eq(self.w.payload.data),
                         pw.en.eq(self.w.valid & (wsel == L + 1))]

        # P1: bias, peephole, c(t-1)
        pv1, a1, hg1, u1, pp1, ps1 = (Signal(name="pv1"), Signal(acc_shape, name="a1"), Signal(2, name="hg1"),
                                      Signal.like(unit, name="u1"), Signal(name="pp1"), Signal(name="ps1"))
        m.d.sync += [pv1.eq(busy), a1.eq(hold[q]), hg1.eq(hg), u1.eq(unit), pp1.eq(pp_par), ps1.eq(pp_sos)]
        cprev1 = Signal(signed(f["cell"].width))
        m.d.comb += cprev1.eq(Mux(ps1, 0, cr.data))
        total = a1 + (br.data << dp.b_shift)
        if peep:
            # c_new: o (hw gate 0) gets its peephole term from c(t) later, at P8
            skip = (hg1 == 3) | (hg1 == 0) if c_new else (hg1 == 3)
            total = total + (Mux(skip, 0, pr.data * cprev1) << dp.p_shift)
        # P2: requantize to the pre-activation format
        pv2, sum2, hg2, u2, pp2, c2 = (Signal(name="pv2"), Signal(signed(dp.acc_width + 1), name="sum2"),
                                       Signal(2, name="hg2"), Signal.like(unit, name="u2"), Signal(name="pp2"),
                                       Signal.like(cprev1, name="c2"))
        m.d.sync += [pv2.eq(pv1), sum2.eq(total), hg2.eq(hg1), u2.eq(u1), pp2.eq(pp1), c2.eq(cprev1)]
        mp = cfg.mode("pre")
        pre, sat = requantize(sum2, dp.acc_frac, f["pre"], mp.rounding, mp.overflow)
        with m.If(pv2 & sat & ((hg2 != 0) if c_new else 1)):
            m.d.sync += st.sat_pre.eq(1)
        if c_new:
            # o row: keep its sum and p_o; the unit's g row takes them along (P2..P8)
            p2 = Signal(signed(f["peephole"].width), name="p2")
            osum_r, po_r = Signal.like(sum2, name="osum_r"), Signal.like(p2, name="po_r")
            m.d.sync += p2.eq(pr.data)
            with m.If(pv2 & (hg2 == 0)):
                m.d.sync += [osum_r.eq(sum2), po_r.eq(p2)]
            osum_d, po_d = osum_r, po_r
            for n in range(3, 9):
                no, npo = Signal.like(sum2, name=f"osum{n}"), Signal.like(p2, name=f"po{n}")
                m.d.sync += [no.eq(osum_d), npo.eq(po_d)]
                osum_d, po_d = no, npo
        # P3: activation units
        pv3, pre3, hg3, u3, pp3, c3 = (Signal(name="pv3"), Signal(_shape(f["pre"]), name="pre3"),
                                       Signal(2, name="hg3"), Signal.like(unit, name="u3"), Signal(name="pp3"),
                                       Signal.like(cprev1, name="c3"))
        m.d.sync += [pv3.eq(pv2), pre3.eq(pre), hg3.eq(hg2), u3.eq(u2), pp3.eq(pp2), c3.eq(c2)]
        m.submodules.sig = sig = ActivationUnit(make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"]))
        m.submodules.tnh = tnh = ActivationUnit(make_activation("tanh", cfg.tanh, f["pre"], f["candidate"]))
        m.submodules.tnc = tnc = ActivationUnit(make_activation("tanh", cfg.tanh, f["cell"], f["cell_act"]))
        for unit_ in (sig, tnh, tnc):
            assert unit_.latency == cycles.ACT_LATENCY
        m.d.comb += [sig.x.eq(pre3), sig.valid_in.eq(pv3), tnh.x.eq(pre3), tnh.valid_in.eq(pv3)]
        v, hgd, ud, cd = pv3, hg3, u3, c3
        ppd = pp3
        for n in range(cycles.ACT_LATENCY):
            nv, nhg, nu, nc, npp = (Signal(name=f"pv{4 + n}"), Signal(2, name=f"hg{4 + n}"),
                                    Signal.like(unit, name=f"u{4 + n}"), Signal.like(cprev1, name=f"c{4 + n}"),
                                    Signal(name=f"pp{4 + n}"))
            m.d.sync += [nv.eq(v), nhg.eq(hgd), nu.eq(ud), nc.eq(cd), npp.eq(ppd)]
            v, hgd, ud, cd, ppd = nv, nhg, nu, nc, npp
        # P6: gate values; the g row triggers the cell update
        o_r, i_r, f_r = (Signal(_shape(f["gate"]), name=n) for n in ("o_r", "i_r", "f_r"))
        with m.If(v):
            with m.Switch(hgd):
                with m.Case(0):
                    m.d.sync += o_r.eq(sig.y)
                with m.Case(1):
                    m.d.sync += i_r.eq(sig.y)
                with m.Case(2):
                    m.d.sync += f_r.eq(sig.y)
        cv7, o7, u7, pp7 = Signal(name="cv7"), Signal.like(o_r, name="o7"), Signal.like(unit, name="u7"), Signal(name="pp7")
        csum = (f_r * cd << dp.fc_shift) + (i_r * tnh.y << dp.ig_shift)
        csum7 = Signal(signed(len(csum) + 1), name="csum7")
        m.d.sync += [cv7.eq(v & (hgd == 3)), csum7.eq(csum), o7.eq(o_r), u7.eq(ud), pp7.eq(ppd)]
        # P7: requantize c(t)
        mc = cfg.mode("cell")
        cnew, csat = requantize(csum7, dp.cell_frac, f["cell"], mc.rounding, mc.overflow)
        with m.If(cv7 & csat):
            m.d.sync += st.sat_cell.eq(1)
        cv8, c8, o8, u8, pp8 = (Signal(name="cv8"), Signal(signed(f["cell"].width), name="c8"),
                                Signal.like(o_r, name="o8"), Signal.like(unit, name="u8"), Signal(name="pp8"))
        m.d.sync += [cv8.eq(cv7), c8.eq(cnew), o8.eq(o7), u8.eq(u7), pp8.eq(pp7)]
        m.d.comb += [cw.addr.eq(u8), cw.data.eq(c8), cw.en.eq(cv8), tnc.x.eq(c8), tnc.valid_in.eq(cv8)]
        v, od, ud, ppd = cv8, o8, u8, pp8
        tc_y = tnc.y
        if c_new:
            # P8: o's pre-activation with p_o * c(t); P9: [pre] requantize; P10..P13: sigmoid
            osum9 = Signal(signed(len(sum2) + 1), name="osum9")
            m.d.sync += osum9.eq(osum_d + ((po_d * c8) << dp.p_shift))
            pre_o, osat = requantize(osum9, dp.acc_frac, f["pre"], mp.rounding, mp.overflow)
            pre10 = Signal(_shape(f["pre"]), name="pre10")
            m.d.sync += pre10.eq(pre_o)
            m.submodules.sig_o = sig_o = ActivationUnit(
                make_activation("sigmoid", cfg.sigmoid, f["pre"], f["gate"]))
            v9 = Signal(name="ov9")
            m.d.sync += v9.eq(cv8)
            with m.If(v9 & osat):
                m.d.sync += st.sat_pre.eq(1)
            m.d.comb += [sig_o.x.eq(pre10), sig_o.valid_in.eq(1)]
            tc12, tc13 = Signal.like(tnc.y, name="tc12"), Signal.like(tnc.y, name="tc13")
            m.d.sync += [tc12.eq(tnc.y), tc13.eq(tc12)]
            tc_y = tc13
        for n in range(cycles.row_to_h(cfg) - 9):
            nv, no, nu, npp = (Signal(name=f"cv{9 + n}"), Signal.like(o_r, name=f"o{9 + n}"),
                               Signal.like(unit, name=f"u{9 + n}"), Signal(name=f"pp{9 + n}"))
            m.d.sync += [nv.eq(v), no.eq(od), nu.eq(ud), npp.eq(ppd)]
            v, od, ud, ppd = nv, no, nu, npp
        # P11 (P13 for c_new): h = o * tanh(c)
        mh = cfg.mode("hidden")
        o_final = sig_o.y if c_new else od
        hval, hsat = requantize(o_final * tc_y, dp.out_frac, f["hidden"], mh.rounding, mh.overflow)
        with m.If(v & hsat):
            m.d.sync += st.sat_hidden.eq(1)
        hv12, h12, u12, pp12 = (Signal(name="hv12"), Signal(signed(f["hidden"].width), name="h12"),
                                Signal.like(unit, name="u12"), Signal(name="pp12"))
        m.d.sync += [hv12.eq(v), h12.eq(hval), u12.eq(ud), pp12.eq(ppd)]
        # P12: h memory, output FIFO, h_done
        m.submodules.ofifo = ofifo = fifo.SyncFIFOBuffered(width=f["hidden"].width + 1, depth=self.out_depth)
        m.d.comb += [hw_.addr.eq(Mux(pp12, H, 0) + u12), hw_.data.eq(h12), hw_.en.eq(hv12),
                     ofifo.w_data.eq(h12.as_unsigned() | ((u12 == H - 1) << f["hidden"].width)),
                     ofifo.w_en.eq(hv12),
                     self.o.valid.eq(ofifo.r_rdy), ofifo.r_en.eq(self.o.ready),
                     self.o.payload.data.eq(ofifo.r_data[:f["hidden"].width]),
                     self.o.payload.last.eq(ofifo.r_data[f["hidden"].width])]
        with m.If(hv12 & ~ofifo.w_rdy):
            m.d.sync += st.err_overrun.eq(1)
        with m.If(hv12 & (u12 == H - 1)):
            m.d.sync += h_done[pp12].eq(1)
        return m
