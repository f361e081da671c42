"""Outside training the decoder takes at most ``DECODE_BATCH`` rows at a time (issue 28): the
memory of its activations is that of one batch however many images a stage draws
(``benchmarks/memory.py`` measures the resident memory this bounds)."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY, invoke
from sbvae.config import load_config
from sbvae.data import make_dataset, make_generator
from sbvae.evaluation.fidelity import model_fidelity
from sbvae.evaluation.probe import Probe, ProbeNet, factor_readings
from sbvae.models import DECODE_BATCH, DeconvDecoder, SpatialBroadcastDecoder, build_vae
from sbvae.training.validation import elbo_statistics, forward_in_batches

DATA = make_dataset("colored_sprites", 32)


@pytest.fixture
def decoded_rows(monkeypatch) -> list[int]:
    """The rows of every decoder call from here on, in order."""
    seen: list[int] = []
    for decoder in (SpatialBroadcastDecoder, DeconvDecoder):
        forward = decoder.forward

        def counted(self, z, forward=forward):
            seen.append(len(z))
            return forward(self, z)

        monkeypatch.setattr(decoder, "forward", counted)
    return seen


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_vae(load_config("default").model, 32, 3).eval()


def test_decode_runs_in_batches_and_gives_the_one_pass_output(model, decoded_rows):
    z = torch.randn(150, model.encoder.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = model.decoder(z)
        decoded_rows.clear()
        batched = model.decode(z)
    assert decoded_rows == [DECODE_BATCH, DECODE_BATCH, 150 - 2 * DECODE_BATCH]
    torch.testing.assert_close(batched, whole)


def test_validation_runs_the_model_in_batches(model, decoded_rows):
    images = DATA.render(DATA.draw(150, make_generator(0, "test")))
    noise = torch.randn(len(images), model.encoder.latent_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = model(images, noise)
        decoded_rows.clear()
        batched = forward_in_batches(model, images, noise)
        for name in whole._fields:
            torch.testing.assert_close(getattr(batched, name), getattr(whole, name))
        decoded_rows.clear()
        stats = elbo_statistics(model, images, load_config("default").objective, seed=0)
    assert max(decoded_rows) <= DECODE_BATCH and sum(decoded_rows) == 150
    assert stats["active_latents"] >= 0


def test_fidelity_reconstructs_in_batches(model, decoded_rows):
    readings = factor_readings(DATA)
    probe = Probe(readings, ProbeNet(DATA.channels, DATA.image_size, readings))  # untrained: cheap
    scores = model_fidelity(model, DATA, probe, "gaussian", samples=150, batch_size=256)
    assert max(decoded_rows) <= DECODE_BATCH and sum(decoded_rows) == 150
    assert "fidelity_shape" in scores


def test_the_end_of_a_training_run_never_decodes_more_than_a_batch(tmp_path, decoded_rows):
    """The scores, every figure (the traversal GIF decodes 10 latents x 24 frames x 4 inputs)
    and the report of `sbvae train`, with more validation images than a batch."""
    out = tmp_path / "run"
    code = invoke(["train", "--set", *TINY, "data.val_size=200", "train.fidelity_every=0", "--out", str(out)])
    assert code == 0 and (out / "traversals.gif").is_file() and (out / "report.html").is_file()
    assert max(decoded_rows) <= DECODE_BATCH
    assert sum(decoded_rows) > 10 * 24 * 4  # the GIF was drawn through the counted decoder
