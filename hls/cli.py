"""The parameters a generator's command line uses (the argument types are :mod:`model.cli`'s)."""
from __future__ import annotations

import zipfile
from pathlib import Path

from model.config import Config
from model.network import NetworkParams, golden
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


def network_params_for(ncfg, params_path: str | None, param_seed: int) -> tuple:
    """Quantized network parameters (:class:`~model.network.golden.QNetwork`) from a ``NetworkParams`` ``.npz``
    (``params_path``), else :meth:`NetworkParams.for_config` (the config's ``params`` or random ones of
    ``param_seed``, as ``make verilog`` and ``make sim`` bake in), and how they were made."""
    try:
        if params_path:
            if not Path(params_path).is_file():
                raise ParamsFileError(f"--params = {params_path!r}: no such file; accepted: a NetworkParams .npz file")
            net = NetworkParams.load(params_path)
            net.check_matches(ncfg)
            source = {"params": Path(params_path).name}
        else:
            net = NetworkParams.for_config(ncfg, seed=param_seed)
            source = {"params": Path(ncfg.params).name} if ncfg.params else {"param_seed": param_seed}
    except (OSError, zipfile.BadZipFile) as e:
        raise ParamsFileError(f"params = {params_path or ncfg.params!r}: {e}") from None
    return golden.quantize(net, ncfg), source
