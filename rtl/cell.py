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

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from model import cycles, latency
from model.config import Config, ConfigError
from model.datapath import Datapath
from model.params import QParams

from . import streams
from .gates import Extra, Row, sat_points
from .input_buffer import InputBuffer
from .kinds import post_processor
from .layout import Layout, aux_format, init_regions, memory_images
from .mac_lane import MacLane
from .ram import SmallFIFO, small_memory
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
    sch = cycles.Schedule.for_config(cfg)
    k = sch.slot_cycles
    if cfg.cell.op_ready is not None:  # two passes: pass 2 reads r*h(t-1) from one memory, one element a cycle
        kind = ", ".join([f"kind = {cfg.kind!r}", *(f"{o} = {v!r}" for o, v in cfg.options.items())])
        if cfg.beat != 1:
            raise HardwareLimitError(f"beat = {cfg.beat} with {kind}: pass 2 reads r*h(t-1) one element per "
                                     f"cycle; accepted: beat = 1")
        if cfg.lanes > k:
            raise HardwareLimitError(
                f"lanes = {cfg.lanes} exceeds input_size + hidden_size = {k} with {kind}: its one "
                f"post-processor must finish a slot's {cfg.lanes} rows within the {k}-cycle slot")
    if not sch.fits:  # even one post-processor per unit cannot take a unit's rows within a slot
        top = max(b for b in range(1, cfg.beat + 1)
                  if -(-(cfg.input_size + cfg.hidden_size) // b) >= sch.gates)
        raise HardwareLimitError(
            f"beat = {cfg.beat} with lanes = {cfg.lanes}: slots of {k} cycles are shorter than a unit's "
            f"{sch.gates} rows, which its post-processor takes one per cycle; accepted: beat <= {top}, or "
            f"lanes = {cfg.rows} (one slot per step)")
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
        # a step reserves hidden_size places before it starts; interleave + 1 steps may be in flight (a
        # step waits for its sequence's step interleave steps before), plus the rows already in the
        # post-processor and the FIFO's own registers
        self.out_depth = (config.interleave + 1) * config.hidden_size + config.lanes + 4
        super().__init__({
            "i": In(stream.Signature(streams.input_word(config).layout())),
            "o": Out(stream.Signature(streams.output_word(config).layout())),
            "w": In(stream.Signature(streams.write_word(config).layout(), always_ready=True)),
            "status": Out(data.StructLayout({n: 1 for n in status_bits(config)})),
            "state_addr": In(range(2 * config.hidden_size)),
            "state_data": Out(signed(max(config.fmt(t).width for _, t in config.cell.state))),
            **({"state_seq": In(range(config.interleave))} if config.interleave > 1 else {}),
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
        B, P, N = cfg.beat, sch.posts, cfg.interleave
        NB = 2 * N  # h banks: two per sequence, bank 2 * seq + parity
        # z and h(t-1) in registers when a lane takes several elements a cycle or several post-processors
        # write h at once; one memory each otherwise
        wide = B > 1 or P > 1
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
        hshape = signed(f["hidden"].width)
        if wide:
            hreg = [[Signal(hshape, name=f"h{b}_{u}") for u in range(H)] for b in range(NB)]
        else:
            # a step reads its h(t-1) bank only once that bank's step has written all of it, and that
            # bank's next writer issues after the reader: no read meets a write of its word.  Bank b's
            # unit u is word b << hb | u, so no address needs an adder
            hb = (H - 1).bit_length()
            m.submodules.hmem = hmem = small_memory(shape=hshape, depth=NB << hb, init=[], collisions=False)
            hw_, hr = hmem.write_port(), hmem.read_port()
        state_fmt = f[cfg.cell.unit_state]
        if P > 1:
            sreg = [[Signal(signed(state_fmt.width), name=f"state{n}_{u}") for u in range(H)] for n in range(N)]
        else:
            m.submodules.smem = smem = small_memory(shape=signed(state_fmt.width), depth=N * H, init=[])
            sw, sr = smem.write_port(), smem.read_port()
        # the initial state of every sequence: h0 (the z path's h part at a sequence start) and the unit
        # state (h0 itself for a kind whose unit state is h)
        inits = init_regions(cfg)
        init_mem = {}
        for _, name, tensor in inits:
            init_mem[name] = small_memory(shape=signed(f[tensor].width), depth=H, init=img[name])
            m.submodules[f"{name}mem"] = init_mem[name]
        h0mem, s0mem = init_mem[inits[0][1]], init_mem[inits[-1][1]]
        extra = Extra()
        if two_pass:
            # pass 2 operand r*h(t-1), written by the gate math
            m.submodules.opmem = opmem = small_memory(shape=signed(f["hidden"].width), depth=H, init=[])
            extra.op_write, opr = opmem.write_port(), opmem.read_port()
            extra.op_ready = Array(Signal(name=f"op_ready{b}") for b in range(NB))  # per h bank

        # ---- sequencer ----------------------------------------------------------------------
        s, j = Signal(range(max(S, 2))), Signal(range(max(K, 2)))
        waddr = Signal(range(max(lay.lane_depth, 2)))
        # the issuing step's h bank and its sequence start; per sequence, the parity of its last step
        # and whether it has started since reset
        bank, sos = Signal(range(NB), name="bank"), Signal()
        seq_par = Array(Signal(name=f"seq_par{n}") for n in range(N))
        need_first = Array(Signal(name=f"need_first{n}", init=1) for n in range(N))
        # h_done[b]: the last step with h bank b has written all of h (none pending at reset)
        h_done = Array(Signal(name=f"h_done{b}", init=1) for b in range(NB))
        # step_sos[b]: the step with h bank b starts a sequence (its h(t) carries o.first)
        step_sos = Array(Signal(name=f"step_sos{b}") for b in range(NB))
        credits = Signal(range(self.out_depth + 1), init=self.out_depth)
        # credits >= hidden as a register kept with the count, both outcomes of an issue compared
        # apart from it, so the issue's path has no comparator and the register one choice after it
        room = Signal(name="room", init=self.out_depth >= H)
        issue = Signal()
        # the (slot, chunk) positions the issue logic tests, each a register kept with s and j (which
        # move only on an issue), so no comparison of the counters sits on the issue's path
        wrap_j, wrap_s = j == K - 1, s == S - 1
        next_j, next_s = Mux(wrap_j, 0, j + 1), Mux(wrap_j, Mux(wrap_s, 0, s + 1), s)

        def at(slot, chunk, name):
            flag = Signal(name=name, init=int(slot == 0 and chunk == 0))
            with m.If(issue):
                m.d.sync += flag.eq((next_s == slot) & (next_j == chunk))
            return flag

        at_start, at_h = at(0, 0, "at_start"), at(0, sch.h_chunk, "at_h")
        at_last, at_x_end = at(S - 1, K - 1, "at_last"), at(S - 1, sch.x_end_chunk, "at_x_end")
        # the next step: the input buffer's vector's sequence, that sequence's other bank
        nseq = inbuf.seq[:max(1, (N - 1).bit_length())] if N > 1 else 0
        new_bank = Cat(~seq_par[nseq], nseq) if N > 1 else ~seq_par[0]
        new_sos = inbuf.sos | need_first[nseq]
        # the issuing step's bank and sequence start (a step's first issue sets both registers)
        cur_bank, cur_sos = Mux(at_start, new_bank, bank), Mux(at_start, new_sos, sos)
        # the first chunk with an h element waits for its sequence's h(t-1); a sequence start does not
        ready_h = Mux(at_h, cur_sos | h_done[cur_bank ^ 1], 1)
        if two_pass:  # pass 2 waits for every r*h(t-1), at a sequence start too (r*h0)
            p2 = sch.pass_slots[0]
            ready_h = Mux(at(p2, sch.h_chunk, "at_p2_h"), extra.op_ready[bank], ready_h)
        # a step starts only when its bank's last step (its sequence's step two before) is complete:
        # after a sequence start, which does not wait for h, that one may still be in flight; nor in a
        # cycle with a write on w (a write never splits a step)
        go = Mux(at_start, inbuf.full & room & h_done[new_bank] & ~self.w.valid, 1) & ready_h
        if self._cm.drain:
            # after a step's last chunk the issue pauses until the last slot's queues are no longer
            # than a slot (model.cycles: drain), so the next sums never overtake a queued row
            pause = Signal(range(self._cm.drain + 1), name="pause")
            with m.If(pause != 0):
                m.d.sync += pause.eq(pause - 1)
            with m.If(issue & at_last):
                m.d.sync += pause.eq(self._cm.drain)
            go = go & (pause == 0)
        m.d.comb += issue.eq(go)
        pop = self.o.valid & self.o.ready
        # credits + pop >= H and credits + pop - H >= H, each a comparison of the count alone with
        # the late pop at its end
        kept_room = (credits >= H) | (pop & (credits == H - 1))
        spent_room = (credits >= 2 * H) | (pop & (credits == 2 * H - 1))
        m.d.sync += [credits.eq(Mux(issue & at_start, credits + pop - H, credits + pop)),
                     room.eq(Mux(issue & at_start, spent_room, kept_room))]
        with m.If(issue):
            m.d.sync += [j.eq(next_j), s.eq(next_s), waddr.eq(Mux(at_last, 0, waddr + 1))]
            with m.If(at_start):
                m.d.sync += [bank.eq(new_bank), sos.eq(new_sos), need_first[nseq].eq(0),
                             seq_par[nseq].eq(~seq_par[nseq]), h_done[new_bank].eq(0),
                             step_sos[new_bank].eq(new_sos)]
                if two_pass:
                    m.d.sync += extra.op_ready[new_bank].eq(0)
        release = issue & at_x_end
        m.d.comb += [inbuf.release.eq(release), inbuf.rd_addr.eq(j), inbuf.rd_en.eq(issue)]

        # stage 1: memory data (chunk j: z elements j*B .. j*B + B - 1; element b is x below I)
        zw = max(f["input"].width, f["hidden"].width)
        v1, first1, xend1, zero1, sos1 = (Signal(name=n) for n in ("v1", "first1", "xend1", "zero1", "sos1"))
        bank1 = Signal(range(NB), name="bank1")
        last1 = Signal(name="last1")
        isx1 = Signal(B, name="isx1")
        slot1 = Signal(range(max(S, 2)))
        m.d.sync += [v1.eq(issue), first1.eq(j == 0), last1.eq(j == K - 1), xend1.eq(j == sch.x_end_chunk),
                     zero1.eq(cur_sos), slot1.eq(s), bank1.eq(cur_bank), sos1.eq(cur_sos)]
        m.d.sync += [isx1[b].eq(j < -(-(I - b) // B)) for b in range(B)]
        # z's memories (h0, h(t-1), r*h(t-1)) read every cycle, as the lanes' do (no enable to fan out from the
        # issue logic): a word read in a cycle without a chunk meets no valid in the lanes
        # their addresses are registers kept with j (element j*B + b of z is h element j*B + b - I), so a
        # LUT RAM's read follows a register, not the counter's arithmetic
        h0r = [h0mem.read_port() for _ in range(B)]
        zoff = [Signal(signed(max(I, K * B).bit_length() + 1), name=f"z_off{b}", init=b - I) for b in range(B)]
        zoff_next = [Mux(wrap_j, b - I, zoff[b] + B) for b in range(B)]
        with m.If(issue):
            m.d.sync += [zoff[b].eq(zoff_next[b]) for b in range(B)]
        m.d.comb += [port.addr.eq(zoff[b]) for b, port in enumerate(h0r)]
        # stage 2: every memory's word registered apart and chosen after the registers (on the way into
        # the next z register), so no cycle holds a memory read and the choice
        if wide:
            z2 = self._z_registers(m, cfg, inbuf, release, hreg, h0r, j, cur_bank, zero1, zw)
        else:
            # the read address of chunk j, h element j - I of the h(t-1) bank, kept as a register: a step's
            # first issue sets it from a table of the banks, each chunk adds one, and a slot starts again
            # from the bank's base (register h_start) less I; all modulo the address width
            aw = hb + (NB - 1).bit_length()
            hstart = Signal(aw, name="h_start", init=-I % 2 ** aw)
            haddr = Signal(aw, name="h_addr", init=-I % 2 ** aw)
            first_j = 1 if K > 1 else 0  # the chunk after a step's first
            with m.If(issue):
                with m.If(at_start):
                    m.d.sync += [hstart.eq(Array((((b ^ 1) << hb) - I) % 2 ** aw for b in range(NB))[new_bank]),
                                 haddr.eq(Array((((b ^ 1) << hb) + first_j - I) % 2 ** aw
                                                for b in range(NB))[new_bank])]
                with m.Else():
                    m.d.sync += haddr.eq(Mux(wrap_j, hstart, haddr + 1))
            m.d.comb += hr.addr.eq(haddr)
            x2, h2, h02 = (Signal.like(w, name=n) for w, n in ((inbuf.rd_data, "zx2"), (hr.data, "zh2"),
                                                                (h0r[0].data, "zh0_2")))
            isx2, zero2 = Signal(name="isx2"), Signal(name="zero2")
            m.d.sync += [x2.eq(inbuf.rd_data), h2.eq(hr.data), h02.eq(h0r[0].data), isx2.eq(isx1[0]),
                         zero2.eq(zero1)]
            hpart = Mux(zero2, h02, h2)
            if two_pass:  # pass 2 reads r*h(t-1), from h0 too at a sequence start
                pass2_1, pass2_2 = Signal(name="pass2_1"), Signal(name="pass2_2")
                op2 = Signal.like(opr.data, name="zop2")
                m.d.sync += [pass2_1.eq(s >= p2), pass2_2.eq(pass2_1), op2.eq(opr.data)]
                m.d.comb += opr.addr.eq(zoff[0])
                hpart = Mux(pass2_2, op2, hpart)
            z2 = Mux(isx2, x2, hpart)
        stages = Stages(m)
        row1 = (v1, first1, last1, isx1, xend1, bank1, sos1, slot1)
        for sig in row1:
            stages.put(sig, 1)
        # stage MacLane.OPERANDS: registered multiplier operands (z and the weights, each lane its own copy;
        # z reaches the lanes one stage before)
        SO = MacLane.OPERANDS
        assert SO - 1 > 2, "z is chosen at stage 2 and registered before it reaches the lanes"
        zop = stages.at(stages.put(z2, 2, "z2"), SO - 1, "z")
        # the next stage: products; the lanes' adder trees (latency.tree(beat) levels) and accumulators follow
        vp, firstp, lastp, isxp, xendp = (stages.at(sig, SO + 1) for sig in row1[:5])
        SD = SO + 1 + latency.tree(B)  # the stage the lanes' sums meet the accumulators
        done = stages.at(v1, SD) & stages.at(last1, SD)
        # ---- write port: one decoder for every memory ----------------------------------------
        m.submodules.wdec = wdec = WriteDecoder(cfg)
        wiring.connect(m, wiring.flipped(self.w), wdec.w)
        woff = wdec.offset
        # writes land only while no step is in flight: every step started has written all of h
        idle = Cat(*h_done).all()
        wen = [wdec.en[k] & idle for k in range(len(wdec.en))]
        with m.If(wdec.err_addr):
            m.d.sync += st.err_addr.eq(1)
        with m.If(self.w.valid & ~idle):
            m.d.sync += st.err_busy.eq(1)

        # ---- the MAC lanes ---------------------------------------------------------------------
        hold, hold_x = [], []
        for k in range(L):
            m.submodules[f"lane{k}"] = lane = MacLane(cfg, img["lanes"][k])
            assert lane.latency == latency.lane(B)
            m.d.comb += [lane.rd_addr.eq(waddr),
                         lane.wr_addr.eq(woff), lane.wr_data.eq(wdec.data), lane.wr_en.eq(wen[k]),
                         lane.z.eq(zop), lane.valid.eq(vp), lane.first.eq(firstp), lane.is_x.eq(isxp),
                         lane.x_end.eq(xendp), lane.last.eq(lastp)]
            hold.append(lane.hold)
            hold_x.append(lane.hold_x)
        acc_shape = signed(dp.acc_width)
        hold_x = hold_x if split_x else None

        # ---- rows to the post-processors: one row per cycle each, in schedule order ---------------
        if P == 1:
            m.submodules.ser = ser = Serializer(cfg)
            m.d.comb += [ser.done.eq(done), ser.slot.eq(stages.at(slot1, SD)), ser.bank.eq(stages.at(bank1, SD)),
                         ser.sos.eq(stages.at(sos1, SD))]
            with m.If(ser.overrun):
                m.d.sync += st.err_overrun.eq(1)
            walkers = [(ser.valid, Array(hold)[ser.lane], Array(hold_x)[ser.lane] if split_x else None, ser.row,
                        ser.unit, ser.gate, None, ser.row_bank, ser.row_sos)]
        else:
            walkers = [self._choose(m, p, hold, hold_x, *self._walker(m, sch, p, done, stages.at(slot1, SD),
                                                                      stages.at(bank1, SD), stages.at(sos1, SD), st))
                       for p in range(P)]

        m.submodules.bmem = bmem = small_memory(shape=signed(f["bias"].width), depth=R, init=img["bias"],
                                                   collisions=False)  # written while idle
        bw = bmem.write_port()
        wen_of = {region: wen[k] for k, (region, _) in enumerate(regions(cfg))}
        m.d.comb += [bw.addr.eq(woff), bw.data.eq(wdec.data), bw.en.eq(wen_of[L])]
        for region, name, _ in inits:
            port = init_mem[name].write_port()
            m.d.comb += [port.addr.eq(woff), port.data.eq(wdec.data), port.en.eq(wen_of[region])]
        if lay.aux:
            afmt = aux_format(cfg)
            m.submodules.amem = amem = small_memory(shape=signed(afmt.width), depth=lay.aux_depth, init=img["aux"],
                                                       collisions=False)  # written while idle
            aw = amem.write_port()
            m.d.comb += [aw.addr.eq(woff), aw.data.eq(wdec.data), aw.en.eq(wen_of[L + 1])]

        outs = []
        # a bank's sequence's first state word (seq * hidden_size), in the unit state memory
        state_base = Array(n * H for n in range(N) for _ in range(2))
        for p, (busy, lane_sum, lane_sum_x, rowc, unit, hg, local, pp_bank, pp_sos) in enumerate(walkers):
            br, s0r = bmem.read_port(), s0mem.read_port()
            m.d.comb += [br.addr.eq(rowc), s0r.addr.eq(unit)]
            aux_data = None
            if lay.aux:
                ar = amem.read_port()
                m.d.comb += ar.addr.eq(rowc if lay.aux.per == "row" else unit)
                aux_data = ar.data
            # P1: the row, its bias / aux words and the unit's previous state
            pv1, a1, hg1, u1, pp1, ps1 = (Signal(name=f"pv1_{p}"), Signal(acc_shape, name=f"a1_{p}"),
                                          Signal.like(hg, name=f"hg1_{p}"), Signal.like(unit, name=f"u1_{p}"),
                                          Signal(range(NB), name=f"pp1_{p}"), Signal(name=f"ps1_{p}"))
            m.d.sync += [pv1.eq(busy), a1.eq(lane_sum), hg1.eq(hg), u1.eq(unit), pp1.eq(pp_bank), ps1.eq(pp_sos)]
            ax1 = None
            if split_x:
                ax1 = Signal(acc_shape, name=f"ax1_{p}")
                m.d.sync += ax1.eq(lane_sum_x)
            state_w = _StatePort(H, NB, state_fmt.width, p)
            if P == 1:
                if N > 1:
                    m.d.comb += [sr.addr.eq(state_base[pp_bank] + unit),
                                 sw.addr.eq(state_base[state_w.bank] + state_w.addr)]
                else:
                    m.d.comb += [sr.addr.eq(unit), sw.addr.eq(state_w.addr)]
                m.d.comb += [sw.data.eq(state_w.data), sw.en.eq(state_w.en)]
                prev1 = sr.data
                pm = m
            else:  # the post-processor's own units' state registers, per sequence
                own = [sreg[n][p::P] for n in range(N)]
                prev1 = Signal(signed(state_fmt.width), name=f"sprev1_{p}")
                m.d.sync += prev1.eq(Array(Array(o) for o in own)[pp_bank >> 1][local])
                for n in range(N):
                    for u, reg in zip(range(p, H, P), own[n]):
                        with m.If(state_w.en & (state_w.addr == u) & ((state_w.bank >> 1) == n)):
                            m.d.sync += reg.eq(state_w.data)
                pm = _Scoped(m, f"post{p}_")
            # the unit's previous state and, for a sequence start, its initial state (gates.prev_state)
            row = Row(pv1, a1, ax1, hg1, u1, pp1, br.data, aux_data, prev1, s0r.data, ps1)
            outs.append(post_processor(cfg.cell)(pm, cfg, dp, row, st, state_w, extra))

        # ---- h(t) (next step's h(t-1)), output FIFOs (o words), h_done ------------------------------
        oword = streams.output_word(cfg)
        if wide:
            for p, out in enumerate(outs):
                for u in range(p, H, P):
                    for b in range(NB):
                        with m.If(out.valid & (out.unit == u) & (out.bank == b)):
                            m.d.sync += hreg[b][u].eq(out.h)
        else:
            out = outs[0]
            m.d.comb += [hw_.addr.eq((out.bank << hb) | out.unit), hw_.data.eq(out.h), hw_.en.eq(out.valid)]
        depth = self.out_depth if P == 1 else -(-H // P) * (-(-self.out_depth // H) + 1)
        fifos = []
        for p, out in enumerate(outs):
            ofifo = SmallFIFO(width=oword.width, depth=depth)
            m.submodules["ofifo" if P == 1 else f"ofifo{p}"] = ofifo
            wword = data.View(oword.layout(), ofifo.w_data)
            m.d.comb += [wword.data.eq(out.h), wword.last.eq(out.unit == H - 1),
                         wword.first.eq(step_sos[out.bank] & (out.unit == 0)), ofifo.w_en.eq(out.valid)]
            if N > 1:
                m.d.comb += wword.seq.eq(out.bank >> 1)
            with m.If(out.valid & ~ofifo.w_rdy):
                m.d.sync += st.err_overrun.eq(1)
            fifos.append(ofifo)
        if P == 1:
            m.d.comb += [self.o.valid.eq(fifos[0].r_rdy), fifos[0].r_en.eq(self.o.ready),
                         self.o.payload.eq(fifos[0].r_data)]
        else:  # unit u is post-processor u % P's: read the FIFOs in unit order
            u_out, sel = Signal(range(H)), Signal(range(P))
            m.d.comb += [self.o.valid.eq(Array(x.r_rdy for x in fifos)[sel]),
                         self.o.payload.eq(Array(x.r_data for x in fifos)[sel])]
            m.d.comb += [x.r_en.eq(self.o.ready & (sel == p)) for p, x in enumerate(fifos)]
            with m.If(pop):
                with m.If(u_out == H - 1):
                    m.d.sync += [u_out.eq(0), sel.eq(0)]
                with m.Else():
                    m.d.sync += [u_out.eq(u_out + 1), sel.eq(Mux(sel == P - 1, 0, sel + 1))]
        last_out = outs[(H - 1) % P]  # unit H-1 is written last (model.cycles)
        with m.If(last_out.valid & (last_out.unit == H - 1)):
            m.d.sync += h_done[last_out.bank].eq(1)

        # ---- final state readout: sequence state_seq's last h bank and its unit state ------------------
        is_s = Signal()
        m.d.sync += is_s.eq(self.state_addr >= H)
        rseq = self.state_seq if N > 1 else 0
        last_bank = Cat(seq_par[rseq], rseq) if N > 1 else seq_par[0]
        if wide:
            hq = Signal(hshape, name="h_q")
            a = self.state_addr[:max(1, (H - 1).bit_length())]
            m.d.sync += hq.eq(Array(Array(hreg[b]) for b in range(NB))[last_bank][a])
        else:
            hq_port = hmem.read_port()
            m.d.comb += hq_port.addr.eq((last_bank << hb) | self.state_addr[:hb])
            hq = hq_port.data
        if P > 1:
            sq = Signal(signed(state_fmt.width), name="s_q")
            m.d.sync += sq.eq(Array(Array(sreg[n]) for n in range(N))[rseq][self.state_addr - H])
        else:
            sq_port = smem.read_port()
            m.d.comb += sq_port.addr.eq(Array(n * H for n in range(N))[rseq] + self.state_addr - H)
            sq = sq_port.data
        m.d.comb += self.state_data.eq(Mux(is_s, sq, hq))
        return m

    def _z_registers(self, m, cfg, inbuf, release, hreg, h0r, j, cur_bank, zero1, zw):
        """Chunk ``j`` of z at stage 2 from registers: x(t) (a copy of the input buffer's banks, written as
        it accepts elements and read from the bank it reads) and h(t-1) (bank ``cur_bank ^ 1``), registered at
        stage 1; at a sequence start the h elements come from h0's read ports (``h0r``, one per element of the
        chunk), whose words are registered at stage 2 before the choice."""
        I, H, B = cfg.input_size, cfg.hidden_size, cfg.beat
        K = self._lay.slot_cycles
        xshape = signed(cfg.fmt("input").width)
        xreg = [[Signal(xshape, name=f"x{b}_{e}") for e in range(I)] for b in range(2)]
        wb, rb, wi = Signal(name="xw_bank"), Signal(name="xr_bank"), Signal(range(max(I, 2)), name="xw_index")
        with m.If(inbuf.i.valid & inbuf.i.ready):  # the input buffer's own bank walk (rtl.input_buffer)
            for b in range(2):
                for e in range(I):
                    with m.If((wb == b) & (wi == e)):
                        m.d.sync += xreg[b][e].eq(inbuf.i.payload.data)
            with m.If(wi == I - 1):
                m.d.sync += [wi.eq(0), wb.eq(~wb)]
            with m.Else():
                m.d.sync += wi.eq(wi + 1)
        with m.If(release):
            m.d.sync += rb.eq(~rb)
        z2 = []
        for b in range(B):
            chunk, is_h = [], []
            for c in range(K):
                e = c * B + b
                if e < I:
                    chunk.append(Mux(rb, xreg[1][e], xreg[0][e]))
                elif e < I + H:
                    chunk.append(Array(hreg[b][e - I] for b in range(len(hreg)))[cur_bank ^ 1])
                else:
                    chunk.append(0)
                is_h.append(int(I <= e < I + H))
            zr = Signal(signed(zw), name=f"zr1_{b}")
            h1 = Signal(name=f"zh1_{b}")
            m.d.sync += [zr.eq(Array(chunk)[j]), h1.eq(Array(is_h)[j])]
            zr2, h02, h0_2 = (Signal(signed(zw), name=f"zr2_{b}"), Signal.like(h0r[b].data, name=f"zh0_2_{b}"),
                              Signal(name=f"zsel2_{b}"))
            m.d.sync += [zr2.eq(zr), h02.eq(h0r[b].data), h0_2.eq(h1 & zero1)]
            z2.append(Mux(h0_2, h02, zr2))
        elems = [Signal(signed(zw), name=f"z2_{b}") for b in range(B)]
        m.d.comb += [e.eq(v) for e, v in zip(elems, z2)]
        out = Signal(signed(B * zw), name="z2")
        m.d.comb += out.eq(Cat(*elems))
        return out

    def _choose(self, m, p, hold, hold_x, busy, lane, row, unit, gate, local, bank, sos):
        """Post-processor ``p``'s row sum out of every lane's hold register in two registered levels
        (``model.latency.CHOICE`` cycles more than one post-processor's single choice): each group of
        ``2 ** gb`` lanes registers its choice by the lane's low bits as the walker hands the row over,
        and the group's is chosen the cycle after, when the row's other fields, registered here, follow.
        Returns the walker's tuple with the lane replaced by the sum (and the x part's sum, or None)."""
        gb = max(1, ((len(hold) - 1).bit_length() + 1) // 2)
        groups = -(-len(hold) // 2 ** gb)
        low, high = lane[:gb], Signal(range(max(groups, 2)), name=f"plane_hi{p}")
        m.d.sync += high.eq(lane[gb:])

        def two_levels(sums, name):
            parts = [Signal.like(sums[0], name=f"{name}{p}_{g}") for g in range(groups)]
            m.d.sync += [part.eq(Array(sums[g * 2 ** gb:(g + 1) * 2 ** gb])[low]) for g, part in enumerate(parts)]
            return Array(parts)[high]
        later = [Signal.like(v, name=f"{v.name}_c") for v in (busy, row, unit, gate, local, bank, sos)]
        m.d.sync += [d.eq(v) for d, v in zip(later, (busy, row, unit, gate, local, bank, sos))]
        busy_c, row_c, unit_c, gate_c, local_c, bank_c, sos_c = later
        return (busy_c, two_levels(hold, "psum"), two_levels(hold_x, "psum_x") if hold_x is not None else None,
                row_c, unit_c, gate_c, local_c, bank_c, sos_c)

    def _walker(self, m, sch, p, done, slot, bank, sos, st):
        """Post-processor ``p``'s row walker: on ``done`` it takes slot ``slot``'s queue
        (:meth:`model.cycles.Schedule.queues`) and hands over one row per cycle from the next cycle on
        (as :class:`rtl.serializer.Serializer` does for one post-processor).  Returns ``(valid, lane, row,
        unit, gate, local, bank, sos)``; ``local`` is the unit's index among the post-processor's own."""
        P = sch.posts
        queues = [sch.queues(s)[p] for s in range(sch.slots)]
        width = max(1, max(len(q) for q in queues))
        base = [sum(sch.slot_rows[:s]) for s in range(sch.slots)]
        entries = [[(r - base[s], r, *sch.unit_gate(r)) for r in q] + [(0, 0, 0, 0)] * (width - len(q))
                   for s, q in enumerate(queues)]
        flat = [e for q in entries for e in q]
        busy, idx = Signal(name=f"pbusy{p}"), Signal(range(max(width, 2)), name=f"pidx{p}")
        slot_r, bank_r, sos_r = (Signal(range(max(sch.slots, 2)), name=f"pslot{p}"),
                                 Signal.like(bank, name=f"pbank{p}"), Signal(name=f"psos{p}"))
        n = Array(len(q) for q in queues)
        # the entry's flat index (slot * width + idx) kept as a register beside idx, and the entry's
        # fields registered from the next index, so the walker's outputs are registers (no multiply, no
        # table lookup in front of the bias and state memories' read addresses)
        k = Signal(range(max(len(flat), 2)), name=f"pk{p}")
        k_next = Mux(done, Array(s * width for s in range(sch.slots))[slot], Mux(busy, k + 1, k))
        m.d.sync += k.eq(k_next)
        tables = [[e[f] for e in flat] for f in range(4)] + [[e[2] // P for e in flat]]
        fields = (("plane", sch.lanes), ("prow", sch.rows), ("punit", sch.hidden), ("pgate", sch.gates),
                  ("plocal", -(-sch.hidden // P)))
        lane, row, unit, gate, local = outs = [Signal(range(max(hi, 2)), name=f"{nm}{p}", init=t[0])
                                               for (nm, hi), t in zip(fields, tables)]
        m.d.sync += [sig.eq(Array(t)[k_next]) for sig, t in zip(outs, tables)]
        with m.If(busy):
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx == n[slot_r] - 1):
                m.d.sync += busy.eq(0)
        with m.If(done):
            m.d.sync += [busy.eq(n[slot] != 0), idx.eq(0), slot_r.eq(slot), bank_r.eq(bank), sos_r.eq(sos)]
            with m.If(busy & (idx != n[slot_r] - 1)):
                m.d.sync += st.err_overrun.eq(1)
        return busy, lane, row, unit, gate, local, bank_r, sos_r



class _StatePort:
    """The write side of a post-processor's unit state (the state memory or its own registers), shaped
    like a memory write port: the post-processor drives ``addr`` (a unit), ``bank`` (the row's h bank,
    whose sequence the state belongs to), ``data`` and ``en``."""

    def __init__(self, hidden: int, banks: int, width: int, post: int):
        self.addr = Signal(range(max(hidden, 2)), name=f"state_w_addr{post}")
        self.bank = Signal(range(banks), name=f"state_w_bank{post}")
        self.data = Signal(signed(width), name=f"state_w_data{post}")
        self.en = Signal(name=f"state_w_en{post}")


class _Scoped:
    """The cell's module as one of several post-processors sees it: the same statements, conditions and
    status bits (every status bit is driven from one module), its submodules named ``prefix + name``."""

    class _Submodules:
        def __init__(self, m, prefix):
            object.__setattr__(self, "_m", m)
            object.__setattr__(self, "_prefix", prefix)

        def __setattr__(self, name, value):
            self._m.submodules[self._prefix + name] = value

        def __setitem__(self, name, value):
            self._m.submodules[self._prefix + name] = value

    def __init__(self, m, prefix: str):
        self._m = m
        self.submodules = self._Submodules(m, prefix)

    def __getattr__(self, name):
        return getattr(self._m, name)
