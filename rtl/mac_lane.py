"""One multiply-accumulate lane: its slice of the weight rows in its own memory, ``beat`` products per cycle."""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from model import latency
from model.config import Config
from model.datapath import Datapath

from .layout import Layout

#: The ECP5 block RAM's (DP16KD, PDPW16KD) configurations, ``(width, depth)``, narrowest first.
BLOCK_RAM_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))


def bank_depth(width: int) -> int:
    """Words of ``width`` bits one block RAM holds in its deepest configuration that fits the word
    (a wider word than 36 bits is split over block RAMs side by side, 512 words deep)."""
    if not (isinstance(width, int) and width > 0):
        raise ValueError(f"width must be a positive integer, not {width!r}")
    return next((d for w, d in BLOCK_RAM_SHAPES if width <= w), BLOCK_RAM_SHAPES[-1][1])


def banks(depth: int, width: int) -> list[int]:
    """The depths of the banks a lane memory of ``depth`` words of ``width`` bits is split into: full
    banks of :func:`bank_depth` words, then the rest."""
    bd = bank_depth(width)
    return [min(bd, depth - a) for a in range(0, max(depth, 1), bd)]


class MacLane(wiring.Component):
    """Weight memory, registered multipliers, adder tree and accumulator of one lane.

    Parameters
    ----------
    config : Config
        Widths (``formats.weight``, the datapath's shifts and accumulator width), ``beat`` and memory
        depth (:class:`rtl.layout.Layout`).
    init : list of int
        The lane's weight image by write offset (:func:`rtl.layout.memory_images`).

    Ports
    -----
    rd_addr : In(range(lane_depth))
        Stage 0: the weight word to use (the z chunk for it arrives at stage ``OPERANDS - 1``, 3).  A word holds the
        ``beat`` weights of one z chunk, element ``b`` in bits ``b * w ..`` (``w`` the weight width).
    wr_addr, wr_data, wr_en : In
        Run-time write of one weight: ``wr_addr = word << beat_bits | element``
        (:attr:`rtl.layout.Layout.beat_bits`), ``formats.weight`` raw in the low bits of ``wr_data``;
        the memory's write port has one enable per weight, so the word's other weights keep their value.
        A write never shares a cycle with a chunk's ``rd_addr`` (the cell writes only while no step is in
        flight).  The lane registers the write and the memory takes it a cycle later (the cycle after a
        write may hold a chunk's ``rd_addr``: its read comes a cycle after that).
    z : In(signed(beat * zw))
        Stage ``OPERANDS - 1`` (3): the chunk's operands (x or h elements, raw, ``zw`` bits each, element ``b`` in
        bits ``b * zw ..``), registered; the lane registers them again, next to its weights (stage ``OPERANDS``).
    valid, first, is_x, x_end, last : In
        Stage ``OPERANDS + 1`` (5) controls: a chunk's products are there; the row's first chunk (the sum restarts);
        ``is_x`` (``beat`` bits): element ``b`` is an x element (shift ``x_shift``, else ``h_shift``);
        the chunk holds the row's last x element; the row's last chunk.
    hold : Out(signed(acc_width))
        The row's exact sum ``sum(w * z << shift)`` at the accumulator's fraction, registered when
        the row's last chunk is added and held until the next row's.
    hold_x : Out(signed(acc_width))
        The row's x part alone (for kinds that need it apart, ``cell.split_x``), held with ``hold``.

    Latency
    -------
    ``model.latency.lane(beat)`` cycles from ``rd_addr`` of a row's last chunk to ``hold``: the lane's
    read address register (1), memory read (2), read data registers (3: the block RAM's clock-to-output
    gets a cycle of its own), operand registers (4: the word of the bank addressed), product registers (5),
    ``model.latency.tree(beat)`` adder-tree levels (one register each), accumulate.  One product per
    cycle (``beat = 1``) has no tree: ``model.latency.LANE`` = 6.

    Every lane registers the read address and the operands itself, so the registers that drive a lane's
    block RAMs' addresses and its multipliers' ``z`` inputs drive only that lane's, not every lane's;
    the copies hold during a write to the lane (``wr_en``, which never meets a chunk in the lane),
    which keeps synthesis from merging the lanes' copies back into one register.

    The memory is split into banks of :func:`bank_depth` words (:func:`banks`), each one block RAM
    with its own read data register, so no multiplexer between cascaded block RAMs follows a read in
    the same cycle; the address bits above a bank's, registered twice, select the bank's word on its
    way into the weight registers.

    ::

        rd_addr --> ra --> wmem_n[ra] --> rd3_n --(bank)--> w4[b] --x--> prod[b] --(shift by is_x[b])--> tree (levels) --> acc --> hold
                                                 z[b] --> z4[b] ---'                                      \\--> x-only tree --> hold_x
    """

    #: Register stages from the read to the hold register with one product per cycle.
    STAGES = 6
    #: The stage of the registered multiplier operands (``z`` arrives one stage before, the controls one
    #: stage after).
    OPERANDS = STAGES - 2

    def __init__(self, config: Config, init: list):
        lay = Layout.for_config(config)
        self._dp = Datapath.from_config(config)
        self._wfmt = config.fmt("weight")
        self._beat = config.beat
        self._split_x = config.cell.split_x
        self._lay = lay
        self._init = init
        self._zw = max(config.fmt("input").width, config.fmt("hidden").width)
        assert self.STAGES == latency.LANE, "MacLane's stages must equal model.latency.LANE"
        super().__init__({
            "rd_addr": In(range(max(lay.lane_depth, 2))),
            "wr_addr": In(lay.offset_bits), "wr_data": In(signed(lay.data_bits)), "wr_en": In(1),
            "z": In(signed(self._beat * self._zw)),
            "valid": In(1), "first": In(1), "is_x": In(self._beat), "x_end": In(1), "last": In(1),
            "hold": Out(signed(self._dp.acc_width)), "hold_x": Out(signed(self._dp.acc_width)),
        })

    @property
    def latency(self) -> int:
        return self.STAGES + latency.tree(self._beat)

    def _words(self):
        """The memory image: ``beat`` weights per word, packed (element 0 in the low bits)."""
        k, ww, bb = self._beat, self._wfmt.width, self._lay.beat_bits
        if k == 1:
            return list(self._init)
        mask = (1 << ww) - 1
        return [sum((self._init[(a << bb) | b] & mask) << (b * ww) for b in range(k))
                for a in range(self._lay.lane_depth)]

    def elaborate(self, platform):
        m = Module()
        dp, k, ww, zw = self._dp, self._beat, self._wfmt.width, self._zw
        bb = self._lay.beat_bits
        shape = signed(ww) if k == 1 else unsigned(k * ww)
        # stage 1: the lane's own copy of the read address (held during a write to the lane, which never
        # meets a chunk: the enable tells the lanes' copies apart, so synthesis keeps one per lane)
        ra = Signal.like(self.rd_addr, name="ra1")
        with m.If(~self.wr_en):
            m.d.sync += ra.eq(self.rd_addr)
        # one memory per bank, each its own block RAM: no multiplexer between cascaded block RAMs sits
        # before a register; the bank is chosen between the read data registers and the weight register
        words, depths = self._words(), banks(self._lay.lane_depth, k * ww)
        lo = (depths[0] - 1).bit_length() if len(depths) > 1 else len(self.rd_addr)
        # the write registered before it meets the memory, so the port's choice between the write's
        # address and the read's is a register's; a step's first read, two cycles after its issue (which
        # a write's cycle never holds), comes after the write it follows
        we, wa, wd = Signal(name="we1"), Signal.like(self.wr_addr, name="wa1"), Signal.like(self.wr_data, name="wd1")
        m.d.sync += [we.eq(self.wr_en), wa.eq(self.wr_addr), wd.eq(self.wr_data)]
        addr = Signal(lo, name="addr2")
        m.d.comb += addr.eq(Mux(we, wa[bb:bb + lo], ra[:lo]))
        rd3 = []
        for n, d in enumerate(depths):
            mem = memory.Memory(shape=shape, depth=d, init=words[n * depths[0]:n * depths[0] + d])
            m.submodules[f"wmem{n}" if len(depths) > 1 else "wmem"] = mem
            rp = mem.read_port()
            wp = mem.write_port(granularity=ww if k > 1 else None)
            # the memory reads every cycle (no enable to fan out from the issue logic): a word read in a
            # cycle without a chunk meets no ``valid`` and is never summed.  Reads and writes share one
            # address (the write's during a write, which never meets a chunk), so the block RAM's one
            # port serves both and no logic decides what a read sees when a write hits its word
            here = we & (wa[bb + lo:] == n) if len(depths) > 1 else we
            m.d.comb += [rp.addr.eq(addr), wp.addr.eq(addr)]
            if k == 1:
                m.d.comb += [wp.data.eq(wd), wp.en.eq(here)]
            else:
                m.d.comb += [wp.data.eq(wd[:ww].replicate(k)), wp.en.eq(Mux(here, 1 << wa[:bb], 0))]
            # stage 3: each bank's read data registered, without a reset (its value before the first
            # chunk meets no ``valid``), so synthesis can make it the block RAM's own output register
            r = Signal(shape, name=f"rd3_{n}" if len(depths) > 1 else "rd3", reset_less=True)
            m.d.sync += r.eq(rp.data)
            rd3.append(r)
        # the bank of the word read: its address bits above the bank's, registered with the read (stage 2)
        # and with the read data (stage 3); stage 4 takes that bank's word into the weight registers
        word3 = rd3[0]
        if len(depths) > 1:
            sel2, sel3 = (Signal(range(len(depths)), name=f"bank{t}") for t in (2, 3))
            m.d.sync += [sel2.eq(ra[lo:]), sel3.eq(sel2)]
            word3 = Array(rd3)[sel3]
        # stage 4: the weights and the lane's own copy of the operands (held during a write, as ``ra``);
        # stage 5: the products, shifted into the accumulator's fraction
        z4 = Signal.like(self.z, name="z4")
        with m.If(~self.wr_en):
            m.d.sync += z4.eq(self.z)
        terms, xterms = [], []
        for b in range(k):
            w4 = Signal(signed(ww), name=f"w4_{b}")
            # the product register without a reset (its value before the first chunk meets no ``valid``),
            # so synthesis can make it the DSP block's own output register (rtl.outreg)
            prod = Signal(signed(ww + zw), name=f"prod5_{b}", reset_less=True)
            z = z4[b * zw:(b + 1) * zw].as_signed()
            m.d.sync += [w4.eq(word3[b * ww:(b + 1) * ww].as_signed()), prod.eq(w4 * z)]
            term = Mux(self.is_x[b], prod << dp.x_shift, prod << dp.h_shift)
            terms.append(term)
            xterms.append(Mux(self.is_x[b], prod << dp.x_shift, 0))
        ctrl = [self.valid, self.first, self.x_end, self.last]
        total, xtotal = self._tree(m, terms, "sum"), self._tree(m, xterms, "xsum") if self._split_x and k > 1 else None
        for level in range(latency.tree(k)):  # the controls follow the tree
            nxt = [Signal(s.shape(), name=f"{s.name}_t{level + 1}") for s in ctrl]
            m.d.sync += [n.eq(s) for n, s in zip(nxt, ctrl)]
            ctrl = nxt
        valid, first, x_end, last = ctrl
        acc = Signal(signed(dp.acc_width), name="acc")
        nxt = Mux(first, 0, acc) + total
        with m.If(valid):
            m.d.sync += acc.eq(nxt)
        with m.If(valid & last):
            m.d.sync += self.hold.eq(nxt)
        xpart = Signal(signed(dp.acc_width), name="xpart")
        if xtotal is None:  # one product per cycle (or hold_x unused): the sum after the x_end chunk is x
            with m.If(valid & x_end):
                m.d.sync += xpart.eq(nxt)
            with m.If(valid & last):
                m.d.sync += self.hold_x.eq(xpart)
        else:
            xnxt = Mux(first, 0, xpart) + xtotal
            with m.If(valid):
                m.d.sync += xpart.eq(xnxt)
            with m.If(valid & last):
                m.d.sync += self.hold_x.eq(xnxt)
        return m

    def _tree(self, m, terms, name):
        """Pairwise sums of ``terms``, one register per level (``model.latency.tree(beat)`` levels)."""
        level = 0
        while len(terms) > 1:
            level += 1
            nxt = []
            for a in range(0, len(terms), 2):
                s = Signal(signed(self._dp.acc_width), name=f"{name}{level}_{a // 2}")
                m.d.sync += s.eq(terms[a] + terms[a + 1] if a + 1 < len(terms) else terms[a])
                nxt.append(s)
            terms = nxt
        assert level == latency.tree(self._beat)
        return terms[0]
