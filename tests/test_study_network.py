"""Network models in the quantization studies: loading, per-layer calibration, the baked config, the sweep."""
import numpy as np
import pytest
import torch

from model.fixedpoint import Fmt
from model.network import NetworkConfig, NetworkParams, golden
from model.params import CellParams
from study import calibrate, hwlink, models, netpoint, report, run, sweep

MODEL = "fsdd_lstm2x32"
CONFIG = "configs/networks/fsdd_lstm2x32.toml"
STUDY = "configs/studies/lstm2x32_layers.toml"
SUBSET = 40


def _torch_lstm(net: NetworkParams, layers: int) -> torch.nn.LSTM:
    """The first ``layers`` layers of ``net`` as a float64 ``nn.LSTM`` (weights copied by name)."""
    lstm = torch.nn.LSTM(net.input_size, net.hidden_size(0), num_layers=layers, batch_first=True).double()
    with torch.no_grad():
        for i in range(layers):
            p = net.layers[i][0]
            for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
                kind, part = name.split("_")
                getattr(lstm, f"{'weight' if kind == 'w' else 'bias'}_{part}_l{i}").copy_(torch.from_numpy(getattr(p, name)))
    return lstm


@pytest.fixture(scope="module")
def trained():
    return models.load(MODEL)


@pytest.fixture(scope="module")
def data(trained):
    return trained.datasets()


@pytest.fixture(scope="module")
def ctx():
    sw = sweep.parse({"model": MODEL, "head": "quantized", "target": "none", "test_subset": SUBSET,
                      "point": [{"label": "8-bit everywhere"}]})
    return run.prepare(sw, synth=False, log=lambda *a: None)


def test_network_model_loads_and_runs_as_pytorch_does(trained, data):
    m = trained
    assert m.network and isinstance(m.params, NetworkParams)
    assert m.params.num_layers == 2 and m.features == 32 and m.first_cell.kind == "lstm"
    np.testing.assert_array_equal(m.params.head.weight, m.head_w)   # the head of the .npz is the .json's
    _, test = data
    seqs = test.seqs[:12]
    lstm = _torch_lstm(m.params, 2)
    with torch.no_grad():
        want = np.stack([lstm(torch.from_numpy(s)[None])[0][0, -1].numpy() for s in seqs])
    np.testing.assert_allclose(m.float_last_h(seqs), want, atol=1e-9)
    single = models.load("fsdd_lstm32")
    assert not single.network and isinstance(single.params, CellParams) and single.features == 32


def test_per_layer_calibration_contains_the_observed_ranges(trained, data):
    m = trained
    train, _ = data
    seqs = train.seqs[:60]
    layers, head = calibrate.observe_network_ranges(m.params, seqs)
    # independent ranges from PyTorch: every step's h of layer 0 and of layer 1, and the logits
    with torch.no_grad():
        h0 = [_torch_lstm(m.params, 1)(torch.from_numpy(s)[None])[0].numpy() for s in seqs]
        h1 = [_torch_lstm(m.params, 2)(torch.from_numpy(s)[None])[0].numpy() for s in seqs]
    logits = np.stack([h[0, -1] for h in h1]) @ m.head_w.T + m.head_b
    assert layers[0]["input"] == pytest.approx(max(np.abs(s).max() for s in seqs), rel=1e-12)
    assert layers[0]["hidden"] == pytest.approx(max(np.abs(h).max() for h in h0), rel=1e-9)
    assert layers[1]["input"] == pytest.approx(layers[0]["hidden"], rel=1e-12)
    assert layers[1]["hidden"] == pytest.approx(max(np.abs(h).max() for h in h1), rel=1e-9)
    assert head["logits"] == pytest.approx(np.abs(logits).max(), rel=1e-9)
    assert layers[1]["weight"] == pytest.approx(max(np.abs(m.params.layers[1][0].w_ih).max(),
                                                    np.abs(m.params.layers[1][0].w_hh).max()))
    point = sweep.parse({"model": MODEL, "point": [{"layers": [{"weight_bits": 6, "act_bits": 6}, {}]}]}).points[0]
    ncfg = netpoint.point_config(m, (layers, head), point, "cal", 1.0, 92)
    def contains(f: Fmt, max_abs: float) -> bool:
        """The range reaches max_abs, and one integer bit fewer would not (or the format has none to spare)."""
        top = 2.0 ** (f.int_bits - 1) if f.signed else 2.0 ** f.int_bits
        return top >= max_abs and (top / 2 < max_abs or f.int_bits == (1 if f.signed else 0))

    checked = 0
    for i, (c, r) in enumerate(zip(ncfg.layers, layers)):
        for t, f in c.formats.items():
            if f is not None and t in r and r[t] > 0:
                assert contains(f, r[t]), (i, t, str(f), r[t])
                checked += 1
        assert c.fmt("weight").width == (6 if i == 0 else 8) and c.fmt("cell").width == 16
    assert checked == 18
    assert ncfg.layers[1].fmt("input") == ncfg.layers[0].fmt("hidden")   # derived by NetworkConfig
    for t in ("weight", "bias", "logits"):
        assert contains(ncfg.head.formats[t], head[t]), t


def test_baked_config_golden_accuracy_equals_a_direct_recomputation(ctx):
    ncfg = NetworkConfig.load(CONFIG)
    assert ncfg.params == str(models.MODELS_DIR.resolve() / f"{MODEL}.npz")
    row = run.evaluate(ctx, ncfg)
    # directly: each utterance alone through model.network.golden, the class from its head
    net = NetworkParams.load(ncfg.params)
    q = golden.quantize(net, ncfg)
    classes = [int(golden.run(q, s[None], ncfg).classes[0]) for s in ctx.test.seqs]
    assert len(classes) == SUBSET
    assert row["accuracy"] == pytest.approx(np.mean(np.array(classes) == ctx.test.labels), abs=1e-12)
    assert row["accuracy"] > 0.9
    # the config is the study's "8-bit everywhere" point
    sw = sweep.load(STUDY)
    p = next(p for p in sw.points if p.label == "8-bit everywhere")
    assert netpoint.formats(run.point_config(ctx, p, 0)) == netpoint.formats(ncfg)


def test_sweep_file_loads_and_one_point_runs(tmp_path):
    sw = sweep.load(STUDY)
    by = {p.label: p for p in sw.points}
    p = by["layer 1 at 4 bits"]
    assert p.layer_settings(0)["weight_bits"] == 8 and p.layer_settings(1)["weight_bits"] == 4
    assert p.widths(1)["hidden"] == 4 and p.widths(0)["hidden"] == 8
    sw.points, sw.test_subset, sw.target = [p], 30, "none"
    res = run.run(sw, jobs=1, synth=True, progress=False, log=lambda *a: None)
    r = res["rows"][0]
    assert r["formats"]["l1.weight"] == "s1.3" and r["formats"]["l0.weight"] == "s1.7"
    assert r["formats"]["l1.input"] == r["formats"]["l0.hidden"]
    assert 0.8 < r["accuracy"] <= 1 and r["hw_status"] == "skipped"
    out = report.write(res, tmp_path / "rep")
    text = (out / "report.md").read_text()
    assert "layer 1 weight" in text and "L1 weight_bits=4 act_bits=4" in text


def test_layers_key_in_sweep_files():
    g = sweep.parse({"model": MODEL, "grid": [{"label": "g", "layers": [[{"act_bits": 4}], [{}, {"act_bits": 4}]]}]})
    assert [p.label for p in g.points] == ["g: layers=L0 act_bits=4", "g: layers=L0 -; L1 act_bits=4"]
    with pytest.raises(sweep.SweepError, match=r"layers must be an array of tables"):
        sweep.parse({"model": MODEL, "point": [{"layers": {"weight_bits": 4}}]})
    with pytest.raises(sweep.SweepError, match=r"layers\[1\]: unknown key\(s\) head_bits"):
        sweep.parse({"model": MODEL, "point": [{"layers": [{}, {"head_bits": 4}]}]})


def test_layers_beyond_the_model_are_refused(ctx):
    p = sweep.parse({"model": MODEL, "point": [{"label": "x", "layers": [{}, {}, {}]}]}).points[0]
    with pytest.raises(sweep.SweepError, match=r"point 'x': layers has 3 tables but model 'fsdd_lstm2x32' has 2"):
        run.point_config(ctx, p, 0)


def test_utterances_for_the_network_bench(tmp_path):
    ncfg = NetworkConfig.load(CONFIG)
    u = hwlink.prepare_network(ncfg, 4, tmp_path / "u.npz")
    with np.load(u.path) as z:
        raw = [z[k] for k in z.files]
    fin = ncfg.layers[0].fmt("input")
    assert len(raw) == 4 and all(x.shape[1] == 13 and fin.min_int <= x.min() and x.max() <= fin.max_int for x in raw)
    _, test = u.model.datasets()
    q = golden.quantize(u.model.params, ncfg)
    want = [int(golden.run(q, test.seqs[k][None], ncfg).classes[0]) for k in range(4)]  # float input, quantized inside
    assert list(u.golden_pred) == want and u.frames == [len(s) for s in test.seqs[:4]]
    lines, ok = hwlink.network_table(u, want)
    assert ok and len(lines) == 5
    assert not hwlink.network_table(u, want[:3] + [(want[3] + 1) % 10])[1]
    assert not hwlink.network_table(u, want[:3])[1]


def test_network_cost_is_cached_by_everything_the_netlist_depends_on(ctx, tmp_path):
    sw = sweep.load(STUDY)
    by = {p.label: p for p in sw.points}
    net = ctx.model.params
    a = run.point_config(ctx, by["8-bit everywhere"], 0)
    b = run.point_config(ctx, by["layer 1 at 4 bits"], 1)
    qa, qb = golden.quantize(net, a), golden.quantize(net, b)
    key = run.network_key(a, qa, "ecp5", "src")
    assert key == run.network_key(run.point_config(ctx, by["8-bit everywhere"], 7), qa, "ecp5", "src")  # names aside
    assert len({key, run.network_key(b, qb, "ecp5", "src"), run.network_key(a, qa, "ice40", "src"),
                run.network_key(a, qa, "ecp5", "other")}) == 4
    qa.head.bias[0] += 1
    assert run.network_key(a, qa, "ecp5", "src") != key   # the head's parameters count
    qa.head.bias[0] -= 1
    (tmp_path / key).mkdir()
    (tmp_path / key / "result.json").write_text('{"hw_status": "ok", "luts": 7}')
    assert run.network_cost(a, net, "ecp5", "src", cache=tmp_path) == {"hw_status": "ok", "luts": 7}
    assert run.network_cost(a, net, "none", "src", cache=tmp_path)["hw_status"] == "skipped"
