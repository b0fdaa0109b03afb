"""Time ssimnet.metrics.score on 1000x1000 instance maps with ~1,000 nuclei.

Usage: python benchmarks/bench_metrics.py [--repeat N]

The ground truth is a synthetic 1000x1000 tile (or a MoNuSeg label when
../shared/data/monuseg is present); the prediction is that map shifted by two
pixels with every third nucleus merged into its neighbour, so that matching is
non-trivial.  Prints a table of the median wall time per call.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ssimnet.data import list_samples, read_label
from ssimnet.metrics import score
from ssimnet.synthetic import synthetic_tile


def _cases() -> list[tuple[str, np.ndarray]]:
    cases = [("synthetic 1000x1000", synthetic_tile((1000, 1000), seed=1, coverage=0.35).label)]
    monuseg = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "monuseg"
    if monuseg.is_dir():
        sample = list_samples(monuseg, "test")[0]
        cases.append((f"MoNuSeg {sample.name}", read_label(sample.label_path)))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'case':<40} {'nuclei':>7} {'median s':>9} {'min s':>7}")
    for name, true in _cases():
        pred = np.roll(true, 2, axis=1)
        pred = np.where(pred % 3 == 0, pred + 1, pred)  # merge every third nucleus into its neighbour id
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            score(true, pred)
            times.append(time.perf_counter() - t0)
        print(f"{name:<40} {int(true.max()):>7} {np.median(times):>9.3f} {min(times):>7.3f}")


if __name__ == "__main__":
    main()
