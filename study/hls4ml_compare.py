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
from model.hls4ml_profile import Hls4mlCell, Hls4mlTypes, TABLE_SIZE
from model.params import quantize

from . import calibrate, data, models

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "hls4ml"
REPORTS = ROOT / "reports" / "hls4ml"
DEFAULT_MODELS = ("fsdd_lstm32", "fsdd_gru32")
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
def _return_sequences():
    """While active, hls4ml's PyTorch converter keeps every step's ``h`` of its LSTM/GRU layers."""
    p2h = sys.modules["hls4ml.converters.pytorch_to_hls"]
    parse = p2h.parse_pytorch_model

    def patched(config, verbose=True):
        layers, inputs, outputs = parse(config, verbose)
        for layer in layers:
            if layer["class_name"] in ("LSTM", "GRU"):
                layer["return_sequences"] = True
        return layers, inputs, outputs

    p2h.parse_pytorch_model = patched
    try:
        yield
    finally:
        p2h.parse_pytorch_model = parse


def hls4ml_model(params, fmt: Fmt, steps: int, out_dir: Path, sequences: bool = True, log=print):
    """hls4ml's compiled model of ``params`` with every type ``fmt`` (tables ap_fixed<18,8>), ``steps``
    time steps; ``sequences`` keeps every step's ``h`` (else the last one, as the converter does)."""
    import hls4ml  # noqa: PLC0415

    net = torch_module(params)
    cfg = hls4ml.utils.config_from_pytorch_model(net, input_shape=(steps, params.input_size), granularity="name",
                                                 default_precision=fmt.ap, backend="Vivado",
                                                 channels_last_conversion="off")
    cfg["LayerName"]["x"]["Precision"]["result"] = fmt.ap
    for key in ("result", "weight", "bias", "recurrent_weight", "recurrent_bias", "accum"):
        cfg["LayerName"]["rnn"]["Precision"][key] = fmt.ap
    ctx = _return_sequences() if sequences else contextlib.nullcontext()
    t0 = time.perf_counter()
    with ctx, contextlib.redirect_stdout(None):
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
        hm = hls4ml_model(m.params, fmt, x.shape[1], out_dir, log=log)
        t0 = time.perf_counter()
        hls_all = hls4ml_h(hm, x, fmt, m.params.hidden_size)
        t_hls = time.perf_counter() - t0
        log(f"[hls4ml] {tag}: C++ simulation of {len(seqs)} sequences x {x.shape[1]} steps in {t_hls:.1f} s")
        cell = Hls4mlCell.from_params(m.params, Hls4mlTypes.uniform(fmt))
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

def write_report(rows: list[dict], out: Path, log=print) -> Path:
    """``README.md`` (tables), ``results.csv`` and ``accuracy.png`` under ``out``."""
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
        "unpadded sequences, one batch per length.",
        "",
        "| model | format | hls4ml C++ (s) | profile (s) | speed-up | profile, grouped (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['format']}` | {r['t_hls4ml']:.2f} | {r['t_profile']:.3f} | "
                     f"{r['t_hls4ml'] / r['t_profile']:.0f}x | {r['t_profile_grouped']:.3f} |")
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
    ax.legend(fontsize=8, loc="lower left")
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
    rows = []
    try:
        for name in names:
            rows += compare_model(name, formats)
    except (CompareError, models.ModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_report(rows, Path(args.out))
    bad = [r for r in rows if r["identical"] != r["sequences"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
