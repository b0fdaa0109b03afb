"""Datasets in the uniform layout of :mod:`ssimnet.data` from other sources.

- :func:`convert_monuseg` and :func:`convert_cpm17` convert the official
  MoNuSeg 2018 and CPM17 downloads (MoNuSeg's polygons are rasterised by
  :func:`polygons_to_label`);
- :func:`write_synthetic_dataset` draws the synthetic H&E dataset, and
  :func:`resolve_dataset` gives a run its dataset: the one asked for, else the
  synthetic one.

A conversion publishes its files only once all inputs were read, so a bad
input leaves no partial dataset behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from skimage.draw import polygon as draw_polygon
from skimage.segmentation import relabel_sequential

from .config import SyntheticConfig
from .data import IMAGE_SUFFIXES, SPLITS, DataError, as_label, atomic_path, read_image, write_image, write_label

__all__ = [
    "polygons_to_label",
    "read_monuseg_xml",
    "convert_monuseg",
    "convert_cpm17",
    "write_synthetic_dataset",
    "resolve_dataset",
    "is_synthetic",
]


@contextlib.contextmanager
def _staged_dataset(dst: Path) -> Iterator[Path]:
    """Write a dataset into a staging folder beside `dst`; move its files into `dst` only if all succeeded."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.staging-", dir=dst.parent))
    try:
        yield staging
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = dst / file.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_pair(root: Path, split: str, name: str, image: np.ndarray, label: np.ndarray) -> None:
    write_image(root / split / "images" / f"{name}.png", image)
    write_label(root / split / "labels" / f"{name}.png", relabel_sequential(label)[0])


# --------------------------------------------------------------------------- raw formats


def polygons_to_label(polygons: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise polygons into an instance map, numbered 1..N in order.

    A later polygon overwrites an earlier one where they overlap; polygons that
    cover no pixel (degenerate or outside the image) are dropped and the
    numbering stays consecutive.

    Parameters
    ----------
    polygons : list of (K, 2) arrays
        Vertex ``(row, col)`` coordinates, 0-based.
    shape : tuple of int

    Examples
    --------
    >>> square = np.array([[1, 1], [1, 3], [3, 3], [3, 1]])
    >>> polygons_to_label([square], (5, 5))
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]], dtype=int32)
    """
    label = np.zeros(shape, dtype=np.int32)
    for i, vertices in enumerate(polygons, start=1):
        vertices = np.asarray(vertices, dtype=np.float64)
        rr, cc = draw_polygon(vertices[:, 0], vertices[:, 1], shape=shape)
        label[rr, cc] = i
    return relabel_sequential(label)[0].astype(np.int32)


def read_monuseg_xml(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Read the nucleus polygons of a MoNuSeg annotation file.

    MoNuSeg's XML (Aperio ImageScope) lists ``Annotation/Regions/Region/
    Vertices/Vertex`` elements with ``X`` (column) and ``Y`` (row) attributes.
    The coordinates are 1-based -- the organisers rasterised them with MATLAB's
    ``poly2mask`` -- so 1 is subtracted here.

    Returns
    -------
    list of (K, 2) float arrays of 0-based ``(row, col)`` vertices, in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise DataError(path, f"not a valid XML file ({exc})") from None
    polygons = []
    for region in tree.iter("Region"):
        try:
            xy = [(float(v.attrib["Y"]), float(v.attrib["X"])) for v in region.iter("Vertex")]
        except (KeyError, ValueError):
            raise DataError(path, f"region {region.attrib.get('Id', '?')} has a vertex without numeric X and Y") from None
        if len(xy) >= 3:
            polygons.append(np.asarray(xy) - 1.0)
    if not polygons:
        raise DataError(path, "no annotated regions found")
    return polygons


def _monuseg_label(xml: Path, shape: tuple[int, int]) -> np.ndarray:
    """The instance map of a MoNuSeg annotation file on an image of `shape`."""
    polygons = read_monuseg_xml(xml)
    label = polygons_to_label(polygons, shape)
    if not label.any():
        raise DataError(xml, f"none of its {len(polygons)} annotated regions lies inside the "
                             f"{shape[0]}x{shape[1]} image")
    return label


def _split_folders(src: Path, names: dict[str, tuple[str, ...]], split: str | None) -> list[tuple[str, Path]]:
    """Find which split each sub-folder of a raw download holds."""
    if not src.is_dir():
        raise DataError(src, "folder not found")
    found = [(s, src / n) for s, options in names.items() for n in options if (src / n).is_dir()]
    if found:
        return found
    return [(split or "train", src)]


def _find_monuseg_pairs(folder: Path) -> list[tuple[Path, Path]]:
    images_dir = folder / "Tissue Images" if (folder / "Tissue Images").is_dir() else folder
    xml_dir = folder / "Annotations" if (folder / "Annotations").is_dir() else folder
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".tif", ".tiff", ".png"))
    if not images:
        raise DataError(images_dir, "no .tif images found (expected 'Tissue Images/*.tif' or *.tif beside *.xml)")
    pairs = []
    for image in images:
        xml = xml_dir / f"{image.stem}.xml"
        if not xml.is_file():
            raise DataError(xml, f"annotation not found for image {image.name}")
        pairs.append((image, xml))
    return pairs


def _convert(
    dst: str | os.PathLike[str],
    jobs: list[tuple[str, str, Path, Callable[[tuple[int, int]], np.ndarray]]],
) -> list[Path]:
    """Read every (split, name, image, label-reader) job, then publish all files under `dst`."""
    dst = Path(dst)
    with _staged_dataset(dst) as staging:
        for split, name, image_path, read_lab in jobs:
            image = read_image(image_path)
            label = read_lab(image.shape[:2])
            if label.shape != image.shape[:2]:
                raise DataError(image_path, f"size mismatch: image is {image.shape[:2]}, its label {label.shape}")
            _write_pair(staging, split, name, image, label)
    return sorted({dst / split for split, *_ in jobs})


def convert_monuseg(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, split: str | None = None
) -> list[Path]:
    """Convert the official MoNuSeg 2018 download into the uniform layout.

    `src` is either the folder holding ``MoNuSeg 2018 Training Data`` and/or
    ``MoNuSegTestData`` (both splits are converted), or one of those folders
    (written to `split`, default ``"train"``).  The training download keeps
    ``Tissue Images/*.tif`` and ``Annotations/*.xml``; the test download keeps
    ``*.tif`` and ``*.xml`` side by side.  Polygons are rasterised with
    :func:`polygons_to_label` (later regions overwrite earlier ones).

    Returns
    -------
    list of Path
        The split folders written.
    """
    folders = _split_folders(
        Path(src),
        {"train": ("MoNuSeg 2018 Training Data", "MoNuSegTrainingData"), "test": ("MoNuSegTestData", "MoNuSeg 2018 Test Data")},
        split,
    )
    jobs = [
        (s, image.stem, image, lambda shape, xml=xml: _monuseg_label(xml, shape))
        for s, folder in folders
        for image, xml in _find_monuseg_pairs(folder)
    ]
    return _convert(dst, jobs)


def _read_cpm17_mat(path: Path, shape: tuple[int, int]) -> np.ndarray:
    from scipy.io import loadmat

    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises several kinds for bad files
        raise DataError(path, f"cannot read MATLAB file ({exc})") from None
    if "inst_map" not in mat:
        raise DataError(path, "no 'inst_map' variable in the MATLAB file")
    return as_label(path, np.asarray(mat["inst_map"]))


def convert_cpm17(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, split: str | None = None) -> list[Path]:
    """Convert a CPM17 download (``Images/*.png`` + ``Labels/*.mat`` with ``inst_map``).

    `src` is either the folder holding ``train/`` and/or ``test/`` (each with
    ``Images`` and ``Labels``), or one such folder (written to `split`,
    default ``"train"``).

    Returns
    -------
    list of Path
        The split folders written.
    """
    folders = _split_folders(Path(src), {"train": ("train",), "test": ("test",)}, split)
    jobs = []
    for s, folder in folders:
        images_dir = folder / "Images"
        if not images_dir.is_dir():
            raise DataError(images_dir, "folder not found (expected Images/ and Labels/)")
        images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(images_dir, "no images found")
        for image in images:
            mat = folder / "Labels" / f"{image.stem}.mat"
            jobs.append((s, image.stem, image, lambda shape, mat=mat: _read_cpm17_mat(mat, shape)))
    return _convert(dst, jobs)


# --------------------------------------------------------------------------- synthetic


def write_synthetic_dataset(dst: str | os.PathLike[str], config: SyntheticConfig) -> Path:
    """Draw the synthetic dataset described by `config` and write it under `dst`.

    Tile ``i`` of split ``s`` is drawn from the seed sequence
    ``(config.seed, index of s, i)``; a ``manifest.csv`` names the organ
    ``synthetic``.  Returns `dst`.
    """
    from .synthetic import synthetic_tile

    dst = Path(dst)
    rows = []
    with _staged_dataset(dst) as staging:
        for split_index, (split, count) in enumerate((("train", config.n_train), ("test", config.n_test))):
            for i in range(count):
                name = f"synthetic-{split}-{i:03d}"
                tile = synthetic_tile(config.shape, seed=np.random.SeedSequence([config.seed, split_index, i]))
                _write_pair(staging, split, name, tile.image, tile.label)
                rows.append(f"{name},{split},synthetic,{config.shape[0]},{config.shape[1]},{int(tile.label.max())}\n")
        with open(staging / "manifest.csv", "w") as f:
            f.write("name,split,organ,height,width,n_nuclei\n")
            f.writelines(rows)
    return dst


def resolve_dataset(
    data_dir: str | os.PathLike[str] | None, run_dir: str | os.PathLike[str], config: SyntheticConfig
) -> Path:
    """The dataset a run uses: `data_dir` if given, else synthetic data under ``run_dir/data``.

    The synthetic data is drawn once and reused while `config` stays the same
    (it is recorded in ``run_dir/data/synthetic.json``).

    Raises
    ------
    DataError
        If `data_dir` is given but holds neither ``train/images`` nor ``test/images``.
    """
    if data_dir:
        path = Path(data_dir).resolve()
        if not any((path / split / "images").is_dir() for split in SPLITS):
            raise DataError(path, "not a dataset in the uniform layout (no train/images or test/images)")
        return path
    path = (Path(run_dir) / "data").resolve()
    stamp = path / "synthetic.json"
    wanted = json.dumps(dataclasses.asdict(config))
    if not stamp.is_file() or stamp.read_text() != wanted:
        write_synthetic_dataset(path, config)
        with atomic_path(stamp) as tmp:
            tmp.write_text(wanted)
    return path


def is_synthetic(root: str | os.PathLike[str]) -> bool:
    """Whether `root` holds the synthetic dataset drawn by :func:`resolve_dataset` (not real data)."""
    return (Path(root) / "synthetic.json").is_file()
