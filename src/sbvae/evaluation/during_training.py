"""MIG and fidelity while a model trains, and the quick scores a run folder holds when training ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sbvae.data import require_ground_truth
from sbvae.evaluation.evaluate import compute_metrics, evaluate_model, format_table
from sbvae.evaluation.fidelity import fidelity_keys, fidelity_probe, run_fidelity
from sbvae.evaluation.sampling import GroundTruthSampler
from sbvae.training.callbacks import Callback
from sbvae.training.run_folder import atomic_write_json

if TYPE_CHECKING:
    from sbvae.training.loop import MetricsLog, Trainer


def training_mig(trainer: Trainer) -> dict[str, Any]:
    """Discrete MIG on ``train.mig_samples`` fresh samples (posterior means)."""
    model, t = trainer.model, trainer.config.train
    model.eval()
    data = require_ground_truth(trainer.data, "MIG during training")
    scores, _ = compute_metrics(GroundTruthSampler(data, model, trainer.device), ["mig"], t.seed, t.mig_samples)
    model.train()
    return scores


def training_fidelity(trainer: Trainer) -> dict[str, float]:
    """Fidelity on ``train.fidelity_samples`` fresh samples; the probe is trained the first time
    (on its own generators: the training's random streams are untouched), then cached."""
    model, t = trainer.model, trainer.config.train
    model.eval()
    scores, _ = run_fidelity(trainer.config, model, trainer.device, t.fidelity_samples, t.seed, log=print)
    model.train()
    return scores


class MigLogger(Callback):
    """Logs MIG every ``train.mig_every`` steps; at the end writes ``metrics.json`` (MIG on
    ``train.mig_samples`` samples, the reconstruction on the validation images, and fidelity
    when ``train.fidelity_every`` is set), logs its MIG and fidelity and prints the scores.
    `sbvae evaluate` replaces that file with the full evaluation."""

    def on_step(self, trainer: Trainer, log: MetricsLog) -> None:
        t = trainer.config.train
        if not trainer.data.has_ground_truth:  # a set of images: no MIG
            return
        if t.mig_every and trainer.step % t.mig_every == 0 and trainer.step < t.steps:
            log.write({"step": trainer.step, "split": "mig", **training_mig(trainer)})

    def on_end(self, trainer: Trainer, log: MetricsLog) -> None:
        config, t = trainer.config, trainer.config.train
        if t.fidelity_every:
            fidelity_probe(config, log=print)  # trained here, and said so, when no step has needed it
        quick = evaluate_model(
            config,
            trainer.model,
            trainer.device,
            ["mig", "fidelity"] if t.fidelity_every else ["mig"],
            seed=t.seed,
            num_train=t.mig_samples,
            num_test_images=config.data.val_size,
            fidelity_samples=t.fidelity_samples,
        )
        atomic_write_json(trainer.paths.scores, {"run": str(trainer.paths.root), "step": trainer.step, **quick})
        fidelity = fidelity_keys(quick["scores"])
        if quick["scores"]:  # none for a set of images
            mig = {k: v for k, v in quick["scores"].items() if k not in fidelity}
            log.write({"step": trainer.step, "split": "mig", **mig})
        if fidelity:
            log.write({"step": trainer.step, "split": "fidelity", **fidelity})
        print(format_table(quick))


class FidelityLogger(Callback):
    """Logs fidelity every ``train.fidelity_every`` steps (the end's comes with ``metrics.json``,
    see :class:`MigLogger`). Data without ground truth is refused in one line."""

    def on_step(self, trainer: Trainer, log: MetricsLog) -> None:
        t = trainer.config.train
        if t.fidelity_every and trainer.step % t.fidelity_every == 0 and trainer.step < t.steps:
            log.write({"step": trainer.step, "split": "fidelity", **training_fidelity(trainer)})
