"""How much of ``bench_slide.py``'s count gap one stain measurement per slide makes, for several mosaics.

Usage::

    python benchmarks/slide_stain_gap.py --images ../shared/data/monuseg [--split train] [--side 12000]

Builds the benchmark's slide (``bench_slide.build``: the split's images laid
in turn on glass, 64 pixels apart) from the *training* images by default, so
that nothing is chosen on the test images.  Each image is segmented alone
with its own stains (``Segmenter.segment``, as ``ssimnet segment`` does), then
with the slide's one stain measurement (``slide_stains``) made on mosaics of
``SlideConfig.stain_crops`` crops of ``stain_crop_side`` pixels.  Prints, for
each mosaic, the seconds of the measurement and the nuclei the laid images
hold against their count alone: the gap that the stains alone make, with no
seam or tile in it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ssimnet.config import SlideConfig
from ssimnet.data import read_image
from ssimnet.tool.segmenter import Segmenter
from ssimnet.tool.slide import plan_slide, slide_stains
from ssimnet.tool.slide_reader import open_slide

sys.path.insert(0, str(Path(__file__).parent))
from bench_slide import build  # noqa: E402

MOSAICS = ((9, 384), (16, 384), (25, 256), (36, 256), (64, 192), (64, 256))  # (crops, side); the default first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--side", type=int, default=12000)
    args = parser.parse_args()
    paths = sorted((args.images / args.split / "images").iterdir())
    segmenter = Segmenter.pretrained()
    images = {p.stem: read_image(p)[:1000, :1000] for p in paths}
    alone = {k: len(np.unique(segmenter.segment(v).label)) - 1 for k, v in images.items()}
    with tempfile.TemporaryDirectory() as tmp:
        slide = Path(tmp) / "slide.tif"
        laid = build(paths, args.side, slide, gap=64)
        expected = sum(alone[k] * n for k, n in laid.items())
        print(f"{sum(laid.values())} images laid ({args.split}); alone, each with its own stains: {expected} nuclei\n")
        print("| crops | side (px) | measurement (s) | nuclei with the slide's stains | against alone |\n|---:|---:|---:|---:|---:|")
        with open_slide(slide) as reader:
            plan = plan_slide(reader, settings=segmenter.settings)
            for crops, side in MOSAICS:
                start = time.perf_counter()
                stains = slide_stains(reader, plan, segmenter, slide=SlideConfig(stain_crops=crops, stain_crop_side=side))
                seconds = time.perf_counter() - start
                counts = {k: len(np.unique(segmenter.segment_tile(v, stains))) - 1 for k, v in images.items()}
                got = sum(counts[k] * n for k, n in laid.items())
                print(f"| {crops} | {side} | {seconds:.1f} | {got} | {100 * (got / expected - 1):+.1f} % |", flush=True)


if __name__ == "__main__":
    main()
