"""Whole-slide speed of ``ssimnet segment`` end to end, start-up included, and where a tile's time goes.

Usage::

    python benchmarks/bench_slide.py --images ../shared/data/monuseg [--side 12000] [--profile-tiles 4]
                                     [--out benchmarks/results]

Builds a pyramidal generic tiled TIFF (levels 1, 4 and 16, zlib, resolution
tags of 0.25 um per pixel, MoNuSeg's 40x): the 14 MoNuSeg test images, taken
in turn, laid as a mosaic over about half of a ``side`` x ``side`` glass
background, ``--gap`` pixels of glass between them (abutting images of
different tissues would merge the nuclei their borders cut, which no slide
has).  Then runs ``ssimnet segment slide.tif --out ...`` with no other
option (two workers on two CPUs), with ``--workers 1``, and on a Dask
``LocalCluster`` of two workers, each in a fresh process: wall seconds,
tissue megapixels per second (level 0, start-up included), peak resident
memory of the largest process, and the nuclei.  The 14 images segmented one
by one (``ssimnet segment`` on the folder) give the count to expect: each
image's count times the times it is laid; and so do the images segmented one
by one with the slide's one stain measurement instead of their own, which
tells the seams and tiles from the stains.  ``--profile-tiles N`` times the
steps of N tiles in this process (cProfile, cumulative seconds per tile).

Writes ``slide.json`` (the measurements) and ``slide.md`` (the table the book
includes) under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ssimnet.data import read_image
from ssimnet.synthetic import write_slide

STEPS = {  # what cProfile's cumulative time is read for, by file and function name
    "read the window": "slide_reader.py:read",
    "unmix the stains": "segmenter.py:unmix",
    "normalise the stains": "normalize.py:transform",
    "network (ONNX Runtime)": "onnxnet.py:maps",
    "h-maxima markers": "extrema.py:h_maxima",
    "watershed": "_watershed.py:watershed",
    "measurements": "nuclei.py:measure_nuclei",
    "polygons": "geojson.py:nucleus_polygons",
    "whole tile": "slide.py:segment_slide_tile",
}
RUNS = {"default (2 workers)": [], "1 worker": ["--workers", "1"], "Dask LocalCluster, 2 workers": ["--scheduler", "local", "--workers", "2"]}


def build(images: list[Path], side: int, path: Path, *, gap: int = 0) -> dict[str, int]:
    """The slide: `images` in turn over about half of a `side`² glass, `gap` pixels of glass between them;
    returns how often each is laid."""
    rng = np.random.default_rng(0)
    canvas = np.clip(np.array([236, 234, 238]) + rng.integers(-3, 4, (side, side, 3)), 0, 255).astype(np.uint8)
    across = int(np.sqrt(side * side / 2) // 1000)
    down = int(side * side / 2 // 1e6 // across)
    step = 1000 + gap
    r0, c0 = (side - down * step + gap) // 2, (side - across * step + gap) // 2
    laid = {p.stem: 0 for p in images}
    for k in range(down * across):
        r, c = divmod(k, across)
        image = images[k % len(images)]
        canvas[r0 + r * step : r0 + r * step + 1000, c0 + c * step : c0 + c * step + 1000] = read_image(image)[:1000, :1000]
        laid[image.stem] += 1
    write_slide(path, canvas, mpp=0.25, downsamples=(1, 4, 16), kind="tiff")
    return laid


def _segment(inputs: list[Path], out: Path, extra: list[str]) -> tuple[float, float]:
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "ssimnet", "segment", *map(str, inputs),
               "--out", str(out), "--quiet", "--overwrite", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - start, int(done.stderr.strip().splitlines()[-1]) / 1024


def with_slide_stains(slide: Path, images: list[Path], laid: dict[str, int]) -> int:
    """The nuclei of the images one by one, each normalised with the slide's one stain measurement instead of
    its own (as the slide's tiles are): what the slide should find but for its seams and tiles."""
    from ssimnet.tool.segmenter import Segmenter
    from ssimnet.tool.slide import plan_slide, slide_stains
    from ssimnet.tool.slide_reader import open_slide

    segmenter = Segmenter.pretrained()
    with open_slide(slide) as reader:
        plan = plan_slide(reader, settings=segmenter.settings)
        stains = slide_stains(reader, plan, segmenter)
    counts = {p.stem: len(np.unique(segmenter.segment_tile(read_image(p), stains))) - 1 for p in images}
    return sum(counts[name] * n for name, n in laid.items())


def profile(slide: Path, tiles: int) -> dict[str, float]:
    import cProfile
    import pstats

    from ssimnet.tool.segmenter import Segmenter
    from ssimnet.tool.slide import plan_slide, segment_slide_tile, slide_stains
    from ssimnet.tool.slide_reader import open_slide

    segmenter = Segmenter.pretrained()
    side = segmenter.settings.tile_size
    with open_slide(slide) as reader:
        plan = plan_slide(reader, settings=segmenter.settings)
        stains = slide_stains(reader, plan, segmenter)
        full = [w for w in plan.windows if (w.read[0].stop - w.read[0].start, w.read[1].stop - w.read[1].start) == (side, side)]
        full = full[len(full) // 2 : len(full) // 2 + tiles + 1]  # from the middle of the tissue
        segment_slide_tile(reader, full[0], segmenter, stains, plan=plan)  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        for window in full[1:]:
            segment_slide_tile(reader, window, segmenter, stains, plan=plan)
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    seconds = {}
    for step, name in STEPS.items():
        file, function = name.split(":")
        total = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file) and fn == function)
        seconds[step] = round(total / (len(full) - 1), 3)
    return seconds


def table(results: dict[str, object]) -> str:
    """The book's table of a run of this benchmark (``slide.md``)."""
    slide = results["slide"]
    lines = [f"Slide: {slide['side']}×{slide['side']} pixels, {slide['tissue_megapixels']:.1f} tissue megapixels "
             f"({slide['tiles_laid']} MoNuSeg test tiles, {slide['gap']} pixels of glass between them), "
             f"{slide['machine']}; {results['measured']}.", "",
             "| run | wall (s) | tissue Mpx/s | peak RSS (MB) | nuclei | against one by one | ... with the slide's stains |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    expected, same_stains = results["one_by_one"]["expected_nuclei"], results["one_by_one"]["expected_with_slide_stains"]
    for run in results["runs"]:
        lines.append(f"| {run['run']} | {run['wall_s']:.1f} | {run['tissue_mpx_per_s']:.2f} | {run['peak_rss_mb']:.0f} | "
                     f"{run['nuclei']} | {100 * (run['nuclei'] / expected - 1):+.1f} % | "
                     f"{100 * (run['nuclei'] / same_stains - 1):+.1f} % |")
    lines += ["", "One by one: each image segmented alone with `ssimnet segment`, its stains measured on itself; "
              "with the slide's stains: each image segmented alone, normalised with the slide's one stain "
              "measurement, as the slide's tiles are.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="a MoNuSeg folder (test/images)")
    parser.add_argument("--side", type=int, default=12000)
    parser.add_argument("--gap", type=int, default=64, help="glass between the images, pixels (0: they abut, and "
                        "the nuclei their borders cut merge across the seams)")
    parser.add_argument("--profile-tiles", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    images = sorted((args.images / "test" / "images").iterdir())
    machine = f"{platform.processor() or platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        slide = root / "slide.tif"
        laid = build(images, args.side, slide, gap=args.gap)
        one, _ = _segment(images, root / "one", [])
        counts = {row["image"]: int(row["nuclei"]) for row in csv.DictReader(open(root / "one" / "summary.csv"))}
        expected = sum(counts[name] * n for name, n in laid.items())
        runs = []
        for name, extra in RUNS.items():
            wall, rss = _segment([slide], root / "out", extra)
            summary = json.loads((root / "out" / "slide_summary.json").read_text())
            tissue = summary["slide"]["tissue_megapixels"]
            runs.append({"run": name, "wall_s": round(wall, 1), "tissue_mpx_per_s": round(tissue / wall, 3),
                         "peak_rss_mb": round(rss), "nuclei": summary["nuclei"], "tissue_tiles": summary["slide"]["tissue_tiles"]})
            print(runs[-1], flush=True)
        results = {
            "measured": time.strftime("%Y-%m-%d"), "command": "ssimnet segment slide.tif --out out/",
            "slide": {"side": args.side, "gap": args.gap, "tiles_laid": sum(laid.values()), "tissue_megapixels": tissue,
                      "levels": [1, 4, 16], "mpp": 0.25, "machine": machine},
            "one_by_one": {"seconds": round(one, 1), "expected_nuclei": expected, "per_image": counts, "laid": laid,
                           "expected_with_slide_stains": with_slide_stains(slide, images, laid)},
            "runs": runs,
            "tile_profile_s": profile(slide, args.profile_tiles) if args.profile_tiles else {},
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "slide.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "slide.md").write_text(table(results))
    print(table(results))
    print(json.dumps(results["tile_profile_s"], indent=1))


if __name__ == "__main__":
    main()
