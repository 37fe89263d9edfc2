"""Sieve's benchmarks: each row is Sieve against a baseline measured in the same run.

Run ``python -m bench`` (``--json FILE`` writes the rows). Never run by the
tests as timed assertions; CI may run it as a smoke check only.
"""
