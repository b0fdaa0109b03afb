"""Comparison methods of the paper's Table 1, plus the classical watershed users would pick instead.

=====================  ====================================================
name                   method
=====================  ====================================================
``"mkmeans"``          mini-batch K-means on pixel colour (:mod:`.clustering`)
``"gmm"``              Gaussian mixture on pixel colour (:mod:`.clustering`)
``"kanezaki"``         Kanezaki 2018, a per-image CNN (:mod:`.kanezaki`)
``"watershed"``        hematoxylin Otsu + distance watershed (:mod:`.watershed`)
``"supervised"``       U-Net on ground truth, the upper bound (:mod:`.supervised`)
=====================  ====================================================

The first four are label-free and segment one image at a time:
:func:`segment_baseline`.  The mask methods' instances are the connected
components of the mask after the same clean-up as SSimNet's (small objects
removed, holes filled), as in the paper's protocol.  The supervised U-Net is
trained once on the training split (:func:`ssimnet.runs.pipeline.train_supervised`).

Examples
--------
>>> import numpy as np
>>> from ssimnet.config import BaselineConfig
>>> image = np.full((64, 64, 3), 235, dtype=np.uint8)             # background
>>> image[:, 32:] = (215, 140, 185)                                 # eosin stroma
>>> image[10:30, 10:30] = image[40:60, 35:55] = (70, 50, 130)       # two nuclei
>>> int(segment_baseline(image, "gmm", BaselineConfig(), seed=0).max())
2
"""

from __future__ import annotations

import numpy as np

from ..config import DEFAULT_INFERENCE, BaselineConfig
from .clustering import cluster_foreground
from .kanezaki import kanezaki_foreground
from .supervised import supervised_patches
from .watershed import hematoxylin_watershed

__all__ = ["IMAGE_METHODS", "DETERMINISTIC", "METHOD_NAMES", "TABLE1_METHODS", "segment_baseline", "supervised_patches"]

#: The label-free baselines :func:`segment_baseline` runs, one image at a time.
IMAGE_METHODS: tuple[str, ...] = ("mkmeans", "gmm", "kanezaki", "watershed")

#: Baselines whose result does not depend on the seed: one run is all runs.
DETERMINISTIC: tuple[str, ...] = ("watershed",)

#: Display names, as in the paper's tables.
METHOD_NAMES: dict[str, str] = {
    "mkmeans": "mKMeans",
    "gmm": "GMM",
    "kanezaki": "Kanezaki et al.",
    "watershed": "Hematoxylin watershed",
    "supervised": "U-Net (supervised)",
    "ssimnet_noft": "SSimNet w/o ft",
    "ssimnet": "SSimNet",
}

#: The reproduced rows of Table 1, in the book's order.
TABLE1_METHODS: tuple[str, ...] = ("mkmeans", "gmm", "kanezaki", "watershed", "ssimnet_noft", "ssimnet", "supervised")


def segment_baseline(
    image: np.ndarray,
    method: str,
    config: BaselineConfig,
    *,
    seed: int = 0,
    min_size: int = DEFAULT_INFERENCE.min_size,
    max_hole: int = DEFAULT_INFERENCE.max_hole,
    device: str | None = None,
) -> np.ndarray:
    """Instances of one image by a label-free baseline; (H, W) int32, 0 = background.

    Parameters
    ----------
    image : (H, W, 3) uint8
    method : one of :data:`IMAGE_METHODS`
    config : BaselineConfig
    seed : int
    min_size, max_hole : int
        Post-processing of the mask methods (and of the watershed's foreground).
    device : str, optional
        Torch device of the Kanezaki CNN.
    """
    from ..predict import instances

    if method == "watershed":
        return hematoxylin_watershed(image, sigma=config.watershed_sigma, h=config.watershed_h, min_size=min_size, max_hole=max_hole)
    if method in ("mkmeans", "gmm"):
        mask = cluster_foreground(image, method="kmeans" if method == "mkmeans" else "gmm",
                                  n_clusters=config.cluster_k, n_samples=config.cluster_samples, seed=seed)
    elif method == "kanezaki":
        mask = kanezaki_foreground(
            image, scale=config.kanezaki_scale, seed=seed, device=device, channels=config.kanezaki_channels,
            convs=config.kanezaki_convs, lr=config.kanezaki_lr, iterations=config.kanezaki_iterations,
            min_labels=config.kanezaki_min_labels, superpixel_area=config.kanezaki_superpixel_area,
            compactness=config.kanezaki_compactness,
        )
    else:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(IMAGE_METHODS)}")
    return instances(mask.astype(np.float32), method="cc", min_size=min_size, max_hole=max_hole)
