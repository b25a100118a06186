"""The dense head in gateware: one multiply-accumulate over the buffered last-layer output, then
the logits and the index of the largest one."""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from model.network.head import HeadConfig, QHead

from . import streams
from .ram import small_memory
from .requant import requantize

#: Head write regions: weights (``class * features + feature``), then biases (by class).
HEAD_REGIONS = ("weight", "bias")


def head_offset_bits(hc: HeadConfig) -> int:
    return max(1, (hc.classes * hc.features - 1).bit_length())



class Head(wiring.Component):
    """Logits ``requant(W y + b)`` and their arg-max for the steps that need them.

    Parameters
    ----------
    head : HeadConfig
        Classes, features, formats (``y`` in ``in_fmt``) and the requantization mode.
    q : QHead or None
        Initial weights and biases (zeros when None).  ``head.every_step``: the head computes on every
        step; otherwise only on a sequence's last step (``end``).

    Ports
    -----
    i : In(stream of :func:`rtl.streams.layer_word` in ``in_fmt``)
        The last layer's output, ``features`` elements per step; ``ready`` is low while the head
        computes or emits.
    o : Out(stream of :func:`rtl.streams.head_word`)
        ``classes`` logits per computed step, each with the class index; ``last`` on the last.
    w_addr, w_data, w_en : In
        A write into the weight (region 0) or bias (region 1) memory:
        ``addr = region << head_offset_bits | offset``.
    sat : Out(1)
        Sticky: a logit saturated or wrapped.

    Latency
    -------
    ``classes * (features + 5) + 1`` cycles from the step's last element to the first logit
    (:func:`model.network.cycles.head_cycles`); the logits then leave one per cycle while ``o.ready`` is high.
    """

    def __init__(self, head: HeadConfig, q: QHead | None = None):
        self._hc, self._q, self._every = head, q, head.every_step
        self._ob = head_offset_bits(head)
        wfmt, bfmt = head.formats["weight"], head.formats["bias"]
        super().__init__({
            "i": In(stream.Signature(streams.layer_word(head.in_fmt).layout())),
            "o": Out(stream.Signature(streams.head_word(head).layout())),
            "w_addr": In(self._ob + 1), "w_data": In(signed(max(wfmt.width, bfmt.width))), "w_en": In(1),
            "sat": Out(1),
        })
        #: High for a cycle clears ``sat`` (a saturation in the same cycle sets it again); not a port.
        self.sat_clear = Signal(name="sat_clear")

    def elaborate(self, platform):
        m = Module()
        hc, q = self._hc, self._q
        C, F = hc.classes, hc.features
        lf = hc.formats["logits"]
        with m.If(self.sat_clear):  # before the statement that sets it: setting wins
            m.d.sync += self.sat.eq(0)
        wimg = [int(v) for v in q.weight.reshape(-1)] if q is not None else []
        bimg = [int(v) for v in q.bias] if q is not None else []
        m.submodules.ymem = ymem = small_memory(shape=signed(hc.in_fmt.width), depth=F, init=[])
        m.submodules.wmem = wmem = small_memory(shape=signed(hc.formats["weight"].width), depth=C * F, init=wimg)
        m.submodules.bmem = bmem = small_memory(shape=signed(hc.formats["bias"].width), depth=C, init=bimg)
        yw, yr = ymem.write_port(), ymem.read_port()
        ww, wr = wmem.write_port(), wmem.read_port()
        bw, br = bmem.write_port(), bmem.read_port()
        ob = self._ob
        region, off = self.w_addr[ob:], self.w_addr[:ob]
        m.d.comb += [ww.addr.eq(off), ww.data.eq(self.w_data), ww.en.eq(self.w_en & (region == 0)),
                     bw.addr.eq(off), bw.data.eq(self.w_data), bw.en.eq(self.w_en & (region == 1))]

        logits = Array(Signal(signed(lf.width), name=f"logit{c}") for c in range(C))
        best, best_v = Signal(range(max(C, 2))), Signal(signed(lf.width))
        k, c = Signal(range(max(F, 2))), Signal(range(max(C, 2)))
        # a product is on the read ports (mac_v), the first or the last of a class's sum; the sum is
        # complete (done), then requantized into a register (stored)
        mac_v, mac_first, mac_last, done, stored = Signal(), Signal(), Signal(), Signal(), Signal()
        waddr = Signal(range(max(C * F, 2)))
        with m.FSM():
            with m.State("COLLECT"):
                m.d.comb += [self.i.ready.eq(1), yw.addr.eq(k), yw.data.eq(self.i.payload.data),
                             yw.en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += k.eq(Mux(self.i.payload.last, 0, k + 1))
                    with m.If(self.i.payload.last & (self.i.payload.end | self._every)):
                        m.d.sync += [c.eq(0), waddr.eq(0)]
                        m.next = "MAC"
            with m.State("MAC"):  # addresses of one product per cycle
                m.d.comb += [yr.addr.eq(k), wr.addr.eq(waddr)]
                m.d.sync += [mac_v.eq(1), mac_first.eq(k == 0), mac_last.eq(k == F - 1), waddr.eq(waddr + 1)]
                with m.If(k == F - 1):
                    m.d.sync += k.eq(0)
                    m.next = "DRAIN"
                with m.Else():
                    m.d.sync += k.eq(k + 1)
            with m.State("DRAIN"):  # the last product, the finished sum, the requantized logit
                m.d.sync += mac_v.eq(0)
                with m.If(stored):
                    with m.If(c == C - 1):
                        m.d.sync += c.eq(0)
                        m.next = "EMIT"
                    with m.Else():
                        m.d.sync += c.eq(c + 1)
                        m.next = "MAC"
            with m.State("EMIT"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(logits[c]), self.o.payload.cls.eq(best),
                             self.o.payload.last.eq(c == C - 1)]
                with m.If(self.o.ready):
                    with m.If(c == C - 1):
                        m.d.sync += c.eq(0)
                        m.next = "COLLECT"
                    with m.Else():
                        m.d.sync += c.eq(c + 1)
        # registered operands, a registered product, then the exact accumulator: the bias aligned, then one
        # aligned product a cycle
        m.d.comb += br.addr.eq(c)
        acc = Signal(signed(hc.acc_fmt.width))
        y_d, w_d = Signal.like(yr.data), Signal.like(wr.data)
        prod = Signal(signed(hc.in_fmt.width + hc.formats["weight"].width))
        d_v, d_first, d_last, p_v, p_first, p_last = (Signal() for _ in range(6))
        m.d.sync += [y_d.eq(yr.data), w_d.eq(wr.data), d_v.eq(mac_v), d_first.eq(mac_first), d_last.eq(mac_last),
                     prod.eq(y_d * w_d), p_v.eq(d_v), p_first.eq(d_first), p_last.eq(d_last)]
        with m.If(p_v):
            m.d.sync += acc.eq(Mux(p_first, br.data << hc.b_shift, acc) + (prod << hc.y_shift))
        m.d.sync += [done.eq(p_v & p_last), stored.eq(done)]
        rq, flag = requantize(acc, hc.acc_frac, lf, hc.mode.rounding, hc.mode.overflow)
        logit, sat = Signal(signed(lf.width)), Signal()
        with m.If(done):
            m.d.sync += [logit.eq(rq), sat.eq(flag)]
        with m.If(stored):
            m.d.sync += logits[c].eq(logit)
            with m.If(sat):
                m.d.sync += self.sat.eq(1)
            with m.If((c == 0) | (logit > best_v)):
                m.d.sync += [best.eq(c), best_v.eq(logit)]
        return m

