"""The coupled input-forget gate LSTM (CIFG): one of ``i``, ``f`` is derived from the other.

A unit has three weight rows.  Two conventions exist and both are offered,
named by the equation (config key ``coupling``):

- ``"i=1-f"``: rows ``f, g, o``; the input gate is ``1 - f``.  TFLite's integer
  LSTM and Brevitas's ``QuantLSTM`` (``coupled_input_forget_gates=True``).
- ``"f=1-i"``: rows ``i, g, o``; the forget gate is ``1 - i``.  ONNX's LSTM with
  ``input_forget = 1`` as onnxruntime computes it.

The derived gate is exact: ``one - gate`` in the gate format's fraction, one
bit wider than the gate format (it may equal 1.0), never requantized.  The
rest is the LSTM's arithmetic (:class:`model.kinds.lstm.LstmFamily`).
"""
from __future__ import annotations

from .base import Option
from .lstm import LstmFamily

COUPLINGS = {"i=1-f": ("f", "i"), "f=1-i": ("i", "f")}  # coupling -> (computed gate, derived gate)


class Cifg(LstmFamily):
    """Coupled input-forget gate LSTM; ``coupling`` names which gate is derived."""

    name = "cifg"
    title = "coupled input-forget gate LSTM"
    options = {"coupling": Option(tuple(COUPLINGS), "i=1-f",
                                  "i=1-f: rows f, g, o (TFLite, Brevitas); f=1-i: rows i, g, o (ONNX input_forget)")}
    gateware = "rtl.kinds.cifg"
    cpp = "hls.kinds.cifg"

    @classmethod
    def onnx_options(cls, attrs, peephole):
        if not attrs["input_forget"] or peephole:
            return None
        return {"coupling": "f=1-i"}  # onnxruntime's input_forget

    @property
    def computed(self) -> str:
        """The gate with weight rows (``f`` or ``i``)."""
        return COUPLINGS[self.coupling][0]

    @property
    def derived(self) -> str:
        """The gate computed as one minus the other."""
        return COUPLINGS[self.coupling][1]

    @property
    def gates(self) -> tuple:
        return (self.computed, "g", "o")

    @property
    def variant(self) -> str:
        return f"cifg-lstm ({self.coupling})"

    def couple(self, gates: dict, one):
        x = gates[self.computed]
        out = {self.computed: x, self.derived: one - x}
        return out["i"], out["f"]
