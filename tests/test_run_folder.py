import json

import pytest

from sbvae.errors import CheckpointError
from sbvae.training.run_folder import (
    RunPaths,
    atomic_write_bytes,
    atomic_write_json,
    read_config_text,
    read_metrics,
    read_scores,
    split_rows,
)

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


def test_damaged_metrics_lines_are_skipped_with_one_warning(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    good = [json.dumps(row) + "\n" for row in ROWS[:4]]
    path.write_bytes(
        b"".join(
            [
                good[0].encode(),
                b"\xf0\x28\x8c garbage\n",
                good[1].encode(),
                b"[1, 2]\n",
                b'{"loss": 1}\n',
                good[2].encode(),
            ]
        )
    )
    assert read_metrics(path) == ROWS[:3]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 damaged line(s) skipped (first: line 2)" in err
    path.write_text("".join(good) + '{"step": 5, "spl')  # a crash mid-write: silent
    assert read_metrics(path) == ROWS[:4] and capsys.readouterr().err == ""
    assert read_metrics(tmp_path / "absent.jsonl") == []


def test_a_config_that_is_not_text_is_one_checkpoint_error(tmp_path):
    (tmp_path / "config.yaml").write_bytes(b"\xb9\x00\xff not yaml")
    with pytest.raises(CheckpointError, match=r"cannot read .*config\.yaml") as caught:
        read_config_text(RunPaths(tmp_path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("content", ['{"scores": [1, 2]}', '{"reconstruction": 5}', '{"step": "a"}'])
def test_a_metrics_json_of_the_wrong_shape_is_one_checkpoint_error(tmp_path, content):
    (tmp_path / "metrics.json").write_text(content)
    with pytest.raises(CheckpointError, match=r"metrics\.json is damaged") as caught:
        read_scores(tmp_path)
    assert "\n" not in str(caught.value)
    (tmp_path / "metrics.json").write_text('{"step": 3, "scores": {"mig": 0.1}, "reconstruction": {}}')
    assert read_scores(tmp_path)["step"] == 3
