"""Reproduction protocols: run every method of a protocol, publish the numbers, write the report.

``facd reproduce configs/repro/mini-x4.yaml`` trains and evaluates each row (cached and
resumable), ``--report-only`` regenerates ``docs/results.md`` and its figures from the JSON.
"""

from facd.reproduce.protocol import Protocol, Row, load_protocol

__all__ = ["Protocol", "Row", "load_protocol"]
