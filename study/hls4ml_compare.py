"""hls4ml 1.3 against its profile (``model.hls4ml_profile``) and against the kit's golden model.

::

    python -m study.hls4ml_compare [--models fsdd_lstm32,fsdd_gru32] [--formats "ap_fixed<16,6>,ap_fixed<8,3>"]
                                   [--out reports/hls4ml]

For each trained model and format: hls4ml converts the PyTorch module (every
type the one format, tables ``ap_fixed<18,8>``, ``io_parallel``, latency
strategy), its C++ simulation runs every test sequence, and the profile's last
``h`` is compared with hls4ml's as integers.  Then the accuracy of hls4ml's
arithmetic (the profile) is set against the kit's golden model at the same
uniform format with truncate/wrap (exact accumulation), and against float, and
the C++ simulation's time against the profile's on the same sequences.

Sequences of different lengths: hls4ml's layer has a fixed ``n_timesteps``.
The model is converted once with ``n_timesteps`` the longest test sequence and
``return_sequences`` switched on (the PyTorch converter always switches it
off; the layer's arithmetic per step is the same code), every sequence is
padded with zeros at its end, and its ``h`` is read at its own last step, so
the padding never enters it.  Compiled models are cached under
``build/hls4ml/`` by a hash of the model and format.

Results: ``reports/hls4ml/README.md``, ``results.csv`` and ``accuracy.png``.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from model import golden
from model.cli import Parser
from model.config import Config
from model.fixedpoint import Fmt, FormatError
from model.hls4ml_profile import LAYERS, Hls4mlCell, Hls4mlError, Hls4mlGru, Hls4mlTypes, TABLE_SIZE, layer_class
from model.params import quantize

from . import calibrate, data, models

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "hls4ml"
REPORTS = ROOT / "reports" / "hls4ml"
DEFAULT_MODELS = ("fsdd_lstm32", "fsdd_gru32", "fsdd_lstm100", "fsdd_gru100")
DEFAULT_FORMATS = ("ap_fixed<16,6>", "ap_fixed<10,4>", "ap_fixed<8,3>")
#: The kit's activations in the comparison: plain tables over hls4ml's ranges ([-8, 8), [-4, 4)) with
#: hls4ml's 1024 entries or as many as the format resolves when that is fewer, and the kit's default
#: 64-entry interpolated tables.
KIT_ACTIVATIONS = ("lut", "lut_interp 64")
RANGES = {"sigmoid": 8.0, "tanh": 4.0}


class CompareError(ValueError):
    """A model name or format the comparison cannot use."""


# ---- hls4ml ---------------------------------------------------------------------------------------------

def torch_module(params):
    """A ``batch_first`` PyTorch ``nn.LSTM`` / ``nn.GRU`` holding ``params``, wrapped so it returns the outputs."""
    import torch  # noqa: PLC0415

    rnn = getattr(torch.nn, params.cell.torch_class)(params.input_size, params.hidden_size, batch_first=True)
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            getattr(rnn, f"{name[0]}eight_{name[2:]}_l0" if name[0] == "w" else f"bias_{name[2:]}_l0").copy_(
                torch.from_numpy(getattr(params, name).astype(np.float32)))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            y, _ = self.rnn(x)
            return y

    return Net().eval()


@contextlib.contextmanager
def _layer_attributes(**attrs):
    """While active, hls4ml's PyTorch converter sets ``attrs`` on the LSTM/GRU layers it parses."""
    p2h = sys.modules["hls4ml.converters.pytorch_to_hls"]
    parse = p2h.parse_pytorch_model

    def patched(config, verbose=True):
        layers, inputs, outputs = parse(config, verbose)
        for layer in layers:
            if layer["class_name"] in LAYERS:  # the recurrent layers the kinds declare (hls4ml_layer)
                layer.update({k: (v(layer) if callable(v) else v) for k, v in attrs.items()})
        return layers, inputs, outputs

    p2h.parse_pytorch_model = patched
    try:
        yield
    finally:
        p2h.parse_pytorch_model = parse


def hls4ml_model(params, types: Hls4mlTypes, steps: int, out_dir: Path, sequences: bool = True, log=print,
                 **attrs):
    """hls4ml's compiled model of ``params`` with ``types`` and ``steps`` time steps; ``sequences`` keeps
    every step's ``h`` (else the last one, as the converter does); ``attrs`` are set on the recurrent
    layer as its converter's output."""
    import hls4ml  # noqa: PLC0415

    net = torch_module(params)
    cfg = hls4ml.utils.config_from_pytorch_model(net, input_shape=(steps, params.input_size), granularity="name",
                                                 default_precision=types.result.ap, backend="Vivado",
                                                 channels_last_conversion="off")
    cfg["LayerName"]["x"]["Precision"]["result"] = types.input.ap
    layer = cfg["LayerName"]["rnn"]
    for key in ("result", "weight", "bias", "recurrent_weight", "recurrent_bias", "accum", "table"):
        layer["Precision"][key] = getattr(types, key).ap
    layer["TableSize"] = types.table_size
    if sequences:
        attrs["return_sequences"] = True
    t0 = time.perf_counter()
    with _layer_attributes(**attrs), contextlib.redirect_stdout(None):
        hm = hls4ml.converters.convert_from_pytorch_model(net, hls_config=cfg, output_dir=str(out_dir),
                                                          backend="Vivado", io_type="io_parallel")
        hm.compile()
    log(f"[hls4ml] {out_dir.name}: converted and compiled in {time.perf_counter() - t0:.0f} s")
    return hm


def hls4ml_h(hm, x, fmt: Fmt, hidden: int) -> np.ndarray:
    """hls4ml's ``predict`` on float ``x`` (batch, steps, input) as raw integers in ``fmt``: every step's h
    ``(batch, steps, hidden)`` for a sequences model, else ``(batch, hidden)``."""
    y = np.asarray(hm.predict(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float64)
    y = y.reshape(len(x), -1, hidden) if y.size > len(x) * hidden else y.reshape(len(x), hidden)
    raw = np.ldexp(y, fmt.frac_bits)
    if not np.array_equal(raw, np.round(raw)):
        raise CompareError(f"hls4ml's outputs are not multiples of 2**-{fmt.frac_bits}")
    return raw.astype(np.int64)


# ---- the comparison -------------------------------------------------------------------------------------

def kit_config(params, fmt: Fmt, activations: str) -> Config:
    """The kit's config of ``params`` with every tensor in ``fmt``, truncate/wrap at every requantization
    point and the activations ``activations`` (one of ``KIT_ACTIVATIONS``)."""
    if activations == "lut":
        sig, tanh = ({"method": "lut", "size": min(TABLE_SIZE, int(2 * r) << fmt.frac_bits), "range": r}
                     for r in RANGES.values())
    else:
        sig, tanh = ({"method": "lut_interp", "size": 64, "range": r} for r in RANGES.values())
    return Config.from_dict({
        "name": f"hls4ml-{fmt.width}-{fmt.int_bits}", "kind": params.kind, "input_size": params.input_size,
        "hidden_size": params.hidden_size, **params.options,
        "formats": {t: str(fmt) for t in calibrate.TENSORS},
        "modes": {"rounding": "truncate", "overflow": "wrap"}, "sigmoid": sig, "tanh": tanh})


def kit_last_h(params, cfg: Config, seqs, groups: dict) -> np.ndarray:
    """The golden model's last ``h`` (raw, ``formats.hidden``) of every sequence, run by equal-length groups."""
    q = quantize(params, cfg)
    out = np.empty((len(seqs), cfg.hidden_size), dtype=np.int64)
    for _, idx in groups.items():
        out[idx] = golden.run(q, np.stack([seqs[i] for i in idx]), cfg).outputs[:, -1]
    return out


def padded(seqs) -> tuple[np.ndarray, np.ndarray]:
    """``(x, lengths)``: the sequences zero-padded at their end to the longest one, and their lengths."""
    lengths = np.array([len(s) for s in seqs])
    x = np.zeros((len(seqs), lengths.max(), seqs[0].shape[1]))
    for k, s in enumerate(seqs):
        x[k, :len(s)] = s
    return x, lengths


def compare_model(name: str, formats, log=print) -> list[dict]:
    """One row per format: bit-exactness, accuracies, errors against float and times (see the module doc)."""
    m = models.load(name)
    if m.network:
        raise CompareError(f"model {name!r} is a network ({m.describe()}); hls4ml's profile takes one cell")
    _, test = m.datasets()
    seqs, labels = test.seqs, test.labels
    groups = data.by_length(seqs)
    x, lengths = padded(seqs)
    rows_idx = np.arange(len(seqs))
    float_h = m.float_last_h(seqs)
    float_pred = m.head(float_h).argmax(1)
    rows = []
    for fmt in formats:
        tag = f"{name} {fmt.ap}"
        out_dir = BUILD / f"{name}-{fmt.width}-{fmt.int_bits}-{_digest(m, fmt, x.shape[1])}"
        types = Hls4mlTypes.uniform(fmt)
        hm = hls4ml_model(m.params, types, x.shape[1], out_dir, log=log)
        t0 = time.perf_counter()
        hls_all = hls4ml_h(hm, x, fmt, m.params.hidden_size)
        t_hls = time.perf_counter() - t0
        log(f"[hls4ml] {tag}: C++ simulation of {len(seqs)} sequences x {x.shape[1]} steps in {t_hls:.1f} s")
        cell = Hls4mlCell.from_params(m.params, types)
        t0 = time.perf_counter()
        prof_all = cell.run(x)
        t_prof = time.perf_counter() - t0
        t0 = time.perf_counter()
        prof_grouped = np.empty((len(seqs), m.params.hidden_size), dtype=np.int64)
        for _, idx in groups.items():
            prof_grouped[idx] = cell.last_h(x[idx, :lengths[idx[0]]])
        t_grouped = time.perf_counter() - t0
        hls_last, prof_last = hls_all[rows_idx, lengths - 1], prof_all[rows_idx, lengths - 1]
        if not np.array_equal(prof_last, prof_grouped):
            raise CompareError(f"{tag}: the profile's last h differs between padded and unpadded runs")
        same = int(np.all(hls_last == prof_last, axis=1).sum())
        log(f"[hls4ml] {tag}: last h identical for {same}/{len(seqs)} sequences; profile {t_prof:.2f} s "
            f"({t_hls / t_prof:.0f}x faster)")
        h_hls = fmt.to_float(prof_last)
        row = {"model": name, "format": fmt.ap, "sequences": len(seqs), "identical": same,
               "max_lsb_diff": int(np.abs(hls_last - prof_last).max()),
               "steps_identical": int(np.sum(np.all(hls_all == prof_all, axis=2))),
               "steps_total": int(prof_all.shape[0] * prof_all.shape[1]),
               "acc_float": _acc(float_pred, labels), "acc_hls4ml": _acc(m.head(h_hls).argmax(1), labels),
               "agree_hls4ml": _acc(m.head(h_hls).argmax(1), float_pred),
               "rms_hls4ml": _rms(h_hls, float_h),
               "t_hls4ml": t_hls, "t_profile": t_prof, "t_profile_grouped": t_grouped}
        for act in KIT_ACTIVATIONS:
            cfg = kit_config(m.params, fmt, act)
            h_kit = cfg.fmt("hidden").to_float(kit_last_h(m.params, cfg, seqs, groups))
            pred = m.head(h_kit).argmax(1)
            key = act.replace(" ", "")
            row[f"acc_kit_{key}"] = _acc(pred, labels)
            row[f"agree_kit_{key}"] = _acc(pred, float_pred)
            row[f"rms_kit_{key}"] = _rms(h_kit, float_h)
        rows.append(row)
    return rows


#: Per-tensor types for the mixed-types check: accum wider and narrower than result (GRU), and an LSTM
#: (whose input, accum and result hls4ml needs to be one type) with its own weight, bias and table types.
MIXED_TYPES = (
    ("fsdd_gru32", Hls4mlTypes(input="ap_fixed<12,4>", weight="ap_fixed<8,2>", bias="ap_fixed<10,3>",
                               recurrent_weight="ap_fixed<9,2>", recurrent_bias="ap_fixed<12,5>",
                               accum="ap_fixed<20,7>", result="ap_fixed<11,3>")),
    ("fsdd_gru32", Hls4mlTypes(input="ap_fixed<10,4>", weight="ap_fixed<10,3>", bias="ap_fixed<8,3>",
                               recurrent_weight="ap_fixed<8,2>", recurrent_bias="ap_fixed<8,4>",
                               accum="ap_fixed<12,5>", result="ap_fixed<14,2>", table="ap_fixed<12,2>")),
    ("fsdd_lstm32", Hls4mlTypes(input="ap_fixed<14,5>", weight="ap_fixed<7,2>", bias="ap_fixed<9,3>",
                                recurrent_weight="ap_fixed<10,2>", recurrent_bias="ap_fixed<6,2>",
                                accum="ap_fixed<14,5>", result="ap_fixed<14,5>", table="ap_fixed<12,2>")),
)


def mixed_types_check(log=print) -> list[dict]:
    """Each of ``MIXED_TYPES`` on ten test sequences of one length: every step's h, hls4ml against the profile."""
    rows = []
    for k, (name, types) in enumerate(MIXED_TYPES):
        m = models.load(name)
        _, test = m.datasets()
        steps, idx = next((n, i) for n, i in data.by_length(test.seqs).items() if len(i) >= 10)
        x = np.stack([test.seqs[i] for i in idx[:10]])
        hm = hls4ml_model(m.params, types, steps, BUILD / f"{name}-mixed-{k}", log=log)
        want = hls4ml_h(hm, x, types.result, m.params.hidden_size)
        got = Hls4mlCell.from_params(m.params, types).run(x)
        same = int(np.sum(want == got))
        log(f"[hls4ml] mixed types {k}, {name}: {same}/{got.size} elements identical")
        rows.append({"model": name, "types": types, "identical": same, "total": int(got.size),
                     "sequences": len(x), "steps": steps})
    return rows


def reset_before_check(name: str, fmt: Fmt, log=print) -> dict:
    """What hls4ml 1.3 does with a GRU converted from Keras with ``reset_after=False``.

    Keras is not needed: its converters' output for such a layer is set on the PyTorch converter's
    (``apply_reset_gate = 'before'``; ``bias_data = bias[0]`` and ``recurrent_bias_data = bias[1]``
    of Keras's one-dimensional ``(3 * units,)`` bias, which are two scalars).  Returns the files of
    the installed hls4ml that read ``apply_reset_gate``, whether the layer's output then equals the
    reset-after profile, and the bias arrays the writer declares."""
    import hls4ml  # noqa: PLC0415

    m = models.load(name)
    if _hls4ml_layer(m) is not Hls4mlGru:
        raise CompareError(f"the reset-before check needs a GRU model, not {name!r} ({m.describe()})")
    pkg = Path(hls4ml.__file__).parent
    readers = sorted(str(p.relative_to(pkg.parent)) for p in pkg.rglob("*") if p.suffix in (".py", ".h")
                     and "apply_reset_gate" in p.read_text(errors="replace"))
    _, test = m.datasets()
    steps, idx = next((n, i) for n, i in data.by_length(test.seqs).items() if len(i) >= 8)
    x = np.stack([test.seqs[i] for i in idx[:8]])
    types = Hls4mlTypes.uniform(fmt)
    prof = Hls4mlCell.from_params(m.params, types).last_h(x)
    before = hls4ml_model(m.params, types, steps, BUILD / f"{name}-reset-before", sequences=False, log=log,
                          apply_reset_gate="before")
    same = bool(np.array_equal(hls4ml_h(before, x, fmt, m.params.hidden_size), prof))
    keras_bias = np.concatenate([m.params.b_ih, m.params.b_hh])[: 3 * m.params.hidden_size]  # any (3n,) bias
    out = BUILD / f"{name}-reset-before-keras-bias"
    hls4ml_model(m.params, types, steps, out, sequences=False, log=log, apply_reset_gate="before",
                 bias_data=keras_bias[0], recurrent_bias_data=keras_bias[1])
    decl = []
    for path in sorted((out / "firmware" / "weights").glob("b*.h")):
        decl += [ln.strip().rstrip(";") for ln in path.read_text().splitlines()
                 if "[" in ln and "=" not in ln and not ln.startswith("//")]
    log(f"[hls4ml] reset-before: apply_reset_gate read by {readers}; output equals reset-after: {same}; "
        f"Keras-shaped bias declared as {decl}")
    return {"readers": readers, "equals_reset_after": same, "sequences": len(x), "steps": steps,
            "bias_declarations": decl, "hidden": m.params.hidden_size}


def _hls4ml_layer(m):
    """hls4ml's layer class of a trained model's cell (:func:`model.hls4ml_profile.layer_class`), or None for a
    network or a variant hls4ml does not have."""
    if m.network:
        return None
    try:
        return layer_class(m.params)
    except Hls4mlError:
        return None


def _digest(m, fmt: Fmt, steps: int) -> str:
    import hls4ml  # noqa: PLC0415

    h = hashlib.sha256(f"{fmt.ap}-{steps}-{hls4ml.__version__}".encode())
    for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
        h.update(np.ascontiguousarray(getattr(m.params, name)).tobytes())
    return h.hexdigest()[:10]


def _acc(pred, want) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(want)))


def _rms(h, ref) -> float:
    return float(np.sqrt(np.mean((h - ref) ** 2)))


# ---- the report -----------------------------------------------------------------------------------------

def write_report(rows: list[dict], mixed: list[dict], reset: dict | None, out: Path, log=print) -> Path:
    """``README.md`` (tables, the mixed-types check ``mixed`` and the reset-before finding ``reset``),
    ``results.csv`` and ``accuracy.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    _plot(rows, out / "accuracy.png")
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    lines = [
        "# hls4ml 1.3's arithmetic: bit-exactness of the profile, accuracy, speed",
        "",
        "Written by `make hls4ml-compare` (`python -m study.hls4ml_compare`); see `docs/hls4ml.md`.",
        "Every type of the hls4ml layer (input, weights, biases, `accum_t`, `result_t`) is the format shown,",
        "tables are `ap_fixed<18,8>` with 1024 entries, `io_parallel`, latency strategy, converted from the",
        "PyTorch module. Test set: the model's FSDD test split, every sequence.",
        "",
        "## Bit-exactness: hls4ml's C++ simulation against `model/hls4ml_profile.py`",
        "",
        "| model | format | last h identical | every step identical | max diff (LSB) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['format']}` | {r['identical']}/{r['sequences']} | "
                     f"{r['steps_identical']}/{r['steps_total']} | {r['max_lsb_diff']} |")
    lines += [
        "",
        "Each sequence is zero-padded at its end to the longest one and run through one compiled model",
        "with `return_sequences` on; the last h is read at the sequence's own last step (padding comes",
        "after it). \"Every step\" counts (sequence, step) pairs of the padded run, padding included.",
        "",
        "Per-tensor types (each check: ten test sequences of one length, every element of h at every step):",
        "",
        "| model | input | weight | bias | recurrent weight | recurrent bias | accum | result | table | identical |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(f"| {r['model']} | " + " | ".join(f"`{v}`" for k, v in r["types"].as_dict().items() if k != "table_size")
          + f" | {r['identical']}/{r['total']} |" for r in mixed),
        "",
        "hls4ml's LSTM compiles only when input, accum and result are one type: `nnet_recurrent.h` instantiates",
        "its non-static `lstm()` too, which passes `accum_t` arrays as `result_t` and `result_t` as `input_t`.",
        "",
        "## Accuracy: hls4ml's arithmetic against the kit's exact accumulation at the same format",
        "",
        "Kit: the golden model with every tensor in the same format and truncate/wrap at every",
        "requantization point (products and sums exact in a wide accumulator), with plain tables over",
        "hls4ml's ranges (`lut`: 1024 entries, or as many as the format resolves: 512/256 for tanh and",
        "1024/512 for sigmoid at `<10,4>`/`<8,3>`) or the kit's default interpolated 64-entry tables",
        "(`lut_interp 64`). The float head reads each last h. RMS: last h against float.",
        "",
        "| model | format | float | hls4ml | kit, lut | kit, lut_interp 64 | "
        "RMS hls4ml | RMS kit lut | RMS kit lut_interp 64 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['format']}` | {pct(r['acc_float'])} | {pct(r['acc_hls4ml'])} | "
                     f"{pct(r['acc_kit_lut'])} | {pct(r['acc_kit_lut_interp64'])} | {r['rms_hls4ml']:.4f} | "
                     f"{r['rms_kit_lut']:.4f} | {r['rms_kit_lut_interp64']:.4f} |")
    lines += [
        "",
        "![accuracy](accuracy.png)",
        "",
        "## Speed: the same answer from the profile",
        "",
        "Both run the same padded sequences in the same process (hls4ml: `predict` of the compiled C++",
        "simulation, one thread; profile: NumPy over the whole batch). \"Grouped\" is the profile on the",
        "unpadded sequences, one batch per length. Wall-clock times on a machine shared with other jobs:",
        "the ratio, measured in one run, is the figure to read.",
        "",
        "| model | format | hls4ml C++ (s) | profile (s) | speed-up | profile, grouped (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['format']}` | {r['t_hls4ml']:.2f} | {r['t_profile']:.3f} | "
                     f"{r['t_hls4ml'] / r['t_profile']:.0f}x | {r['t_profile_grouped']:.3f} |")
    if reset is not None:
        lines += [
            "",
            "## A Keras GRU with `reset_after=False`",
            "",
            "Keras is not installed here, so its converters' output for such a layer was set on the PyTorch",
            "converter's layer (`apply_reset_gate = 'before'`, and the biases its Keras converters take from",
            "the one-dimensional `(3 * units,)` bias: `bias[0]` and `bias[1]`, two scalars).",
            "",
            f"- Files of the installed hls4ml that mention `apply_reset_gate`: "
            f"{', '.join(f'`{p}`' for p in reset['readers'])}. No template or backend reads it.",
            f"- With `apply_reset_gate = 'before'` the layer's last h "
            f"{'equals' if reset['equals_reset_after'] else 'differs from'} the reset-after profile on "
            f"{reset['sequences']} sequences of {reset['steps']} steps: hls4ml computes reset-after anyway.",
            f"- The scalar biases are written as {' and '.join(f'`{d}`' for d in reset['bias_declarations'])}; "
            f"the GRU template reads {3 * reset['hidden']} entries of each. The model converts and compiles "
            f"without an error or a warning, and reads past the end of both arrays.",
        ]
    lines.append("")
    (out / "README.md").write_text("\n".join(lines))
    log(f"[hls4ml] report: {out / 'README.md'}")
    return out / "README.md"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    series = (("float", "acc_float"), ("hls4ml", "acc_hls4ml"), ("kit, lut", "acc_kit_lut"),
              ("kit, lut_interp 64", "acc_kit_lut_interp64"))
    labels = [f"{r['model']}\n{r['format']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows)), 4.0))
    width = 0.8 / len(series)
    for k, (name, key) in enumerate(series):
        ax.bar(np.arange(len(rows)) + (k - (len(series) - 1) / 2) * width, [100 * r[key] for r in rows],
               width, label=name)
    ax.set_xticks(np.arange(len(rows)), labels, fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("hls4ml 1.3's arithmetic against the kit's at the same ap_fixed format")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(series))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise CompareError(f"--models must name at least one trained model, not {text!r}")
    for n in names:
        models.resolve(n)
    return names


def _formats(text: str) -> list[Fmt]:
    """``ap_fixed<16,6>,ap_fixed<8,3>`` (or ``;``-separated) -> its formats."""
    out = []
    for t in (t.strip() for t in _split_formats(text.replace(";", ",")) if t.strip()):
        try:
            f = Fmt.parse(t)
        except FormatError as e:
            raise CompareError(f"--formats: {e}") from None
        if not t.startswith("ap_fixed"):
            raise CompareError(f"--formats takes ap_fixed<W,I> formats (hls4ml's spelling), not {t!r}")
        out.append(f)
    if not out:
        raise CompareError(f"--formats must name at least one format, not {text!r}")
    return out


def _split_formats(text: str) -> list[str]:
    """Split at the commas outside ``<>`` (the comma of ``ap_fixed<W,I>`` belongs to the format)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def main(argv=None) -> int:
    ap = Parser(prog="python -m study.hls4ml_compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help=f"trained models, comma-separated (default {','.join(DEFAULT_MODELS)})")
    ap.add_argument("--formats", default=";".join(DEFAULT_FORMATS),
                    help=f"ap_fixed formats, separated by ';' or ',' (default {';'.join(DEFAULT_FORMATS)})")
    ap.add_argument("--out", default=str(REPORTS), help="report folder (default reports/hls4ml)")
    args = ap.parse_args(argv)
    try:
        names = _names(args.models)
        formats = _formats(args.formats)
    except (CompareError, models.ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, mixed, reset = [], [], None
    try:
        gru = next((n for n in names if _hls4ml_layer(models.load(n)) is Hls4mlGru), None)
        if gru is not None:
            reset = reset_before_check(gru, formats[0])
        mixed = mixed_types_check()
        for name in names:
            rows += compare_model(name, formats)
    except (CompareError, models.ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_report(rows, mixed, reset, Path(args.out))
    bad = [r for r in rows if r["identical"] != r["sequences"]] + [r for r in mixed if r["identical"] != r["total"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
