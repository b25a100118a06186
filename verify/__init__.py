"""Verification tools beyond the unit tests: formal proofs of the gateware's stream and memory
properties, and a mutation harness that measures how many realistic bugs the test suite catches."""
