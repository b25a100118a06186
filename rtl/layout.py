"""Where each quantized parameter lives in the cell's memories, and the write-port address map.

Hardware rows follow :class:`model.cycles.Schedule`: in slot ``s`` lane ``l``
computes one row, and its weight memory holds, from word ``s * slot_cycles``,
the ``input`` weights of ``W_ih`` then the ``hidden`` weights of ``W_hh`` of
that row, ``beat`` weights per word (zeros in the unused lanes of a part-filled
slot and after the row's last weight).

Wider words, not more banks: a lane reads the ``beat`` weights of one z chunk
with one address, so one memory, one address counter and one read port serve
any ``beat`` (the synthesis tool splits a wide word over as many block RAMs as
its width needs, the same count ``beat`` banks would take).  A lane's write
offset is ``word << beat_bits | element`` (``beat_bits = ceil(log2(beat))``, 0
for one weight per word), so the write port still moves one weight per
transfer and a word's weights are written one at a time through per-weight
write enables; offsets whose element is ``beat`` or more address nothing.

Write-port address: ``region << offset_bits | offset``, with regions
``0 .. lanes-1`` the lane weight memories, ``lanes`` the bias memory (by
hardware row), ``lanes + 1`` the kind's auxiliary memory
(:attr:`model.kinds.CellKind.aux`: peephole weights by hardware row for a
peephole LSTM, 0 for rows without one; ``b_hn`` by unit for a reset-after GRU;
absent otherwise), then the initial state every sequence starts from
(:func:`init_regions`): ``lanes + 2`` h0 by unit and, for a kind whose per-unit
state is not h (the LSTM kinds' c), ``lanes + 3`` that state by unit.
"""
from __future__ import annotations

from dataclasses import dataclass

from model.config import Config
from model.cycles import Schedule
from model.params import QParams


def init_regions(cfg: Config) -> list[tuple[int, str, str]]:
    """``(region, name, format tensor)`` of the initial-state memories: h0, and the kind's per-unit state
    (``unit_state``) when it is not h."""
    out = [(cfg.lanes + 2, "h0", "hidden")]
    if cfg.cell.unit_state != "hidden":
        name = next(n for n, t in cfg.cell.state if t == cfg.cell.unit_state)
        out.append((cfg.lanes + 3, f"{name}0", cfg.cell.unit_state))
    return out


def aux_format(cfg: Config):
    """Format of the auxiliary memory's words, or None without one."""
    aux = cfg.cell.aux
    return cfg.fmt(aux.tensor) if aux else None


@dataclass(frozen=True)
class Layout:
    """Write-port address split, data width and memory depths for a config (rows and slots from its
    schedule)."""
    schedule: Schedule
    offset_bits: int
    addr_bits: int
    aux: object  # model.kinds.Aux or None
    data_bits: int  # the write port's data word: the widest of weight, bias, auxiliary and state words

    @classmethod
    def for_config(cls, cfg: Config) -> "Layout":
        sch = Schedule.for_config(cfg)
        depth = max((sch.slots * sch.slot_cycles) << (cfg.beat - 1).bit_length(), cfg.rows)
        off = max(1, (depth - 1).bit_length())
        last_region = init_regions(cfg)[-1][0]
        aux = aux_format(cfg)
        data_bits = max(cfg.fmt("weight").width, cfg.fmt("bias").width, aux.width if aux else 0,
                        *(cfg.fmt(t).width for _, _, t in init_regions(cfg)))
        return cls(sch, off, off + last_region.bit_length(), cfg.cell.aux, data_bits)

    @property
    def slots(self) -> int:
        return self.schedule.slots

    @property
    def slot_cycles(self) -> int:
        return self.schedule.slot_cycles

    @property
    def lane_depth(self) -> int:
        """Words of a lane's weight memory (one z chunk's weights each)."""
        return self.slots * self.slot_cycles

    @property
    def beat(self) -> int:
        return self.schedule.beat

    @property
    def beat_bits(self) -> int:
        """Low bits of a lane's write offset that pick the weight within a word."""
        return (self.beat - 1).bit_length()

    @property
    def lane_offsets(self) -> int:
        """Write offsets a lane's region spans (``lane_depth << beat_bits``; the holes address nothing)."""
        return self.lane_depth << self.beat_bits

    def lane_offset(self, word: int, element: int) -> int:
        return (word << self.beat_bits) | element

    @property
    def aux_depth(self) -> int:
        if self.aux is None:
            return 0
        return self.schedule.rows if self.aux.per == "row" else self.schedule.hidden


def init_images(cfg: Config, init=None) -> dict:
    """Contents of the initial-state memories (name -> list by unit) for ``init``, a raw state in the kind's
    state order (each ``(hidden,)``), or zeros."""
    out = {}
    for _, name, tensor in init_regions(cfg):
        k = next(j for j, (_, t) in enumerate(cfg.cell.state) if t == tensor)
        out[name] = [0] * cfg.hidden_size if init is None else [int(v) for v in init[k]]
    return out


def memory_images(cfg: Config, q: QParams | None, init=None) -> dict:
    """Initial contents: ``lanes`` (per lane, its weights by write offset, :meth:`Layout.lane_offset`),
    ``bias`` (by row), ``aux``, and the initial-state memories (:func:`init_images` of ``init``)."""
    lay = Layout.for_config(cfg)
    sch = lay.schedule
    H, I = cfg.hidden_size, cfg.input_size
    lanes = [[0] * lay.lane_offsets for _ in range(cfg.lanes)]
    bias = [0] * cfg.rows
    aux = [0] * lay.aux_depth
    if q is None:
        return {"lanes": lanes, "bias": bias, "aux": aux, **init_images(cfg, init)}
    for r in range(cfg.rows):
        s, lane = sch.slot_of(r)
        tr = sch.torch_row(r)
        z = [int(v) for v in q.w_ih[tr]] + [int(v) for v in q.w_hh[tr]]
        for e, v in enumerate(z):
            j, b = divmod(e, cfg.beat)
            lanes[lane][lay.lane_offset(s * lay.slot_cycles + j, b)] = v
        bias[r] = int(q.bias[tr])
        unit, g = sch.unit_gate(r)
        if lay.aux and lay.aux.per == "row":
            aux[r] = cfg.cell.aux_value(q, sch.gate_order[g], unit)
    if lay.aux and lay.aux.per == "unit":
        aux = [cfg.cell.aux_value(q, None, u) for u in range(H)]
    return {"lanes": lanes, "bias": bias, "aux": aux, **init_images(cfg, init)}


def write_stream(cfg: Config, q: QParams) -> list[tuple[int, int]]:
    """``(address, raw value)`` pairs that load ``q`` through the write port."""
    lay = Layout.for_config(cfg)
    img = memory_images(cfg, q)
    out = []
    for lane, words in enumerate(img["lanes"]):
        out += [((lane << lay.offset_bits) | lay.lane_offset(a, b), words[lay.lane_offset(a, b)])
                for a in range(lay.lane_depth) for b in range(cfg.beat)]
    out += [((cfg.lanes << lay.offset_bits) | r, v) for r, v in enumerate(img["bias"])]
    if lay.aux:
        out += [(((cfg.lanes + 1) << lay.offset_bits) | r, v) for r, v in enumerate(img["aux"])]
    return out


def state_stream(cfg: Config, init) -> list[tuple[int, int]]:
    """``(address, raw value)`` pairs that load the initial state ``init`` (raw, the kind's state order,
    each ``(hidden,)``) through the write port."""
    lay = Layout.for_config(cfg)
    img = init_images(cfg, init)
    return [((region << lay.offset_bits) | u, v) for region, name, _ in init_regions(cfg)
            for u, v in enumerate(img[name])]
