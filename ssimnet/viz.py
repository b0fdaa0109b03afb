"""Pictures of segmentations, as arrays (plotting itself stays in the notebooks).

Examples
--------
>>> import numpy as np
>>> image = np.full((5, 5, 3), 200, dtype=np.uint8)
>>> label = np.zeros((5, 5), dtype=int); label[1:4, 1:4] = 1
>>> out = outline_overlay(image, label)
>>> out[1, 1].tolist(), out[2, 2].tolist()   # rim coloured, interior kept
([0, 255, 0], [200, 200, 200])
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

__all__ = ["outline_overlay"]


def outline_overlay(
    image: np.ndarray, label: np.ndarray, *, color: tuple[int, int, int] = (0, 255, 0)
) -> np.ndarray:
    """Draw the inner outline of every instance of `label` onto a copy of `image`.

    Parameters
    ----------
    image : (H, W, 3) uint8
    label : (H, W) integer instance map, 0 = background
    color : RGB colour of the outlines

    Returns
    -------
    (H, W, 3) uint8
    """
    if image.shape[:2] != label.shape:
        raise ValueError(f"image {image.shape[:2]} and label {label.shape} differ in size")
    out = np.array(image, dtype=np.uint8, copy=True)
    out[find_boundaries(label, mode="inner")] = color
    return out
