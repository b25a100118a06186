"""Simulation benches: Amaranth's simulator harness and the cocotb benches with their runner glue."""
