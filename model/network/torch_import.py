"""Import a trained PyTorch recurrent module (any ``num_layers``, ``bidirectional``, ``batch_first``)
and an optional ``nn.Linear`` head as :class:`~model.network.NetworkParams`.

The kind comes from the registry (a kind's ``torch_class``); PyTorch's GRU is ``reset = 'after'``
and its LSTM ``peephole = 'none'``.  ``batch_first`` changes no weight: the kit's networks always
take ``x`` as ``(batch, steps, input)``.
"""
from __future__ import annotations

import numpy as np

from .. import kinds
from ..params import CellParams
from .params import HeadParams, NetworkParams


def _array(module, attr):
    return getattr(module, attr).detach().cpu().double().numpy().copy()


def from_torch(module, head=None) -> NetworkParams:
    """``module`` (``torch.nn.LSTM`` / ``torch.nn.GRU``) and ``head`` (``torch.nn.Linear`` or None).

    Raises ``TypeError`` for another module type and ``ValueError`` for ``proj_size != 0`` or a head
    whose ``in_features`` is not the module's output size.
    """
    import torch.nn as nn

    by_class = {k.torch_class: k.name for k in kinds.REGISTRY.values() if k.torch_class}
    kind = next((n for c, n in by_class.items() if isinstance(module, getattr(nn, c))), None)
    if kind is None:
        raise TypeError(f"from_torch takes one of {', '.join('torch.nn.' + c for c in by_class)}, "
                        f"not {type(module).__name__}")
    name = type(module).__name__
    if getattr(module, "proj_size", 0):
        raise ValueError(f"{name} has proj_size = {module.proj_size}; projected LSTMs are not supported "
                         f"(proj_size must be 0)")
    layers = []
    for i in range(module.num_layers):
        layer = []
        for suffix in ("", "_reverse")[: 2 if module.bidirectional else 1]:
            w_ih, w_hh = _array(module, f"weight_ih_l{i}{suffix}"), _array(module, f"weight_hh_l{i}{suffix}")
            if module.bias:
                b_ih, b_hh = _array(module, f"bias_ih_l{i}{suffix}"), _array(module, f"bias_hh_l{i}{suffix}")
            else:
                b_ih = b_hh = np.zeros(w_ih.shape[0])
            layer.append(CellParams(kind, w_ih, w_hh, b_ih, b_hh))
        layers.append(tuple(layer))
    hp = None
    if head is not None:
        if not isinstance(head, nn.Linear):
            raise TypeError(f"head must be a torch.nn.Linear, not {type(head).__name__}")
        out = module.hidden_size * (2 if module.bidirectional else 1)
        if head.in_features != out:
            raise ValueError(f"head has in_features = {head.in_features} but the {name} gives {out} features "
                             f"({'2 directions x ' if module.bidirectional else ''}hidden {module.hidden_size})")
        bias = _array(head, "bias") if head.bias is not None else np.zeros(head.out_features)
        hp = HeadParams(_array(head, "weight"), bias)
    return NetworkParams(layers, hp)
