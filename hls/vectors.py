"""Portable test vectors: quantized parameters, inputs and golden outputs as ``$readmemh`` hex files.

``python -m hls.vectors --config configs/tiny.toml --out build`` writes
``build/<config-name>/vectors/``:

=================  ====================================================================
``manifest.json``  shapes, formats, widths, element order and file names (below)
``w_ih.hex``       ``(G*H, I)`` raw ``formats.weight``, row-major (PyTorch layout)
``w_hh.hex``       ``(G*H, H)`` raw ``formats.weight``
``bias.hex``       ``(G*H,)`` raw ``formats.bias`` (``b_ih + b_hh``; ``b_in`` alone for a
                   reset-after GRU's n rows)
``bias_hn.hex``    ``(H,)`` ``b_hn`` (reset-after GRU only)
``w_peep.hex``     ``(3, H)`` raw ``formats.peephole``, rows ``p_i, p_f, p_o`` (peephole LSTM only)
``x.hex``          ``(seqs, steps, I)`` raw ``formats.input``
``h.hex``          ``(seqs, steps, H)`` expected h(t), raw ``formats.hidden``
``c.hex``          ``(seqs, steps, H)`` expected c(t), raw ``formats.cell`` (LSTM only)
``i_payload.hex``  one word per ``i`` stream transfer: ``data | last << Wx | first << Wx+1``
``o_payload.hex``  one word per expected ``o`` transfer: ``data | last << Wh | first << Wh+1``
=================  ====================================================================

Every file holds one value per line: the two's complement of the raw integer in
the tensor's width, as ``ceil(width / 4)`` lower-case hex digits, no prefix and no
comments, so ``$readmemh`` in any simulator (and any other reader) takes it.
Each sequence starts from the zero state; the expected values come from
:func:`model.golden.run`.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import golden, kinds
from model.cli import Parser, config_file, nonneg_int, positive_int
from model.config import Config, ConfigError, output_dir
from model.params import QParams
from rtl import streams

from .cli import params_for

FORMAT_VERSION = 1
#: Inputs are uniform in [-STIMULUS_RANGE, STIMULUS_RANGE] before quantization.
STIMULUS_RANGE = 2.0
MANIFEST = "manifest.json"


class VectorError(ValueError):
    """A bad argument or a vector set that does not match what was asked of it."""


def config_digest(cfg: Config) -> str:
    """SHA-256 of the config's canonical JSON without the ``params`` path (an absolute path;
    the weights themselves are compared apart): the same config gives the same digest everywhere."""
    d = cfg.to_dict()
    d.pop("params", None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def hex_digits(width: int) -> int:
    return (width + 3) // 4


def to_hex_lines(raw, width: int) -> str:
    """Raw integers -> one ``$readmemh`` line each (two's complement in ``width`` bits)."""
    a = np.asarray(raw, dtype=np.int64).reshape(-1)
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    if a.size and (a.min() < lo or a.max() > hi):
        raise VectorError(f"values [{a.min()}, {a.max()}] do not fit {width} bits")
    mask = (1 << width) - 1
    n = hex_digits(width)
    return "".join(f"{int(v) & mask:0{n}x}\n" for v in a)


def from_hex_lines(text: str, width: int, signed: bool, what: str = "file") -> np.ndarray:
    """Inverse of :func:`to_hex_lines`: sign-extended when ``signed``."""
    vals = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.split("//", 1)[0].strip()
        if not s:
            continue
        try:
            v = int(s, 16)
        except ValueError:
            raise VectorError(f"{what} line {n}: {s!r} is not a hex number") from None
        if v >> width:
            raise VectorError(f"{what} line {n}: {s} does not fit {width} bits")
        if signed and v >> (width - 1):
            v -= 1 << width
        vals.append(v)
    return np.array(vals, dtype=np.int64)


def make_inputs(cfg: Config, seqs: int, steps: int, seed: int) -> np.ndarray:
    """Raw ``formats.input`` stimulus (seqs, steps, input), uniform in [-2, 2] before quantization."""
    rng = np.random.default_rng(seed)
    return golden.quantize_input(rng.uniform(-STIMULUS_RANGE, STIMULUS_RANGE, (seqs, steps, cfg.input_size)), cfg)


def _fmt_entry(cfg: Config, tensor: str, file: str, shape, order: str) -> dict:
    f = cfg.fmt(tensor)
    return {"file": file, "shape": list(shape), "order": order, "tensor": tensor, "format": str(f),
            "ap_type": f.ap, "width": f.width, "signed": f.signed, "frac_bits": f.frac_bits,
            "hex_digits": hex_digits(f.width), "count": int(np.prod(shape))}


def write(out_dir, cfg: Config, q: QParams, x, *, source: dict | None = None) -> Path:
    """Write the vector set for ``x`` (raw ints, (seqs, steps, input)) into ``out_dir``; returns the manifest path.

    ``source`` is recorded in the manifest as given (how parameters and inputs were made).
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != cfg.input_size or not np.issubdtype(x.dtype, np.integer):
        raise VectorError(f"x must be raw integers of shape (seqs, steps, {cfg.input_size}), "
                          f"not {x.dtype} {x.shape}")
    q.check_matches(cfg)
    seqs, steps, _ = x.shape
    extra_state = cfg.cell.state[1:]  # state tensors beyond h, written per step from the trace
    res = golden.run(q, x, cfg, trace=bool(extra_state))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    G, H, I = cfg.gates, cfg.hidden_size, cfg.input_size
    files = {}

    def put(name, tensor, arr, shape, order):
        e = _fmt_entry(cfg, tensor, f"{name}.hex", shape, order)
        (out / e["file"]).write_text(to_hex_lines(arr, e["width"]))
        files[name] = e

    put("w_ih", "weight", q.w_ih, (G * H, I), "row-major: gate row, then input element")
    put("w_hh", "weight", q.w_hh, (G * H, H), "row-major: gate row, then hidden element")
    put("bias", "bias", q.bias, (G * H,), "gate row")
    if q.bias_hn is not None:
        put("bias_hn", "bias", q.bias_hn, (H,), "hidden unit (b_hn of the n rows)")
    if q.w_peep is not None:
        put("w_peep", "peephole", q.w_peep, q.w_peep.shape, "row-major: p_i, p_f, p_o, then hidden unit")
    put("x", "input", x, (seqs, steps, I), "sequence, step, input element")
    put("h", "hidden", res.outputs, (seqs, steps, H), "sequence, step, hidden unit")
    for name, tensor in extra_state:
        put(name, tensor, res.trace[tensor], (seqs, steps, H), "sequence, step, hidden unit")
    ipay, opay = streams.sequence_words(cfg, x, res.outputs)
    for name, word, words, tensor, order in (
            ("i_payload", streams.input_word(cfg), ipay, "input",
             "one word per i transfer: sequence, step, input element; first on element 0 of step 0 of every "
             "sequence, last on element input_size-1"),
            ("o_payload", streams.output_word(cfg), opay, "hidden",
             "one word per expected o transfer: sequence, step, hidden unit; first on unit 0 of step 0 of every "
             "sequence, last on unit hidden_size-1")):
        (out / f"{name}.hex").write_text(to_hex_lines(words, word.width))
        fields = [{**f, "format": str(cfg.fmt(tensor))} if f["name"] == "data" else f for f in word.describe()]
        files[name] = {"file": f"{name}.hex", "width": word.width, "hex_digits": hex_digits(word.width),
                       "count": len(words), "signed": False, "fields": fields, "order": order}
    manifest = {
        "format_version": FORMAT_VERSION,
        "config_name": cfg.name, "config_digest": config_digest(cfg), "variant": cfg.variant,
        "kind": cfg.kind, "input_size": I, "hidden_size": H, "gates": G,
        "seqs": seqs, "steps": steps,
        "initial_state": "zero at the start of every sequence",
        "hex": "one value per line, two's complement in the tensor's width, ceil(width/4) hex digits",
        "files": files,
        "saturated": {k: int(v) for k, v in res.saturated.items()},
        "source": source or {},
        "config": cfg.to_dict(),
    }
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


@dataclass
class VectorSet:
    """A vector set read back from its files: manifest, parameters and arrays (raw int64)."""

    path: Path
    manifest: dict
    qparams: QParams
    x: np.ndarray
    h: np.ndarray
    c: np.ndarray | None
    i_payload: np.ndarray
    o_payload: np.ndarray

    def check_config(self, cfg: Config) -> None:
        """Raise :class:`VectorError` unless these vectors were written for ``cfg``."""
        if self.manifest["config_digest"] != config_digest(cfg):
            raise VectorError(f"vectors in {self.path} were written for config "
                              f"{self.manifest['config_name']!r} with other settings than {cfg.name!r} "
                              f"(config_digest differs)")


def load(path) -> VectorSet:
    """Read a vector set written by :func:`write` from its directory (every file checked against the manifest)."""
    d = Path(path)
    mpath = d / MANIFEST
    if not mpath.is_file():
        raise VectorError(f"no {MANIFEST} in {str(d)!r}: write vectors with `make vectors` "
                          f"or `python -m hls.vectors`")
    m = json.loads(mpath.read_text())
    files = m["files"]

    def get(name):
        e = files.get(name)
        if e is None:
            return None
        a = from_hex_lines((d / e["file"]).read_text(), e["width"], e["signed"], e["file"])
        if a.size != e["count"]:
            raise VectorError(f"{e['file']} holds {a.size} values; the manifest says {e['count']}")
        return a.reshape(e["shape"]) if "shape" in e else a

    kind = m["kind"]
    cfgd = m["config"]
    if kind not in kinds.REGISTRY:
        raise VectorError(f"{d}: kind {kind!r} in the manifest is not a registered cell kind")
    options = {k: cfgd[k] for k in kinds.REGISTRY[kind].options if k in cfgd}
    q = QParams(kind, get("w_ih"), get("w_hh"), get("bias"), bias_hn=get("bias_hn"), w_peep=get("w_peep"),
                options=options)
    return VectorSet(d, m, q, get("x"), get("h"), get("c"), get("i_payload"), get("o_payload"))


# ---- command line -----------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = Parser(prog="python -m hls.vectors", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, type=config_file(), help="config TOML (make: CONFIG)")
    ap.add_argument("--out", default="build", help="output root; files go to <out>/<config-name>/vectors/")
    ap.add_argument("--seqs", type=positive_int("--seqs", "SEQS"), default=3, help="sequences (make: SEQS)")
    ap.add_argument("--steps", type=positive_int("--steps", "STEPS"), default=4,
                    help="steps per sequence (make: STEPS)")
    ap.add_argument("--seed", type=nonneg_int("--seed", "SEED"), default=1, help="input stimulus seed (make: SEED)")
    ap.add_argument("--param-seed", type=nonneg_int("--param-seed", "PARAM_SEED"), default=1,
                    help="seed of the random parameters (default 1, as make sim and make hls)")
    ap.add_argument("--params", default=None, help="CellParams .npz file instead of random parameters")
    a = ap.parse_args(argv)
    try:
        cfg = Config.load(a.config)
        q, src = params_for(cfg, a.params, a.param_seed)
        x = make_inputs(cfg, a.seqs, a.steps, a.seed)
        out = output_dir(a.out, cfg, "vectors")
        path = write(out, cfg, q, x, source={**src, "input_seed": a.seed,
                                             "inputs": f"uniform in [-{STIMULUS_RANGE:g}, {STIMULUS_RANGE:g}], "
                                                       f"quantized half_even/saturate"})
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = json.loads(path.read_text())
    print(f"{cfg.name} ({cfg.variant}): {a.seqs} sequences x {a.steps} steps -> {out}/")
    for e in m["files"].values():
        print(f"  {e['file']:<15} {e['count']:>7} values, {e['width']:>2} bits")
    print(f"  {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
