"""The cocotb tests of the network bench (``sim.runner.NETWORK_MODULE``).

``test_network``: sequences of different lengths back to back, random valid/ready on ``i`` and ``o``;
bit-exact on every layer (through the taps) and on the output (the last layer's h, or the logits and
classes); the status bits all 0.  ``test_network_state``: a random initial state written into every
cell through ``w``, a sequence under random valid/ready, then every cell's final state read back through
``state_addr`` / ``state_data``: bit-exact against the golden model started from that state.  ``test_network_cycles``: one sequence, no stalls; the first output
word leaves at ``NetworkCycleModel.latency(steps)`` cycles after the first x element, exactly.

Settings come from the ``RNNKIT_*`` environment as for the cell bench (:mod:`sim.cellbench.settings`):
``RNNKIT_CONFIG`` (a network file), ``RNNKIT_PARAM_SEED``, ``RNNKIT_SEED``, ``RNNKIT_SEQS``,
``RNNKIT_STEPS``, ``RNNKIT_REPORT``, ``RNNKIT_PROGRESS`` and ``RNNKIT_INPUTS`` (an ``.npz`` of raw
sequences to stream instead of random ones).
"""
from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from model.network import golden
from model.network.config import NetworkConfig
from model.network.cycles import NetworkCycleModel
from model.network.params import NetworkParams
from rtl import streams

PERIOD_NS = 10
DEFAULT_SEQS, DEFAULT_STEPS = 3, 6
_REPORT: dict = {}


class Env:
    def __init__(self):
        e = os.environ
        self.path = e.get("RNNKIT_CONFIG", "configs/networks/tiny_net.toml")
        self.ncfg = NetworkConfig.load(self.path)
        self.param_seed = int(e.get("RNNKIT_PARAM_SEED", "1"))
        self.seed = int(e.get("RNNKIT_SEED", "1"))
        self.seqs = int(e.get("RNNKIT_SEQS", "0")) or DEFAULT_SEQS
        self.steps = int(e.get("RNNKIT_STEPS", "0")) or DEFAULT_STEPS
        self.report = e.get("RNNKIT_REPORT")
        self.progress = e.get("RNNKIT_PROGRESS")
        self.inputs = e.get("RNNKIT_INPUTS") or None
        self.q = golden.quantize(NetworkParams.for_config(self.ncfg, self.param_seed), self.ncfg)

    def rng(self, test: str, stream: int):
        return np.random.default_rng([self.seed, zlib.crc32(test.encode()), stream])

    def sequences(self, test: str, lengths) -> list:
        if self.inputs:
            with np.load(self.inputs) as z:
                return [z[k].astype(np.int64) for k in z.files]
        f, rng = self.ncfg.layers[0].fmt("input"), self.rng(test, 0)
        return [rng.integers(f.min_int, f.max_int + 1, size=(T, self.ncfg.input_size)) for T in lengths]

    def say(self, line: str):
        if self.progress:
            with open(self.progress, "a") as f:
                f.write(line + "\n")


def expected(env: Env, seqs, state=None) -> dict:
    """Per tapped layer its h elements, and the output words (h elements, or (logit, class) pairs), in order;
    every sequence from ``state`` (per slot, raw, each ``(hidden,)``; None: the default)."""
    ncfg, taps, out = env.ncfg, {}, []
    s0 = None if state is None else [tuple(np.asarray(v)[None] for v in s) for s in state]
    results = [golden.run(env.q, x[None], ncfg, state=s0) for x in seqs]
    tapped = range(ncfg.num_layers - (0 if ncfg.head else 1))
    for k in tapped:
        taps[k] = [int(v) for r in results for v in r.outputs[k].reshape(-1)]
    classes = []
    for r in results:
        if ncfg.head is None:
            y = r.outputs[-1][:, -1:] if ncfg.outputs == "last" else r.outputs[-1]
            out += [int(v) for v in y.reshape(-1)]
        else:  # logits of the last step, or of every step (head.every_step)
            lg, cl = r.logits.reshape(-1, ncfg.head.classes), np.asarray(r.classes).reshape(-1)
            out += [(int(v), int(c)) for row, c in zip(lg, cl) for v in row]
            classes += [int(c) for c in cl]
    return {"taps": taps, "out": out, "classes": classes if ncfg.head else None, "final": results[-1].state}


async def stream(dut, env: Env, test: str, seqs, in_idle: float, out_stall: float, state=None) -> dict:
    """Drive ``seqs`` through the DUT and record every transfer; returns what came out and when.  The
    expected values start every sequence from ``state`` (see :func:`expected`)."""
    ncfg = env.ncfg
    iw = streams.layer_word(ncfg.layers[0].fmt("input"))
    ow = streams.head_word(ncfg.head) if ncfg.head else streams.layer_word(ncfg.layers[-1].fmt("hidden"))
    tapped = range(ncfg.num_layers - (0 if ncfg.head else 1))
    tw = {k: streams.Word((streams.Field("valid", 1), streams.Field("ready", 1),
                           *streams.layer_word(ncfg.layers[k].fmt("hidden")).fields)) for k in tapped}
    words = [iw.pack(**w) for w in _input_words(seqs)]
    want = expected(env, seqs, state)
    n_out = len(want["out"])
    cm = NetworkCycleModel.for_config(ncfg)
    budget = 8 * sum(cm.latency(len(x)) for x in seqs) + 20 * (len(words) + n_out) + 5000
    rin, rout = env.rng(test, 1), env.rng(test, 2)
    got = {"out": [], "out_cycles": [], "in_cycles": [], "taps": {k: [] for k in tapped}}
    k_in, valid, c = 0, False, 0
    t0 = time.perf_counter()
    while len(got["out"]) < n_out and c < budget:
        await RisingEdge(dut.clk)
        c += 1
        if not valid and k_in < len(words) and not (in_idle and rin.random() < in_idle):
            dut.i__payload.value = words[k_in]
            valid = True
        dut.i__valid.value = int(valid)
        dut.o__ready.value = int(not (out_stall and rout.random() < out_stall))
        await ReadOnly()
        if valid and dut.i__ready.value == 1:
            got["in_cycles"].append(c)
            k_in += 1
            valid = False
        if dut.o__valid.value == 1 and dut.o__ready.value == 1:
            f = ow.unpack(int(dut.o__payload.value))
            got["out"].append((f["data"], f["cls"]) if ncfg.head else f["data"])
            got["out_cycles"].append(c)
        for k in tapped:
            v = str(getattr(dut, f"tap{k}").value)  # MSB first; valid and ready are the two low bits
            if v[-2:] == "11":
                if any(ch not in "01" for ch in v):
                    got.setdefault("xz", []).append(f"cycle {c}: tap{k} transfers a word with X/Z bits: {v}")
                else:
                    got["taps"][k].append(tw[k].unpack(int(v, 2))["data"])
        if c % 5000 == 0:
            env.say(f"{test}: cycle {c}, {len(got['out'])}/{n_out} output words, {time.perf_counter() - t0:.1f} s")
    await RisingEdge(dut.clk)
    dut.i__valid.value = 0
    got["cycles"], got["budget"], got["want"] = c, budget, want
    return got


def _input_words(seqs):
    for x in seqs:
        T, n = len(x), len(x[0])
        for t, vec in enumerate(x):
            for e, v in enumerate(vec):
                yield {"data": int(v), "last": int(e == n - 1), "first": int(t == 0 and e == 0),
                       "end": int(t == T - 1 and e == n - 1)}


def compare(got: dict, env: Env) -> tuple[list, dict]:
    """Problems found and the counts for the report."""
    want, problems = got["want"], list(got.get("xz", [])[:3])
    if len(got["out"]) < len(want["out"]):
        problems.append(f"{len(got['out'])} of {len(want['out'])} output words within {got['budget']} cycles "
                        f"(a deadlock or a lost element)")
    pairs = [("output", got["out"], want["out"])] + [(f"layer {k}", got["taps"][k], want["taps"][k])
                                                      for k in want["taps"]]
    compared = mism = 0
    for name, g, w in pairs:
        n = min(len(g), len(w))
        bad = [i for i in range(n) if g[i] != w[i]]
        compared += n
        mism += len(bad)
        if bad:
            i = bad[0]
            problems.append(f"{name}: {len(bad)} of {n} elements differ; first at {i}: hardware {g[i]}, golden {w[i]}")
        if len(g) != len(w) and name != "output":
            problems.append(f"{name}: {len(g)} elements transferred, golden has {len(w)}")
    return problems, {"compared": compared, "mismatches": mism}


def status(dut, ncfg) -> dict:
    from rtl.network import address_model  # noqa: PLC0415  (the names of the status bits)
    names = list(address_model(ncfg).status.shape().members)
    u = dut.status.value.to_unsigned()
    return {n: (u >> k) & 1 for k, n in enumerate(names)}


async def start(dut):
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.w__valid.value = 0
    dut.state_addr.value = 0
    dut.rst.value = 1
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0


def finish(env: Env, test: str, entry: dict, problems: list):
    entry["problems"] = problems
    _REPORT[test] = entry
    if env.report:
        Path(env.report).write_text(json.dumps(_REPORT, indent=1) + "\n")
    env.say(f"{test}: {'PASS' if not problems else 'FAIL'}")
    assert not problems, "\n".join(problems)


@cocotb.test()
async def test_network(dut):
    """Random valid/ready, sequences of different lengths back to back: bit-exact per layer and at the
    output; no status bit set."""
    env = Env()
    await start(dut)
    lengths = env.rng("test_network", 3).integers(1, env.steps + 1, size=env.seqs).tolist()
    seqs = env.sequences("test_network", lengths)
    got = await stream(dut, env, "test_network", seqs, in_idle=0.3, out_stall=0.3)
    problems, counts = compare(got, env)
    st = status(dut, env.ncfg)
    set_bits = [k for k, v in st.items() if v]
    if set_bits:
        problems.append(f"status bits set: {', '.join(set_bits)}")
    hw_classes = None
    if env.ncfg.head:
        C = env.ncfg.head.classes
        hw_classes = [got["out"][k * C][1] for k in range(len(got["out"]) // C)]
    finish(env, "test_network", {**counts, "sequences": len(seqs), "steps": int(sum(len(x) for x in seqs)),
                                 "cycles": got["cycles"], "status": st, "classes": hw_classes,
                                 "golden_classes": got["want"]["classes"]}, problems)


def final_state_words(ncfg, final) -> list:
    """The words :meth:`rtl.network.Network.state_reads` reads back for the golden model's final state
    ``final`` (a batch of one): per cell h of each unit, then the unit state of each unit."""
    slots = ncfg.slots()
    per_slot = final if isinstance(final, list) else [tuple(s[k] for s in final) for k in range(len(slots))]
    want = []
    for (_, _, c), s in zip(slots, per_slot):
        k = next(j for j, (_, t) in enumerate(c.cell.state) if t == c.cell.unit_state)
        want += [int(v) for v in s[0][0]] + [int(v) for v in s[k][0]]
    return want


async def write_state(dut, net, state):
    """Write ``state`` (per cell, raw) into the cells' initial-state memories through ``w``, one word a cycle."""
    ww = net.write_word()
    for addr, value in net.state_writes(state):
        await RisingEdge(dut.clk)
        dut.w__payload.value = ww.pack(addr=addr, data=int(value))
        dut.w__valid.value = 1
    await RisingEdge(dut.clk)
    dut.w__valid.value = 0


@cocotb.test()
async def test_network_state(dut):
    """A random initial state in every cell (written through w), one sequence under random valid/ready:
    bit-exact from that state, and every cell's final state read back equals the golden model's."""
    from rtl.network import address_model  # noqa: PLC0415  (the address maps of w and of the state readout)
    env = Env()
    ncfg, net = env.ncfg, address_model(env.ncfg)
    await start(dut)
    rng = env.rng("test_network_state", 4)
    state = [tuple(rng.integers(c.fmt(t).min_int // 2, c.fmt(t).max_int // 2 + 1, size=c.hidden_size)
                   for _, t in c.cell.state) for _, _, c in ncfg.slots()]
    await write_state(dut, net, state)
    seqs = env.sequences("test_network_state", [env.steps])[:1]
    got = await stream(dut, env, "test_network_state", seqs, in_idle=0.3, out_stall=0.3, state=state)
    problems, counts = compare(got, env)
    await ClockCycles(dut.clk, 8)  # the last step's state written
    read = []
    for a in net.state_reads():
        dut.state_addr.value = a
        await RisingEdge(dut.clk)
        await RisingEdge(dut.clk)
        read.append(dut.state_data.value.to_signed())
    want = final_state_words(ncfg, got["want"]["final"])
    bad = [i for i, (g, w) in enumerate(zip(read, want)) if g != w]
    if bad:
        problems.append(f"final state: {len(bad)} of {len(want)} words differ; first at readout address "
                        f"{net.state_reads()[bad[0]]}: hardware {read[bad[0]]}, golden {want[bad[0]]}")
    st = status(dut, ncfg)
    if any(st.values()):
        problems.append(f"status bits set: {', '.join(k for k, v in st.items() if v)}")
    default = env.q.initial_state or [tuple(np.zeros(c.hidden_size, np.int64) for _ in c.cell.state)
                                      for _, _, c in ncfg.slots()]
    await write_state(dut, net, default)  # the next test starts from the built-in state again
    finish(env, "test_network_state", {**counts, "state_words": len(want), "state_mismatches": len(bad)}, problems)


@cocotb.test()
async def test_network_cycles(dut):
    """One sequence, no stalls: bit-exact, and the first output word at exactly the cycle model's latency."""
    env = Env()
    await start(dut)
    seqs = env.sequences("test_network_cycles", [env.steps])[:1]
    got = await stream(dut, env, "test_network_cycles", seqs, in_idle=0.0, out_stall=0.0)
    problems, counts = compare(got, env)
    cm = NetworkCycleModel.for_config(env.ncfg)
    model = cm.latency(len(seqs[0]))
    measured = got["out_cycles"][0] - got["in_cycles"][0] if got["out_cycles"] else None
    if measured != model:
        problems.append(f"first output after {measured} cycles; the cycle model says {model}")
    finish(env, "test_network_cycles", {**counts, "steps": len(seqs[0]), "first_output_latency": measured,
                                        "first_output_latency_model": model, "cycles_per_step_model":
                                        cm.cycles_per_step, "balance": list(cm.balance)}, problems)
