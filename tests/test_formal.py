"""Formal proofs (verify.formal): every cell kind passes every property set at the smallest size, and
designs broken on purpose (valid dropped before ready, every element sent twice) fail the set that
should catch them, so the properties have teeth.

The smallest size is input 1, hidden 1, lanes 1; each top's BMC depth runs a few cycles past its
first output (``model.cycles``), so the output properties are met by real transfers.
"""
from pathlib import Path

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring

from model.config import Config
from model.cycles import CycleModel
from rtl.cell import RecurrentCell
from verify import formal
from verify.formal_harness import PROPERTY_SETS

ROOT = Path(__file__).resolve().parent.parent
BASE = Config.load(ROOT / "configs" / "tiny.toml")
SMALLEST = (1, 1, 1)


RESET_DEPTH = 20


def depth(cfg):
    """A few cycles past the first output: the first element moves, or waits and is held."""
    return CycleModel.for_config(cfg).first_output_latency + 4


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("formal")


TOPS = formal.tops(BASE, size=SMALLEST)
IDS = [cfg.name for _, cfg in TOPS]


@pytest.mark.parametrize("label,cfg", TOPS, ids=IDS)
def test_every_kind_passes_the_output_properties(label, cfg, out):
    """Stream, count, errors and memory sets, past the first output."""
    r = formal.run_task(label, cfg, [p for p in PROPERTY_SETS if p != "reset"], "bmc", depth(cfg), out)
    assert r.status == "PASS", r.detail


@pytest.mark.parametrize("label,cfg", TOPS, ids=IDS)
def test_every_kind_passes_the_sequence_start_properties(label, cfg, out):
    """The reset set over the first step's operands (its solver time grows steeply past 20 cycles;
    ``make formal`` runs it deeper)."""
    r = formal.run_task(label, cfg, ("reset",), "bmc", RESET_DEPTH, out)
    assert r.status == "PASS", r.detail


class DropsValid(wiring.Component):
    """A cell whose ``o.valid`` drops every other cycle while ``ready`` is low (a stream-rule fault)."""

    def __init__(self, cfg):
        self.inner = RecurrentCell(cfg)
        self.out_depth, self.layout = self.inner.out_depth, self.inner.layout
        super().__init__(self.inner.signature.flip().flip())

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = c = self.inner
        blink = Signal()
        m.d.sync += blink.eq(~blink)
        wiring.connect(m, wiring.flipped(self.i), c.i)
        wiring.connect(m, wiring.flipped(self.w), c.w)
        m.d.comb += [self.status.eq(c.status), self.o.payload.eq(c.o.payload),
                     self.o.valid.eq(c.o.valid & (blink | self.o.ready)), c.o.ready.eq(self.o.ready & self.o.valid)]
        return m


def test_valid_dropped_before_ready_fails_the_stream_proof(out):
    label, cfg = formal.tops(BASE, ["gru"], SMALLEST)[0]
    r = formal.run_task(label + " dropping valid", cfg, ("stream",), "bmc", depth(cfg), out / "drops", cell=DropsValid(cfg))
    assert r.status == "FAIL" and "o.valid dropped" in r.detail, r


class Duplicates(wiring.Component):
    """A cell whose every ``o`` element goes out twice (the queue popped on every second transfer)."""

    def __init__(self, cfg):
        self.inner = RecurrentCell(cfg)
        self.out_depth, self.layout = self.inner.out_depth, self.inner.layout
        super().__init__(self.inner.signature.flip().flip())

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = c = self.inner
        again = Signal()
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += again.eq(~again)
        wiring.connect(m, wiring.flipped(self.i), c.i)
        wiring.connect(m, wiring.flipped(self.w), c.w)
        m.d.comb += [self.status.eq(c.status), self.o.payload.eq(c.o.payload), self.o.valid.eq(c.o.valid),
                     c.o.ready.eq(self.o.ready & again)]
        return m


def test_duplicated_element_fails_the_count_proof(out):
    label, cfg = formal.tops(BASE, ["lstm"], SMALLEST)[0]
    r = formal.run_task(label + " duplicating", cfg, ("count",), "bmc", depth(cfg), out / "dup", cell=Duplicates(cfg))
    assert r.status == "FAIL" and "nobody owed" in r.detail, r


NETWORK_TOPS = formal.network_tops(ROOT / "configs" / "tiny.toml", SMALLEST)


@pytest.mark.parametrize("label,ncfg,depth", NETWORK_TOPS, ids=[t[0] for t in NETWORK_TOPS])
def test_networks_pass_to_their_first_output(label, ncfg, depth, out):
    """A bidirectional layer, and a layer with a head: stream, errors and memory hold to a few cycles past
    the first output (the network cycle model's latency), and the cover shows an o transfer within that
    depth, so the stream property is met by real transfers."""
    from verify.formal_harness import NetworkHarness
    props = ("stream", "errors", "memory")
    r = formal.run_task(label, ncfg, props, "bmc", depth, out, harness=NetworkHarness(ncfg, props))
    assert r.status == "PASS", r.detail
    r = formal.run_task(label, ncfg, ("reach",), "cover", depth, out, harness=NetworkHarness(ncfg, ("reach",)))
    assert r.status == "PASS", r.detail


def test_a_network_whose_output_comes_later_is_not_reached(out):
    """The cover has teeth: at a depth short of the first output the o transfer is unreachable."""
    from verify.formal_harness import NetworkHarness
    label, ncfg, depth = NETWORK_TOPS[0]
    r = formal.run_task(label, ncfg, ("reach",), "cover", depth - formal.NETWORK_MARGIN - 4, out / "short",
                        harness=NetworkHarness(ncfg, ("reach",)))
    assert r.status != "PASS"
