"""Can the decoder draw a shape when it is handed the true factors? A diagnostic, not a protocol.

Trains the decoder of a preset alone, with the true factors of each image as its latent (an
oracle encoder: no KL, no sampling, nothing to discover): each factor as the fidelity probe
reads it (a category one-hot, an angle as its cosine and sine, any other factor scaled to
[-1, 1]), so the latent has as many dimensions as those columns. Loss, likelihood, optimiser,
learning-rate schedule, batch and steps are the preset's. Every ``--every`` steps it prints the
squared error per image and the fidelity of the decoder's pictures of ``--samples`` fresh
samples (2,000: the samples and probe of ``sbvae evaluate``'s fidelity), and at the end writes
``OUT/shapes.png`` (inputs over pictures, shape by shape, as ``scripts/shape_by_eye.py``) and
``OUT/curve.jsonl``.

What it separates: if the decoder draws corners from the true factors, a VAE with that decoder
that does not draw them lacks them in its latent (encoder, KL, training); if it does not, the
decoder itself (its size, depth or way of drawing) is the limit at that budget.

    python probes/decoder_from_factors.py OUT [--config default] [--set KEY=VALUE ...]
        [--steps N] [--every K] [--samples N] [--orientation-as-seen] [--without FACTOR ...]

``--without`` leaves factors out of the latent: what the decoder then draws is its best guess
over them, which shows what a VAE whose latent lacks them can draw at most.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from sbvae.config import load_config
from sbvae.data import GroundTruthDataset, build_dataset, make_generator
from sbvae.data.sprites import SHAPES, angle_as_seen
from sbvae.errors import UserError
from sbvae.evaluation.fidelity import FIDELITY_SAMPLES, fidelity_probe, fidelity_scores
from sbvae.evaluation.probe import Reading, outputs_width
from sbvae.models import build_vae
from sbvae.objectives.base import reconstruction_nll, to_image
from sbvae.training.loop import learning_rate

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def oracle_latent(
    readings: list[Reading], values: torch.Tensor, as_seen: bool = False, without: frozenset[str] = frozenset()
) -> torch.Tensor:
    """``[N, width]``: the factor ``values`` ``[N, K]`` as the decoder's latent, column by
    column as the probe reads them (a category one-hot), leaving out the factors named in
    ``without``. ``as_seen``: a sprite's orientation as the angle the picture shows, the cosine
    and sine of ``k`` times it for a shape that looks the same after a ``k``-th of a turn
    (:data:`sbvae.data.sprites.SYMMETRY`)."""
    parts = []
    for reading in readings:
        if reading.name in without:
            continue
        target = reading.target(values)
        if reading.kind == "class":
            parts.append(F.one_hot(target, reading.width).float())
        elif as_seen and reading.name == "orientation":
            parts.append(_angle_as_seen(readings, reading, values))
        else:
            parts.append(target.view(len(values), -1))
    return torch.cat(parts, dim=1)


def _angle_as_seen(readings: list[Reading], orientation: Reading, values: torch.Tensor) -> torch.Tensor:
    shape = next(r for r in readings if r.name == "shape")
    radians = values[:, orientation.column].double() * (2 * math.pi / orientation.turn)
    return angle_as_seen(shape.target(values), radians)


def _sprites(data: GroundTruthDataset) -> bool:
    """Whether ``data`` has the sprites' shapes and an orientation."""
    names = data.factor_names
    return "orientation" in names and "shape" in names and tuple(data.factor("shape").value_names or ()) == SHAPES


def shape_by_eye():  # type: ignore[no-untyped-def]
    """The module of ``scripts/shape_by_eye.py`` (its confusion matrix and picture)."""
    spec = importlib.util.spec_from_file_location("shape_by_eye", SCRIPTS / "shape_by_eye.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def train(
    config_name: str,
    overrides: list[str],
    steps: int | None,
    every: int,
    samples: int,
    as_seen: bool,
    out: Path,
    without: frozenset[str] = frozenset(),
) -> None:
    """Train the oracle-fed decoder and write its curve and picture into ``out``."""
    base = load_config(config_name, overrides)
    dataset = build_dataset(base.data)
    if as_seen and not _sprites(dataset):
        raise UserError(
            f"--orientation-as-seen is for sprites, with a shape and an orientation; not {base.data.preset}"
        )
    unknown = sorted(without - set(dataset.factor_names))
    if unknown:
        raise UserError(f"--without: {base.data.preset} has no factor {', '.join(unknown)}")
    data, probe = fidelity_probe(base, log=print)
    width = outputs_width([r for r in probe.readings if r.name not in without])
    steps = steps or base.train.steps
    config = load_config(config_name, [*overrides, f"model.latent_dim={width}"])
    t, objective = config.train, config.objective
    torch.manual_seed(t.seed)
    if t.threads:
        torch.set_num_threads(t.threads)
    decoder = build_vae(config.model, data.image_size, data.channels).decoder
    optimizer = torch.optim.Adam(decoder.parameters(), lr=t.lr, betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_eps)
    stream = make_generator(t.seed, "train")
    values = data.draw(samples, make_generator(0, "fidelity"))
    truth, latent = data.render(values), oracle_latent(probe.readings, values, as_seen, without)
    print(
        f"{config_name}: {config.model.decoder} decoder, latent: {width} factor columns, "
        f"{steps} steps of {t.batch_size}"
    )
    out.mkdir(parents=True)
    with (out / "curve.jsonl").open("w") as curve:
        for step in range(1, steps + 1):
            batch = data.draw(t.batch_size, stream)
            images = data.render(batch)
            decoded = decoder(oracle_latent(probe.readings, batch, as_seen, without))
            loss = reconstruction_nll(images, decoded, objective.likelihood, objective.sigma).mean()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(t, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % every == 0 or step == steps:
                row = evaluate(decoder, data, probe, values, truth, latent, objective.likelihood)
                curve.write(json.dumps({"step": step, **row}) + "\n")
                curve.flush()
                shown = " ".join(f"{k[len('fidelity_') :]} {v:.3f}" for k, v in row.items() if _shown(k))
                print(f"step {step}: sse {row['sse']:.2f} | {shown}", flush=True)
    with torch.inference_mode():
        pictures = to_image(decoder(latent), objective.likelihood)
    eye = shape_by_eye()
    eye.save_picture([eye.rows_by_shape(str(out), data, probe, values, truth, pictures, 10)], out / "shapes.png")


def _shown(key: str) -> bool:
    return key.startswith("fidelity_") and not key.endswith(("_control", "_chance"))


@torch.inference_mode()
def evaluate(decoder, data: GroundTruthDataset, probe, values, truth, latent, likelihood: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Squared error per image and fidelity of the decoder's pictures of ``values``."""
    pictures = torch.cat([to_image(decoder(part), likelihood) for part in latent.split(256)])
    sse = float(((pictures - truth) ** 2).flatten(1).sum(1).mean())
    return {"sse": sse, **fidelity_scores(probe, values, pictures, truth)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a new folder for the curve and the picture")
    parser.add_argument("--config", default="default", help="preset or YAML file (default: default)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides, as sbvae train")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--every", type=int, default=1000, help="steps between fidelity readings")
    parser.add_argument("--samples", type=int, default=FIDELITY_SAMPLES, help="fresh samples each reading draws")
    parser.add_argument(
        "--orientation-as-seen", action="store_true", help="a sprite's orientation up to its shape's symmetry"
    )
    parser.add_argument("--without", nargs="+", default=[], metavar="FACTOR", help="factors left out of the latent")
    args = parser.parse_args(argv)
    if (args.steps is not None and args.steps < 1) or min(args.every, args.samples) < 1:
        parser.exit(2, "error: --steps, --every and --samples must be at least 1\n")
    if args.out.exists():
        parser.exit(2, f"error: {args.out} already exists; give a new folder\n")
    try:
        train(
            args.config,
            args.set,
            args.steps,
            args.every,
            args.samples,
            args.orientation_as_seen,
            args.out,
            frozenset(args.without),
        )
    except UserError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
