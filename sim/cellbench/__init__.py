"""The cocotb bench of the exported ``RecurrentCell``, one module per job, in the shape of cocotb's
``matrix_multiplier`` example: monitors feed a model, the model feeds an in-order checker.

::

    stimulus -> driver --i--> DUT --o--> monitors.OutputMonitor ------------------+
                          |                                                       v
                          +--> monitors.InputMonitor -> golden_model.StepModel -> scoreboard
    protocol: valid / payload stability on i and o, X/Z;  report: the verdict and the JSON report

==============  ===========================================================================
settings        the ``RNNKIT_*`` environment, the config, its baked parameters, the seeds
float_bound     the bound on h against the float reference (a config's ``[bench]``, or derived)
stimulus        input sequences, valid/ready stall patterns, exact drain patterns, reset phases
harness         clock, reset, port widths, status bits and the tasks of one test
driver          drives ``i``, ``o.ready`` and ``w``
monitors        what the DUT accepted on ``i`` (whole x(t) vectors) and every ``o`` transfer
golden_model    the stepwise golden model: expected ``o`` words, saturations, float reference
scoreboard      the in-order checker of every ``o`` transfer
tester          wires monitors -> model -> scoreboard; streams sequences through
cycle_check     measured cycles against ``model.cycles``
protocol        ``amaranth.lib.stream`` rules and X/Z
report          progress lines, the JSON report and the verdict of a test
stress          the write-during-a-sequence and reset-in-every-phase scenarios of ``test_stress``
soak            the long run of ``test_soak``: random resets and parameter reloads
tests           the cocotb tests (``sim.runner.TEST_MODULE``)
==============  ===========================================================================

Run it through :mod:`sim.runner` (pytest: ``tests/test_cocotb.py``; command line: ``python -m sim.main``).
"""
