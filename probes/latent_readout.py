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

import torch
from torch import nn

from sbvae.data import make_generator
from sbvae.errors import UserError
from sbvae.evaluation.fidelity import fidelity_probe, model_fidelity, score
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
    """Train a read-out of every factor of ``probe.readings`` from standardised ``codes`` ``[N, D]``
    (full-batch Adam, ``steps`` steps), and return its outputs on ``test_codes``."""
    torch.manual_seed(seed)
    centre, spread = codes.mean(dim=0), codes.std(dim=0) + 1e-6
    hidden = 64
    net = nn.Sequential(
        nn.Linear(codes.shape[1], hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, outputs_width(probe.readings)),
    )
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    inputs = (codes - centre) / spread
    for _ in range(steps):
        optimiser.zero_grad()
        probe_loss(probe.readings, net(inputs), values).backward()
        optimiser.step()
    with torch.no_grad():
        return net((test_codes - centre) / spread)


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
