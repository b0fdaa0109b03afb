"""Label softening: paper Eq. (4).

Each connected component of the hard candidate map ``P`` is eroded ring by
ring.  The pixels removed at erosion step ``k`` -- ``P[k]`` of them -- get the
confidence ``B[k]``, with ``B[0] = 0.5`` for the outermost ring and

    B[k+1] = B[k] + P[k] / (2 A),

``A`` being the component's area.  Erosion stops at the first ring whose
confidence exceeds ``stop`` (0.975 in the paper).

What the remaining core receives: the paper leaves it open.  Here the
pixels of the ring at which erosion stops *and everything inside it* get that
ring's confidence ``B[k_stop]`` -- the core is treated as the last ring, so
values stay continuous and monotone from rim to centre and never exceed 1
(``B`` is at most ``0.5 + (A - P[last]) / 2A < 1``).  A component that is
eroded away before any ring exceeds ``stop`` simply keeps its ring values.

Erosion uses the 4-connected (cross) structuring element, so the ring of a
pixel is its city-block distance to the background minus one; the image
border counts as background.  Computing rings from one distance transform
softens all components at once, with no per-component loop.

Examples
--------
>>> P = np.zeros((7, 7), dtype=bool); P[1:6, 1:6] = True     # a 5x5 square, A = 25
>>> soft = soften_labels(P)
>>> [round(float(soft[i, i]), 3) for i in (1, 2, 3)]    # B[0]; B[0] + 16/50; B[1] + 8/50
[0.5, 0.82, 0.98]
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..config import DEFAULT_PSEUDO

__all__ = ["erosion_rings", "soften_labels"]


def erosion_rings(mask: np.ndarray) -> np.ndarray:
    """Erosion step at which each foreground pixel is removed (0 = outermost ring), -1 on background.

    >>> erosion_rings(np.pad(np.ones((3, 3), dtype=bool), 1))
    array([[-1, -1, -1, -1, -1],
           [-1,  0,  0,  0, -1],
           [-1,  0,  1,  0, -1],
           [-1,  0,  0,  0, -1],
           [-1, -1, -1, -1, -1]])
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    dist = ndi.distance_transform_cdt(padded, metric="taxicab")[1:-1, 1:-1]
    return dist.astype(np.int64) - 1


def soften_labels(candidates: np.ndarray, *, stop: float = DEFAULT_PSEUDO.soften_stop) -> np.ndarray:
    """Soft pseudo label of paper Eq. (4): 0 on background, ``B`` in [0.5, 1) on candidates.

    Parameters
    ----------
    candidates : (H, W) bool
        Hard candidate map ``P``; components are 8-connected.
    stop : float
        Erosion stops at the first ring whose confidence exceeds this.

    Returns
    -------
    (H, W) float32
    """
    mask = np.asarray(candidates, dtype=bool)
    soft = np.zeros(mask.shape, dtype=np.float32)
    if not mask.any():
        return soft
    components, n = ndi.label(mask, structure=np.ones((3, 3)))
    rings = erosion_rings(mask)
    comp, ring = components[mask], rings[mask]
    n_rings = int(ring.max()) + 1
    # counts[c, k] = P[k] of component c+1
    counts = np.bincount((comp - 1) * n_rings + ring, minlength=n * n_rings).reshape(n, n_rings)
    area = counts.sum(1, keepdims=True)
    before = np.cumsum(counts, axis=1) - counts  # pixels eroded before step k
    confidence = 0.5 + before / (2.0 * area)  # B[k]
    exceeded = confidence > stop
    stop_ring = np.where(exceeded.any(1), exceeded.argmax(1), n_rings - 1)
    capped_ring = np.minimum(ring, stop_ring[comp - 1])
    soft[mask] = confidence[comp - 1, capped_ring]
    return soft
