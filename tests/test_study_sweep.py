"""Sweep files: parsing, defaults, grids, and a clear error for every kind of bad file."""
import pytest

from study import sweep
from study.sweep import SweepError

GOOD = """
name = "mini"
model = "digits_lstm16"
target = "none"
margin = 1.5

[defaults]
weight_bits = 6
cell_bits = 12

[[point]]
label = "uniform"
uniform = "ap_fixed<8,3>"

[[grid]]
label = "g"
weight_bits = [4, 8]
act_bits = [6, 8, 10]
rounding = "truncate"
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_file(tmp_path):
    sw = sweep.load(write(tmp_path, GOOD))
    assert (sw.name, sw.model, sw.target, sw.margin, sw.head) == ("mini", "digits_lstm16", "none", 1.5, "float")
    assert len(sw.points) == 1 + 2 * 3
    first = sw.points[0]
    assert first.label == "uniform" and first.axes == ()
    assert first.settings["uniform"] == "ap_fixed<8,3>"
    assert first.settings["weight_bits"] == 6          # from [defaults]
    g = sw.points[1:]
    assert [(p.settings["weight_bits"], p.settings["act_bits"]) for p in g] == \
        [(4, 6), (4, 8), (4, 10), (8, 6), (8, 8), (8, 10)]
    assert all(p.settings["rounding"] == "truncate" and p.settings["cell_bits"] == 12 for p in g)
    assert g[0].axes == ("weight_bits", "act_bits")
    assert g[0].label == "g: weight_bits=4, act_bits=6"
    w = g[0].widths()
    assert (w["weight"], w["hidden"], w["input"], w["cell"], w["pre"]) == (4, 6, 6, 12, 16)


def test_name_defaults_to_file_stem(tmp_path):
    sw = sweep.load(write(tmp_path, 'model = "m"\n[[point]]\nlabel = "a"\n', "my_study.toml"))
    assert sw.name == "my_study"


def test_default_study_parses():
    from study.run import DEFAULT_STUDY
    sw = sweep.load(DEFAULT_STUDY)
    assert sw.model == "fsdd_lstm32" and len(sw.points) > 20


@pytest.mark.parametrize("text, pattern", [
    ('model = "m"\nfoo = 1\n[[point]]\n', r"unknown key\(s\) foo; accepted: .*model"),
    ('model = "m"\n[[point]]\nweight_bit = 8\n', r"\[\[point\]\] 1: unknown key\(s\) weight_bit; accepted: .*weight_bits"),
    ('model = "m"\n[defaults]\nlabel = "x"\n[[point]]\n', r"\[defaults\]: unknown key\(s\) label"),
    ('model = "m"\n[[point]]\nweight_bits = 40\n', r"weight_bits must be an integer from 2 to 32 \(bits\), not 40"),
    ('model = "m"\n[[point]]\nact_bits = 1\n', r"act_bits must be an integer from 2 to 32 \(bits\), not 1"),
    ('model = "m"\n[[point]]\ncell_bits = "16"\n', r"cell_bits must be an integer from 2 to 32 \(bits\), not '16'"),
    ('model = "m"\n[[point]]\nacc_bits = 8.5\n', r"acc_bits must be an integer from 2 to 32 \(bits\), not 8.5"),
    ('model = "m"\n[[grid]]\nweight_bits = [4, 99]\n', r"\[\[grid\]\] 1: weight_bits must be an integer from 2 to 32 \(bits\), not 99"),
    ('model = "m"\n', r"the sweep is empty: give at least one \[\[grid\]\] or \[\[point\]\]"),
    ('model = "m"\n[defaults]\nweight_bits = 8\n', r"the sweep is empty"),
    ('model = "m"\n[[grid]]\nlabel = "e"\nweight_bits = []\n', r"\[\[grid\]\] 1 \('e'\): weight_bits is an empty list"),
    ('model = "m"\n[[grid]]\nweight_bits = 8\n', r"a grid needs at least one list-valued key"),
    ('model = "m"\n[[point]]\nweight_bits = [4, 8]\n', r"lists are only accepted in a \[\[grid\]\]"),
    ('model = "m"\n[[point]]\nrounding = "nearest"\n', r"rounding must be one of truncate, half_up, half_even, not 'nearest'"),
    ('model = "m"\n[[point]]\noverflow = "clip"\n', r"overflow must be one of saturate, wrap, not 'clip'"),
    ('model = "m"\n[[point]]\nuniform = "q8"\n', r"uniform = 'q8' is not a format"),
    ('model = "m"\n[[point]]\nsigmoid = 3\n', r"sigmoid must be a method name or a table"),
    ('model = "m"\n[[point]]\nlanes = 0\n', r"lanes must be an integer from 1 to 4096 \(MAC lanes\), not 0"),
    ('[[point]]\n', r"model is required"),
    ('model = "m"\ntarget = "asic"\n[[point]]\n', r"target must be one of 'ecp5', 'ice40', 'xilinx', 'none', not 'asic'"),
    ('model = "m"\nhead = "int"\n[[point]]\n', r"head must be one of 'float', 'quantized', not 'int'"),
    ('model = "m"\nmargin = 0.5\n[[point]]\n', r"margin must be a number >= 1.0"),
    ('model = "m"\ntest_subset = -1\n[[point]]\n', r"test_subset must be an integer >= 0"),
    ('model = "m"\n[[point]]\nlabel = "a"\n[[point]]\nlabel = "a"\n', r"two points share the label 'a'"),
    ('model = "m"\npoint = 3\n', r"point must be an array of tables, written \[\[point\]\]"),
    ('model = "m"\n[[point]\n', r"not valid TOML"),
])
def test_bad_files(tmp_path, text, pattern):
    p = write(tmp_path, text)
    with pytest.raises(SweepError, match=pattern) as e:
        sweep.load(p)
    assert str(p) in str(e.value)  # every message names the file


def test_missing_file(tmp_path):
    with pytest.raises(SweepError, match="does not exist"):
        sweep.load(tmp_path / "nope.toml")


def test_point_config_errors_name_the_point(tmp_path):
    """A point whose derived config is invalid (table finer than the pre format resolves) names the point."""
    from study import run
    text = ('model = "digits_lstm16"\ntarget = "none"\n[[point]]\nlabel = "too fine"\nacc_bits = 4\n'
            'sigmoid = { method = "lut", size = 1024, range = 8.0 }\n')
    sw = sweep.load(write(tmp_path, text))
    ctx = run.prepare(sw, synth=False, log=lambda *a: None)
    with pytest.raises(SweepError, match=r"point 'too fine': sigmoid: 1024 entries"):
        run.point_config(ctx, sw.points[0], 0)


def test_unknown_model(tmp_path):
    from study import models, run
    sw = sweep.load(write(tmp_path, 'model = "nosuch"\n[[point]]\n'))
    with pytest.raises(models.ModelError, match=r"model 'nosuch': .* does not exist; available: .*fsdd_lstm32"):
        run.prepare(sw, log=lambda *a: None)
