"""The classical baseline: hematoxylin threshold and distance-transform watershed.

Not in the paper, but what image-analysis tools (QuPath's cell detection,
CellProfiler pipelines) do by default, so it is what a user would pick
instead of a deep label-free method:

1. hematoxylin density by Ruifrok & Johnston colour deconvolution
   (:func:`skimage.color.rgb2hed`), smoothed by a Gaussian;
2. foreground = density above Otsu's threshold, small objects removed and
   holes filled;
3. markers = regional maxima of the Euclidean distance transform at least
   `h` pixels high, so that each roughly convex blob gets one marker;
4. watershed of the negated distance within the foreground
   (:func:`ssimnet.pseudo.touching.distance_watershed`, shared with the
   ``"watershed"`` candidate generator).

Examples
--------
>>> import numpy as np
>>> image = np.full((60, 80, 3), 235, dtype=np.uint8)
>>> yy, xx = np.mgrid[:60, :80]
>>> for cx in (28, 46):                                # two touching discs
...     image[(yy - 30) ** 2 + (xx - cx) ** 2 < 100] = (70, 50, 140)
>>> label = hematoxylin_watershed(image, min_size=20)
>>> int(label.max())
2
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2hed

from ..config import DEFAULT_BASELINES, DEFAULT_INFERENCE
from ..pseudo.generators import otsu_mask
from ..pseudo.touching import distance_watershed

__all__ = ["hematoxylin_watershed"]

#: Below this spread of hematoxylin density an image is taken as blank.
MIN_DENSITY_RANGE: float = 1e-3


def hematoxylin_watershed(
    image: np.ndarray,
    *,
    sigma: float = DEFAULT_BASELINES.watershed_sigma,
    h: float = DEFAULT_BASELINES.watershed_h,
    min_size: int = DEFAULT_INFERENCE.min_size,
    max_hole: int = DEFAULT_INFERENCE.max_hole,
) -> np.ndarray:
    """Nuclei instances by Otsu on hematoxylin and a distance-transform watershed.

    Parameters
    ----------
    image : (H, W, 3) uint8
    sigma : float
        Gaussian smoothing of the hematoxylin density, in pixels.
    h : float
        Minimum height, in pixels of distance, of a marker above its surroundings.
    min_size, max_hole : int
        Smallest object kept and largest hole filled, in pixels.

    Returns
    -------
    (H, W) int32 instance map, 0 = background; empty for a blank image.
    """
    mask = otsu_mask(rgb2hed(np.asarray(image))[..., 0], sigma=sigma, min_range=MIN_DENSITY_RANGE)
    return distance_watershed(mask, h=h, min_size=min_size, max_hole=max_hole)
