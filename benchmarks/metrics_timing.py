"""Time every array metric on dlib-sized inputs and print a table.

    .venv/bin/python benchmarks/metrics_timing.py [--num-train 10000] [--num-test 5000] [--skip dci]

Codes: 10 dimensions, 5 factors with dSprites' class counts (3, 6, 40, 32, 32); five codes are
noisy, slightly mixed copies of the factors and five are noise. Chen's MIG needs a full grid, so
it runs on a smaller full-factorial grid (3 x 6 x 10 x 8 x 8 = 11,520 points).

DCI keeps dlib's GradientBoostingClassifier defaults (100 trees per class and factor, 113 classes
here) and takes far longer than the rest; ``--skip dci`` for a quick run.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
import warnings

import numpy as np

from sbvae.evaluation import metrics

SIZES = (3, 6, 40, 32, 32)
CHEN_SIZES = (3, 6, 10, 8, 8)


def make_codes(labels: np.ndarray, sizes: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    n, k = labels.shape
    scaled = labels / (np.array(sizes) - 1.0)
    mix = np.eye(k) + 0.1 * rng.normal(size=(k, k))
    informative = scaled @ mix + 0.05 * rng.normal(size=(n, k))
    return np.hstack([informative, rng.normal(size=(n, 10 - k))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-test", type=int, default=5_000)
    parser.add_argument(
        "--chen-samples", type=int, default=1_000, help="evaluation points per entropy estimate for mig_chen"
    )
    parser.add_argument("--skip", default="", help="comma-separated metric names to skip (e.g. dci)")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    rng = np.random.default_rng(0)
    y_train = rng.integers(0, SIZES, size=(args.num_train, len(SIZES)))
    y_test = rng.integers(0, SIZES, size=(args.num_test, len(SIZES)))
    c_train, c_test = make_codes(y_train, SIZES, rng), make_codes(y_test, SIZES, rng)
    grid = np.array(list(itertools.product(*[range(s) for s in CHEN_SIZES])))
    chen_means = make_codes(grid, CHEN_SIZES, rng)
    chen_logvars = np.hstack([np.full((len(grid), 5), math.log(1e-3)), np.zeros((len(grid), 5))])

    runs = {
        "mig": lambda: metrics.mig(c_train, y_train),
        "mig_chen": lambda: metrics.mig_chen(chen_means, chen_logvars, grid, num_samples=args.chen_samples, seed=0),
        "sap": lambda: metrics.sap(c_train, y_train, c_test, y_test),
        "sap (continuous)": lambda: metrics.sap(c_train, y_train, c_test, y_test, continuous_factors=True),
        "modularity_explicitness": lambda: metrics.modularity_explicitness(c_train, y_train, c_test, y_test),
        "unsupervised": lambda: metrics.unsupervised_scores(c_train),
        "dci": lambda: metrics.dci(c_train, y_train, c_test, y_test, seed=0),
    }
    print(
        f"{args.num_train:,} train / {args.num_test:,} test codes, 10 dims, factor sizes {SIZES}; "
        f"mig_chen on a {len(grid):,}-point grid {CHEN_SIZES}, {args.chen_samples:,} samples"
    )
    print(f"{'metric':<26}{'seconds':>10}  result")
    for name, run in runs.items():
        if name.split(" ")[0] in skip:
            print(f"{name:<26}{'skipped':>10}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # default LogisticRegression may not converge
            tick = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - tick
        shown = ", ".join(f"{k}={v:.4f}" for k, v in result.items() if isinstance(v, float))
        print(f"{name:<26}{seconds:>10.3f}  {shown}", flush=True)


if __name__ == "__main__":
    main()
