"""Compare training recipes by what their runs learned per second of training.

    .venv/bin/python scripts/learning_curves.py RATES.json NAME@SPEC=GLOB [...] [--out FIG.png]
        [--reference SPEC --reference-rate IMAGES_PER_SEC]

``RATES.json`` is what ``sbvae bench --recipe SPEC ... --json RATES.json`` wrote: the training
images/s of each recipe, measured side by side. Each ``NAME@SPEC=GLOB`` names a recipe, its
bench spec, and the run folders trained with it. A run's seconds are its images seen (step x
batch) over its recipe's rate, so a machine that was busy while one run trained cannot favour
it. With ``--reference``, each rate is scaled so that the reference recipe runs at
``--reference-rate`` (a rate measured on a quiet machine), keeping the ratios measured side by
side.

Prints, per recipe and seed: seconds to leave the grey plateau (first validation squared error
per image below ``--plateau``), seconds to a shape fidelity of 0.9 (from ``fidelity`` rows, when
logged), and the final validation squared error, test squared error (from the run's
``metrics.json``, when it has one), shape fidelity and MIG. ``--out`` draws the
validation error and the shape fidelity against seconds, one colour per recipe.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path
from typing import Any

import yaml

from sbvae.training.run_folder import read_metrics


def first_time(points: list[tuple[float, float]], passes: Any) -> float | None:
    """The first x whose y passes the test, or None."""
    return next((x for x, y in points if passes(y)), None)


def run_summary(run: Path, rate: float, plateau: float) -> dict[str, Any]:
    """Seconds-indexed curves and milestones of one run folder."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    batch = config["train"]["batch_size"]
    rows = read_metrics(run / "metrics.jsonl")
    val = [(r["step"] * batch / rate, r["sse"]) for r in rows if r["split"] == "val"]
    shape = [(r["step"] * batch / rate, r["fidelity_shape"]) for r in rows if "fidelity_shape" in r]
    mig = [r["discrete_mig"] for r in rows if r["split"] == "mig" and "discrete_mig" in r]
    end = run / "metrics.json"  # what `sbvae train` evaluates at its end, on the test images
    test_sse = json.loads(end.read_text())["reconstruction"]["sse"] if end.is_file() else None
    return {
        "run": str(run),
        "seed": config["train"]["seed"],
        "val": val,
        "shape": shape,
        "plateau_s": first_time(val, lambda y: y < plateau),
        "shape90_s": first_time(shape, lambda y: y >= 0.9),
        "final_sse": val[-1][1] if val else None,
        "final_shape": shape[-1][1] if shape else None,
        "final_mig": mig[-1] if mig else None,
        "test_sse": test_sse,
        "seconds": val[-1][0] if val else None,
    }


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


MEDIANS = (("final_sse", ".2f"), ("test_sse", ".2f"), ("final_shape", ".3f"), ("final_mig", ".3f"))


def _median(runs: list[dict[str, Any]], key: str, fmt: str) -> str:
    values = [s[key] for s in runs if s[key] is not None]
    return _cell(statistics.median(values) if values else None, fmt)


def table(summaries: dict[str, list[dict[str, Any]]]) -> str:
    """One Markdown row per run, then the median per recipe."""
    lines = [
        "| recipe | seed | training s | s to leave plateau | s to shape 0.9 | val SSE | test SSE | shape fidelity "
        "| MIG |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in summaries.items():
        lines.extend(
            f"| {name} | {s['seed']} | {_cell(s['seconds'], '.0f')} | {_cell(s['plateau_s'], '.0f')} | "
            f"{_cell(s['shape90_s'], '.0f')} | {_cell(s['final_sse'], '.2f')} | {_cell(s['test_sse'], '.2f')} | "
            f"{_cell(s['final_shape'], '.3f')} | {_cell(s['final_mig'], '.3f')} |"
            for s in sorted(runs, key=lambda s: s["seed"])
        )
        medians = [_median(runs, key, fmt) for key, fmt in MEDIANS]
        lines.append(f"| **{name}, median** | {len(runs)} seeds | | | | " + " | ".join(medians) + " |")
    return "\n".join(lines)


def figure(summaries: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_sse, ax_shape) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, runs) in enumerate(summaries.items()):
        colour = f"C{i}"
        for j, s in enumerate(runs):
            label = name if j == 0 else None
            if s["val"]:
                ax_sse.plot(*zip(*s["val"]), color=colour, alpha=0.7, label=label)
            if s["shape"]:
                ax_shape.plot(*zip(*s["shape"]), color=colour, alpha=0.7, label=label)
    ax_sse.set(xlabel="training seconds (images / bench rate)", ylabel="validation squared error / image")
    ax_sse.set_ylim(0, 16)
    ax_shape.set(xlabel="training seconds (images / bench rate)", ylabel="shape fidelity (accuracy)", ylim=(0.3, 1))
    ax_sse.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rates", type=Path)
    parser.add_argument("recipes", nargs="+", help="NAME@SPEC=GLOB")
    parser.add_argument("--reference", help="the bench spec whose rate --reference-rate gives")
    parser.add_argument("--reference-rate", type=float, help="images/s of --reference on a quiet machine")
    parser.add_argument("--plateau", type=float, default=9.0, help="validation SSE below which the plateau is left")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rates = {spec: row["images_per_sec"] for spec, row in json.loads(args.rates.read_text())["recipes"].items()}
    scale = args.reference_rate / rates[args.reference] if args.reference else 1.0
    summaries: dict[str, list[dict[str, Any]]] = {}
    for item in args.recipes:
        label, pattern = item.rsplit("=", 1)
        name, _, spec = label.partition("@")
        rate = rates[spec] * scale
        runs = sorted(Path(p) for p in glob.glob(pattern) if (Path(p) / "metrics.jsonl").is_file())
        summaries[name] = [run_summary(run, rate, args.plateau) for run in runs]
    print(table(summaries))
    if args.out:
        figure(summaries, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
