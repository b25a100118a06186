"""Initial and final state in the gateware (Amaranth simulator), for every cell kind and for networks.

- A sequence starts from the initial-state memories: given at build time (``init_state``, a network's
  default initial state) or written through ``w`` (``rtl.layout.state_stream``); bit-exact against the
  golden model started from that state.
- The final state reads back through ``state_addr`` / ``state_data`` and equals the golden model's.
- A sequence sent without ``first`` carries on from the previous one's final state (stateful streaming):
  two chunks give what the golden model gives for the whole sequence.
"""
import numpy as np
import pytest

from model import golden, kinds
from model.config import Config
from model.network import NetworkConfig, golden as network_golden
from model.network.params import NetworkParams
from model.params import CellParams, quantize
from rtl.cell import RecurrentCell
from rtl.layout import state_stream
from rtl.network import Network
from sim import netsim

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
TINY = Config.load(ROOT / "configs" / "tiny.toml").replace(formats={"peephole": "s1.8"})  # every kind from it
VARIANTS = kinds.variants()


def _state(cfg, seed):
    """A random raw state in the kind's state order, each (hidden,), within half of each format."""
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(cfg.fmt(t).min_int // 2, cfg.fmt(t).max_int // 2 + 1, size=cfg.hidden_size)
                 for _, t in cfg.cell.state)


def _words(seqs, first=True):
    return [{"data": int(v), "last": int(e == len(vec) - 1), "first": int(first and t == 0 and e == 0)}
            for x in seqs for t, vec in enumerate(x) for e, v in enumerate(vec)]


def _setup(kind, seed):
    cfg = TINY.as_kind(kind)
    q = quantize(CellParams.for_config(cfg, seed=seed), cfg)
    rng = np.random.default_rng(seed)
    f = cfg.fmt("input")
    seqs = [rng.integers(f.min_int // 2, f.max_int // 2, size=(T, cfg.input_size)) for T in (3, 2)]
    return cfg, q, seqs


def _golden(cfg, q, seqs, init):
    """Outputs of each sequence from ``init`` (broadcast), and the last one's final state."""
    outs, r = [], None
    for x in seqs:
        r = golden.run(q, x[None], cfg, state=tuple(np.asarray(v)[None] for v in init))
        outs += [int(v) for v in r.outputs.reshape(-1)]
    return outs, [int(v) for s in r.state for v in s[0]]


def _reads(cfg):
    """Readout addresses: h of every unit, then the unit state (c, or h for a GRU) of every unit."""
    return list(range(2 * cfg.hidden_size))


def _unit_state(cfg, state):
    """The golden state as the readout gives it: h, then the kind's per-unit state."""
    H = cfg.hidden_size
    k = next(j for j, (_, t) in enumerate(cfg.cell.state) if t == cfg.cell.unit_state)
    return state[:H] + state[k * H:(k + 1) * H]


@pytest.mark.parametrize("kind", VARIANTS, ids=lambda k: k.variant)
def test_baked_initial_state_and_final_state(kind):
    cfg, q, seqs = _setup(kind, 1)
    init = _state(cfg, 2)
    want, final = _golden(cfg, q, seqs, init)
    r = netsim.run(RecurrentCell(cfg, q, init), _words(seqs), len(want), seed=3, in_idle=0.2, out_stall=0.3,
                   state_reads=_reads(cfg))
    assert [w["data"] for w in r.outputs] == want
    assert r.state == _unit_state(cfg, final)
    assert want != _golden(cfg, q, seqs, tuple(np.zeros_like(v) for v in init))[0]  # the state mattered


@pytest.mark.parametrize("kind", VARIANTS[:1] + VARIANTS[3:5], ids=lambda k: k.variant)
def test_initial_state_written_through_w(kind):
    cfg, q, seqs = _setup(kind, 4)
    init = _state(cfg, 5)
    want, final = _golden(cfg, q, seqs, init)
    r = netsim.run(RecurrentCell(cfg, q), _words(seqs), len(want), writes=state_stream(cfg, init),
                   state_reads=_reads(cfg))
    assert [w["data"] for w in r.outputs] == want and r.state == _unit_state(cfg, final)
    assert not r.status["err_addr"] and not r.status["err_busy"]


def test_a_sequence_without_first_carries_on():
    cfg, q, seqs = _setup(VARIANTS[0], 6)
    whole = golden.run(q, np.concatenate(seqs)[None], cfg)
    words = _words(seqs[:1]) + _words(seqs[1:], first=False)
    r = netsim.run(RecurrentCell(cfg, q), words, whole.outputs.size, state_reads=_reads(cfg))
    assert [w["data"] for w in r.outputs] == [int(v) for v in whole.outputs.reshape(-1)]
    assert r.state == _unit_state(cfg, [int(v) for s in whole.state for v in s[0]])


def test_network_default_initial_state_and_final_state():
    """A bidirectional LSTM layer under a GRU layer, with a default initial state (as an ONNX graph's constant
    initial_h / initial_c bring it): bit-exact logits from that state, and every cell's final state read
    back in PyTorch's h_n order equals the golden model's."""
    base = (ROOT / "configs" / "networks" / "stack_small.toml").read_text().replace("[[layer]]\n\n[[layer]]",
                                                                                      "[[layer]]\ndirections = 2\n\n[[layer]]")
    import tomllib
    ncfg = NetworkConfig.from_toml(tomllib.loads(base))
    net = NetworkParams.for_config(ncfg, seed=3)
    rng = np.random.default_rng(7)
    net = NetworkParams(net.layers, net.head, [tuple(rng.uniform(-0.5, 0.5, c.hidden_size) for _ in c.cell.state)
                                               for _, _, c in ncfg.slots()])
    q = network_golden.quantize(net, ncfg)
    f = ncfg.layers[0].fmt("input")
    x = rng.integers(f.min_int // 2, f.max_int // 2, size=(4, ncfg.input_size))
    res = network_golden.run(q, x[None], ncfg)
    dut = Network(ncfg, q)
    sb = dut.state_bits
    reads = [(k << sb) | a for k, (_, _, c) in enumerate(ncfg.slots()) for a in range(2 * c.hidden_size)]
    r = netsim.run(dut, netsim.input_words(ncfg, [x]), ncfg.head.classes, state_reads=reads)
    assert [(w["data"], w["cls"]) for w in r.outputs] == [(int(v), int(res.classes[0])) for v in res.logits[0]]
    want = []
    for (_, _, c), s in zip(ncfg.slots(), res.state):
        want += _unit_state(c, [int(v) for t in s for v in t[0]])
    assert r.state == want
    zero = network_golden.run(network_golden.quantize(NetworkParams(net.layers, net.head), ncfg), x[None], ncfg)
    assert not np.array_equal(zero.logits, res.logits)  # the default state mattered


def test_network_initial_state_written_through_w_and_read_back():
    """Every cell of a bidirectional network gets its own initial state through the network's write port
    (Network.state_writes); the logits and every final state (Network.state_reads) equal the golden model's
    started from those states."""
    ncfg = NetworkConfig.load(ROOT / "configs" / "networks" / "tiny_net.toml")
    q = network_golden.quantize(NetworkParams.for_config(ncfg, seed=2), ncfg)
    states = [_state(c, 10 + k) for k, (_, _, c) in enumerate(ncfg.slots())]
    rng = np.random.default_rng(8)
    f = ncfg.layers[0].fmt("input")
    x = rng.integers(f.min_int // 2, f.max_int // 2, size=(3, ncfg.input_size))
    res = network_golden.run(q, x[None], ncfg, state=[tuple(np.asarray(v)[None] for v in s) for s in states])
    dut = Network(ncfg, q)
    r = netsim.run(dut, netsim.input_words(ncfg, [x]), ncfg.head.classes, writes=dut.state_writes(states),
                   state_reads=dut.state_reads())
    assert [(w["data"], w["cls"]) for w in r.outputs] == [(int(v), int(res.classes[0])) for v in res.logits[0]]
    want = []
    for (_, _, c), s in zip(ncfg.slots(), zip(*res.state)):
        want += _unit_state(c, [int(v) for t in s for v in t[0]])
    assert r.state == want and not r.status["err_addr"]
