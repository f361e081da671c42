"""`sbvae reproduce`: SBD against DeConv over seeds, with honest verdicts.

``experiments`` (what an experiment asks for, the runs it plans) -> ``runner`` (each run made
once: trained, resumed, extended or reused) -> ``records`` (what is kept of a run) ->
``equal_time`` (each SBD run as it stood when its twin, the DeConv run of the same seed and
variant, finished) -> ``summary`` with ``stats`` (per claim: the comparison and the verdict) ->
``markdown`` (results.md); ``invocations`` keeps the wall time; ``reproduce`` wires them.
"""
