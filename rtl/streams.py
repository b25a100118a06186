"""The payload words of the cell's streams, defined once: ``i``, ``o`` (and the output FIFO, which
stores ``o`` words) and the write port ``w``.

A :class:`Word` is a list of fields, first field in the low bits, exactly as
Amaranth flattens a ``StructLayout`` into the exported Verilog port.  The
gateware takes its signatures from :meth:`Word.layout`; the cocotb bench, the
Amaranth-simulator harness and the vector writer pack and unpack through
:meth:`Word.pack` and :meth:`Word.unpack`.  No Amaranth import at module level,
so ``hls`` can use it.

=====  ==========================================================================
word   fields (low bits first)
=====  ==========================================================================
``i``  ``data`` (``formats.input``), ``last`` (element ``input_size - 1``),
       ``first`` (element 0 of a sequence's first vector: the state restarts),
       and with ``interleave > 1`` ``seq`` (the sequence, ``0 .. interleave - 1``,
       the same on every element of a vector)
``o``  ``data`` (``formats.hidden``), ``last`` (element ``hidden_size - 1``),
       ``first`` (element 0 of a sequence's first h: passes ``i``'s ``first``
       on, so one cell's ``o`` can drive the next cell's ``i``), and with
       ``interleave > 1`` ``seq`` (the sequence the h belongs to)
``w``  ``addr`` (region << offset_bits | offset), ``data`` (raw, signed, the
       widest of the weight, bias and auxiliary words; see :mod:`rtl.layout`)
=====  ==========================================================================

A network (:mod:`rtl.network`) adds :func:`layer_word` (a cell word plus ``end``, so each
layer and the head know where a sequence ends) and :func:`head_word` (logits and class).
"""
from __future__ import annotations

from dataclasses import dataclass

from model.config import Config

from .layout import Layout


@dataclass(frozen=True)
class Field:
    name: str
    width: int
    signed: bool = False


@dataclass(frozen=True)
class Word:
    """A packed stream payload: ``fields`` from the low bits up."""

    fields: tuple

    @property
    def width(self) -> int:
        return sum(f.width for f in self.fields)

    def offset(self, name: str) -> int:
        off = 0
        for f in self.fields:
            if f.name == name:
                return off
            off += f.width
        raise KeyError(f"no field {name!r}; fields: {', '.join(f.name for f in self.fields)}")

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def pack(self, **values) -> int:
        """The word holding ``values`` (every field required; signed values in two's complement)."""
        missing = [f.name for f in self.fields if f.name not in values]
        extra = sorted(set(values) - {f.name for f in self.fields})
        if missing or extra:
            raise ValueError(f"pack needs exactly the fields {', '.join(f.name for f in self.fields)}"
                             f"{'; missing ' + ', '.join(missing) if missing else ''}"
                             f"{'; unknown ' + ', '.join(extra) if extra else ''}")
        word, off = 0, 0
        for f in self.fields:
            v = int(values[f.name])
            lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, (1 << f.width) - 1)
            if not lo <= v <= hi:
                raise ValueError(f"field {f.name} = {v} does not fit {f.width} "
                                 f"{'signed' if f.signed else 'unsigned'} bits")
            word |= (v & ((1 << f.width) - 1)) << off
            off += f.width
        return word

    def unpack(self, word: int) -> dict:
        """Field values of ``word`` (signed fields sign-extended)."""
        out, off = {}, 0
        for f in self.fields:
            v = (int(word) >> off) & ((1 << f.width) - 1)
            if f.signed and v >> (f.width - 1):
                v -= 1 << f.width
            out[f.name] = v
            off += f.width
        return out

    def layout(self):
        """The Amaranth ``StructLayout`` of this word."""
        from amaranth import signed, unsigned  # noqa: PLC0415
        from amaranth.lib import data  # noqa: PLC0415
        return data.StructLayout({f.name: (signed if f.signed else unsigned)(f.width) for f in self.fields})

    def describe(self) -> list[dict]:
        """``[{name, offset, width, signed}]``, low bits first (for manifests and reports)."""
        return [{"name": f.name, "offset": self.offset(f.name), "width": f.width, "signed": f.signed}
                for f in self.fields]


def _seq(cfg: Config) -> tuple:
    """The ``seq`` field of an interleaved cell's words (none without interleave)."""
    return (Field("seq", (cfg.interleave - 1).bit_length()),) if cfg.interleave > 1 else ()


def input_word(cfg: Config) -> Word:
    return Word((Field("data", cfg.fmt("input").width, True), Field("last", 1), Field("first", 1), *_seq(cfg)))


def output_word(cfg: Config) -> Word:
    return Word((Field("data", cfg.fmt("hidden").width, True), Field("last", 1), Field("first", 1), *_seq(cfg)))


def interleaved_order(cfg: Config, lengths) -> list[tuple[int, int]]:
    """``(sequence, step)`` in the order an interleaved cell takes sequences of ``lengths`` steps: sequence
    ``n`` on ``seq = n % interleave``; the sequences of one group (``interleave`` consecutive ones) take
    turns a step each, and a group starts once the group before it has sent its last step.  Without
    interleave: every step of sequence 0, then of sequence 1, ..."""
    N, out = cfg.interleave, []
    for g in range(0, len(lengths), N):
        group = range(g, min(g + N, len(lengths)))
        out += [(n, t) for t in range(max(lengths[n] for n in group)) for n in group if t < lengths[n]]
    return out


def layer_word(fmt) -> Word:
    """A network's element stream between layers (and into layer 0): ``data`` in ``fmt``, ``last``,
    ``first`` and ``end`` (on the last element of a sequence's last vector)."""
    return Word((Field("data", fmt.width, True), Field("last", 1), Field("first", 1), Field("end", 1)))


def head_word(head) -> Word:
    """The head's output (a :class:`model.network.head.HeadConfig`): one word per logit, ``data`` in
    ``formats.logits``, ``cls`` the index of the largest logit (on every word of a step), ``last`` on
    the last logit."""
    return Word((Field("data", head.formats["logits"].width, True),
                 Field("cls", max(1, (head.classes - 1).bit_length())), Field("last", 1)))


def write_word(cfg: Config) -> Word:
    lay = Layout.for_config(cfg)
    return Word((Field("addr", lay.addr_bits), Field("data", lay.data_bits, True)))


def sequence_words(cfg: Config, x, h) -> tuple[list[int], list[int]]:
    """The ``i`` words that send sequences ``x`` (raw, ``(seqs, steps, input)``) and the ``o`` words
    expected back for their hidden states ``h`` (``(seqs, steps, hidden)``), each sequence from the
    zero state, in :func:`interleaved_order`."""
    iw, ow = input_word(cfg), output_word(cfg)
    seq = {"seq": None} if cfg.interleave > 1 else {}

    def words(word, vecs, n, t):
        return [word.pack(data=v, last=int(e == len(vecs[t]) - 1), first=int(t == 0 and e == 0),
                          **{k: n % cfg.interleave for k in seq}) for e, v in enumerate(vecs[t])]

    order = interleaved_order(cfg, [len(s) for s in x])
    ipay = [w for n, t in order for w in words(iw, x[n], n, t)]
    opay = [w for n, t in order for w in words(ow, h[n], n, t)]
    return ipay, opay


def padded(width: int) -> int:
    """``width`` rounded up to whole bytes (an AXI4-Stream TDATA)."""
    return (width + 7) // 8 * 8


#: User bits of an input element and of a headless network's output element, low bit first.
STREAM_USER = ("first", "end")


def axis_in_word(ncfg) -> Word:
    """An x element on a bus stream (:mod:`rtl.core`): ``data`` in layer 0's ``formats.input``, sign-extended
    to whole bytes (the bits above the format are ignored), ``last`` on a vector's last element, ``user`` bit
    0 on a sequence's first element and bit 1 on its last vector's elements (:data:`STREAM_USER`)."""
    return Word((Field("data", padded(ncfg.layers[0].fmt("input").width), True), Field("last", 1),
                 Field("user", len(STREAM_USER))))


def axis_out_word(ncfg) -> Word:
    """An output element on a bus stream: with a head, a logit (``data``, sign-extended to whole bytes), ``last``
    on the last logit and ``user`` the class index; without one, an h element with ``user`` as on
    :func:`axis_in_word`."""
    if ncfg.head is not None:
        hw = head_word(ncfg.head)
        return Word((Field("data", padded(hw.field("data").width), True), Field("last", 1),
                     Field("user", hw.field("cls").width)))
    return Word((Field("data", padded(ncfg.layers[-1].fmt("hidden").width), True), Field("last", 1),
                 Field("user", len(STREAM_USER))))
