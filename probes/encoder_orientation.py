"""Can the preset's encoder see a sprite's orientation at all? A diagnostic, not a protocol.

Trains the encoder network of a preset (fresh weights, its posterior mean cut to two outputs)
with supervision, to give the angle each sprite's picture shows (the cosine and sine of the
orientation times its shape's symmetry, :func:`sbvae.data.sprites.angle_as_seen`), from fresh
sprites under the squared error. Every ``--every`` steps it prints, shape by shape, R^2 on
2,000 other sprites. If it reads the angle well, the encoder's architecture and the image size
are not what keeps orientation out of a VAE's latent (``probes/latent_readout.py`` reads what
a trained latent holds).

    python probes/encoder_orientation.py [--config default] [--set KEY=VALUE ...]
        [--steps 6000] [--every 1000] [--batch 64] [--lr 1e-3]
"""

from __future__ import annotations

import argparse

import torch

from sbvae.config import load_config
from sbvae.data import SpriteDataset, build_dataset, make_generator
from sbvae.data.sprites import SHAPES, seen_angles
from sbvae.errors import UserError
from sbvae.evaluation.fidelity import r_squared_by_class
from sbvae.models import build_vae

TEST_SPRITES = 2000


def train(config_name: str, overrides: list[str], steps: int, every: int, batch: int, lr: float) -> None:
    """Train the encoder on the seen angle and print its R^2 by shape every ``every`` steps."""
    config = load_config(config_name, [*overrides, "model.latent_dim=2"])
    data = build_dataset(config.data)
    names = set(data.factor_names)
    if not isinstance(data, SpriteDataset) or not {"shape", "orientation"} <= names:
        raise UserError(f"{config.data.preset} has no sprite shape and orientation to read")
    torch.manual_seed(config.train.seed)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    encoder = build_vae(config.model, data.image_size, data.channels).encoder
    optimiser = torch.optim.Adam(encoder.parameters(), lr=lr)
    stream = make_generator(config.train.seed, "train")
    test_values = data.draw(TEST_SPRITES, make_generator(0, "encoder-orientation"))
    test_images, (test_shapes, test_truth) = data.render(test_values), seen_angles(test_values, data.factor_names)
    for step in range(1, steps + 1):
        values = data.draw(batch, stream)
        _, truth = seen_angles(values, data.factor_names)
        optimiser.zero_grad(set_to_none=True)
        (encoder(data.render(values))[0] - truth).pow(2).mean().backward()
        optimiser.step()
        if step % every == 0 or step == steps:
            with torch.inference_mode():
                outputs = torch.cat([encoder(part)[0] for part in test_images.split(500)])
            scores = r_squared_by_class(outputs, test_truth, test_shapes, SHAPES)
            print(f"step {step}: " + " | ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", help="preset or YAML file (default: default)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, as sbvae train")
    parser.add_argument("--steps", type=int, default=6000, help="training steps")
    parser.add_argument("--every", type=int, default=1000, help="steps between readings")
    parser.add_argument("--batch", type=int, default=64, help="sprites per step")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    args = parser.parse_args(argv)
    if min(args.steps, args.every, args.batch) < 1 or not args.lr > 0:
        parser.exit(2, "error: --steps, --every and --batch must be at least 1 and --lr above 0\n")
    try:
        train(args.config, args.set, args.steps, args.every, args.batch, args.lr)
    except UserError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
