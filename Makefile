# Front door of the kit. Every target builds the virtual environment first.
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
CONFIG  ?= configs/default.toml
SIM     ?= verilator
SEED    ?= 1
SEQS    ?= 3
STEPS   ?= 4
WAVES   ?= 0
STAMP   := $(VENV)/.installed
STUDY   ?= configs/studies/default.toml
BOARD   ?= ulx3s
TARGETS ?= ecp5
KINDS   ?= 0
SOAK_STEPS ?= 100000
FORMAL_DEPTH ?= 40

.PHONY: venv iverilog gxx lz4 test sim soak bench verilog ip bitstream board-sim synth explore fmax hls vectors train quant qat mixed hls4ml-compare mutate formal clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# Icarus Verilog comes from Debian; installed only when missing and apt-get can run as root.
iverilog:
	@if command -v iverilog >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing iverilog with apt-get"; \
	  (apt-get install -y -q iverilog >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q iverilog >/dev/null)) \
	  || echo "apt-get could not install iverilog; Icarus tests will skip"; \
	else echo "iverilog not found and cannot be installed here (needs root and apt-get): Icarus tests will skip"; fi

test: $(STAMP) iverilog gxx
	$(PY) -m pytest -n 2 --dist worksteal -q tests

# Verilator's FST writer needs Debian's liblz4-dev (without it WAVES=1 writes a far larger VCD); installed
# for WAVES=1 only when missing and apt-get can run as root.
lz4:
	@if $(PY) -c 'import sys, sim.runner as r; sys.exit(r.waves_note("verilator") is not None)'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing liblz4-dev with apt-get (FST waveforms)"; \
	  (apt-get install -y -q liblz4-dev >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q liblz4-dev >/dev/null)) \
	  || echo "apt-get could not install liblz4-dev; Verilator writes VCD instead of FST"; \
	else echo "liblz4-dev not found and cannot be installed here (needs root and apt-get): Verilator writes VCD instead of FST"; fi

sim: $(STAMP) $(if $(filter icarus,$(SIM)),iverilog) $(if $(filter 1,$(WAVES)),$(if $(filter verilator,$(SIM)),lz4))
	$(PY) -m sim.main --config "$(CONFIG)" --sim $(SIM) --seed $(SEED) --seqs $(SEQS) --steps $(STEPS) \
	  $(if $(filter 1,$(WAVES)),--waves)

bench: $(STAMP)
	$(PY) -m model.bench
	$(PY) -m sim.bench

verilog: $(STAMP)
	$(PY) -m rtl.export --config $(CONFIG) --out build

# The AXI core of CONFIG as one folder, build/<config name>/ip/: Verilog (top rnn_axi), the register map as
# JSON, C header and Markdown, and a FuseSoC core (python -m rtl.ip; docs/board.md).
ip: $(STAMP)
	$(PY) -m rtl.ip --config $(CONFIG) --out build

# A bitstream of CONFIG for BOARD (ulx3s: LFE5U-85F) with the UART host link and status LEDs: Yosys,
# nextpnr-ecp5 and ecppack from YoWASP (python -m rtl.board; several minutes); fails on a design that does not
# fit or misses timing; prints utilisation, Fmax and slack. Output in build/<config name>/board-<board>/.
bitstream: $(STAMP)
	$(PY) -m rtl.board --config $(CONFIG) --board $(BOARD) --out build

# The board top in cocotb (Verilator), driven through its UART pins by the host driver (python -m sim.board):
# classifies real test utterances of a trained network config (default configs/networks/fsdd_lstm2x32.toml).
board-sim: $(STAMP)
	$(PY) -m sim.board --config "$(if $(filter command line environment,$(origin CONFIG)),$(CONFIG),configs/networks/fsdd_lstm2x32.toml)" \
	  --board $(BOARD)

# Synthesis of CONFIG: Yosys and nextpnr for ECP5 by default (about 1.5 min for the default config; an
# unchanged rerun prints the cached report in seconds). TARGETS=ecp5,ice40,xilinx adds targets (run in
# parallel; a target whose largest part cannot hold the design is skipped with a note); KINDS=1 adds the
# other cell kinds at CONFIG's sizes, side by side. Results and logs in build/<config name>/.
synth: $(STAMP)
	@case "$(KINDS)" in 0|1) ;; *) echo "error: KINDS must be 0 or 1, not '$(KINDS)'" >&2; exit 2;; esac
	$(PY) -m rtl.synth --config $(CONFIG) --out build --targets "$(TARGETS)" $(if $(filter 1,$(KINDS)),--compare-kinds)

# Design-space explorer (python -m rtl.explore; docs/explore.md): CONFIG at every lanes (and beat, interleave) the
# config accepts, the cycle model and cached ECP5 synthesis per point (1-3 minutes each when not cached), a table
# (Markdown, CSV, JSON), a plot and the Pareto front in build/explore/<config name>/ (or <OUT>/<config name>/), and
# the cheapest point within BUDGET microseconds per step. LANES=1,4,16 (and BEAT, INTERLEAVE) choose the points;
# SYNTH=0 gives the cycle model alone.
explore: $(STAMP)
	$(PY) -m rtl.explore --config "$(CONFIG)" $(if $(LANES),--lanes "$(LANES)") $(if $(BEAT),--beat "$(BEAT)") \
	  $(if $(INTERLEAVE),--interleave "$(INTERLEAVE)") $(if $(BUDGET),--budget-us "$(BUDGET)") \
	  $(if $(filter 0,$(SYNTH)),--no-synth) $(if $(OUT),--out "$(OUT)")

# ECP5 Fmax of every shipped config (configs/, configs/studies/ aside) against its clock target: 125 MHz for the
# default LSTM and GRUs, 110 MHz for the others (python -m rtl.fmax; docs/gateware.md#clock). Cached synthesis per
# config into build/fmax/<config name>/ (1-8 minutes each when not cached), a table, build/fmax/fmax.md and
# fmax.json; fails when a config misses its target. CONFIGS=a.toml,b.toml measures those alone.
fmax: $(STAMP)
	$(PY) -m rtl.fmax $(if $(CONFIGS),--configs "$(CONFIGS)")

# g++ builds the C++ reference's testbench; installed only when missing and apt-get can run as root.
gxx:
	@if command -v g++ >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing g++ with apt-get"; \
	  (apt-get install -y -q g++ >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q g++ >/dev/null)) \
	  || echo "apt-get could not install g++; the C++ testbench cannot be built"; \
	else echo "g++ not found and cannot be installed here (needs root and apt-get): the C++ testbench cannot be built"; fi

hls: $(STAMP) gxx
	$(PY) -m hls.cpp --config $(CONFIG) --out build --compile

vectors: $(STAMP)
	$(PY) -m hls.vectors --config $(CONFIG) --out build --seqs $(SEQS) --steps $(STEPS) --seed $(SEED)

# Trains the study's LSTM/GRU models (PyTorch) into models/; the committed files are what it writes.
train: $(STAMP)
	$(PY) -m study.train

# Runs a quantization sweep (golden model + synthesis cost) on a local Dask cluster into
# reports/quant/<study>/, or <OUT>/<study>/ when OUT is given.
quant: $(STAMP)
	$(PY) -m study.run "$(STUDY)"$(if $(OUT), --out "$(OUT)")

# hls4ml 1.3 against its bit-exact profile (model/hls4ml_profile.py) and the kit's golden model: hls4ml's C++
# simulation on every test sequence, accuracy and speed, into reports/hls4ml/ (about 20 minutes; needs g++).
hls4ml-compare: $(STAMP) gxx
	$(PY) -m study.hls4ml_compare

# Quantization-aware training against post-training quantization, 8 down to 2 bits, for the spoken-digit LSTM
# and GRU, each QAT model checked bit-exact against the golden model on the whole test set (python -m study.qat;
# about 14 minutes on one core): reports/qat/.
qat: $(STAMP)
	$(PY) -m study.qat

# Mixed precision: the fewest ECP5 LUTs within 0.5 pp of float, per-tensor widths and activation methods searched
# with a cost model fitted to synthesis (python -m study.mixed; up to 13 syntheses, cached in build/quant/synth/,
# about 20 minutes when none is cached): configs/mixed/fsdd_lstm32.toml and reports/mixed/. MODEL=fsdd_lstm2x32
# searches the 2-layer network per layer (8 network syntheses of 2 to 8 minutes each): configs/mixed/
# fsdd_lstm2x32.toml and reports/mixed/fsdd_lstm2x32/.
mixed: $(STAMP)
	$(PY) -m study.mixed$(if $(MODEL), --model "$(MODEL)")

# Mutation run: every mutant of verify/mutants.toml in a copy of the committed tree under build/mutate/,
# its tests run until one fails; prints the score and the survivors (a few minutes).
mutate: $(STAMP) gxx
	$(PY) -m verify.mutate

# The long run: SOAK_STEPS steps on SIM with random resets and parameter reloads, bit-exact throughout
# (python -m sim.soak); configs/tiny.toml unless CONFIG is given on the command line (about 4 minutes).
soak: $(STAMP) $(if $(filter icarus,$(SIM)),iverilog)
	$(PY) -m sim.soak --config "$(if $(filter command line environment,$(origin CONFIG)),$(CONFIG),configs/tiny.toml)" \
	  --sim $(SIM) --steps $(SOAK_STEPS) --seed $(SEED)

# Formal proofs (SymbiYosys): every cell kind at input 1, hidden 2, lanes 1, every property set by BMC to
# FORMAL_DEPTH cycles, stream and memory also by k-induction (python -m verify.formal; docs/formal.md).
formal: $(STAMP)
	$(PY) -m verify.formal --depth $(FORMAL_DEPTH) --induction stream,memory

clean:
	rm -rf build .pytest_cache .hypothesis
