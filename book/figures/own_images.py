"""The pictures of the page "Use it on your own images": what ``ssimnet segment`` writes, drawn from its files.

    python book/figures/own_images.py [CHECKPOINT] --monuseg ../shared/data/monuseg --tnbc ../shared/data/tnbc \
        [--about "how CHECKPOINT was trained"]

It runs ``ssimnet segment`` as a user does (a fresh process, the given
network or, by default, the shipped one, the tool's defaults otherwise) on one MoNuSeg test image and one
TNBC tile, then draws, from the files the command wrote and nothing else:

- ``own_images_outputs.jpg``: a crop of the MoNuSeg image, the same crop of
  ``<name>_overlay.png``, and the polygons of ``<name>_nuclei.geojson``
  filled by their ``area`` measurement, as QuPath's measurement maps show
  imported detections;
- ``own_images_tnbc.jpg``: the TNBC tile (another lab and organ, never used
  for a choice) and its overlay;
- ``own_images.json``: the provenance (network hash, images, commit, command).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from ssimnet.book.publish import file_digest  # noqa: E402
from ssimnet.book.results import provenance  # noqa: E402
from ssimnet.config import DEFAULT_SEED, get_profile  # noqa: E402
from ssimnet.data import read_image, read_label  # noqa: E402
from ssimnet.tool.shipped import read_card  # noqa: E402
from ssimnet.tool.viz import crowded_window  # noqa: E402

HERE = Path(__file__).resolve().parent
MONUSEG_IMAGE = "test/images/TCGA-2Z-A9J9-01A-01-TS1.png"
TNBC_IMAGE = "test/images/01_1.png"
CROP = 320
DPI = 100
JPEG_QUALITY = 85


def segment(images: list[Path], out: Path, checkpoint: str) -> list[str]:
    """Run the command a user runs (with the shipped network when `checkpoint` is empty); returns it."""
    command = [sys.executable, "-m", "ssimnet.cli", "segment", *map(str, images), "--out", str(out),
               *(["--model", checkpoint] if checkpoint else []), "--quiet"]
    subprocess.run(command, check=True)
    return command


def polygons(geojson: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Each nucleus's outer rings as (N, 2) x, y arrays, and the nucleus's area measurement per ring."""
    rings, areas = [], []
    for feature in json.loads(geojson.read_text())["features"]:
        geometry = feature["geometry"]
        parts = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        for part in parts:
            rings.append(np.asarray(part[0], dtype=float))
            areas.append(feature["properties"]["measurements"]["area"])
    return rings, np.asarray(areas)


def outputs_figure(image: np.ndarray, overlay: np.ndarray, label: np.ndarray, geojson: Path, path: Path) -> None:
    rows, cols = crowded_window(label, CROP)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3), dpi=DPI)
    axes[0].imshow(image[rows, cols])
    axes[0].set_title("input (crop)")
    axes[1].imshow(overlay[rows, cols])
    axes[1].set_title("<name>_overlay.png")
    rings, areas = polygons(geojson)
    shifted = [ring - [cols.start, rows.start] for ring in rings]  # QuPath pixel corners -> the crop's axes
    axes[2].imshow(image[rows, cols], alpha=0.5)
    patches = PolyCollection([r - 0.5 for r in shifted], array=areas, cmap="viridis", edgecolors="k", linewidths=0.4)
    axes[2].add_collection(patches)
    axes[2].set_xlim(-0.5, CROP - 0.5)
    axes[2].set_ylim(CROP - 0.5, -0.5)
    axes[2].set_title("<name>_nuclei.geojson, by area")
    fig.colorbar(patches, ax=axes[2], fraction=0.046, pad=0.02, label="area (pixels)")
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, pil_kwargs={"quality": JPEG_QUALITY})
    plt.close(fig)


def tnbc_figure(image: np.ndarray, overlay: np.ndarray, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2), dpi=DPI)
    for ax, picture, title in zip(axes, (image, overlay), ("TNBC tile", "<name>_overlay.png")):
        ax.imshow(picture)
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, pil_kwargs={"quality": JPEG_QUALITY})
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="", help="default: the network shipped in the package")
    parser.add_argument("--monuseg", required=True)
    parser.add_argument("--tnbc", required=True)
    parser.add_argument("--about", default="", help="how the network was trained, for the provenance")
    parser.add_argument("--out", default=str(HERE))
    args = parser.parse_args(argv)
    images = [Path(args.monuseg) / MONUSEG_IMAGE, Path(args.tnbc) / TNBC_IMAGE]
    target = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        command = segment(images, Path(tmp), args.checkpoint)
        named = [(read_image(i), read_image(Path(tmp) / f"{i.stem}_overlay.png"), Path(tmp) / i.stem) for i in images]
        (image, overlay, stem), (tnbc, tnbc_overlay, _) = named
        label = read_label(stem.with_name(f"{stem.name}_label.png"))
        outputs_figure(image, overlay, label, stem.with_name(f"{stem.name}_nuclei.geojson"), target / "own_images_outputs.jpg")
        tnbc_figure(tnbc, tnbc_overlay, target / "own_images_tnbc.jpg")
    if args.checkpoint:
        network = {"checkpoint": args.checkpoint, "sha256": file_digest(args.checkpoint), "training": args.about}
    else:
        card = read_card()
        # what segment runs when it only predicts: the ONNX export of the checkpoint beside it
        network = {"checkpoint": f"shipped: ssimnet/weights/{card['name']}.onnx", "sha256": card["onnx_sha256"][:16],
                   "training": f"label-free, {card['trained_on']}, commit {card['commit']}"}
    record = {"network": network,
              "images": [str(i) for i in images], "command": " ".join(["ssimnet segment", *command[4:]]),
              "run": provenance(get_profile("cpu"), data_dir=args.monuseg, seed=DEFAULT_SEED)}
    (target / "own_images.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
