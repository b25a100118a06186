"""Networks' float reference against PyTorch (float64, 1e-9): stacked and bidirectional layers,
initial and final states in PyTorch's shapes, the head; the structure checks' messages."""
import numpy as np
import pytest
import torch

from model import reference
from model.network import HeadParams, NetworkParams, classify, from_torch, run
from model.params import CellParams

TOL = 1e-9


def _module(cls, I, H, layers, bi, batch_first, bias=True, seed=0):
    torch.manual_seed(seed)
    m = cls(I, H, num_layers=layers, bidirectional=bi, batch_first=batch_first, bias=bias).double()
    with torch.no_grad():  # larger than the default init, so the nonlinearities are exercised
        for p in m.parameters():
            p.mul_(1.5)
    return m


def _torch_run(m, x, state, batch_first):
    xt = torch.from_numpy(x if batch_first else x.transpose(1, 0, 2).copy())
    with torch.no_grad():
        if state is None:
            y, s = m(xt)
        elif isinstance(state, tuple):
            y, s = m(xt, tuple(torch.from_numpy(a) for a in state))
        else:
            y, s = m(xt, torch.from_numpy(state))
    y = y.numpy()
    s = tuple(a.numpy() for a in s) if isinstance(s, tuple) else (s.numpy(),)
    return (y if batch_first else y.transpose(1, 0, 2)), s


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, False), (3, True), (1, True)])
@pytest.mark.parametrize("batch_first", [True, False])
def test_matches_torch(cls, layers, bi, batch_first):
    I, H, B, T = 5, 9, 3, 11
    m = _module(cls, I, H, layers, bi, batch_first, seed=layers * 10 + bi)
    net = from_torch(m)
    D = 2 if bi else 1
    rng = np.random.default_rng(layers)
    x = rng.normal(size=(B, T, I))
    n_state = 2 if cls is torch.nn.LSTM else 1
    state = tuple(rng.uniform(-0.8, 0.8, size=(layers * D, B, H)) for _ in range(n_state))
    given = state if n_state == 2 else state[0]  # a GRU's state as PyTorch users write it: a bare array
    yt, st = _torch_run(m, x, given, batch_first)
    for s in (given, state):
        y, final = reference.run(net, x, s)
        assert y.shape == (B, T, D * H)
        assert np.max(np.abs(y - yt)) <= TOL
        assert len(final) == n_state
        for a, b in zip(final, st):
            assert a.shape == (layers * D, B, H)
            assert np.max(np.abs(a - b)) <= TOL
    y0, _ = run(net, x)
    yt0, _ = _torch_run(m, x, None, batch_first)
    assert np.max(np.abs(y0 - yt0)) <= TOL


def test_no_bias_imports_zero_biases():
    m = _module(torch.nn.GRU, 4, 6, 2, True, True, bias=False)
    net = from_torch(m)
    x = np.random.default_rng(1).normal(size=(2, 5, 4))
    assert np.max(np.abs(run(net, x)[0] - _torch_run(m, x, None, True)[0])) <= TOL


@pytest.mark.parametrize("bi", [False, True])
def test_head_logits_and_classes(bi):
    """The head equals nn.Linear applied to PyTorch's last-step output; classes are its argmax."""
    m = _module(torch.nn.LSTM, 4, 8, 2, bi, True)
    torch.manual_seed(3)
    lin = torch.nn.Linear(8 * (2 if bi else 1), 5).double()
    net = from_torch(m, lin)
    x = np.random.default_rng(2).normal(size=(6, 7, 4))
    yt, _ = _torch_run(m, x, None, True)
    with torch.no_grad():
        want = lin(torch.from_numpy(yt[:, -1])).numpy()
        want_all = lin(torch.from_numpy(yt)).numpy()
    logits, classes = classify(net, x)
    assert logits.shape == (6, 5) and np.max(np.abs(logits - want)) <= TOL
    assert np.array_equal(classes, want.argmax(axis=1))
    logits, classes = classify(net, x, every_step=True)
    assert logits.shape == (6, 7, 5) and np.max(np.abs(logits - want_all)) <= TOL
    assert np.array_equal(classes, want_all.argmax(axis=2))


def test_mixed_kinds_run_as_composed_modules():
    """An LSTM layer feeding a bidirectional GRU layer of another size: the same as running the two
    PyTorch modules one after the other; the state is per slot (the layers' states differ)."""
    lstm = _module(torch.nn.LSTM, 3, 6, 1, False, True, seed=4)
    gru = _module(torch.nn.GRU, 6, 4, 1, True, True, seed=5)
    a, b = from_torch(lstm), from_torch(gru)
    net = NetworkParams([a.layers[0], b.layers[0]])
    assert not net.uniform
    x = np.random.default_rng(3).normal(size=(2, 9, 3))
    rng = np.random.default_rng(4)
    h0, c0, g0 = rng.normal(size=(1, 2, 6)), rng.normal(size=(1, 2, 6)), rng.normal(size=(2, 2, 4))
    y1, (h1, c1) = _torch_run(lstm, x, (h0, c0), True)
    y2, (g1,) = _torch_run(gru, y1, g0, True)
    y, final = run(net, x, [(h0[0], c0[0]), (g0[0],), (g0[1],)])
    assert np.max(np.abs(y - y2)) <= TOL
    assert isinstance(final, list) and len(final) == 3
    for got, want in zip([*final[0], *final[1], *final[2]], [h1[0], c1[0], g1[0], g1[1]]):
        assert np.max(np.abs(got - want)) <= TOL


def test_default_initial_state_is_used_and_saved(tmp_path):
    m = _module(torch.nn.LSTM, 3, 5, 2, False, True)
    rng = np.random.default_rng(6)
    init = [tuple(rng.normal(size=5) for _ in range(2)) for _ in range(2)]
    net = NetworkParams(from_torch(m).layers, initial_state=init)
    x = rng.normal(size=(4, 3, 3))
    h0 = np.stack([np.broadcast_to(s[0], (4, 5)) for s in init])
    c0 = np.stack([np.broadcast_to(s[1], (4, 5)) for s in init])
    yt, _ = _torch_run(m, x, (h0.copy(), c0.copy()), True)
    assert np.max(np.abs(run(net, x)[0] - yt)) <= TOL
    net.save(tmp_path / "n.npz")
    assert NetworkParams.load(tmp_path / "n.npz") == net


def test_save_load_roundtrip_with_head(tmp_path):
    m = _module(torch.nn.GRU, 3, 5, 2, True, True)
    net = from_torch(m, torch.nn.Linear(10, 3))
    net.save(tmp_path / "n.npz")
    back = NetworkParams.load(tmp_path / "n.npz")
    assert back == net and back.head.classes == 3
    assert back != from_torch(m)


def test_single_cell_file_loads_as_one_layer(tmp_path):
    p = CellParams.random("gru", 3, 4, seed=1)
    p.save(tmp_path / "c.npz")
    net = NetworkParams.load(tmp_path / "c.npz")
    assert net.num_layers == 1 and net.layers[0][0] == p


def _cell(kind, I, H, seed=0, **o):
    return CellParams.random(kind, I, H, seed=seed, **o)


@pytest.mark.parametrize("build,match", [
    (lambda: NetworkParams([_cell("lstm", 3, 4), _cell("lstm", 5, 4)]),
     r"^layer 1 takes 5 inputs but layer 0 gives 4 \(1 direction\(s\) x hidden 4\)$"),
    (lambda: NetworkParams([(_cell("lstm", 3, 4), _cell("gru", 3, 4))]),
     r"^layer 0: the reverse direction's kind 'gru' differs from the forward direction's 'lstm'$"),
    (lambda: NetworkParams([(_cell("gru", 3, 4), _cell("gru", 3, 4, reset="before"))]),
     r"^layer 0: the reverse direction's options .* differs"),
    (lambda: NetworkParams([_cell("gru", 3, 4)], HeadParams(np.zeros((2, 5)), np.zeros(2))),
     r"^head takes 5 features but the last layer gives 4$"),
    (lambda: HeadParams(np.zeros((2, 5)), np.zeros(3)), r"^head bias has shape \(3,\); expected \(classes,\) = \(2,\)$"),
    (lambda: NetworkParams([]), r"^layers must be a non-empty list"),
    (lambda: NetworkParams([_cell("gru", 3, 4)], initial_state=[(np.zeros(5),)]),
     r"^initial_state h of layer 0 direction 0 must be a finite vector of shape \(4,\), not shape \(5,\)$"),
])
def test_structure_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_state_errors():
    net = from_torch(_module(torch.nn.LSTM, 3, 4, 2, True, True))
    x = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match=r"^state h has shape \(2, 2, 4\); expected \(layers \* directions, batch, "
                                         r"hidden\) = \(4, 2, 4\)$"):
        run(net, x, (np.zeros((2, 2, 4)), np.zeros((4, 2, 4))))
    with pytest.raises(ValueError, match=r"^state must be a tuple \(h, c\) .* not a bare ndarray$"):
        run(net, x, np.zeros((4, 2, 4)))
    with pytest.raises(ValueError, match=r"^x has shape \(2, 3\); expected 3-D \(batch, steps, input\) with input = 3$"):
        run(net, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="this network has no head"):
        classify(net, x)


def test_from_torch_errors():
    with pytest.raises(TypeError, match=r"^from_torch takes one of torch\.nn\.LSTM, torch\.nn\.GRU, not Linear$"):
        from_torch(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"^LSTM has proj_size = 2"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(ValueError, match=r"^head has in_features = 4 but the GRU gives 8 features \(2 directions x hidden 4\)$"):
        from_torch(torch.nn.GRU(3, 4, bidirectional=True), torch.nn.Linear(4, 2))
