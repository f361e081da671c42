"""Fresh 3D scenes: how far the fast ray-casting is from casting every ray, and how much faster.

    .venv/bin/python benchmarks/scene_accuracy.py [--count 1024] [--sizes 32 64]

For each size, on ``--count`` random factor values (``--count / 4`` at 64 px and above):

* ``objects_room``: the renderer as ``sbvae`` runs it (adaptive: every sample only where the
  picture is not smooth, the empty room cached per orientation) against every sample of every
  pixel (``RoomRenderer(adaptive=False)``, what every image was before issue 28): the mean and
  largest absolute pixel error, the 99.9th percentile, and the speed of both;
* ``chairs``: each part tested only where the rectangle of its picture reaches, against every
  part tested on every ray: the largest difference (0 when culling drops no hit) and the speeds.

Timed side by side in one process, each case once per round, the fastest of three rounds, in
CPU seconds of the process (all its threads): the work each does, which a busy machine changes
less than the wall time. ``sbvae bench`` gives the fresh rate against training, in wall time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from unittest import mock

import torch

from sbvae.data import make_dataset, make_generator
from sbvae.data.chairs import ChairRenderer
from sbvae.data.raycast import Rows
from sbvae.data.room import RoomRenderer


def every_rectangle(rows: Rows, rects: torch.Tensor) -> torch.Tensor:
    """What :meth:`Rows.within` answers with culling off: every pixel is near every part."""
    return torch.ones(len(rows.image), rects.shape[1], dtype=torch.bool, device=rows.image.device)


def timed(cases: dict[str, Callable[[], torch.Tensor]], rounds: int = 3) -> tuple[dict[str, float], dict]:
    """The fastest of ``rounds`` interleaved runs of each case (CPU seconds) and its last output."""
    best, out = dict.fromkeys(cases, float("inf")), {}
    for _ in range(rounds):
        for name, run in cases.items():
            tick = time.process_time()
            out[name] = run()
            best[name] = min(best[name], time.process_time() - tick)
    return best, out


def speeds(seconds: dict[str, float], count: int) -> str:
    """Images per CPU second of each case, and how many times the first is faster than the second."""
    rates = ", ".join(f"{name} {count / spent:,.0f} images per CPU second" for name, spent in seconds.items())
    first, second = seconds.values()
    return f"{rates} ({second / first:.1f}x)"


def room(size: int, values: torch.Tensor) -> str:
    cases = {"adaptive": lambda: RoomRenderer(size).cast(values),
             "every sample": lambda: RoomRenderer(size, adaptive=False).cast(values)}  # fmt: skip
    seconds, out = timed(cases)  # the first round also caches the empty room of each orientation
    error = (out["adaptive"] - out["every sample"]).abs().flatten()
    return (
        f"objects_room {size}px, {len(values)} images: error mean {error.mean():.1e}, "
        f"99.9th percentile {error.kthvalue(int(0.999 * len(error))).values:.4f}, max {error.max():.4f}; "
        + speeds(seconds, len(values))
    )


def chairs(size: int, values: torch.Tensor) -> str:
    def every_part() -> torch.Tensor:
        with mock.patch.object(Rows, "within", every_rectangle):
            return ChairRenderer(size).cast(values)

    seconds, out = timed({"culled": lambda: ChairRenderer(size).cast(values), "every part": every_part})
    difference = (out["culled"] - out["every part"]).abs().max()
    return f"chairs {size}px, {len(values)} images: largest difference {difference:.1e}; " + speeds(
        seconds, len(values)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1024)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    args = parser.parse_args()
    for size in args.sizes:
        count = args.count if size < 64 else max(1, args.count // 4)
        for preset, measure in (("objects_room", room), ("chairs", chairs)):
            values = make_dataset(preset, size).factors.sample(count, make_generator(0, "scene-accuracy"))
            print(measure(size, values), flush=True)


if __name__ == "__main__":
    main()
