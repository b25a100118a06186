"""The post-processors' clock stages (docs/gateware.md, "Clock") follow their one home, ``model.latency``.

Every post-processor product is registered ``model.latency.PRODUCT`` times before anything adds
to it.  A longer multiplier pipeline must move every later stage of every kind: the kinds'
``row_to_h`` grows by one cycle per product in series on the unit's path to h (counted here
from the kinds' equations), and the gateware follows, still bit-exact and exactly as fast as
the cycle model predicts.
"""
import pytest

from model import latency
from model.cycles import CycleModel

from test_rtl_cell import assert_runs_as_modelled, load

#: Products in series from a unit's last row to its h, read off the equations (docs/kinds.md):
#: LSTM: f*c(t-1) (with i*g beside it), o*tanh(c); a c_prev peephole adds p*c(t-1) before the
#: gates; c_new also p_o*c(t) before o's sigmoid.  Reset-after GRU: r*hn, then (1-z)*n (z*h(t-1)
#: beside it).  Reset-before GRU: (1-z)*n; its r*h(t-1) operand is one product from r.
PRODUCTS_TO_H = {"tiny": 2, "cifg_small": 2, "peephole": 3, "peephole_cnew": 4, "gru_small": 2,
                 "gru_before_small": 1}
PRODUCTS_TO_OPERAND = {"gru_before_small": 1}


@pytest.mark.parametrize("name", sorted(PRODUCTS_TO_H))
def test_row_to_h_counts_each_product_stage(name, monkeypatch):
    """One more product register adds exactly the products in series to row_to_h (and to op_ready)."""
    kind = load(name).cell
    before = (kind.row_to_h, kind.op_ready)
    monkeypatch.setattr(latency, "PRODUCT", latency.PRODUCT + 1)
    assert kind.row_to_h - before[0] == PRODUCTS_TO_H[name]
    if name in PRODUCTS_TO_OPERAND:
        assert kind.op_ready - before[1] == PRODUCTS_TO_OPERAND[name]
    else:
        assert kind.op_ready is None


@pytest.mark.parametrize("name", ["peephole_cnew", "gru_small", "gru_before_small", "cifg_small"])
def test_longer_multiplier_pipeline_is_followed(name, monkeypatch):
    """PRODUCT = 2: every post-processor builds its stages from it, the cycle model follows, and the
    gateware is bit-exact and exactly as fast as predicted."""
    cfg = load(name)
    before = CycleModel.for_config(cfg)
    monkeypatch.setattr(latency, "PRODUCT", 2)
    assert CycleModel.for_config(cfg).first_output_latency == before.first_output_latency + PRODUCTS_TO_H[name]
    assert_runs_as_modelled(cfg, seed=2)
