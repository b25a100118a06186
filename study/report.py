"""Study outputs: ``results.csv``, ``report.md``, ``summary.json`` and PNG plots in ``<out>/<study>/``
(``reports/quant/<study>/`` unless ``--out`` / ``OUT`` says otherwise)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from model.fixedpoint import Fmt

from .calibrate import TENSORS as TENSOR_ORDER
from .inputs import describe as input_modes
from .run import SAT_KEYS
from .sweep import BUILTIN_DEFAULTS, describe_layers
COST_COLS = ("luts", "ffs", "dsps", "brams")
COST_NAMES = {"luts": "LUTs", "ffs": "FFs", "dsps": "DSPs", "brams": "BRAMs"}
SETTING_COLS = ("weight_bits", "act_bits", "input_bits", "cell_bits", "acc_bits", "bias_bits", "rounding",
                "overflow", "input_rounding", "input_overflow", "sigmoid", "tanh", "uniform", "lanes")


def _act(v) -> str:
    if isinstance(v, dict):
        return f"{v['method']}/{v['size']}" if "size" in v else v["method"]
    return str(v)


def pareto(rows, cost: str) -> list[int]:
    """Indices of the rows on the accuracy/cost Pareto front (higher accuracy, lower cost), cheapest first."""
    cand = [r for r in rows if r.get("hw_status") == "ok"]
    cand.sort(key=lambda r: (r[cost], -r["accuracy"], r["index"]))
    front, best = [], -1.0
    for r in cand:
        if r["accuracy"] > best:
            front.append(r["index"])
            best = r["accuracy"]
    return front


def _formats_str(fm: dict) -> str:
    return " ".join(f"{t}={fm[t]}" for t in [t for t in TENSOR_ORDER if t in fm] + [t for t in fm
                                                                                 if t not in TENSOR_ORDER])


def write_csv(rows, path: Path, front: set):
    per_layer = any("sat_layers" in r for r in rows)  # a network model: its layers' columns
    cols = (["index", "label", "group"] + list(SETTING_COLS) + ["layers"] * per_layer + ["formats", "accuracy",
            "agreement", "max_abs", "rms"] + [f"sat_{k}" for k in SAT_KEYS] + ["sat_layers", "sat_head"] * per_layer
            + ["head_format", "hw_status"] + list(COST_COLS) + ["pareto", "hw_reason"])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            s = r["settings"]
            vals = {**{k: _act(s[k]) if k in ("sigmoid", "tanh") else s[k] for k in SETTING_COLS},
                    "layers": describe_layers(s["layers"]),
                    **{k: v for k, v in r.items() if k not in ("settings", "formats")},
                    "formats": _formats_str(r["formats"]), "pareto": int(r["index"] in front)}
            w.writerow(["" if vals.get(c) is None else vals.get(c) for c in cols])


def _pct(x) -> str:
    return f"{100 * x:.2f} %"


def _cost(r, k):
    return str(r[k]) if r.get("hw_status") == "ok" else "n/a"


def _sat_total(r) -> int:
    return int(sum(r[f"sat_{k}"] for k in SAT_KEYS))


def _sat_str(r) -> str:
    parts = [f"{k} {r[f'sat_{k}']}" for k in SAT_KEYS if r[f"sat_{k}"]]
    if r.get("sat_head"):
        parts.append(f"head {r['sat_head']}")
    if parts and r.get("sat_layers"):
        parts.append(f"by layer {r['sat_layers']}")
    return ", ".join(parts) or "none"


def with_points(res) -> list:
    """``(row, point)`` of every point that ran, in index order."""
    pts = res["context"].sweep.points
    return [(r, pts[r["index"]]) for r in res["rows"]]


def headline_rows(res) -> list:
    return [r for r, p in with_points(res) if not p.axes]


def _widths(r, cell_kind) -> str:
    """The widths of a point; ``c`` only for a kind with a cell state (``cell_kind``: a CellKind)."""
    s = r["settings"]
    if s["uniform"]:
        return f"all {Fmt.parse(s['uniform']).ap}"
    cell = f" c{s['cell_bits']}" if "cell" in cell_kind.tensors() else ""
    return (f"w{s['weight_bits']} a{s['act_bits']}{cell} acc{s['acc_bits']} b{s['bias_bits']}"
            + (f" in{s['input_bits']}" if s["input_bits"] else "")
            + (f"; {describe_layers(s['layers'])}" if any(s["layers"]) else ""))


def range_rows(ctx) -> list:
    """``(tensor label, key in a row's formats, max abs on the training set)`` in report order."""
    m = ctx.model
    tensors = [t for t in TENSOR_ORDER if t in m.first_cell.cell.tensors()]  # a GRU has no cell state
    if not m.network:
        return [(t, t, ctx.ranges.get(t, 0)) for t in tensors]
    layers, head = ctx.ranges
    rows = [(f"layer {i} {t}" + (f" (layer {i - 1}'s hidden)" if i and t == "input" else ""), f"l{i}.{t}", r[t])
            for i, r in enumerate(layers) for t in tensors]
    return rows + [(f"head {t}", f"head.{t}", v) for t, v in (head or {}).items()]


def _table(head, rows) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def plots(res, out: Path) -> list[str]:
    """accuracy_vs_weight_bits.png, error_vs_bits.png and pareto.png (those the sweep has data for)."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    ctx, rows = res["context"], res["rows"]
    pairs = with_points(res)
    float_acc = float(np.mean(ctx.float_pred == ctx.test.labels))
    written = []

    def grid_with(axis):
        for r, p in pairs:
            if axis in p.axes:
                return p.group, [(rr, pp) for rr, pp in pairs if pp.group == p.group]
        return None, []

    def lines(sel, x, by):
        groups = {}
        for r, p in sel:
            key = p.settings[by] if by in p.axes else None
            groups.setdefault(key, []).append((p.settings[x], r))
        def order(kv):
            return (0, kv[0], "") if isinstance(kv[0], (int, float)) else (1, 0, str(kv[0]))
        return {k: sorted(v, key=lambda t: t[0]) for k, v in sorted(groups.items(), key=order)}

    g, sel = grid_with("weight_bits")
    if sel:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k, v in lines(sel, "weight_bits", "act_bits").items():
            ax.plot([a for a, _ in v], [100 * r["accuracy"] for _, r in v], "o-",
                    label=f"activation/hidden {k} bits" if k is not None else "accuracy")
        ax.axhline(100 * float_acc, color="k", ls="--", lw=1, label=f"float {100 * float_acc:.2f} %")
        ax.set_xlabel("weight bits")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{ctx.sweep.name}: accuracy against weight bits ({ctx.model.name})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_weight_bits.png", dpi=110)
        plt.close(fig)
        written.append("accuracy_vs_weight_bits.png")

    panels = [("weight_bits", "act_bits", "weight bits"), ("cell_bits", "acc_bits", "cell-state bits")]
    have = [(x, by, lab, grid_with(x)[1]) for x, by, lab in panels if grid_with(x)[1]]
    if have:
        fig, axs = plt.subplots(1, len(have), figsize=(6.5 * len(have), 4.5), squeeze=False)
        for ax, (x, by, lab, sel) in zip(axs[0], have):
            for k, v in lines(sel, x, by).items():
                name = by.replace("_bits", "").replace("act", "activation/hidden").replace("acc", "accumulator")
                ax.semilogy([a for a, _ in v], [r["rms"] for _, r in v], "o-",
                            label=f"RMS, {name} {k} bits" if k is not None else "RMS")
                ax.semilogy([a for a, _ in v], [r["max_abs"] for _, r in v], "x:", alpha=0.6,
                            label=f"max-abs, {name} {k} bits" if k is not None else "max-abs")
            ax.set_xlabel(lab)
            ax.set_ylabel("error of the last h against float")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        fig.suptitle(f"{ctx.sweep.name}: last hidden state error against bits ({ctx.model.name})")
        fig.tight_layout()
        fig.savefig(out / "error_vs_bits.png", dpi=110)
        plt.close(fig)
        written.append("error_vs_bits.png")

    cost = ctx.sweep.cost
    ok = [r for r in rows if r.get("hw_status") == "ok"]
    if ok:
        front = pareto(rows, cost)
        byi = {r["index"]: r for r in rows}
        fig, ax = plt.subplots(figsize=(7.5, 5))
        ax.scatter([r[cost] for r in ok], [100 * r["accuracy"] for r in ok], s=16, c="0.6", label="points")
        fx = [byi[i][cost] for i in front]
        fy = [100 * byi[i]["accuracy"] for i in front]
        ax.step(fx, fy, where="post", color="C3", lw=1.2)
        ax.scatter(fx, fy, s=30, c="C3", label="Pareto front", zorder=3)
        heads = [r for r in headline_rows(res) if r.get("hw_status") == "ok"]
        ax.scatter([r[cost] for r in heads], [100 * r["accuracy"] for r in heads], s=40, marker="D",
                   facecolors="none", edgecolors="C0", label="headline points (#)", zorder=4)
        for n, r in enumerate(heads):
            ax.annotate(f"#{r['index']}", (r[cost], 100 * r["accuracy"]), fontsize=8, color="C0",
                        xytext=(5, 4 if n % 2 else -11), textcoords="offset points")
        ax.axhline(100 * float_acc, color="k", ls="--", lw=1, label=f"float {100 * float_acc:.2f} %")
        ax.set_xlabel(f"{COST_NAMES[cost]} (Yosys synth_{ctx.sweep.target})")
        ax.set_ylabel("test accuracy (%)")
        lo = min(100 * r["accuracy"] for r in ok)
        ax.set_ylim(max(0, min(lo, 100 * float_acc - 10) - 1), 100.5)
        ax.set_title(f"{ctx.sweep.name}: accuracy against hardware cost")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "pareto.png", dpi=110)
        plt.close(fig)
        written.append("pareto.png")
    return written


def markdown(res, images: list[str]) -> str:
    ctx, rows = res["context"], res["rows"]
    sw, m = ctx.sweep, ctx.model
    float_acc = float(np.mean(ctx.float_pred == ctx.test.labels))
    front = pareto(rows, sw.cost)
    byi = {r["index"]: r for r in rows}
    head = ("float (a float64 linear layer on the dequantized last hidden state)" if sw.head == "float" else
            "the network golden model's head: weights, bias and logits in calibrated formats, exact sums "
            "(formats in the table)" if m.network else
            "quantized: weights in a calibrated format, integer products and sums (format in the table)")
    L = [f"# Quantization study `{sw.name}`", ""]
    if sw.description:
        L += [sw.description, ""]
    L += [
        f"- Sweep file: `{_rel(sw.path)}`; {len(sw.points)} points; wall time {res['seconds']:.0f} s "
        f"({res.get('where', 'one process')}).",
        _model_line(m),
        _data_line(m, len(ctx.test.seqs)),
        "- Float accuracy: " + (f"{_pct(m.meta['float_test_accuracy'])} (PyTorch, float32), "
                                if "float_test_accuracy" in m.meta else "")
        + f"{_pct(float_acc)} (float64 reference, the baseline below).",
        _inputs_line(res),
        f"- Classifier head: {head}. Every other number is the bit-exact golden model, "
        f"i.e. the arithmetic of the gateware.",
        "- Sequences: each test sequence runs alone from a zero state over exactly its own frames "
        "(no padding, no truncation); the golden model batches sequences of equal length, and the head "
        "reads h at the last frame. The hardware does the same when a sequence is streamed with its "
        "`first` flag.",
        f"- Hardware cost: Yosys `synth_{sw.target}` of the gate pipeline (`rtl/`) with the trained weights "
        f"baked in, {sw.points[0].settings['lanes']} MAC lanes{' per cell' if m.network else ''}; the Pareto front uses "
        f"{COST_NAMES[sw.cost]}."
        + (" A network's cost is its whole gateware (`rtl.network`): every layer's cells, the streams "
           "between them, a bidirectional layer's sequence buffer and the head." if m.network else ""),
        f"- Formats: widths from the sweep, integer bits from the calibration on the training set "
        f"(margin {sw.margin:g}); `uniform` points use one format for every tensor."
        + (" Each layer is calibrated on its own input (the float output of the layer below); the tensor "
           "between layers has the producing layer's hidden format." if m.network else ""),
        "",
        "## Headline", "",
    ]
    hrows = [["", "float reference", "float64", _pct(float_acc), "0.00", "100.00 %", "0", "0", "-", "-", "-", "-", "-"]]
    for r in headline_rows(res):
        hrows.append([r["index"], r["label"], _widths(r, m.first_cell.cell), _pct(r["accuracy"]),
                      f"{100 * (r['accuracy'] - float_acc):+.2f}",
                      _pct(r["agreement"]), f"{r['max_abs']:.3g}", f"{r['rms']:.3g}", _sat_str(r)]
                     + [_cost(r, k) for k in COST_COLS])
    L += _table(["#", "point", "widths", "accuracy", "Δ vs float (pp)", "agrees with float", "max-abs h err",
                 "RMS h err", "saturations", "LUTs", "FFs", "DSPs", "BRAMs"], hrows)
    L += ["", "Widths: `w` weights, `a` activations and hidden state (gate, candidate, tanh(c), h, "
          "and the input unless `in` is given), `c` cell state, `acc` the requantized accumulator "
          "(pre-activation; the sum itself is exact and as wide as it needs), `b` bias.", ""]
    L += ["## Chosen formats", "",
          "Integer bits come from the largest magnitude each tensor reached over the training set "
          "(float model). The sign bit counts in `I`, as in `ap_fixed<W,I>`.", ""]
    hr = headline_rows(res)
    frows = []
    for label, key, max_abs in range_rows(ctx):
        cells = [label, f"{max_abs:.4g}"]
        for r in hr:
            f = r["formats"].get(key)
            cells.append(f"`{f}` `{Fmt.parse(f).ap}`" if f else "-")
        frows.append(cells)
    L += _table(["tensor", "max abs (train)"] + [r["label"] for r in hr], frows)
    L += [""]
    if images:
        L += ["## Plots", ""] + [f"![{i}]({i})" for i in images] + [""]
    L += ["## Pareto front (accuracy against " + COST_NAMES[sw.cost] + ")", "",
          "A point is on the front when no other point reaches at least its accuracy at a lower or equal cost.",
          ""]
    prow = [[i, byi[i]["label"], _formats_str(byi[i]["formats"]), _pct(byi[i]["accuracy"])]
            + [_cost(byi[i], k) for k in COST_COLS] for i in front]
    L += _table(["#", "point", "formats", "accuracy", "LUTs", "FFs", "DSPs", "BRAMs"], prow) if prow else \
        ["No point has a hardware cost."]
    if res.get("failed"):
        L += ["", "## Failed points", "",
              "These points raised an error (or their worker died) and have no results; the others ran:", ""]
        L += [f"- #{f['index']} {f['label']}: {f['error']}" for f in res["failed"]]
    unavailable = [r for r in rows if r.get("hw_status") != "ok"]
    if unavailable:
        L += ["", "Points without a hardware cost:", ""]
        L += [f"- {r['label']}: {r.get('hw_reason', '')}" for r in unavailable]
    L += ["", "## All points", "",
          "Saturations count values that did not fit their format: parameters (`weight`, `bias`) once, "
          "`input` per value, and `pre`, `cell`, `hidden` per value at each requantization point, over "
          "the whole test set. Full formats per point are in `results.csv`.", ""]
    arows = []
    for r in rows:
        s = r["settings"]
        arows.append([r["index"], r["label"], _widths(r, m.first_cell.cell), s["rounding"], s["overflow"],
                      input_modes(s), _act(s["sigmoid"]),
                      _act(s["tanh"]), _pct(r["accuracy"]), _pct(r["agreement"]), f"{r['max_abs']:.3g}",
                      f"{r['rms']:.3g}"] + [r[f"sat_{k}"] for k in ("input", "pre", "cell", "hidden")]
                     + [_cost(r, k) for k in COST_COLS] + ["yes" if r["index"] in front else ""])
    L += _table(["#", "point", "widths", "rounding", "overflow", "input modes", "sigmoid", "tanh", "accuracy", "agreement",
                 "max-abs", "RMS", "sat in", "sat pre", "sat cell", "sat h", "LUTs", "FFs", "DSPs", "BRAMs",
                 "Pareto"], arows)
    L += ["", "Reproduce: `make quant STUDY=" + _rel(sw.path) + "` (trained models are committed; "
          "`make train` retrains them).", ""]
    return "\n".join(L)


def _model_line(m) -> str:
    """Which model the study quantized, and where it came from."""
    if m.path.suffix == ".onnx":
        return (f"- Model: `{m.name}` ({m.describe()}; `{_rel(m.path)}`), an ONNX graph read by `model.from_onnx` "
                f"(recurrent layers and its dense head).")
    return (f"- Model: `{m.name}` ({m.describe()}; `{_rel(m.path.with_name(m.meta['params']))}`), trained with "
            f"{m.meta['training']['framework']}.")


def _data_line(m, n_test: int) -> str:
    """The data the study used: the model's task and split, or a data file."""
    if m.data_file is None:
        return (f"- Data: {m.meta['task_description']}; {n_test} test sequences "
                f"(stratified split, seed {m.meta['split']['seed']}); normalisation fitted on the training set.")
    return (f"- Data: data file `{_rel(m.data_file)}` (its own train/test split); {n_test} test sequences; "
            f"normalisation: {m.meta['normalisation']['method']}.")


def _inputs_line(res) -> str:
    """How the float inputs were quantized: the modes of most points, and the exceptions by point."""
    pts = res["context"].sweep.points
    by = {}
    for k, p in enumerate(pts):
        by.setdefault(input_modes(p.settings), []).append(k)
    common = max(by, key=lambda m: (len(by[m]), m == input_modes(BUILTIN_DEFAULTS)))  # ties: the default modes
    others = "".join(f"; {m} at " + ", ".join(f"#{k}" for k in ks) for m, ks in by.items() if m != common)
    return (f"- Inputs: quantized into each point's `input` format with rounding/overflow {common} at "
            f"{'every point' if len(by) == 1 else 'the other points'}{others} (the sweep's `input_rounding` and "
            f"`input_overflow`); a point's `rounding` and `overflow` apply inside the cell.")


def _rel(p) -> str:
    from .run import ROOT  # noqa: PLC0415
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def write(res, out: Path) -> Path:
    """Write results.csv, the plots, report.md and summary.json into ``out``; return ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    front = set(pareto(res["rows"], res["context"].sweep.cost))
    write_csv(res["rows"], out / "results.csv", front)
    images = plots(res, out)
    (out / "report.md").write_text(markdown(res, images))
    ctx = res["context"]
    summ = {"study": ctx.sweep.name, "model": ctx.model.name, "points": len(ctx.sweep.points),
            "failed": res.get("failed", []),
            "seconds": round(res["seconds"], 1),
            "float_accuracy": float(np.mean(ctx.float_pred == ctx.test.labels)),
            "headline": [{k: r[k] for k in ("label", "accuracy", "agreement", "max_abs", "rms", "hw_status")
                          if k in r} | {c: r.get(c) for c in COST_COLS} for r in headline_rows(res)]}
    (out / "summary.json").write_text(json.dumps(summ, indent=1) + "\n")
    return out


def summary(res) -> str:
    """The headline table as plain text for the console."""
    ctx = res["context"]
    float_acc = float(np.mean(ctx.float_pred == ctx.test.labels))
    lines = [f"{'point':<44} {'accuracy':>9} {'agree':>8} {'RMS h':>8} {'LUTs':>6} {'DSPs':>5}",
             f"{'float reference':<44} {100 * float_acc:>8.2f}% {'':>8} {'':>8}"]
    for r in headline_rows(res):
        lines.append(f"{r['label'][:44]:<44} {100 * r['accuracy']:>8.2f}% {100 * r['agreement']:>7.2f}% "
                     f"{r['rms']:>8.3g} {_cost(r, 'luts'):>6} {_cost(r, 'dsps'):>5}")
    lines += [f"failed: #{f['index']} {f['label']}: {f['error']}" for f in res.get("failed", [])]
    return "\n".join(lines)
