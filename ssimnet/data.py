"""Datasets on disk: the uniform layout, image and label I/O, input checks, atomic writes.

Every dataset the project reads is in one layout::

    <root>/<split>/images/<name>.png   8-bit RGB
    <root>/<split>/labels/<name>.png   16-bit instance map, 0 = background

with an optional ``<root>/manifest.csv`` whose ``name`` and ``organ`` columns
give each image's organ.  ``../shared/data/monuseg`` is in this layout; the
official MoNuSeg and CPM17 downloads are converted into it, and the synthetic
dataset written into it, by :mod:`ssimnet.datasets`.

Images are read by :func:`ssimnet.imread.read_image` (importable from here),
whose contract says what is accepted, converted and refused.  Every problem
with an input raises :class:`ssimnet.errors.DataError`, whose message is one
line that names the file; a batch that goes on past bad files collects them
in :class:`ssimnet.errors.DataErrors` (both importable from here).  Every
write is atomic (temporary file, then rename).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .config import MIN_IMAGE_RANGE, PNG_COMPRESSION
from .errors import DataError, DataErrors, InputWarning  # noqa: F401  (importable from here, as before)
from .imread import open_array, read_image

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "file_sha256",
    "file_digest",
    "Sample",
    "SPLITS",
    "IMAGE_SUFFIXES",
    "as_label",
    "list_samples",
    "read_label",
    "read_sample",
    "write_image",
    "write_label",
    "read_manifest",
    "check_image",
    "output_folder",
    "output_file",
    "write_table",
    "atomic_path",
    "nucleus_statistics",
]

SPLITS: tuple[str, ...] = ("train", "test")
#: File suffixes read as images.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_MAX_LABEL = np.iinfo(np.uint16).max
_UMASK = os.umask(0)
os.umask(_UMASK)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks of 1 MiB; raises OSError if it cannot be read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """:func:`file_sha256` of a file, first 16 hex digits: what keys results made from it."""
    return file_sha256(path)[:16]


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
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
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


def as_label(path: Path, array: np.ndarray) -> np.ndarray:
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
    return as_label(path, open_array(path))


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


def check_image(path: str | os.PathLike[str], image: np.ndarray, *, min_side: int = 0,
                min_range: float = MIN_IMAGE_RANGE, why: str = "") -> np.ndarray:
    """Return `image` if it can be segmented; else raise a :class:`DataError` naming `path`.

    An image is rejected when a side is below `min_side` pixels (the patch
    size, where the image is cut into patches; `why` says what needs them), or when it is
    blank: its grey levels (mean of R, G, B) span less than `min_range`
    between the 1st and 99th percentile -- all black, all white or one flat
    colour, with no tissue to segment.

    >>> check_image("x.png", np.full((8, 8, 3), 255, dtype=np.uint8))
    Traceback (most recent call last):
    ...
    ssimnet.errors.DataError: x.png: blank image (grey levels span 0 of 255): no tissue to segment
    """
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise DataError(path, f"image of {h}x{w} pixels is smaller than a {min_side}x{min_side} patch"
                              + (f"; {why}" if why else ""))
    step = max(1, int(np.ceil(np.sqrt(h * w / 4e6))))  # a large region is judged on a grid of at most 4 Mpixel
    sample = image[::step, ::step]
    grey = sample.reshape(-1, sample.shape[-1]).mean(1, dtype=np.float32)
    low, high = np.percentile(grey, [1, 99])
    if high - low < min_range:
        raise DataError(path, f"blank image (grey levels span {high - low:.0f} of 255): no tissue to segment")
    return image


def output_folder(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that files can be written in the folder `path`; returns it.

    Nothing is created: a missing folder is checked through its nearest
    existing parent, and is made by the first write.

    Raises
    ------
    DataError
        If `path` (or a parent of it) is a file, or the folder is not writable
        (read-only folder or file system).
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(existing, "output folder is an existing file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise DataError(path, f"output folder is not writable ({exc.strerror or exc})") from None
    return path


def output_file(path: str | os.PathLike[str]) -> Path:
    """Check that the file `path` can be written (its folder by :func:`output_folder`); returns it."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, "output file is an existing folder")
    output_folder(path.parent)
    return path


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
        Image.fromarray(image).save(tmp, format="PNG", compress_level=PNG_COMPRESSION)


def write_label(path: str | os.PathLike[str], label: np.ndarray) -> None:
    """Write an instance map as a 16-bit PNG atomically (ids must fit in 0..65535)."""
    label = np.asarray(label)
    if label.ndim != 2 or label.dtype.kind not in "iub":
        raise ValueError(f"expected a 2-D integer label map, got {label.shape} {label.dtype}")
    if label.size and (label.min() < 0 or label.max() > _MAX_LABEL):
        raise ValueError(f"label ids must lie in 0..{_MAX_LABEL} to be stored as a 16-bit PNG")
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(label.astype(np.uint16)).save(tmp, format="PNG", compress_level=PNG_COMPRESSION)


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
