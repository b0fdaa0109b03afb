"""Time each pseudo-label stage on one core, at several image sizes, with peak memory.

Usage: python benchmarks/bench_pseudo_labels.py [--data DIR] [--repeat N]

Images are MoNuSeg training tiles when ``--data`` (default
../shared/data/monuseg) exists -- a 500x500 crop, a 1000x1000 tile, and a
2000x2000 mosaic of four tiles -- else synthetic tiles of those sizes.  Each
size runs in a fresh single-threaded subprocess so that its peak resident
memory (ru_maxrss) is its own.  Prints one table: seconds per stage (median
of N runs), total, seconds per megapixel, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZES = (500, 1000, 2000)
STAGES = ("stain fit", "unmix + I^T", "FCM", "active contour", "soften", "voronoi", "USMI")


def _image(data: Path, size: int):
    import numpy as np

    from ssimnet.data import list_samples, read_image
    from ssimnet.synthetic import synthetic_tile

    if not (data / "train" / "images").is_dir():
        return synthetic_tile((size, size), seed=size).image
    tiles = [read_image(s.image_path) for s in list_samples(data, "train", labels=False)[:4]]
    if size <= 1000:
        return np.ascontiguousarray(tiles[1][:size, :size])
    return np.block([[[tiles[0]], [tiles[1]]], [[tiles[2]], [tiles[3]]]])[:size, :size]


def _one(size: int, data: Path, repeat: int) -> dict[str, float]:
    import resource
    import warnings

    import numpy as np
    from skimage.color import rgb2lab

    from ssimnet.config import PseudoLabelConfig
    from ssimnet.pseudo.candidates import fuzzy_cmeans_mask, refine_candidates
    from ssimnet.pseudo.purify import patch_usmi
    from ssimnet.pseudo.soften import soften_labels
    from ssimnet.pseudo.stain import VahadaneSeparator, hematoxylin_image
    from ssimnet.pseudo.voronoi import voronoi_label

    warnings.simplefilter("ignore")
    cfg = PseudoLabelConfig()
    image = _image(data, size)
    runs: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for _ in range(repeat):
        clock = time.perf_counter

        t = clock()
        sep = VahadaneSeparator.from_config(cfg).fit(image)
        runs["stain fit"].append(clock() - t)
        t = clock()
        hema = hematoxylin_image(sep.transform(image), sep.stain_matrix_)
        runs["unmix + I^T"].append(clock() - t)
        t = clock()
        lab = rgb2lab(hema)
        fcm = fuzzy_cmeans_mask(lab, m=cfg.fcm_m, n_samples=cfg.fcm_samples)
        runs["FCM"].append(clock() - t)
        t = clock()
        P = refine_candidates(lab[..., 0], fcm, contour_iterations=cfg.contour_iterations,
                              contour_smoothing=cfg.contour_smoothing, min_size=cfg.min_size, max_hole=cfg.max_hole)
        runs["active contour"].append(clock() - t)
        t = clock()
        soften_labels(P, stop=cfg.soften_stop)
        runs["soften"].append(clock() - t)
        t = clock()
        voronoi_label(P, point_radius=cfg.point_radius)
        runs["voronoi"].append(clock() - t)
        t = clock()
        patch_usmi(P, size=cfg.patch_size, stride=cfg.patch_stride, min_components=cfg.min_components)
        runs["USMI"].append(clock() - t)
    out = {stage: float(np.median(v)) for stage, v in runs.items()}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.data, args.repeat)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    source = "MoNuSeg" if (args.data / "train" / "images").is_dir() else "synthetic"
    print(f"pseudo labels, one process, one thread, {source} images, median of {args.repeat}")
    header = f"{'size':>10}" + "".join(f"{s:>15}" for s in STAGES) + f"{'total s':>10}{'s/Mpx':>8}{'peak MB':>9}"
    print(header)
    for size in SIZES:
        done = subprocess.run([sys.executable, __file__, "--one", str(size), "--data", str(args.data), "--repeat", str(args.repeat)],
                              env=env, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        total = sum(r[s] for s in STAGES)
        print(f"{size}x{size:<5}" + "".join(f"{r[s]:>15.3f}" for s in STAGES)
              + f"{total:>10.2f}{total / (size * size / 1e6):>8.2f}{r['peak_mb']:>9.0f}")


if __name__ == "__main__":
    main()
