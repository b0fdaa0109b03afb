"""Where the nuclei of a slide differ from the same images segmented one by one (a diagnosis of
``bench_slide.py``'s count gap).

Usage::

    python benchmarks/slide_count_gap.py --images ../shared/data/monuseg [--side 4600] [--gap 64]

Builds a small slide as ``bench_slide.py`` does (a 3 x 3 mosaic of MoNuSeg test
images at ``--side`` 4600), segments it, and segments each laid image alone
with the slide's one stain measurement.  For every image it prints both
counts, and where the nuclei found alone but not on the slide (no slide
centroid within 3 pixels) lie: within 40 pixels of the laid image's own
border, or of a tile seam.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ssimnet.data import read_image
from ssimnet.tool.segmenter import Segmenter
from ssimnet.tool.slide import plan_slide, slide_stains
from ssimnet.tool.slide_files import segment_slide
from ssimnet.tool.slide_reader import open_slide

sys.path.insert(0, str(Path(__file__).parent))
from bench_slide import build  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--side", type=int, default=4600)
    parser.add_argument("--gap", type=int, default=64)
    args = parser.parse_args()
    images = sorted((args.images / "test" / "images").iterdir())
    segmenter = Segmenter.pretrained()
    core = segmenter.settings.region_tile
    with tempfile.TemporaryDirectory() as tmp:
        slide = Path(tmp) / "slide.tif"
        build(images, args.side, slide, gap=args.gap)
        segment_slide(slide, Path(tmp), "slide", segmenter, key="diagnosis", workers=2)
        text = gzip.decompress((Path(tmp) / "slide_nuclei.csv.gz").read_bytes()).decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        with open_slide(slide) as reader:
            plan = plan_slide(reader, settings=segmenter.settings)
            stains = slide_stains(reader, plan, segmenter)
    found = np.array([[float(r["centroid_row"]), float(r["centroid_col"])] for r in rows])
    across = int(np.sqrt(args.side**2 / 2) // 1000)
    down, step = int(args.side**2 / 2 // 1e6 // across), 1000 + args.gap
    r0, c0 = (args.side - down * step + args.gap) // 2, (args.side - across * step + args.gap) // 2
    print("| image | alone, slide's stains | on the slide | missing on the slide | of which near the image's border "
          "| near a tile seam |\n|---|---:|---:|---:|---:|---:|")
    totals = np.zeros(5, int)
    for k in range(down * across):
        r, c = divmod(k, across)
        y0, x0 = r0 + r * step, c0 + c * step
        label = segmenter.segment_tile(read_image(images[k % len(images)]), stains)
        ids = np.unique(label)[1:]
        alone = np.asarray(ndi.center_of_mass(np.ones(label.shape), label, ids)).reshape(-1, 2) + (y0, x0)
        mine = ((found[:, 0] >= y0 - 32) & (found[:, 0] < y0 + 1032) & (found[:, 1] >= x0 - 32) & (found[:, 1] < x0 + 1032))
        missing = alone[cKDTree(found).query(alone)[0] > 3] - (y0, x0)
        border = ((missing < 40) | (missing > 960)).any(axis=1)
        seam = (np.minimum((missing + (y0, x0)) % core, core - (missing + (y0, x0)) % core) < 40).any(axis=1)
        counts = np.array([len(ids), mine.sum(), len(missing), border.sum(), (seam & ~border).sum()])
        totals += counts
        print(f"| {images[k % len(images)].stem} | " + " | ".join(map(str, counts)) + " |")
    print("| all | " + " | ".join(map(str, totals)) + " |")


if __name__ == "__main__":
    main()
