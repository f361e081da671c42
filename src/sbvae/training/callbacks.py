"""Hooks into the training loop, for the stages after training (scores, figures, reports).

Training knows nothing of evaluation or pictures: `sbvae train` hands the loop callbacks
that log MIG during training and write the scores, figures and report at the end. They run
on the main process only, and write rows through the loop's own ``metrics.jsonl`` log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sbvae.training.loop import MetricsLog, Trainer


class Callback:
    """Does nothing by default; override what is needed."""

    def on_step(self, trainer: Trainer, log: MetricsLog) -> None:
        """After every training step (and its validation), before the step's checkpoint."""

    def on_end(self, trainer: Trainer, log: MetricsLog) -> None:
        """Once, after the last step (also when a finished run is resumed)."""
