"""Where each quantized parameter lives in the cell's memories, and the write-port address map.

Rows run unit-major in hardware gate order ``o, i, f, g`` (``model.cycles.HW_GATE_ORDER``):
hardware row ``r = unit * 4 + hw_gate``.  In slot ``s`` lane ``l`` computes row
``s * lanes + l``; its weight memory holds, per slot, the ``input`` weights of
``W_ih`` then the ``hidden`` weights of ``W_hh`` for that row.

Write-port address: ``region << offset_bits | offset``, with regions
``0 .. lanes-1`` the lane weight memories, ``lanes`` the bias memory (by row),
``lanes + 1`` the peephole memory (by row; 0 for ``g`` rows).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.config import Config
from model.cycles import HW_GATE_ORDER
from model.params import QParams

PEEP_ROW = {0: 0, 1: 1, 3: 2}  # PyTorch gate index -> row of w_peep (i, f, o)


@dataclass(frozen=True)
class Layout:
    lanes: int
    slots: int
    slot_cycles: int
    rows: int
    offset_bits: int
    addr_bits: int
    peephole: bool

    @classmethod
    def for_config(cls, cfg: Config) -> "Layout":
        k = cfg.input_size + cfg.hidden_size
        slots = -(-cfg.rows // cfg.lanes)
        depth = max(slots * k, cfg.rows)
        off = max(1, (depth - 1).bit_length())
        regions = cfg.lanes + 2
        return cls(cfg.lanes, slots, k, cfg.rows, off, off + (regions - 1).bit_length(),
                   cfg.kind == "lstm" and cfg.peephole != "none")

    @property
    def lane_depth(self) -> int:
        return self.slots * self.slot_cycles

    def torch_row(self, r: int, hidden: int) -> int:
        unit, g = divmod(r, 4)
        return HW_GATE_ORDER[g] * hidden + unit


def memory_images(cfg: Config, q: QParams | None) -> dict:
    """Initial contents: ``lanes`` (list of per-lane weight lists), ``bias``, ``peep`` (by hw row)."""
    lay = Layout.for_config(cfg)
    H, I = cfg.hidden_size, cfg.input_size
    lanes = [[0] * lay.lane_depth for _ in range(cfg.lanes)]
    bias = [0] * cfg.rows
    peep = [0] * cfg.rows
    if q is None:
        return {"lanes": lanes, "bias": bias, "peep": peep}
    for r in range(cfg.rows):
        s, lane = divmod(r, cfg.lanes)
        tr = lay.torch_row(r, H)
        base = s * lay.slot_cycles
        lanes[lane][base:base + I] = [int(v) for v in q.w_ih[tr]]
        lanes[lane][base + I:base + I + H] = [int(v) for v in q.w_hh[tr]]
        bias[r] = int(q.bias[tr])
        g = HW_GATE_ORDER[r % 4]
        if lay.peephole and g in PEEP_ROW:
            peep[r] = int(q.w_peep[PEEP_ROW[g], r // 4])
    return {"lanes": lanes, "bias": bias, "peep": peep}


def write_stream(cfg: Config, q: QParams) -> list[tuple[int, int]]:
    """``(address, raw value)`` pairs that load ``q`` through the write port."""
    lay = Layout.for_config(cfg)
    img = memory_images(cfg, q)
    out = []
    for lane, words in enumerate(img["lanes"]):
        out += [((lane << lay.offset_bits) | a, v) for a, v in enumerate(words)]
    out += [((cfg.lanes << lay.offset_bits) | r, v) for r, v in enumerate(img["bias"])]
    if lay.peephole:
        out += [(((cfg.lanes + 1) << lay.offset_bits) | r, v) for r, v in enumerate(img["peep"])]
    return out
