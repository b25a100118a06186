"""The formal harness: a cell with free inputs, the legal-input protocol assumed and its stream,
counting, error, memory and state-reset properties asserted.

The harness's own ports (``i_valid``, ``i_payload``, ``o_ready``, ``w_valid``, ``w_payload``, the
clock and the reset) are top-level inputs, so the solver drives them freely every cycle; the only
assumptions are the ``i`` stream rules and legal framing.  ``w`` writes anything, anywhere, at any
time, and the reset may rise in any cycle (every tracker below restarts with the cell).

Property sets (each a separate proof, see ``docs/formal.md``):

``stream``
    On ``o``: once ``valid`` is up without ``ready``, ``valid`` stays up and the payload is unchanged
    in the next cycle.
``count``
    No element invented or duplicated: each accepted x(t) vector owes ``hidden_size`` elements of
    ``o``, and ``o`` never transfers with nothing owed; the in-flight amount stays bounded; ``last``
    is on element ``hidden_size - 1`` of every h(t) and only there; ``first`` only on element 0.
    No element dropped: with ``ready`` high and neither an input transfer nor a write for
    :func:`drain_bound` cycles, nothing is owed any more.
``errors``
    ``err_overrun`` and ``err_framing`` never set; ``err_addr`` set exactly when an out-of-map write
    happened.
``memory``
    Every write port of every memory in the cell writes inside its memory.
``reset``
    ``o.first`` marks exactly the h(t) of the steps whose x(t) carried ``first`` (and the first step
    after reset), and exactly those steps take their h operands in the MAC lanes and every row's
    previous state in the post-processor from the initial state instead of the previous step
    (the cell's ``zero1`` and ``ps1_0`` flags, which select the source).
"""
from __future__ import annotations

from amaranth import Elaboratable, Fragment, Module, Mux, Signal
import sys

from amaranth.hdl import Assert, Assume, Cover, MemoryInstance

from model.config import Config
from model.cycles import CycleModel
from rtl import streams
from rtl.cell import RecurrentCell
from rtl.write_port import regions

#: The property sets a harness can assert, in the order the tables list them.
PROPERTY_SETS = ("stream", "count", "errors", "memory", "reset")

#: Tags of input vectors kept for the ``first`` check: more than can be in flight (two x banks,
#: two steps in the pipeline, the output queue's hidden-size reservations).
TAG_SLOTS = 16


def drain_bound(cfg: Config) -> int:
    """Cycles after the last input transfer within which, with ``ready`` held high, every owed element
    has left: the two buffered vectors and the step in flight, each at most one step, after the
    first-output latency (``model.cycles``)."""
    cm = CycleModel.for_config(cfg)
    return cm.first_output_latency + 3 * max(cm.cycles_per_step, cm.first_step_cycles) + cfg.hidden_size


def memories(frag: Fragment):
    """Every :class:`MemoryInstance` in an elaborated fragment's hierarchy."""
    if isinstance(frag, MemoryInstance):
        yield frag
    for sub, _name, _loc in frag.subfragments:
        yield from memories(sub)


def named_signals(frag: Fragment, names) -> dict:
    """The signals called ``names`` among those assigned in a fragment's hierarchy (the first found)."""
    found = {}

    def walk(f):
        for stmts in f.statements.values():
            for st in stmts:
                for sig in st._lhs_signals():
                    if sig.name in names:
                        found.setdefault(sig.name, sig)
        for sub, _name, _loc in f.subfragments:
            walk(sub)
    walk(frag)
    missing = sorted(set(names) - set(found))
    if missing:
        raise LookupError(f"the cell assigns no signal named {', '.join(missing)}")
    return found


def assume_input_protocol(m, i, n: int):
    """Assume the legal ``i`` stream: ``valid`` held and the payload stable until taken, ``last`` on element
    ``n - 1`` of every vector and only there, ``first`` only on element 0.  Returns the element counter."""
    i_wait, i_prev = Signal(), Signal.like(i.payload)
    m.d.sync += [i_wait.eq(i.valid & ~i.ready), i_prev.eq(i.payload)]
    m.d.comb += Assume(~i_wait | (i.valid & (i.payload.as_value() == i_prev.as_value())))
    ie = Signal(range(max(n, 2)))
    with m.If(i.valid & i.ready):
        m.d.sync += ie.eq(Mux(ie == n - 1, 0, ie + 1))
    m.d.comb += Assume(~i.valid | ((i.payload.last == (ie == n - 1)) & (~i.payload.first | (ie == 0))))
    return ie


def assert_stream(harness, m, o):
    """On ``o``: once ``valid`` is up without ``ready``, ``valid`` stays up and the payload is unchanged."""
    o_wait, o_prev = Signal(), Signal.like(o.payload)
    m.d.sync += [o_wait.eq(o.valid & ~o.ready), o_prev.eq(o.payload)]
    harness._check(m, ~o_wait | o.valid, "o.valid dropped before the transfer")
    harness._check(m, ~o_wait | (o.payload.as_value() == o_prev.as_value()), "o.payload changed before the transfer")


def assert_memory(harness, m, frag):
    """Every write port of every memory in ``frag`` writes inside its memory."""
    for mem in memories(frag):
        depth = mem._data.depth
        for port in mem._write_ports:
            if depth < 1 << len(port._addr):
                harness._check(m, ~port._en.any() | (port._addr < depth), "write outside a memory")


class FormalHarness(Elaboratable):
    """A :class:`rtl.cell.RecurrentCell` (or ``cell``, a component with its ports) under ``props``."""

    def __init__(self, cfg: Config, props=PROPERTY_SETS, cell=None):
        unknown = sorted(set(props) - set(PROPERTY_SETS))
        if unknown:
            raise ValueError(f"unknown property set {', '.join(unknown)}; accepted: {', '.join(PROPERTY_SETS)}")
        self.cfg = cfg
        self.props = tuple(p for p in PROPERTY_SETS if p in props)
        self.cell = cell if cell is not None else RecurrentCell(cfg)
        iw, ww = streams.input_word(cfg), streams.write_word(cfg)
        self.i_valid = Signal()
        self.i_payload = Signal(iw.layout())
        self.o_ready = Signal()
        self.w_valid = Signal()
        self.w_payload = Signal(ww.layout())
        #: source line of each assertion -> what its failure means (SymbiYosys names the line)
        self.messages = {}

    def _check(self, m, test, message):
        m.d.comb += Assert(test, message, src_loc_at=1)
        self.messages[sys._getframe(1).f_lineno] = message

    def ports(self) -> list:
        return [self.i_valid, self.i_payload.as_value(), self.o_ready, self.w_valid, self.w_payload.as_value()]

    def elaborate(self, platform):
        m = Module()
        cfg, cell = self.cfg, self.cell
        I, H = cfg.input_size, cfg.hidden_size
        frag = Fragment.get(cell, platform)
        m.submodules.cell = frag
        i, o, w, st = cell.i, cell.o, cell.w, cell.status
        m.d.comb += [i.valid.eq(self.i_valid), i.payload.eq(self.i_payload), o.ready.eq(self.o_ready),
                     w.valid.eq(self.w_valid), w.payload.eq(self.w_payload)]
        i_xfer, o_xfer = i.valid & i.ready, o.valid & o.ready

        ie = assume_input_protocol(m, i, I)
        vec_in = i_xfer & (ie == I - 1)

        if "stream" in self.props:
            assert_stream(self, m, o)

        if "count" in self.props or "reset" in self.props:
            opos = Signal(range(max(H, 2)))
            with m.If(o_xfer):
                m.d.sync += opos.eq(Mux(opos == H - 1, 0, opos + 1))

        if "count" in self.props:
            limit = cell.out_depth + 3 * H
            owed = Signal(range(limit + H + 2))
            m.d.sync += owed.eq(owed + Mux(vec_in, H, 0) - o_xfer)
            self._check(m, ~o_xfer | (owed != 0), "o transferred an element nobody owed")
            self._check(m, owed <= limit, "more elements in flight than the cell can hold")
            self._check(m, ~o.valid | (o.payload.last == (opos == H - 1)), "o.last off element hidden-1")
            self._check(m, ~o.valid | ~o.payload.first | (opos == 0), "o.first off element 0")
            bound = drain_bound(cfg)
            quiet = Signal(range(bound + 1))
            with m.If(i_xfer | ~o.ready | w.valid):        # a write holds back a step's start
                m.d.sync += quiet.eq(0)
            with m.Elif(quiet != bound):
                m.d.sync += quiet.eq(quiet + 1)
            self._check(m, (quiet != bound) | (owed == 0),
                               "elements still owed after the drain bound with ready high")

        if "errors" in self.props:
            self._check(m, ~st.err_overrun, "err_overrun set")
            self._check(m, ~st.err_framing, "err_framing set under legal framing")
            lay_ok = 0
            ob = cell.layout.offset_bits
            sel, off = w.payload.addr[ob:], w.payload.addr[:ob]
            for k, depth in regions(cfg):
                lay_ok = lay_ok | ((sel == k) & (off < depth))
            bad_seen = Signal()
            with m.If(w.valid & ~lay_ok):
                m.d.sync += bad_seen.eq(1)
            self._check(m, st.err_addr == bad_seen, "err_addr differs from 'an out-of-map write happened'")

        if "memory" in self.props:
            assert_memory(self, m, frag)

        if "reset" in self.props:
            self._reset_props(m, frag, i_xfer, o_xfer, vec_in, opos, ie)
        return m

    def _reset_props(self, m, frag, i_xfer, o_xfer, vec_in, opos, ie):
        cfg, cell = self.cfg, self.cell
        o = cell.o
        tags = Signal(TAG_SLOTS)        # per input vector, in order: it starts a sequence
        nin, nout, nst, npp = (Signal(range(TAG_SLOTS), name=n) for n in ("nin", "nout", "nst", "npp"))
        need = Signal(init=1)           # the first vector after reset starts a sequence
        cur = Signal()                  # the first flag of the vector being received
        with m.If(i_xfer & (ie == 0)):
            m.d.sync += cur.eq(self.i_payload.first)
        with m.If(vec_in):
            tag = Mux(ie == 0, self.i_payload.first, cur) | need
            m.d.sync += [tags.bit_select(nin, 1).eq(tag), nin.eq(nin + 1), need.eq(0)]
        with m.If(o_xfer & (opos == cfg.hidden_size - 1)):
            m.d.sync += nout.eq(nout + 1)
        self._check(m, ~o.valid | (o.payload.first == ((opos == 0) & tags.bit_select(nout, 1))),
                           "o.first differs from the input vector's first")

        # inside the cell: the MAC lanes' operands (stage 1) and the post-processor's rows (P1; the proofs' cells
        # have one post-processor, number 0)
        names = ("v1", "first1", "slot1", "isx1", "zero1", "pv1_0", "ps1_0")
        sig = {n.removesuffix("_0"): s for n, s in named_signals(frag, names).items()}
        step_start = sig["v1"] & sig["first1"] & (sig["slot1"] == 0)
        cur_step = Mux(step_start, nst, (nst - 1)[:len(nst)])   # the step whose operand is at stage 1
        with m.If(step_start):
            m.d.sync += nst.eq(nst + 1)
        self._check(m, ~(sig["v1"] & ~sig["isx1"]) | (sig["zero1"] == tags.bit_select(cur_step, 1)),
                           "an h operand's source (initial state or h(t-1)) differs from its x(t)'s first")
        row = Signal(range(max(cfg.rows, 2)))
        with m.If(sig["pv1"]):
            m.d.sync += row.eq(Mux(row == cfg.rows - 1, 0, row + 1))
            with m.If(row == cfg.rows - 1):
                m.d.sync += npp.eq(npp + 1)
        self._check(m, ~sig["pv1"] | (sig["ps1"] == tags.bit_select(npp, 1)),
                           "a row's previous-state source (initial state or its unit's) differs from its x(t)'s first")


class NetworkHarness(Elaboratable):
    """A :class:`rtl.network.Network` with free inputs (``i``, ``o.ready``, ``w`` and the state readout
    address), the legal-input protocol assumed (``end`` only with ``last``), and the property sets
    ``stream`` (on ``o``), ``errors`` (no cell's ``err_overrun`` or ``err_framing`` ever set; ``err_long``
    and the write-port bits answer the host's own choices) and ``memory`` (every write inside its memory);
    ``reach`` covers an ``o`` transfer, so a bounded proof is known to get as far as the output."""

    PROPS = ("stream", "errors", "memory", "reach")

    def __init__(self, ncfg, props=PROPS):
        from rtl.network import Network  # noqa: PLC0415
        unknown = sorted(set(props) - set(self.PROPS))
        if unknown:
            raise ValueError(f"unknown property set {', '.join(unknown)} for a network; accepted: "
                             f"{', '.join(self.PROPS)}")
        self.cfg = ncfg
        self.props = tuple(p for p in self.PROPS if p in props)
        self.net = Network(ncfg)
        self.i_valid, self.o_ready, self.w_valid = Signal(), Signal(), Signal()
        self.i_payload = Signal(streams.layer_word(ncfg.layers[0].fmt("input")).layout())
        self.w_payload = Signal(self.net.write_word().layout())
        self.state_addr = Signal.like(self.net.state_addr)
        self.messages = {}

    _check = FormalHarness._check

    def ports(self) -> list:
        return [self.i_valid, self.i_payload.as_value(), self.o_ready, self.w_valid, self.w_payload.as_value(),
                self.state_addr]

    def elaborate(self, platform):
        m = Module()
        net, I = self.net, self.cfg.input_size
        frag = Fragment.get(net, platform)
        m.submodules.net = frag
        i, o, w = net.i, net.o, net.w
        m.d.comb += [i.valid.eq(self.i_valid), i.payload.eq(self.i_payload), o.ready.eq(self.o_ready),
                     w.valid.eq(self.w_valid), w.payload.eq(self.w_payload), net.state_addr.eq(self.state_addr)]
        assume_input_protocol(m, i, I)
        m.d.comb += Assume(~i.valid | ~i.payload.end | i.payload.last)
        if "stream" in self.props:
            assert_stream(self, m, o)
        if "errors" in self.props:
            for name in net.status.shape().members:
                if name.endswith(("err_overrun", "err_framing")):
                    self._check(m, ~getattr(net.status, name), f"{name} set")
        if "memory" in self.props:
            assert_memory(self, m, frag)
        if "reach" in self.props:
            m.d.comb += Cover(o.valid & o.ready)
        return m
