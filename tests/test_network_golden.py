"""The networks' golden model and configuration.

Bit-exactness: the network golden model against the composition restated here (each cell through
the cell golden model, which tests/test_golden.py checks against the Fraction restatement; reverse
directions on explicitly reversed arrays; the head's logits with Python Fractions and the
numerics contract's rounding).  Closeness: against the float reference with 16-bit formats.
Chunked runs carried on through the returned state equal one run over the whole sequence.
"""
import tomllib
from fractions import Fraction

import numpy as np
import pytest
import torch

from model import golden as cell_golden
from model.config import Config, ConfigError
from model.fixedpoint import requantize_exact
from model.network import HeadParams, NetworkConfig, NetworkParams, classify, from_torch, golden
from model.params import CellParams

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
TINY = (ROOT / "configs" / "tiny.toml").read_text()
HEAD = """
[head]
classes = 3
formats = { weight = "s2.8", bias = "s3.8", logits = "s4.6" }
modes = { rounding = "half_up", overflow = "saturate" }
"""


def _cfg(extra="", base=TINY):
    return NetworkConfig.from_toml(tomllib.loads(base.replace('name = "tiny"', 'name = "net"') + extra))


def _restated(q, x, ncfg):
    """The network's raw outputs, final per-slot states and raw logits, restated."""
    y = cell_golden.quantize_input(x, ncfg.layers[0])
    finals = []
    for i, layer in enumerate(q.layers):
        cfg = ncfg.layers[i]
        fwd = cell_golden.run(layer[0], y, cfg)
        parts, finals = [fwd.outputs], finals + [fwd.state]
        if len(layer) == 2:
            rev = cell_golden.run(layer[1], y[:, ::-1].copy(), cfg)
            parts.append(rev.outputs[:, ::-1])
            finals.append(rev.state)
        y = np.concatenate(parts, axis=2)
    logits = None
    if ncfg.head is not None:
        hc = ncfg.head
        fw, fy, fb = hc.formats["weight"].frac_bits, hc.in_fmt.frac_bits, hc.formats["bias"].frac_bits
        F = fw + fy + fb
        logits = np.empty((y.shape[0], hc.classes), dtype=np.int64)
        for b in range(y.shape[0]):
            for c in range(hc.classes):
                v = sum(Fraction(int(w), 2 ** fw) * Fraction(int(h), 2 ** fy) for w, h in zip(q.head.weight[c], y[b, -1]))
                v += Fraction(int(q.head.bias[c]), 2 ** fb)
                logits[b, c] = requantize_exact(int(v * 2 ** F), F, hc.formats["logits"], hc.mode.rounding,
                                                hc.mode.overflow)
    return y, finals, logits


@pytest.mark.parametrize("kind,layers,dirs", [("lstm", 2, 2), ("gru", 3, 1), ("gru", 1, 2), ("lstm", 1, 1)])
def test_bit_exact_against_composition(kind, layers, dirs):
    base = TINY if kind == "lstm" else (ROOT / "configs" / "gru_small.toml").read_text().replace(
        'name = "gru_small"', 'name = "tiny"')
    ncfg = _cfg(f"\n[network]\nlayers = {layers}\ndirections = {dirs}\n" + HEAD, base)
    c0 = ncfg.layers[0]
    torch.manual_seed(layers)
    m = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(c0.input_size, c0.hidden_size, num_layers=layers,
                                                             bidirectional=dirs == 2, batch_first=True)
    net = from_torch(m, torch.nn.Linear(dirs * c0.hidden_size, 3))
    q = golden.quantize(net, ncfg)
    x = np.random.default_rng(layers).uniform(-2, 2, size=(4, 9, c0.input_size))
    r = golden.run(q, x, ncfg)
    y, finals, logits = _restated(q, x, ncfg)
    assert np.array_equal(r.outputs[-1], y)
    assert np.array_equal(r.logits, logits) and np.array_equal(r.classes, logits.argmax(axis=1))
    stacked = r.state
    for k, s in enumerate(finals):
        for j, v in enumerate(s):
            assert np.array_equal(stacked[j][k], v)


def test_head_tie_takes_lowest_index_and_saturation_counts():
    ncfg = _cfg("\n[network]\nlayers = 1\n" + HEAD.replace('logits = "s4.6"', 'logits = "s1.2"'))
    p = CellParams.random("lstm", 3, 4, seed=0)
    w = np.zeros((3, 4))
    w[1] = w[2] = 1.0  # classes 1 and 2 always tie; the large bias of class 0 saturates s1.2
    net = NetworkParams([p], HeadParams(w, np.array([5.0, 0.25, 0.25])))
    q = golden.quantize(net, ncfg)
    r = golden.run(q, np.zeros((2, 3, 3)), ncfg)
    assert r.saturated["head"] >= 2  # bias 5.0 -> logits beyond s1.2's 0.75 in both sequences
    assert r.logits[0, 0] == ncfg.head.formats["logits"].max_int
    q.head.bias[0] = 0
    r = golden.run(q, np.zeros((2, 3, 3)), ncfg)
    tie = r.logits[:, 1] == r.logits[:, 2]
    assert tie.all() and np.all(r.classes[r.logits.max(axis=1) == r.logits[:, 1]] == 1)


def test_close_to_float_with_16_bit_formats():
    """s4.12 / u1.15 formats over 30 steps: logits within 2e-2 and every class equal to the float one."""
    base = TINY.replace('"s3.8"', '"s4.12"').replace('"s2.8"', '"s3.12"').replace('"s4.8"', '"s6.12"') \
        .replace('"u1.10"', '"u1.15"').replace('"s1.10"', '"s2.14"').replace('"s4.10"', '"s5.12"')
    ncfg = _cfg("\n[network]\nlayers = 2\ndirections = 2\n" + HEAD.replace('"s4.6"', '"s6.12"')
                .replace('"s2.8"', '"s3.12"').replace('"s3.8"', '"s4.12"'), base)
    torch.manual_seed(7)
    net = from_torch(torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), torch.nn.Linear(8, 3))
    x = np.random.default_rng(7).uniform(-2, 2, size=(16, 30, 3))
    r = golden.run(golden.quantize(net, ncfg), x, ncfg)
    lf, cf = classify(net, x)
    err = np.abs(ncfg.head.formats["logits"].to_float(r.logits) - lf)
    assert err.max() <= 2e-2, err.max()
    assert np.array_equal(r.classes, cf)


def test_chunks_carried_on_equal_the_whole_sequence():
    """Stateful streaming: three chunks, each starting from the previous chunk's final state, give the
    outputs and final state of one run over the whole sequence (a unidirectional stack)."""
    ncfg = _cfg("\n[network]\nlayers = 2\n")
    torch.manual_seed(2)
    q = golden.quantize(from_torch(torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)), ncfg)
    x = np.random.default_rng(2).uniform(-2, 2, size=(3, 25, 3))
    whole = golden.run(q, x, ncfg)
    state, outs = None, []
    for a, b in ((0, 7), (7, 8), (8, 25)):
        r = golden.run(q, x[:, a:b], ncfg, state=state)
        outs.append(r.outputs[-1])
        state = r.state
    assert np.array_equal(np.concatenate(outs, axis=1), whole.outputs[-1])
    assert all(np.array_equal(a, b) for a, b in zip(state, whole.state))


def test_default_initial_state_is_quantized_and_used():
    ncfg = _cfg("\n[network]\nlayers = 1\n")
    p = CellParams.random("lstm", 3, 4, seed=3)
    init = [(np.full(4, 0.5), np.full(4, -1.25))]
    q = golden.quantize(NetworkParams([p], initial_state=init), ncfg)
    assert q.initial_state[0][0].tolist() == [512] * 4 and q.initial_state[0][1].tolist() == [-1280] * 4  # s1.10, s4.10
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, 5, 3))
    want = cell_golden.run(q.layers[0][0], x, ncfg.layers[0], state=(np.full((2, 4), 512), np.full((2, 4), -1280)))
    assert np.array_equal(golden.run(q, x, ncfg).outputs[-1], want.outputs)


def test_cell_config_is_a_one_layer_network(tmp_path):
    p = ROOT / "configs" / "tiny.toml"
    ncfg = NetworkConfig.load(p)
    assert ncfg.num_layers == 1 and ncfg.directions == (1,) and ncfg.layers[0] == Config.load(p)


def test_network_file_loads_and_layers_chain(tmp_path):
    f = tmp_path / "n.toml"
    f.write_text(TINY + '\n[[layer]]\ndirections = 2\n\n[[layer]]\ncell = { hidden_size = 6 }\n'
                 'formats = { hidden = "s2.9" }\n' + HEAD)
    ncfg = NetworkConfig.load(f)
    assert ncfg.name == "tiny" and [c.name for c in ncfg.layers] == ["tiny-l0", "tiny-l1"]
    assert ncfg.directions == (2, 1)
    assert ncfg.layers[1].input_size == 8 and str(ncfg.layers[1].fmt("input")) == "s1.10"
    assert ncfg.layers[1].hidden_size == 6 and ncfg.head.features == 6 and str(ncfg.head.in_fmt) == "s2.9"
    # the head's accumulator: frac 8 + 9 = 17; worst case 6 * 512 * 1024 + (1024 << 9) = 3 * 2**20 + 2**19,
    # 22 magnitude bits and a sign: 23 bits, 6 of them integer
    assert str(ncfg.head.acc_fmt) == "s6.17"


@pytest.mark.parametrize("extra,match", [
    ("\n[[layer]]\n\n[[layer]]\ncell = { input_size = 5 }\n",
     r"layer 1: input_size = 5 but layer 0 gives 4 \(1 direction\(s\) x hidden 4\); leave it out, it is derived"),
    ("\n[[layer]]\n\n[[layer]]\nformats = { input = \"s3.8\" }\n",
     r"layer 1: formats.input = s3.8 but the tensor between layers has layer 0's hidden format s1.10"),
    ("\n[network]\nlayers = 2\n[[layer]]\n", r"network.layers = 2 but the file has 1 \[\[layer\]\] tables"),
    ("\n[network]\ndirections = 3\n", r"network.directions must be 1 or 2, not 3"),
    ("\n[network]\nlayers = 0\n", r"network.layers must be an integer from 1 to 16, not 0"),
    ("\n[network]\nmax_step = 9\n", r"\[network\]: unknown key\(s\) max_step; accepted: layers, directions, max_steps"),
    ("\n[head]\nclasses = 3\n", r"\[head.formats\] is required"),
    (HEAD.replace('logits = "s4.6"', 'logits = "s4.6", acc = "s3.18"'),
     # 4 * 512 * 1024 + (1024 << 10) = 3 * 2**20: 22 magnitude bits and a sign, 5 integer bits at frac 18
     r"head.formats.acc = s3.18 cannot hold W y \+ b exactly: it needs 18 fraction bits and at least 5 integer bits "
     r"\(s5.18\), or leave it out$"),
    (HEAD.replace("classes = 3", "classes = 0"), r"head.classes must be a positive integer, not 0"),
    (HEAD.replace("classes = 3", "classes = 3\nevery_step = 1"), r"head.every_step must be true or false, not 1"),
    ("\n[network]\noutputs = \"all\"\n", r"network.outputs must be one of 'every', 'last', not 'all'"),
    ("\n[network]\noutputs = \"last\"\n" + HEAD, r"network.outputs applies to a network without a head"),
    ("\n[[layer]]\ncell = { hidden_size = 0 }\n", r"layer 0: hidden_size must be a positive integer, not 0"),
])
def test_config_errors(tmp_path, extra, match):
    f = tmp_path / "n.toml"
    f.write_text(TINY + extra)
    with pytest.raises(ConfigError, match=match):
        NetworkConfig.load(f)


def test_structure_mismatch_and_buffer_errors():
    ncfg = _cfg("\n[network]\nlayers = 2\ndirections = 2\nmax_steps = 8\n")
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"^the parameters have 1 layer\(s\) but config 'net' has 2$"):
        golden.quantize(from_torch(torch.nn.LSTM(3, 4, bidirectional=True)), ncfg)
    with pytest.raises(ValueError, match=r"^layer 0 has 1 direction\(s\) in the parameters but 2 in config 'net'$"):
        golden.quantize(from_torch(torch.nn.LSTM(3, 4, num_layers=2)), ncfg)
    q = golden.quantize(from_torch(torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)), ncfg)
    with pytest.raises(ValueError, match=r"^x has 9 steps but a bidirectional layer buffers at most "
                                         r"network.max_steps = 8$"):
        golden.run(q, np.zeros((1, 9, 3)), ncfg)
    with pytest.raises(ValueError, match=r"^state h has shape \(2, 1, 4\); expected \(layers \* directions, batch, "
                                         r"hidden\) = \(4, 1, 4\)$"):
        golden.run(q, np.zeros((1, 3, 3)), ncfg, state=(np.zeros((2, 1, 4), int), np.zeros((2, 1, 4), int)))
    with pytest.raises(ValueError, match=r"^state h must hold raw integers, not dtype float64$"):
        golden.run(q, np.zeros((1, 3, 3)), ncfg, state=(np.zeros((4, 1, 4)), np.zeros((4, 1, 4))))
