import json

import pytest

from sbvae.training.run_folder import atomic_write_bytes, atomic_write_json, split_rows

ROWS = [
    {"step": 1, "split": "train", "loss": 3.0},
    {"step": 1, "split": "val", "sse": 2.0},
    {"step": 2, "split": "train", "loss": 2.5, "elapsed": 0.1},
    {"step": 2, "split": "mig", "discrete_mig": 0.2},
    {"step": 3, "loss": 1.0},
]


def test_split_rows_keeps_one_split_in_order():
    assert [r["step"] for r in split_rows(ROWS, "train")] == [1, 2]
    assert split_rows(ROWS, "test") == []


def test_split_rows_with_a_key_keeps_only_rows_holding_it():
    assert split_rows(ROWS, "train", "elapsed") == [ROWS[2]]
    assert split_rows(iter(ROWS), "val", "sse") == [ROWS[1]]


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "scores.json"
    atomic_write_json(path, {"mig": 0.5})
    atomic_write_json(path, {"mig": 0.25, "step": 3})
    assert json.loads(path.read_text()) == {"mig": 0.25, "step": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"old")

    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(path, fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]
