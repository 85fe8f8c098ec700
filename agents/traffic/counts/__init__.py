"""Traffic counts: readers for the usual count formats, demand calibration (ODME) against them, the report.

``readers`` maps counts from CSV, SUMO edgeData, Cadyts, dfrouter detector flows and turn counts to the
city's links; ``odme`` fits time-sliced OD flows that stay close to the scenario's prior demand, with the
built-in traffic model as the assignment; ``report`` computes GEH, TAG M3.1 criteria and matrix change.
"""
from agents.traffic.counts.readers import CountsError, CountSet, read_counts

__all__ = ["CountSet", "CountsError", "read_counts"]
