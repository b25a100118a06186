"""Networks: stacks of recurrent layers (one or two directions each) with an optional dense head.

:class:`NetworkParams` holds the float parameters, :func:`from_torch` and :func:`from_onnx` import
trained models, :func:`run` and :func:`classify` are the float reference; :class:`NetworkConfig`
holds the formats of every layer and the head, :mod:`model.network.golden` is the bit-exact model (import it as a submodule).
A single cell is a one-layer network.
"""
from .config import NetworkConfig
from .head import HeadConfig
from .onnx_import import OnnxImportError, from_onnx
from .params import HeadParams, NetworkParams
from .reference import classify, run
from .torch_import import from_torch

__all__ = ["HeadConfig", "HeadParams", "NetworkConfig", "NetworkParams", "OnnxImportError", "classify",
           "from_onnx", "from_torch", "run"]
