"""Sigmoid / tanh gateware built from a :class:`model.activations.Activation`.

The integer steps and every constant come from ``act.hw()``; nothing is retyped
here, so the unit and :meth:`model.activations.Activation.evaluate` cannot drift.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model import latency
from model.activations import Activation

from .requant import resize

__all__ = ["ActivationUnit", "HW_METHODS"]

#: Methods the gateware implements ('exact' is a float reference only).
HW_METHODS = ("lut", "lut_interp", "pwl", "hard")


def _ushape_for(max_value: int):
    """Smallest unsigned shape holding ``0..max_value`` (at least 1 bit)."""
    return unsigned(max(int(max_value).bit_length(), 1))


def _shift(value, amount: int):
    """``value >> amount`` (floor) for ``amount >= 0``, ``value << -amount`` otherwise."""
    return value.shift_right(amount) if amount >= 0 else value.shift_left(-amount)


class ActivationUnit(wiring.Component):
    """Fully pipelined sigmoid or tanh: one input per cycle, output ``latency`` cycles later.

    Implements the integer definition of :class:`model.activations.Activation`
    (methods ``lut``, ``lut_interp``, ``pwl``, ``hard``) with the constants of
    ``act.hw()``: magnitude ``a = |x|``, positive half ``p = P(a)``, clamp
    ``p <= pos_max``, mirror (``one - p`` for sigmoid, ``-p`` for tanh) when ``x < 0``.

    Parameters
    ----------
    act : Activation
        From :func:`model.activations.make_activation`; its method must not be ``'exact'``.

    Ports
    -----
    x : In(signed(in_width))
        Raw input in ``act.in_fmt`` (``unsigned(in_width)`` if ``in_fmt`` is unsigned),
        e.g. ``s5.11`` = ``ap_fixed<16,5>``.
    valid_in : In(1)
        ``x`` holds a value this cycle.  The pipeline never stalls; ``valid_in``
        only travels along with the data.
    y : Out(signed(out_width) or unsigned(out_width))
        Raw output in ``act.out_fmt`` (e.g. ``u1.15`` for sigmoid, ``s1.15`` for tanh);
        a register output.
    valid_out : Out(1)
        ``valid_in`` delayed by ``latency`` cycles: ``y`` is ``act.evaluate(x)``
        for the ``x`` presented ``latency`` cycles earlier.

    Latency
    -------
    ``model.latency.ACT`` cycles for every method (``latency`` property; 5
    today): an input presented in cycle ``n`` (sampled at the clock edge ending
    it) is on ``y`` with ``valid_out = 1`` during cycle ``n + latency``.  The core
    below takes ``CORE_LATENCY = 5`` stages (methods that need fewer are padded);
    a larger ``model.latency.ACT`` adds output registers after R5, and the cell
    pipeline and the cycle model follow that one number.  The magnitude, the
    interpolation's sum and the clamp/mirror have a stage each, so no cycle holds
    two carry chains in a row or a chain after a multiply.

    Stages (``W`` = in_width, ``A`` = abs_bits = ``W``, ``P`` = width of ``p``)::

        stage 1         stage 2                      stage 3                 stage 4                 stage 5
      x[W] --> a = |x| [A] --+--> table read (sync BRAM) --+--> lut_interp:        --> p = min(p, pos_max)
               neg = x < 0   |    lut:    T[j]             |    p = T[j] +              y = neg ? mirror(p) : p
                             |    interp: {dT[j], T[j]}    |      (prod + rnd) >> s     --> y [out_width]
               j = min(a>>s, |    * r  -> prod             |    others: p as it is
                   index_max)|                             |
               r = a & (2**s - 1)                          |
                             |    pwl/hard:                |
               sel = last i  +--> p = seg[sel] term + off -+
                 with a >= lo_raw[i]
               (priority chain of constant comparisons)

      register:  R1: a, neg | R2: table word or sel, a, r | R3: p or {T, prod} | R4: p | R5: y, valid_out
      (neg and valid travel along; ``j``, ``r`` and ``sel`` are formed from R1's ``a``)

    Tables are stored in an :class:`amaranth.lib.memory.Memory` with a
    synchronous read port (block RAM), addressed from R1's magnitude;
    its output register is R2 for the table data.  ``lut_interp`` stores one
    word per entry ``{delta = T[j+1] - T[j], T[j]}`` (the last entry has
    ``delta = 0``), so one read gives both points and one multiply
    ``delta * r`` interpolates.

    Raises
    ------
    TypeError
        If ``act`` is not an :class:`Activation`.
    ValueError
        If ``act`` uses the ``'exact'`` method.
    """

    #: Stages of the core (R1..R5 below); ``model.latency.ACT`` may add output registers, not remove these.
    CORE_LATENCY = 5

    def __init__(self, act: Activation):
        if not isinstance(act, Activation):
            self._MustUse__silence = True     # a refused unit is not an unused one
            raise TypeError(f"act must be a model.activations.Activation (from make_activation), not {act!r}")
        hw = act.hw()
        if not hw["synthesizable"] or hw["method"] not in HW_METHODS:
            self._MustUse__silence = True
            raise ValueError(f"hardware has no {hw['method']!r} method for {hw['fn']}: it is a float "
                             f"reference only; use one of {', '.join(map(repr, HW_METHODS))}")
        if latency.ACT < self.CORE_LATENCY:
            self._MustUse__silence = True
            raise ValueError(f"model.latency.ACT = {latency.ACT} is below the activation unit's "
                             f"{self.CORE_LATENCY} core stages; accepted: {self.CORE_LATENCY} or more")
        self._latency = latency.ACT
        self._act = act
        self._hw = hw
        in_shape = (signed if hw["in_signed"] else unsigned)(hw["in_width"])
        out_shape = (signed if hw["out_signed"] else unsigned)(hw["out_width"])
        super().__init__({
            "x": In(in_shape),
            "valid_in": In(1),
            "y": Out(out_shape),
            "valid_out": Out(1),
        })

    # ---- read-only attributes ---------------------------------------------------
    @property
    def act(self) -> Activation:
        """The :class:`Activation` this unit implements."""
        return self._act

    @property
    def latency(self) -> int:
        """Cycles from input to output (``model.latency.ACT`` when the unit was built)."""
        return self._latency

    @property
    def hw(self) -> dict:
        """A copy of ``act.hw()``, the constants the gateware is built from."""
        return dict(self._hw)

    def model(self, x):
        """Bit-exact NumPy model of ``y`` for raw inputs ``x`` (``act.evaluate``)."""
        return self._act.evaluate(x)

    # ---- static bounds ------------------------------------------------------------
    def _a_max(self) -> int:
        hw = self._hw
        return (1 << (hw["in_width"] - 1)) if hw["in_signed"] else (1 << hw["in_width"]) - 1

    def _segment_ranges(self):
        """For each segment: ``(lo, hi)`` of the magnitudes where the chain selects it
        (``None`` if never), under 'the last segment with a >= lo_raw wins'."""
        segs = self._hw["segments"]
        a_max = self._a_max()
        out = []
        for i, sg in enumerate(segs):
            later = [s["lo_raw"] for s in segs[i + 1:]]
            hi = min([a_max] + [lo - 1 for lo in later])
            lo = max(sg["lo_raw"], 0)
            out.append((lo, hi) if lo <= hi else None)
        return out

    @staticmethod
    def _segment_value(sg, a: int) -> int:
        if not sg["slope"]:
            return sg["offset_raw"]
        t = sg["term_shift"]
        return ((a >> t) if t >= 0 else (a << -t)) + sg["offset_raw"]

    def _p_max(self) -> int:
        """Largest value of the positive half ``P(a)`` before the clamp."""
        hw = self._hw
        if hw["method"] in ("lut", "lut_interp"):
            return max(hw["table"])
        vals = [self._segment_value(sg, r[1])
                for sg, r in zip(hw["segments"], self._segment_ranges()) if r is not None]
        return max(vals)

    # ---- gateware ------------------------------------------------------------------------
    def elaborate(self, platform):
        hw = self._hw
        m = Module()
        method = hw["method"]
        abs_bits = hw["abs_bits"]

        # ---- stage 1: magnitude and sign registered (R1) ----
        a = Signal(unsigned(abs_bits), name="a0")
        neg = Signal(name="neg0")
        if hw["in_signed"]:
            m.d.sync += [neg.eq(self.x < 0), a.eq(Mux(self.x < 0, -self.x, self.x))]
        else:
            m.d.sync += a.eq(self.x)

        p_max = self._p_max()
        p_shape = _ushape_for(p_max)
        neg1, neg2 = Signal(), Signal()
        valid0, valid1, valid2 = Signal(), Signal(), Signal()
        m.d.sync += [neg1.eq(neg), neg2.eq(neg1), valid0.eq(self.valid_in), valid1.eq(valid0), valid2.eq(valid1)]
        p = Signal(p_shape)                           # into R4: the positive half

        if method == "lut" or (method == "lut_interp" and hw["frac_bits"] == 0):
            # j = min(a >> s, index_max) (a << -s if s < 0); P = T[j]
            table = hw["table"]
            j = Signal(range(hw["index_max"] + 1))
            j_raw = _shift(a, hw["index_shift"])
            m.d.comb += j.eq(Mux(j_raw > hw["index_max"], hw["index_max"], j_raw))
            m.submodules.table = mem = Memory(shape=_ushape_for(max(table)), depth=len(table), init=table)
            rd = mem.read_port()
            m.d.comb += rd.addr.eq(j)
            p2 = Signal(p_shape)
            m.d.sync += p2.eq(rd.data)                # stage 3 only pads
            m.d.comb += p.eq(p2)

        elif method == "lut_interp":
            # j = min(a >> s, half); r = a & (2**s - 1); word[j] = {delta, T[j]}
            table = hw["table"]
            s = hw["index_shift"]
            half = hw["index_max"]
            deltas = [table[i + 1] - table[i] for i in range(half)] + [0]
            d_signed = min(deltas) < 0
            d_bits = max(hw["delta_bits"], max(abs(d) for d in deltas).bit_length(), 1)
            d_shape = signed(d_bits + 1) if d_signed else unsigned(d_bits)
            word = data.StructLayout({"base": _ushape_for(max(table)), "delta": d_shape})
            m.submodules.table = mem = Memory(
                shape=word, depth=half + 1,
                init=[{"base": t, "delta": d} for t, d in zip(table, deltas)])
            rd = mem.read_port()
            j = Signal(range(half + 1))
            j_raw = a.shift_right(s)
            m.d.comb += [j.eq(Mux(j_raw > half, half, j_raw)), rd.addr.eq(j)]
            r1 = Signal(unsigned(s))
            m.d.sync += r1.eq(a[:s])
            # stage 3: one multiply
            prod2 = Signal.like(rd.data.delta * r1, name="prod2", reset_less=True)  # rtl.outreg
            base2 = Signal.like(rd.data.base, name="base2")
            m.d.sync += [prod2.eq(rd.data.delta * r1), base2.eq(rd.data.base)]
            # stage 4: round-half-up shift and add
            m.d.comb += p.eq(base2 + (prod2 + hw["round"]).shift_right(s))

        else:  # pwl, hard: priority chain of constant comparisons, then one add
            segs = hw["segments"]
            sel = Signal(range(len(segs)))
            sel_c = Const(0, sel.shape())
            for i, sg in enumerate(segs[1:], start=1):     # later segments win
                sel_c = Mux(a >= sg["lo_raw"], i, sel_c)
            a1 = Signal(unsigned(abs_bits))
            m.d.sync += [sel.eq(sel_c), a1.eq(a)]
            p2 = Signal(p_shape)
            with m.Switch(sel):
                for i, (sg, rng) in enumerate(zip(segs, self._segment_ranges())):
                    if rng is None:
                        continue
                    with m.Case(i):
                        if sg["slope"]:
                            m.d.sync += p2.eq(_shift(a1, sg["term_shift"]) + sg["offset_raw"])
                        else:
                            m.d.sync += p2.eq(sg["offset_raw"])
            m.d.comb += p.eq(p2)

        # ---- stage 4: the positive half registered; stage 5: clamp, mirror, output register ----
        p3, neg3, valid3 = Signal(p_shape, name="p3"), Signal(), Signal()
        m.d.sync += [p3.eq(p), neg3.eq(neg2), valid3.eq(valid2)]
        pos_max = hw["pos_max"]
        pc = Mux(p3 > pos_max, pos_max, p3) if p_max > pos_max else p3
        if hw["mirror"] == "one_minus":
            mirrored = hw["one"] - pc
        else:
            mirrored = -pc
        out_w, out_s = hw["out_width"], bool(hw["out_signed"])
        y_next = Mux(neg3, resize(mirrored, out_w, out_s), resize(pc, out_w, out_s))
        for k in range(self._latency - self.CORE_LATENCY):  # output registers beyond the core
            y_k, v_k = Signal.like(self.y, name=f"y_pad{k}"), Signal(name=f"valid_pad{k}")
            m.d.sync += [y_k.eq(y_next), v_k.eq(valid3)]
            y_next, valid3 = y_k, v_k
        m.d.sync += [self.y.eq(y_next), self.valid_out.eq(valid3)]
        return m
