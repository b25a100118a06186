"""make ip (python -m rtl.ip): the folder's files, and FuseSoC (PyPI) parsing the core and linting it with
Verilator; a broken Verilog file makes the lint fail, so the check can fail."""
import os
import subprocess
import sys
from pathlib import Path

from rtl import ip
from sim import runner

ROOT = Path(__file__).resolve().parent.parent
FUSESOC = Path(sys.executable).parent / "fusesoc"


def _fusesoc(folder, *args):
    env = dict(os.environ, PATH=f"{runner.verilator_bin_dir()}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(FUSESOC), "--cores-root", str(folder), *args], cwd=folder, env=env,
                          capture_output=True, text=True)


def test_make_ip_writes_a_core_fusesoc_parses_and_lints(tmp_path, capsys):
    assert ip.main(["--config", str(ROOT / "configs" / "networks" / "tiny_net.toml"), "--out", str(tmp_path)]) == 0
    folder = tmp_path / "tiny_net" / "ip"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["tiny_net_axi.v", "regmap.json", "tiny_net_regs.h", "regmap.md", "tiny_net.core"])
    assert "fusesoc --cores-root" in capsys.readouterr().out
    name = ip.vlnv("tiny_net")
    info = _fusesoc(folder, "core-info", name)
    assert info.returncode == 0 and "lint" in info.stdout and "tiny_net.core" in info.stdout, info.stderr
    lint = _fusesoc(folder, "run", "--target", "lint", name)
    assert lint.returncode == 0, lint.stdout[-2000:] + lint.stderr[-2000:]
    v = folder / "tiny_net_axi.v"
    v.write_text(v.read_text() + "\nmodule broken(; endmodule\n")
    assert _fusesoc(folder, "run", "--target", "lint", name).returncode != 0


def test_make_ip_refuses_a_bad_config_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[cell]\nkind = "lstm"\ninput_size = 0\nhidden_size = 4\n')
    assert ip.main(["--config", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "input_size" in err[0]
