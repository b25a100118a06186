"""The cell-kind registry: every kind has model, gateware and C++ entries and passes the same checks.

Shared code asks a kind (``model.kinds``) and never compares kind names; these tests walk the
registry, so a new kind is checked the moment it is registered.
"""
import ast
import importlib
from pathlib import Path

import numpy as np
import pytest

from model import golden, kinds, reference
from model.config import Config, ConfigError
from model.cycles import CycleModel
from model.datapath import Datapath
from model.params import CellParams, quantize

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = kinds.variants()

FORMATS = {"input": "s3.9", "weight": "s2.10", "bias": "s3.9", "pre": "s4.10", "gate": "u1.11",
           "candidate": "s1.10", "cell": "s3.12", "cell_act": "s1.11", "hidden": "s1.11", "peephole": "s1.10"}


def config_for(kind, **changes):
    return Config.from_dict({"name": f"k_{kind.name}", "kind": kind.name, **kind.opts, "input_size": 3,
                             "hidden_size": 5, "formats": FORMATS, "lanes": 2,
                             "sigmoid": {"method": "lut_interp", "size": 64, "range": 8.0},
                             "tanh": {"method": "lut_interp", "size": 64, "range": 4.0}, **changes})


def vid(k):
    return repr(k)


def test_registry_lists_the_kinds():
    assert kinds.names() == ("lstm", "gru", "cifg")
    assert {repr(k) for k in VARIANTS} >= {"Lstm(peephole='c_new')", "Gru(reset='before')",
                                           "Cifg(coupling='f=1-i')", "Cifg(coupling='i=1-f')"}


@pytest.mark.parametrize("kind", VARIANTS, ids=vid)
def test_kind_has_model_gateware_and_cpp_entries(kind):
    """Every kind names a gateware post-processor and a C++ emitter that exist and have the contract's
    functions; its declarations are consistent."""
    post = importlib.import_module(kind.gateware)
    assert callable(post.post_process)
    emit = importlib.import_module(kind.cpp)
    assert callable(emit.constants) and callable(emit.step)
    assert sorted(kind.hw_order) == list(range(kind.n_gates))
    assert sorted(g for p in kind.pass_gates for g in p) == list(range(kind.n_gates))
    assert kind.state[0] == ("h", "hidden") and kind.unit_state in {t for _, t in kind.state}
    assert set(kind.points) <= set(kind.all_points) <= set(kinds.all_points())
    assert {t for t, _ in kind.requant_points.values()} <= set(kind.tensors())
    assert set(kind.status.values()) <= set(kind.points)
    assert kind.row_to_h > 0 and (kind.op_ready is None) == (not kind.gate_major)
    assert set(kind.tensors()) <= set(FORMATS)
    for _, fn, fin, fout in kind.activations():
        assert fn in ("sigmoid", "tanh") and {fin, fout} <= set(kind.tensors())


@pytest.mark.parametrize("kind", VARIANTS, ids=vid)
def test_kind_float_golden_and_cycles(kind):
    """The same checks for every kind: float trace consistent with run, golden close to float,
    golden state carries over between calls, cycle model's ideal MAC count."""
    cfg = config_for(kind)
    p = CellParams.for_config(cfg, seed=3)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 6, 3))
    out, tr = reference.run_trace(p, x)
    assert np.array_equal(out, reference.run(p, x)[0]) and np.array_equal(tr["hidden"], out)
    q = quantize(p, cfg)
    res = golden.run(q, x, cfg, trace=True)
    assert set(res.saturated) <= set(kind.points)
    assert set(res.trace) <= set(kind.trace_formats())
    float_err = np.abs(res.outputs_float() - reference.run(q.dequantize(cfg), x)[0]).max()
    assert float_err < 0.02, float_err
    first = golden.run(q, x[:, :3], cfg)
    rest = golden.run(q, x[:, 3:], cfg, state=first.state)
    assert np.array_equal(np.concatenate([first.outputs, rest.outputs], axis=1), res.outputs)
    cm = CycleModel.for_config(cfg)
    assert cm.ideal_cycles_per_step == cfg.rows * (3 + 5) / 2
    assert len(Datapath.from_config(cfg).extra) > 0


@pytest.mark.parametrize("kind", VARIANTS, ids=vid)
def test_kind_params_roundtrip(kind, tmp_path):
    p = CellParams.random(kind.name, 3, 5, seed=2, **kind.opts)
    assert p.w_ih.shape == (kind.n_gates * 5, 3)
    p.save(tmp_path / "p.npz")
    assert CellParams.load(tmp_path / "p.npz") == p


def test_option_errors_name_the_kind():
    with pytest.raises(ConfigError, match=r"peephole is not an option of kind = 'gru' \(it takes: reset\)"):
        kinds.make("gru", peephole="c_new")
    with pytest.raises(ConfigError, match=r"coupling is not an option of kind = 'gru' \(it takes: reset\)"):
        kinds.make("gru", coupling="i=1-f")
    with pytest.raises(ConfigError, match=r"kind must be one of 'lstm', 'gru', 'cifg', not 'rnn'"):
        kinds.make("rnn")


#: Files where a kind's name may appear in a comparison: the kind modules themselves.
KIND_HOMES = ("model/kinds/", "rtl/kinds/", "hls/kinds/", "study/qat_kinds/")
SHARED = ("model", "rtl", "hls", "sim", "study")
#: Kind names, option names and option values of every registered kind.
OPTION_NAMES = set(kinds.option_names())
KIND_NAMES = set(kinds.names())
KIND_WORDS = set(kinds.names()) | OPTION_NAMES | {v for k in kinds.REGISTRY.values() for o in k.options.values()
                                                  for v in o.values if v != "none"}


def _branches_on_kind(path: Path) -> list:
    """Comparisons (==, !=, in) with a kind name, option name or option value, or of a ``.kind`` or
    option attribute (comparing two kinds' names is a branch on the kind too); tables keyed by kind
    names and lookups by a ``.kind`` attribute (a dispatch on the name)."""
    tree = ast.parse(path.read_text())
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            attrs = [n.attr for n in parts if isinstance(n, ast.Attribute)
                     and not (isinstance(n.value, ast.Attribute) and n.value.attr == "dtype")]  # numpy dtype.kind
            consts = [n.value for n in parts if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            consts += [e.value.lower() for n in parts if isinstance(n, (ast.Tuple, ast.List, ast.Set))
                       for e in n.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if any(a in OPTION_NAMES or a == "kind" for a in attrs) or any(c in KIND_WORDS for c in consts):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif isinstance(node, ast.Dict):
            if any(isinstance(k, ast.Constant) and k.value in KIND_NAMES for k in node.keys):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Attribute) and node.slice.attr == "kind":
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


def test_shared_code_never_branches_on_a_kind_name():
    """Outside the kind modules no code compares a kind's name or options (the registry's promise)."""
    hits = []
    for pkg in SHARED:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(KIND_HOMES):
                hits += _branches_on_kind(path)
    assert hits == []


def test_the_branch_finder_finds_branches(tmp_path):
    """The checker above can fail: it flags the forms the old code used."""
    f = ROOT / "build" / "kind_branch_probe.py"
    f.parent.mkdir(exist_ok=True)
    f.write_text("x = cfg.kind == 'lstm'\ny = cfg.reset != 0\nz = 'gru' in names\nw = a.kind == b.kind\n"
                 "v = x.dtype.kind in 'iu'\nSTEPS = {'lstm': f, 'gru': g}\nstep = STEPS[cfg.kind]\n"
                 "d = {'kind': 'lstm'}\nu = layer in ('LSTM', 'GRU')\n")
    try:
        assert [h.split(":")[1] for h in _branches_on_kind(f)] == ["1", "2", "3", "4", "6", "7", "9"]
    finally:
        f.unlink()


def test_model_imports_neither_rtl_nor_amaranth():
    import subprocess
    import sys
    code = ("import sys, model, model.kinds, model.golden, model.reference, model.cycles, model.bench, "
            "model.summary; bad = sorted(m for m in sys.modules if m.split('.')[0] in ('rtl', 'amaranth', 'sim', "
            "'study', 'hls', 'torch')); print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_docs_table_of_row_to_h_matches_the_kinds():
    """docs/kinds.md states each kind's row-to-h latency; it must be the kinds' own number."""
    text = (ROOT / "docs" / "kinds.md").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| row to h"))
    cells = [c.strip() for c in row.strip("|").split("|")[1:]]
    for cell, name in zip(cells, kinds.names()):
        want = sorted({k.row_to_h for k in VARIANTS if k.name == name})
        import re
        assert sorted({int(n) for n in re.findall(r"\d+", cell)}) == want, (name, cell)


@pytest.mark.parametrize("name", ["default", "gru_small"])
def test_config_as_every_other_kind(name):
    """Config.as_kind: same sizes, formats and lanes; formats the other kind needs come from their
    stand-ins, formats it does not use are dropped; model.bench compares every registered kind."""
    base = Config.load(ROOT / "configs" / f"{name}.toml")
    for kind in VARIANTS:
        if kind == base.cell or kind.peep_rows:
            continue
        c = base.as_kind(kind)
        assert c.cell == kind and (c.input_size, c.hidden_size, c.lanes) == (base.input_size, base.hidden_size,
                                                                              base.lanes)
        assert {t for t, f in c.formats.items() if f is not None} == set(kind.tensors())
        for t in kind.tensors():
            assert c.fmt(t) == (base.fmt(t) if base.formats.get(t) else base.fmt({"cell": "pre",
                                                                                  "cell_act": "candidate"}[t]))


def test_model_bench_lists_every_kind(capsys):
    from model import bench
    bench.main(["--config", str(ROOT / "configs" / "tiny.toml"), "--batch", "4", "--steps", "2"])
    out = capsys.readouterr().out
    for cls in kinds.REGISTRY.values():
        assert cls().variant in out
