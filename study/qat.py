"""Quantization-aware training (QAT) whose forward pass is the golden model's integer arithmetic.

::

    python -m study.qat [--models fsdd_lstm32,fsdd_gru32] [--points W8A8,W3A4,...] [--epochs N]
                        [--out reports/qat]

:func:`qat_cell` builds a PyTorch module computing exactly what :mod:`model.golden`
computes for a config (LSTM without peepholes, GRU with either reset
placement): parameters and inputs quantized with the config's rounding and
saturation, exact products and sums, every requantization point with its own
rounding and overflow mode, and sigmoid/tanh taken from the integer
definition in :mod:`model.activations` (the same :class:`~model.activations.Activation`
objects the golden model calls).  Values are float64 tensors holding the
formats' dyadic numbers, which float64 represents and adds exactly while every
intermediate stays below 2**53 (:func:`check_exact` refuses configs where it
would not).  Gradients are straight-through: a quantizer passes the gradient
unchanged inside its format's range and stops it where the value saturated; an
activation passes the derivative of the float function at its input.

So the trained latent weights, quantized by :func:`model.params.quantize`, run
in :func:`model.golden.run` (and the gateware) to the very same integers:
:func:`check_bit_exact` verifies it on every sequence and every element of
the last hidden state, and the predicted classes.

The classifier head stays float (a float64 linear layer on the dequantized
last hidden state, as in the default quantization study) and is fine-tuned
together with the cell.  The report (:func:`main`) compares post-training
quantization (PTQ) with QAT at the same formats, from 8 down to 2 bits, into
``reports/qat/``: formats calibrated as :mod:`study.calibrate` chooses them,
the weight format's integer bits then chosen on a validation split of the
training set (:func:`choose_weight_format`); QAT starts from the PTQ
parameters and keeps its best epoch on that split, so the test set only
measures.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model import golden, kinds
from model.activations import make_activation
from model.config import Config, ConfigError
from model.datapath import FLOAT_EXACT, Datapath
from model.fixedpoint import Fmt
from model.network import HeadParams
from model.params import CellParams, quantize
from model.cli import Parser, positive_int

from . import calibrate, data, models, qat_kinds
from .sweep import BUILTIN_DEFAULTS, Point

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "qat"
#: Models of the report.
MODELS = ("fsdd_lstm32", "fsdd_gru32")
#: Report points: label -> (weight bits, activation bits); the other widths are the study's defaults.
POINTS = {"W8A8": (8, 8), "W6A6": (6, 6), "W4A4": (4, 4), "W3A4": (3, 4), "W3A3": (3, 3), "W2A2": (2, 2)}
#: Widest format :func:`qat_cell` takes: products of two such values stay exact in float64.
MAX_FORMAT_WIDTH = 24
#: QAT epochs of a point whose weights and activations both have at least :data:`WIDE_BITS` bits, and of a
#: narrower point.
EPOCHS_WIDE, EPOCHS_NARROW = 5, 15
WIDE_BITS = 6
#: Share of the training set held out (stratified per class, seeded) to select the QAT epoch; never trained on.
VAL_FRACTION = 0.1
LR = 2e-3
#: Learning rate of the recurrent weights relative to :data:`LR`.
RECURRENT_LR_SCALE = 1.0
BATCH = 32
#: Softening of the logits in the distillation loss.
TEMPERATURE = 2.0
SEED = 0


class QatError(ValueError):
    """A model, config or setting QAT cannot use."""


# ---- configs -----------------------------------------------------------------------------------------------

def point_widths(weight_bits: int, act_bits: int) -> dict:
    """``{tensor: bits}`` of a report point: the quantization study's widths (``act_bits`` for the input,
    gates, candidate, tanh(c) and h) with its default bias, accumulator and cell widths."""
    return Point("", "", {**BUILTIN_DEFAULTS, "weight_bits": weight_bits, "act_bits": act_bits}).widths()


def make_config(model, ranges: dict, widths: dict, name: str, sigmoid=None, tanh=None) -> Config:
    """The validated config of ``model``'s cell at ``widths`` (``{tensor: bits}``; tensors the kind does
    not use are ignored), integer bits from the calibrated ``ranges``, activations ``sigmoid`` and
    ``tanh`` (default: the study's), the study's lanes and modes, and the trained parameters."""
    p = model.params
    fmts = calibrate.choose_formats(ranges, {t: widths[t] for t in cell_tensors(p)})
    return Config.from_dict({
        "name": name, "kind": p.kind, "input_size": p.input_size, "hidden_size": p.hidden_size, **p.options,
        "formats": {t: str(f) for t, f in fmts.items()},
        "modes": {"rounding": BUILTIN_DEFAULTS["rounding"], "overflow": BUILTIN_DEFAULTS["overflow"]},
        "sigmoid": sigmoid or BUILTIN_DEFAULTS["sigmoid"], "tanh": tanh or BUILTIN_DEFAULTS["tanh"],
        "lanes": BUILTIN_DEFAULTS["lanes"], "params": str(model.path.with_name(model.meta["params"])),
    })


def cell_tensors(params: CellParams) -> tuple:
    """The format tensors of ``params``' cell kind, in :data:`study.calibrate.TENSORS` order."""
    own = params.cell.tensors()
    return tuple(t for t in calibrate.TENSORS if t in own)


def check_exact(cfg: Config) -> None:
    """Raise :class:`QatError` unless ``cfg`` is a kind :func:`qat_cell` has steps for and every
    intermediate of its arithmetic is exact in float64."""
    mod = qat_kinds.steps(cfg.cell)
    if mod is None or any(cfg.options.get(k) not in v for k, v in mod.ACCEPTS.items()):
        have = "; ".join(f"{name} with " + ", ".join(f"{o} in {v}" for o, v in m.ACCEPTS.items())
                         for name in kinds.names() if (m := qat_kinds.steps(kinds.make(name))) is not None)
        raise QatError(f"QAT has no steps for a {cfg.cell.variant}; accepted: {have}")
    wide = {t: f.width for t, f in cfg.formats.items() if f is not None and f.width > MAX_FORMAT_WIDTH}
    if wide:
        raise QatError(f"formats wider than {MAX_FORMAT_WIDTH} bits are not exact in float64 products: "
                       + ", ".join(f"{t} ({w} bits)" for t, w in wide.items()))
    dp = Datapath.from_config(cfg)
    if (1 << dp.acc_width) > FLOAT_EXACT:
        raise QatError(f"the accumulator of config {cfg.name!r} needs {dp.acc_width} bits; QAT sums exactly up "
                       f"to 53 bits")


# ---- the quantized forward pass -------------------------------------------------------------------------------

def _torch():
    import torch  # noqa: PLC0415  (the study imports PyTorch only where it trains)
    return torch


def _round(y, rounding: str):
    torch = _torch()
    if rounding == "truncate":
        return torch.floor(y)
    if rounding == "half_up":
        return torch.floor(y + 0.5)
    return torch.round(y)  # half to even


def ste_quantize(v, fmt, rounding: str, overflow: str):
    """``v`` (real values, float64) into ``fmt`` with ``rounding`` and ``overflow``, as real values.

    Forward: the value :func:`model.fixedpoint.requantize` (or :func:`~model.fixedpoint.quantize`) gives.
    Backward: identity where the rounded value fits ``fmt``, zero where it saturated (a wrapped value
    passes the gradient unchanged)."""
    torch = _torch()
    n = _round(v.detach() * 2.0 ** fmt.frac_bits, rounding)
    inside = (n >= fmt.min_int) & (n <= fmt.max_int)
    if overflow == "saturate":
        n = torch.clamp(n, fmt.min_int, fmt.max_int)
        pass_grad = inside.to(v.dtype)
    else:
        m = float(2 ** fmt.width)
        n = torch.remainder(n - fmt.min_int, m) + fmt.min_int
        pass_grad = torch.ones_like(v)
    return (n * 2.0 ** -fmt.frac_bits) + (v - v.detach()) * pass_grad


class _Act:
    """One golden activation in torch: the integer definition forward, the float derivative backward."""

    def __init__(self, fn: str, spec, fin, fout):
        self.act = make_activation(fn, spec, fin, fout)
        self.fin, self.fout, self.fn = fin, fout, fn

    def __call__(self, v):
        torch = _torch()
        raw = (v.detach() * 2.0 ** self.fin.frac_bits).numpy().astype(np.int64)
        y = torch.from_numpy(self.act(raw).astype(np.float64)) * 2.0 ** -self.fout.frac_bits
        smooth = torch.sigmoid(v) if self.fn == "sigmoid" else torch.tanh(v)
        return y + (smooth - smooth.detach())


def qat_cell(params: CellParams, head: HeadParams, cfg: Config):
    """A ``torch.nn.Module`` whose forward is :func:`model.golden.run`'s arithmetic for ``cfg`` on latent float
    parameters (starting from ``params``), followed by the float ``head``; its :meth:`deployed` gives the
    parameters to quantize and ship.  Raises :class:`QatError` for a config it cannot run exactly."""
    torch = _torch()
    check_exact(cfg)
    params.check_matches(cfg)

    class _Cell(torch.nn.Module):
        """The QAT module of :func:`qat_cell`."""

        def __init__(self):
            super().__init__()
            self.cfg = cfg
            b, b_split = params.cell.fold_bias(params.b_ih, params.b_hh)
            P = torch.nn.Parameter
            self.w_ih, self.w_hh = P(torch.from_numpy(params.w_ih.copy())), P(torch.from_numpy(params.w_hh.copy()))
            self.bias = P(torch.from_numpy(np.array(b)))
            self.bias_hn = None if b_split is None else P(torch.from_numpy(np.array(b_split)))
            self.head_w = P(torch.from_numpy(np.array(head.weight, dtype=np.float64)))
            self.head_b = P(torch.from_numpy(np.array(head.bias, dtype=np.float64)))
            self.acts = {a: _Act(fn, getattr(cfg, fn), cfg.fmt(fi), cfg.fmt(fo)) for a, fn, fi, fo in
                         cfg.cell.activations()}

        # -- quantizers
        def q(self, v, tensor, point):
            m = cfg.mode(point)
            return ste_quantize(v, cfg.fmt(tensor), m.rounding, m.overflow)

        def qparam(self, v, tensor):
            return ste_quantize(v, cfg.fmt(tensor), cfg.param_rounding, "saturate")

        def forward(self, x, lengths=None, all_steps=False):
            """Logits and h: ``x`` (batch, steps, input) float inputs (padded), ``lengths`` each sequence's
            steps (default: all); returns ``(logits, h_last)`` as real values, or with ``all_steps`` the
            hidden states of every step (batch, steps, hidden) as well."""
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
            B, T, _ = x.shape
            lengths = torch.full((B,), T) if lengths is None else torch.as_tensor(lengths)
            xq = ste_quantize(x, cfg.fmt("input"), "half_even", "saturate").detach()
            w_ih, w_hh = self.qparam(self.w_ih, "weight"), self.qparam(self.w_hh, "weight")
            bias = self.qparam(self.bias, "bias")
            bias_hn = None if self.bias_hn is None else self.qparam(self.bias_hn, "bias")
            xproj = xq @ w_ih.T
            state = tuple(torch.zeros(B, cfg.hidden_size, dtype=torch.float64) for _ in cfg.cell.state)
            hs = []
            step = qat_kinds.steps(cfg.cell).step
            for t in range(T):
                state = step(self, xproj[:, t], state, w_hh, bias, bias_hn)
                hs.append(state[0])
            hs = torch.stack(hs, 1)
            h_last = hs[torch.arange(B), lengths - 1]
            logits = h_last @ self.head_w.T + self.head_b
            return (logits, h_last, hs) if all_steps else (logits, h_last)

        def deployed(self) -> tuple[CellParams, HeadParams]:
            """The latent parameters as float :class:`CellParams` (biases folded as the hardware stores
            them, so :func:`model.params.quantize` gives the integers of the forward pass) and the head."""
            H = cfg.hidden_size
            b = self.bias.detach().numpy().copy()
            b_hh = np.zeros_like(b)
            if self.bias_hn is not None:
                b_hh[-H:] = self.bias_hn.detach().numpy()
            cell = CellParams(params.kind, self.w_ih.detach().numpy().copy(), self.w_hh.detach().numpy().copy(),
                              b, b_hh, None, dict(params.options))
            return cell, HeadParams(self.head_w.detach().numpy().copy(), self.head_b.detach().numpy().copy())

    return _Cell()


# ---- the golden side ---------------------------------------------------------------------------------------

def golden_last_h(params: CellParams, cfg: Config, seqs) -> np.ndarray:
    """Raw last hidden state (n, hidden) of each sequence run alone from a zero state, by :func:`model.golden.run`."""
    q = quantize(params, cfg)
    out = np.empty((len(seqs), cfg.hidden_size), dtype=np.int64)
    for _, idx in data.by_length(seqs).items():
        out[idx] = golden.run(q, np.stack([np.asarray(seqs[i], dtype=np.float64) for i in idx]), cfg).outputs[:, -1]
    return out


def golden_predict(params: CellParams, head: HeadParams, cfg: Config, seqs) -> tuple[np.ndarray, np.ndarray]:
    """``(raw last h, predicted classes)`` of the deployed cell (golden model) and the float head."""
    h = golden_last_h(params, cfg, seqs)
    return h, models.head_logits(head, cfg.fmt("hidden").to_float(h)).argmax(1)


def _padded(seqs, idx):
    n = max(len(seqs[i]) for i in idx)
    x = np.zeros((len(idx), n, seqs[idx[0]].shape[1]))
    for k, i in enumerate(idx):
        x[k, :len(seqs[i])] = seqs[i]
    return x, np.array([len(seqs[i]) for i in idx])


def qat_predict(net, seqs, batch: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``(raw last h, predicted classes)`` of the QAT forward pass (sequences batched by length, padded;
    each sequence's h read at its own last step)."""
    torch = _torch()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    fh = net.cfg.fmt("hidden")
    h = np.empty((len(seqs), net.cfg.hidden_size), dtype=np.int64)
    pred = np.empty(len(seqs), dtype=np.int64)
    with torch.no_grad():
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            logits, hl = net(*_padded(seqs, idx))
            h[idx] = np.rint(hl.numpy() * 2.0 ** fh.frac_bits).astype(np.int64)
            pred[idx] = logits.argmax(1).numpy()
    return h, pred


@dataclass
class BitExact:
    """What :func:`check_bit_exact` compared: sequences, elements of h that differ, classes that differ."""

    sequences: int
    elements: int
    h_mismatches: int
    class_mismatches: int

    @property
    def ok(self) -> bool:
        return self.h_mismatches == 0 and self.class_mismatches == 0


def check_bit_exact(net, seqs) -> BitExact:
    """Run the deployed parameters of ``net`` in :func:`model.golden.run` and ``net`` itself over ``seqs``;
    compare the raw last hidden states element by element and the predicted classes."""
    cell, head = net.deployed()
    gh, gp = golden_predict(cell, head, net.cfg, seqs)
    th, tp = qat_predict(net, seqs)
    return BitExact(len(seqs), gh.size, int(np.count_nonzero(gh != th)), int(np.count_nonzero(gp != tp)))


# ---- training ------------------------------------------------------------------------------------------------

def split_validation(train_set: data.Dataset, fraction: float = VAL_FRACTION,
                     seed: int = SEED) -> tuple[data.Dataset, data.Dataset]:
    """``(fit, validation)``: ``train_set`` split stratified per class (:func:`study.data.split`), the
    validation part ``fraction`` of each class."""
    fit, val = data.split(train_set.labels, seed, fraction)
    return train_set.subset(fit), train_set.subset(val)


def evaluate(net, seqs, labels) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` of ``net``'s quantized forward (which is the golden model's cell
    and the float head) on ``seqs``."""
    h, pred = qat_predict(net, seqs)
    logits = models.head_logits(HeadParams(net.head_w.detach().numpy(), net.head_b.detach().numpy()),
                                net.cfg.fmt("hidden").to_float(h))
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    labels = np.asarray(labels)
    return float(np.mean(pred == labels)), float(-logp[np.arange(len(labels)), labels].mean())


@dataclass
class History:
    """What :func:`train` did: per epoch ``(loss, quantized train accuracy, validation accuracy or None)``,
    the validation accuracy of the starting parameters (epoch 0), and the epoch whose parameters it kept
    (0: the starting ones; without validation, the last epoch)."""

    epochs: list = field(default_factory=list)
    val_start: float | None = None
    best: int = 0


def train(net, train_set: data.Dataset, epochs: int = EPOCHS_NARROW, lr: float = LR, batch: int = BATCH,
          seed: int = SEED, log=print, tag: str = "", teacher=None, val: data.Dataset | None = None,
          recurrent_lr_scale: float = RECURRENT_LR_SCALE) -> History:
    """Fine-tune ``net`` on ``train_set`` (Adam with a cosine schedule, the recurrent weights at
    ``recurrent_lr_scale`` times ``lr``, gradient clipping at 1.0); mini-batches hold sequences of similar
    length (sorted, then shuffled batch by batch).  The loss is the cross-entropy with the labels, averaged
    with the distillation loss against ``teacher`` (the float model's logits per training sequence,
    temperature :data:`TEMPERATURE`) when given.

    With ``val`` (sequences never trained on), the quantized forward is evaluated on it before training and
    after every epoch, and ``net`` ends with the parameters of the best evaluation (highest accuracy, then
    lowest cross-entropy; the earliest on a tie): the starting parameters when no epoch beat them."""
    torch = _torch()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    rec = [net.w_hh]
    rest = [p for p in net.parameters() if all(p is not r for r in rec)]
    opt = torch.optim.Adam([{"params": rest}, {"params": rec, "lr": lr * recurrent_lr_scale}], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    lossf = torch.nn.CrossEntropyLoss()
    order = np.argsort([len(s) for s in train_set.seqs], kind="stable")
    batches = [order[b:b + batch] for b in range(0, len(order), batch)]
    labels = torch.from_numpy(np.asarray(train_set.labels, dtype=np.int64))
    hist, t0 = History(best=0 if val is not None else epochs), time.perf_counter()
    if val is not None:
        best_score = evaluate(net, val.seqs, val.labels)
        hist.val_start = best_score[0]
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        log(f"[qat] {tag} start: validation accuracy {best_score[0]:.4f}")
    for ep in range(epochs):
        total, correct = 0.0, 0
        for k in rng.permutation(len(batches)):
            idx = batches[k]
            logits, _ = net(*_padded(train_set.seqs, idx))
            loss = lossf(logits, labels[idx])
            if teacher is not None:
                soft = torch.softmax(torch.from_numpy(teacher[idx]) / TEMPERATURE, 1)
                kd = torch.nn.functional.kl_div(torch.log_softmax(logits / TEMPERATURE, 1), soft,
                                                reduction="batchmean")
                loss = 0.5 * loss + 0.5 * TEMPERATURE ** 2 * kd
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == labels[idx]).sum())
        sched.step()
        n = len(train_set.seqs)
        score = None
        if val is not None:
            score = evaluate(net, val.seqs, val.labels)
            if (score[0], -score[1]) > (best_score[0], -best_score[1]):
                best_score, hist.best = score, ep + 1
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        hist.epochs.append((total / n, correct / n, None if score is None else score[0]))
        log(f"[qat] {tag} epoch {ep + 1}/{epochs}: loss {total / n:.4f}, quantized train accuracy "
            f"{correct / n:.4f}" + ("" if score is None else f", validation {score[0]:.4f}")
            + f", {time.perf_counter() - t0:.0f} s")
    if val is not None:
        net.load_state_dict(best_state)
        log(f"[qat] {tag} kept epoch {hist.best} (validation accuracy {best_score[0]:.4f})")
    return hist


# ---- the PTQ / QAT report ---------------------------------------------------------------------------------------

def point_epochs(label: str) -> int:
    """QAT epochs of report point ``label``: :data:`EPOCHS_WIDE` when weights and activations both have at
    least :data:`WIDE_BITS` bits, else :data:`EPOCHS_NARROW`."""
    return EPOCHS_WIDE if min(POINTS[label]) >= WIDE_BITS else EPOCHS_NARROW


def choose_weight_format(m, cfg: Config, val: data.Dataset, log=print) -> Config:
    """``cfg`` or ``cfg`` with one integer bit fewer (and one fraction bit more) in the weight format,
    whichever post-training quantization of ``m`` classifies ``val`` better with (``cfg`` on a tie).
    Calibration covers the largest weight; a few outliers can cost every other weight half its resolution."""
    f = cfg.fmt("weight")
    if f.int_bits <= 1:
        return cfg
    narrow = cfg.replace(formats={"weight": Fmt(f.signed, f.int_bits - 1, f.frac_bits + 1)})
    acc = {}
    for c in (cfg, narrow):
        _, pred = golden_predict(m.params, m.head_params, c, val.seqs)
        acc[c.fmt("weight")] = float(np.mean(pred == val.labels))
    log(f"[qat] {cfg.name}: PTQ validation accuracy by weight format: "
        + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    return narrow if acc[narrow.fmt("weight")] > acc[f] else cfg


def run_point(m, ranges, fit_set, val_set, test_set, label: str, epochs: int, teacher=None, log=print) -> dict:
    """PTQ and QAT of trained model ``m`` at report point ``label``: the weight format chosen on ``val_set``
    (:func:`choose_weight_format`), QAT on ``fit_set`` keeping the best epoch on ``val_set`` (:func:`train`),
    accuracies on ``test_set`` through the golden model, and the bit-exactness check of the QAT forward against
    it; ``teacher`` as in :func:`train`."""
    w, a = POINTS[label]
    calibrated = make_config(m, ranges, point_widths(w, a), f"{m.name}-{label}")
    _, ptq_cal = golden_predict(m.params, m.head_params, calibrated, test_set.seqs)
    cfg = choose_weight_format(m, calibrated, val_set, log)
    _, ptq = golden_predict(m.params, m.head_params, cfg, test_set.seqs)
    net = qat_cell(m.params, m.head_params, cfg)
    t0 = time.perf_counter()
    hist = train(net, fit_set, epochs, log=log, tag=f"{m.name} {label}", teacher=teacher, val=val_set)
    secs = time.perf_counter() - t0
    cell, head = net.deployed()
    _, pred = golden_predict(cell, head, cfg, test_set.seqs)
    exact = check_bit_exact(net, test_set.seqs)
    row = {"model": m.name, "point": label, "weight_bits": w, "act_bits": a,
           "formats": " ".join(f"{t}={f}" for t, f in cfg.formats.items() if f is not None),
           "calibrated_weight": str(calibrated.fmt("weight")),
           "ptq_calibrated": float(np.mean(ptq_cal == test_set.labels)),
           "ptq": float(np.mean(ptq == test_set.labels)), "qat": float(np.mean(pred == test_set.labels)),
           "ptq_val": hist.val_start,
           "qat_val": hist.val_start if hist.best == 0 else hist.epochs[hist.best - 1][2],
           "sequences": exact.sequences, "elements": exact.elements,
           "h_mismatches": exact.h_mismatches, "class_mismatches": exact.class_mismatches,
           "epochs": epochs, "best_epoch": hist.best, "train_s": round(secs, 1)}
    log(f"[qat] {m.name} {label}: PTQ {row['ptq']:.4f}, QAT {row['qat']:.4f} (epoch {hist.best}); bit-exact on "
        f"{exact.sequences} sequences: {exact.h_mismatches} of {exact.elements} h elements and "
        f"{exact.class_mismatches} classes differ")
    return row


def run_model(name: str, labels, epochs: int | None = None, log=print) -> tuple[dict, list]:
    """``(summary, rows)`` of every point in ``labels`` for trained model ``name``: ``epochs`` QAT epochs per
    point (default :func:`point_epochs`), the validation split of :func:`split_validation`."""
    m = models.load(name)
    train_set, test_set = m.datasets()
    fit_set, val_set = split_validation(train_set)
    ranges = calibrate.observe_ranges(m.params, train_set.seqs)
    fpred = m.head(m.float_last_h(test_set.seqs)).argmax(1)
    info = {"model": name, "describe": m.describe(), "float": float(np.mean(fpred == test_set.labels)),
            "train": len(train_set.seqs), "fit": len(fit_set.seqs), "val": len(val_set.seqs),
            "test": len(test_set.seqs), "ranges": ranges}
    log(f"[qat] {name} ({m.describe()}): float test accuracy {info['float']:.4f}")
    teacher = m.head(m.float_last_h(fit_set.seqs))
    return info, [run_point(m, ranges, fit_set, val_set, test_set, k, epochs or point_epochs(k), teacher, log)
                  for k in labels]


CSV_COLUMNS = ("model", "point", "weight_bits", "act_bits", "formats", "calibrated_weight", "float",
               "ptq_calibrated", "ptq", "qat", "ptq_val", "qat_val", "sequences", "elements", "h_mismatches",
               "class_mismatches", "epochs", "best_epoch", "train_s")


def write_report(infos: list, rows: list, out: Path, seconds: float) -> Path:
    """results.csv, qat_vs_ptq.png and README.md into ``out``."""
    from .report import _pct, _table  # noqa: PLC0415
    out.mkdir(parents=True, exist_ok=True)
    fl = {i["model"]: i["float"] for i in infos}
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([fl[r["model"]] if c == "float" else r[c] for c in CSV_COLUMNS])
    _plot(infos, rows, out / "qat_vs_ptq.png")
    wide = sorted({r["epochs"] for r in rows if min(r["weight_bits"], r["act_bits"]) >= WIDE_BITS})
    narrow = sorted({r["epochs"] for r in rows if min(r["weight_bits"], r["act_bits"]) < WIDE_BITS})
    epochs = " and ".join(x for x in (
        f"{'/'.join(map(str, wide))} epochs at points of {WIDE_BITS} bits or more" if wide else "",
        f"{'/'.join(map(str, narrow))} epochs at narrower points" if narrow else "") if x)
    i0 = infos[0] if infos else {"test": 0, "train": 0, "fit": 0, "val": 0}
    lines = ["# Quantization-aware training against post-training quantization", "",
             "Spoken digits (FSDD, 13 MFCC features, 10 classes), the trained one-layer models of `models/`. "
             "Each point gives weights `W` bits and activations `A` bits (input, gates, candidate, tanh(c), h); "
             f"bias {BUILTIN_DEFAULTS['bias_bits']}, pre-activation {BUILTIN_DEFAULTS['acc_bits']} and cell state "
             f"{BUILTIN_DEFAULTS['cell_bits']} bits as in the default quantization study, integer bits calibrated "
             "on the training set (`study.calibrate`), round half to even and saturation everywhere, "
             "sigmoid and tanh by interpolated 64-entry tables.", "",
             f"- **Validation split**: {i0['val']} of the {i0['train']} training sequences ({VAL_FRACTION:.0%} of "
             f"each class, stratified, seed {SEED}; `study.qat.split_validation`) are held out; QAT trains on the "
             f"other {i0['fit']}. The test set ({i0['test']} sequences) is used for nothing but the numbers below.",
             "- **Weight format**: calibration gives the weights enough integer bits for the largest weight. "
             "`study.qat.choose_weight_format` also tries one integer bit fewer (one fraction bit more; the few "
             "larger weights saturate) and keeps it when PTQ classifies the validation split better with it. "
             "PTQ and QAT use the chosen formats; *PTQ cal.* is PTQ at the calibrated formats, for reference.",
             "- **PTQ**: the float model's weights quantized into the point's formats, run by the golden model.",
             f"- **QAT**: the float model fine-tuned on the training sequences outside the validation split with "
             "`study.qat`, whose forward pass is the golden model's integer arithmetic (straight-through "
             f"gradients), {epochs}, Adam at learning rate {LR:g} with a cosine schedule, loss the mean of the "
             f"cross-entropy and the distillation loss against the float model (temperature {TEMPERATURE:g}). "
             "**Selection**: the quantized model is evaluated on the validation split before training (the PTQ "
             "parameters, epoch 0) and after every epoch; the best (validation accuracy, then cross-entropy, then "
             "the earliest) is kept, so on validation QAT can only equal or beat PTQ. Its latent weights are "
             "quantized exactly as PTQ quantizes them and run by the golden model on the test set.",
             "- **Head**: float in both (a float64 linear layer on the dequantized last h, as in the default "
             "study); QAT fine-tunes it with the cell. The gateware computes the cell; the head runs on the host.",
             "- **Bit-exact**: after training, `study.qat.check_bit_exact` runs every test sequence through both "
             "the QAT forward pass and `model.golden.run` on the deployed integers and compares the last h "
             "integer by integer and the predicted classes. Every accuracy below is the golden model's.",
             f"- CPU, one thread, {seconds / 60:.1f} min for the whole report (`make qat`).", ""]
    for info in infos:
        mine = [r for r in rows if r["model"] == info["model"]]
        lines += [f"## `{info['model']}` ({info['describe']}), float {_pct(info['float'])}", ""]
        lines += _table(["point", "PTQ cal.", "PTQ", "QAT", "QAT − float (pp)", "QAT − PTQ (pp)",
                         "validation PTQ → QAT", "epoch kept", "bit-exact (h elements, classes)", "formats"],
                        [[r["point"], _pct(r["ptq_calibrated"]), _pct(r["ptq"]), _pct(r["qat"]),
                          f"{100 * (r['qat'] - info['float']):+.2f}", f"{100 * (r['qat'] - r['ptq']):+.2f}",
                          f"{_pct(r['ptq_val'])} → {_pct(r['qat_val'])}", f"{r['best_epoch']} of {r['epochs']}",
                          ("yes" if r["h_mismatches"] == 0 and r["class_mismatches"] == 0 else "**no**")
                          + f" ({r['h_mismatches']}/{r['elements']}, {r['class_mismatches']}/{r['sequences']})",
                          f"`{r['formats']}`" + ("" if f"weight={r['calibrated_weight']}" in r["formats"].split()
                                                 else f" (calibrated weight `{r['calibrated_weight']}`)")]
                         for r in mine])
        lines.append("")
    lines += ["![qat_vs_ptq.png](qat_vs_ptq.png)", "",
              "Regenerate with `make qat` (`python -m study.qat`); the manual is `docs/qat.md`.", ""]
    (out / "README.md").write_text("\n".join(lines))
    return out


def _plot(infos, rows, path: Path) -> None:
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig, axes = plt.subplots(1, max(len(infos), 1), figsize=(5.5 * max(len(infos), 1), 4), squeeze=False)
    for ax, info in zip(axes[0], infos):
        mine = [r for r in rows if r["model"] == info["model"]]
        xs = np.arange(len(mine))
        ax.plot(xs, [100 * r["ptq_calibrated"] for r in mine], "o:", color="silver", label="PTQ, calibrated formats")
        ax.plot(xs, [100 * r["ptq"] for r in mine], "o-", label="PTQ")
        ax.plot(xs, [100 * r["qat"] for r in mine], "s-", label="QAT")
        ax.axhline(100 * info["float"], color="gray", ls="--", label="float")
        ax.set_xticks(xs, [r["point"] for r in mine])
        ax.set_title(info["model"])
        ax.set_ylabel("test accuracy (%)")
        finish_axes(ax)
    save_figure(fig, path)


def finish_axes(ax) -> None:
    """A light grid and the legend: the look of the study's plots."""
    ax.grid(alpha=0.3)
    ax.legend()


def save_figure(fig, path: Path) -> None:
    """Lay out, write (110 dpi) and close ``fig``."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _labels(text: str) -> list:
    out = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in out if t not in POINTS]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"--points: unknown point {(bad or [text])[0]!r}; accepted: a comma-separated "
                                         f"list of {', '.join(POINTS)}")
    return out


def _model_names(text: str) -> list:
    out = [t.strip() for t in text.split(",") if t.strip()]
    for t in out or [text]:
        try:
            m = models.load(t)
        except models.ModelError as e:
            raise argparse.ArgumentTypeError(f"--models: {e}") from None
        if m.network:
            raise argparse.ArgumentTypeError(f"--models: {t!r} is a network; QAT takes one-cell models")
    return out


def main(argv=None) -> int:
    ap = Parser(prog="python -m study.qat", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=_model_names, default=list(MODELS),
                    help=f"comma-separated trained models (default {','.join(MODELS)})")
    ap.add_argument("--points", type=_labels, default=list(POINTS),
                    help=f"comma-separated points (default all: {','.join(POINTS)})")
    ap.add_argument("--epochs", type=positive_int("--epochs"), default=None,
                    help=f"QAT epochs per point (default {EPOCHS_WIDE} when weights and activations have at least "
                         f"{WIDE_BITS} bits, else {EPOCHS_NARROW})")
    ap.add_argument("--out", default=str(REPORTS), help="output folder (default reports/qat)")
    args = ap.parse_args(argv)
    torch = _torch()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    infos, rows = [], []
    try:
        for name in args.models:
            info, r = run_model(name, args.points, args.epochs)
            infos.append(info)
            rows += r
    except (QatError, ConfigError, calibrate.CalibrationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = write_report(infos, rows, Path(args.out), time.perf_counter() - t0)
    print(f"[qat] wrote {out / 'README.md'}")
    bad = [r for r in rows if r["h_mismatches"] or r["class_mismatches"]]
    if bad:
        print(f"error: the QAT forward differs from the golden model at {', '.join(r['point'] for r in bad)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
