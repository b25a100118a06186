"""The board flow: the host driver over the UART pins of the simulated board top, make bitstream, and the
checks on nextpnr's report.

- the board top (rtl.board.BoardLogic) in cocotb on Verilator, driven by host.driver.Device over
  cocotbext-uart: a driver for another config refused, the head loaded, a real spoken-digit test utterance
  classified bit-exact against the golden model (hardware = golden = float), the final state read back;
- make bitstream (python -m rtl.board) on configs/tiny.toml: a .bit file, timing met at 25 MHz, utilisation;
- the fit and timing checks on nextpnr log lines written out by hand;
- bad input (a config without a head for the board simulation, an unknown board) refused in one line.
"""
from pathlib import Path

import pytest

from rtl import board
from sim import board as board_sim

from test_cocotb import need

ROOT = Path(__file__).resolve().parent.parent


def test_board_simulation_classifies_a_real_utterance(capsys):
    need("verilator")
    assert board_sim.main(["--config", str(ROOT / "configs" / "networks" / "fsdd_lstm2x32.toml"),
                           "--utterances", "1"]) == 0
    out = capsys.readouterr().out
    assert "hardware classes equal the golden model's: yes" in out and "refused" in out
    row = out.split("utterance  frames  label  hardware  golden  float\n")[1].splitlines()[0].split()
    assert row[3] == row[4] == row[5]  # hardware = golden = float for this utterance


def test_make_bitstream_on_a_small_config(tmp_path, capsys):
    assert board.main(["--config", str(ROOT / "configs" / "tiny.toml"), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    bit = tmp_path / "tiny" / "board-ulx3s" / "rnn_board.bit"
    assert bit.stat().st_size > 100_000
    assert "slack" in out and "TRELLIS_COMB" in out and "openFPGALoader --board ulx3s" in out


LOG = """Info: Device utilisation:
Info: \t          TRELLIS_IO:      14/    365     3%
Info: \t          MULT18X18D:      {dsp}/    156    18%
Info: \t        TRELLIS_COMB:    5984/  83640     7%
Info: Max frequency for clock '$glbnet$cd_sync.clk': 20.00 MHz (FAIL at 25.00 MHz)
Info: Max frequency for clock '$glbnet$cd_sync.clk': {fmax} MHz ({verdict} at 25.00 MHz)
"""


def test_report_checks():
    ok = board.check(board.report(LOG.format(dsp=29, fmax="50.00", verdict="PASS")))
    # the last report counts; slack = 1/25 MHz - 1/50 MHz = 40 ns - 20 ns
    assert ok["fmax_mhz"] == 50.0 and ok["slack_ns"] == pytest.approx(20.0)
    with pytest.raises(board.BoardError, match=r"MULT18X18D 160 of 156 \(over by 4\)"):
        board.check(board.report(LOG.format(dsp=160, fmax="50.00", verdict="PASS")))
    # 1/25 MHz - 1/20 MHz = 40 ns - 50 ns
    with pytest.raises(board.BoardError, match=r"Fmax 20.00 MHz < 25.00 MHz, slack -10.00 ns"):
        board.check(board.report(LOG.format(dsp=29, fmax="20.00", verdict="FAIL")))


def test_bad_input_is_refused_in_one_line(capsys):
    assert board_sim.main(["--config", str(ROOT / "configs" / "tiny.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a [head]" in err[0]
    assert board.main(["--config", str(ROOT / "configs" / "tiny.toml"), "--board", "nexys"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--board" in err[0] and "ulx3s" in err[0]


def test_host_cli_names_a_missing_serial_port(capsys):
    from host.__main__ import main
    assert main(["--port", "/dev/rnnkit-no-such-port", "--config",
                 str(ROOT / "configs" / "networks" / "fsdd_lstm2x32.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/dev/rnnkit-no-such-port" in err[0] and err[0].startswith("error:")
