"""Is a factor in the latent but not in the picture? A diagnostic, not a protocol.

For each run folder, a small network (two hidden layers) is trained to read every factor from
the encoder's posterior means of fresh ground-truth samples, and scored on other samples. Beside
it, the run's fidelity: the image probe on the model's reconstructions, and on the ground truth
(the control). A factor the latent carries that the reconstructions lose is lost by the decoder;
one the latent does not carry is lost by the encoder and the objective.

The read-out uses the factor labels, so it says nothing about disentanglement; it only locates
where a factor is lost. See docs/learning.md, "The 3D scenes at the default budget".

    python probes/latent_readout.py RUN_DIR [RUN_DIR ...] [--train 8000] [--test 2000] [--steps 3000]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn

from sbvae.data import GroundTruthDataset, make_generator
from sbvae.data.sprites import SHAPES, seen_angles
from sbvae.errors import UserError
from sbvae.evaluation.fidelity import fidelity_probe, model_fidelity, r_squared_by_class, score
from sbvae.evaluation.probe import Probe, outputs_width, probe_loss
from sbvae.models import VAE
from sbvae.training.run_folder import load_model


@torch.inference_mode()
def latent_means(model: VAE, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The encoder's posterior means of ``images``, in batches."""
    return torch.cat([model.encoder(images[i : i + batch_size])[0] for i in range(0, len(images), batch_size)])


def read_latents(
    probe: Probe, codes: torch.Tensor, values: torch.Tensor, test_codes: torch.Tensor, steps: int, seed: int = 0
) -> torch.Tensor:
    """Train a read-out of every factor of ``probe.readings`` from ``codes`` ``[N, D]`` and
    return its outputs on ``test_codes``."""
    width = outputs_width(probe.readings)
    return fit_readout(codes, test_codes, width, lambda out: probe_loss(probe.readings, out, values), steps, seed)


def fit_readout(
    codes: torch.Tensor,
    test_codes: torch.Tensor,
    width: int,
    loss: Callable[[torch.Tensor], torch.Tensor],
    steps: int,
    seed: int = 0,
) -> torch.Tensor:
    """A two-hidden-layer network from standardised ``codes`` to ``width`` outputs, trained by
    full-batch Adam for ``steps`` steps on ``loss(outputs)``; its outputs on ``test_codes``."""
    torch.manual_seed(seed)
    centre, spread = codes.mean(dim=0), codes.std(dim=0) + 1e-6
    hidden = 64
    net = nn.Sequential(
        nn.Linear(codes.shape[1], hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, width),
    )
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    inputs = (codes - centre) / spread
    for _ in range(steps):
        optimiser.zero_grad()
        loss(net(inputs)).backward()
        optimiser.step()
    with torch.no_grad():
        return net((test_codes - centre) / spread)


def orientation_as_seen(
    data: GroundTruthDataset, codes: torch.Tensor, values: torch.Tensor, train: int, steps: int
) -> dict[str, tuple[float, float]]:
    """For each sprite shape, R^2 of the angle its picture shows (:func:`seen_angles`) read
    from ``codes`` and, as the control, from the true factor values; fitted on the first
    ``train`` rows, scored on the rest."""
    shapes, target = seen_angles(values, data.factor_names)
    readings = []
    for inputs in (codes, values.float()):
        outputs = fit_readout(
            inputs[:train], inputs[train:], 2, lambda out: (out - target[:train]).pow(2).mean(), steps
        )
        readings.append(r_squared_by_class(outputs, target[train:], shapes[train:], SHAPES))
    latent, control = readings
    return {shape: (latent[shape], control[shape]) for shape in SHAPES}


def report(run: str, train: int, test: int, steps: int) -> None:
    """Print each factor's latent read-out, reconstruction fidelity and control for ``run``."""
    config, model, state = load_model(run, "cpu")
    model.eval()
    data, probe = fidelity_probe(config)
    values = data.draw(train + test, make_generator(7, "latent-readout"))
    codes = latent_means(model, data.render(values))
    outputs = probe.split(read_latents(probe, codes[:train], values[:train], codes[train:], steps))
    fidelity = model_fidelity(model, data, probe, config.objective.likelihood)
    print(f"{run} (step {state['step']}): factor, latent read-out, reconstructions, control")
    for reading, output in zip(probe.readings, outputs):
        key = "fidelity_" + reading.name
        latent = score(reading, output, values[train:])
        print(f"  {reading.name:14s} {latent:6.3f} {fidelity[key]:6.3f} {fidelity[key + '_control']:6.3f}")
    if {"shape", "orientation"} <= set(data.factor_names) and data.factor("shape").value_names == SHAPES:
        print("  orientation as seen, by shape: latent read-out, read-out of the true factors (control)")
        for shape, (latent, control) in orientation_as_seen(data, codes, values, train, steps).items():
            print(f"    {shape:12s} {latent:6.3f} {control:6.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--train", type=int, default=8000, help="samples the read-out is trained on")
    parser.add_argument("--test", type=int, default=2000, help="samples it is scored on")
    parser.add_argument("--steps", type=int, default=3000, help="the read-out's training steps")
    args = parser.parse_args(argv)
    if min(args.train, args.test, args.steps) < 2:
        parser.exit(2, "error: --train, --test and --steps must be at least 2\n")
    try:
        for run in args.runs:
            report(run, args.train, args.test, args.steps)
    except UserError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
