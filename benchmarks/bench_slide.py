"""Whole-slide speed of ``ssimnet segment`` end to end, start-up included, and where a tile's time goes.

Usage::

    python benchmarks/bench_slide.py --images ../shared/data/monuseg [--grid 6] [--workers 1 2] [--profile-tiles 4]

Builds a pyramidal SVS (levels 1, 4, 16; 0.25 um per pixel, MoNuSeg's 40x)
of real H&E: the 1000x1000 MoNuSeg tiles (train, then test) laid in a
``grid`` x ``grid`` block on glass with a 1000-pixel margin.  Then, for each
``--workers``, runs ``ssimnet segment slide.svs`` in a fresh process and prints
one row: wall seconds, tissue megapixels (level 0) and tissue megapixels per
second of wall time, with the peak resident memory of the largest process.
With ``--profile-tiles N``, also times the steps of N tiles in this process
(cProfile, cumulative seconds per tile).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ssimnet.data import read_image
from ssimnet.synthetic import write_slide

STEPS = {  # what cProfile's cumulative time is read for, by function name
    "read the window": "slide_reader.py:read",
    "stain normalisation": "normalize.py:transform",
    "network (ONNX Runtime)": "onnxnet.py:maps",
    "h-maxima markers": "extrema.py:h_maxima",
    "watershed": "_watershed.py:watershed",
    "hematoxylin for the table": "segmenter.py:hematoxylin",
    "measurements": "nuclei.py:measure_nuclei",
    "polygons": "geojson.py:nucleus_polygons",
    "whole tile": "slide.py:segment_slide_tile",
}


def build(images: Path, grid: int, path: Path) -> None:
    files = sorted((images / "train" / "images").iterdir()) + sorted((images / "test" / "images").iterdir())
    side = (grid + 2) * 1000
    rng = np.random.default_rng(0)
    canvas = np.clip(np.array([236, 234, 238]) + rng.integers(-3, 4, (side, side, 3)), 0, 255).astype(np.uint8)
    for k, file in enumerate(files[: grid * grid]):
        r, c = divmod(k, grid)
        canvas[1000 + r * 1000 : 2000 + r * 1000, 1000 + c * 1000 : 2000 + c * 1000] = read_image(file)[:1000, :1000]
    write_slide(path, canvas, mpp=0.25, downsamples=(1, 4, 16))


def run(slide: Path, out: Path, workers: int) -> tuple[float, dict[str, object], float]:
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "ssimnet", "segment", str(slide), "--out", str(out),
               "--workers", str(workers), "--quiet", "--overwrite"]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    summary = json.loads((out / f"{slide.stem}_summary.json").read_text())
    return wall, summary, int(done.stderr.strip().splitlines()[-1]) / 1024


def profile(slide: Path, tiles: int) -> dict[str, float]:
    import cProfile
    import pstats

    from ssimnet.tool.segmenter import Segmenter
    from ssimnet.tool.slide import plan_slide, segment_slide_tile, stain_mosaic
    from ssimnet.tool.slide_reader import open_slide

    segmenter = Segmenter.pretrained()
    with open_slide(slide) as reader:
        plan = plan_slide(reader, settings=segmenter.settings)
        stains = segmenter.measure_stains(stain_mosaic(reader, plan, crops=9, side=384))
        middle = [w for w in plan.windows if w.read[0].stop - w.read[0].start == segmenter.settings.tile_size
                  and w.read[1].stop - w.read[1].start == segmenter.settings.tile_size][:tiles + 1]
        segment_slide_tile(reader, middle[0], segmenter, stains, plan=plan)  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        for window in middle[1:]:
            segment_slide_tile(reader, window, segmenter, stains, plan=plan)
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    seconds = {}
    for step, name in STEPS.items():
        file, function = name.split(":")
        seconds[step] = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file) and fn == function) / (len(middle) - 1)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="a MoNuSeg folder (train/images, test/images)")
    parser.add_argument("--grid", type=int, default=6)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile-tiles", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        slide = Path(tmp) / "slide.svs"
        build(args.images, args.grid, slide)
        print(f"slide: {slide.stat().st_size / 1e6:.0f} MB, {(args.grid + 2) * 1000} px a side")
        print("| workers | wall (s) | tissue Mpx | tissue tiles | tissue Mpx/s | nuclei | peak RSS, largest process (MB) |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for workers in args.workers:
            wall, summary, rss = run(slide, Path(tmp) / f"out{workers}", workers)
            info = summary["slide"]
            print(f"| {workers} | {wall:.1f} | {info['tissue_megapixels']:.1f} | {info['tissue_tiles']} | "
                  f"{info['tissue_megapixels'] / wall:.2f} | {summary['nuclei']} | {rss:.0f} |", flush=True)
        if args.profile_tiles:
            print("\n| step | s per 1024² tile |\n|---|---:|")
            for step, seconds in profile(slide, args.profile_tiles).items():
                print(f"| {step} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
