"""The supervised upper bound: the SSimNet U-Net trained on ground-truth masks.

The paper's "U-Net (supervised)" row.  The same architecture, loss, optimiser,
schedule and augmentation as SSimNet (:mod:`ssimnet.net.train`), but the targets
are the annotated nuclei of the training split: the binary foreground is both
the BCE target and the two-class CE target (no pixel ignored), and every
256x256 patch of the grid is used (no purification, nothing to purify).
This is the only code of the project that learns from training labels.

Examples
--------
>>> import numpy as np
>>> image = np.zeros((300, 300, 3), dtype=np.uint8)
>>> label = np.zeros((300, 300), dtype=np.int32); label[10:20, 10:20] = 7
>>> data = supervised_patches({"a": (image, label)}, size=256, stride=128)
>>> len(data.patches), float(data.soft["a"].sum()), int(data.voronoi["a"].max())
(4, 100.0, 1)
"""

from __future__ import annotations

import numpy as np

from ..config import DEFAULT_PSEUDO
from ..net.train import PatchData
from ..pseudo.purify import patch_grid

__all__ = ["supervised_patches"]


def supervised_patches(items: dict[str, tuple[np.ndarray, np.ndarray]], *, size: int = DEFAULT_PSEUDO.patch_size,
                       stride: int = DEFAULT_PSEUDO.patch_stride) -> PatchData:
    """Training patches whose targets are ground-truth foreground.

    Parameters
    ----------
    items : dict name -> (image (H, W, 3) uint8, instance label (H, W) int)
    size, stride : int
        The patch grid (:func:`ssimnet.pseudo.purify.patch_grid`); every patch is used.

    Raises
    ------
    ValueError
        If an image and its label differ in size, or an image is smaller than a patch.
    """
    images, soft, hard, patches = {}, {}, {}, []
    for name, (image, label) in items.items():
        if image.shape[:2] != label.shape:
            raise ValueError(f"{name}: image is {image.shape[0]}x{image.shape[1]} but its label {label.shape[0]}x{label.shape[1]}")
        images[name] = image
        foreground = np.asarray(label) > 0
        soft[name] = foreground.astype(np.float32)
        hard[name] = foreground.astype(np.uint8)
        patches += [(name, r, c) for r, c in patch_grid(label.shape, size=size, stride=stride)]
    return PatchData(images=images, soft=soft, voronoi=hard, patches=patches, size=size)
