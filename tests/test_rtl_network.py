"""The network gateware (rtl.network) in Amaranth's simulator: bit-exact against the network golden
model under random backpressure, sequences of different lengths back to back, weight reloads through
the network's write port, cycles per step and first-output latency equal to model.network.cycles."""
import tomllib

import numpy as np
import pytest
import torch

from model.network import NetworkConfig
from model.network import golden
from model.network.cycles import NetworkCycleModel
from rtl.layout import Layout
from rtl.network import Network
from sim import netsim

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
TINY = (ROOT / "configs" / "tiny.toml").read_text()
GRU = (ROOT / "configs" / "gru_small.toml").read_text()
HEAD = '[head]\nclasses = 3\nformats = { weight = "s2.8", bias = "s3.8", logits = "s4.6" }\n'


def _cfg(base, extra):
    return NetworkConfig.from_toml(tomllib.loads(base + "\n" + extra))


def _net(ncfg, seed):
    """Random float parameters for ``ncfg`` (PyTorch's initialization, a head if the config has one)."""
    torch.manual_seed(seed)
    from model.network import HeadParams, NetworkParams
    from model.params import CellParams
    layers = [tuple(CellParams.random(c.kind, c.input_size, c.hidden_size, seed=seed + 10 * k + d, scale=0.7,
                                      **c.options) for d in range(ncfg.directions[k]))
              for k, c in enumerate(ncfg.layers)]
    head = None
    if ncfg.head is not None:
        rng = np.random.default_rng(seed)
        head = HeadParams(rng.uniform(-1, 1, (ncfg.head.classes, ncfg.head.features)),
                          rng.uniform(-0.5, 0.5, ncfg.head.classes))
    return NetworkParams(layers, head)


def _seqs(ncfg, lengths, seed):
    f = ncfg.layers[0].fmt("input")
    rng = np.random.default_rng(seed)
    return [rng.integers(f.min_int // 2, f.max_int // 2, size=(T, ncfg.input_size)) for T in lengths]


def _expected(q, ncfg, seqs):
    """The o words the golden model predicts: logits (and class) per computed step, or h elements (of the
    last step only with network.outputs = "last")."""
    out = []
    for x in seqs:
        r = golden.run(q, x[None], ncfg)
        if ncfg.head is None:
            y = r.outputs[-1][:, -1:] if ncfg.outputs == "last" else r.outputs[-1]
            out += [int(v) for v in y.reshape(-1)]
        else:
            lg = r.logits.reshape(-1, ncfg.head.classes)
            cl = np.asarray(r.classes).reshape(-1)
            out += [(int(v), int(c)) for row, c in zip(lg, cl) for v in row]
    return out


def _got(ncfg, words):
    if ncfg.head is None:
        return [w["data"] for w in words]
    return [(w["data"], w["cls"]) for w in words]


CASES = {
    "lstm2_head": (TINY, "[network]\nlayers = 2\n" + HEAD),
    "lstm3_lanes": (TINY, "[[layer]]\nhardware = { lanes = 1 }\n[[layer]]\nhardware = { lanes = 4 }\n"
                          "cell = { hidden_size = 6 }\n[[layer]]\nformats = { hidden = \"s2.9\" }\n" + HEAD),
    "gru2_no_head": (GRU, "[network]\nlayers = 2\n"),
    "mixed_lstm_gru": (TINY, "[[layer]]\n[[layer]]\ncell = { kind = \"gru\", hidden_size = 5 }\n" + HEAD),
    "bi_lstm2_head": (TINY, "[network]\nlayers = 2\ndirections = 2\nmax_steps = 8\n" + HEAD),
    "bi_gru_then_uni": (GRU, "[network]\nmax_steps = 6\n[[layer]]\ndirections = 2\n[[layer]]\n"),
    "lstm2_last_only": (TINY, "[network]\nlayers = 2\noutputs = \"last\"\n"),
    "bi_last_only": (TINY, "[network]\ndirections = 2\nmax_steps = 8\noutputs = \"last\"\n"),
    "lstm2_head_every_step": (TINY, "[network]\nlayers = 2\n" + HEAD + "every_step = true\n"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bit_exact_under_backpressure(case):
    ncfg = _cfg(*CASES[case])
    q = golden.quantize(_net(ncfg, 1), ncfg)
    seqs = _seqs(ncfg, [3, 1, 5, 2], seed=2)
    want = _expected(q, ncfg, seqs)
    r = netsim.run(Network(ncfg, q), netsim.input_words(ncfg, seqs), len(want), seed=3, in_idle=0.3,
                   out_stall=0.4)
    assert _got(ncfg, r.outputs) == want
    assert not any(r.status.values()), r.status
    if ncfg.head is None:  # first / last / end framing of the last layer's stream
        H = ncfg.output_size()
        assert [w["last"] for w in r.outputs] == [int(k % H == H - 1) for k in range(len(want))]
        steps = [1 if ncfg.outputs == "last" else len(x) for x in seqs]
        ends = np.cumsum([T * H for T in steps]) - 1
        assert [k for k, w in enumerate(r.outputs) if w["end"]] == ends.tolist()
        assert [k for k, w in enumerate(r.outputs) if w["first"]] == (ends + 1 - np.array(steps) * H).tolist()


def test_head_on_every_step():
    ncfg = _cfg(*CASES["lstm2_head_every_step"])
    q = golden.quantize(_net(ncfg, 4), ncfg)
    seqs = _seqs(ncfg, [4, 2], seed=5)
    want = _expected(q, ncfg, seqs)
    assert len(want) == 6 * ncfg.head.classes
    r = netsim.run(Network(ncfg, q), netsim.input_words(ncfg, seqs), len(want), seed=6, out_stall=0.3)
    assert _got(ncfg, r.outputs) == want


def test_weight_reload_through_the_write_port():
    """Parameters written through w (layer 1's cell and the head) replace the built-in ones: the run
    then matches the golden model of the new parameters, not of the old."""
    ncfg = _cfg(TINY, "[network]\nlayers = 2\n" + HEAD)
    old, new = golden.quantize(_net(ncfg, 7), ncfg), golden.quantize(_net(ncfg, 8), ncfg)
    dut = Network(ncfg, old)
    from rtl.layout import memory_images
    writes = []
    cfg1 = ncfg.layers[1]
    lay = Layout.for_config(cfg1)
    img = memory_images(cfg1, new.layers[1][0])
    sb = dut.sub_bits
    for lane, words in enumerate(img["lanes"]):
        writes += [((1 << sb) | (lane << lay.offset_bits) | a, v) for a, v in enumerate(words)]
    writes += [((1 << sb) | (cfg1.lanes << lay.offset_bits) | a, v) for a, v in enumerate(img["bias"])]
    from rtl.head import head_offset_bits
    hob = head_offset_bits(ncfg.head)
    writes += [((2 << sb) | a, int(v)) for a, v in enumerate(new.head.weight.reshape(-1))]
    writes += [((2 << sb) | (1 << hob) | a, int(v)) for a, v in enumerate(new.head.bias)]
    mixed = golden.QNetwork([old.layers[0], new.layers[1]], new.head)
    seqs = _seqs(ncfg, [3, 2], seed=9)
    want = _expected(mixed, ncfg, seqs)
    assert want != _expected(old, ncfg, seqs)
    r = netsim.run(dut, netsim.input_words(ncfg, seqs), len(want), writes=writes)
    assert _got(ncfg, r.outputs) == want and r.status["err_addr"] == 0
    r = netsim.run(Network(ncfg, old), netsim.input_words(ncfg, seqs), len(want), writes=[(3 << sb, 1)])
    assert r.status["err_addr"] == 1  # target 3: neither a layer nor the head


@pytest.mark.parametrize("case", ["lstm2_head", "lstm3_lanes"])
def test_steady_state_cycles_equal_the_model(case):
    """No stalls: the last layer's steps end every cycles_per_step cycles (the slowest layer's)."""
    base, extra = CASES[case]
    plain = _cfg(base, extra.replace(HEAD, ""))
    cm = NetworkCycleModel.for_config(plain)
    H = plain.layers[-1].hidden_size
    r = netsim.run(Network(plain), netsim.input_words(plain, _seqs(plain, [8], seed=1)), 8 * H)
    assert np.diff(r.out_cycles[H - 1::H]).tolist() == [cm.cycles_per_step] * 7
    assert cm.balance[cm.slowest_layer] == 1.0 and min(cm.balance) < 1.0


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("steps", [1, 4])
def test_first_output_cycle_equals_the_model(case, steps):
    """The first output word of a ``steps``-step sequence leaves at NetworkCycleModel.latency(steps)
    cycles after the first x element (x one element per cycle, o always ready)."""
    ncfg = _cfg(*CASES[case])
    n_out = ncfg.head.classes if ncfg.head else ncfg.output_size()
    r = netsim.run(Network(ncfg), netsim.input_words(ncfg, _seqs(ncfg, [steps], seed=steps)), n_out)
    assert r.out_cycles[0] - r.in_cycles[0] == NetworkCycleModel.for_config(ncfg).latency(steps)


def test_bidirectional_layer_holds_a_sequence_for_the_modelled_cycles():
    ncfg = _cfg(TINY, "[network]\ndirections = 2\nmax_steps = 8\n")
    cm = NetworkCycleModel.for_config(ncfg)
    seqs = _seqs(ncfg, [5, 2], seed=4)
    r = netsim.run(Network(ncfg), netsim.input_words(ncfg, seqs), 7 * 8)
    assert r.in_cycles[5 * 3] - r.in_cycles[0] == cm.bidirectional_cycles(0, 5)


def test_bidirectional_buffer_reads_keep_every_word_under_one_cycle_stalls():
    """A bidirectional layer registers its buffer reads (model.latency.BUFFER_READ), so a one-cycle stall
    while the next word is already read must move the held word into the skid register: every word
    arrives, in order and bit-exact, within twice the unstalled cycle count (a lost word hangs the stream,
    an extra one shows as a mismatch)."""
    ncfg = _cfg(TINY, "[network]\ndirections = 2\nmax_steps = 8\n")
    cm = NetworkCycleModel.for_config(ncfg)
    q = golden.quantize(_net(ncfg, 5), ncfg)
    seqs = _seqs(ncfg, [4, 3], seed=6)
    want = _expected(q, ncfg, seqs)
    budget = 2 * sum(cm.bidirectional_cycles(0, len(x)) for x in seqs)
    r = netsim.run(Network(ncfg, q), netsim.input_words(ncfg, seqs), len(want), seed=7, out_stall=0.5, max_stall=1,
                   max_cycles=budget)
    assert _got(ncfg, r.outputs) == want


def test_sequence_longer_than_the_buffer_is_flagged():
    """Nothing is lost silently: the steps beyond max_steps are not stored and err_long says so."""
    ncfg = _cfg(TINY, "[network]\ndirections = 2\nmax_steps = 3\n")
    seqs = _seqs(ncfg, [5], seed=1)
    r = netsim.run(Network(ncfg), netsim.input_words(ncfg, seqs), 3 * 8)
    assert r.status["l0_err_long"] == 1
    r = netsim.run(Network(ncfg), netsim.input_words(ncfg, _seqs(ncfg, [3], seed=1)), 3 * 8)
    assert r.status["l0_err_long"] == 0


def test_head_class_on_a_tie_is_the_lowest_index():
    """Classes 1 and 2 get the same weights and bias, so their logits tie on every sequence; a larger
    bias puts them above class 0 in half of the sequences (by the sign of the h sum).  The hardware's
    class must be 1 wherever the tie is the maximum, as the golden model's is."""
    ncfg = _cfg(TINY, "[network]\nlayers = 1\n" + HEAD)
    net = _net(ncfg, 11)
    w = net.head.weight.copy()
    w[2] = w[1]
    b = net.head.bias.copy()
    b[1] = b[2] = 0.5
    from model.network import HeadParams, NetworkParams
    q = golden.quantize(NetworkParams(net.layers, HeadParams(w, b)), ncfg)
    seqs = _seqs(ncfg, [2, 3, 1, 2, 3, 1], seed=12)
    want = _expected(q, ncfg, seqs)
    ties = [k for k in range(len(seqs)) if want[3 * k + 1][0] == want[3 * k + 2][0] >= want[3 * k][0]]
    assert ties, "no sequence where the tie is the largest logit"
    r = netsim.run(Network(ncfg, q), netsim.input_words(ncfg, seqs), len(want))
    assert _got(ncfg, r.outputs) == want
    assert all(r.outputs[3 * k]["cls"] == 1 for k in ties)
