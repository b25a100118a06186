"""The lane weight memory split into block-RAM banks (rtl.mac_lane.banks): the split itself, and a lane of
several banks read at every address and written in a later bank, in Amaranth's simulator."""
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

from model import latency
from model.config import Config
from model.datapath import Datapath
from rtl.layout import Layout
from rtl.mac_lane import MacLane, bank_depth, banks

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("width,depth", [(1, 16384), (2, 8192), (3, 4096), (4, 4096), (8, 2048), (9, 2048),
                                         (10, 1024), (16, 1024), (18, 1024), (19, 512), (32, 512), (36, 512),
                                         (64, 512)])
def test_bank_depth_is_the_deepest_block_ram_shape_the_word_fits(width, depth):
    assert bank_depth(width) == depth


@pytest.mark.parametrize("depth,width,want", [
    (2825, 16, [1024, 1024, 777]),   # the default LSTM's lanes
    (1000, 16, [1000]),
    (1024, 16, [1024]),
    (1025, 16, [1024, 1]),
    (2825, 8, [2048, 777]),
    (1425, 32, [512, 512, 401]),     # beat = 2, 16-bit weights
    (600, 64, [512, 88]),
    (1, 16, [1]),
])
def test_banks_split_by_hand(depth, width, want):
    assert banks(depth, width) == want


@pytest.mark.parametrize("width", [0, -3, 2.0])
def test_bank_depth_refuses_a_width_that_is_not_a_positive_integer(width):
    with pytest.raises(ValueError, match="width must be a positive integer"):
        bank_depth(width)


def _lane_config(changes):
    return Config.load(CONFIGS / "default.toml").replace(**changes)


@pytest.mark.parametrize("changes", [{}, {"formats": {"weight": "s1.7"}}, {"beat": 2}],
                         ids=["16bit-3banks", "8bit-2banks", "beat2-3banks"])
def test_every_address_of_a_banked_lane_reads_its_image_and_a_write_lands_in_its_bank(changes):
    """Each word read alone as a one-chunk row with known operands: ``hold`` is its weights times the
    operands, for every address of every bank; then one weight written in the last bank (through the
    lane's write port) reads back, and its neighbours keep their values."""
    cfg = _lane_config(changes)
    lay, dp = Layout.for_config(cfg), Datapath.from_config(cfg)
    B, bb, ww = cfg.beat, lay.beat_bits, cfg.fmt("weight").width
    assert len(banks(lay.lane_depth, B * ww)) >= 2
    wf = cfg.fmt("weight")
    rng = np.random.default_rng(5)
    init = [int(v) for v in rng.integers(wf.min_int, wf.max_int + 1, lay.lane_offsets)]
    zw = max(cfg.fmt("input").width, cfg.fmt("hidden").width)
    zs = [3, -5][:B]  # element b's operand
    zword = sum((z & ((1 << zw) - 1)) << (b * zw) for b, z in enumerate(zs))
    dut = MacLane(cfg, init)
    word = lay.lane_depth - 2  # in the last bank
    new = wf.min_int if init[lay.lane_offset(word, B - 1)] != wf.min_int else wf.max_int
    reads = list(range(lay.lane_depth)) + [word - 1, word, word + 1]
    op = MacLane.OPERANDS
    got = []

    async def bench(ctx):
        ctx.set(dut.z, zword)
        ctx.set(dut.is_x, (1 << B) - 1)
        # the run-time write first: element beat - 1 of ``word``
        ctx.set(dut.wr_addr, lay.lane_offset(word, B - 1))
        ctx.set(dut.wr_data, new)
        ctx.set(dut.wr_en, 1)
        await ctx.tick()
        ctx.set(dut.wr_en, 0)
        n = len(reads)
        for t in range(n + dut.latency + 1):
            if t < n:
                ctx.set(dut.rd_addr, reads[t])
            u = t - op - 1  # the controls' stage
            on = 0 <= u < n
            for sig in (dut.valid, dut.first, dut.last):
                ctx.set(sig, int(on))
            await ctx.tick()
            if 0 <= u - latency.tree(B) < n:  # the row's sum, after the adder tree
                await ctx.delay(1e-9)
                got.append(ctx.get(dut.hold))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    def expect(a, image):
        return sum(image[lay.lane_offset(a, b)] * z for b, z in enumerate(zs)) << dp.x_shift

    image = list(init)
    image[lay.lane_offset(word, B - 1)] = new
    assert len(got) == len(reads)
    for a, g in zip(reads, got):
        assert g == expect(a, image), a
    assert expect(word, image) != expect(word, init)
