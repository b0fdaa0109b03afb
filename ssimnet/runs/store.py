"""What a run keeps on disk: content keys, pseudo-label files and checkpoints.

Every stage of a run writes under one run directory, in a folder named by
:func:`stage_key` -- a short hash of everything that determines the stage's
result: its settings, the seed, a fingerprint of the code it runs
(:mod:`ssimnet.fingerprint`) and the *content* of the images (and, to score,
labels) it reads (:func:`split_digest`), never their file names.  A rerun with
the same inputs and code reuses the folder; other settings, other images or
changed code get another folder, so a stale result is never read back.

Pseudo labels are stored one ``.npz`` per image with the digest of the
image's pixels (:func:`save_pseudo_labels`); training state in a checkpoint
(:mod:`ssimnet.net.checkpoint`, whose functions are importable from here too).
Every write is atomic.

Examples
--------
>>> stage_key({"epochs": 10}, 0) == stage_key({"epochs": 10}, 0) != stage_key({"epochs": 11}, 0)
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import key_fields
from ..data import DataError, atomic_path, file_sha256, list_samples
from ..net.checkpoint import (  # noqa: F401  (a run's checkpoints; importable from here as before)
    INFERENCE_KEY,
    load_checkpoint,
    load_model,
    load_trainer,
    save_checkpoint,
    save_model,
    weights_digest,
)

# The pseudo-label and torch modules are imported by the functions that use them,
# so that a stage key (what ssimnet segment needs of this module) costs no import of them.
if TYPE_CHECKING:
    from ..pseudo.labels import PseudoLabels

__all__ = [
    "stage_key",
    "array_digest",
    "split_digest",
    "PseudoLabelSet",
    "save_pseudo_labels",
    "load_pseudo_labels",
    "stored_digest",
]

_PATCH_COLUMNS = ("row", "col", "n_components", "mean_hull_area", "mean_area", "usmi")


def stage_key(*parts: object, code: tuple[str, ...] = ()) -> str:
    """Short hash of `parts` (settings dataclasses by :func:`ssimnet.config.key_fields`) and of the code of the
    stages named in `code` (:func:`ssimnet.fingerprint.code_fingerprint`): a stage whose code changed gets a new key.

    >>> stage_key(1, code=("score",)) != stage_key(1)
    True
    """
    from ..fingerprint import code_fingerprint

    blob = json.dumps([key_fields(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True,
                      default=str)
    fingerprints = "".join(f" {stage}:{code_fingerprint(stage)}" for stage in code)
    return hashlib.sha256(f"{blob}{fingerprints}".encode()).hexdigest()[:12]


def array_digest(array: np.ndarray) -> str:
    """Hash of an array's bytes (e.g. an image's pixels).

    >>> array_digest(np.zeros(3, dtype=np.uint8)) == array_digest(np.zeros(3, dtype=np.uint8))
    True
    """
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None


def split_digest(data_dir: str | os.PathLike[str], split: str, *, labels: bool = False) -> str:
    """Hash of the bytes of every image of a split, in name order, and of their labels when `labels`.

    What a cached stage was made from: two datasets with the same file names
    but other pixels give other digests.  Labels are read as bytes only, to
    key the folders that hold scores.
    """
    samples = list_samples(data_dir, split, labels=labels)
    files = [s.image_path for s in samples] + ([s.label_path for s in samples] if labels else [])
    return stage_key([_file_digest(p) for p in files])


@dataclass(frozen=True)
class PseudoLabelSet:
    """The pseudo labels of one split, as stored.

    Attributes
    ----------
    directory : Path
        ``<run_dir>/pseudo/<split>/<key>``.
    split : str
    names : list of str
        Image names, sorted.
    images : list of Path
        The image files, in the same order.
    kept : list of (name, row, col)
        The purified patches, by ascending USMI.
    n_patches : int
        All patches of the split, before purification.
    patch_size : int
        Side of a patch in pixels.
    """

    directory: Path
    split: str
    names: list[str]
    images: list[Path]
    kept: list[tuple[str, int, int]]
    n_patches: int
    patch_size: int

    def path(self, name: str) -> Path:
        """The ``.npz`` file of one image."""
        return self.directory / f"{name}.npz"


def save_pseudo_labels(path: str | os.PathLike[str], result: PseudoLabels, *, image_digest: str = "") -> None:
    """Store one image's pseudo labels (every field of :class:`PseudoLabels`) as a compressed ``.npz``, atomically."""
    from ..pseudo.labels import PseudoLabels

    arrays = {f.name: getattr(result, f.name) for f in dataclasses.fields(PseudoLabels) if f.name != "patches"}
    patches = np.array([(*p.corner, p.n_components, p.mean_hull_area, p.mean_area, p.usmi) for p in result.patches],
                       dtype=np.float64).reshape(-1, len(_PATCH_COLUMNS))
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays, patches=patches, image_digest=image_digest)


def load_pseudo_labels(path: str | os.PathLike[str]) -> PseudoLabels:
    """Read what :func:`save_pseudo_labels` wrote.

    Raises
    ------
    DataError
        If the file is missing or is not a pseudo-label file.
    """
    from ..pseudo.labels import PatchStats, PseudoLabels

    path = Path(path)
    try:
        with np.load(path) as z:
            fields = {f.name: z[f.name] for f in dataclasses.fields(PseudoLabels) if f.name != "patches"}
            fields["stain_fallback"] = bool(fields["stain_fallback"])
            patches = [PatchStats((int(r), int(c)), int(n), float(h), float(a), float(u))
                       for r, c, n, h, a, u in z["patches"]]
            return PseudoLabels(**fields, patches=patches)
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise DataError(path, f"not a pseudo-label file ({exc})") from None


def stored_digest(path: str | os.PathLike[str]) -> str | None:
    """The image digest stored in a pseudo-label file, or None if there is no readable file."""
    try:
        with np.load(path) as z:
            return str(z["image_digest"])
    except (OSError, KeyError, ValueError, EOFError):
        return None
