"""A batch's inputs: files, folders and glob patterns found, named for their outputs, read and checked.

Output names derive from the inputs so that no output can land outside the
output folder (:func:`output_name`), and two inputs of one name get two
(:func:`unique_names`); the output folder itself is never an
input; patterns do not follow symbolic links to folders.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import IMAGE_SUFFIXES, check_image, read_image
from ..errors import DataError
from .slide_reader import SLIDE_SUFFIXES

__all__ = ["Job", "output_name", "unique_names", "find_images", "read_images"]


@dataclass(frozen=True)
class Job:
    """One image of a batch: where it is and the output name (its path relative to its input, no suffix)."""

    path: Path
    name: str


def output_name(name: str) -> str:
    """`name` (a path relative to an input, without suffix) made safe as an output name under ``--out``:
    every part that is empty, ``.`` or ``..`` (or starts with a dot) becomes a plain name, so that no output
    can land outside the output folder or be hidden, and control characters (a newline would split a line
    of the summary or of a message) become ``_``.

    >>> output_name(".."), output_name("a/../b"), output_name("sub/x"), output_name("a\\nb")
    ('_', 'a/_/b', 'sub/x', 'a_b')
    """
    name = _CONTROL.sub("_", name.replace("\\", "/"))
    return "/".join(part.lstrip(".") or "_" for part in name.split("/"))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unique_names(jobs: Sequence[Job]) -> list[Job]:
    """`jobs` with each file once, and a file whose output name an earlier file already has renamed
    ``<name>-2`` (``-3``, ...), so that no two images write the same outputs.

    >>> [j.name for j in unique_names([Job(Path("x/a.png"), "a"), Job(Path("y/a.png"), "a"),
    ...                                Job(Path("x/a.png"), "a")])]
    ['a', 'a-2']
    """
    kept: dict[Path, Job] = {}
    taken = {job.name for job in jobs}
    used: set[str] = set()
    for job in jobs:
        if job.path in kept:
            continue
        name = job.name
        if name in used:
            n = 2
            while f"{job.name}-{n}" in taken or f"{job.name}-{n}" in used:
                n += 1
            name = f"{job.name}-{n}"
        used.add(name)
        kept[job.path] = Job(job.path, name)
    return list(kept.values())


def _glob(pattern: str) -> list[Path]:
    """The files `pattern` matches, without following symbolic links to folders (a link loop would never
    end) and without hidden files, as :func:`glob.glob` skips them."""
    parts = Path(pattern).parts
    first = next(k for k, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first]) if first else Path()
    found = (p for p in root.glob(str(Path(*parts[first:]))) if p.is_file())
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


_SUFFIXES = IMAGE_SUFFIXES + SLIDE_SUFFIXES


def find_images(inputs: Sequence[str | os.PathLike[str]], *, exclude: Path | None = None) -> list[Job]:
    """The images named by `inputs`: files, folders (searched recursively) and glob patterns.

    Files in a folder keep their sub-folders in their output names; a file
    named directly, or found by a pattern, is named by its stem; each name is
    made safe (:func:`output_name`) and unique (:func:`unique_names`).  Files under `exclude` (the output
    folder) are not inputs, so that a rerun never reads its own outputs.

    Raises
    ------
    DataError
        If an input matches nothing or a folder holds no image.
    """
    skip = exclude.resolve() if exclude is not None else None

    def wanted(p: Path) -> bool:
        return skip is None or not p.resolve().is_relative_to(skip)

    jobs: list[Job] = []
    for item in map(str, inputs):
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts) and wanted(p))
            if not found:
                raise DataError(path, f"is a folder with no images ({', '.join(_SUFFIXES)}) in it")
            jobs += [Job(p, output_name(p.relative_to(path).with_suffix("").as_posix())) for p in found]
        elif path.exists() or not glob.has_magic(item):
            jobs.append(Job(path, output_name(path.stem)))  # a missing file is reported when it is read
        else:
            matches = [p for p in _glob(item) if wanted(p)]
            if not matches:
                raise DataError(path, "no file matches this pattern")
            jobs += [Job(p, output_name(p.stem)) for p in matches]
    return unique_names(jobs)


def read_images(jobs: Sequence[Job], *, min_side: int, why: str) -> tuple[dict[str, np.ndarray], list[DataError]]:
    """Every job's image, read and checked (:func:`ssimnet.data.check_image`), by output name; and the bad ones' errors."""
    images, errors = {}, []
    for job in jobs:
        try:
            images[job.name] = check_image(job.path, read_image(job.path), min_side=min_side, why=why)
        except DataError as exc:
            errors.append(exc)
    return images, errors
