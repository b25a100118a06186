"""CIFG post-processor: the LSTM family's (:mod:`rtl.kinds.lstm`) with three rows per unit
(``o``, the computed gate, ``g``) and the derived gate ``1 - x`` formed exactly."""
from .lstm import post_process

__all__ = ["post_process"]
