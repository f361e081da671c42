"""Fresh 3D scenes ray-cast by two versions of sbvae, side by side: speed and sameness.

    .venv/bin/python benchmarks/scene_cast.py --before REV [--after REV] [--rounds 3] [--threads 2]
                                              [--size 32] [--batches 21]

Each version (a git revision, exported with ``git archive``; ``--after`` defaults to the working
tree) runs in fresh processes, alternately, for ``--rounds`` rounds per scene. A process warms
up on 256 combinations, then casts ``--batches`` batches of 64 fresh combinations of
``objects_room`` and ``chairs`` (``renderer.cast``, nothing looked up) and reports the median
images per second. Printed per scene: every round's rate under each version, their medians and
the ratio after / before; then the largest difference between the two versions' images of the
same 64 combinations (0 when a change keeps the images bit for bit).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENES = ("objects_room", "chairs")

WORKER = r"""
import statistics, sys, time, torch
from sbvae.data.chairs import ChairRenderer
from sbvae.data.room import RoomRenderer
scene, size, threads, batches, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(threads)
renderer = (RoomRenderer if scene == "objects_room" else ChairRenderer)(size)
generator = torch.Generator().manual_seed(1)
renderer.cast(renderer.factors.sample(256, generator))  # warm-up: caches per view, allocator
values = [renderer.factors.sample(64, generator) for _ in range(batches)]
seconds = []
for batch in values:
    tick = time.perf_counter()
    renderer.cast(batch)
    seconds.append(time.perf_counter() - tick)
torch.save(renderer.cast(renderer.factors.sample(64, torch.Generator().manual_seed(7))), out)
print(64 / statistics.median(seconds))
"""


def export(revision: str, into: Path) -> Path:
    """The ``src`` folder of ``revision`` written below ``into`` (its path to import from)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def cast_rate(source: Path, scene: str, args: argparse.Namespace, images: Path) -> float:
    """Images per second of one fresh process importing sbvae from ``source``."""
    command = [sys.executable, "-c", WORKER, scene, str(args.size), str(args.threads), str(args.batches), str(images)]
    environment = {"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{source}: {done.stderr.strip().splitlines()[-1]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="git revision of the first version")
    parser.add_argument("--after", default=None, help="git revision of the second (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=21)
    args = parser.parse_args()
    import torch  # after the arguments: --help needs no torch

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "before").mkdir()
        sources = {"before": export(args.before, work / "before")}
        if args.after is None:
            sources["after"] = ROOT / "src"
        else:
            (work / "after").mkdir()
            sources["after"] = export(args.after, work / "after")
        for scene in SCENES:
            rates: dict[str, list[float]] = {name: [] for name in sources}
            for _ in range(args.rounds):
                for name, source in sources.items():
                    rates[name].append(cast_rate(source, scene, args, work / f"{name}.pt"))
            before, after = (statistics.median(rates[name]) for name in sources)
            rounds = "  ".join(f"{name}: {', '.join(f'{r:,.0f}' for r in rates[name])}" for name in sources)
            print(f"{scene} {args.size} px, {args.threads} thread(s), images/s  {rounds}")
            difference = (torch.load(work / "after.pt") - torch.load(work / "before.pt")).abs().max().item()
            print(f"  median {before:,.0f} -> {after:,.0f}: {after / before:.2f}x; largest difference {difference:g}")


if __name__ == "__main__":
    main()
