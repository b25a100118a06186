"""Command-line helpers shared by the kit's generators: integer options that name their make
variable, config loading that names the option, and the parameters a run uses."""
from __future__ import annotations

import argparse
from pathlib import Path

from model.config import Config, ConfigError
from model.params import CellParams, QParams, quantize


class ParamsFileError(ValueError):
    """A ``--params`` file that cannot be used."""


def int_option(name: str, make_var: str, minimum: int):
    """An argparse type accepting an integer >= ``minimum``, naming the option and its make variable on error."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise argparse.ArgumentTypeError(f"{name} ({make_var}) must be {what}, not {text!r}")
        return v
    return parse


def positive_int(name: str, make_var: str):
    return int_option(name, make_var, 1)


def nonneg_int(name: str, make_var: str):
    return int_option(name, make_var, 0)


def load_config_arg(path: str) -> Config:
    """``Config.load`` for a command line: a missing file names the option and the shipped configs."""
    p = Path(path)
    if not p.is_file():
        shipped = sorted(str(c) for c in Path("configs").glob("*.toml"))
        raise ConfigError(f"--config (CONFIG) = {path!r}: no such file; accepted: a config TOML file"
                          + (f", e.g. {', '.join(shipped)}" if shipped else ""))
    return Config.load(p)


def params_for(cfg: Config, params_path: str | None, param_seed: int) -> tuple[QParams, dict]:
    """Quantized parameters from an ``.npz`` file or random ones for ``param_seed``, and how they were made."""
    if params_path:
        if not Path(params_path).is_file():
            raise ParamsFileError(f"--params = {params_path!r}: no such file; accepted: a CellParams .npz file")
        p = CellParams.load(params_path)
        p.check_matches(cfg)
        return quantize(p, cfg), {"params": str(params_path)}
    source = {"params": Path(cfg.params).name} if cfg.params else {"param_seed": param_seed}
    return quantize(CellParams.for_config(cfg, seed=param_seed), cfg), source
