"""Train the study's models with PyTorch and write them to ``models/``.

::

    python -m study.train [--only fsdd_lstm32,...] [--out models] [--epochs N]

Each model is a peephole-free ``nn.LSTM`` or ``nn.GRU`` (one layer, or a stack, or
bidirectional) followed by a linear classifier on the last step's output (a
bidirectional layer's output there is the forward direction's final state and the
reverse direction's state after that one step).  Sequences of different lengths
share a mini-batch through ``pack_padded_sequence``, so every sequence is seen
with exactly its own steps (no padding enters the recurrence) and the classifier
reads ``h`` at that sequence's last step: the same thing the golden model and the
hardware compute when they run one sequence at a time from a zero state.

Seeded (PyTorch, NumPy, the split) with deterministic algorithms and a fixed
thread count, so a rerun reproduces the committed files.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from model import kinds

from . import data
from .models import MODELS_DIR

#: name -> task, cell kind, hidden size and training settings.
MODELS = {
    "fsdd_lstm32": {"task": "fsdd", "kind": "lstm", "hidden": 32, "epochs": 40, "lr": 5e-3},
    "fsdd_lstm100": {"task": "fsdd", "kind": "lstm", "hidden": 100, "epochs": 30, "lr": 3e-3},
    "fsdd_gru32": {"task": "fsdd", "kind": "gru", "hidden": 32, "epochs": 40, "lr": 5e-3},
    "fsdd_gru100": {"task": "fsdd", "kind": "gru", "hidden": 100, "epochs": 30, "lr": 3e-3},
    "digits_lstm16": {"task": "digits", "kind": "lstm", "hidden": 16, "epochs": 40, "lr": 1e-2},
    "fsdd_lstm2x32": {"task": "fsdd", "kind": "lstm", "hidden": 32, "layers": 2, "epochs": 40, "lr": 5e-3},
    "fsdd_bigru32": {"task": "fsdd", "kind": "gru", "hidden": 32, "bidirectional": True, "epochs": 40, "lr": 5e-3},
}
SPLIT_SEED = 2024
TEST_FRACTION = 0.2
BATCH = 32
THREADS = 2


def _net(kind: str, n_in: int, hidden: int, n_classes: int, layers: int = 1, bidirectional: bool = False):
    import torch  # noqa: PLC0415
    import torch.nn as nn  # noqa: PLC0415
    from torch.nn.utils.rnn import pad_packed_sequence  # noqa: PLC0415

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, kinds.REGISTRY[kind].torch_class)(n_in, hidden, num_layers=layers,
                                                                      bidirectional=bidirectional, batch_first=True)
            self.head = nn.Linear(hidden * (2 if bidirectional else 1), n_classes)

        def forward(self, packed):
            y, state = self.rnn(packed)
            if not bidirectional:  # the last layer's final state is its last step's output
                h = state[0] if isinstance(state, tuple) else state  # (h, c) or h
                return self.head(h[-1])
            y, lengths = pad_packed_sequence(y, batch_first=True)
            return self.head(y[torch.arange(len(lengths)), lengths - 1])

    return Net()


def _pack(seqs, idx):
    import torch  # noqa: PLC0415
    from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence  # noqa: PLC0415

    xs = [torch.from_numpy(np.asarray(seqs[i], dtype=np.float32)) for i in idx]
    lengths = torch.tensor([len(x) for x in xs])
    return pack_padded_sequence(pad_sequence(xs, batch_first=True), lengths, batch_first=True,
                                enforce_sorted=False)


def _accuracy(net, seqs, labels) -> float:
    import torch  # noqa: PLC0415

    with torch.no_grad():
        pred = net(_pack(seqs, range(len(seqs)))).argmax(1).numpy()
    return float(np.mean(pred == labels))


def train_one(name: str, spec: dict, out_dir: Path, epochs: int | None = None, log=print) -> dict:
    """Train model ``name`` and write ``<name>.npz`` and ``<name>.json`` into ``out_dir``; return the metadata."""
    import torch  # noqa: PLC0415

    from model.network import from_torch as network_from_torch  # noqa: PLC0415
    from model.params import from_torch  # noqa: PLC0415

    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    epochs = epochs or spec["epochs"]
    ds = data.load(spec["task"])
    tr, te = data.split(ds.labels, SPLIT_SEED, TEST_FRACTION)
    norm = data.Normalizer.fit([ds.seqs[i] for i in tr])
    train, test = ds.subset(tr), ds.subset(te)
    xtr, xte = norm(train.seqs), norm(test.seqs)
    ytr = torch.from_numpy(train.labels)
    layers, bidir = spec.get("layers", 1), spec.get("bidirectional", False)
    net = _net(spec["kind"], ds.n_features, spec["hidden"], ds.n_classes, layers, bidir)
    opt = torch.optim.Adam(net.parameters(), lr=spec["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    rng = np.random.default_rng(1)
    lossf = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    shape = f"{layers} layers x " if layers > 1 else "bidirectional " if bidir else ""
    log(f"[train] {name}: {shape}{spec['kind']} hidden {spec['hidden']} on {spec['task']} "
        f"({len(tr)} train / {len(te)} test sequences), {epochs} epochs")
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(len(tr))
        total, correct = 0.0, 0
        for b in range(0, len(perm), BATCH):
            idx = perm[b:b + BATCH]
            logits = net(_pack(xtr, idx))
            loss = lossf(logits, ytr[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == ytr[idx]).sum())
        sched.step()
        log(f"[train] {name} epoch {ep + 1:>3}/{epochs}: loss {total / len(tr):.4f}, "
            f"train accuracy {correct / len(tr):.4f}, {time.perf_counter() - t0:.1f} s")
    net.eval()
    acc_tr = _accuracy(net, xtr, train.labels)
    acc_te = _accuracy(net, xte, test.labels)
    log(f"[train] {name}: float test accuracy {acc_te:.4f} (train {acc_tr:.4f}), "
        f"{time.perf_counter() - t0:.1f} s")
    out_dir.mkdir(parents=True, exist_ok=True)
    if layers == 1 and not bidir:
        from_torch(net.rnn).save(out_dir / f"{name}.npz")
    else:
        network_from_torch(net.rnn, net.head).save(out_dir / f"{name}.npz")
    meta = {
        "name": name, "task": spec["task"], "task_description": data.TASKS[spec["task"]],
        "kind": spec["kind"], "input_size": ds.n_features, "hidden_size": spec["hidden"],
        **({"layers": layers} if layers > 1 else {}), **({"bidirectional": True} if bidir else {}),
        "n_classes": ds.n_classes, "params": f"{name}.npz",
        "sequences": "each sequence runs alone from a zero state over exactly its own steps "
                     "(no padding, no truncation); the head reads h at its last step",
        "split": {"method": "stratified, seeded permutation per class", "seed": SPLIT_SEED,
                  "test_fraction": TEST_FRACTION, "train": tr.tolist(), "test": te.tolist()},
        "normalisation": {"method": "per-feature (x - mean) / std over all training frames", **norm.to_dict()},
        "head": {"weight": net.head.weight.detach().double().numpy().tolist(),
                 "bias": net.head.bias.detach().double().numpy().tolist()},
        "training": {"framework": f"torch {torch.__version__}", "optimizer": "Adam, cosine schedule",
                     "lr": spec["lr"], "epochs": epochs, "batch": BATCH, "seed": 0, "threads": THREADS},
        "float_test_accuracy": acc_te, "float_train_accuracy": acc_tr,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"[train] wrote {out_dir / (name + '.npz')} and {name}.json")
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m study.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(MODELS)}")
    ap.add_argument("--out", default=str(MODELS_DIR), help="output folder (default models/)")
    ap.add_argument("--epochs", type=int, default=0, help="override the epochs of every model")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(MODELS)
    bad = [n for n in names if n not in MODELS]
    if bad:
        print(f"error: --only: unknown model(s) {', '.join(bad)}; accepted: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    if args.epochs < 0:
        print(f"error: --epochs must be an integer >= 0 (0: each model's own number), not {args.epochs}",
              file=sys.stderr)
        return 2
    rows = []
    for n in names:
        m = train_one(n, MODELS[n], Path(args.out), args.epochs or None)
        rows.append((n, m["float_test_accuracy"]))
    print("\nfloat test accuracy:")
    for n, a in rows:
        print(f"  {n:<16} {a:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
