"""The cocotb bench of the AXI wrapper (:mod:`rtl.axi`), with cocotbext-axi's AXI4-Stream source, sink and
monitor and AXI4-Lite master, run by :mod:`sim.runner` (``wrapper="axi"``).  See :mod:`sim.axibench.tests`.
"""
