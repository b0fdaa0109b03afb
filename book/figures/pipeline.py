"""The landing page's picture of the method: one MoNuSeg training crop through every stage, drawn by the package.

    python book/figures/pipeline.py --monuseg ../shared/data/monuseg

Writes ``pipeline.jpg`` (the H&E crop; the hematoxylin image ``I^T`` of
Eq. 2; the candidates ``P`` of Eq. 3; the soft labels of Eq. 4; the Voronoi
labels; the nuclei ``ssimnet segment``'s shipped network finds) and
``pipeline.json`` (image, crop, commit).  The pseudo labels are computed on
the whole image with the ``cpu`` profile's settings and seed 0, then cropped;
no annotation is read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from ssimnet.book.results import provenance  # noqa: E402
from ssimnet.config import DEFAULT_SEED, get_profile  # noqa: E402
from ssimnet.data import read_image  # noqa: E402
from ssimnet.pseudo.labels import pseudo_labels  # noqa: E402
from ssimnet.tool.segmenter import Segmenter  # noqa: E402
from ssimnet.tool.viz import VORONOI_COLOURS, crowded_window  # noqa: E402

HERE = Path(__file__).resolve().parent
IMAGE = "train/images/TCGA-18-5592-01Z-00-DX1.png"
CROP = 256
DPI = 100
JPEG_QUALITY = 85


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monuseg", required=True, type=Path)
    args = parser.parse_args()
    profile = get_profile("cpu")
    image = read_image(args.monuseg / IMAGE)
    labels = pseudo_labels(image, profile.pseudo, seed=DEFAULT_SEED)
    result = Segmenter.pretrained().segment(image)
    window = crowded_window(result.labels, CROP)
    outlined = image[window].copy()
    outlined[find_boundaries(result.labels[window], mode="inner")] = (0, 255, 0)
    panels = [
        ("H&E image", image[window], {}),
        ("hematoxylin $I^T$ (Eq. 2)", labels.hematoxylin[window], {}),
        ("candidates $P$ (Eq. 3)", labels.candidates[window], {"cmap": "gray"}),
        ("soft labels (Eq. 4)", labels.soft[window], {"cmap": "magma", "vmin": 0, "vmax": 1}),
        ("Voronoi labels", labels.voronoi[window], {"cmap": ListedColormap(VORONOI_COLOURS),
                                     "vmin": 0, "vmax": 2, "interpolation": "nearest"}),
        ("nuclei, shipped network", outlined, {}),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(8.4, 6.4), dpi=DPI)  # two rows: titles stay readable at column width
    for ax, (title, picture, style) in zip(axes.flat, panels):
        ax.imshow(picture, **style)
        ax.set_title(title, fontsize=12)
        ax.axis("off")
    fig.tight_layout(pad=0.4, h_pad=1.5)
    fig.savefig(HERE / "pipeline.jpg", pil_kwargs={"quality": JPEG_QUALITY})
    record = {"image": IMAGE, "crop": {"row": window[0].start, "col": window[1].start, "size": CROP}, "profile": "cpu",
              "seed": DEFAULT_SEED, "network": "shipped", "run": provenance(profile, data_dir=str(args.monuseg),
                                                                            seed=DEFAULT_SEED)}
    (HERE / "pipeline.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
