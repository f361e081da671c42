"""The ``sbvae`` command: a thin layer over the Python API.

Every error a user can cause ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from sbvae.errors import ConfigError, UserError, environment_fault, printable

if TYPE_CHECKING:
    from sbvae.study.runner import Backend

DATA_FORMATS = ("dsprites_npz", "shapes3d_h5", "mpi3d_npz", "chairs_folder", "image_folder")
"""``sbvae data --format``: the formats of ``sbvae.data.files.FORMATS`` (not imported: torch is slow to load)."""


def _figure_names() -> list[str]:
    from sbvae.training.run_folder import FIGURE_FILES

    return list(FIGURE_FILES)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like every other user error
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")


def _default_run_dir(preset: str, decoder: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{preset}-{decoder}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def cmd_train(args: argparse.Namespace) -> None:
    from sbvae.config import load_config, parse_override
    from sbvae.training.loop import resume_config, select_device, train
    from sbvae.viz.outputs import standard_callbacks

    device = select_device(args.device)
    if args.resume is not None:
        steps = None
        for item in args.set:
            key, value = parse_override(item)
            if key != "train.steps":
                raise ConfigError(f"--resume keeps the run's config; only train.steps may be set, not {key}")
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"train.steps must be a positive int, not {value!r}")
            steps = value
        if args.config or args.seed is not None or args.out:
            raise ConfigError("--resume takes the run's own config; drop --config, --seed and --out")
        config, state = resume_config(Path(args.resume), steps)
        train(config, args.resume, device, resume_state=state, progress=not args.quiet, callbacks=standard_callbacks())
        return
    overrides = list(args.set)
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    config = load_config(args.config, overrides)
    if config.train.fidelity_every and config.data.path is not None:
        from sbvae.data import build_dataset, require_ground_truth

        data = build_dataset(config.data)
        if any(parse_override(item)[0] == "train.fidelity_every" for item in overrides):
            require_ground_truth(data, "train.fidelity_every (the fidelity of reconstructions)")
        elif not data.has_ground_truth:
            config.train.fidelity_every = 0  # a preset's: off on data without factors, as MIG is
    data_name = config.data.preset
    if config.data.path:  # a file's or folder's name; a glob's characters left out
        data_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(config.data.path).stem).strip("_") or "data"
    out = Path(args.out) if args.out else _default_run_dir(data_name, config.model.decoder)
    train(config, out, device, progress=not args.quiet, callbacks=standard_callbacks())


def cmd_data(args: argparse.Namespace) -> None:
    from sbvae.data import PRESETS, Dataset, make_dataset, make_generator, open_data
    from sbvae.viz.data import data_figure

    is_preset = args.preset in PRESETS and not Path(args.preset).exists()
    if is_preset and (args.format or args.cache):
        raise UserError("--format and --cache are for a file or folder, not a data preset")
    looks_like_a_path = "/" in args.preset or any(c in args.preset for c in "*?[") or Path(args.preset).exists()
    if not is_preset and not looks_like_a_path:
        raise UserError(f"unknown data preset '{args.preset}' (known: {', '.join(PRESETS)}; or give a file or folder)")
    if args.image_size is None:  # what `sbvae train` trains on unless told otherwise
        from sbvae.config import load_config

        args.image_size = load_config("default").data.image_size
    if args.image_size <= 0 or args.image_size % 16:
        raise UserError(f"--image-size must be a positive multiple of 16, not {args.image_size}")
    if args.count <= 0:
        raise UserError(f"--count must be positive, not {args.count}")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UserError(f"folder {out.parent} does not exist")
    if out.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file, not {out}")
    data: Dataset
    if is_preset:
        data = make_dataset(args.preset, args.image_size)
    else:
        cache = str(Path(args.cache).absolute()) if args.cache else None
        data = open_data(str(Path(args.preset).absolute()), args.image_size, args.format, cache)
    batch = data.sample(args.count, make_generator(args.seed, "preview"))
    data_figure(data, batch, out)
    print(f"wrote {args.count} samples of {data.name} at {args.image_size} px to {out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from sbvae.evaluation.evaluate import evaluate_run, format_table
    from sbvae.training.run_folder import warn_if_training

    warn_if_training(args.run_dir, "these scores are of")
    result = evaluate_run(
        args.run_dir,
        args.metrics,
        args.representation,
        args.seed,
        args.num_train,
        args.num_test,
        args.device,
        log=lambda line: print(line, flush=True),
        fidelity_samples=args.fidelity_samples,
        fidelity_factors=args.fidelity_factors,
    )
    print(format_table(result))
    print(f"wrote {Path(args.run_dir) / 'metrics.json'}")


def _factor_pair(text: str | None) -> list[str] | None:
    return None if text is None else [f.strip() for f in text.split(",")]


def cmd_visualize(args: argparse.Namespace) -> None:
    from sbvae.training.run_folder import warn_if_training
    from sbvae.viz.run_figures import visualize_run

    warn_if_training(args.run_dir, "these figures show")
    written = visualize_run(args.run_dir, args.only, _factor_pair(args.factors), args.device)
    for path in written.values():
        print(f"wrote {path}")


def cmd_report(args: argparse.Namespace) -> None:
    from sbvae.training.run_folder import warn_if_training
    from sbvae.viz.report import run_report
    from sbvae.viz.run_figures import visualize_run

    warn_if_training(args.run_dir, "this report shows")
    if not args.no_figures:
        visualize_run(args.run_dir, None, _factor_pair(args.factors), args.device)
    print(f"wrote {run_report(args.run_dir)}")


def cmd_compare(args: argparse.Namespace) -> None:
    from sbvae.viz.report import compare_runs

    print(f"wrote {compare_runs(args.run_dirs, args.out, _factor_pair(args.factors), args.device)}")


def cmd_bench(args: argparse.Namespace) -> None:
    from sbvae.bench import format_report, run_benchmark, write_json
    from sbvae.training.device import set_threads

    if args.repeats is not None and args.repeats < 1:
        raise UserError(f"--repeats must be at least 1, not {args.repeats}")
    json_path = Path(args.json) if args.json else None
    if json_path is not None and not json_path.parent.is_dir():
        raise UserError(f"folder {json_path.parent} does not exist")
    set_threads(args.threads)
    if args.recipe:
        from sbvae.bench import format_recipes, recipe_benchmark

        recipes = recipe_benchmark(args.recipe, args.repeats or 5, log=lambda line: print(line, flush=True))
        print(format_recipes(recipes))
        if json_path is not None:
            write_json({"recipes": recipes}, json_path)
            print(f"wrote {json_path}")
        return
    result = run_benchmark(args.quick, args.repeats, args.compile, log=lambda line: print(line, flush=True))
    print(format_report(result))
    if json_path is not None:
        write_json(result, json_path)
        print(f"wrote {json_path}")


def _backend(args: argparse.Namespace) -> Backend:
    from sbvae.study.backends import make_backend

    return make_backend(args.backend, args.jobs, args.address)


def _failed_runs(failed: int) -> int:
    """Exit code 1 when runs failed (the results say which and why), 0 otherwise."""
    if failed:
        print(
            f"sbvae: {failed} run(s) failed, listed in results.md; run the same command again to retry them",
            file=sys.stderr,
        )
    return 1 if failed else 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from sbvae.study.reproduce import experiment_names, reproduce

    names = experiment_names() if args.experiment == "all" else [args.experiment]
    failed = 0
    with _backend(args) as backend:
        for name in names:
            failed += reproduce(
                name,
                args.out,
                args.seeds,
                args.steps,
                args.scale,
                args.fresh,
                args.set,
                args.device,
                log=lambda line: print(line, flush=True),
                num_train=args.num_train,
                backend=backend,
            )
            print(f"results: {Path(args.out) / name / 'results.md'}")
    return _failed_runs(failed)


def cmd_sweep(args: argparse.Namespace) -> int:
    from sbvae.study.sweep import summarise, sweep

    log = lambda line: print(line, flush=True)
    if args.summarise is not None:
        given = [flag for flag, value in SWEEP_PLAN_OPTIONS.items() if getattr(args, value)]
        if given:
            raise UserError(f"--summarise takes the sweep's own settings from its folder: drop {', '.join(given)}")
        summarise(args.summarise, args.device, log)
        print(f"wrote {Path(args.summarise) / 'results.md'}")
        return 0
    if args.out is None:
        raise UserError("--out is needed: the folder for the sweep's runs and results (e.g. --out sweeps/beta)")
    with _backend(args) as backend:
        failed = sweep(
            args.grid,
            args.out,
            args.seeds,
            args.config,
            args.set,
            args.metrics,
            args.num_train,
            args.fresh,
            args.device,
            log,
            backend,
        )
    print(f"wrote {Path(args.out) / 'results.md'}")
    return _failed_runs(failed)


SWEEP_PLAN_OPTIONS = {"--grid": "grid", "--config": "config", "--set": "set", "--out": "out", "--fresh": "fresh"}
"""The options of ``sbvae sweep`` that plan a study (``--summarise`` reads the plan instead)."""


def _backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        default="local",
        help="where runs are made: local (this machine, default) or ray (a Ray cluster; pip install 'sbvae[ray]')",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help="local: runs trained at once, each on its share of the cores (default 1; see docs/performance.md)",
    )
    p.add_argument(
        "--address",
        help="ray: the cluster's head, HOST:PORT, or auto (default: the cluster this machine is part of)",
    )


def cmd_explore(args: argparse.Namespace) -> None:
    from sbvae.explore.server import ExploreServer, serve
    from sbvae.explore.session import demo_run_dirs, open_session
    from sbvae.training.device import select_device

    runs = [Path(r) for r in args.run_dirs] + (demo_run_dirs() if args.demo else [])
    if not runs:
        raise UserError("give one or more run folders, or --demo for the two models shipped with sbvae")
    server = ExploreServer(args.host, args.port, args.verbose)  # a bad host or busy port fails before loading
    try:
        server.attach(open_session(runs, select_device(args.device)))
        serve(server)
    finally:
        server.server_close()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sbvae", description="Spatial Broadcast VAEs: train, evaluate, look.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a VAE (no arguments: the CPU-sized default)")
    p.add_argument("--config", help="a preset name (default, paper, ...) or a YAML file")
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. model.decoder=deconv train.steps=2000",
    )
    p.add_argument("--out", help="run folder to create (default: runs/PRESET-DECODER-TIME)")
    p.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="disentanglement metrics and test reconstruction of a run")
    p.add_argument("run_dir", help="a run folder written by sbvae train")
    p.add_argument(
        "--metrics",
        default="all",
        help="comma-separated: mig,dci,sap,modularity,unsupervised,factor_vae,beta_vae,fidelity (default all)",
    )
    p.add_argument(
        "--representation",
        default="mean",
        choices=["mean", "sampled"],
        help="posterior mean (default, what papers report) or one posterior sample",
    )
    p.add_argument("--num-train", type=int, default=10_000, help="training points (disentanglement_lib: 10000)")
    p.add_argument("--num-test", type=int, default=5_000, help="test points (disentanglement_lib: 5000)")
    p.add_argument("--fidelity-samples", type=int, help="ground-truth samples of the fidelity scores (default 2000)")
    p.add_argument("--fidelity-factors", help="comma-separated factors of the fidelity scores (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.set_defaults(func=cmd_evaluate)

    factors_help = "the two factors of the latent-geometry plot (default: the dataset's, x,y for sprites)"
    p = sub.add_parser("visualize", help="draw every figure of a run into its folder")
    p.add_argument("run_dir", help="a run folder written by sbvae train")
    p.add_argument("--only", help="comma-separated figures: " + ", ".join(_figure_names()))
    p.add_argument("--factors", help=factors_help)
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("report", help="write RUN_DIR/report.html: config, scores and figures in one page")
    p.add_argument("run_dir", help="a run folder written by sbvae train")
    p.add_argument("--factors", help=factors_help)
    p.add_argument("--no-figures", action="store_true", help="use the figures already in the folder")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="one page comparing several runs (e.g. SBD and DeConv, seeds)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", required=True, help="folder for compare.html and its figures")
    p.add_argument("--factors", help=factors_help)
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("reproduce", help="SBD against DeConv over seeds for one of the paper's claims")
    p.add_argument("experiment", help="an experiment of configs/experiments (colored-sprites, held-out, ...) or all")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument("--seeds", type=int, help="seeds per decoder (default: the experiment's)")
    p.add_argument("--steps", type=int, help="training steps per run (default: the experiment's)")
    p.add_argument("--scale", default="cpu", help="cpu (default) or paper (64 px, 1.5M steps: for a GPU)")
    p.add_argument("--fresh", action="store_true", help="set earlier runs aside and train again")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="extra overrides for every run")
    p.add_argument(
        "--num-train",
        type=int,
        default=10_000,
        help="evaluation samples per run (test: half; fidelity samples and test images: this many, at most 2,000)",
    )
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    _backend_options(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("sweep", help="a grid over config keys x seeds, each an ordinary run; results per cell")
    p.add_argument(
        "--grid",
        nargs="+",
        default=[],
        metavar="KEY=V1,V2",
        help="config keys and their values, e.g. objective.name=beta_vae,factor_vae model.decoder=sbd,deconv",
    )
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell, 1 to N (default 3)")
    p.add_argument("--config", help="the fixed part: a preset name or a YAML file (default: default)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="the fixed part: overrides for every run")
    p.add_argument("--metrics", default="mig", help="comma-separated, as sbvae evaluate takes them (default mig)")
    p.add_argument(
        "--num-train",
        type=int,
        default=10_000,
        help="evaluation samples per run (test: half; fidelity samples and test images: this many, at most 2,000)",
    )
    p.add_argument("--out", help="the sweep's folder: runs/, sweep.json, results.json, results.md, compare/")
    p.add_argument("--summarise", metavar="DIR", help="only summarise the sweep in DIR from the runs finished so far")
    p.add_argument("--fresh", action="store_true", help="set earlier runs aside and train again")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    _backend_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("bench", help="training, rendering and encoding speed of this machine, side by side")
    p.add_argument("--quick", action="store_true", help="32 px only, 3 repeats")
    p.add_argument("--repeats", type=int, help="timed rounds per case (default 5, --quick 3)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: one per core)")
    p.add_argument("--compile", action="store_true", help="also time our SBD under torch.compile (train.compile)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.add_argument(
        "--recipe",
        action="append",
        help="only time training of this recipe beside the default preset: a preset or YAML file, then "
        'key=value overrides, in one quoted argument ("default model.sbd_channels=32"); may be repeated',
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("data", help="save a grid of samples of a data preset or file with their factors")
    p.add_argument("preset", metavar="NAME_OR_PATH", help="a data preset (e.g. dsprites), a file, a folder or a glob")
    p.add_argument("--format", choices=DATA_FORMATS, help="how to read a file (default: recognised from the file)")
    p.add_argument("--cache", help="folder for the uncompressed copy of a compressed .npz (default ~/.cache/sbvae)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--image-size", type=int, help="pixels per side (default: the default config's data.image_size)")
    p.add_argument("--count", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("explore", help="a local web page to move a model's latents and watch it decode")
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folders, shown side by side")
    p.add_argument("--demo", action="store_true", help="also open the SBD and DeConv models shipped with sbvae")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=cmd_explore)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers send) as an interrupt, so it unwinds like Ctrl-C: no file is
    left half-written, and the last checkpoint stays valid."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            code = _run(args)
        finally:
            signal.signal(signal.SIGTERM, previous)
    else:
        code = _run(args)
    distributed = sys.modules.get("sbvae.training.distributed")  # imported only by commands that train
    if distributed is not None:
        distributed.end_rank(code)  # a torchrun rank ends here (see end_rank for why)
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        code = args.func(args) or 0
    except UserError as exc:
        print(f"sbvae: error: {printable(str(exc))}", file=sys.stderr)  # one line, whatever it quotes
        return 2
    except Terminated:
        print("sbvae: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("sbvae: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        fault = environment_fault(exc)
        if fault is None:
            raise
        print(f"sbvae: error: {printable(fault)}", file=sys.stderr)
        return 2
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
