"""The training loop: an endless stream of rendered batches, Adam, logs, checkpoints, resume.

Everything random has its own seeded generator (model init, the data stream, the
reparameterisation noise, the validation noise), and the stream's and the noise's states are
saved in every checkpoint, so on the CPU N steps in one go and N/2 + resume + N/2 give the
same parameters bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from sbvae.config import Config, TrainConfig, config_yaml
from sbvae.data import Batch, Dataset, build_dataset, make_dataset, make_generator
from sbvae.errors import CheckpointError, DivergenceError, UserError, first_line
from sbvae.models import VAE, build_vae, count_parameters
from sbvae.objectives import LossTerms, Runtime, make_objective
from sbvae.training.callbacks import Callback
from sbvae.training.device import (
    busy_warning,
    compile_module,
    select_device,
    set_threads,
)
from sbvae.training.distributed import (
    World,
    check_batch,
    mean_over_ranks,
    share,
    start,
    stop,
    world_from_env,
)
from sbvae.training.resources import check_fits
from sbvae.training.run_folder import (
    LOCK_FILE,
    RunLock,
    RunPaths,
    atomic_write_bytes,
    config_from_checkpoint,
    load_checkpoint,
    read_metrics,
    save_checkpoint,
)
from sbvae.training.validation import elbo_statistics


def parameter_report(
    config: Config, model: VAE, data: Dataset, objective_modules: dict[str, nn.Module] | None = None
) -> str:
    """One line with the parameter counts of the encoder, of both decoders, and of the modules
    the objective trains beside the VAE (a FactorVAE discriminator)."""
    other = "deconv" if config.model.decoder == "sbd" else "sbd"
    swapped_config = type(config.model)(**{**vars(config.model), "decoder": other})
    with torch.device("meta"):  # counted, never allocated: it may be far wider than the one trained
        swapped = build_vae(swapped_config, data.image_size, data.channels)
    counts = {config.model.decoder: count_parameters(model.decoder), other: count_parameters(swapped.decoder)}
    extra = "".join(f" | {name} {count_parameters(m):,}" for name, m in (objective_modules or {}).items())
    return (
        f"parameters: encoder {count_parameters(model.encoder):,} | "
        f"sbd decoder {counts['sbd']:,} | deconv decoder {counts['deconv']:,}{extra} "
        f"(training: {config.model.decoder}, {config.objective.name})"
    )


def _across_processes(world: World, device: torch.device, module: nn.Module) -> nn.Module:
    """``module`` wrapped to train across the processes (itself on one process)."""
    if not world.active:
        return module
    return DDP(module, device_ids=[device] if device.type == "cuda" else None)


def _gather_rows(world: World, rows: torch.Tensor) -> torch.Tensor:
    """Every process's ``rows`` (the same shape on each), concatenated in rank order."""
    if not world.active:
        return rows
    parts = [torch.empty_like(rows) for _ in range(world.size)]
    dist.all_gather(parts, rows.contiguous())
    return torch.cat(parts)


def learning_rate(t: TrainConfig, step: int) -> float:
    """The learning rate at ``step`` (counted from 1): rising linearly to ``t.lr`` over the
    first ``t.lr_warmup`` steps (``lr / lr_warmup`` at the first; 0: ``lr`` from the start),
    then, with ``t.lr_decay_steps``, falling along a half cosine to ``lr * lr_final`` at that
    step and staying there."""
    if t.lr_warmup and step < t.lr_warmup:
        return t.lr * step / t.lr_warmup
    if not t.lr_decay_steps:
        return t.lr
    progress = min(1.0, (step - t.lr_warmup) / (t.lr_decay_steps - t.lr_warmup))
    return t.lr * (t.lr_final + (1 - t.lr_final) * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    """Owns the model, optimizer, data stream and run folder of one training run."""

    def __init__(self, config: Config, run_dir: Path, device: torch.device, world: World | None = None) -> None:
        self.config, self.device = config, device
        self.world = world = world or World()
        self.paths = RunPaths(Path(run_dir))
        self.data = build_dataset(config.data)
        torch.manual_seed(config.train.seed)
        self.model = build_vae(config.model, self.data.image_size, self.data.channels).to(device)
        if config.train.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # what the training step calls (DDP across processes)
        self.net: torch.nn.Module = _across_processes(world, device, self.model)
        if config.train.compile:
            self.net = compile_module(self.net, device)
        t = config.train
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=t.lr, betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_eps
        )
        runtime = Runtime(
            device,
            config.model.latent_dim,
            config.train.seed,
            world.rank,
            world.size,
            gather=lambda rows: _gather_rows(world, rows),
            wrap=lambda module: _across_processes(world, device, module),
        )
        self.objective = make_objective(config.objective, runtime)  # its modules initialised after the VAE's
        self.data_rng = make_generator(config.train.seed, "train")
        self.noise_rng = make_generator(config.train.seed, "noise")
        self.step = 0
        self.elapsed = 0.0
        self._val: Batch | None = None

    # -- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "data_rng": self.data_rng.get_state(),
            "noise_rng": self.noise_rng.get_state(),
            "objective": self.objective.state_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.data_rng.set_state(state["data_rng"])
            self.noise_rng.set_state(state["noise_rng"])
            self.objective.load_state_dict(state.get("objective", {}))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {self.paths.checkpoint} cannot be restored: {first_line(exc)}") from None
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))

    def save(self) -> None:
        save_checkpoint(self.paths.checkpoint, self.state())

    # -- one step ------------------------------------------------------------------------
    def learning_rate(self) -> float:
        """The learning rate of the coming step (see :func:`learning_rate`)."""
        return learning_rate(self.config.train, self.step + 1)

    def train_step(self) -> LossTerms:
        """One optimizer step on a fresh batch. Across processes, every rank draws the global
        batch's factors and noise and renders only its own slice (see ``sbvae.training.distributed``);
        with ``train.micro_batch`` the slice's gradient is accumulated chunk by chunk (each
        chunk's loss weighted by its share). The objective sees the whole slice first and
        updates its own modules last (see :class:`sbvae.objectives.Objective`). Returns this
        rank's mean loss terms."""
        size = self.config.train.batch_size
        rows = self.world.shard(size)
        images = self.data.images(self.data.draw(size, self.data_rng)[rows], self.device)
        noise = torch.randn(size, self.config.model.latent_dim, generator=self.noise_rng)[rows].to(self.device)
        chunk = min(self.config.train.micro_batch or len(images), len(images))
        self.optimizer.zero_grad(set_to_none=True)
        self.objective.begin_batch(self.model, images, noise, self.step)
        warm = self.objective.regulariser_weight(self.step)
        totals: dict[str, torch.Tensor] = {}
        for first in range(0, len(images), chunk):
            part = slice(first, first + chunk)
            last = first + chunk >= len(images)
            sync = contextlib.nullcontext() if last or not self.world.active else cast(DDP, self.net).no_sync()
            with sync:  # across processes, gradients are averaged once, after the last chunk
                terms = self.objective.loss(self.net, images[part], noise[part], self.step, part).warmed_up(warm)
                share = chunk / len(images)
                (terms.loss * share).backward()
            for name, value in terms.named().items():
                totals[name] = totals[name] + value.detach() * share if name in totals else value.detach() * share
        totals.update(self.objective.end_batch(self.step))
        self._stop_if_diverged(totals["loss"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.optimizer.step()
        self.objective.apply_updates()
        self.step += 1
        return LossTerms.from_named(totals)

    def trained_parameters(self) -> list[torch.nn.Parameter]:
        """The VAE's parameters and those of the modules the objective trains."""
        return [*self.model.parameters(), *(p for m in self.objective.modules().values() for p in m.parameters())]

    def _stop_if_diverged(self, loss: torch.Tensor) -> None:
        """A :class:`DivergenceError` before the update when the loss or any gradient (the VAE's
        or the objective's modules') is not finite. Across processes the gradients are already
        averaged and the loss is averaged here, so every rank decides alike; the weights, and so
        every checkpoint, stay finite, and no infinite loss is logged.

        Each gradient is checked through its sum, which is not finite when an entry is NaN or
        infinite (and when the entries are so large that their sum overflows, a divergence too);
        a sum reads each entry once, several times faster than an elementwise test over the
        5M weights of a FactorVAE discriminator."""
        loss = mean_over_ranks(self.world, loss.detach().float())
        grads = [p.grad for p in self.trained_parameters() if p.grad is not None]
        if bool(torch.stack([loss, *(g.sum() for g in grads)]).isfinite().all()):
            return
        t, o = self.config.train, self.config.objective
        value = loss.item()
        hint = f"a smaller train.lr (now {t.lr:g}) or a larger objective.sigma (now {o.sigma:g}) usually helps"
        what = f"the loss is {value:.4g}"
        if math.isfinite(value):
            what += " and its gradient is not finite"
        elif weights := {k: v for k, v in o.hyperparameters().items() if isinstance(v, float)}:
            # a loss that overflows while its gradient is finite: the objective's own weights
            hint += ", or smaller " + ", ".join(f"objective.{k} (now {v:g})" for k, v in weights.items())
        raise DivergenceError(
            f"training diverged at step {self.step + 1}: {what}; this step was not applied and the last "
            f"checkpoint, if any, is kept; {hint}"
        )

    # -- evaluation ----------------------------------------------------------------------
    @property
    def val(self) -> Batch:
        if self._val is None:
            self._val = self.data.fixed_set(self.config.data.val_size, self.config.train.seed, "val", self.device)
        return self._val

    def validate(self) -> dict[str, Any]:
        """Loss terms, squared error and active latents on the fixed validation set."""
        return elbo_statistics(self.model, self.val.images, self.config.objective, self.config.train.seed)


def mean_terms(world: World, sums: dict[str, torch.Tensor], count: int) -> dict[str, Any]:
    """The mean of summed loss terms over ``count`` steps and over the processes: scalars as
    floats, vectors (``kl_per_dim``) as lists, in the order of ``sums``."""
    flat = mean_over_ranks(world, torch.cat([v.reshape(-1) for v in sums.values()]) / count).tolist()
    out: dict[str, Any] = {}
    for name, value in sums.items():
        size = value.numel()
        out[name] = flat[0] if value.dim() == 0 else flat[:size]
        flat = flat[size:]
    return out


def progress_text(mean: dict[str, Any], rate: float) -> str:
    """The progress bar's postfix: the ELBO's terms, the method's own, the speed."""
    extra = "".join(f" {k} {v:.3g}" for k, v in mean.items() if k not in ("loss", "recon", "kl", "kl_per_dim"))
    return f"loss {mean['loss']:.1f} recon {mean['recon']:.1f} kl {mean['kl']:.1f}{extra} {rate:.0f} img/s"


class MetricsLog:
    """Appends rows to metrics.jsonl and TensorBoard."""

    def __init__(self, paths: RunPaths) -> None:
        from tensorboardX import SummaryWriter

        self.path = paths.metrics
        self.writer = SummaryWriter(str(paths.tensorboard))

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        step, split = row["step"], row["split"]
        for key, value in row.items():
            if key in ("step", "split"):
                continue
            if isinstance(value, list):
                for i, v in enumerate(value):
                    self.writer.add_scalar(f"{split}/{key}/{i}", v, step)
            elif isinstance(value, (int, float)):
                self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        self.writer.close()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint we resume from (they will be logged again), and
    damaged lines (see :func:`read_metrics`)."""
    if not path.is_file():
        return
    kept = "".join(json.dumps(row) + "\n" for row in read_metrics(path) if row["step"] <= step)
    atomic_write_bytes(path, lambda handle: handle.write(kept.encode()))


# What a run writes before its first checkpoint: a folder holding only these was stopped before
# it saved any training state, and is started again.
EARLY_FILES = frozenset({"config.yaml", "metrics.jsonl", "tensorboard", LOCK_FILE})


def _stopped_before_checkpoint(run_dir: Path) -> bool:
    return run_dir.is_dir() and all(p.name in EARLY_FILES for p in run_dir.iterdir())


def prepare_new_run(run_dir: Path) -> None:
    """Create an empty run folder; refuse one that already holds files, unless it holds only
    what a run stopped before its first checkpoint leaves, which is set aside in
    ``RUN/stopped-TIME/`` (nothing is deleted) so the run starts again."""
    if _stopped_before_checkpoint(run_dir) and any(run_dir.iterdir()):
        with RunLock(run_dir):  # not a run still on its way to its first checkpoint
            aside = run_dir / f"stopped-{time.strftime('%Y%m%d-%H%M%S')}"
            aside.mkdir()
            for entry in [p for p in run_dir.iterdir() if p.name in EARLY_FILES - {LOCK_FILE}]:
                entry.rename(aside / entry.name)
        print(f"{run_dir} was stopped before its first checkpoint: its files are set aside in {aside}")
        return
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise UserError(
            f"output folder {run_dir} already exists and is not empty (choose another --out, or --resume {run_dir})"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {run_dir}: {exc.strerror}") from None


def resume_config(run_dir: Path, steps: int | None = None) -> tuple[Config, dict[str, Any]]:
    """The config and checkpoint of a run to resume; ``steps`` may extend its length."""
    paths = RunPaths(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"resume folder not found: {run_dir}")
    state = load_checkpoint(paths.checkpoint)
    config = config_from_checkpoint(state, paths.checkpoint)
    if steps is not None:
        config.train.steps = steps
    return config, state


def _on_main(world: World, action: Callable[[], None]) -> None:
    """Run ``action`` on rank 0 only; a user error there stops every rank with the same line."""
    if not world.active:
        action()
        return
    error = None
    if world.is_main:
        try:
            action()
        except UserError as exc:
            error = str(exc)
    error = share(world, error)
    if error is not None:
        raise UserError(error)


def train(
    config: Config,
    run_dir: str | Path,
    device: str | torch.device | None = None,
    resume_state: dict[str, Any] | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> Path:
    """Train ``config`` into ``run_dir`` (a new, empty folder unless ``resume_state`` is given).

    Returns the run folder. On resume, training continues from the checkpoint's step up to
    ``config.train.steps``. Under ``torchrun`` the processes share the work (see
    ``sbvae.training.distributed``) and only rank 0 writes anything. ``callbacks`` run on rank 0
    after every step and once at the end (what `sbvae train` adds: MIG during training and the
    final scores, figures and report; see ``sbvae.viz.outputs.standard_callbacks``).
    """
    run_dir = Path(run_dir)
    device = device if isinstance(device, torch.device) else select_device(device)
    world = world_from_env()
    check_batch(world, config.train.batch_size, config.train.micro_batch)
    # a bad data file is refused here, before the run folder exists
    d = config.data
    channels = (make_dataset(d.preset, 16, 1) if d.path is None else build_dataset(d)).channels
    check_fits(config, channels, torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None)
    device = start(world, device)
    try:
        return _train(config, run_dir, device, world, resume_state, progress, callbacks)
    except RuntimeError as exc:
        if not world.active:
            raise
        raise UserError(f"rank {world.rank}: lost contact with the other processes: {first_line(exc)}") from None
    finally:
        stop(world)


def _train(
    config: Config,
    run_dir: Path,
    device: torch.device,
    world: World,
    resume_state: dict[str, Any] | None,
    progress: bool,
    callbacks: Sequence[Callback],
) -> Path:
    if resume_state is None:
        _on_main(world, lambda: prepare_new_run(run_dir))
    threads = set_threads(config.train.threads, world.local_size)
    trainer = Trainer(config, run_dir, device, world)
    if resume_state is not None:
        trainer.load_state(resume_state)  # a checkpoint that does not fit is refused before any write
    lock = RunLock(run_dir)
    _on_main(world, lock.acquire)  # rank 0 writes the folder, and holds it while training
    try:
        return _train_locked(trainer, threads, resume_state is not None, progress, callbacks)
    finally:
        lock.release()


def _train_locked(trainer: Trainer, threads: int, resumed: bool, progress: bool, callbacks: Sequence[Callback]) -> Path:
    config, device, world, paths = trainer.config, trainer.device, trainer.world, trainer.paths
    run_dir, main = paths.root, world.is_main
    if resumed and main:
        _truncate_metrics(paths.metrics, trainer.step)
    t = config.train
    if main:
        # renamed into place: a reader of config.yaml sees the old file or the new one, whole
        atomic_write_bytes(paths.config, lambda handle: handle.write(config_yaml(config).encode()))
        print(parameter_report(config, trainer.model, trainer.data, trainer.objective.modules()))
        if device.type == "cpu" and (warning := busy_warning(threads)) is not None:
            print(warning)
        ranks = f" x {world.size} processes" if world.active else ""
        print(
            f"device {device} ({threads} threads{ranks}) | {trainer.data.name} {config.data.image_size}px | "
            f"{t.steps:,} steps of {t.batch_size} | run folder {run_dir}"
        )
    log = MetricsLog(paths) if main else None
    bar = tqdm(total=t.steps, initial=trainer.step, unit="step", disable=not (progress and main), dynamic_ncols=True)
    sums: dict[str, torch.Tensor] = {}
    count, busy = 0, 0.0
    last_val: dict[str, Any] | None = None
    try:
        while trainer.step < t.steps:
            tick = time.perf_counter()
            terms = trainer.train_step().named()
            sums = {k: sums[k] + v for k, v in terms.items()} if sums else terms
            count += 1
            log_now = trainer.step % t.log_every == 0 or trainer.step == t.steps
            if log_now and device.type == "cuda":
                torch.cuda.synchronize(device)  # so the timing covers the queued kernels
            busy += time.perf_counter() - tick  # training time only: evaluation is excluded
            if log_now:
                mean = mean_terms(world, sums, count)  # waits for the device
                trainer.elapsed += busy
                rate = count * t.batch_size / max(busy, 1e-9)
                if log is not None:  # the main process
                    row = {"step": trainer.step, "split": "train", **mean, "images_per_sec": rate}
                    log.write({**row, "elapsed": trainer.elapsed})
                bar.set_postfix_str(progress_text(mean, rate))
                sums, count, busy = {}, 0, 0.0
            if log is not None and (trainer.step % t.eval_every == 0 or trainer.step == t.steps):
                last_val = trainer.validate()
                log.write({"step": trainer.step, "split": "val", **last_val})
            if log is not None:
                for callback in callbacks:
                    callback.on_step(trainer, log)
            if main and (trainer.step % t.checkpoint_every == 0 or trainer.step == t.steps):
                trainer.save()
            bar.update(1)
        if log is None:  # not the main process
            return run_dir
        if last_val is None:  # resumed a finished run: nothing trained, still refresh the outputs
            last_val = trainer.validate()
        bar.close()
        for callback in callbacks:
            callback.on_end(trainer, log)
    finally:
        bar.close()
        if log is not None:
            log.close()
    print(
        f"done: step {trainer.step:,} | val loss {last_val['loss']:.1f} recon {last_val['recon']:.1f} "
        f"kl {last_val['kl']:.1f} nats/image | {last_val['active_latents']} active latents | "
        f"{trainer.elapsed / 60:.1f} min of training"
    )
    return run_dir
