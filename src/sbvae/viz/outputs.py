"""What `sbvae train` adds to the training loop: MIG and fidelity along the way, the end-of-run
scores, figures and report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbvae.evaluation.during_training import FidelityLogger, MigLogger
from sbvae.training.callbacks import Callback
from sbvae.viz.report import run_report
from sbvae.viz.run_figures import write_figures

if TYPE_CHECKING:
    from sbvae.training.loop import MetricsLog, Trainer


class FiguresAndReport(Callback):
    """At the end of training: every figure of the run, then ``report.html``."""

    def on_end(self, trainer: Trainer, log: MetricsLog) -> None:
        write_figures(trainer.config, trainer.model, trainer.paths, device=trainer.device)
        print(f"report: {run_report(trainer.paths.root)}")


def standard_callbacks() -> list[Callback]:
    """MIG and fidelity during training and the quick scores at the end, then the figures and
    the report."""
    return [MigLogger(), FidelityLogger(), FiguresAndReport()]
