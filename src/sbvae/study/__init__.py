"""Studies of many runs: `sbvae reproduce` (SBD against DeConv over seeds, with honest
verdicts) and `sbvae sweep` (a grid over config keys times seeds).

``experiments`` (what an experiment asks for, the runs it plans) and ``sweep`` (a grid's plan)
-> ``runner`` (each run made once: trained, resumed, extended or reused) on a backend from
``backends`` (this machine) or ``ray_backend`` (a Ray cluster) -> ``records`` (what is kept of a
run) -> ``equal_time`` (each SBD run as it stood when its twin, the DeConv run of the same seed
and variant, finished) -> ``summary`` with ``stats`` (per claim: the comparison and the
verdict; per sweep cell: each score over seeds) -> ``markdown`` (results.md) and
``results_folder`` (results.json, written only when it says something new, and the comparison
page); ``invocations`` keeps the wall time; ``reproduce`` and ``sweep`` wire them.
"""
