"""The gate pipeline shared by every cell kind: MAC lanes, row serializer, streams, write port.

::

    i (x elements) --> x double buffer --+
                                          +--> z = [x(t); h(t-1)] broadcast   (pass 2 of a
                         h double buffer --+          |                          reset-before GRU:
                                                      v                          [x(t); r*h(t-1)])
     lane 0..L-1:  weight memory --> w, z registers --> w * z (prod) --> acc (+= prod << shift) --> hold[l]
                                                                                  |
     serializer, one row per cycle (P0): hold[q], bias, aux and state reads       v
     the kind's post-processor (rtl.kinds), P1 .. row_to_h --> h memory + output FIFO --> o

The cell kind is a config choice: the rows, their order and the passes come
from :class:`model.cycles.Schedule`, the per-kind arithmetic from the kind's
post-processor module; everything else is this one pipeline.  Timing is fixed; ``model.cycles``
predicts cycles per step and first-output latency.  Ports:

- ``i``: stream of ``{data: formats.input, last, first}``; one x(t) element per
  transfer, ``last`` on element ``input_size - 1``, ``first`` on the first
  element of a sequence (the state starts from zero).
- ``o``: stream of ``{data: formats.hidden, last, first}``; h(t) element-serial,
  ``first`` on element 0 of a sequence's first h(t) (so ``o`` can feed the next
  cell's ``i`` with ``wiring.connect``).
- ``w``: stream of ``{addr, data}`` writes into the weight, bias, auxiliary and
  initial-state memories (address map in :mod:`rtl.layout`); ``always_ready`` (no ``ready``
  port).  Every sequence (``first``) starts from the initial state memories (h0, and c0 for
  the LSTM kinds; zeros unless written or given as ``init_state``); a sequence sent without
  ``first`` carries on from the state the previous one left.  A write lands, in the cycle it is valid, only while no step is in flight
  (every step started has written all of its h(t)); it then holds for every step
  that starts after it, and a step does not start in a cycle with a write, so a
  step never sees part of a reload.  A write while a step is in flight is dropped
  and sets ``err_busy``.

- ``state_addr`` / ``state_data``: the final state, read while no step is in flight:
  ``state_data`` is, one cycle after ``state_addr``, h of unit ``state_addr`` (below
  ``hidden_size``) or the unit's own state (c for the LSTM kinds, h for a GRU) of unit
  ``state_addr - hidden_size``.

Word layouts are defined once in :mod:`rtl.streams`.
- ``status``: sticky bits ``sat_pre``, then the kind's own (``sat_cell`` for
  the LSTM kinds, ``sat_hn`` for a reset-after GRU, ``sat_rh`` for a
  reset-before GRU), ``sat_hidden`` (a value saturated or wrapped at that point), ``err_framing`` (``last``/``first`` in
  the wrong place), ``err_overrun`` (internal; never set in a valid config),
  ``err_addr`` (a write to an address outside every memory; nothing is written), ``err_busy``
  (a write while a step was in flight; nothing is written).
"""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from model import cycles
from model.config import Config, ConfigError
from model.datapath import Datapath
from model.params import QParams

from . import streams
from .gates import Extra, Row, sat_points
from .input_buffer import InputBuffer
from .kinds import post_processor
from .layout import Layout, aux_format, init_regions, memory_images
from .mac_lane import MacLane
from .serializer import Serializer
from .stages import Stages
from .write_port import WriteDecoder, regions

#: Widest multiplier operand the lanes accept (one 18x18 DSP block per lane).
MAX_OPERAND_BITS = 18


class HardwareLimitError(ConfigError):
    """A valid config that this gateware cannot build; the message names the field and the limit."""


def check_buildable(cfg: Config):
    """Raise :class:`HardwareLimitError` for configs outside the gateware's limits."""
    for fn in ("sigmoid", "tanh"):
        if getattr(cfg, fn).method == "exact":
            raise HardwareLimitError(f"{fn}.method = 'exact' has no hardware; accepted: lut, lut_interp, pwl, hard")
    k = cfg.input_size + cfg.hidden_size
    if cfg.lanes > k:
        raise HardwareLimitError(
            f"lanes = {cfg.lanes} exceeds input_size + hidden_size = {k}: the post-processor takes one "
            f"row per cycle and must finish a slot's {cfg.lanes} rows within the {k}-cycle slot")
    for t in cfg.cell.multiplier_operands():
        if cfg.fmt(t).width > MAX_OPERAND_BITS:
            raise HardwareLimitError(f"formats.{t} = {cfg.fmt(t)} is {cfg.fmt(t).width} bits wide; "
                                     f"multiplier operands are limited to {MAX_OPERAND_BITS} bits")


def top_name(cfg: Config) -> str:
    """Verilog top module name: ``<kind>_cell`` (``lstm_cell``, ``gru_cell``, ...)."""
    return f"{cfg.kind}_cell"


#: Error status bits, after the saturation bits.
ERROR_BITS = ("err_framing", "err_overrun", "err_addr", "err_busy")


def status_bits(cfg: Config) -> tuple:
    """Names of the ``status`` bits, low bit first."""
    return (*sat_points(cfg), *ERROR_BITS)


class RecurrentCell(wiring.Component):
    """Step engine of any registered cell kind (``config.kind``); weights baked in from ``qparams``."""

    def __init__(self, config: Config, qparams: QParams | None = None, init_state=None):
        try:
            check_buildable(config)
        except HardwareLimitError:
            self._MustUse__silence = True  # refused before construction: nothing to elaborate
            raise
        if qparams is not None:
            qparams.check_matches(config)
        self._cfg = config
        self._q = qparams
        self._init = init_state
        self._dp = Datapath.from_config(config)
        self._lay = Layout.for_config(config)
        self._cm = cycles.CycleModel.for_config(config)
        # a step reserves hidden_size places before it starts; two steps may be in flight, plus
        # the rows already in the post-processor and the FIFO's own registers
        self.out_depth = 2 * config.hidden_size + config.lanes + 4
        super().__init__({
            "i": In(stream.Signature(streams.input_word(config).layout())),
            "o": Out(stream.Signature(streams.output_word(config).layout())),
            "w": In(stream.Signature(streams.write_word(config).layout(), always_ready=True)),
            "status": Out(data.StructLayout({n: 1 for n in status_bits(config)})),
            "state_addr": In(range(2 * config.hidden_size)),
            "state_data": Out(signed(max(config.fmt(t).width for _, t in config.cell.state))),
        })
        #: Bit ``k`` high for a cycle clears ``status`` bit ``k`` (an event in the same cycle sets it again).
        #: Not a port: an enclosing design drives it (:class:`rtl.axi.AxiNetwork`'s clear-on-write); 0 otherwise.
        self.status_clear = Signal(len(status_bits(config)), name="status_clear")

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
        sch = lay.schedule
        f = cfg.formats
        H, I, L, S, R, K = cfg.hidden_size, cfg.input_size, cfg.lanes, lay.slots, cfg.rows, lay.slot_cycles
        two_pass = len(sch.pass_rows) == 2
        split_x = cfg.cell.split_x
        img = memory_images(cfg, self._q, self._init)
        st = self.status
        for k, n in enumerate(status_bits(cfg)):  # before every statement that sets a bit: setting wins
            with m.If(self.status_clear[k]):
                m.d.sync += getattr(st, n).eq(0)

        # ---- input: double-buffered x(t) -------------------------------------------------
        m.submodules.inbuf = inbuf = InputBuffer(cfg)
        wiring.connect(m, wiring.flipped(self.i), inbuf.i)
        with m.If(inbuf.err_framing):
            m.d.sync += st.err_framing.eq(1)

        # ---- h(t) double buffer, per-unit state (c for an LSTM, h for a GRU) ------------------
        m.submodules.hmem = hmem = memory.Memory(shape=signed(f["hidden"].width), depth=2 * H, init=[])
        hw_, hr = hmem.write_port(), hmem.read_port()
        state_fmt = f[cfg.cell.unit_state]
        m.submodules.smem = smem = memory.Memory(shape=signed(state_fmt.width), depth=H, init=[])
        sw, sr = smem.write_port(), smem.read_port()
        # the initial state of every sequence: h0 (the z path's h part at a sequence start) and the unit
        # state (h0 itself for a kind whose unit state is h)
        inits = init_regions(cfg)
        init_mem = {}
        for _, name, tensor in inits:
            init_mem[name] = memory.Memory(shape=signed(f[tensor].width), depth=H, init=img[name])
            m.submodules[f"{name}mem"] = init_mem[name]
        h0mem, s0mem = init_mem[inits[0][1]], init_mem[inits[-1][1]]
        h0r, s0r = h0mem.read_port(), s0mem.read_port()
        extra = Extra()
        if two_pass:
            # pass 2 operand r*h(t-1), written by the gate math
            m.submodules.opmem = opmem = memory.Memory(shape=signed(f["hidden"].width), depth=H, init=[])
            extra.op_write, opr = opmem.write_port(), opmem.read_port()
            extra.op_ready = Array(Signal(name=f"op_ready{b}") for b in range(2))  # per step parity

        # ---- sequencer ----------------------------------------------------------------------
        s, j = Signal(range(max(S, 2))), Signal(range(K))
        waddr = Signal(range(max(lay.lane_depth, 2)))
        par, sos, need_first = Signal(), Signal(), Signal(init=1)
        # h_done[p]: the last step with h-bank parity p has written all of h (none pending at reset)
        h_done = Array(Signal(name=f"h_done{b}", init=1) for b in range(2))
        # step_sos[p]: the step with h-bank parity p starts a sequence (its h(t) carries o.first)
        step_sos = Array(Signal(name=f"step_sos{b}") for b in range(2))
        credits = Signal(range(self.out_depth + 1), init=self.out_depth)
        at_start = (s == 0) & (j == 0)
        at_h = (s == 0) & (j == I)
        issue = Signal()
        ready_h = Mux(at_h, sos | h_done[~par], 1)
        if two_pass:  # pass 2 waits for every r*h(t-1), at a sequence start too (r*h0)
            p2 = sch.pass_slots[0]
            ready_h = Mux((s == p2) & (j == I), extra.op_ready[par], ready_h)
        # a step starts only when the step two before it (same parity) is complete: after a
        # sequence start, which does not wait for h, that one may still be in flight; nor in a
        # cycle with a write on w (a write never splits a step)
        m.d.comb += issue.eq(Mux(at_start, inbuf.full & (credits >= H) & h_done[~par] & ~self.w.valid, ready_h))
        pop = self.o.valid & self.o.ready
        m.d.sync += credits.eq(credits - Mux(issue & at_start, H, 0) + pop)
        with m.If(issue):
            with m.If(j == K - 1):
                m.d.sync += [j.eq(0), s.eq(Mux(s == S - 1, 0, s + 1))]
            with m.Else():
                m.d.sync += j.eq(j + 1)
            m.d.sync += waddr.eq(Mux((s == S - 1) & (j == K - 1), 0, waddr + 1))
            with m.If(at_start):
                m.d.sync += [par.eq(~par), sos.eq(inbuf.sos | need_first), need_first.eq(0),
                             h_done[~par].eq(0), step_sos[~par].eq(inbuf.sos | need_first)]
                if two_pass:
                    m.d.sync += extra.op_ready[~par].eq(0)
        m.d.comb += [inbuf.release.eq(issue & (s == S - 1) & (j == I - 1)),
                     inbuf.rd_addr.eq(j), inbuf.rd_en.eq(issue),
                     hr.addr.eq(Mux(par, 0, H) + j - I), hr.en.eq(issue)]

        # stage 1: memory data
        v1, first1, isx1, xend1, zero1, par1, sos1 = (Signal(name=n) for n in
                                                      ("v1", "first1", "isx1", "xend1", "zero1", "par1", "sos1"))
        last1 = Signal(name="last1")
        slot1 = Signal(range(max(S, 2)))
        m.d.sync += [v1.eq(issue), first1.eq(j == 0), last1.eq(j == K - 1), isx1.eq(j < I), xend1.eq(j == I - 1),
                     zero1.eq(sos), slot1.eq(s), par1.eq(par), sos1.eq(sos)]
        m.d.comb += [h0r.addr.eq(j - I), h0r.en.eq(issue)]
        hpart = Mux(zero1, h0r.data, hr.data)
        if two_pass:  # pass 2 reads r*h(t-1), from h0 too at a sequence start
            pass2_1 = Signal(name="pass2_1")
            m.d.sync += pass2_1.eq(s >= p2)
            m.d.comb += [opr.addr.eq(j - I), opr.en.eq(issue)]
            hpart = Mux(pass2_1, opr.data, hpart)
        z1 = Signal(signed(max(f["input"].width, f["hidden"].width)))
        m.d.comb += z1.eq(Mux(isx1, inbuf.rd_data, hpart))
        stages = Stages(m)
        row1 = (v1, first1, last1, isx1, xend1, par1, sos1, slot1)
        for sig in row1:
            stages.put(sig, 1)
        # stage 2: registered multiplier operands (z here, the weight in each lane)
        z2 = stages.reg(z1, 2, "z")
        # stage 3: product; the accumulator and the hold registers take stage 3's sum at its end
        v3, first3, last3, isx3, xend3, par3, sos3, slot3 = (stages.at(sig, 3) for sig in row1)
        done3 = v3 & last3
        # ---- write port: one decoder for every memory ----------------------------------------
        m.submodules.wdec = wdec = WriteDecoder(cfg)
        wiring.connect(m, wiring.flipped(self.w), wdec.w)
        woff = wdec.offset
        # writes land only while no step is in flight: every step started has written all of h
        idle = h_done[0] & h_done[1]
        wen = [wdec.en[k] & idle for k in range(len(wdec.en))]
        with m.If(wdec.err_addr):
            m.d.sync += st.err_addr.eq(1)
        with m.If(self.w.valid & ~idle):
            m.d.sync += st.err_busy.eq(1)

        # ---- the MAC lanes ---------------------------------------------------------------------
        hold, hold_x = [], []
        for k in range(L):
            m.submodules[f"lane{k}"] = lane = MacLane(cfg, img["lanes"][k])
            m.d.comb += [lane.rd_addr.eq(waddr), lane.rd_en.eq(issue),
                         lane.wr_addr.eq(woff), lane.wr_data.eq(wdec.data), lane.wr_en.eq(wen[k]),
                         lane.z.eq(z2), lane.valid.eq(v3), lane.first.eq(first3), lane.is_x.eq(isx3),
                         lane.x_end.eq(xend3), lane.last.eq(last3)]
            hold.append(lane.hold)
            hold_x.append(lane.hold_x)
        acc_shape = signed(dp.acc_width)
        hold = Array(hold)
        hold_x = Array(hold_x) if split_x else None

        # ---- serializer: one row per cycle, in schedule order ---------------------------------
        m.submodules.ser = ser = Serializer(cfg)
        m.d.comb += [ser.done.eq(done3), ser.slot.eq(slot3), ser.par.eq(par3), ser.sos.eq(sos3)]
        with m.If(ser.overrun):
            m.d.sync += st.err_overrun.eq(1)
        busy, q, rowc, unit, hg, pp_par, pp_sos = (ser.valid, ser.lane, ser.row, ser.unit, ser.gate, ser.row_par,
                                                   ser.row_sos)

        m.submodules.bmem = bmem = memory.Memory(shape=signed(f["bias"].width), depth=R, init=img["bias"])
        br, bw = bmem.read_port(), bmem.write_port()
        wen_of = {region: wen[k] for k, (region, _) in enumerate(regions(cfg))}
        m.d.comb += [br.addr.eq(rowc), bw.addr.eq(woff), bw.data.eq(wdec.data), bw.en.eq(wen_of[L]),
                     sr.addr.eq(unit), s0r.addr.eq(unit)]
        for region, name, _ in inits:
            port = init_mem[name].write_port()
            m.d.comb += [port.addr.eq(woff), port.data.eq(wdec.data), port.en.eq(wen_of[region])]
        aux_data = None
        if lay.aux:
            afmt = aux_format(cfg)
            m.submodules.amem = amem = memory.Memory(shape=signed(afmt.width), depth=lay.aux_depth, init=img["aux"])
            ar, aw = amem.read_port(), amem.write_port()
            m.d.comb += [ar.addr.eq(rowc if lay.aux.per == "row" else unit), aw.addr.eq(woff),
                         aw.data.eq(wdec.data), aw.en.eq(wen_of[L + 1])]
            aux_data = ar.data

        # P1: the row, its bias / aux words and the unit's previous state
        pv1, a1, hg1, u1, pp1, ps1 = (Signal(name="pv1"), Signal(acc_shape, name="a1"), Signal.like(hg, name="hg1"),
                                      Signal.like(unit, name="u1"), Signal(name="pp1"), Signal(name="ps1"))
        m.d.sync += [pv1.eq(busy), a1.eq(hold[q]), hg1.eq(hg), u1.eq(unit), pp1.eq(pp_par), ps1.eq(pp_sos)]
        ax1 = None
        if split_x:
            ax1 = Signal(acc_shape, name="ax1")
            m.d.sync += ax1.eq(hold_x[q])
        prev1 = Signal(signed(state_fmt.width), name="prev1")
        m.d.comb += prev1.eq(Mux(ps1, s0r.data, sr.data))
        row = Row(pv1, a1, ax1, hg1, u1, pp1, br.data, aux_data, prev1)
        out = post_processor(cfg.cell)(m, cfg, dp, row, st, sw, extra)

        # ---- h memory, output FIFO (o words), h_done -------------------------------------------------
        oword = streams.output_word(cfg)
        m.submodules.ofifo = ofifo = fifo.SyncFIFOBuffered(width=oword.width, depth=self.out_depth)
        wword = data.View(oword.layout(), ofifo.w_data)
        m.d.comb += [hw_.addr.eq(Mux(out.par, H, 0) + out.unit), hw_.data.eq(out.h), hw_.en.eq(out.valid),
                     wword.data.eq(out.h), wword.last.eq(out.unit == H - 1),
                     wword.first.eq(step_sos[out.par] & (out.unit == 0)),
                     ofifo.w_en.eq(out.valid),
                     self.o.valid.eq(ofifo.r_rdy), ofifo.r_en.eq(self.o.ready),
                     self.o.payload.eq(ofifo.r_data)]
        with m.If(out.valid & ~ofifo.w_rdy):
            m.d.sync += st.err_overrun.eq(1)
        with m.If(out.valid & (out.unit == H - 1)):
            m.d.sync += h_done[out.par].eq(1)

        # ---- final state readout: the last h bank (the last step's parity) and the unit state ----------
        hq, sq = hmem.read_port(), smem.read_port()
        is_s = Signal()
        m.d.comb += [hq.addr.eq(Mux(par, H, 0) + self.state_addr), sq.addr.eq(self.state_addr - H)]
        m.d.sync += is_s.eq(self.state_addr >= H)
        m.d.comb += self.state_data.eq(Mux(is_s, sq.data, hq.data))
        return m
