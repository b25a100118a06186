"""Import a trained PyTorch recurrent module (any ``num_layers``, ``bidirectional``, ``batch_first``)
and an optional ``nn.Linear`` head as :class:`~model.network.NetworkParams`.

The kind comes from the registry (a kind's ``torch_class``); PyTorch's GRU is ``reset = 'after'``
and its LSTM ``peephole = 'none'``.  ``batch_first`` changes no weight: the kit's networks always
take ``x`` as ``(batch, steps, input)``.
"""
from __future__ import annotations

import numpy as np

from ..params import torch_array, torch_cell, torch_kind
from .params import HeadParams, NetworkParams


def from_torch(module, head=None) -> NetworkParams:
    """``module`` (``torch.nn.LSTM`` / ``torch.nn.GRU``) and ``head`` (``torch.nn.Linear`` or None).

    Raises ``TypeError`` for another module type and ``ValueError`` for ``proj_size != 0`` or a head
    whose ``in_features`` is not the module's output size.
    """
    import torch.nn as nn

    kind = torch_kind(module)
    name = type(module).__name__
    directions = ("", "_reverse")[: 2 if module.bidirectional else 1]
    layers = [tuple(torch_cell(module, kind, i, suffix) for suffix in directions) for i in range(module.num_layers)]
    hp = None
    if head is not None:
        if not isinstance(head, nn.Linear):
            raise TypeError(f"head must be a torch.nn.Linear, not {type(head).__name__}")
        out = module.hidden_size * (2 if module.bidirectional else 1)
        if head.in_features != out:
            raise ValueError(f"head has in_features = {head.in_features} but the {name} gives {out} features "
                             f"({'2 directions x ' if module.bidirectional else ''}hidden {module.hidden_size})")
        bias = torch_array(head, "bias") if head.bias is not None else np.zeros(head.out_features)
        hp = HeadParams(torch_array(head, "weight"), bias)
    return NetworkParams(layers, hp)
