"""Put a run's reconstructions beside their inputs, shape by shape, with what the probe reads.

    .venv/bin/python scripts/shape_by_eye.py RUN [RUN ...] --out docs/images/shape_by_eye.png
        [--samples 600] [--per-shape 10] [--seed 7]

For each run: ``--samples`` sprites drawn with ``--seed``, reconstructed from their posterior
means; the first ``--per-shape`` of each shape are drawn in two rows (input above, reconstruction
below), three times enlarged; the probe's confusion matrix on all of them is printed (rows: the
true shape, columns: what the probe reads in the reconstruction). It shows what the fidelity
probe's shape accuracy counts as kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sbvae.config import load_config
from sbvae.data import GroundTruthDataset, make_generator
from sbvae.evaluation.fidelity import fidelity_probe, reconstruct
from sbvae.evaluation.probe import Probe
from sbvae.models import build_vae
from sbvae.training.run_folder import RunPaths, load_checkpoint


def shape_rows(run: Path, samples: int, per_shape: int, seed: int) -> torch.Tensor:
    """``[2 * shapes, per_shape, C, S, S]``: inputs and reconstructions, shape by shape."""
    config = load_config(str(run / "config.yaml"))
    data, probe = fidelity_probe(config)
    model = build_vae(config.model, data.image_size, data.channels)
    model.load_state_dict(load_checkpoint(RunPaths(run).checkpoint)["model"])
    model.eval()
    values = data.draw(samples, make_generator(seed, "fidelity"))
    images = data.render(values)
    return rows_by_shape(
        str(run), data, probe, values, images, reconstruct(model, images, config.objective.likelihood), per_shape
    )


def rows_by_shape(
    name: str,
    data: GroundTruthDataset,
    probe: Probe,
    values: torch.Tensor,
    images: torch.Tensor,
    pictures: torch.Tensor,
    per_shape: int,
) -> torch.Tensor:
    """Print the probe's confusion matrix of the shape it reads in ``pictures`` (of ``values``,
    whose ground truth is ``images``); return ``[2 * shapes, per_shape, C, S, S]``: the first
    ``per_shape`` inputs and pictures of each shape."""
    reading = next(r for r in probe.readings if r.name == "shape")
    first = sum(r.width for r in probe.readings[: probe.readings.index(reading)])
    read = probe.read(pictures)[:, first : first + reading.width].argmax(dim=1)
    truth = reading.target(values)
    names = data.factor("shape").value_names or ()
    confusion = torch.zeros(len(names), len(names), dtype=torch.long)
    for t, p in zip(truth.tolist(), read.tolist()):
        confusion[t, p] += 1
    print(f"{name}: rows = true shape, columns = the probe's reading ({', '.join(names)})\n{confusion}")
    rows = []
    for shape in range(len(names)):
        chosen = (truth == shape).nonzero().flatten()[:per_shape]
        rows += [images[chosen], pictures[chosen]]
    return torch.stack(rows)


def save_picture(blocks: list[torch.Tensor], out: Path) -> None:
    """Blocks of :func:`rows_by_shape` one under another, three times enlarged, as a PNG."""
    grid = torch.cat(blocks)  # [rows, columns, C, S, S]
    rows, columns, _, size, _ = grid.shape
    gap = torch.full((rows, columns, 3, size, 2), 0.3)  # a grey line between sprites
    grid = torch.cat([grid, gap], dim=-1)
    picture = grid.permute(0, 3, 1, 4, 2).reshape(rows * size, columns * (size + 2), 3)
    image = Image.fromarray((picture.clamp(0, 1).numpy() * 255).astype(np.uint8))
    image.resize((image.width * 3, image.height * 3), Image.NEAREST).save(out)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--per-shape", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    blocks = [shape_rows(run, args.samples, args.per_shape, args.seed) for run in args.runs]
    save_picture(blocks, args.out)


if __name__ == "__main__":
    main()
