from sbvae.training.run_folder import split_rows

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
