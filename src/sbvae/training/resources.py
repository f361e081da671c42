"""The memory a config will need, estimated before anything is allocated.

The model, and the modules the objective trains beside it (a FactorVAE discriminator), are
built on PyTorch's ``meta`` device (shapes without storage) and one image is run through the
model to count the activations a training step keeps for the backward pass. The other
parts are counted from the config: rendering buffers (at ``data.supersample`` times the image
size), the fixed validation set, the samples of the MIG logged during training. The estimate
is coarse (within a small factor of what the process really uses); it exists to refuse in one
line what cannot fit at all, before a minute of allocating ends in an out-of-memory kill.
"""

from __future__ import annotations

import torch

from sbvae.config import Config
from sbvae.data.rows import available_memory
from sbvae.errors import ConfigError
from sbvae.models import build_vae, count_parameters
from sbvae.objectives import Runtime, make_objective

FLOAT = 4  # bytes


def _activations_and_parameters(config: Config, channels: int) -> tuple[int, int]:
    """Elements of every module output for one image (what autograd keeps for the backward),
    and the parameter count of the model and of the objective's modules."""
    total = 0

    def count(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        for tensor in output if isinstance(output, tuple) else (output,):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel()

    with torch.device("meta"):
        model = build_vae(config.model, config.data.image_size, channels)
        hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
        size = config.data.image_size
        model(torch.empty(1, channels, size, size), torch.empty(1, config.model.latent_dim))
        objective = make_objective(config.objective, Runtime(torch.device("meta"), config.model.latent_dim))
    for hook in hooks:
        hook.remove()
    params = count_parameters(model) + sum(count_parameters(m) for m in objective.modules().values())
    return total, params


def estimate(config: Config, channels: int = 3) -> dict[str, int]:
    """Bytes per part, keyed by the config key that sets the part's size."""
    t, d = config.train, config.data
    per_image, params = _activations_and_parameters(config, channels)
    chunk = min(t.micro_batch or t.batch_size, t.batch_size)
    rendered = t.batch_size * channels * (d.image_size * d.supersample) ** 2
    return {
        "model": params * FLOAT * 4,  # weights, gradients and Adam's two moments
        # the activations kept for the backward and their gradients; the renderer's temporaries
        "train.batch_size": (chunk * per_image * 2 + rendered * 3) * FLOAT,
        "data.val_size": d.val_size * channels * d.image_size**2 * FLOAT * 2,  # the images and a reconstruction chunk
        "train.mig_samples": t.mig_samples * (config.model.latent_dim + 16) * 8,
        # the factor values and the probe's outputs on reconstructions and ground truth
        "train.fidelity_samples": t.fidelity_samples * 64 * 8 if t.fidelity_every else 0,
    }


def check_fits(config: Config, channels: int = 3, available: int | None = None) -> None:
    """A one-line :class:`ConfigError` when the estimate exceeds the memory available, naming
    the key behind the largest part."""
    parts = estimate(config, channels)
    need, limit = sum(parts.values()), available if available is not None else available_memory()
    if need <= limit:
        return
    key = max(parts, key=lambda k: parts[k])
    where = "the model (model.* sizes)" if key == "model" else key
    raise ConfigError(
        f"this config needs about {need / 2**30:,.1f} GB of memory, mostly for {where} "
        f"({parts[key] / 2**30:,.1f} GB), and {limit / 2**30:,.1f} GB are available"
    )
