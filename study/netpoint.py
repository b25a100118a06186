"""Network points of a study: the :class:`~model.network.NetworkConfig` of a point and its golden run.

A point's settings apply to every layer; its ``layers`` tables change single
layers (:meth:`study.sweep.Point.layer_settings`).  Each layer's formats take
their widths from its settings and their integer bits from that layer's
calibration; layer ``l > 0`` gets no ``input`` format of its own, because
:class:`~model.network.NetworkConfig` derives it from layer ``l - 1``'s
``hidden`` format.  The head takes ``head_bits`` for its weights, the point's
``bias_bits`` for its bias and ``acc_bits`` for its logits (the requantized
accumulator), with integer bits from the head's calibration; its accumulator
is derived.
"""
from __future__ import annotations

import numpy as np

from model.fixedpoint import Fmt
from model.network import NetworkConfig, golden

from . import calibrate
from .inputs import quantize_inputs

#: What the head's formats take from a point's settings.
HEAD_WIDTHS = {"weight": "head_bits", "bias": "bias_bits", "logits": "acc_bits"}


class PointError(ValueError):
    """A point that does not fit the network (more ``layers`` tables than layers)."""


def layer_formats(ranges: dict, settings: dict, widths: dict, margin: float, layer: int) -> dict:
    """``{tensor: Fmt}`` of one layer: ``uniform``, or calibrated integer bits at ``widths``; no ``input``
    beyond layer 0 (derived from the layer below)."""
    if settings["uniform"]:
        f = Fmt.parse(settings["uniform"])
        fmts = {t: f for t in calibrate.TENSORS}
    else:
        fmts = calibrate.choose_formats(ranges, widths, margin)
    return {t: f for t, f in fmts.items() if layer == 0 or t != "input"}


def head_formats(ranges: dict, settings: dict, margin: float) -> dict:
    """``{weight, bias, logits: Fmt}`` of the head at a point."""
    if settings["uniform"]:
        return {t: Fmt.parse(settings["uniform"]) for t in HEAD_WIDTHS}
    return calibrate.choose_formats(ranges, {t: settings[k] for t, k in HEAD_WIDTHS.items()}, margin)


def config_tables(model, ranges: tuple, point, name: str, margin: float, max_steps: int) -> dict:
    """The network file's tables (``[network]``, one ``[[layer]]`` per layer, ``[head]``) of a point."""
    net = model.params
    layer_ranges, head_ranges = ranges
    if len(point.settings["layers"]) > net.num_layers:
        raise PointError(f"layers has {len(point.settings['layers'])} tables but model {model.name!r} has "
                         f"{net.num_layers} layer(s)")
    layers = [(layer_formats(layer_ranges[i], point.layer_settings(i), point.widths(i), margin, i),
               point.layer_settings(i)) for i in range(net.num_layers)]
    s = point.settings
    return network_tables(model, layers, (head_formats(head_ranges, s, margin), s), name, max_steps)


def network_tables(model, layers: list, head: tuple, name: str, max_steps: int) -> dict:
    """The network file's tables from each layer's ``(formats, settings)`` (``{tensor: Fmt}``; settings with
    ``rounding``, ``overflow``, ``sigmoid``, ``tanh``, ``lanes``) and the head's ``(formats, settings)``
    (its modes from the settings; ignored when the model has no head)."""
    net = model.params
    tables = []
    for i, (fmts, s) in enumerate(layers):
        cell = net.layers[i][0]
        tables.append({"directions": net.directions(i),
                       "cell": {"kind": cell.kind, "hidden_size": cell.hidden_size, **cell.options},
                       "formats": {t: str(f) for t, f in fmts.items()},
                       "modes": {"rounding": s["rounding"], "overflow": s["overflow"]},
                       "activations": {"sigmoid": s["sigmoid"], "tanh": s["tanh"]},
                       "hardware": {"lanes": s["lanes"]}})
    raw = {"name": name, "cell": {"input_size": net.input_size},
           "network": {"layers": net.num_layers, "max_steps": max_steps}, "layer": tables}
    if net.head is not None:
        fmts, s = head
        raw["head"] = {"classes": net.head.classes, "formats": {t: str(f) for t, f in fmts.items()},
                       "modes": {"rounding": s["rounding"], "overflow": s["overflow"]}}
    return raw


def point_config(model, ranges: tuple, point, name: str, margin: float, max_steps: int) -> NetworkConfig:
    """The validated network config of a point (``ConfigError``, ``CalibrationError`` or ``PointError``)."""
    return NetworkConfig.from_toml(config_tables(model, ranges, point, name, margin, max_steps))


def formats(ncfg: NetworkConfig) -> dict:
    """Every format of a network config, flat: ``l<layer>.<tensor>`` and ``head.<tensor>``."""
    out = {f"l{i}.{t}": str(f) for i, c in enumerate(ncfg.layers) for t, f in c.formats.items() if f is not None}
    if ncfg.head is not None:
        out.update({f"head.{t}": str(f) for t, f in ncfg.head.formats.items()})
    return out


def golden_run(net, ncfg: NetworkConfig, seqs, groups: dict, input_modes: tuple = ("half_even", "saturate")):
    """``(q, y_raw, logits_raw, sat)``: the quantized network (inputs quantized with ``input_modes``,
    ``(rounding, overflow)``, :mod:`study.inputs`), the last layer's raw output at each sequence's
    last step, the head's raw logits (None without a head), and the saturation counts: ``weight``,
    ``bias``, ``input`` and each requantization point summed over the layers, ``layers`` (total per
    layer) and ``head`` (parameters and logits)."""
    q = golden.quantize(net, ncfg)
    sat = {"weight": 0, "bias": 0, "input": 0, "layers": [0] * ncfg.num_layers,
           "head": 0 if q.head is None else sum(q.head.saturated.values())}
    for i, layer in enumerate(q.layers):
        for qp in layer:
            sat["weight"] += qp.saturated.get("w_ih", 0) + qp.saturated.get("w_hh", 0)
            sat["bias"] += qp.saturated.get("bias", 0) + qp.saturated.get("bias_hn", 0)
            sat["layers"][i] += qp.total_saturated
    y = np.empty((len(seqs), ncfg.output_size()), dtype=np.int64)
    logits = None if ncfg.head is None else np.empty((len(seqs), ncfg.head.classes), dtype=np.int64)
    for _, idx in groups.items():
        x = np.stack([seqs[i] for i in idx])
        xq, n = quantize_inputs(x, ncfg.layers[0].fmt("input"), *input_modes)
        sat["input"] += n
        res = golden.run(q, xq, ncfg)
        y[idx] = res.outputs[-1][:, -1]
        if logits is not None:
            logits[idx] = res.logits
        for key, counts in res.saturated.items():
            if key == "head":
                sat["head"] += counts
                continue
            layer = int(key.split()[1])
            for k, v in counts.items():
                sat[k] = sat.get(k, 0) + v
                sat["layers"][layer] += v
    return q, y, logits, sat
