"""A network in gateware: one cell per layer, chained through streams, and the dense head.

::

    i --> [Layer 0: cell + end flags] --> [Layer 1] --> ... --> [Head] --> o
                         w (one port, decoded by slot) --+--> every cell and the head

Layer ``l + 1`` consumes h(t) of layer ``l`` element by element while layer ``l`` computes step
``t + 1``, so the stack is pipelined and its throughput is that of its slowest layer.  Every
stream between layers is a :func:`rtl.streams.layer_word`: the cell's word plus ``end`` on the
last element of a sequence's last vector, which each :class:`Layer` carries through its cell in a
small FIFO of per-step flags, so the head knows a sequence's last step.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from model import latency
from model.config import Config
from model.network.config import NetworkConfig
from model.network.golden import QNetwork

from . import streams
from .cell import RecurrentCell, status_bits
from .head import HEAD_REGIONS, Head, head_offset_bits
from .layout import Layout, state_stream, write_stream
from .ram import small_memory

#: Steps a layer can hold between accepting a vector's last element and emitting its h(t): the
#: input buffer's two vectors, two steps in flight and the output queue's steps, with margin.
FLAG_DEPTH = 16


class Layer(wiring.Component):
    """One unidirectional layer: a :class:`RecurrentCell` with ``end`` carried around it.

    Ports
    -----
    i : In(stream of :func:`rtl.streams.layer_word` in ``formats.input``)
    o : Out(stream of :func:`rtl.streams.layer_word` in ``formats.hidden``)
        The cell's ``o`` with ``end`` set on the last element of a sequence's last h(t).
    w : In(stream of :func:`rtl.streams.write_word`, always ready)
        The cell's write port.
    status : Out(the cell's status bits)

    With ``last_only``, ``o`` carries only the h(t) of each sequence's last step (``first`` on its element 0).

    Latency
    -------
    The cell's (``model.cycles``); the flags add none.  ``i.ready`` also drops while
    :data:`FLAG_DEPTH` steps are inside the layer.
    """

    def __init__(self, config: Config, qparams=None, init_state=None, last_only: bool = False):
        self._cfg, self._last_only = config, last_only
        self.cell = RecurrentCell(config, qparams, init_state)
        self.cells = (self.cell,)
        super().__init__({
            "i": In(stream.Signature(streams.layer_word(config.fmt("input")).layout())),
            "o": Out(stream.Signature(streams.layer_word(config.fmt("hidden")).layout())),
            "w": In(stream.Signature(streams.write_word(config).layout(), always_ready=True)),
            "status": Out(data.StructLayout({n: 1 for n in status_bits(config)})),
        })
        #: Clears ``status`` bits (the cell's :attr:`~rtl.cell.RecurrentCell.status_clear`); not a port.
        self.status_clear = Signal(len(status_bits(config)), name="status_clear")

    def elaborate(self, platform):
        m = Module()
        m.submodules.cell = cell = self.cell
        m.d.comb += cell.status_clear.eq(self.status_clear)
        m.submodules.flags = flags = fifo.SyncFIFOBuffered(width=1, depth=FLAG_DEPTH)
        i, o = self.i, self.o
        # the step's flag (1: a sequence's last step) heads the queue while its h(t) leaves
        keep = flags.r_data if self._last_only else 1
        at0 = Signal(init=1)  # the next element is element 0 of a step
        with m.If(cell.o.valid & cell.o.ready):
            m.d.sync += at0.eq(cell.o.payload.last)
        m.d.comb += [
            cell.i.payload.data.eq(i.payload.data), cell.i.payload.last.eq(i.payload.last),
            cell.i.payload.first.eq(i.payload.first),
            cell.i.valid.eq(i.valid & flags.w_rdy), i.ready.eq(cell.i.ready & flags.w_rdy),
            flags.w_data.eq(i.payload.end), flags.w_en.eq(i.valid & i.ready & i.payload.last),
            o.payload.data.eq(cell.o.payload.data), o.payload.last.eq(cell.o.payload.last),
            o.payload.first.eq(at0 if self._last_only else cell.o.payload.first),
            o.payload.end.eq(cell.o.payload.last & flags.r_data),
            o.valid.eq(cell.o.valid & flags.r_rdy & keep), cell.o.ready.eq((o.ready | ~keep) & flags.r_rdy),
            flags.r_en.eq(cell.o.valid & cell.o.ready & cell.o.payload.last),
        ]
        wiring.connect(m, wiring.flipped(self.w), cell.w)
        m.d.comb += self.status.eq(cell.status)
        return m


class Network(wiring.Component):
    """A stack of :class:`Layer` and :class:`BiLayer` and an optional :class:`~rtl.head.Head`.

    Parameters
    ----------
    config : NetworkConfig
    qnet : QNetwork or None
        Initial memory contents (zeros when None).

    Ports
    -----
    i : In(stream of :func:`rtl.streams.layer_word` in layer 0's ``formats.input``)
        x elements; ``first`` starts a sequence, ``end`` marks the last element of its last vector.
    o : Out(stream)
        With a head, :func:`rtl.streams.head_word` (logits and class); without one, the last layer's
        :func:`rtl.streams.layer_word`.
    w : In(stream of :meth:`write_word`, always ready)
        ``addr = target << sub_bits | address``: target ``k < layers`` is layer ``k`` (its cell's address
        map, :mod:`rtl.layout`; a bidirectional layer adds the direction above it), target ``layers``
        the head (:data:`rtl.head.HEAD_REGIONS`).
    status : Out
        Every layer's bits as ``l<k>_<bit>``, then ``head_sat`` and ``err_addr`` (a write to no target).
    state_addr / state_data
        The final state of cell ``k`` (PyTorch's ``h_n`` order: layer by layer, forward then reverse) at
        ``k << state_bits | address``, the cell's own readout address (:class:`~rtl.cell.RecurrentCell`);
        the data one cycle later, while no step is in flight.  The initial state every sequence starts
        from lives in each cell's h0 (and c0) memories: the parameters' default, or written through ``w``.
    tap<k> : Out(``valid``, ``ready`` and the payload fields of layer ``k``'s output stream)
        A copy of the stream between layer ``k`` and what follows it, for every layer but the one
        driving ``o``: what a bench compares layer by layer.

    Latency
    -------
    ``model.network`` cycle model (steady state: the slowest layer's cycles per step).
    """

    def __init__(self, config: NetworkConfig, qnet: QNetwork | None = None):
        self._ncfg, self._q = config, qnet
        self.layers = []
        init = [None] * len(config.slots()) if qnet is None or qnet.initial_state is None else qnet.initial_state
        slot = 0
        for k, c in enumerate(config.layers):
            D = config.directions[k]
            q = (None,) * D if qnet is None else qnet.layers[k]
            s0 = init[slot:slot + D]
            slot += D
            last_only = k == len(config.layers) - 1 and config.outputs == "last"
            self.layers.append(Layer(c, q[0], s0[0], last_only) if D == 1 else
                               BiLayer(c, config.max_steps, *q, *s0, last_only=last_only))
        self.cells = [cell for layer in self.layers for cell in layer.cells]  # PyTorch's h_n order
        self.state_bits = max(len(cell.state_addr) for cell in self.cells)
        self.head = None if config.head is None else Head(config.head, None if qnet is None else qnet.head)
        self.sub_bits = max([len(layer.w.payload.addr) for layer in self.layers]
                            + ([head_offset_bits(config.head) + 1] if config.head else []))
        targets = len(config.layers) + (1 if config.head else 0)
        self.target_bits = max(1, (targets - 1).bit_length())
        last = config.layers[-1]
        out = streams.head_word(config.head) if config.head else streams.layer_word(last.fmt("hidden"))
        bits = [f"l{k}_{n}" for k, layer in enumerate(self.layers) for n in layer.status.shape().members]
        bits += (["head_sat"] if config.head else []) + ["err_addr"]
        self.tapped = range(len(self.layers) - (0 if config.head else 1))
        taps = {f"tap{k}": Out(data.StructLayout({"valid": 1, "ready": 1, **{
            f.name: (signed if f.signed else unsigned)(f.width)
            for f in streams.layer_word(config.layers[k].fmt("hidden")).fields}})) for k in self.tapped}
        super().__init__({
            "i": In(stream.Signature(streams.layer_word(config.layers[0].fmt("input")).layout())),
            "o": Out(stream.Signature(out.layout())),
            "w": In(stream.Signature(self.write_word().layout(), always_ready=True)),
            "status": Out(data.StructLayout({n: 1 for n in bits})),
            "state_addr": In(max(1, (len(self.cells) - 1).bit_length()) + self.state_bits),
            "state_data": Out(signed(max(len(cell.state_data) for cell in self.cells))),
            **taps,
        })
        #: Bit ``k`` high for a cycle clears ``status`` bit ``k`` in the layer, cell or head that keeps it (an
        #: event in the same cycle sets it again).  Not a port: :class:`rtl.axi.AxiNetwork` drives it.
        self.status_clear = Signal(len(bits), name="status_clear")

    @property
    def config(self) -> NetworkConfig:
        return self._ncfg

    def cell_targets(self) -> list:
        """``(cell config, w address base)`` of every cell in PyTorch's ``h_n`` order: the base is the
        layer's target plus, in a bidirectional layer, the direction bit above the cell's own address."""
        out = []
        for k, layer in enumerate(self.layers):
            for d, cell in enumerate(layer.cells):
                out.append((cell.config, (k << self.sub_bits) | (d << len(cell.w.payload.addr) if d else 0)))
        return out

    def state_writes(self, states) -> list:
        """``(addr, data)`` pairs on ``w`` that load ``states`` (raw, one tuple per cell in ``h_n`` order, each
        array ``(hidden,)`` in the kind's state order) into the cells' initial-state memories."""
        return [(base | a, v) for (cfg, base), s in zip(self.cell_targets(), states) for a, v in state_stream(cfg, s)]

    def param_writes(self, qnet: QNetwork) -> list:
        """``(addr, data)`` pairs on ``w`` that load every parameter of ``qnet``: each cell's memories
        (:func:`rtl.layout.write_stream`) and the head's weights and biases (:data:`rtl.head.HEAD_REGIONS`)."""
        qs = [q for layer in qnet.layers for q in layer]
        out = [(base | a, v) for (cfg, base), q in zip(self.cell_targets(), qs) for a, v in write_stream(cfg, q)]
        return out + (self.head_writes(qnet.head) if self.head is not None else [])

    def head_writes(self, qhead) -> list:
        """``(addr, data)`` pairs on ``w`` that load the head's weights and biases (a
        :class:`~model.network.head.QHead`; :data:`rtl.head.HEAD_REGIONS`)."""
        base, hob = len(self.layers) << self.sub_bits, head_offset_bits(self._ncfg.head)
        return ([(base | (HEAD_REGIONS.index("weight") << hob) | a, int(v)) for a, v in enumerate(qhead.weight.reshape(-1))]
                + [(base | (HEAD_REGIONS.index("bias") << hob) | a, int(v)) for a, v in enumerate(qhead.bias)])

    def state_reads(self) -> list:
        """``state_addr`` values of every cell's final state, in ``h_n`` order: h of each unit, then the unit
        state of each unit (:class:`~rtl.cell.RecurrentCell`)."""
        return [(k << self.state_bits) | a for k, (cfg, _) in enumerate(self.cell_targets())
                for a in range(2 * cfg.hidden_size)]

    def write_word(self) -> streams.Word:
        widths = [len(layer.w.payload.data) for layer in self.layers]
        if self._ncfg.head:
            widths += [self._ncfg.head.formats[r].width for r in HEAD_REGIONS]
        return streams.Word((streams.Field("addr", self.target_bits + self.sub_bits),
                             streams.Field("data", max(widths), True)))

    def elaborate(self, platform):
        m = Module()
        prev = wiring.flipped(self.i)
        sb = self.sub_bits
        target, sub = self.w.payload.addr[sb:], self.w.payload.addr[:sb]
        hit = []
        clear = {n: self.status_clear[k] for k, n in enumerate(self.status.shape().members)}
        for k, layer in enumerate(self.layers):
            m.submodules[f"layer{k}"] = layer
            m.d.comb += layer.status_clear.eq(Cat(clear[f"l{k}_{n}"] for n in layer.status.shape().members))
            wiring.connect(m, prev, layer.i)
            prev = layer.o
            if k in self.tapped:
                tap = getattr(self, f"tap{k}")
                m.d.comb += [tap.valid.eq(layer.o.valid), tap.ready.eq(layer.o.ready)]
                m.d.comb += [getattr(tap, f).eq(getattr(layer.o.payload, f)) for f in layer.o.payload.shape().members]
            ab = len(layer.w.payload.addr)
            sel = self.w.valid & (target == k) & (sub[ab:] == 0)
            hit.append(sel)
            m.d.comb += [layer.w.valid.eq(sel), layer.w.payload.addr.eq(sub[:ab]),
                         layer.w.payload.data.eq(self.w.payload.data)]
            for n in layer.status.shape().members:
                m.d.comb += getattr(self.status, f"l{k}_{n}").eq(getattr(layer.status, n))
        if self.head is not None:
            m.submodules.head = head = self.head
            wiring.connect(m, prev, head.i)
            wiring.connect(m, head.o, wiring.flipped(self.o))
            hb = len(head.w_addr)
            sel = self.w.valid & (target == len(self.layers)) & (sub[hb:] == 0)
            hit.append(sel)
            m.d.comb += [head.w_en.eq(sel), head.w_addr.eq(sub[:hb]), head.w_data.eq(self.w.payload.data),
                         self.status.head_sat.eq(head.sat), head.sat_clear.eq(clear["head_sat"])]
        else:
            wiring.connect(m, prev, wiring.flipped(self.o))
        # the final state of cell k (PyTorch's h_n order) at state_addr = k << state_bits | its own address
        sel = Signal.like(self.state_addr[self.state_bits:])
        m.d.sync += sel.eq(self.state_addr[self.state_bits:])
        for k, cell in enumerate(self.cells):
            m.d.comb += cell.state_addr.eq(self.state_addr[:len(cell.state_addr)])
            with m.If(sel == k):
                m.d.comb += self.state_data.eq(cell.state_data)
        err_addr = Signal()
        with m.If(clear["err_addr"]):
            m.d.sync += err_addr.eq(0)
        with m.If(self.w.valid & ~Cat(*hit).any()):
            m.d.sync += err_addr.eq(1)
        m.d.comb += self.status.err_addr.eq(err_addr)
        return m


def address_model(config: NetworkConfig) -> Network:
    """A :class:`Network` used only for its port widths and address maps (the register map, a host's writes):
    never elaborated, so it and its parts are marked as not needing to be."""
    net = Network(config)
    for part in (net, *net.layers, *net.cells, *([net.head] if net.head is not None else [])):
        part._MustUse__silence = True
    return net


class _Reader:
    """Reads words out of memory read ports into a stream, one per cycle while the stream is ready.

    ``issue`` presents an address (``port.en``); the port reads it synchronously, and the caller registers
    the port's data (and whatever it set on ``issue``) with :meth:`delay`: a plain register, with no reset
    and no enable, so that a block RAM's output register can take it.  The caller builds :attr:`word`, the
    payload, from those registers; the word is valid :data:`model.latency.BUFFER_READ` cycles after its
    ``issue``.  The register follows the port on every cycle, so when the stream stalls on a word while the
    port has read the next one, the word moves into a skid register (the stream's payload unchanged); at
    most two words are between ``issue`` and the stream, which keeps one word per cycle without losing one.
    ``left`` counts the words still to issue (the caller loads it); :attr:`idle` is high when no word is
    left in flight after this cycle's transfer.
    """

    #: Issue -> the port's synchronous read -> the read data register.
    LATENCY = 2

    def __init__(self, m, ports, stream_, count, name):
        assert self.LATENCY == latency.BUFFER_READ, "_Reader's stages must equal model.latency.BUFFER_READ"
        self._m, self._name = m, name
        self.issue = Signal(name=f"{name}_issue")
        self.left = Signal(range(count + 1), name=f"{name}_left")
        #: The payload held in the read data registers: the caller drives it from :meth:`delay` values.
        self.word = Signal(stream_.payload.shape(), name=f"{name}_word")
        skid = Signal(stream_.payload.shape(), name=f"{name}_skid", reset_less=True)
        read = Signal(name=f"{name}_read")    # the port holds a word issued last cycle, not yet registered
        rv = Signal(name=f"{name}_rv")        # the registers hold a word not yet taken
        sv = Signal(name=f"{name}_sv")        # the skid register holds a word not yet taken (it goes first)
        take = stream_.valid & stream_.ready
        take_r = rv & ~sv & stream_.ready
        save = rv & ~take_r & read            # the registers move on next cycle: keep their word
        in_flight = read + rv + sv            # at most 2
        self.idle = in_flight - take == 0
        m.d.comb += [self.issue.eq((self.left != 0) & (in_flight - take < 2)),
                     stream_.valid.eq(rv | sv), stream_.payload.eq(Mux(sv, skid, self.word))]
        for port in ports:
            m.d.comb += port.en.eq(self.issue)
        m.d.sync += [read.eq(self.issue), rv.eq(read | (rv & ~take_r)), sv.eq(save | (sv & ~stream_.ready))]
        with m.If(save):
            m.d.sync += skid.eq(self.word)
        with m.If(self.issue):
            m.d.sync += self.left.eq(self.left - 1)

    def delay(self, value, name):
        """``value`` one cycle later, in a register with no reset and no enable."""
        reg = Signal.like(value, name=f"{self._name}_{name}_q", reset_less=True)
        self._m.d.sync += reg.eq(value)
        return reg


class BiLayer(wiring.Component):
    """A bidirectional layer: a sequence buffer, a forward and a reverse cell on their own lanes, and
    the output in step order with the two directions concatenated (PyTorch's ``[forward, reverse]``).

    One sequence at a time, in three phases: **in** (the x elements into the buffer, one per cycle);
    **run** (both cells read the buffer, the forward one from step 0, the reverse one from step ``T - 1``,
    each at one element per cycle, and write their h(t) into output memories by step); **out** (for each
    step, forward h then reverse h, ``2 * hidden`` elements).  The next sequence is taken once the
    previous one has left.  Costs: two cells (twice the lanes and memories of one direction) and
    ``max_steps * (input + 2 * hidden)`` words of buffer.

    Ports
    -----
    i : In(stream of :func:`rtl.streams.layer_word` in ``formats.input``)
    o : Out(stream of :func:`rtl.streams.layer_word` in ``formats.hidden``)
        ``2 * hidden`` elements per step, ``last`` on the last, ``first`` and ``end`` as on ``i``.
    w : In(stream, always ready)
        ``addr = direction << cell_addr_bits | cell address`` (forward 0, reverse 1).
    status : Out
        Both cells' bits as ``f_<bit>`` and ``r_<bit>``, then ``err_long``: a sequence had more than
        ``max_steps`` steps (the steps beyond are not stored; the outputs of that sequence are wrong).

    Latency
    -------
    :meth:`model.network.cycles.NetworkCycleModel.bidirectional_cycles`.
    """

    def __init__(self, config: Config, max_steps: int, q_forward=None, q_reverse=None, init_forward=None,
                 init_reverse=None, last_only: bool = False):
        self._cfg, self._max, self._last_only = config, max_steps, last_only
        self.fwd = RecurrentCell(config, q_forward, init_forward)
        self.rev = RecurrentCell(config, q_reverse, init_reverse)
        self.cells = (self.fwd, self.rev)
        self.cell_addr_bits = Layout.for_config(config).addr_bits
        ww = streams.write_word(config)
        self._bits = [f"{d}_{n}" for d in "fr" for n in status_bits(config)] + ["err_long"]
        super().__init__({
            "i": In(stream.Signature(streams.layer_word(config.fmt("input")).layout())),
            "o": Out(stream.Signature(streams.layer_word(config.fmt("hidden")).layout())),
            "w": In(stream.Signature(streams.Word((streams.Field("addr", self.cell_addr_bits + 1),
                                                   ww.field("data"))).layout(), always_ready=True)),
            "status": Out(data.StructLayout({n: 1 for n in self._bits})),
        })
        #: Clears ``status`` bits (both cells' and ``err_long``); not a port.
        self.status_clear = Signal(len(self._bits), name="status_clear")

    def elaborate(self, platform):
        m = Module()
        cfg, T_max = self._cfg, self._max
        I, H = cfg.input_size, cfg.hidden_size
        m.submodules.fwd, m.submodules.rev = fwd, rev = self.fwd, self.rev
        # each buffer is written in one phase and read in the next (x: in, then run; h: run, then out)
        hmem = dict(shape=signed(cfg.fmt("hidden").width), depth=T_max * H, init=[], collisions=False)
        m.submodules.xmem = xmem = small_memory(shape=signed(cfg.fmt("input").width), depth=T_max * I, init=[],
                                                collisions=False)
        m.submodules.fmem, m.submodules.rmem = fmem, rmem = small_memory(**hmem), small_memory(**hmem)
        xw, xf, xr = xmem.write_port(), xmem.read_port(), xmem.read_port()
        fw, fr = fmem.write_port(), fmem.read_port()
        rw, rr = rmem.write_port(), rmem.read_port()
        # every address is a running count (no multiplier on a path): x elements in order, h words by step
        t_in, e_in = Signal(range(T_max + 1)), Signal(range(max(I, 2)))
        xa = Signal(range(T_max * I + 1))          # the next x element's buffer address
        hb = Signal(range(T_max * H + 1))          # t_in * hidden: the h base of the vector coming in
        words = Signal(range(T_max * I + 1))       # x elements in the buffer
        last_hb = Signal(range(T_max * H + 1))     # (steps - 1) * hidden
        h_words = Signal(range(T_max * H + 1))     # steps * hidden
        err_long = Signal()
        phase = Signal(2)                          # 0 in, 1 run, 2 out
        ab = self.cell_addr_bits
        for k, cell in enumerate((fwd, rev)):
            m.d.comb += [cell.w.valid.eq(self.w.valid & (self.w.payload.addr[ab] == k)),
                         cell.w.payload.addr.eq(self.w.payload.addr[:ab]), cell.w.payload.data.eq(self.w.payload.data)]
            for n in status_bits(cfg):
                m.d.comb += getattr(self.status, f"{'fr'[k]}_{n}").eq(getattr(cell.status, n))
        m.d.comb += self.status.err_long.eq(err_long)
        nb = len(status_bits(cfg))
        m.d.comb += [fwd.status_clear.eq(self.status_clear[:nb]), rev.status_clear.eq(self.status_clear[nb:2 * nb])]
        with m.If(self.status_clear[2 * nb]):
            m.d.sync += err_long.eq(0)

        # ---- in: the x elements into the buffer --------------------------------------------------
        fits = t_in < T_max
        take = self.i.valid & self.i.ready
        end = take & self.i.payload.last & self.i.payload.end
        m.d.comb += [self.i.ready.eq(phase == 0), xw.addr.eq(xa), xw.data.eq(self.i.payload.data),
                     xw.en.eq(self.i.valid & (phase == 0) & fits)]
        with m.If(take):
            with m.If(fits):
                m.d.sync += xa.eq(xa + 1)
            with m.If(self.i.payload.last):
                m.d.sync += e_in.eq(0)
                with m.If(fits):
                    m.d.sync += [t_in.eq(t_in + 1), hb.eq(hb + H)]
                with m.Else():
                    m.d.sync += err_long.eq(1)
            with m.Else():
                m.d.sync += e_in.eq(e_in + 1)
        with m.If(end):
            m.d.sync += [phase.eq(1), t_in.eq(0), hb.eq(0), xa.eq(0),
                         words.eq(Mux(fits, xa + 1, xa)), last_hb.eq(Mux(fits, hb, hb - H)),
                         h_words.eq(Mux(fits, hb + H, hb))]

        # ---- run: both cells read the buffer, each at one element per cycle -----------------------
        done_f, done_r = Signal(range(T_max * H + 1)), Signal(range(T_max * H + 1))
        for cell, port, name, reverse in ((fwd, xf, "f", False), (rev, xr, "r", True)):
            rd = _Reader(m, [port], cell.i, T_max * I, name)
            a, e = Signal(range(T_max * I + 1), name=f"{name}_a"), Signal(range(max(I, 2)), name=f"{name}_e")
            first, last = Signal(name=f"{name}_first"), Signal(name=f"{name}_last")
            m.d.comb += [port.addr.eq(a), rd.word.data.eq(rd.delay(port.data, "data")),
                         rd.word.first.eq(rd.delay(first, "first")), rd.word.last.eq(rd.delay(last, "last"))]
            with m.If(end):  # the reverse cell starts at the last vector: (steps - 1) * input
                n = Mux(fits, xa + 1, xa)
                m.d.sync += [rd.left.eq(n), a.eq(n - I if reverse else 0), e.eq(0)]
            with m.If(rd.issue):
                m.d.sync += [first.eq(rd.left == words), last.eq(e == I - 1)]
                with m.If(e == I - 1):
                    m.d.sync += [e.eq(0), a.eq(a - (2 * I - 1) if reverse else a + 1)]
                with m.Else():
                    m.d.sync += [e.eq(e + 1), a.eq(a + 1)]
        # outputs by step: the reverse cell's n-th h(t) belongs to step steps - 1 - n
        for cell, port, cnt, reverse in ((fwd, fw, done_f, False), (rev, rw, done_r, True)):
            a, u = Signal(range(T_max * H + 1)), Signal(range(max(H, 2)))
            m.d.comb += [cell.o.ready.eq(1), port.data.eq(cell.o.payload.data), port.en.eq(cell.o.valid),
                         port.addr.eq(a)]
            with m.If(cell.o.valid):
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(u == H - 1):
                    m.d.sync += [u.eq(0), a.eq(a - (2 * H - 1) if reverse else a + 1)]
                with m.Else():
                    m.d.sync += [u.eq(u + 1), a.eq(a + 1)]
            with m.If(end):
                m.d.sync += [u.eq(0), a.eq(Mux(fits, hb, hb - H) if reverse else 0)]
        run_done = (phase == 1) & (done_f == h_words) & (done_r == h_words)
        with m.If(run_done):
            m.d.sync += phase.eq(2)

        # ---- out: forward h(t) then reverse h(t), step by step -------------------------------------
        rd = _Reader(m, [fr, rr], self.o, 2 * T_max * H, "o")
        o_all = Signal.like(rd.left)
        ob, ou = Signal(range(T_max * H + 1)), Signal(range(max(2 * H, 2)))
        ofirst, olast, oend, orev = Signal(), Signal(), Signal(), Signal()
        # ob + (ou < H ? ou : ou - H) kept as a register beside ob and ou, so the buffers' read address (LUT
        # RAM when small) is a register's, not an adder's
        oaddr = Signal(range(T_max * H + 1), name="o_addr")
        fq, rq = rd.delay(fr.data, "f"), rd.delay(rr.data, "r")
        m.d.comb += [fr.addr.eq(oaddr), rr.addr.eq(oaddr), rd.word.data.eq(Mux(rd.delay(orev, "rev"), rq, fq)),
                     rd.word.first.eq(rd.delay(ofirst, "first")), rd.word.last.eq(rd.delay(olast, "last")),
                     rd.word.end.eq(rd.delay(oend, "end"))]
        with m.If(run_done):
            n_out = 2 * H if self._last_only else h_words << 1
            first_b = last_hb if self._last_only else 0
            m.d.sync += [rd.left.eq(n_out), o_all.eq(n_out), ob.eq(first_b), ou.eq(0), oaddr.eq(first_b)]
        with m.If(rd.issue):
            m.d.sync += [ofirst.eq(rd.left == o_all), olast.eq(ou == 2 * H - 1), oend.eq(rd.left == 1),
                         orev.eq(ou >= H)]
            with m.If(ou == 2 * H - 1):
                m.d.sync += [ou.eq(0), ob.eq(ob + H), oaddr.eq(ob + H)]
            with m.Else():
                m.d.sync += [ou.eq(ou + 1), oaddr.eq(Mux(ou == H - 1, ob, oaddr + 1))]
        with m.If((phase == 2) & (rd.left == 0) & rd.idle):
            m.d.sync += [phase.eq(0), done_f.eq(0), done_r.eq(0)]
        return m


#: Verilog top module name of a network.
NETWORK_TOP = "rnn_network"


def write_verilog(config: NetworkConfig, qnet: QNetwork | None, out_dir) -> dict:
    """Write ``<config.name>.v`` (top module :data:`NETWORK_TOP`) and ``ports.json`` (ports and the cycle
    model) into ``out_dir``; returns ``{"verilog": Path, "ports": Path}``."""
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from model.network.cycles import NetworkCycleModel  # noqa: PLC0415
    from .export import component_verilog  # noqa: PLC0415

    net = Network(config, qnet)
    text = component_verilog(net, NETWORK_TOP)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vpath, ppath = out / f"{config.name}.v", out / "ports.json"
    vpath.write_text(text)
    cm = NetworkCycleModel.for_config(config)
    ppath.write_text(json.dumps({
        "top": NETWORK_TOP, "verilog": vpath.name, "layers": config.num_layers, "directions": list(config.directions),
        "i": streams.layer_word(config.layers[0].fmt("input")).describe(),
        "o": (streams.head_word(config.head) if config.head else
              streams.layer_word(config.layers[-1].fmt("hidden"))).describe(),
        "w": net.write_word().describe(), "w_target_shift": net.sub_bits,
        "status": list(net.status.shape().members),
        "cycle_model": {"cycles_per_step": cm.cycles_per_step, "slowest_layer": cm.slowest_layer,
                        "balance": list(cm.balance), "first_output_latency": cm.first_output_latency},
    }, indent=2) + "\n")
    return {"verilog": vpath, "ports": ppath}
