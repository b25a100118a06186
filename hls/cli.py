"""The parameters a generator's command line uses (the argument types are :mod:`model.cli`'s)."""
from __future__ import annotations

from pathlib import Path

from model.config import Config
from model.params import CellParams, QParams, quantize


class ParamsFileError(ValueError):
    """A ``--params`` file that cannot be used."""


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
