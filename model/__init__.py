"""Numerics of the recurrent-cell kit: formats, activations, configs, parameters,
the float reference and the bit-exact golden model.  Pure NumPy; never imports ``rtl``."""
from .config import Config, ConfigError
from .fixedpoint import Fmt
from .network import HeadParams, NetworkParams, from_onnx, from_torch
from .params import CellParams, QParams, quantize as quantize_params

__all__ = ["Config", "ConfigError", "Fmt", "CellParams", "QParams", "HeadParams", "NetworkParams", "from_onnx", "from_torch",
           "quantize_params"]
