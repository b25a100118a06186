"""Networks: stacks of recurrent layers (one or two directions each) with an optional dense head.

:class:`NetworkParams` holds the float parameters, :func:`from_torch` and :func:`from_onnx` import
trained models, :func:`run` and :func:`classify` are the float reference.  A single cell is a
one-layer network.
"""
from .params import HeadParams, NetworkParams
from .reference import classify, run
from .onnx_import import OnnxImportError, from_onnx
from .torch_import import from_torch

__all__ = ["HeadParams", "NetworkParams", "OnnxImportError", "classify", "from_onnx", "from_torch", "run"]
