"""The network bench (sim.netbench) on the exported network Verilog, Verilator and Icarus.

- configs/networks/stack_small.toml (an LSTM layer under a GRU layer, a head) on both simulators,
  configs/networks/tiny_net.toml (two bidirectional layers, a head) on Icarus: sequences of different
  lengths back to back under random valid/ready, bit-exact on every layer (taps) and on the logits
  and classes, no status bit, and the first output at exactly the cycle model's latency;
- a random initial state written into every cell through ``w``, then every final state read back,
  bit-exact against the golden model started from it;
- the bench fails when the hardware and its golden model disagree: the Verilog built with one set
  of parameters, the bench told another, and the first layer's mismatch is named.
"""
from pathlib import Path

import pytest

from model.network.config import NetworkConfig
from model.network.cycles import NetworkCycleModel
from sim import runner

from test_cocotb import SEED, need

NETWORKS = Path(__file__).resolve().parent.parent / "configs" / "networks"


@pytest.mark.parametrize("sim,name", [("verilator", "stack_small"), ("icarus", "stack_small"),
                                      ("icarus", "tiny_net")])
def test_network_bench(sim, name):
    need(sim)
    path = NETWORKS / f"{name}.toml"
    b = runner.build(path, sim)
    res = runner.run(b, runner.SimJob(mode="network", module=runner.NETWORK_MODULE, seed=SEED, seqs=4, steps=5))
    assert res.passed, res.failure_summary()
    net, cyc, st = res.report["test_network"], res.report["test_network_cycles"], res.report["test_network_state"]
    assert st["state_mismatches"] == 0 and st["state_words"] > 0 and st["mismatches"] == 0
    assert net["mismatches"] == 0 and net["compared"] > 0 and not any(net["status"].values())
    assert net["classes"] == net["golden_classes"] and len(net["classes"]) == 4
    cm = NetworkCycleModel.for_config(NetworkConfig.load(path))
    assert cyc["first_output_latency"] == cm.latency(cyc["steps"]) == cyc["first_output_latency_model"]


def test_network_bench_catches_wrong_parameters():
    need("icarus")
    b = runner.build(NETWORKS / "stack_small.toml", "icarus")
    job = runner.SimJob(mode="network", module=runner.NETWORK_MODULE, seed=SEED, seqs=2, steps=3,
                        tests=["test_network"])
    job.env["RNNKIT_PARAM_SEED"] = str(b.param_seed + 1)  # the bench's golden model has other parameters
    res = runner.run(b, job)
    assert not res.passed
    assert res.report["test_network"]["mismatches"] > 0
    assert "layer 0:" in res.tests["test_network"]["message"]


def test_make_sim_and_make_verilog_on_a_network(tmp_path, capsys):
    """What docs/networks.md shows: make sim (sim.main) on a network config prints the network summary and
    passes; make verilog (rtl.export) writes the network's Verilog (top rnn_network) and ports.json."""
    need("icarus")
    from rtl import export
    from sim import main as sim_main
    assert sim_main.main(["--config", str(NETWORKS / "tiny_net.toml"), "--sim", "icarus", "--seqs", "2",
                          "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "Network simulation summary (icarus)" in out and "bit-exact mismatches" in out
    # layer 1 takes both directions' 4 hidden units of layer 0
    assert "tiny_net (tiny_net.toml): lstm 3->4 x2 (2 lanes); lstm 8->4 x2 (2 lanes); head 3 classes" in out
    assert "0 mismatches" in out and "result                                        PASS" in out
    assert export.main(["--config", str(NETWORKS / "stack_small.toml"), "--out", str(tmp_path)]) == 0
    v = (tmp_path / "stack_small" / "stack_small.v").read_text()
    assert "module rnn_network(" in v
    assert '"top": "rnn_network"' in (tmp_path / "stack_small" / "ports.json").read_text()
