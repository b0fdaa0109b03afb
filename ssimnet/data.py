"""Datasets on disk: the uniform layout, image and label I/O, raw-format readers.

Every dataset the project reads is in one layout::

    <root>/<split>/images/<name>.png   8-bit RGB
    <root>/<split>/labels/<name>.png   16-bit instance map, 0 = background

with an optional ``<root>/manifest.csv`` whose ``name`` and ``organ`` columns
give each image's organ.  ``../shared/data/monuseg`` is in this layout; the
official MoNuSeg and CPM17 downloads are converted into it by
:func:`convert_monuseg` and :func:`convert_cpm17`, and the synthetic dataset
is written into it by :func:`write_synthetic_dataset`.

Every problem with an input raises :class:`DataError`, whose message is one
line that names the file.  Every write is atomic (temporary file, then
rename), and a conversion publishes its files only once all inputs were read.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError
from skimage.draw import polygon as draw_polygon
from skimage.segmentation import relabel_sequential

from .config import SyntheticConfig

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DataError",
    "Sample",
    "SPLITS",
    "list_samples",
    "read_image",
    "read_label",
    "read_sample",
    "write_image",
    "write_label",
    "read_manifest",
    "is_synthetic",
    "polygons_to_label",
    "read_monuseg_xml",
    "convert_monuseg",
    "convert_cpm17",
    "write_synthetic_dataset",
    "resolve_dataset",
    "write_table",
    "atomic_path",
    "nucleus_statistics",
]

SPLITS: tuple[str, ...] = ("train", "test")
_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_MAX_LABEL = np.iinfo(np.uint16).max
_UMASK = os.umask(0)
os.umask(_UMASK)


class DataError(ValueError):
    """A problem with an input file or folder; the message names it."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Sample:
    """One image of a dataset in the uniform layout (``label_path`` is None when unlabelled)."""

    name: str
    split: str
    image_path: Path
    label_path: Path | None


# --------------------------------------------------------------------------- layout


def list_samples(root: str | os.PathLike[str], split: str, *, labels: bool = True) -> list[Sample]:
    """List the images of one split, sorted by name.

    Parameters
    ----------
    root : path
        Dataset root (the folder holding ``train/`` and ``test/``).
    split : str
        ``"train"`` or ``"test"`` (any sub-folder name is accepted).
    labels : bool
        If True, every image must have a label of the same name; if False,
        labels are attached where present and never required.

    Raises
    ------
    DataError
        If the images folder is missing or empty, or a required label is missing.
    """
    images_dir = Path(root) / split / "images"
    if not images_dir.is_dir():
        raise DataError(images_dir, "folder not found (expected <root>/<split>/images/)")
    labels_dir = Path(root) / split / "labels"
    samples = []
    for path in sorted(images_dir.iterdir()):
        if path.suffix.lower() not in _IMAGE_SUFFIXES or path.name.startswith("."):
            continue
        label_path = labels_dir / f"{path.stem}.png"
        if not label_path.is_file():
            if labels:
                raise DataError(label_path, f"label not found for image {path.name}")
            label_path = None
        samples.append(Sample(name=path.stem, split=split, image_path=path, label_path=label_path))
    if not samples:
        raise DataError(images_dir, "no images found")
    return samples


def read_manifest(root: str | os.PathLike[str]) -> dict[str, str]:
    """Map image name to organ from ``<root>/manifest.csv``; empty if there is none."""
    path = Path(root) / "manifest.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"name", "organ"} <= set(reader.fieldnames):
            raise DataError(path, "manifest needs the columns 'name' and 'organ'")
        return {row["name"]: row["organ"] for row in reader}


# --------------------------------------------------------------------------- reading


def _check_tiff_depth(path: Path) -> None:
    """Reject TIFFs of more than 8 bits per sample (Pillow would silently reduce some)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            bits = tif.pages[0].bitspersample
    except Exception as exc:  # tifffile raises many kinds
        raise DataError(path, f"cannot read TIFF ({exc})") from None
    if bits not in (1, 8):
        raise DataError(path, f"expected 8 bits per channel, got {bits}; convert it to 8-bit RGB first")


def _open_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "file not found")
    is_tiff = path.suffix.lower() in (".tif", ".tiff")
    if is_tiff:
        _check_tiff_depth(path)
    try:
        with Image.open(path) as im:
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            return np.array(im)
    except (UnidentifiedImageError, OSError) as exc:
        if not is_tiff:
            raise DataError(path, f"cannot read image ({exc})") from None
    import tifffile  # TIFF variants Pillow cannot decode (tiled, float, many samples)

    try:
        return tifffile.imread(path)
    except Exception as exc:  # tifffile raises many kinds
        raise DataError(path, f"cannot read TIFF ({exc})") from None


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an 8-bit RGB image as an ``(H, W, 3)`` uint8 array.

    An alpha channel is dropped.  Grayscale, 16-bit and other non-RGB images
    are rejected: silently converting them would change what the stain
    separation sees.

    Raises
    ------
    DataError
        If the file is missing, unreadable, or not an 8-bit RGB(A) image.
    """
    path = Path(path)
    array = _open_array(path)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 1):
        raise DataError(path, "expected an RGB image, got a single-channel (grayscale) image")
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise DataError(path, f"expected an RGB image, got an array of shape {array.shape}")
    if array.dtype != np.uint8:
        raise DataError(path, f"expected 8 bits per channel, got {array.dtype}; convert it to 8-bit RGB first")
    return np.ascontiguousarray(array[..., :3])


def _as_label(path: Path, array: np.ndarray) -> np.ndarray:
    """Validate an instance map and return it as int32."""
    if array.ndim != 2:
        raise DataError(path, f"label is not an integer map: expected one channel, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise DataError(path, "label is not an integer map: it has fractional or non-finite values")
    elif array.dtype.kind not in "iub":
        raise DataError(path, f"label is not an integer map: dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise DataError(path, "label is not an integer map: it has negative ids")
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise DataError(path, "label has ids beyond the int32 range")
    return array.astype(np.int32)


def read_label(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an instance label map as ``(H, W)`` int32 (0 = background).

    Ids need not be consecutive.

    Raises
    ------
    DataError
        If the file is missing, unreadable, or not a single-channel integer map.
    """
    path = Path(path)
    return _as_label(path, _open_array(path))


def read_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the image and (if any) label of a sample, checking that their sizes agree."""
    image = read_image(sample.image_path)
    if sample.label_path is None:
        return image, None
    label = read_label(sample.label_path)
    if label.shape != image.shape[:2]:
        raise DataError(
            sample.label_path,
            f"size mismatch: label is {label.shape[0]}x{label.shape[1]} but image "
            f"{sample.image_path.name} is {image.shape[0]}x{image.shape[1]}",
        )
    return image, label


# --------------------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an ``(H, W, 3)`` uint8 image (PNG) atomically."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def write_label(path: str | os.PathLike[str], label: np.ndarray) -> None:
    """Write an instance map as a 16-bit PNG atomically (ids must fit in 0..65535)."""
    label = np.asarray(label)
    if label.ndim != 2 or label.dtype.kind not in "iub":
        raise ValueError(f"expected a 2-D integer label map, got {label.shape} {label.dtype}")
    if label.size and (label.min() < 0 or label.max() > _MAX_LABEL):
        raise ValueError(f"label ids must lie in 0..{_MAX_LABEL} to be stored as a 16-bit PNG")
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(label.astype(np.uint16)).save(tmp, format="PNG")


@contextlib.contextmanager
def _staged_dataset(dst: Path) -> Iterator[Path]:
    """Write a dataset into a staging folder; move its files into `dst` only if all succeeded."""
    dst.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=dst))
    try:
        yield staging
        for file in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = dst / file.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_table(path: str | os.PathLike[str], rows: list[dict[str, object]], *, columns: list[str] | None = None) -> None:
    """Write `rows` (dicts with the same keys) as a CSV file, atomically.

    `columns` names the header when `rows` may be empty.
    """
    if not rows and not columns:
        raise ValueError("no rows to write and no columns given")
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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
        (s, image.stem, image, lambda shape, xml=xml: polygons_to_label(read_monuseg_xml(xml), shape))
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
    return _as_label(path, np.asarray(mat["inst_map"]))


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
        images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
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


# --------------------------------------------------------------------------- statistics


def nucleus_statistics(root: str | os.PathLike[str], splits: tuple[str, ...] = SPLITS) -> pd.DataFrame:
    """One row per ground-truth nucleus of a dataset: where it is and how big.

    Columns: ``split``, ``image``, ``organ`` (from the manifest, else
    ``"unknown"``), ``nucleus`` (its id), ``area`` (pixels) and
    ``diameter`` (equivalent-circle diameter, pixels).  Splits that are absent
    are skipped.  For describing a dataset only -- the method never reads labels.
    """
    import pandas as pd

    organs = read_manifest(root)
    frames = []
    for split in splits:
        if not (Path(root) / split / "images").is_dir():
            continue
        for sample in list_samples(root, split):
            _, label = read_sample(sample)
            area = np.bincount(label.ravel())
            ids = np.flatnonzero(area[1:]) + 1
            frames.append(
                pd.DataFrame(
                    {
                        "split": split,
                        "image": sample.name,
                        "organ": organs.get(sample.name, "unknown"),
                        "nucleus": ids,
                        "area": area[ids],
                        "diameter": np.sqrt(4 * area[ids] / np.pi),
                    }
                )
            )
    if not frames:
        raise DataError(Path(root), f"no split of {', '.join(splits)} found")
    return pd.concat(frames, ignore_index=True)
