"""Voronoi tri-labels (paper Sec. 2.2, after Qu et al., IEEE TMI 2020).

Every candidate nucleus contributes one point, its centroid.  The Voronoi
diagram of the points splits the image into cells, one per nucleus; the cell
borders run between neighbouring nuclei and are therefore background.  The
tri-label is

- ``1`` (nucleus) on a disc of radius ``point_radius`` around each point,
- ``0`` (background) on the Voronoi edges,
- ``2`` (ignore) everywhere else,

and the cross-entropy term of the loss (Eq. 5) ignores label 2.  Cells are
computed exactly on the pixel grid with one Euclidean distance transform (each
pixel belongs to its nearest point); edges are the pixels with a 4-neighbour
in another cell, so they are two pixels wide and symmetric.  Points are the
rounded centroids of the 8-connected components; they win over edges.

Examples
--------
>>> P = np.zeros((5, 8), dtype=bool); P[2, 1] = P[2, 6] = True   # cells meet between columns 3 and 4
>>> voronoi_label(P, point_radius=0)
array([[2, 2, 2, 0, 0, 2, 2, 2],
       [2, 2, 2, 0, 0, 2, 2, 2],
       [2, 1, 2, 0, 0, 2, 1, 2],
       [2, 2, 2, 0, 0, 2, 2, 2],
       [2, 2, 2, 0, 0, 2, 2, 2]], dtype=uint8)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk
from skimage.segmentation import find_boundaries

from ..config import DEFAULT_PSEUDO

__all__ = ["NUCLEUS", "BACKGROUND", "IGNORE", "candidate_points", "voronoi_label", "voronoi_from_points"]

NUCLEUS, BACKGROUND, IGNORE = 1, 0, 2


def candidate_points(candidates: np.ndarray) -> np.ndarray:
    """Rounded centroids ``(row, col)`` of the 8-connected components, shape (n, 2), int."""
    labels, n = ndi.label(np.asarray(candidates, dtype=bool), structure=np.ones((3, 3)))
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64)
    centres = np.asarray(ndi.center_of_mass(labels > 0, labels, np.arange(1, n + 1)))
    return np.rint(centres).astype(np.int64)


def voronoi_label(candidates: np.ndarray, *, point_radius: int = DEFAULT_PSEUDO.point_radius) -> np.ndarray:
    """Voronoi tri-label of a candidate map: 1 points, 0 Voronoi edges, 2 ignore; (H, W) uint8."""
    mask = np.asarray(candidates, dtype=bool)
    return voronoi_from_points(candidate_points(mask), mask.shape, point_radius=point_radius)


def voronoi_from_points(points: np.ndarray, shape: tuple[int, ...], *,
                        point_radius: int = DEFAULT_PSEUDO.point_radius) -> np.ndarray:
    """Voronoi tri-label of `points` (``(row, col)`` inside `shape`, shape (n, 2)): 1 discs of `point_radius`
    around them, 0 the edges between their cells, 2 ignore; (H, W) uint8.

    >>> voronoi_from_points(np.array([[1, 0], [1, 3]]), (2, 4), point_radius=0)
    array([[2, 0, 0, 2],
           [1, 0, 0, 1]], dtype=uint8)
    """
    shape = (int(shape[0]), int(shape[1]))
    points = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    out = np.full(shape, IGNORE, dtype=np.uint8)
    if points.shape[0] == 0:
        return out
    seeds = np.zeros(shape, dtype=np.int64)
    seeds[points[:, 0], points[:, 1]] = np.arange(1, points.shape[0] + 1)
    if points.shape[0] > 1:
        _, (rows, cols) = ndi.distance_transform_edt(seeds == 0, return_indices=True)
        cells = seeds[rows, cols]
        out[find_boundaries(cells, connectivity=1, mode="inner")] = BACKGROUND
    for r, c in points:
        rr, cc = disk((r, c), point_radius + 0.5, shape=shape)
        out[rr, cc] = NUCLEUS
    return out
