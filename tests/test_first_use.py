"""What a new user meets first does what the docs say: `sbvae data` shows the data at the size
`sbvae train` trains on."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbvae.config import load_config
from sbvae.data import Batch, Dataset


@pytest.fixture
def drawn(monkeypatch) -> list[Batch]:
    """The batches `sbvae data` draws (the figure itself is not drawn)."""
    batches: list[Batch] = []

    def keep(data: Dataset, batch: Batch, path: Path, columns: int = 8) -> None:
        batches.append(batch)
        path.write_bytes(b"")

    monkeypatch.setattr("sbvae.viz.data.data_figure", keep)
    return batches


def test_data_draws_at_the_size_training_uses(tmp_path, run_cli, drawn):
    trained_at = load_config("default").data.image_size
    code, out, err = run_cli("data", "colored_sprites", "--out", tmp_path / "a.png", "--count", "4")
    assert code == 0, err
    assert drawn[0].images.shape[-2:] == (trained_at, trained_at)
    assert f"at {trained_at} px" in out
    code, out, err = run_cli("data", "dsprites", "--out", tmp_path / "b.png", "--count", "4", "--image-size", "64")
    assert code == 0, err
    assert drawn[1].images.shape[-2:] == (64, 64) and "at 64 px" in out
