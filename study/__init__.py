"""Quantization studies: real data, trained models, sweeps over formats, reports with hardware cost.

``study.data`` loads packaged sequence data with fixed splits, ``study.train``
trains the PyTorch models whose parameters ``model/`` imports, ``study.calibrate``
picks integer bits from observed ranges, ``study.sweep`` parses sweep files,
``study.run`` evaluates the points (golden model + synthesis; ``study.netpoint``
builds a network model's points) and
``study.report`` writes the CSV, the Markdown report and the plots.
"""
