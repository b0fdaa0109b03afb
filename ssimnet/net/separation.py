"""Learned separation of touching nuclei (beyond the paper): the rim-distance target.

A third output channel of the U-Net learns, for every pixel, its distance to
the rim of the nucleus it lies in, divided by that nucleus's largest distance:
0 on the rim and in the background, 1 at each nucleus's centre.  Touching
nuclei then show as two bumps, and a marker-controlled watershed on the
predicted map (:func:`ssimnet.predict.nuclei.instances`, method ``"learned"``) splits
them where the distance transform of the foreground alone sees one round
blob.

The target comes from the pseudo-label candidates only (no ground truth).  A
candidate component may be several nuclei merged; taught as one nucleus, it
would teach the network to merge.  Following the self-similarity argument of
the paper (Sec. 2.1: a nucleus is about convex, so a component that fills its
convex hull is likely one nucleus), components whose solidity (area over
convex-hull area) is below `min_solidity` can be left out: their pixels are
ignored (:data:`IGNORE_DISTANCE`); background pixels are 0.  On the MoNuSeg
training split the filter did not help (``cpu`` profile, one seed: AJI 44.5
with 0.9 against 45.1 with 0, see :data:`ssimnet.config.LEARNED_SEPARATION_WEIGHT`),
so the default keeps every component.

Examples
--------
>>> mask = np.zeros((9, 20), dtype=bool)
>>> mask[2:7, 2:7] = True                        # a 5x5 square: solidity 1
>>> mask[1:8, 10:12] = True; mask[6:8, 10:19] = True   # an L: solidity about 0.5
>>> target = rim_distance_target(mask, min_solidity=0.9)
>>> float(target[4, 4]), round(float(target[2, 2]), 3), float(target[0, 0]), float(target[7, 15])
(1.0, 0.333, 0.0, -1.0)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops

from ..config import DEFAULT_TRAIN

__all__ = ["IGNORE_DISTANCE", "rim_distance_target"]

#: Target value of pixels that do not enter the distance loss.
IGNORE_DISTANCE: float = -1.0


def rim_distance_target(candidates: np.ndarray, *, min_solidity: float = DEFAULT_TRAIN.distance_solidity) -> np.ndarray:
    """Per-nucleus normalised distance to the rim, as (H, W) float32 (see the module docstring).

    Parameters
    ----------
    candidates : (H, W) bool
        Candidate nuclei; each 8-connected component is one nucleus.
    min_solidity : float
        Components with a lower solidity are ignored (0 keeps all).

    Returns
    -------
    (H, W) float32
        In (0, 1] inside kept components (1 at each one's deepest pixel), 0 in
        the background, :data:`IGNORE_DISTANCE` in ignored components.
    """
    mask = np.asarray(candidates, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D candidate map, got shape {mask.shape}")
    label = ndi.label(mask, structure=np.ones((3, 3)))[0]
    # distance to the nearest pixel outside the component; touching components share no pixel
    distance = ndi.distance_transform_edt(mask).astype(np.float32)
    target = np.zeros(mask.shape, dtype=np.float32)
    for region in regionprops(label, intensity_image=distance):
        rows, cols = region.coords[:, 0], region.coords[:, 1]
        if region.solidity < min_solidity:
            target[rows, cols] = IGNORE_DISTANCE
        else:
            target[rows, cols] = distance[rows, cols] / distance[rows, cols].max()
    return target
