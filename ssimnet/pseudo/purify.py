"""Data purification: patches, the Unsupervised Shape Measure Index (paper Algorithm 1), selection.

A training image is cut into overlapping ``size`` x ``size`` patches (256 in
the paper) every ``stride`` pixels; the last row and column of patches are
moved back to end exactly at the image border, so every pixel is covered and
no patch is padded.  With the default stride of 128 (half a patch, a choice of
ours: the paper does not give it), a 1000x1000 image yields 7 x 7 = 49 patches.

USMI of a patch (Algorithm 1), from the connected components (8-connected) of
its hard candidate map:

    U = mean(convex-hull area of every component)
        / mean(area of the components whose area lies in [Q1, Q3])

A patch of isolated, convex nuclei of one size has ``U`` near 1; merged nuclei
have hulls much larger than a typical nucleus and raise it.  Hull areas are
pixel counts of the convex hull image, as scikit-image's ``area_convex``.  A
component cut by the patch border is measured as the patch sees it (its
pieces inside the patch are components of their own).  On a 1000x1000 MoNuSeg
image all 49 patches take about 0.2 s.

Patches with fewer than ``min_components`` candidates have no meaningful
quartiles: they get ``U = inf``, sort after every measurable patch, and are
kept only when the kept fraction exceeds the share of measurable patches.

The fraction ``keep`` (alpha = 70 %) of patches with the lowest USMI over the
whole training set is kept (:func:`select_patches`); ties break by patch order,
so the selection is deterministic.

Examples
--------
>>> P = np.zeros((300, 300), dtype=bool)
>>> for r in range(20, 280, 40):
...     for c in range(20, 280, 40):
...         P[r:r + 10, c:c + 10] = True       # 49 isolated 10x10 squares
>>> patch_grid(P.shape, size=256, stride=128)
[(0, 0), (0, 44), (44, 0), (44, 44)]
>>> round(usmi(P), 3)                          # squares are convex: hull = area
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from ..config import DEFAULT_PSEUDO

__all__ = ["patch_grid", "usmi", "PatchStats", "patch_usmi", "select_patches", "kept_patches"]

_EIGHT = np.ones((3, 3), dtype=bool)


def patch_grid(shape: tuple[int, ...], *, size: int = DEFAULT_PSEUDO.patch_size,
               stride: int = DEFAULT_PSEUDO.patch_stride) -> list[tuple[int, int]]:
    """Top-left corners of the overlapping patches of an image, row-major.

    Raises
    ------
    ValueError
        If the image is smaller than one patch, or the stride is not positive.
    """
    h, w = int(shape[0]), int(shape[1])
    if h < size or w < size:
        raise ValueError(f"image of {h}x{w} pixels is smaller than a {size}x{size} patch")
    if stride < 1:
        raise ValueError(f"stride must be positive, got {stride}")

    def starts(n: int) -> list[int]:
        out = list(range(0, n - size + 1, stride))
        return out if out[-1] == n - size else [*out, n - size]

    return [(r, c) for r in starts(h) for c in starts(w)]


def _hull_area(mask: np.ndarray) -> int:
    """Pixel count of the convex hull of a (cropped) binary mask."""
    if mask.sum() <= 2:
        return int(mask.sum())
    return int(convex_hull_image(mask).sum())


def _component_stats(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Areas and convex-hull areas of the 8-connected components of `mask`."""
    labels, n = ndi.label(mask, structure=_EIGHT)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    hulls = np.array([_hull_area(labels[sl] == i) for i, sl in enumerate(ndi.find_objects(labels), start=1)])
    return areas, hulls


def _usmi_terms(areas: np.ndarray, hulls: np.ndarray, min_components: int) -> tuple[float, float, float]:
    """Algorithm 1's ``H̄`` (mean hull area), inter-quartile ``Ā`` and ``U = H̄ / Ā``.

    ``H̄`` and ``Ā`` are NaN without components; ``U`` is inf with fewer than
    `min_components` components.
    """
    if areas.size == 0:
        return float("nan"), float("nan"), float("inf")
    q1, q3 = np.percentile(areas, [25, 75])
    middle = areas[(areas >= q1) & (areas <= q3)]  # empty only for two components of different areas
    mean_hull, mean_area = float(hulls.mean()), float(middle.mean()) if middle.size else float("nan")
    measurable = areas.size >= max(min_components, 1) and middle.size > 0
    return mean_hull, mean_area, (mean_hull / mean_area if measurable else float("inf"))


def usmi(candidates: np.ndarray, *, min_components: int = DEFAULT_PSEUDO.min_components) -> float:
    """Unsupervised Shape Measure Index of one patch's candidate map (Algorithm 1).

    Returns ``inf`` when the patch has fewer than `min_components` components.
    """
    return _usmi_terms(*_component_stats(np.asarray(candidates, dtype=bool)), min_components)[2]


@dataclass(frozen=True)
class PatchStats:
    """USMI inputs and result of one patch.

    Attributes
    ----------
    corner : tuple of int
        Top-left (row, col) of the patch.
    n_components : int
    mean_hull_area, mean_area : float
        Algorithm 1's ``H̄`` and inter-quartile ``Ā`` (NaN without components).
    usmi : float
        ``H̄ / Ā``, or inf with fewer than ``min_components`` components.
    """

    corner: tuple[int, int]
    n_components: int
    mean_hull_area: float
    mean_area: float
    usmi: float


def patch_usmi(
    candidates: np.ndarray,
    *,
    size: int = DEFAULT_PSEUDO.patch_size,
    stride: int = DEFAULT_PSEUDO.patch_stride,
    min_components: int = DEFAULT_PSEUDO.min_components,
) -> list[PatchStats]:
    """USMI and its inputs for every patch of an image's candidate map, in :func:`patch_grid` order."""
    mask = np.asarray(candidates, dtype=bool)
    out = []
    for r, c in patch_grid(mask.shape, size=size, stride=stride):
        areas, hulls = _component_stats(mask[r : r + size, c : c + size])
        mean_hull, mean_area, u = _usmi_terms(areas, hulls, min_components)
        out.append(PatchStats(corner=(r, c), n_components=int(areas.size), mean_hull_area=mean_hull,
                              mean_area=mean_area, usmi=u))
    return out


def select_patches(scores: Sequence[float], *, keep: float = DEFAULT_PSEUDO.keep_fraction) -> np.ndarray:
    """Indices of the fraction `keep` of patches with the lowest USMI (stable on ties), ascending USMI.

    >>> select_patches([3.0, 1.0, float("inf"), 2.0], keep=0.5)
    array([1, 3])
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must lie in (0, 1], got {keep}")
    scores = np.asarray(scores, dtype=np.float64)
    n_keep = int(round(keep * scores.size))
    return np.argsort(scores, kind="stable")[:n_keep]


def kept_patches(patches: Sequence[PatchStats], *, keep: float = DEFAULT_PSEUDO.keep_fraction) -> list[int]:
    """Indices into `patches` of the fraction `keep` with the lowest USMI (:func:`select_patches`), ascending USMI.

    One image's own purified set, ``SET_k`` of the paper's per-image fine-tuning.
    """
    return select_patches([p.usmi for p in patches], keep=keep).tolist()
