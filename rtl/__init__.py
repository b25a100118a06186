"""Amaranth gateware for the recurrent-cell kit; imports model/ for formats and tables."""
