"""The cocotb tests of the AXI bench (``sim.runner.AXI_MODULE``), on ``rnn_axi`` (:mod:`rtl.axi`).

``test_axi_stream``: sequences of different lengths through cocotbext-axi's ``AxiStreamSource`` and
``AxiStreamSink``, both with random pauses; every output element (and class) bit-exact against
:mod:`model.network.golden`; the ``AxiStreamMonitor`` on ``s_axis`` saw every vector once, in order; the
identification and configuration registers read what :class:`rtl.regmap.RegisterMap` says, the counters
count what was sent, no status bit is set.  ``test_axi_reload_and_state``: other parameters and a random
initial state written through the AXI4-Lite parameter window, a sequence bit-exact against the golden model
of those, the final state read back through the state window; then the built-in parameters restored.
``test_axi_flags``: every status bit that an input can set is set by one (saturation bits exactly where the
golden model saturates, with extreme parameters loaded for it), read, cleared by writing 1, read again; bus
errors answer SLVERR and change nothing.

Settings: the ``RNNKIT_*`` environment of :mod:`sim.netbench.tests` (its :class:`~sim.netbench.tests.Env`).
"""
from __future__ import annotations

import dataclasses

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiResp, AxiStreamBus, AxiStreamFrame, AxiStreamMonitor,
                           AxiStreamSink, AxiStreamSource)

from model.network import golden
from model.network.params import NetworkParams
from rtl import streams
from rtl.gates import sat_points
from rtl.layout import Layout
from rtl.network import address_model
from rtl.regmap import ID_MAGIC, MAP_VERSION, RegisterMap
from rtl.write_port import regions
from sim.netbench.tests import PERIOD_NS, Env, expected, final_state_words, finish

#: Simulated time allowed for a test (ns); a hang fails instead of running forever.
TIMEOUT_NS = 200_000_000


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _pauses(rng, p: float):
    while True:
        yield int(rng.random() < p)


class Bench:
    """The DUT with cocotbext-axi on its three ports and the register map to address it."""

    def __init__(self, dut, env: Env):
        self.dut, self.env = dut, env
        self.net = address_model(env.ncfg)
        self.map = RegisterMap.for_network(self.net)
        self.iw, self.ow = streams.axis_in_word(env.ncfg), streams.axis_out_word(env.ncfg)
        self.ib, self.ob = self.iw.field("data").width, self.ow.field("data").width
        clk, rst = dut.clk, dut.rst
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), clk, rst, byte_size=self.ib)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), clk, rst, byte_size=self.ob)
        self.monitor = AxiStreamMonitor(AxiStreamBus.from_prefix(dut, "s_axis"), clk, rst, byte_size=self.ib)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), clk, rst)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def pauses(self, test: str, p_in: float, p_out: float):
        self.source.set_pause_generator(_pauses(self.env.rng(test, 11), p_in) if p_in else None)
        self.sink.set_pause_generator(_pauses(self.env.rng(test, 12), p_out) if p_out else None)

    # ---- registers ------------------------------------------------------------------------------
    async def read(self, addr: int) -> tuple[int, bool]:
        r = await self.axil.read(addr, 4)
        return int.from_bytes(r.data, "little"), r.resp == AxiResp.OKAY

    async def reg(self, name: str) -> int:
        v, ok = await self.read(self.map.register(name).offset)
        assert ok, f"reading {name} answered an error"
        return v

    async def write(self, addr: int, value: int) -> bool:
        r = await self.axil.write(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))
        return r.resp == AxiResp.OKAY

    async def load(self, pairs) -> list:
        """Write ``(w address, value)`` pairs through the parameter window; the addresses answered with an error."""
        return [a for a, v in pairs if not await self.write(self.map.param_address(a), int(v))]

    async def status(self) -> dict:
        out = {}
        for r in self.map.flag_registers:
            out.update(r.decode(await self.reg(r.name)))
        return out

    async def clear(self, bit: str):
        reg, b = self.map.status_location(bit)
        assert await self.write(self.map.register(reg).offset, 1 << b), f"clearing {bit} answered an error"

    # ---- streams ---------------------------------------------------------------------------------
    async def send(self, seqs):
        mask = (1 << self.ib) - 1
        for x in seqs:
            T = len(x)
            for t, vec in enumerate(x):
                user = [int(t == 0 and e == 0) | (int(t == T - 1) << 1) for e in range(len(vec))]
                await self.source.send(AxiStreamFrame([int(v) & mask for v in vec], tuser=user))

    async def receive(self, n_elements: int) -> list:
        """Output elements as ``(value, class)`` (a head) or values, until ``n_elements`` arrived."""
        out = []
        while len(out) < n_elements:
            f = await self.sink.recv()
            users = f.tuser if isinstance(f.tuser, list) else [f.tuser] * len(f.tdata)
            for v, u in zip(f.tdata, users):
                d = _signed(v, self.ob)
                out.append((d, int(u)) if self.env.ncfg.head else d)
        return out

    async def run(self, seqs, state=None) -> tuple[list, dict]:
        """Stream ``seqs`` and collect the outputs; ``(got, want)`` with ``want`` from :func:`expected`."""
        want = expected(self.env, seqs, state)
        send = cocotb.start_soon(self.send(seqs))
        got = await with_timeout(self.receive(len(want["out"])), TIMEOUT_NS, "ns")
        await send
        return got, want


def _compare(name: str, got: list, want: list) -> list:
    if got == want:
        return []
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    first = f"; first at {bad[0]}: hardware {got[bad[0]]}, golden {want[bad[0]]}" if bad else ""
    return [f"{name}: {len(bad)} of {len(want)} elements differ, {len(got)} received{first}"]


async def start(dut, env) -> Bench:
    b = Bench(dut, env)
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await b.reset()
    return b


def _lengths(env, test):
    return env.rng(test, 3).integers(1, env.steps + 1, size=env.seqs).tolist()


@cocotb.test()
async def test_axi_stream(dut):
    """Random pauses on both streams: bit-exact outputs, every input vector seen once in order, registers."""
    env = Env()
    b = await start(dut, env)
    problems = []
    ident = {n: await b.reg(n) for n in ("ID", "VERSION", "CONFIG_ID")}
    if ident["ID"] != 0x524E4E4B or ident["ID"] != ID_MAGIC or ident["VERSION"] != MAP_VERSION:
        problems.append(f"ID/VERSION read {ident}")
    for r in b.map.registers:
        if r.role == "const" and await b.reg(r.name) != r.value:
            problems.append(f"{r.name} reads {await b.reg(r.name):#x}, the map says {r.value:#x}")
    b.pauses("test_axi_stream", 0.3, 0.3)
    seqs = env.sequences("test_axi_stream", _lengths(env, "test_axi_stream"))
    got, want = await b.run(seqs)
    problems += _compare("output", got, want["out"])
    seen = []
    while not b.monitor.empty():
        seen.append([_signed(v, b.ib) for v in (await b.monitor.recv()).tdata])
    sent = [[int(v) for v in vec] for x in seqs for vec in x]
    if seen != sent:
        problems.append(f"the s_axis monitor saw {len(seen)} vectors, {len(sent)} were sent (or out of order)")
    counts = {n: await b.reg(n) for n in ("STEPS", "SEQUENCES", "OUTPUTS")}
    n_out = len(want["out"]) // (env.ncfg.head.classes if env.ncfg.head else env.ncfg.output_size())
    if counts != {"STEPS": len(sent), "SEQUENCES": len(seqs), "OUTPUTS": n_out}:
        problems.append(f"counters {counts}; sent {len(sent)} vectors in {len(seqs)} sequences, {n_out} outputs")
    lo, hi = await b.reg("CYCLES_LO"), await b.reg("CYCLES_HI")
    if not 0 < lo + (hi << 32) < TIMEOUT_NS:
        problems.append(f"CYCLES reads {lo + (hi << 32)}")
    st = await b.status()
    if any(st.values()):
        problems.append(f"status bits set: {', '.join(k for k, v in st.items() if v)}")
    finish(env, "test_axi_stream", {"compared": len(want["out"]), "sequences": len(seqs), "vectors": len(sent),
                                    "counters": counts, "classes": want["classes"]}, problems)


def _random_state(env, rng):
    return [tuple(rng.integers(c.fmt(t).min_int // 2, c.fmt(t).max_int // 2 + 1, size=c.hidden_size)
                  for _, t in c.cell.state) for _, _, c in env.ncfg.slots()]


def _default_state(env):
    return env.q.initial_state or [tuple(np.zeros(c.hidden_size, np.int64) for _ in c.cell.state)
                                   for _, _, c in env.ncfg.slots()]


@cocotb.test()
async def test_axi_reload_and_state(dut):
    """Other parameters and a random initial state through AXI4-Lite; bit-exact; final state read back."""
    env = Env()
    b = await start(dut, env)
    b.pauses("test_axi_reload_and_state", 0.2, 0.2)
    baked, other = env.q, golden.quantize(NetworkParams.for_config(env.ncfg, env.param_seed + 1), env.ncfg)
    state = _random_state(env, env.rng("test_axi_reload_and_state", 4))
    refused = await b.load(b.net.param_writes(other)) + await b.load(b.net.state_writes(state))
    problems = [f"{len(refused)} parameter writes answered an error"] if refused else []
    seqs = env.sequences("test_axi_reload_and_state", [env.steps])[:1]
    env.q = other
    got, want = await b.run(seqs, state=state)
    env.q = baked
    problems += _compare("output after reload", got, want["out"])
    if got == expected(env, seqs, state)["out"]:
        problems.append("the outputs equal those of the built-in parameters: the reload had no effect")
    await ClockCycles(dut.clk, 8)
    read = []
    for a in b.net.state_reads():
        v, ok = await b.read(b.map.state_address(a))
        read.append(v if ok else None)
    width = len(b.net.state_data)
    read = [None if v is None else _signed(v, 32) for v in read]
    problems += _compare("final state", read, final_state_words(env.ncfg, want["final"]))
    if any(v is not None and not -(1 << (width - 1)) <= v < (1 << (width - 1)) for v in read):
        problems.append("a state word is not sign-extended from the state width")
    st = await b.status()
    if any(st.values()):
        problems.append(f"status bits set: {', '.join(k for k, v in st.items() if v)}")
    await b.load(b.net.param_writes(baked))
    await b.load(b.net.state_writes(_default_state(env)))
    finish(env, "test_axi_reload_and_state", {"param_writes": len(b.net.param_writes(other)),
                                              "state_words": len(read)}, problems)


def _extreme(q, ncfg):
    """``q`` with every weight at its format's largest magnitude (same sign): steps that saturate."""
    def big(w, f):
        return np.where(w >= 0, f.max_int, f.min_int).astype(np.int64)

    layers = [tuple(dataclasses.replace(p, w_ih=big(p.w_ih, ncfg.layers[k].fmt("weight")),
                                        w_hh=big(p.w_hh, ncfg.layers[k].fmt("weight"))) for p in layer)
              for k, layer in enumerate(q.layers)]
    head = q.head
    if head is not None:
        head = dataclasses.replace(head, weight=big(head.weight, ncfg.head.formats["weight"]))
    return golden.QNetwork(layers, head, q.initial_state)


async def _check_bit(b: Bench, bit: str, problems: list, observed: list):
    st = await b.status()
    if not st[bit]:
        problems.append(f"{bit} not set")
        return
    others = {k for k, v in st.items() if v and k != bit}
    await b.clear(bit)
    st = await b.status()
    if st[bit]:
        problems.append(f"{bit} still set after writing 1 to it")
    if {k for k, v in st.items() if v} != others:
        problems.append(f"clearing {bit} changed other bits")
    observed.append(bit)


@cocotb.test()
async def test_axi_flags(dut):
    """Each flag an input can set: set, read, cleared by writing 1; bus errors refused with SLVERR."""
    env = Env()
    ncfg = env.ncfg
    b = await start(dut, env)
    problems, observed = [], []
    m = b.map

    # bus errors: an unmapped register, a read-only register, a read of the parameter window, a state address
    # no cell has; each SLVERR, ERRORS.bad_access set, and nothing changed
    bad_reg = 4 * len(m.registers)
    outcomes = [await b.write(bad_reg, 1), await b.write(m.register("ID").offset, 0),
                (await b.read(m.window("PARAMS").base))[1]]
    cells, words0 = len(m.state_valid), m.state_valid[0][1]
    no_cell = (cells << m.state_bits if cells < 1 << (m.state_addr_bits - m.state_bits)
               else words0 if words0 < 1 << m.state_bits else None)
    if no_cell is not None:
        outcomes.append((await b.read(m.state_address(no_cell)))[1])
    if any(outcomes):
        problems.append(f"a refused access answered OKAY: {outcomes}")
    if await b.reg("ID") != ID_MAGIC:
        problems.append("a write to ID changed it")
    await _check_bit(b, "bad_access", problems, observed)

    # write-port errors: a write-port address no memory has (a network target without a layer, a cell region
    # without a memory)
    holes = []
    targets = ncfg.num_layers + (1 if ncfg.head else 0)
    if targets < 1 << m.w_addr_bits >> b.net.sub_bits:
        holes.append(("err_addr", targets << b.net.sub_bits))
    cell_bits = [n for n in b.net.status.shape().members if n.endswith("_err_addr")]  # per cell, h_n order
    for name, (cfg, base) in zip(cell_bits, b.net.cell_targets()):
        lay = Layout.for_config(cfg)
        last = max(r for r, _ in regions(cfg))
        if last + 1 < 1 << (lay.addr_bits - lay.offset_bits):
            holes.append((name, base | ((last + 1) << lay.offset_bits)))
    for bit, addr in holes:
        if await b.load([(addr, 1)]):
            problems.append(f"the write to w address {addr} answered an error (the window holds it)")
        await _check_bit(b, bit, problems, observed)

    # busy: a parameter write (its own value) while a step is in flight
    seqs = env.sequences("test_axi_flags", [env.steps])[:1]
    want = expected(env, seqs)
    send = cocotb.start_soon(b.send(seqs))
    busy_bit = f"l0_{'f_' if ncfg.directions[0] == 2 else ''}err_busy"
    same = b.net.param_writes(env.q)[0]
    for _ in range(200):
        await b.load([same])
        reg, bi = m.status_location(busy_bit)
        if (await b.reg(reg)) >> bi & 1:
            break
    got = await with_timeout(b.receive(len(want["out"])), TIMEOUT_NS, "ns")
    await send
    problems += _compare("output with refused writes", got, want["out"])
    await _check_bit(b, busy_bit, problems, observed)

    # saturation: extreme weights, a sequence of extreme inputs; a bit is set exactly where the golden model
    # saturates (a layer's forward and reverse cells share the golden count)
    ext = _extreme(env.q, ncfg)
    await b.load(b.net.param_writes(ext))
    f = ncfg.layers[0].fmt("input")
    x = np.full((env.steps, ncfg.input_size), f.max_int, dtype=np.int64)
    x[1::2] = f.min_int
    env.q = ext
    got, want = await b.run([x])
    env.q = golden.quantize(NetworkParams.for_config(ncfg, env.param_seed), ncfg)
    problems += _compare("output with extreme weights", got, want["out"])
    sat = golden.run(ext, x[None], ncfg).saturated
    st = await b.status()
    for k, c in enumerate(ncfg.layers):
        for sbit, point in sat_points(c).items():
            names = [n for n in st if n.startswith(f"l{k}_") and n.endswith(sbit)]
            hw = any(st[n] for n in names)
            if hw != (sat[f"layer {k}"].get(point, 0) > 0):
                problems.append(f"layer {k} {sbit}: hardware {int(hw)}, golden saturated {sat[f'layer {k}'].get(point, 0)}")
            for n in names:
                if st[n]:
                    await _check_bit(b, n, problems, observed)
    if ncfg.head is not None:
        if bool(st["head_sat"]) != (sat["head"] > 0):
            problems.append(f"head_sat: hardware {st['head_sat']}, golden saturated {sat['head']}")
        if st["head_sat"]:
            await _check_bit(b, "head_sat", problems, observed)
    await b.load(b.net.param_writes(env.q))

    # a sequence longer than a bidirectional layer buffers
    if ncfg.bidirectional:
        k = ncfg.directions.index(2)
        longx = env.sequences("test_axi_flags_long", [ncfg.max_steps + 1])[:1]
        n = ncfg.head.classes if ncfg.head else (ncfg.max_steps * ncfg.output_size()
                                                 if ncfg.outputs == "every" else ncfg.output_size())
        await b.send(longx)
        await with_timeout(b.receive(n), TIMEOUT_NS, "ns")
        await _check_bit(b, f"l{k}_err_long", problems, observed)

    # framing: a vector whose tlast is on the wrong element (a bidirectional first layer counts elements itself
    # and has no framing check); then a reset to resynchronise
    if ncfg.directions[0] == 1:
        n = ncfg.input_size - 1 if ncfg.input_size > 1 else 2
        await b.source.send(AxiStreamFrame([0] * n, tuser=[1] + [0] * (n - 1)))
        await b.source.wait()
        await ClockCycles(dut.clk, 4)
        await _check_bit(b, "l0_err_framing", problems, observed)
    await b.reset()

    st = await b.status()
    finish(env, "test_axi_flags", {"observed_and_cleared": observed,
                                   "not_exercised": sorted(n for n in st if n not in observed)}, problems)
