"""model.from_onnx against onnxruntime: graphs torch.onnx.export writes for real models (stacked,
bidirectional, batch-first or not, dynamic axes, heads on the last step or on h_n) and hand-built
graphs for what PyTorch cannot export (peephole P, input_forget, linear_before_reset = 0, constant
initial states, layout = 1, a MatMul + Add head); the refusals' messages.

onnxruntime computes recurrent nodes in float32 only, the kit's reference in float64 on the same
(float32) weights: the bound is TOL = 1e-6 absolute, about ten times the largest difference seen on
these sizes (1.1e-7; float32's unit roundoff 6e-8 times a few accumulated steps).
"""
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from model.network import OnnxImportError, classify, from_onnx, run

TOL = 1e-6


class _Model(torch.nn.Module):
    def __init__(self, cls, layers, bi, batch_first, head, on_hn=False):
        super().__init__()
        self.bf, self.head_on, self.on_hn = batch_first, head, on_hn
        self.rnn = cls(5, 7, num_layers=layers, bidirectional=bi, batch_first=batch_first)
        self.head = torch.nn.Linear(7 * (2 if bi else 1), 3)

    def forward(self, x):
        y, s = self.rnn(x)
        if not self.head_on:
            return y
        if self.on_hn:
            h = s[0] if isinstance(s, tuple) else s
            return self.head(h[-1])
        return self.head(y[:, -1] if self.bf else y[-1])


def _export(tmp_path, m, x, dynamic=False):
    path = tmp_path / "m.onnx"
    kw = {"dynamic_axes": {"x": {0: "a", 1: "b"}}} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.from_numpy(x),), str(path), dynamo=False, input_names=["x"],
                          output_names=["out"], **kw)
    return path


def _ort(path, **feeds):
    return ort.InferenceSession(str(path)).run(None, feeds)[0]


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
@pytest.mark.parametrize("layers,bi", [(1, False), (2, False), (2, True)])
@pytest.mark.parametrize("batch_first,head", [(True, True), (False, True), (True, False), (False, False)])
def test_torch_exports(tmp_path, cls, layers, bi, batch_first, head):
    torch.manual_seed(layers * 7 + bi)
    m = _Model(cls, layers, bi, batch_first, head).eval()
    x = np.random.default_rng(0).normal(size=(2, 6, 5)).astype(np.float32)
    xi = x if batch_first else x.transpose(1, 0, 2).copy()
    path = _export(tmp_path, m, xi)
    net = from_onnx(path)
    assert net.num_layers == layers and net.directions(0) == (2 if bi else 1)
    want = _ort(path, x=xi)
    if head:
        got = classify(net, x.astype(np.float64))[0]
    else:
        got = run(net, x.astype(np.float64))[0]
        got = got if batch_first else got.transpose(1, 0, 2)
    assert got.shape == want.shape and np.max(np.abs(got - want)) <= TOL


def test_dynamic_axes_and_head_on_final_state(tmp_path):
    """Symbolic batch and time dimensions; a head on h_n[-1] (one direction: the last step's output)."""
    torch.manual_seed(1)
    m = _Model(torch.nn.GRU, 2, False, True, True, on_hn=True).eval()
    x = np.random.default_rng(1).normal(size=(3, 8, 5)).astype(np.float32)
    path = _export(tmp_path, m, x, dynamic=True)
    net = from_onnx(path)
    x2 = np.random.default_rng(2).normal(size=(4, 11, 5)).astype(np.float32)  # other sizes than exported
    assert np.max(np.abs(classify(net, x2.astype(np.float64))[0] - _ort(path, x=x2))) <= TOL


# ---- hand-built graphs ---------------------------------------------------------------------------

def _graph(op, W, R, B, attrs, I, H, D, P=None, init=None, layout=0, head=None, extra_nodes=()):
    """One recurrent node on input x ((T, B, I), or (B, T, I) with layout 1) whose Y is the output,
    or, with ``head = (w, b)``, a MatMul + Add head on the last step."""
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(B, "B")]
    inputs = ["x", "W", "R", "B", "", "", ""]
    if init is not None:
        for k, (name, v) in enumerate(init.items()):
            inits.append(numpy_helper.from_array(v, name))
            inputs[5 + k] = name
    if P is not None:
        inits.append(numpy_helper.from_array(P, "P"))
        inputs.append("P")
    while inputs and inputs[-1] == "":
        inputs.pop()
    nodes = [helper.make_node(op, inputs, ["Y", "Y_h"], hidden_size=H, layout=layout, **attrs), *extra_nodes]
    out = "Y"
    if head is not None:
        w, b = head
        inits += [numpy_helper.from_array(w, "hw"), numpy_helper.from_array(b, "hb"),
                  numpy_helper.from_array(np.array(-1, np.int64), "last"),
                  numpy_helper.from_array(np.array([0, 0, -1], np.int64), "merge")]
        nodes += [helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),  # (T, B, D, H)
                  helper.make_node("Reshape", ["Yt", "merge"], ["Yf"]),  # (T, B, D*H)
                  helper.make_node("Gather", ["Yf", "last"], ["feat"], axis=0),
                  helper.make_node("MatMul", ["feat", "hw"], ["mm"]),
                  helper.make_node("Add", ["mm", "hb"], ["logits"])]
        out = "logits"
    shape = ["T", "N", I] if layout == 0 else ["N", "T", I]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])


def _set_input(node, k, name):
    node.input[k] = name


def _rand(rng, *shape, s=0.6):
    return rng.uniform(-s, s, size=shape).astype(np.float32)


def _check(model, x_btf, layout=0, has_head=False, ort_model=None):
    """from_onnx(model) against onnxruntime running ``ort_model`` (default: the same graph)."""
    sess = ort.InferenceSession((ort_model or model).SerializeToString())
    want = sess.run(None, {"x": x_btf.transpose(1, 0, 2).copy()})[0]
    if layout == 1:  # ONNX's layout 1: Y is (B, T, D, H)
        want = want.transpose(2, 0, 1, 3)
    net = from_onnx(model)
    if has_head:
        got = classify(net, x_btf.astype(np.float64))[0]
    else:
        y = run(net, x_btf.astype(np.float64))[0]  # (B, T, D*H)
        D = net.directions(0)
        H = net.hidden_size(0)
        y = y.reshape(y.shape[0], y.shape[1], D, H)
        got = y.transpose(1, 2, 0, 3) if layout == 0 else y  # ONNX Y: (T, D, B, H) or (B, T, D, H)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOL, np.max(np.abs(got - want))
    return net


@pytest.mark.parametrize("direction,D", [("forward", 1), ("bidirectional", 2)])
@pytest.mark.parametrize("peephole", [False, True])
def test_lstm_peephole_and_initial_state(direction, D, peephole):
    rng = np.random.default_rng(D * 2 + peephole)
    I, H = 4, 6
    W, R, B = _rand(rng, D, 4 * H, I), _rand(rng, D, 4 * H, H), _rand(rng, D, 8 * H)
    P = _rand(rng, D, 3 * H, s=1.0) if peephole else None
    # one state shared by the batch (onnxruntime wants the batch axis at full size)
    init = {"h0": np.repeat(_rand(rng, D, 1, H), 3, axis=1), "c0": np.repeat(_rand(rng, D, 1, H, s=2.0), 3, axis=1)}
    net = _check(_graph("LSTM", W, R, B, {"direction": direction}, I, H, D, P=P, init=init),
                 rng.normal(size=(3, 7, I)).astype(np.float32))
    assert net.layers[0][0].options == {"peephole": "c_new" if peephole else "none"}
    assert net.initial_state is not None and np.allclose(net.initial_state[0][1], init["c0"][0, 0])


def test_lstm_input_forget_is_cifg():
    rng = np.random.default_rng(5)
    I, H = 3, 5
    W, R, B = _rand(rng, 1, 4 * H, I), _rand(rng, 1, 4 * H, H), _rand(rng, 1, 8 * H)
    net = _check(_graph("LSTM", W, R, B, {"input_forget": 1}, I, H, 1), rng.normal(size=(2, 9, I)).astype(np.float32))
    assert (net.layers[0][0].kind, net.layers[0][0].options) == ("cifg", {"coupling": "f=1-i"})


@pytest.mark.parametrize("lbr,reset", [(0, "before"), (1, "after")])
@pytest.mark.parametrize("layout", [0, 1])
def test_gru_both_resets_layouts_and_matmul_head(lbr, reset, layout):
    """onnxruntime refuses ``layout = 1`` ("Batchwise recurrent operations are not supported"): the
    layout-1 graph is checked against onnxruntime on the same node with layout 0."""
    rng = np.random.default_rng(lbr * 2 + layout)
    I, H, C = 4, 6, 3
    W, R, B = _rand(rng, 2, 3 * H, I), _rand(rng, 2, 3 * H, H), _rand(rng, 2, 6 * H)
    head = (_rand(rng, 2 * H, C), _rand(rng, C)) if layout == 0 else None
    attrs = {"linear_before_reset": lbr, "direction": "bidirectional"}
    model = _graph("GRU", W, R, B, attrs, I, H, 2, layout=layout, head=head)
    net = _check(model, rng.normal(size=(3, 8, I)).astype(np.float32), layout=layout, has_head=head is not None,
                 ort_model=_graph("GRU", W, R, B, attrs, I, H, 2) if layout else None)
    assert net.layers[0][0].options == {"reset": reset}


@pytest.mark.parametrize("mutate,match", [
    (lambda m: m.graph.node[0].attribute.append(helper.make_attribute("clip", 3.0)),
     r"^ONNX node 'rnn' \(op LSTM\): attribute clip = 3\.0 is not supported"),
    (lambda m: m.graph.node[0].attribute.append(helper.make_attribute("activations", ["Relu", "Tanh", "Tanh"])),
     r"^ONNX node 'rnn' \(op LSTM\): attribute activations = \['Relu', 'Tanh', 'Tanh'\] is not supported "
     r"\(supported: \['Sigmoid', 'Tanh', 'Tanh'\], the defaults\)$"),
    (lambda m: m.graph.node[0].attribute.append(helper.make_attribute("foo", 1)),
     r"^ONNX node 'rnn' \(op LSTM\): attribute foo is not supported \(supported: hidden_size, direction, layout"),
    (lambda m: (m.graph.node.append(helper.make_node("Relu", ["Y"], ["r"], name="act")),
                m.graph.output[0].CopyFrom(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))),
     r"^ONNX node 'act' \(op Relu\): operator not supported; supported: LSTM, GRU, Constant"),
    (lambda m: _set_input(m.graph.node[0], 4, "x"),
     r"^ONNX node 'rnn' \(op LSTM\): input sequence_lens is not supported"),
    (lambda m: m.graph.node[0].attribute.append(helper.make_attribute("direction", "reverse")),
     r"^ONNX node 'rnn' \(op LSTM\): attribute direction = 'reverse' is not supported \(supported: forward, "
     r"bidirectional\)$"),
])
def test_refusals_name_node_op_and_attribute(mutate, match):
    """A valid one-node graph, broken in one place each time."""
    rng = np.random.default_rng(0)
    H = 3
    m = _graph("LSTM", _rand(rng, 1, 4 * H, 2), _rand(rng, 1, 4 * H, H), _rand(rng, 1, 8 * H), {}, 2, H, 1,
               init={"h0": np.zeros((1, 1, H), np.float32), "c0": np.zeros((1, 1, H), np.float32)})
    m.graph.node[0].name = "rnn"
    mutate(m)
    with pytest.raises(OnnxImportError, match=match):
        from_onnx(m)


def test_cifg_with_peephole_has_no_kind():
    rng = np.random.default_rng(0)
    H = 3
    m = _graph("LSTM", _rand(rng, 1, 4 * H, 2), _rand(rng, 1, 4 * H, H), _rand(rng, 1, 8 * H), {"input_forget": 1},
               2, H, 1, P=_rand(rng, 1, 3 * H))
    with pytest.raises(OnnxImportError, match=r"no registered cell kind computes this node \(input_forget = 1, "
                                              r"with peephole input P\)$"):
        from_onnx(m)


def test_bidirectional_final_state_head_refused(tmp_path):
    torch.manual_seed(0)
    m = _Model(torch.nn.LSTM, 1, True, True, True, on_hn=True)
    m.head = torch.nn.Linear(7, 3)
    path = _export(tmp_path, m.eval(), np.zeros((2, 4, 5), np.float32))
    with pytest.raises(OnnxImportError, match=r"takes the last element of the 'D' axis|final state of a "
                                              r"bidirectional layer"):
        from_onnx(path)


def test_file_errors(tmp_path):
    with pytest.raises(OnnxImportError, match=r"^ONNX file '.*nope\.onnx' does not exist$"):
        from_onnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(OnnxImportError, match=r"bad\.onnx: not an ONNX model"):
        from_onnx(bad)
