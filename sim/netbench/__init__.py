"""The cocotb bench of a network (:mod:`rtl.network`), run by :mod:`sim.runner` like the cell bench.

Per clock it drives ``i`` (random idle cycles), ``o.ready`` (random stalls) and records every
transfer on ``i``, ``o`` and each layer's tap; every layer's h elements, the logits and the classes
are compared with :mod:`model.network.golden`, element by element.  See :mod:`sim.netbench.tests`.
"""
