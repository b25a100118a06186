"""C++ step of the CIFG: the LSTM family's (:mod:`hls.kinds.lstm`), three rows per unit."""
from .lstm import constants, step

__all__ = ["constants", "step"]
