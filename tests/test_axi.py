"""The AXI wrapper (rtl.axi) on both simulators with cocotbext-axi (sim.axibench), and its register map.

- configs/tiny.toml (a single cell, wrapped as a one-layer network) on Verilator, configs/networks/tiny_net.toml
  (two bidirectional layers and a head) on Icarus: bit-exact under random pauses on both streams, a reload of
  other parameters and a random initial state through AXI4-Lite, the final state read back, every flag an
  input can set observed and cleared, refused accesses answered SLVERR;
- the bench fails when the hardware and its golden model disagree;
- the register map's files: JSON, a C header a C compiler accepts, Markdown.
"""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from model.network.config import NetworkConfig
from rtl.network import address_model
from rtl.regmap import ID_MAGIC, RegisterMap
from sim import runner

from test_cocotb import SEED, need

ROOT = Path(__file__).resolve().parent.parent
TINY, TINY_NET = ROOT / "configs" / "tiny.toml", ROOT / "configs" / "networks" / "tiny_net.toml"


def _run(path, sim, tests=None, **env):
    b = runner.build(path, sim, wrapper="axi")
    job = runner.SimJob(mode="axi", module=runner.AXI_MODULE, seed=SEED, seqs=3, steps=4, tests=tests)
    job.env.update(env)
    return runner.run(b, job)


@pytest.mark.parametrize("sim,path", [("verilator", TINY), ("icarus", TINY_NET)])
def test_axi_bench(sim, path):
    need(sim)
    res = _run(path, sim)
    assert res.passed, res.failure_summary()
    s, r, f = (res.report[t] for t in ("test_axi_stream", "test_axi_reload_and_state", "test_axi_flags"))
    assert s["compared"] > 0 and s["counters"]["SEQUENCES"] == 3 and r["param_writes"] > 0 and r["state_words"] > 0
    # the flags the bench must have set and cleared on these configs
    must = {"bad_access", "err_addr", "l0_err_addr", "l0_err_busy", "l0_err_framing", "l0_sat_pre"} if path == TINY \
        else {"bad_access", "err_addr", "l0_f_err_addr", "l1_r_err_addr", "l0_f_err_busy", "l0_err_long",
              "l0_f_sat_pre"}
    assert must <= set(f["observed_and_cleared"]), f


def test_axi_bench_catches_wrong_parameters():
    need("verilator")
    res = _run(TINY, "verilator", ["test_axi_stream"], RNNKIT_PARAM_SEED="2")  # the bench's golden model differs
    assert not res.passed
    assert "output:" in res.tests["test_axi_stream"]["message"]


def test_register_map_files(tmp_path):
    """regmap.json, the C header (compiled with a check of the ID), regmap.md, from rtl.axi.write_verilog."""
    from rtl.axi import write_verilog
    ncfg = NetworkConfig.load(TINY_NET)
    paths = write_verilog(ncfg, None, tmp_path)
    rm = RegisterMap.for_config(ncfg)
    d = json.loads(paths["json"].read_text())
    assert [r["name"] for r in d["registers"]][:3] == ["ID", "VERSION", "CONFIG_ID"]
    assert d["registers"][0]["value"] == 0x524E4E4B == ID_MAGIC
    assert {r["name"]: r["offset"] for r in d["registers"]} == {r.name: r.offset for r in rm.registers}
    assert all(r["offset"] == 4 * k for k, r in enumerate(d["registers"]))
    flags = [b for r in d["registers"] if r["name"].startswith("STATUS") for b in r["bits"]]
    assert flags == list(address_model(ncfg).status.shape().members)
    assert "| `0x0000` | `ID` | ro | `0x524E4E4B` |" in paths["markdown"].read_text()
    if shutil.which("gcc") or shutil.which("g++"):
        cc = shutil.which("gcc") or shutil.which("g++")
        src = tmp_path / "t.c"
        src.write_text(f'#include "{paths["header"].name}"\n'
                       "int main(void) { return !(RNN_ID_VALUE == 0x524E4E4Bu && RNN_ID == 0 && RNN_STATUS0 > RNN_ID"
                       " && RNN_PARAMS_BASE == (1u << (RNN_ADDR_BITS - 2))); }\n")
        subprocess.run([cc, "-Wall", "-Werror", "-o", str(tmp_path / "t"), str(src)], check=True, cwd=tmp_path)
        assert subprocess.run([str(tmp_path / "t")]).returncode == 0


def test_flag_registers_decode_their_bits():
    """tiny's STATUS0 holds its cell's seven bits (sat_pre, sat_cell, sat_hidden, err_framing, err_overrun,
    err_addr, err_busy) and the network's err_addr, bit 0 first: 0b1010_0001 reads as sat_pre, err_addr
    of the cell and err_addr of the network; writing 0xFF clears all eight."""
    rm = RegisterMap.for_config(NetworkConfig.load(TINY))
    assert [r.name for r in rm.flag_registers] == ["ERRORS", "STATUS0"]
    st = rm.register("STATUS0")
    got = st.decode(0b1010_0001)
    assert {n for n, v in got.items() if v} == {"l0_sat_pre", "l0_err_addr", "err_addr"} and len(got) == 8
    assert st.all_bits == 0xFF and rm.register("ERRORS").decode(1) == {"bad_access": 1}
    assert rm.status_location("l0_err_addr") == ("STATUS0", 5)


def test_config_id_tells_configs_apart():
    a, b = NetworkConfig.load(TINY), NetworkConfig.load(TINY_NET)
    from rtl.regmap import config_id
    assert config_id(a) != config_id(b)
    assert config_id(a) == config_id(NetworkConfig.load(TINY))
    c = NetworkConfig.from_cell(a.layers[0].replace(lanes=1))
    assert config_id(c) != config_id(a)
