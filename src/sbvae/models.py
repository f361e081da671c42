"""The VAE of Watters et al. (2019): one encoder, two decoders to compare.

* :class:`Encoder`: 4 convs (4x4, stride 2), a 256-unit layer, then mean and log-variance.
* :class:`SpatialBroadcastDecoder`: tile z over a grid, append x/y coordinate channels, run
  unstrided convs. No upsampling anywhere.
* :class:`DeconvDecoder`: the usual transposed-conv decoder, the paper's baseline.
* :class:`VAE`: encode, sample with the reparameterisation trick, decode.

Tensors are NCHW. The decoders output the likelihood's parameter per pixel (the Gaussian
mean or the Bernoulli logit), without an output activation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from sbvae.config import ModelConfig


def _check_size(image_size: int) -> None:
    if image_size <= 0 or image_size % 16:
        raise ValueError(f"image size must be a positive multiple of 16, got {image_size}")


class Encoder(nn.Module):
    """Image ``[N, C, S, S]`` -> Gaussian posterior parameters ``(mean, logvar)``, each ``[N, k]``.

    Four 4x4 stride-2 convs with ReLU halve the image four times, so any size divisible by 16
    works; then Linear to ``hidden`` with ReLU and Linear to ``2 k``. ``logvar_bias`` is added
    to the initial bias of the log-variance outputs: below 0, every latent starts with noise of
    standard deviation about ``exp(logvar_bias / 2)`` instead of about 1.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 10,
        width: int = 64,
        hidden: int = 256,
        logvar_bias: float = 0.0,
    ) -> None:
        super().__init__()
        _check_size(image_size)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        in_ch = channels
        for _ in range(4):
            layers += [nn.Conv2d(in_ch, width, 4, stride=2, padding=1), nn.ReLU()]
            in_ch = width
        self.convs = nn.Sequential(*layers)
        flat = width * (image_size // 16) ** 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))
        with torch.no_grad():
            cast(nn.Linear, self.head[-1]).bias[latent_dim:] += logvar_bias

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.head(self.convs(images)).chunk(2, dim=1)
        return mean, logvar


def coordinate_grid(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Two ``[size, size]`` planes, ``linspace(-1, 1)``: channel 0 (x) varies along the
    width (columns), channel 1 (y) along the height (rows). Returns ``[2, size, size]``."""
    line = torch.linspace(-1.0, 1.0, size, device=device)
    y, x = torch.meshgrid(line, line, indexing="ij")
    return torch.stack([x, y])


class SpatialBroadcastDecoder(nn.Module):
    """Latent ``[N, k]`` -> image parameters ``[N, C, S, S]`` by spatial broadcast.

    z is tiled over a grid and concatenated (latents first, then x, then y, as in the paper's
    Algorithm 1) with two fixed coordinate channels (see :func:`coordinate_grid`); ``layers``
    hidden convs (``kernel`` x ``kernel``, ``width`` channels, stride 1, ReLU) follow, then an
    output conv to the image channels.

    The paper leaves the grid size and padding open; ``broadcast`` chooses:

    * ``"valid"`` (default; the MONet convention by the same group): the grid is
      ``S + (kernel - 1) * layers`` (72 for 64 px with four 3x3 layers), the convs are
      unpadded, and the output conv is 1x1. No pixel ever sees zero padding.
    * ``"same"`` (the vaesbd/borea17 reading): the grid is ``S``, every conv (the output conv
      included, with the same kernel) is zero-padded to keep the size.
    """

    coords: torch.Tensor  # [2, G, G] x and y planes in [-1, 1], a buffer

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 10,
        layers: int = 4,
        width: int = 64,
        kernel: int = 3,
        broadcast: str = "valid",
    ) -> None:
        super().__init__()
        _check_size(image_size)
        if broadcast not in ("same", "valid"):
            raise ValueError(f"broadcast must be 'same' or 'valid', got {broadcast!r}")
        if broadcast == "same" and kernel % 2 == 0:
            raise ValueError("broadcast='same' needs an odd kernel")
        self.broadcast = broadcast
        padding = kernel // 2 if broadcast == "same" else 0
        self.grid_size = image_size + (0 if broadcast == "same" else (kernel - 1) * layers)
        self.register_buffer("coords", coordinate_grid(self.grid_size), persistent=False)
        convs: list[nn.Module] = []
        in_ch = latent_dim + 2
        for _ in range(layers):
            convs += [nn.Conv2d(in_ch, width, kernel, padding=padding), nn.ReLU()]
            in_ch = width
        out_kernel = kernel if broadcast == "same" else 1
        convs.append(nn.Conv2d(in_ch, channels, out_kernel, padding=padding))
        self.convs = nn.Sequential(*convs)

    def broadcast_latents(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, k]`` -> ``[N, k + 2, G, G]``: z tiled over the grid, then x and y planes."""
        n, g = z.shape[0], self.grid_size
        tiled = z[:, :, None, None].expand(n, z.shape[1], g, g)
        coords = self.coords[None].expand(n, 2, g, g).to(z.dtype)
        return torch.cat([tiled, coords], dim=1)

    def first_layer(self, z: torch.Tensor) -> torch.Tensor:
        """The first conv's output (before its ReLU) without building the tiled input.

        The conv is linear in its input, so it splits into the z channels, which are constant
        over the grid, and the coordinate channels, which are the same for every sample:

        * z part: each output position sums the kernel taps of the z channels that land on the
          grid. Unpadded (``valid``) every tap lands, so it is ``z @ W_z.sum(taps)``, one
          vector per sample; zero-padded (``same``) the taps that fall on the padding drop out
          at the border, which the per-position tap sums ``M`` handle exactly.
        * coordinate part: one conv of the two coordinate planes, shared by the batch.

        Same numbers as ``convs[0](broadcast_latents(z))`` up to float rounding, without the
        ``[N, k + 2, G, G]`` input or its k + 2 channel convolution.
        """
        conv = cast(nn.Conv2d, self.convs[0])
        k = z.shape[1]
        w_z, w_c = conv.weight[:, :k], conv.weight[:, k:]
        coord_part = F.conv2d(self.coords[None].to(z.dtype), w_c, conv.bias, padding=conv.padding)
        if self.broadcast == "valid":
            return (z @ w_z.sum((2, 3)).t())[:, :, None, None] + coord_part
        g = self.grid_size
        taps = w_z.reshape(-1, 1, *w_z.shape[2:])  # [width * k, 1, kh, kw]
        ones = torch.ones(1, 1, g, g, dtype=z.dtype, device=z.device)
        sums = F.conv2d(ones, taps, padding=conv.padding).view(w_z.shape[0], k, g * g)  # M
        z_part = z @ sums.transpose(0, 1).reshape(k, -1)  # [N, width * G * G]
        return z_part.view(len(z), w_z.shape[0], g, g) + coord_part

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.convs[1:](self.first_layer(z))


class DeconvDecoder(nn.Module):
    """Latent ``[N, k]`` -> image parameters ``[N, C, S, S]`` with transposed convs.

    Linear k -> 256 (ReLU), reshaped to ``width x s0 x s0``, then 4x4 stride-2 transposed
    convs (ReLU) that double the size up to S, the last one to the image channels without
    activation. ``s0`` is the smallest start size >= 2 reachable by doubling: 2 for 32 and 64
    px (exactly the paper's 64 x 2 x 2), 3 for 48. For s0 != 2 the first Linear outputs
    ``width * s0^2`` units instead of 256.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 10, width: int = 64) -> None:
        super().__init__()
        _check_size(image_size)
        start, ups = image_size, 0
        while start % 2 == 0 and start // 2 >= 2:
            start, ups = start // 2, ups + 1
        self.start, self.width = start, width
        self.fc = nn.Sequential(nn.Linear(latent_dim, width * start * start), nn.ReLU())
        layers: list[nn.Module] = []
        for i in range(ups):
            last = i == ups - 1
            layers.append(nn.ConvTranspose2d(width, channels if last else width, 4, 2, 1))
            if not last:
                layers.append(nn.ReLU())
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.width, self.start, self.start)
        return self.deconvs(h)


DECODE_BATCH = 64
"""Rows the decoder takes at once outside training (:meth:`VAE.decode`)."""


class VAEOutput(NamedTuple):
    """What one forward pass gives: posterior parameters, the sample, decoder output."""

    mean: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    decoded: torch.Tensor


class VAE(nn.Module):
    """Encoder + decoder with a diagonal Gaussian posterior and an N(0, I) prior."""

    def __init__(self, encoder: Encoder, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, images: torch.Tensor, noise: torch.Tensor | None = None) -> VAEOutput:
        """Encode, reparameterise (``noise`` ~ N(0, I) supplied for reproducibility, or
        drawn here), decode."""
        mean, logvar = self.encoder(images)
        if noise is None:
            noise = torch.randn_like(mean)
        z = mean + torch.exp(0.5 * logvar) * noise
        return VAEOutput(mean, logvar, z, self.decoder(z))

    def decode(self, z: torch.Tensor, batch_size: int = DECODE_BATCH) -> torch.Tensor:
        """The decoder's output for ``z`` ``[N, k]``, computed ``batch_size`` rows at a time: its
        activations (``width`` channels at full resolution for the SBD) then take the memory of
        one batch however many rows there are."""
        if len(z) <= batch_size:
            return self.decoder(z)
        return torch.cat([self.decoder(part) for part in z.split(batch_size)])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_vae(model_config: ModelConfig, image_size: int, channels: int) -> VAE:
    """The VAE a :class:`sbvae.config.ModelConfig` describes."""
    m = model_config
    encoder = Encoder(image_size, channels, m.latent_dim, m.encoder_channels, m.encoder_hidden, m.logvar_bias)
    decoder: nn.Module
    if m.decoder == "sbd":
        decoder = SpatialBroadcastDecoder(
            image_size, channels, m.latent_dim, m.sbd_layers, m.sbd_channels, m.sbd_kernel, m.broadcast
        )
    else:
        decoder = DeconvDecoder(image_size, channels, m.latent_dim, m.deconv_channels)
    return VAE(encoder, decoder)
