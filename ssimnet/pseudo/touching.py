"""Touching nuclei: split a foreground into nuclei, and keep nuclei apart in a binary map.

:func:`marker_watershed` splits a foreground by a watershed seeded at the
maxima of a surface (the probability, a distance transform); SSimNet's
instances (:func:`ssimnet.predict.nuclei.instances`), the classical baseline and the
watershed candidate generator (:mod:`ssimnet.pseudo.generators`) share it.
:func:`separate_touching` turns an instance map back into a binary map in
which no two nuclei touch, so that the connected components of the map are
the nuclei -- what softening (Eq. 4), the Voronoi tri-label and USMI see.

Examples
--------
>>> label = np.zeros((4, 7), dtype=int); label[1:3, 1:3] = 1; label[1:3, 3:6] = 2
>>> separate_touching(label).astype(int)
array([[0, 0, 0, 0, 0, 0, 0],
       [0, 1, 0, 1, 1, 1, 0],
       [0, 1, 0, 1, 1, 1, 0],
       [0, 0, 0, 0, 0, 0, 0]])
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed

from .candidates import clean_mask

__all__ = ["marker_watershed", "distance_watershed", "separate_touching"]


def marker_watershed(surface: np.ndarray, foreground: np.ndarray, *, h: float, min_size: int = 1) -> np.ndarray:
    """Split `foreground` by a watershed of ``-surface`` seeded at the maxima of `surface` at least `h` high.

    Foreground pieces that hold no marker stay whole; pieces below `min_size`
    pixels are removed.  Returns an (H, W) int32 map numbered 1..N.

    >>> fg = np.zeros((5, 10), dtype=bool); fg[1:4] = True
    >>> surface = np.array([0, 1, 2, 1, 0, 0, 1, 2, 1, 0], dtype=float)[None].repeat(5, 0) * fg
    >>> marker_watershed(surface, fg, h=0.5)[2].tolist()       # two peaks: two pieces
    [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    >>> marker_watershed(surface, fg, h=3.0)[2].tolist()       # no marker: the piece stays whole
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    markers = ndi.label(h_maxima(surface, h) & foreground)[0]
    split = watershed(-surface, markers, mask=foreground)
    orphans = ndi.label(foreground & (split == 0), structure=np.ones((3, 3)))[0]
    split = np.where(orphans > 0, orphans + split.max(), split)
    if min_size > 1:
        small = np.bincount(split.ravel()) < min_size
        small[0] = False
        split = np.where(small[split], 0, split)
    return relabel_sequential(split)[0].astype(np.int32)


def distance_watershed(mask: np.ndarray, *, h: float, min_size: int, max_hole: int) -> np.ndarray:
    """Nuclei of a binary mask: cleaned (:func:`ssimnet.pseudo.candidates.clean_mask`), then split by
    :func:`marker_watershed` on its Euclidean distance transform, markers at least `h` pixels high.

    The classical baseline and the ``"watershed"`` candidate generator; (H, W) int32.

    >>> yy, xx = np.mgrid[:60, :80]
    >>> discs = ((yy - 30) ** 2 + (xx - 28) ** 2 < 100) | ((yy - 30) ** 2 + (xx - 46) ** 2 < 100)
    >>> int(distance_watershed(discs, h=1.0, min_size=20, max_hole=0).max())    # two touching discs
    2
    """
    foreground = clean_mask(mask, min_size=min_size, max_hole=max_hole)
    return marker_watershed(ndi.distance_transform_edt(foreground), foreground, h=h, min_size=min_size)


def separate_touching(label: np.ndarray) -> np.ndarray:
    """Foreground of an instance map, less a one-pixel gap wherever two nuclei touch.

    A pixel is dropped when one of its 8 neighbours belongs to a nucleus with
    a higher id, so of two touching nuclei the lower-numbered one gives up its
    contact pixels.  Returns an (H, W) bool map in which no two nuclei are
    8-connected.
    """
    label = np.asarray(label)
    highest = ndi.maximum_filter(label, size=3, mode="constant", cval=0)
    return (label > 0) & (highest <= label)
