"""Which half of the VAE misses the colour of small sprites? A diagnostic, not a protocol.

1. Trains the encoder's four convs, with a throwaway linear head, to read the true factors
   (x, y, scale, hue as cos and sin, saturation, value, shape, orientation) from small-sprite
   images, and prints the R^2 of each read-out.
2. Trains a VAE of the ``cpu`` preset on ``small_sprites`` whose encoder convs start from those
   weights (its head and decoder start fresh) and prints the validation squared error.

Step 1 uses the factor labels, so this cannot be a protocol for the study (the comparison is
between unsupervised models); it only says whether an encoder that starts with colour
features lets the VAE leave the grey plateau. See docs/reproduction.md, "small-objects: why white sprites".

    python probes/pretrained_encoder.py OUT [--decoder sbd] [--readout-steps 3000] [--steps 7000]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from sbvae.config import load_config
from sbvae.data import make_dataset, make_generator
from sbvae.errors import UserError
from sbvae.models import VAE, Encoder, build_vae
from sbvae.training import loop as training
from sbvae.training.loop import prepare_new_run
from sbvae.viz.outputs import standard_callbacks

PRESET, IMAGE_SIZE = "small_sprites", 32


def factor_targets(values: torch.Tensor, names: tuple[str, ...]) -> tuple[torch.Tensor, list[str]]:
    """Factor values as regression targets: angles as cos and sin, the shape one-hot."""
    columns, labels = [], []
    for i, name in enumerate(names):
        v = values[:, i].float()
        if name in ("hue", "orientation"):
            angle = v * 2 * math.pi if name == "hue" else v
            columns += [torch.cos(angle), torch.sin(angle)]
            labels += [f"{name}_cos", f"{name}_sin"]
        elif name == "shape":
            columns += [(v == s).float() for s in range(3)]
            labels += [f"shape{s}" for s in range(3)]
        else:
            columns.append(v)
            labels.append(name)
    return torch.stack(columns, 1), labels


def train_readout(steps: int, width: int) -> dict[str, torch.Tensor]:
    """Supervised factor read-out; returns the trained convs' weights."""
    torch.manual_seed(0)
    data = make_dataset(PRESET, IMAGE_SIZE)
    test = data.sample(2000, make_generator(1, "probe-test"))
    targets, labels = factor_targets(test.values, data.factor_names)
    mean, std = targets.mean(0), targets.std(0) + 1e-6
    encoder = Encoder(IMAGE_SIZE, 3, math.ceil(len(labels) / 2), width=width)
    optimizer = torch.optim.Adam(encoder.parameters(), 1e-3)
    stream = make_generator(1, "probe-train")

    def predict(images: torch.Tensor) -> torch.Tensor:
        return torch.cat(encoder(images), 1)[:, : len(labels)]

    for _step in range(1, steps + 1):
        batch = data.sample(16, stream)
        goal = (factor_targets(batch.values, data.factor_names)[0] - mean) / std
        loss = ((predict(batch.images) - goal) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        r2 = 1 - ((predict(test.images) - (targets - mean) / std) ** 2).mean(0)
    print("read-out R^2 after", steps, "steps:", " ".join(f"{n} {r:.2f}" for n, r in zip(labels, r2)))
    return encoder.convs.state_dict()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="new run folder for step 2")
    parser.add_argument("--decoder", choices=("sbd", "deconv"), default="sbd")
    parser.add_argument("--readout-steps", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=7000)
    args = parser.parse_args(argv)
    try:
        prepare_new_run(args.out)  # refuse a used folder before the read-out's minutes, not after
    except UserError as exc:
        parser.exit(2, f"error: {exc}\n")
    config = load_config(
        "cpu",
        [
            f"data.preset={PRESET}",
            f"data.image_size={IMAGE_SIZE}",
            "train.seed=1",
            "train.threads=1",
            f"train.steps={args.steps}",
            f"model.decoder={args.decoder}",
        ],
    )
    convs = train_readout(args.readout_steps, config.model.encoder_channels)

    def build_with_readout_convs(*build_args: object, **build_kwargs: object) -> VAE:
        vae = build_vae(*build_args, **build_kwargs)  # type: ignore[arg-type]
        vae.encoder.convs.load_state_dict(convs)
        return vae

    training.build_vae = build_with_readout_convs  # the Trainer builds its model through this name
    training.train(config, args.out, "cpu", progress=False, callbacks=standard_callbacks())
    rows = [json.loads(line) for line in (args.out / "metrics.jsonl").read_text().splitlines()]
    print("validation squared error:", " ".join(f"{r['step']}:{r['sse']:.2f}" for r in rows if r["split"] == "val"))


if __name__ == "__main__":
    main()
