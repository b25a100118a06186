"""The stepwise golden model: each x(t) the DUT accepted -> the ``o`` words expected for h(t).

It carries the kind's state from step to step (``model.golden.run`` on one step with ``state=``),
one per sequence of an interleaved cell (the vector's ``seq``), and restarts it where the cell does
(``rtl/cell.py``): on a vector whose element 0 has ``first``, and on a sequence's first vector after a
reset even without ``first`` (the cell then also sets ``o.first``).
A reset of the DUT calls :meth:`StepModel.reset`.  Alongside it keeps the float reference on the
dequantized parameters and the saturation counts since the last reset (the ``status`` bits).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model import golden, reference
from model.config import Config
from rtl.streams import output_word


@dataclass(frozen=True)
class Step:
    """One h(t) the model computed: where it is, the golden trace and the state it started from."""
    label: str
    sequence: int
    step: int
    trace: dict  # golden trace name -> (1, 1, ...) raw array
    prev: dict   # format tensor of each state ("hidden", "cell") -> (1, hidden) raw array

    def unit_trace(self, cfg: Config, e: int) -> dict:
        """The trace entries of unit ``e`` (one value per gate for wide entries; accumulators left
        out) and the state it started from (``<tensor>_prev``)."""
        H = cfg.hidden_size
        out = {k: [int(v) for v in self.trace[k][0, 0][e::H]]
               for k, fmt in cfg.cell.trace_formats().items() if fmt and k in self.trace}
        out.update({f"{k}_prev": [int(v[0, e])] for k, v in self.prev.items() if k in self.trace})
        return out


@dataclass(frozen=True)
class Expected:
    """One expected ``o`` transfer: its word and fields (``data``, ``last``, ``first``), the float
    reference of that element, and the step it belongs to."""
    word: int
    fields: dict
    ref: float
    step: Step
    element: int


class StepModel:
    """Golden model of the DUT as a stream: :meth:`step` per accepted x(t), :meth:`reset` per DUT reset;
    :meth:`load` when new parameters were written through ``w``."""

    def __init__(self, cfg: Config, q):
        self.cfg, self.oword = cfg, output_word(cfg)
        self.label = ""
        self.sequence = -1   # sequences started (numbered from 0 in a test)
        self.steps = 0
        self.load(q)
        self.reset()

    def load(self, q):
        self.q, self.p = q, q.dequantize(self.cfg)

    def reset(self):
        self.running = {}    # seq -> {"state", "state_f", "t", "sequence"} of its running sequence
        self.t = 0           # steps of the latest step's sequence so far
        self.saturated = {}  # requantization point -> saturations since reset

    def step(self, x: np.ndarray, first: int, seq: int = 0) -> list[Expected]:
        cfg, H = self.cfg, self.cfg.hidden_size
        start = bool(first) or seq not in self.running  # a sequence's first vector after reset starts it
        if start:
            self.sequence += 1
            self.running[seq] = {"state": None, "state_f": None, "t": 0, "sequence": self.sequence}
        cur = self.running[seq]
        prev = cur["state"] if cur["state"] is not None else golden.initial_state(cfg, 1)
        r = golden.run(self.q, x[None, None], cfg, state=cur["state"], trace=True)
        cur["state"] = r.state
        for k, v in r.saturated.items():
            self.saturated[k] = self.saturated.get(k, 0) + v
        cur["state_f"] = reference.run_step(self.p, (x * cfg.fmt("input").resolution)[None], cur["state_f"])
        st = Step(self.label, cur["sequence"], cur["t"], r.trace,
                  {t: s for (_, t), s in zip(cfg.cell.state, prev)})
        cur["t"] += 1
        self.t = cur["t"]
        self.steps += 1
        h, ref = r.outputs[0, 0], cur["state_f"][0][0]
        tag = {"seq": seq} if cfg.interleave > 1 else {}
        out = []
        for e in range(H):
            fields = {"data": int(h[e]), "last": int(e == H - 1), "first": int(start and e == 0), **tag}
            out.append(Expected(self.oword.pack(**fields), fields, float(ref[e]), st, e))
        return out
