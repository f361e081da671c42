"""Train the two models `sbvae explore --demo` opens, and pack them into the package.

    .venv/bin/python scripts/demo_models.py            # train both (the default preset, seed 0), then pack
    .venv/bin/python scripts/demo_models.py --pack-only # pack runs/demo-sbd and runs/demo-deconv as they are

Training is the default preset, unchanged, with one CPU thread (so a shared machine keeps a core):

    sbvae train --set train.threads=1 --seed 0 --out runs/demo-sbd
    sbvae train --set model.decoder=deconv train.threads=1 --seed 0 --out runs/demo-deconv

Packing keeps what the app reads: the model's weights, step and config (the checkpoint without
the optimizer's state) and ``config.yaml``, in ``src/sbvae/explore/demo/{sbd,deconv}/``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from sbvae.training.run_folder import RunPaths, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"sbd": [], "deconv": ["model.decoder=deconv"]}
KEPT = ("step", "model", "config")


def train(overrides: list[str], folder: Path) -> None:
    command = ["sbvae", "train", "--set", *overrides, "train.threads=1", "--seed", "0", "--out", str(folder)]
    print("$", " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", "sbvae", *command[1:]], check=True)


def pack(folder: Path, target: Path) -> None:
    """Copy ``folder``'s weights and config into ``target`` (replacing what is there)."""
    source = RunPaths(folder)
    state = load_checkpoint(source.checkpoint)
    target.mkdir(parents=True, exist_ok=True)
    save_checkpoint(target / "checkpoint.pt", {key: state[key] for key in KEPT})
    shutil.copyfile(source.config, target / "config.yaml")
    size = (target / "checkpoint.pt").stat().st_size
    print(f"packed {folder} (step {state['step']}) into {target} ({size / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="where the two run folders go")
    parser.add_argument("--pack-only", action="store_true", help="do not train; pack the existing runs")
    args = parser.parse_args()
    for name, overrides in RUNS.items():
        folder = Path(args.runs) / f"demo-{name}"
        if not args.pack_only:
            train(overrides, folder)
        pack(folder, ROOT / "src" / "sbvae" / "explore" / "demo" / name)


if __name__ == "__main__":
    main()
