"""Traffic counts: readers for the usual count formats, demand calibration (ODME) against them, the report.

``readers`` maps counts from CSV, SUMO edgeData, Cadyts, dfrouter detector flows and turn counts to the
city's links; ``odme`` fits time-sliced OD flows that stay close to the scenario's prior demand, with the
built-in traffic model as the assignment; ``report`` computes GEH, TAG M3.1 criteria and matrix change.
"""
__all__ = ["CountSet", "CountsError", "read_counts"]


def __getattr__(name: str):
    """The readers load on first use, so building the CLI's parser does not import numpy-heavy modules."""
    if name in __all__:
        from agents.traffic.counts import readers

        return getattr(readers, name)
    raise AttributeError(name)
