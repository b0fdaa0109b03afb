"""Boundary-aware targets (beyond the paper): inside / boundary / background.

Eq. (5) teaches the network one class, nucleus, against background.  Where
nuclei touch, its probability stays high across the contact, and the
instances have to be cut afterwards from the shape of the foreground alone
(:func:`ssimnet.predict.nuclei.instances`).  Supervised nucleus segmentation splits
the nucleus class instead (Kumar et al., IEEE TMI 36, 2017, the MoNuSeg
paper; Chen et al., DCAN, 2016): a pixel is *inside* a nucleus, on its
*boundary*, or background, and the inside regions are the nuclei's seeds.

Here the boundary class is an extra output of the U-Net: the probability
that a nucleus pixel is on a boundary, so that with the nucleus probability
``p`` of Eq. (5) and the boundary probability ``b`` the three classes are
``1 - p``, ``p b`` and ``p (1 - b)``.  Its target comes from the pseudo
instances only -- the candidate components (:mod:`ssimnet.pseudo.candidates`, or
another generator's) or a self-training round's nuclei
(:mod:`ssimnet.net.selftrain`) -- never from ground truth:

* every candidate pixel within ``width`` pixels of its component's rim
  (Euclidean distance to the nearest non-candidate pixel at most ``width``);
* every pixel of the gap that keeps two touching nuclei apart
  (:func:`ssimnet.pseudo.touching.separate_touching`).

Examples
--------
>>> mask = np.zeros((9, 9), dtype=bool); mask[1:8, 1:8] = True     # one 7x7 nucleus
>>> boundary_target(mask, width=2).astype(int)[4]                  # its rim, 2 pixels thick
array([0, 1, 1, 0, 0, 0, 1, 1, 0])
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..config import DEFAULT_TRAIN

__all__ = ["boundary_target"]


def boundary_target(
    candidates: np.ndarray, *, width: int = DEFAULT_TRAIN.boundary_width, gap: np.ndarray | None = None
) -> np.ndarray:
    """The boundary class of a candidate map, as (H, W) float32 of 0 and 1 (see the module docstring).

    Parameters
    ----------
    candidates : (H, W) bool
        Candidate nuclei, kept apart where they touch.
    width : int
        Thickness of the boundary inside each nucleus, in pixels (at least 1).
    gap : (H, W) bool, optional
        Pixels between touching nuclei, which are boundary too.

    >>> two = np.zeros((5, 9), dtype=bool); two[1:4, 1:4] = two[1:4, 5:8] = True
    >>> gap = np.zeros_like(two); gap[1:4, 4] = True
    >>> boundary_target(two, width=1, gap=gap).astype(int)[2]
    array([0, 1, 0, 1, 1, 1, 0, 1, 0])
    """
    mask = np.asarray(candidates, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D candidate map, got shape {mask.shape}")
    if width < 1:
        raise ValueError(f"the boundary width must be at least 1 pixel, got {width}")
    rim = mask & (ndi.distance_transform_edt(mask) <= width)
    if gap is not None:
        rim |= np.asarray(gap, dtype=bool)
    return rim.astype(np.float32)
