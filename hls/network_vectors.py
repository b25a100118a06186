"""Test vectors of a network: sequences of different lengths, an initial state per sequence, and what
:func:`model.network.golden.run` gives for them, as ``$readmemh`` hex files (:mod:`hls.vectors`' encoding).

:func:`write` puts into a folder, every file one raw value per line in its tensor's width:

=========================  ===============================================================================
``manifest.json``          the network's name and digest, ``seqs``, ``lengths``, every file's shape and format
``lengths.hex``            ``(seqs,)`` steps of each sequence, 32-bit unsigned
``x.hex``                  ``(sum(lengths), input)`` the sequences one after the other, layer 0's ``input``
``y<k>.hex``               ``(sum(lengths), directions * hidden)`` layer ``k``'s output, its ``hidden`` format
``<n>0_<slot>.hex``        ``(seqs, hidden)`` initial state tensor ``n`` (``h``, ``c``) of slot ``l<k>_fwd``
                           or ``l<k>_rev``, in that tensor's format
``<n>n_<slot>.hex``        ``(seqs, hidden)`` the final state
``logits.hex``             ``(seqs, classes)`` the head's logits on each sequence's last step (with a head)
``class.hex``              ``(seqs,)`` the class, 32-bit unsigned (with a head)
=========================  ===============================================================================

Sequence 0 starts from the network's default initial state (zeros, or the one its parameters bring);
the others from random non-zero states.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from model import golden as cell_golden
from model.fixedpoint import quantize
from model.network import golden
from model.network.state import default_slots, to_slots

from .vectors import MANIFEST, STIMULUS_RANGE, _fmt_entry, config_digest, hex_digits, to_hex_lines

FORMAT_VERSION = 1
#: Width of the ``lengths.hex`` and ``class.hex`` words.
COUNT_WIDTH = 32
DIRECTION_NAMES = ("fwd", "rev")
#: Default sequence lengths of a vector set.
DEFAULT_LENGTHS = (5, 1, 8, 3)


def slot_label(layer: int, direction: int) -> str:
    """``l<layer>_fwd`` or ``l<layer>_rev``: a slot's name in files and in the C++ ``State``."""
    return f"l{layer}_{DIRECTION_NAMES[direction]}"


def network_digest(ncfg, q) -> str:
    """SHA-256 of every layer's config digest, the directions, the head's config, every raw parameter and the
    default initial state."""
    h = hashlib.sha256()
    h.update(json.dumps({"layers": [config_digest(c) for c in ncfg.layers], "directions": list(ncfg.directions),
                         "head": ncfg.head.to_dict() if ncfg.head is not None else None},
                        sort_keys=True).encode())
    arrays = [getattr(p, k) for layer in q.layers for p in layer for k in ("w_ih", "w_hh", "bias", "bias_hn", "w_peep")]
    if q.head is not None:
        arrays += [q.head.weight, q.head.bias]
    arrays += [v for s in q.initial_state or () for v in s]
    for a in arrays:
        h.update(b"-" if a is None else np.ascontiguousarray(a, dtype=np.int64).tobytes())
    return h.hexdigest()


def make_sequences(ncfg, lengths, seed: int) -> list:
    """Raw layer-0 ``input`` sequences ``(T, input)``, one per length, uniform in [-2, 2] before quantization."""
    rng = np.random.default_rng(seed)
    return [cell_golden.quantize_input(rng.uniform(-STIMULUS_RANGE, STIMULUS_RANGE, (T, ncfg.input_size)),
                                       ncfg.layers[0]) for T in lengths]


def make_states(ncfg, q, seqs: int, seed: int) -> list:
    """Per sequence, the raw initial state per slot (tuples of ``(hidden,)`` arrays): the default for
    sequence 0, values uniform in [-1, 1] quantized into each state tensor's format for the others."""
    rng = np.random.default_rng(seed)
    default = [tuple(v[0] for v in s) for s in default_slots(ncfg.slots(), 1, q.initial_state, dtype=np.int64)]
    out = [default]
    for _ in range(1, seqs):
        out.append([tuple(quantize(rng.uniform(-1, 1, c.hidden_size), c.fmt(t), "half_even", "saturate")
                          for _, t in c.cell.state) for _, _, c in ncfg.slots()])
    return out


def write(out_dir, ncfg, q, xs, states, *, source: dict | None = None) -> Path:
    """Write the vector set of sequences ``xs`` (raw, ``(T, input)`` each) from initial ``states``
    (:func:`make_states`' form) into ``out_dir``; returns the manifest path."""
    if len(xs) != len(states) or not xs:
        raise ValueError(f"xs and states must be non-empty lists of equal length, not {len(xs)} and {len(states)}")
    slots = ncfg.slots()
    results = []
    for x, s0 in zip(xs, states):
        r = golden.run(q, np.asarray(x)[None], ncfg, state=[tuple(v[None] for v in s) for s in s0])
        results.append((r, to_slots(slots, r.state, 1, dtype=np.int64)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lengths = [len(x) for x in xs]
    n, total = len(xs), sum(lengths)
    files = {}

    def put(name, entry, arr):
        (out / entry["file"]).write_text(to_hex_lines(arr, entry["width"]))
        files[name] = entry

    def count_entry(name, shape, order):
        return {"file": f"{name}.hex", "shape": list(shape), "order": order, "width": COUNT_WIDTH, "signed": False,
                "hex_digits": hex_digits(COUNT_WIDTH), "count": int(np.prod(shape))}

    put("lengths", count_entry("lengths", (n,), "sequence"), lengths)
    put("x", _fmt_entry(ncfg.layers[0], "input", "x.hex", (total, ncfg.input_size), "sequence, step, input element"),
        np.concatenate(xs))
    for k, c in enumerate(ncfg.layers):
        put(f"y{k}", _fmt_entry(c, "hidden", f"y{k}.hex", (total, ncfg.output_size(k)),
                                "sequence, step, [forward h(t), reverse h(t)] element"),
            np.concatenate([r.outputs[k][0] for r, _ in results]))
    for j, (i, d, c) in enumerate(slots):
        for m, (name, tensor) in enumerate(c.cell.state):
            for tag, vals in (("0", [s0[j][m] for s0 in states]), ("n", [fin[j][m][0] for _, fin in results])):
                f = f"{name}{tag}_{slot_label(i, d)}"
                put(f, _fmt_entry(c, tensor, f + ".hex", (n, c.hidden_size), "sequence, hidden unit"), vals)
    if ncfg.head is not None:
        lf = ncfg.head.formats["logits"]
        put("logits", {"file": "logits.hex", "shape": [n, ncfg.head.classes], "order": "sequence, class",
                       "tensor": "head.logits", "format": str(lf), "ap_type": lf.ap, "width": lf.width,
                       "signed": lf.signed, "frac_bits": lf.frac_bits, "hex_digits": hex_digits(lf.width),
                       "count": n * ncfg.head.classes},
            np.concatenate([r.logits for r, _ in results]))
        put("class", count_entry("class", (n,), "sequence"), np.concatenate([r.classes for r, _ in results]))
    manifest = {
        "format_version": FORMAT_VERSION,
        "network_name": ncfg.name, "network_digest": network_digest(ncfg, q),
        "seqs": n, "lengths": lengths,
        "initial_state": "sequence 0: the network's default; the others: random, per slot in the files h0_*, c0_*",
        "hex": "one value per line, two's complement in the tensor's width, ceil(width/4) hex digits",
        "files": files,
        "source": source or {},
    }
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path
