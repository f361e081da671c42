"""The run folder: the contract between training, evaluation and pictures.

Layout::

    RUN_DIR/
      config.yaml          the resolved config
      checkpoint.pt        model, optimizer, step and RNG states (latest)
      metrics.jsonl        one JSON object per logged step (``split`` = train or val)
      tensorboard/         the same scalars for TensorBoard
      metrics.json         scores of the latest evaluation (sbvae evaluate, or MIG after training)
      *.png, traversals.gif  figures (FIGURE_FILES; end of training, or sbvae visualize)
      report.html          config, scores and figures in one self-contained page

Checkpoints are written to a temporary file and renamed, so a crash never leaves a
half-written checkpoint in place of a good one; they are read with ``weights_only=True``
so loading one never executes code from it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import secrets
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from sbvae.config import Config, build_config
from sbvae.errors import CheckpointError, ConfigError, UserError, environment_fault, first_line
from sbvae.models import VAE, build_vae

CHECKPOINT_FORMAT = 1

FIGURE_FILES = {
    "geometry": "geometry.png",
    "traversals": "traversals.png",
    "traversal_gif": "traversals.gif",
    "reconstructions": "reconstructions.png",
    "prior_samples": "prior_samples.png",
    "kl": "kl.png",
    "curves": "curves.png",
    "data": "data.png",
}
"""Every figure of a run, by name (what ``sbvae visualize --only`` takes), in report order."""


@dataclass(frozen=True)
class RunPaths:
    """Where each artefact of a run lives."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def scores(self) -> Path:
        return self.root / "metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def figure(self, name: str) -> Path:
        return self.root / FIGURE_FILES[name]


def temporary_sibling(path: Path) -> Path:
    """``NAME.PID.RANDOM.tmp`` beside ``path``: a name no other writer of ``path`` (another
    process, or another thread of this one) uses at the same time."""
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temporary sibling of ``path`` of its own, then rename it into
    place, so ``path`` holds either its old content or the whole new one, however many
    processes write it at once (the last to finish wins; the temporary file is removed if
    ``write`` fails). A fault of the machine (full disk, read-only folder, ...) is one
    :class:`UserError` naming ``path``."""
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        fault = environment_fault(exc) if isinstance(exc, Exception) else None
        if fault is not None:
            raise UserError(f"cannot write {path} ({fault})") from None
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, lambda handle: handle.write(json.dumps(value, indent=2).encode()))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically."""
    atomic_write_bytes(path, lambda handle: torch.save({"format": CHECKPOINT_FORMAT, **state}, handle))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely; any problem becomes a one-line :class:`CheckpointError`."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        if isinstance(exc, pickle.UnpicklingError) or "weights_only" in str(exc):
            reason = "it holds objects other than tensors and plain data (not loaded, for safety)"
        else:
            reason = first_line(exc)
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {reason}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an sbvae checkpoint (format {CHECKPOINT_FORMAT})")
    for key in ("step", "model", "config"):
        if key not in state:
            raise CheckpointError(f"checkpoint {path} lacks '{key}'")
    return state


def config_from_checkpoint(state: dict[str, Any], path: Path) -> Config:
    """The validated config stored in a checkpoint."""
    if not isinstance(state["config"], dict):
        raise CheckpointError(f"checkpoint {path} holds no config mapping")
    try:
        return build_config(state["config"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path} holds an invalid config: {exc}") from None


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Config, VAE, dict[str, Any]]:
    """The trained model of a run folder (config, VAE in eval mode on ``device``, checkpoint)."""
    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise CheckpointError(f"run folder not found: {paths.root}")
    state = load_checkpoint(paths.checkpoint, map_location=device)
    config = config_from_checkpoint(state, paths.checkpoint)
    from sbvae.data import build_dataset

    data = build_dataset(config.data)
    model = build_vae(config.model, data.image_size, data.channels).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {paths.checkpoint} does not match its config: {first_line(exc)}") from None
    model.eval()
    return config, model, state


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``: JSON objects with a ``step`` and a ``split``. Damaged
    lines (not UTF-8, not JSON, not such an object) are skipped, with one warning on stderr
    unless the only one is an incomplete last line, which a crash mid-write leaves."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    rows, damaged = [], []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line.decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int) and isinstance(row.get("split"), str):
            rows.append(row)
        elif line.strip():
            damaged.append(number)
    if damaged and damaged != [len(lines)]:
        print(f"warning: {path}: {len(damaged)} damaged line(s) skipped (first: line {damaged[0]})", file=sys.stderr)
    return rows


def read_config_text(paths: RunPaths) -> str:
    """The run's ``config.yaml`` as text; a :class:`CheckpointError` when it is not readable text."""
    try:
        return paths.config.read_bytes().decode()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {paths.config}: {first_line(exc)}") from None


def split_rows(rows: Iterable[dict[str, Any]], split: str, key: str | None = None) -> list[dict[str, Any]]:
    """The rows of one ``split`` (train, val, mig), and of those only the ones holding ``key``
    when it is given."""
    return [row for row in rows if row.get("split") == split and (key is None or key in row)]


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is absent, unreadable or not an object."""
    try:
        value = json.loads(path.read_bytes().decode())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_scores(run_dir: Path) -> dict[str, Any] | None:
    """A run's ``metrics.json``, or None when it has none (or it is unreadable); a
    :class:`CheckpointError` when it is JSON of the wrong shape (``scores`` and
    ``reconstruction`` must be mappings, ``step`` an integer)."""
    path = RunPaths(run_dir).scores
    scores = read_json_object(path)
    if scores is None:
        return None
    for key, kind in (("scores", dict), ("reconstruction", dict), ("step", int)):
        if key in scores and not isinstance(scores[key], kind):
            raise CheckpointError(
                f"{path} is damaged ({key} is {type(scores[key]).__name__}, not {kind.__name__}); "
                f"sbvae evaluate {run_dir} writes it again"
            )
    return scores


LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # run folders this process holds, with how many holders (re-entrant)


class RunLock:
    """Exclusive use of a run folder by one process: an ``flock`` on ``RUN/.lock``, which holds
    the holder's process id. The kernel drops the lock when its process dies, however it dies,
    so a lock left by a killed process is never in the way. A process may take it again while
    it holds it (training draws its report at the end)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir, self.path = Path(run_dir), Path(run_dir) / LOCK_FILE
        self._handle: Any = None

    def acquire(self) -> None:
        """Take the lock, or a :class:`CheckpointError` naming the process that holds it."""
        key = self.run_dir.resolve()
        if key in _held:
            _held[key] += 1
            return
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for as long as the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise CheckpointError(
                f"run folder {self.run_dir} is in use by process {holder} (it holds {self.path}); wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle, _held[key] = handle, 1

    def release(self) -> None:
        key = self.run_dir.resolve()
        if key not in _held:
            return
        _held[key] -= 1
        if _held[key] == 0 and self._handle is not None:
            del _held[key]
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def training_process(run_dir: Path) -> str | None:
    """The id of another process that holds ``run_dir``'s lock, i.e. trains it now; None when no
    other process does. Only looks: ``RUN/.lock`` is opened for reading (never created), and
    tried with a shared lock, released at once, only when it names a process, so a writer
    starting meanwhile is not refused."""
    folder = Path(run_dir)
    if folder.resolve() in _held:  # this process: training writes its own figures and report
        return None
    try:
        with open(folder / LOCK_FILE) as handle:
            holder = handle.read().strip()
            if not holder:  # released (a holder writes its id as it takes the lock)
                return None
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return holder if holder.isascii() and holder.isdigit() else "another process"
            fcntl.flock(handle, fcntl.LOCK_UN)  # left by a process that was killed
    except (OSError, UnicodeDecodeError):  # no lock file, or one this user cannot read
        return None
    return None


def warn_if_training(run_dir: str | Path, what: str) -> None:
    """One ``warning:`` line on stderr when another process trains ``run_dir``: ``what`` this
    reader writes there (e.g. "these figures show") comes from the checkpoint it reads now,
    and training writes its own again when it ends."""
    holder = training_process(Path(run_dir))
    if holder is not None:
        print(
            f"warning: {run_dir} is being trained by process {holder}: {what} its latest checkpoint, "
            "and training writes its own when it ends",
            file=sys.stderr,
        )
