"""Studies of outside models and data: the example (examples/outside/) end to end against onnxruntime,
data files, sweep keys, input quantization by the point's input modes (hand-computed), failed points,
Config.replace with partial modes, and the CLI's --out and errors."""
import json

import numpy as np
import onnxruntime as ort
import pytest

from model import golden
from model.config import Config, ConfigError, Mode
from model.fixedpoint import Fmt
from model.params import quantize
from study import data, inputs, models, report, run, sweep

EXAMPLE = run.ROOT / "examples" / "outside"
SUBSET = 80  # test sequences the end-to-end runs use


def _quiet(*a, **k):
    pass


def _example(name, points=3):
    """The example sweep ``name``, cut to its first ``points`` points and :data:`SUBSET` test sequences."""
    sw = sweep.load(EXAMPLE / name)
    sw.points, sw.test_subset, sw.target = sw.points[:points], SUBSET, "none"
    return sw


@pytest.fixture(scope="module")
def onnx_result():
    return run.run(_example("onnx_sweep.toml"), jobs=1, synth=False, progress=False, log=_quiet)


def test_example_float_accuracy_is_onnxruntimes(onnx_result, tmp_path):
    """The report's float accuracy is that of the ONNX graph run by onnxruntime (float32) on the same test
    sequences, each alone and unpadded, normalised with the training frames' mean and deviation (NumPy)."""
    z = np.load(EXAMPLE / "waveforms.npz")
    frames = np.concatenate([x[:n] for x, n in zip(z["x_train"], z["len_train"])]).astype(np.float64)
    mean, std = frames.mean(0), frames.std(0)
    sess = ort.InferenceSession(str(EXAMPLE / "waveforms_lstm16.onnx"))
    pred = np.array([sess.run(None, {"x": ((x[:n] - mean) / std).astype(np.float32)[None]})[0].argmax()
                     for x, n in zip(z["x_test"][:SUBSET], z["len_test"][:SUBSET])])
    ctx = onnx_result["context"]
    assert np.array_equal(pred, ctx.float_pred)  # float32 onnxruntime and the float64 reference agree on every class
    out = report.write(onnx_result, tmp_path / "rep")
    summ = json.loads((out / "summary.json").read_text())
    assert summ["float_accuracy"] == pytest.approx(np.mean(pred == z["y_test"][:SUBSET]), abs=0)
    md = (out / "report.md").read_text()
    assert "waveforms_lstm16.onnx" in md and "data file `examples/outside/waveforms.npz`" in md
    # the pytorch float32 accuracy on the whole test set, recorded by make_example.py, is the reference's
    full = models.open_model(EXAMPLE / "waveforms_lstm16.onnx", EXAMPLE / "waveforms.npz", normalise=True)
    _, test = full.datasets()
    meta = json.loads((EXAMPLE / "waveforms_lstm16.json").read_text())
    acc = np.mean(full.head(full.float_last_h(test.seqs)).argmax(1) == test.labels)
    assert acc == pytest.approx(meta["float_test_accuracy"], abs=0.5 / len(test.seqs))


def test_example_points(onnx_result):
    """16 bits: the golden model's class equals float on at least 79 of the 80 sequences; uniform
    ap_fixed<8,3> with truncation and wraparound (inputs too) loses accuracy; the kit-format copy of the
    model (a single cell, not a network) gives the same accuracy and agreement at every point."""
    rows = onnx_result["rows"]
    assert rows[0]["agreement"] >= 79 / SUBSET
    assert rows[2]["accuracy"] < rows[0]["accuracy"] - 0.05
    kit = run.run(_example("kit_sweep.toml"), jobs=1, synth=False, progress=False, log=_quiet)
    assert not kit["context"].model.network and onnx_result["context"].model.network
    for a, b in zip(rows, kit["rows"]):
        assert (a["accuracy"], a["agreement"], a["sat_input"]) == (b["accuracy"], b["agreement"], b["sat_input"])


def test_input_modes_hand_computed():
    """s2.2 holds -8..7 (steps of 0.25): 0.375 -> 1.5 LSBs, 2.5 -> 10, -0.375 -> -1.5, -2.25 -> -9."""
    f = Fmt(True, 2, 2)
    x = np.array([0.375, 2.5, -0.375, -2.25])
    raw, n = inputs.quantize_inputs(x, f, "truncate", "wrap")
    assert raw.tolist() == [1, -6, -2, 7] and n == 2          # floor; 10 - 16, -9 + 16
    raw, n = inputs.quantize_inputs(x, f, "half_even", "saturate")
    assert raw.tolist() == [2, 7, -2, -8] and n == 2          # to even; clipped to 7 and -8
    raw, n = inputs.quantize_inputs(x, f, "half_up", "saturate")
    assert raw.tolist() == [2, 7, -1, -8]                     # -1.5 rounds up to -1


def test_point_input_modes_reach_the_golden_model(tmp_path):
    """A point with input_rounding = truncate, input_overflow = wrap: its accuracy and input count equal the
    golden model fed inputs truncated and wrapped by hand (floor, then modulo 2**width)."""
    text = (f'model = "{EXAMPLE / "waveforms_lstm16.json"}"\ndata = "{EXAMPLE / "waveforms.npz"}"\n'
            f'target = "none"\ntest_subset = 40\n[defaults]\nuniform = "ap_fixed<8,2>"\n[[point]]\nlabel = "t"\n'
            f'input_rounding = "truncate"\ninput_overflow = "wrap"\n[[point]]\nlabel = "s"\n')
    (tmp_path / "w.toml").write_text(text)
    res = run.run(sweep.load(tmp_path / "w.toml"), jobs=1, synth=False, progress=False, log=_quiet)
    ctx, cfg = res["context"], res["configs"][0]
    fin = cfg.fmt("input")
    q = quantize(ctx.model.params, cfg)
    correct, outside = 0, 0
    for seq, label in zip(ctx.test.seqs, ctx.test.labels):
        r = np.floor(seq * 2.0 ** fin.frac_bits).astype(np.int64)
        outside += int(np.count_nonzero((r < -2 ** (fin.width - 1)) | (r >= 2 ** (fin.width - 1))))
        xq = (r + 2 ** (fin.width - 1)) % 2 ** fin.width - 2 ** (fin.width - 1)
        h = cfg.fmt("hidden").to_float(golden.run(q, xq[None], cfg).outputs[0, -1])
        correct += int(ctx.model.head(h).argmax() == label)
    t, s = res["rows"]
    assert outside > 0 and t["sat_input"] == outside
    assert t["accuracy"] == correct / len(ctx.test.seqs)
    assert t["accuracy"] != s["accuracy"] or t["max_abs"] != s["max_abs"]
    md = report.markdown(res, [])
    assert "half_even/saturate at the other points; truncate/wrap at #0" in md


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_data_file_drops_padding_and_names_bad_arrays(tmp_path):
    x = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    y = np.array([0, 2])
    p = _npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:1], y_test=y[:1], len_train=np.array([4, 2]))
    train, test = data.load_file(p)
    assert [s.shape for s in train.seqs] == [(4, 3), (2, 3)] and test.seqs[0].shape == (4, 3)
    assert np.array_equal(train.seqs[1], x[1, :2]) and train.n_classes == 3 and train.n_features == 3
    bad = [({"x_test": x[:1]}, r"missing array\(s\) y_test"),
           ({"y_test": y[:1], "len_test": np.array([5])}, r"len_test must be 1 integer lengths from 1 to 4"),
           ({"y_test": np.array([-1])}, r"y_test must be 1 integer labels >= 0"),
           ({"y_test": y[:1], "x_test": x[:1, :, :2]}, r"x_train has 3 features per step but x_test 2"),
           ({"y_test": y[:1], "extra": y}, r"unknown array\(s\) extra")]
    for change, msg in bad:
        arrays = {"x_train": x, "y_train": y, "x_test": x[:1], **change}
        with pytest.raises(data.DataError, match=msg):
            data.load_file(_npz(tmp_path / "b.npz", **arrays))
    with pytest.raises(data.DataError, match=r"does not exist or is not an .npz"):
        data.load_file(tmp_path / "none.npz")


def test_model_and_data_must_fit(tmp_path):
    x = np.zeros((3, 5, 4))
    p = _npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 2]), x_test=x, y_test=np.array([0, 1, 2]))
    with pytest.raises(data.DataError, match=r"4 features per step, but model 'waveforms_lstm16' takes 2 inputs"):
        models.open_model(EXAMPLE / "waveforms_lstm16.onnx", p)
    with pytest.raises(models.ModelError, match=r"ONNX graph: give the sweep's data"):
        models.open_model(EXAMPLE / "waveforms_lstm16.onnx")
    with pytest.raises(models.ModelError, match=r"model file .*nope.onnx does not exist \(a sweep's paths are relative"):
        models.open_model(tmp_path / "nope.onnx", p)
    with pytest.raises(models.ModelError, match=r"normalise applies to ONNX models only"):
        models.open_model("digits_lstm16", normalise=True)
    with pytest.raises(models.ModelError, match=r"not a packaged task .*give the sweep its data file"):
        models.open_model(EXAMPLE / "waveforms_lstm16.json").datasets()


@pytest.mark.parametrize("text,msg", [
    ('model = "m"\ndata = "d.csv"\n', r"data must be a file path ending in .npz, not 'd.csv'"),
    ('model = "m"\nnormalise = "yes"\n', r"normalise must be true or false, not 'yes'"),
    ('model = "m"\n[[point]]\ninput_overflow = "clip"\n', r"input_overflow must be one of saturate, wrap, not 'clip'"),
    ('model = "m"\n[[point]]\nlayers = [{ input_rounding = "truncate" }]\n', r"unknown key\(s\) input_rounding"),
])
def test_sweep_rejects(tmp_path, text, msg):
    (tmp_path / "s.toml").write_text(text + '[[point]]\nlabel = "x"\n')
    with pytest.raises(sweep.SweepError, match=msg):
        sweep.load(tmp_path / "s.toml")


def test_sweep_paths_are_relative_to_the_sweep_file():
    sw = sweep.load(EXAMPLE / "onnx_sweep.toml")
    assert sw.model == str(EXAMPLE / "waveforms_lstm16.onnx") and sw.data == str(EXAMPLE / "waveforms.npz")
    assert sw.normalise is True


def test_a_failed_point_is_reported_and_the_others_run(tmp_path, monkeypatch):
    real = run.evaluate

    def evaluate(ctx, cfg, *a, **k):
        if cfg.name.endswith("-1"):
            raise RuntimeError("injected")
        return real(ctx, cfg, *a, **k)

    monkeypatch.setattr(run, "evaluate", evaluate)
    text = ('model = "digits_lstm16"\ntarget = "none"\ntest_subset = 20\n[[grid]]\nlabel = "g"\n'
            'weight_bits = [6, 7, 8]\n')
    (tmp_path / "f.toml").write_text(text)
    res = run.run(sweep.load(tmp_path / "f.toml"), jobs=1, synth=False, progress=False, log=_quiet)
    assert [r["index"] for r in res["rows"]] == [0, 2]
    assert res["failed"] == [{"index": 1, "label": "g: weight_bits=7", "group": "g", "error": "RuntimeError: injected"}]
    out = report.write(res, tmp_path / "rep")
    assert "- #1 g: weight_bits=7: RuntimeError: injected" in (out / "report.md").read_text()
    assert json.loads((out / "summary.json").read_text())["failed"][0]["error"] == "RuntimeError: injected"


def test_cli_out_and_errors(tmp_path, capsys):
    text = ('model = "digits_lstm16"\ntarget = "none"\ntest_subset = 10\n[[point]]\nlabel = "p"\n')
    (tmp_path / "c.toml").write_text(text)
    assert run.main([str(tmp_path / "c.toml"), "--jobs", "1", "--no-synth", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "c" / "report.md").is_file()
    (tmp_path / "n.toml").write_text(f'model = "{EXAMPLE / "waveforms_lstm16.onnx"}"\n[[point]]\nlabel = "p"\n')
    assert run.main([str(tmp_path / "n.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "error: model " in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        run.main([str(tmp_path / "c.toml"), "--scheduler", "host:8786"])
    assert e.value.code == 2
    assert "--scheduler must be a Dask scheduler address such as tcp://host:8786, not 'host:8786'" in \
        capsys.readouterr().err


def test_config_replace_partial_modes():
    """rounding/overflow change every point; a point's table one point; a Mode every point; bad values named."""
    cfg = Config.load(run.ROOT / "configs" / "default.toml")
    new = cfg.replace(modes={"overflow": "wrap", "pre": {"rounding": "truncate"}})
    assert all(new.mode(p).overflow == "wrap" for p in new.modes)
    assert new.mode("pre").rounding == "truncate" and new.mode("cell").rounding == cfg.mode("cell").rounding
    assert set(cfg.replace(modes=Mode("half_up", "wrap")).modes.values()) == {Mode("half_up", "wrap")}
    with pytest.raises(ConfigError, match=r"modes.overflow must be one of saturate, wrap, not 'clip'"):
        cfg.replace(modes={"overflow": "clip"})
    with pytest.raises(ConfigError, match=r"modes: unknown requantization point 'gate'"):
        cfg.replace(modes={"gate": {"rounding": "truncate"}})
