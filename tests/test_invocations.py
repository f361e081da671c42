"""The wall-time ledger of `sbvae reproduce`: interrupted invocations are counted, refused ones not."""

from __future__ import annotations

import json
import subprocess
import sys

from sbvae.study.invocations import (
    PENDING_FILE,
    InvocationClock,
    earlier_invocations,
    wall_time_text,
)

# An invocation that beats every 0.01 s and is killed (no clean-up runs) once a beat has written
# what its clock read last. The clock is fake, so the count does not depend on the machine: it
# starts at 100 s, advances a second a reading and stops at 105 s; the first beat (at start) reads
# 1 s, so 5 s can only come from the background beats.
KILLED_AFTER_BEATS = """
import itertools, json, os, sys, time, types
from pathlib import Path
from sbvae.study import invocations
readings = itertools.chain(range(100, 105), itertools.repeat(105))
invocations.time = types.SimpleNamespace(strftime=time.strftime, perf_counter=lambda: float(next(readings)))
folder = Path(sys.argv[1])
invocations.InvocationClock(folder, every=0.01)
while json.loads((folder / invocations.PENDING_FILE).read_text())[-1]["wall_seconds"] < 5:
    time.sleep(0.01)
os._exit(1)
"""


def test_a_killed_invocation_is_counted_to_its_last_beat_by_the_next_one(tmp_path):
    subprocess.run([sys.executable, "-c", KILLED_AFTER_BEATS, str(tmp_path)], check=False, timeout=60)
    pending = json.loads((tmp_path / PENDING_FILE).read_text())
    assert len(pending) == 1 and pending[0]["interrupted"] and pending[0]["wall_seconds"] == 5.0

    clock = InvocationClock(tmp_path, every=0.05)
    invocations = [*earlier_invocations(tmp_path / "results.json"), *clock.finish()]
    assert [bool(i.get("interrupted")) for i in invocations] == [True, False]
    assert invocations[1]["finished"] is not None and invocations[1]["wall_seconds"] >= 0
    clock.settled()
    assert not (tmp_path / PENDING_FILE).exists()
    text = wall_time_text(invocations)
    assert "over the 2 invocation(s)" in text and "1 of them interrupted" in text


def test_a_withdrawn_invocation_leaves_the_earlier_pending_ones_as_they_were(tmp_path):
    subprocess.run([sys.executable, "-c", KILLED_AFTER_BEATS, str(tmp_path)], check=False, timeout=60)
    before = (tmp_path / PENDING_FILE).read_text()
    clock = InvocationClock(tmp_path, every=0.05)
    assert len(json.loads((tmp_path / PENDING_FILE).read_text())) == 2
    clock.withdraw()
    assert (tmp_path / PENDING_FILE).read_text() == before

    alone = tmp_path / "alone"
    alone.mkdir()
    InvocationClock(alone).withdraw()
    assert list(alone.iterdir()) == []
