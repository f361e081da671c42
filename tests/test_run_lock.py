"""One writer per run folder: a second `sbvae train` on a folder in use is refused in one line;
the lock of a killed process is no obstacle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import TINY, wait_for
from sbvae.training.run_folder import LOCK_FILE, RunLock, load_checkpoint

LONG = [t for t in TINY if not t.startswith("train.steps")] + ["train.steps=1000000"]


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path, run_cli):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "sbvae", "train", "--set", *LONG, "--out", str(run), "--quiet"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / "checkpoint.pt").is_file())
        second = subprocess.run(
            [sys.executable, "-m", "sbvae", "train", "--resume", str(run), "--quiet"],
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
        assert f"in use by process {first.pid}" in second.stderr
        assert first.poll() is None  # the holder trains on
        code, _, err = run_cli("train", "--resume", run, "--quiet")  # in-process too
        assert code == 2 and f"in use by process {first.pid}" in err
    finally:
        first.send_signal(signal.SIGKILL)  # no clean-up runs: the lock file stays behind
        first.wait()
    assert (run / LOCK_FILE).read_text() == str(first.pid)
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    code, _, err = run_cli("train", "--resume", run, "--set", f"train.steps={step + 3}", "--quiet")
    assert code == 0, err
    assert load_checkpoint(run / "checkpoint.pt")["step"] == step + 3
    assert (run / LOCK_FILE).read_text() == ""  # released


def test_a_process_may_take_its_own_lock_again(tmp_path):
    with RunLock(tmp_path), RunLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
    assert (tmp_path / LOCK_FILE).read_text() == ""


def test_a_run_stopped_before_its_first_checkpoint_starts_again_in_its_folder(tmp_path, run_cli, tiny_overrides):
    run = tmp_path / "run"
    (run / "tensorboard").mkdir(parents=True)
    (run / "config.yaml").write_text("an earlier config\n")
    (run / "metrics.jsonl").write_text('{"step": 2, "split": "train", "loss": 1.0}\n')
    (run / LOCK_FILE).write_text("12345")  # its process is gone: nothing holds the lock
    code, out, err = run_cli("train", "--set", *tiny_overrides, "--out", run, "--quiet")
    assert code == 0, err
    assert "stopped before its first checkpoint" in out
    (aside,) = run.glob("stopped-*")
    assert (aside / "config.yaml").read_text() == "an earlier config\n"  # kept, not overwritten
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 6

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")  # not a run's files: refused as before
    code, _, err = run_cli("train", "--set", *tiny_overrides, "--out", tmp_path / "mine", "--quiet")
    assert code == 2 and "already exists and is not empty" in err
