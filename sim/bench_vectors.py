"""cocotb test that replays a vector set written by :mod:`hls.vectors` on the exported Verilog.

The point is to prove the portable files right: the inputs come from ``x.hex``
(their stream words must equal ``i_payload.hex``) and every ``o`` transfer is
compared with ``h.hex`` and ``o_payload.hex`` as integers, element by element,
step by step.  The golden model is not consulted here; the expected values are
the ones in the files.  Build the Verilog with the parameters read back from the
same files (``sim.runner.build(..., qparams=hls.vectors.load(dir).qparams)``).

Environment (besides the ``RNNKIT_*`` of :mod:`sim.cellbench.settings`):

================  ====================================================================
RNNKIT_VECTORS    the vector directory (holds ``manifest.json``)
RNNKIT_STALLS     1 (default): random valid/ready with long stalls on both streams; 0: none
================  ====================================================================
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import Event

from hls import vectors
from sim.cellbench.driver import InputDriver, stream_through
from sim.cellbench.harness import Bench
from sim.cellbench.monitors import OutputMonitor
from sim.cellbench.report import BenchFailure
from sim.cellbench.settings import rng_for
from sim.cellbench.stimulus import NO_STALLS, STALLS_IN, STALLS_OUT


class VectorBoard:
    """In-order scoreboard over the expected ``o`` transfers of a vector set."""

    def __init__(self, bench: Bench, vs: vectors.VectorSet, max_reports: int = 5):
        self.b, self.H = bench, bench.H
        self.expected = vs.h.reshape(-1)
        self.words = vs.o_payload
        self.steps = vs.manifest["steps"]
        self.total = len(self.expected)
        self.n = self.n_bad = 0
        self.mismatches: list[dict] = []
        self.max_reports = max_reports
        self.done = Event()
        if self.total == 0:
            self.done.set()

    def describe(self, i: int) -> str:
        if i >= self.total:
            return "nothing (all received)"
        s, rest = divmod(i, self.steps * self.H)
        t, e = divmod(rest, self.H)
        return f"sequence {s} step {t} element {e}"

    def check(self, got: dict | None, cycle: int, raw: str = ""):
        """One ``o`` transfer (its fields, None if X/Z): value against h.hex, whole word against o_payload.hex."""
        i = self.n
        self.n += 1
        if i >= self.total:
            self._bad(f"unexpected extra o transfer {got} at cycle {cycle}")
        else:
            want = int(self.expected[i])
            word = None if got is None else self.b.oword.pack(**got)
            if got is None or got["data"] != want:
                shown = f"X/Z {raw}" if got is None else str(got)
                self._bad(f"{self.describe(i)}: h.hex has {want}, got {shown} at cycle {cycle}")
            elif word != int(self.words[i]):
                self._bad(f"{self.describe(i)}: o_payload.hex word {int(self.words[i]):#x} differs from the "
                          f"transfer {word:#x} ({got})")
        if self.n >= self.total:
            self.done.set()

    def _bad(self, text: str):
        self.n_bad += 1
        if len(self.mismatches) < self.max_reports:
            self.mismatches.append(text)
            self.b.log.error("MISMATCH %s", text)


@cocotb.test()
async def test_vectors(dut):
    """Every h(t) element of the vector set, bit-exact, driven from and checked against the hex files."""
    b = Bench(dut, "test_vectors")
    vdir = os.environ.get("RNNKIT_VECTORS")
    if not vdir:
        raise BenchFailure("RNNKIT_VECTORS is not set: name the vector directory written by make vectors")
    vs = vectors.load(vdir)
    vs.check_config(b.cfg)
    stalls = os.environ.get("RNNKIT_STALLS", "1") == "1"
    seqs = [np.asarray(x) for x in vs.x]
    problems = []
    words = InputDriver(b, seqs, NO_STALLS, None).words
    if [int(w) for w in vs.i_payload] != words:
        k = next((k for k, (a, w) in enumerate(zip(vs.i_payload, words)) if int(a) != w),
                 min(len(words), len(vs.i_payload)))
        problems.append(f"i_payload.hex differs from the bench's packing of x.hex at word {k} "
                        f"({len(vs.i_payload)} words in the file, {len(words)} packed)")
    await b.start()
    sb = VectorBoard(b, vs)
    b.spawn(OutputMonitor(b, sb.check).run())
    try:
        await stream_through(b, "vectors", seqs, STALLS_IN if stalls else NO_STALLS,
                             STALLS_OUT if stalls else NO_STALLS, rng_for(b.s.seed, b.test, 1),
                             rng_for(b.s.seed, b.test, 2), sb.done.wait(),
                             lambda: f"received {sb.n} of {sb.total} o transfers, next expected {sb.describe(sb.n)}")
    except BenchFailure as e:
        problems.append(str(e))
    b.stop()
    if sb.n_bad:
        problems.append(f"{sb.n_bad} mismatches against the vector files; first:\n" + "\n".join(sb.mismatches))
    if sb.n != sb.total:
        problems.append(f"received {sb.n} of {sb.total} o transfers")
    if b.violations:
        problems.append("protocol violations: " + "; ".join(b.violations[:5]))
    entry = {"config": b.cfg.name, "vectors": str(vdir), "sequences": len(seqs), "steps": vs.manifest["steps"],
             "stalls": stalls, "compared": sb.n, "mismatches": sb.n_bad, "first_mismatches": sb.mismatches,
             "i_words": len(words), "sim_cycles": b.cycle() - b.c0, "passed": not problems, "problems": problems}
    if b.s.report:
        Path(b.s.report).write_text(json.dumps({"test_vectors": entry}, indent=1))
    b.log.info("test_vectors: %d o transfers compared with %s, %d mismatches", sb.n, vdir, sb.n_bad)
    if problems:
        raise BenchFailure("test_vectors: " + "\n".join(problems))
