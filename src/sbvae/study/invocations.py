"""The wall time of the ``sbvae reproduce`` (or ``sbvae sweep``) invocations that built a results folder.

A finished invocation is listed in ``results.json``. One that is interrupted (Ctrl-C, a killed
session) never writes ``results.json``, so while it runs it keeps its own entry up to date in
``OUT/NAME/invocations-pending.json``: started, and the seconds it had run at its last beat
(every minute by default). The next invocation that finishes moves the pending entries into
``results.json`` as interrupted ones, counted to their last beat, and removes the file. An
invocation refused for bad input takes its entry back out: it built nothing.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from sbvae.training.run_folder import atomic_write_bytes

PENDING_FILE = "invocations-pending.json"


def _read_list(path: Path, key: str | None = None) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    data = data.get(key) if key and isinstance(data, dict) else data
    return data if isinstance(data, list) else None


def earlier_invocations(results_json: Path) -> list[dict[str, Any]]:
    """The invocations recorded in an earlier ``results.json`` (one of unknown date and length
    for a file written before they were listed)."""
    if not results_json.is_file():
        return []
    listed = _read_list(results_json, "invocations")
    return listed if listed is not None else [{"finished": None, "wall_seconds": None}]


class InvocationClock:
    """This invocation's entry in the pending file, kept current by a background beat."""

    def __init__(self, folder: Path, every: float = 60.0) -> None:
        self.path = folder / PENDING_FILE
        self.earlier = _read_list(self.path) or []
        self.entry: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "finished": None,
            "wall_seconds": 0.0,
            "interrupted": True,
        }
        self._tick = time.perf_counter()
        self._stop = threading.Event()
        self._every = every
        self._lock = threading.Lock()
        self._beat()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        with self._lock:
            self.entry["wall_seconds"] = time.perf_counter() - self._tick
            entries = [*self.earlier, self.entry]
            atomic_write_bytes(self.path, lambda h: h.write(json.dumps(entries, indent=2).encode()))

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._beat()

    def _stop_beat(self) -> None:
        self._stop.set()
        self._thread.join()

    def finish(self) -> list[dict[str, Any]]:
        """Stop the beat; the interrupted earlier entries followed by this one, finished now.
        The pending file stays until :meth:`settled` (after ``results.json`` is written)."""
        self._stop_beat()
        return [
            *self.earlier,
            {
                "started": self.entry["started"],
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                "wall_seconds": time.perf_counter() - self._tick,
            },
        ]

    def settled(self) -> None:
        """``results.json`` now holds every entry: the pending file goes."""
        self.path.unlink(missing_ok=True)

    def withdraw(self) -> None:
        """Stop the beat and take this invocation's entry back out (a refused invocation)."""
        self._stop_beat()
        with self._lock:
            if self.earlier:
                atomic_write_bytes(self.path, lambda h: h.write(json.dumps(self.earlier, indent=2).encode()))
            else:
                self.path.unlink(missing_ok=True)


def wall_time_text(invocations: list[dict[str, Any]], command: str = "sbvae reproduce") -> str:
    """One sentence for results.md: the wall time in all, saying which parts are estimates."""
    known = [i["wall_seconds"] for i in invocations if i.get("wall_seconds") is not None]
    unknown = len(invocations) - len(known)
    interrupted = sum(1 for i in invocations if i.get("interrupted"))
    notes = []
    if interrupted:
        notes.append(f"{interrupted} of them interrupted, each counted to its last beat, at most a minute short")
    if unknown:
        notes.append(f"{unknown} earlier one(s) not recorded")
    return (
        f"wall time {sum(known) / 60:.0f} min over the {len(known)} invocation(s) of `{command}` "
        f"that built this folder" + (f" ({'; '.join(notes)})" if notes else "")
    )
