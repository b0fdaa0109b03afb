"""Oracle diagnostics of the reproduction gap: ground truth in place of one pseudo-label stage's output.

**Diagnostics only.**  Everything here reads the training images' ground
truth, to measure how much of the gap between the paper's numbers and ours each
stage of the label pipeline accounts for.  No default of the method or the
tool comes from it, and every row it produces is named an oracle.

Each oracle replaces one stage's output of the training images' label-free
pseudo labels (:func:`ssimnet.pseudo.labels.pseudo_labels`) and keeps the rest
as the reproduction computes it (:func:`oracle_labels`):

``candidates``
    the ground-truth foreground as the candidate map ``P``; softening (Eq. 4),
    USMI and the Voronoi labels follow from it as usual, so touching nuclei
    stay one candidate, as they would for a perfect Eq. 3;
``centres``
    the Voronoi labels from the true nuclei centroids; the soft labels and USMI
    from the image's own candidates;
``purification``
    each patch scored by its number of *merged* candidates (own candidates that
    cover two or more true nuclei) instead of USMI, so the kept fraction alpha
    is the truly least merged; everything else the image's own;
``truth``
    the ground-truth instances as candidates, split from each other
    (:func:`split_instances`), through softening, USMI and Voronoi labels from
    their centroids: the ceiling of the paper's training recipe on perfect
    candidates.

:func:`build_oracle_labels` stores a split's oracle labels like
:func:`ssimnet.runs.pipeline.build_pseudo_labels` stores the real ones, so
:func:`ssimnet.runs.pipeline.train_network` trains on them unchanged.  Test
images are segmented exactly as in the reproduction (their per-image
fine-tuning uses their own label-free pseudo labels): only the training labels
are oracles.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

from ..config import DEFAULT_SEED, PseudoLabelConfig
from ..data import list_samples, read_image, read_label
from ..pseudo.labels import PseudoLabels, labels_from_candidates
from ..pseudo.purify import PatchStats, patch_grid
from ..pseudo.voronoi import voronoi_from_points
from .pipeline import build_pseudo_labels, purified_set
from .store import PseudoLabelSet, array_digest, load_pseudo_labels, save_pseudo_labels, stage_key, stored_digest

__all__ = ["ORACLES", "instance_points", "split_instances", "merged_candidates", "oracle_labels", "build_oracle_labels"]

#: The oracles of :func:`oracle_labels`, in the order the study runs them.
ORACLES: tuple[str, ...] = ("candidates", "centres", "purification", "truth")

_EIGHT = np.ones((3, 3), dtype=bool)


def instance_points(truth: np.ndarray) -> np.ndarray:
    """Rounded centroids ``(row, col)`` of the instances of a label map (0 background), shape (n, 2), int.

    >>> t = np.zeros((5, 5), int); t[0:3, 0:3] = 1; t[4, 4] = 7
    >>> instance_points(t).tolist()
    [[1, 1], [4, 4]]
    """
    ids = np.unique(truth)
    ids = ids[ids != 0]
    if ids.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    centres = np.asarray(ndi.center_of_mass(np.ones(truth.shape), truth, ids))
    return np.rint(centres).astype(np.int64)


def split_instances(truth: np.ndarray) -> np.ndarray:
    """The foreground of a label map with the pixels where two instances touch removed (8-connected), so that
    every instance is a connected component of its own (a very thin one may lose pixels; none merges).

    >>> t = np.zeros((3, 6), int); t[:, :3] = 1; t[:, 3:] = 2
    >>> split_instances(t).astype(int)
    array([[1, 1, 0, 0, 1, 1],
           [1, 1, 0, 0, 1, 1],
           [1, 1, 0, 0, 1, 1]])
    """
    truth = np.asarray(truth)
    return (truth > 0) & ~_touches_other(truth)


def _touches_other(truth: np.ndarray) -> np.ndarray:
    """Foreground pixels with an 8-neighbour in another instance (not background)."""
    out = np.zeros(truth.shape, dtype=bool)
    padded = np.pad(truth, 1)
    h, w = truth.shape
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                other = padded[1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
                out |= (other > 0) & (other != truth)
    return out & (truth > 0)


def merged_candidates(candidates: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each 8-connected candidate component, how many true instances it covers (by any pixel); shape (n,).

    >>> c = np.zeros((4, 6), bool); c[1:3, :] = True
    >>> t = np.zeros((4, 6), int); t[1:3, :3] = 1; t[1:3, 3:] = 2
    >>> merged_candidates(c, t).tolist()
    [2]
    """
    components, n = ndi.label(np.asarray(candidates, dtype=bool), structure=_EIGHT)
    inside = (components > 0) & (truth > 0)
    pairs = np.unique(np.stack([components[inside], truth[inside]]), axis=1)
    return np.bincount(pairs[0], minlength=n + 1)[1:] if n else np.zeros(0, dtype=np.int64)


def _patch_merges(candidates: np.ndarray, truth: np.ndarray, patches: list[PatchStats], size: int) -> list[PatchStats]:
    """`patches` with their score replaced by the number of merged candidates (covering two or more true
    instances) that each patch sees."""
    out = []
    for p in patches:
        r, c = p.corner
        merged = int((merged_candidates(candidates[r : r + size, c : c + size], truth[r : r + size, c : c + size]) >= 2).sum())
        out.append(replace(p, usmi=float(merged)))
    return out


def oracle_labels(own: PseudoLabels, truth: np.ndarray, oracle: str, config: PseudoLabelConfig) -> PseudoLabels:
    """One image's pseudo labels with the stage `oracle` (one of :data:`ORACLES`) replaced by ground truth.

    Parameters
    ----------
    own : PseudoLabels
        The image's label-free pseudo labels.
    truth : (H, W) int
        Its ground-truth instances, 0 background.
    oracle : str
    config : PseudoLabelConfig
        The settings of the stages that follow the replaced one.
    """
    truth = np.asarray(truth)
    if truth.shape != own.candidates.shape:
        raise ValueError(f"ground truth of shape {truth.shape} for pseudo labels of shape {own.candidates.shape}")
    if oracle == "candidates":
        return replace(own, candidates=truth > 0, **labels_from_candidates(truth > 0, config))
    if oracle == "centres":
        return replace(own, voronoi=voronoi_from_points(instance_points(truth), truth.shape,
                                                        point_radius=config.point_radius))
    if oracle == "purification":
        grid = patch_grid(truth.shape, size=config.patch_size, stride=config.patch_stride)
        if [p.corner for p in own.patches] != grid:
            raise ValueError("the pseudo labels' patches are not the configured patch grid")
        return replace(own, patches=_patch_merges(own.candidates, truth, own.patches, config.patch_size))
    if oracle == "truth":
        split = split_instances(truth)
        fields = labels_from_candidates(split, config)
        fields["voronoi"] = voronoi_from_points(instance_points(truth), truth.shape, point_radius=config.point_radius)
        return replace(own, candidates=split, **fields)
    raise ValueError(f"unknown oracle {oracle!r}; choose from {', '.join(ORACLES)}")


def build_oracle_labels(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    config: PseudoLabelConfig,
    oracle: str,
    *,
    split: str = "train",
    seed: int = DEFAULT_SEED,
    workers: int = 1,
    progress: bool = True,
) -> PseudoLabelSet:
    """A split's pseudo labels with one stage replaced by ground truth (:func:`oracle_labels`), stored under
    ``<run_dir>/pseudo/<split>/oracle-<oracle>-<key>/`` with their purified patch set, as
    :func:`ssimnet.runs.pipeline.build_pseudo_labels` stores the label-free ones (which it builds first)."""
    if oracle not in ORACLES:
        raise ValueError(f"unknown oracle {oracle!r}; choose from {', '.join(ORACLES)}")
    own = build_pseudo_labels(data_dir, run_dir, config, split=split, seed=seed, workers=workers, progress=progress)
    samples = list_samples(data_dir, split, labels=True)
    directory = Path(run_dir) / "pseudo" / split / f"oracle-{oracle}-{stage_key(config, seed, code=('pseudo', 'attribution'))}"
    directory.mkdir(parents=True, exist_ok=True)
    for sample in tqdm(samples, desc=f"oracle {oracle} labels ({split})", unit="image", disable=not progress):
        target = directory / f"{sample.name}.npz"
        truth = read_label(sample.label_path)
        digest = f"{array_digest(read_image(sample.image_path))}:{array_digest(truth)}"
        if target.is_file() and stored_digest(target) == digest:
            continue
        labels = oracle_labels(load_pseudo_labels(own.path(sample.name)), truth, oracle, config)
        save_pseudo_labels(target, labels, image_digest=digest)
    return purified_set(directory, samples, config, split=split)
