"""Encoder and decoders: broadcast layout, output shapes, parameter counts, learning."""

from __future__ import annotations

import pytest
import torch

from sbvae.config import load_config
from sbvae.data import make_dataset, make_generator
from sbvae.models import (
    VAE,
    DeconvDecoder,
    Encoder,
    SpatialBroadcastDecoder,
    build_vae,
    count_parameters,
)
from sbvae.objectives import to_image, vae_loss


def grid_size(mode: str, size: int, kernel: int, layers: int) -> int:
    return size if mode == "same" else size + (kernel - 1) * layers


# -- broadcast ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, size, kernel, layers",
    [("same", 32, 3, 2), ("same", 64, 5, 4), ("valid", 32, 3, 2), ("valid", 64, 3, 4), ("valid", 32, 5, 3)],
)
def test_broadcast_layout(mode, size, kernel, layers):
    k = 5
    dec = SpatialBroadcastDecoder(size, 3, k, layers, 8, kernel, mode)
    g = grid_size(mode, size, kernel, layers)
    assert dec.grid_size == g
    z = torch.randn(3, k, generator=torch.Generator().manual_seed(0))
    b = dec.broadcast_latents(z)
    assert b.shape == (3, k + 2, g, g)

    # Every pixel of the first k channels is z.
    assert torch.equal(b[:, :k], z[:, :, None, None].expand(3, k, g, g))

    line = torch.linspace(-1, 1, g)
    x, y = b[:, k], b[:, k + 1]
    # x varies along the width (last dim) and is constant along each column.
    assert torch.equal(x, line[None, None, :].expand(3, g, g))
    assert torch.equal(x, x[:, :1, :].expand(3, g, g))
    assert x[0, 0, 0] == -1 and x[0, 0, -1] == 1
    # y varies along the height and is constant along each row.
    assert torch.equal(y, line[None, :, None].expand(3, g, g))
    assert torch.equal(y, y[:, :, :1].expand(3, g, g))
    assert y[0, 0, 0] == -1 and y[0, -1, 0] == 1


def test_broadcast_follows_z_dtype_and_gradient():
    dec = SpatialBroadcastDecoder(32, 3, 4, 2, 8, 3, "same")
    z64 = torch.randn(2, 4, dtype=torch.float64)
    b = dec.broadcast_latents(z64)
    assert b.dtype == torch.float64 and torch.equal(b[:, :4, 5, 7], z64)
    z = torch.randn(2, 4, requires_grad=True)
    dec(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


# -- shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["same", "valid"])
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("layers", [2, 3, 4, 5, 6])
def test_sbd_output_shape(mode, size, layers):
    dec = SpatialBroadcastDecoder(size, 3, 6, layers, 4, 3, mode)
    with torch.no_grad():
        out = dec(torch.randn(2, 6))
    assert out.shape == (2, 3, size, size)


@pytest.mark.parametrize("mode", ["same", "valid"])
def test_sbd_output_shape_kernel5(mode):
    dec = SpatialBroadcastDecoder(64, 1, 6, 3, 4, 5, mode)
    assert dec.grid_size == grid_size(mode, 64, 5, 3)
    with torch.no_grad():
        out = dec(torch.randn(2, 6))
    assert out.shape == (2, 1, 64, 64)


@pytest.mark.parametrize("size", [32, 48, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_deconv_and_encoder_shapes(size, channels):
    enc = Encoder(size, channels, 7, 8, 16)
    dec = DeconvDecoder(size, channels, 7, 8)
    images = torch.rand(2, channels, size, size)
    with torch.no_grad():
        mean, logvar = enc(images)
        out = dec(mean)
    assert mean.shape == (2, 7) and logvar.shape == (2, 7)
    assert out.shape == (2, channels, size, size)


def test_vae_reparameterisation_uses_given_noise():
    torch.manual_seed(0)
    vae = VAE(Encoder(32, 3, 4, 8, 16), DeconvDecoder(32, 3, 4, 8))
    images = torch.rand(3, 3, 32, 32)
    noise = torch.randn(3, 4)
    with torch.no_grad():
        out = vae(images, noise)
        zero = vae(images, torch.zeros(3, 4))
    assert torch.allclose(out.z, out.mean + torch.exp(0.5 * out.logvar) * noise)
    assert torch.equal(zero.z, zero.mean)
    assert torch.equal(zero.decoded, vae.decode(zero.mean))


def test_logvar_bias_starts_every_latent_precise_and_leaves_the_rest_alone():
    images = torch.rand(5, 3, 32, 32)
    torch.manual_seed(0)
    plain = Encoder(32, 3, 4, 8, 16)
    torch.manual_seed(0)
    precise = Encoder(32, 3, 4, 8, 16, logvar_bias=-8.0)
    with torch.no_grad():
        mean, logvar = plain(images)
        precise_mean, precise_logvar = precise(images)
    assert torch.equal(precise_mean, mean)
    assert torch.allclose(precise_logvar, logvar - 8.0, atol=1e-5)
    assert precise_logvar.max() < -7.0 < logvar.min()


def test_the_config_s_logvar_bias_reaches_the_encoder():
    config = load_config("default", ["model.logvar_bias=-6"])
    torch.manual_seed(0)
    vae = build_vae(config.model, 32, 3)
    bias = vae.encoder.head[-1].bias
    assert bias[config.model.latent_dim :].max() < -5.0 < bias[: config.model.latent_dim].min()


# -- parameter counts (64 px, 3 channels, latent 10, widths 64) ----------------------------


def test_parameter_counts_match_hand_counts():
    assert count_parameters(Encoder(64, 3, 10, 64, 256)) == 467_476
    assert count_parameters(DeconvDecoder(64, 3, 10, 64)) == 268_291
    sbd = SpatialBroadcastDecoder(64, 3, 10, layers=2, width=64, kernel=3, broadcast="same")
    assert count_parameters(sbd) == 45_635


def test_sbd_coordinates_are_not_parameters():
    sbd = SpatialBroadcastDecoder(32, 3, 10, 2, 8, 3, "same")
    assert "coords" not in dict(sbd.named_parameters())
    assert "coords" not in sbd.state_dict()  # non-persistent: rebuilt from the config


# -- invalid arguments --------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -16, 8, 40, 17, 100])
@pytest.mark.parametrize(
    "build",
    [
        lambda s: Encoder(s),
        lambda s: DeconvDecoder(s),
        lambda s: SpatialBroadcastDecoder(s, broadcast="same"),
        lambda s: SpatialBroadcastDecoder(s, broadcast="valid"),
    ],
    ids=["encoder", "deconv", "sbd-same", "sbd-valid"],
)
def test_invalid_image_size_raises(build, size):
    with pytest.raises(ValueError, match="multiple of 16"):
        build(size)


def test_invalid_broadcast_and_kernel_raise():
    with pytest.raises(ValueError, match="broadcast"):
        SpatialBroadcastDecoder(32, broadcast="full")
    with pytest.raises(ValueError, match="odd"):
        SpatialBroadcastDecoder(32, kernel=4, broadcast="same")
    # An even kernel is fine without padding.
    dec = SpatialBroadcastDecoder(32, 3, 4, 2, 4, 4, "valid")
    assert dec(torch.randn(1, 4)).shape == (1, 3, 32, 32)


# -- learning: each decoder overfits one fixed batch ---------------------------------------


def _overfit(decoder: str, steps: int) -> tuple[float, float]:
    """Train a small VAE on 16 fixed coloured sprites (32 px); per-image SSE before/after."""
    torch.set_num_threads(1)  # reproducible numbers; the conftest fixture restores threads
    torch.manual_seed(0)
    data = make_dataset("colored_sprites", 32)
    images = data.sample(16, make_generator(0, "overfit")).images
    k = 10
    if decoder == "sbd":
        dec = SpatialBroadcastDecoder(32, 3, k, layers=3, width=32, kernel=3, broadcast="same")
    else:
        dec = DeconvDecoder(32, 3, k, width=32)
    vae = VAE(Encoder(32, 3, k, width=32, hidden=128), dec)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
    noise_rng = torch.Generator().manual_seed(0)

    def error() -> float:
        with torch.no_grad():
            mean, _ = vae.encoder(images)
            recon = to_image(vae.decode(mean), "gaussian")
            return ((recon - images) ** 2).flatten(1).sum(1).mean().item()

    before = error()
    for _ in range(steps):
        noise = torch.randn(len(images), k, generator=noise_rng)
        terms = vae_loss(images, vae(images, noise), "gaussian", sigma=0.1, beta=0.01)
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
    return before, error()


@pytest.mark.parametrize(
    "decoder, steps, factor",
    # Measured (seeds 0-2): SBD 7.0x-10.5x after 400 steps, deconv 33x-95x after 300 steps.
    [("sbd", 400, 5.0), ("deconv", 300, 10.0)],
)
def test_decoder_overfits_a_fixed_batch(decoder, steps, factor):
    before, after = _overfit(decoder, steps)
    assert before > 10  # an untrained model really does reconstruct badly
    assert after * factor <= before, f"{decoder}: SSE {before:.2f} -> {after:.2f}"


@pytest.mark.parametrize("broadcast", ["valid", "same"])
@pytest.mark.parametrize("size, kernel", [(32, 3), (64, 5), (16, 1)])
def test_factorised_first_layer_equals_the_tiled_input(broadcast, size, kernel):
    """The fast path (z part + shared coordinate map) gives the straightforward decoder's
    outputs and gradients: tile z, concatenate the coordinates, run every conv."""
    torch.manual_seed(0)
    decoder = SpatialBroadcastDecoder(size, 3, 6, layers=2, width=8, kernel=kernel, broadcast=broadcast).double()
    z = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    target = torch.rand(4, 3, size, size, dtype=torch.float64)
    fast = decoder(z)
    slow = decoder.convs(decoder.broadcast_latents(z))
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)
    inputs = [z, *decoder.parameters()]
    fast_grads = torch.autograd.grad(((fast - target) ** 2).sum(), inputs)
    slow_grads = torch.autograd.grad(((slow - target) ** 2).sum(), inputs)
    for a, b in zip(fast_grads, slow_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
