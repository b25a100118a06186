"""The bench's settings: the ``RNNKIT_*`` environment, the config, its baked parameters and the seeds.

==================  ========================================================================
RNNKIT_CONFIG       config TOML the Verilog was built from
RNNKIT_PARAM_SEED   seed of ``CellParams.for_config``; those parameters are baked in
RNNKIT_SEED         stimulus and valid/ready patterns (printed at the start of every test)
RNNKIT_SEQS/STEPS   sequences and steps per sequence for test_cycles / test_stalls (0: default)
RNNKIT_LONG_STEPS   steps of test_long_sequence when more than :data:`LONG_STEPS`
RNNKIT_MODE         full | quick | cycles | main (sizes only; the runner selects the tests)
RNNKIT_REPORT       JSON report written after every test (per test: counts, errors, cycles)
RNNKIT_PROGRESS     optional file that receives progress lines
RNNKIT_SIM          simulator name; X/Z checks run on 4-state simulators (not verilator unless RNNKIT_XCHECK=1)
RNNKIT_INPUTS       optional .npz of raw ``formats.input`` sequences (arrays ``(steps, input)``, in order)
                    that test_cycles and test_stalls stream instead of random ones
RNNKIT_FLOAT_BOUND  optional "max_abs,rms": overrides the float bound (:mod:`.float_bound`)
RNNKIT_SOAK_STEPS   steps of test_soak (default :data:`SOAK_STEPS`)
==================  ========================================================================
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import numpy as np

from model.config import Config
from model.params import CellParams, quantize

#: Default sizes per mode: (seqs, steps) for test_cycles and test_stalls.
DEFAULT_SIZES = {"full": (6, 10), "quick": (2, 2), "cycles": (3, 4), "main": (4, 8)}
LONG_STEPS = 1000
#: Steps of test_soak unless RNNKIT_SOAK_STEPS says otherwise.
SOAK_STEPS = 100_000


@dataclass(frozen=True)
class Settings:
    config_path: str
    cfg: Config
    param_seed: int
    seed: int
    seqs: int
    steps: int
    long_steps: int
    mode: str
    report: str | None
    progress: str | None
    sim: str
    xcheck: bool
    inputs: str | None
    float_bound: str | None
    soak_steps: int = SOAK_STEPS

    @classmethod
    def from_env(cls, e=os.environ) -> "Settings":
        path = e.get("RNNKIT_CONFIG", "configs/tiny.toml")
        mode = e.get("RNNKIT_MODE", "full")
        dseqs, dsteps = DEFAULT_SIZES.get(mode, DEFAULT_SIZES["full"])
        sim = e.get("RNNKIT_SIM", "verilator")
        return cls(path, Config.load(path), int(e.get("RNNKIT_PARAM_SEED", "1")), int(e.get("RNNKIT_SEED", "1")),
                   int(e.get("RNNKIT_SEQS", "0")) or dseqs, int(e.get("RNNKIT_STEPS", "0")) or dsteps,
                   max(LONG_STEPS, int(e.get("RNNKIT_LONG_STEPS", "0"))), mode, e.get("RNNKIT_REPORT"),
                   e.get("RNNKIT_PROGRESS"), sim, sim != "verilator" or e.get("RNNKIT_XCHECK") == "1",
                   e.get("RNNKIT_INPUTS") or None, e.get("RNNKIT_FLOAT_BOUND") or None,
                   int(e.get("RNNKIT_SOAK_STEPS", "0")) or SOAK_STEPS)


def rng_for(seed: int, test: str, stream: int) -> np.random.Generator:
    """Independent, reproducible generators per (seed, test, purpose): 0 data, 1 input pattern, 2 ready."""
    return np.random.default_rng([seed, zlib.crc32(test.encode()), stream])


def baked_qparams(cfg: Config, param_seed: int):
    """The integer parameters the runner bakes into the Verilog for ``param_seed``."""
    return quantize(CellParams.for_config(cfg, seed=param_seed), cfg)
