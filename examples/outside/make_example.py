"""An outside task for a quantization study: data, a trained PyTorch LSTM, its ONNX and kit files.

::

    .venv/bin/python examples/outside/make_example.py

writes, next to this script (the committed files are what it writes):

``waveforms.npz``
    A 4-class sequence task the kit does not ship: sine, square, sawtooth and
    chirp waveforms of random frequency, phase and amplitude with noise, 16-48
    steps of 2 features (the sample and its first difference), padded to 48
    steps with ``len_train`` / ``len_test``.  480 training and 240 test
    sequences, from a fixed seed.
``waveforms_lstm16.onnx``
    The trained LSTM (16 units) and its dense head on the last step, exported
    by ``torch.onnx.export``; it takes normalised inputs but carries no
    normalisation, so its sweep says ``normalise = true`` (the study fits the
    same per-feature mean and deviation on the training part).
``waveforms_lstm16.npz`` / ``.json``
    The same model in the kit's format (:func:`study.models.save`): the cell,
    the head and the normalisation.

``onnx_sweep.toml`` and ``kit_sweep.toml`` study the two files on the data file.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from model.network import HeadParams  # noqa: E402
from model.params import from_torch  # noqa: E402
from study import data, models  # noqa: E402

CLASSES = ("sine", "square", "sawtooth", "chirp")
STEPS = (16, 48)          # shortest and longest sequence
PER_CLASS = (120, 60)     # training and test sequences per class
HIDDEN, EPOCHS, LR, BATCH = 16, 30, 1e-2, 32
SEED = 15


def waveform(kind: str, n: int, rng) -> np.ndarray:
    """``n`` steps of waveform ``kind`` with random frequency, phase, amplitude and noise: ``(n, 2)``."""
    t = np.arange(n)
    f, ph, amp = rng.uniform(0.04, 0.12), rng.uniform(0, 1), rng.uniform(0.5, 2.0)
    cyc = f * t + ph
    if kind == "sine":
        v = np.sin(2 * np.pi * cyc)
    elif kind == "square":
        v = np.sign(np.sin(2 * np.pi * cyc))
    elif kind == "sawtooth":
        v = 2 * (cyc % 1.0) - 1
    else:
        v = np.sin(2 * np.pi * (ph + f * t * (1 + t / n)))
    v = amp * v + rng.normal(0, 0.15, n)
    return np.stack([v, np.diff(v, prepend=0.0)], axis=1)


def make_data(rng):
    """``{x_train, y_train, len_train, x_test, y_test, len_test}``, padded with zeros to the longest length."""
    out = {}
    for part, per in zip(("train", "test"), PER_CLASS):
        labels = np.repeat(np.arange(len(CLASSES)), per)
        labels = labels[rng.permutation(len(labels))]
        lengths = rng.integers(STEPS[0], STEPS[1] + 1, len(labels))
        x = np.zeros((len(labels), STEPS[1], 2), dtype=np.float32)
        for k, (c, n) in enumerate(zip(labels, lengths)):
            x[k, :n] = waveform(CLASSES[c], n, rng)
        out.update({f"x_{part}": x, f"y_{part}": labels.astype(np.int64), f"len_{part}": lengths.astype(np.int64)})
    return out


def train(train_set, norm):
    """A PyTorch LSTM with a dense head on the last step, trained on the normalised training sequences."""
    import torch  # noqa: PLC0415
    from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence  # noqa: PLC0415

    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(2, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, len(CLASSES))

        def forward(self, x):  # a packed batch while training, a (B, T, F) tensor for the export
            y, (h, _) = self.rnn(x)
            return self.head(h[-1] if isinstance(x, torch.nn.utils.rnn.PackedSequence) else y[:, -1])

    seqs = [torch.from_numpy(s.astype(np.float32)) for s in norm(train_set.seqs)]
    labels = torch.from_numpy(train_set.labels)

    def packed(idx):
        return pack_padded_sequence(pad_sequence([seqs[i] for i in idx], batch_first=True),
                                    torch.tensor([len(seqs[i]) for i in idx]), batch_first=True,
                                    enforce_sorted=False)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    rng = np.random.default_rng(1)
    for ep in range(EPOCHS):
        perm = rng.permutation(len(seqs))
        for b in range(0, len(perm), BATCH):
            idx = perm[b:b + BATCH]
            loss = torch.nn.functional.cross_entropy(net(packed(idx)), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"[example] epoch {ep + 1}/{EPOCHS}: loss {loss.item():.4f}")
    return net.eval(), packed


def main() -> int:
    import torch  # noqa: PLC0415

    rng = np.random.default_rng(SEED)
    arrays = make_data(rng)
    np.savez_compressed(HERE / "waveforms.npz", **arrays)
    train_set, test_set = data.load_file(HERE / "waveforms.npz")
    norm = data.Normalizer.fit(train_set.seqs)
    net, _ = train(train_set, norm)
    with torch.no_grad():
        pred = np.array([int(net(torch.from_numpy(s.astype(np.float32))[None]).argmax()) for s in norm(test_set.seqs)])
    acc = float(np.mean(pred == test_set.labels))
    print(f"[example] float test accuracy (PyTorch, float32): {acc:.4f}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, STEPS[1], 2),), str(HERE / "waveforms_lstm16.onnx"), dynamo=False,
                          input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "batch", 1: "steps"}})
    head = HeadParams(net.head.weight.detach().double().numpy(), net.head.bias.detach().double().numpy())
    models.save(HERE / "waveforms_lstm16", from_torch(net.rnn), head, norm, "file:waveforms.npz",
                f"synthetic waveforms ({', '.join(CLASSES)}), {STEPS[0]}-{STEPS[1]} steps of 2 features",
                training={"framework": f"torch {torch.__version__}", "optimizer": "Adam", "lr": LR,
                          "epochs": EPOCHS, "batch": BATCH, "seed": 0},
                float_test_accuracy=acc)
    print(f"[example] wrote waveforms.npz, waveforms_lstm16.onnx, waveforms_lstm16.npz and .json in {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
