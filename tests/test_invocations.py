"""The wall-time ledger of `sbvae reproduce`: interrupted invocations are counted, refused ones not."""

from __future__ import annotations

import json
import subprocess
import sys

from sbvae.invocations import PENDING_FILE, InvocationClock, earlier_invocations, wall_time_text

# An invocation that beats every 0.05 s and is killed (no clean-up runs) after 0.6 s.
KILLED_AFTER_BEATS = """
import os, sys, time
from pathlib import Path
from sbvae.invocations import InvocationClock
InvocationClock(Path(sys.argv[1]), every=0.05)
time.sleep(0.6)
os._exit(1)
"""


def test_a_killed_invocation_is_counted_to_its_last_beat_by_the_next_one(tmp_path):
    subprocess.run([sys.executable, "-c", KILLED_AFTER_BEATS, str(tmp_path)], check=False, timeout=60)
    pending = json.loads((tmp_path / PENDING_FILE).read_text())
    assert len(pending) == 1 and pending[0]["interrupted"] and 0.4 < pending[0]["wall_seconds"] < 5

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
