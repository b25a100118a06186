"""The mutation harness (verify.mutate) and its mutant list.

The list cannot rot silently: every mutant's original text occurs exactly once in today's source.
The harness itself runs end to end on two mutants written here: one that a test kills and one that
changes nothing a test can see (``bits_for``'s ``1 if signed else 0`` spelled ``int(signed)``).
"""
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from verify import mutate

ROOT = Path(__file__).resolve().parent.parent


def test_every_original_occurs_once_and_every_replacement_differs():
    mutants = mutate.load()
    assert len(mutants) >= 30
    dirs = {m.file.split("/")[0] for m in mutants}
    assert {"model", "rtl", "hls"} <= dirs
    for m in mutants:
        assert (ROOT / m.file).read_text().count(m.original) == 1, m.id
        assert m.replacement != m.original, m.id
        for sel in m.tests:
            assert (ROOT / shlex.split(sel)[0].split("::")[0]).is_file(), (m.id, sel)


def test_the_issues_two_survivors_are_listed():
    """The output queue's credits one above its depth, and the GRU's h-sum shifts swapped in the gateware."""
    by_file = {(m.file, m.original) for m in mutate.load()}
    assert ("rtl/cell.py", "credits = Signal(range(self.out_depth + 1), init=self.out_depth)") in by_file
    assert ("rtl/kinds/gru.py", "hsum = (p.at(zn, s) << dp.zn_shift) + (p.at(zh, s) << dp.zh_shift)") in by_file


@pytest.mark.parametrize("field,value,needle", [
    ("original", "no such text anywhere", "occurs 0 times"),
    ("replacement", "return -(1 << (self.width - 1)) if self.signed else 0", "replacement equals the original"),
    ("file", "model/nowhere.py", "does not exist"),
])
def test_bad_lists_are_refused(tmp_path, field, value, needle):
    m = {"id": "x", "file": "model/fixedpoint.py", "original": "return -(1 << (self.width - 1)) if self.signed else 0",
         "replacement": "return 0", "bug": "b", "tests": ["tests/test_fixedpoint.py"]}
    m[field] = value
    path = tmp_path / "m.toml"
    path.write_text("[[mutant]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in m.items()))
    with pytest.raises(mutate.MutantError, match=needle):
        mutate.load(path)


def test_harness_kills_one_and_reports_an_equivalent_one_surviving(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text("""
[[mutant]]
id = "min-int-symmetric"
file = "model/fixedpoint.py"
original = "return -(1 << (self.width - 1)) if self.signed else 0"
replacement = "return -(1 << (self.width - 1)) + 1 if self.signed else 0"
bug = "Fmt.min_int symmetric"
tests = ["tests/test_fixedpoint.py -k test_format_properties"]

[[mutant]]
id = "bits-for-int-signed"
file = "model/fixedpoint.py"
original = "return max_abs.bit_length() + (1 if signed else 0)"
replacement = "return max_abs.bit_length() + int(signed)"
bug = "none: the same value spelled differently"
tests = ["tests/test_fixedpoint.py -k test_bits_for"]
equivalent = "int(True) == 1 and int(False) == 0"
""")
    mutants = mutate.load(path)
    lines = []
    out = mutate.run(mutants, jobs=1, out=tmp_path / "out", progress=lines.append)
    assert [(o.id, o.status) for o in out] == [("min-int-symmetric", "killed"), ("bits-for-int-signed", "survived")]
    assert out[0].by.startswith("tests/test_fixedpoint.py::test_format_properties")
    assert len(lines) == 2 and "killed by tests/test_fixedpoint.py::test_format_properties" in lines[0]
    md = mutate.report(mutants, out, 1.0, out=tmp_path / "out")
    assert md.startswith("# Mutation score: 1 of 2 killed (50.0 %)")
    assert "`bits-for-int-signed` (model/fixedpoint.py): none: the same value spelled differently; equivalent: " \
           "int(True) == 1" in md
    assert json.loads((tmp_path / "out" / "report.json").read_text())["killed"] == 1
    copy = tmp_path / "out" / "work-0"
    committed = subprocess.run(["git", "show", "HEAD:model/fixedpoint.py"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout
    assert (copy / "model" / "fixedpoint.py").read_text() == committed   # restored after each mutant


def test_copy_imports_are_checked(tmp_path):
    """A copy without the packages would import them from elsewhere: refused."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match="the copy in .* (imports model from|cannot import)"):
        mutate.check_imports(tmp_path / "empty")


def test_cli_errors_name_the_parameter(capsys):
    assert mutate.main(["--only", "no-such-mutant"]) == 2
    assert "--only: unknown mutant id(s) no-such-mutant" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mutate.main(["--jobs", "0"])
    assert "--jobs must be at least 1, not 0" in capsys.readouterr().err
