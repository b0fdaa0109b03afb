"""Pixel-colour clustering baselines: mini-batch K-means (mKMeans) and a Gaussian mixture (GMM).

The two classical rows of the paper's Table 1.  Each pixel's RGB colour is a
point; the model is fitted on a seeded subsample of pixels and assigns every
pixel to a cluster.  Which cluster is "nucleus" is decided without labels:
the one whose centre is darkest (lowest mean of R, G and B), since
hematoxylin-stained nuclei are the darkest structures of an H&E image.

Examples
--------
>>> import numpy as np
>>> image = np.full((40, 40, 3), 230, dtype=np.uint8)
>>> image[10:20, 10:20] = (60, 40, 120)                 # one dark "nucleus"
>>> mask = cluster_foreground(image, method="kmeans", n_clusters=2, seed=0)
>>> int(mask.sum()), bool(mask[15, 15])
(100, True)
"""

from __future__ import annotations

import numpy as np

from ..config import DEFAULT_BASELINES

__all__ = ["CLUSTER_METHODS", "cluster_foreground"]

#: The clustering methods :func:`cluster_foreground` knows.
CLUSTER_METHODS: tuple[str, ...] = ("kmeans", "gmm")

#: Below this spread of grey levels an image is taken as blank.
MIN_CONTRAST: float = 5.0


def cluster_foreground(
    image: np.ndarray,
    *,
    method: str = "kmeans",
    n_clusters: int = DEFAULT_BASELINES.cluster_k,
    n_samples: int = DEFAULT_BASELINES.cluster_samples,
    seed: int = 0,
) -> np.ndarray:
    """Nucleus mask of an RGB image by clustering pixel colours; the darkest cluster is nucleus.

    Parameters
    ----------
    image : (H, W, 3) uint8
    method : {"kmeans", "gmm"}
        scikit-learn ``MiniBatchKMeans`` or ``GaussianMixture`` (full covariance).
    n_clusters : int
        Number of colour clusters (>= 2).
    n_samples : int
        Pixels sampled (seeded) to fit the model; all pixels are then assigned.
    seed : int

    Returns
    -------
    (H, W) bool; all False for a blank image.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.mixture import GaussianMixture

    if method not in CLUSTER_METHODS:
        raise ValueError(f"method must be one of {CLUSTER_METHODS}, got {method!r}")
    if n_clusters < 2:
        raise ValueError(f"n_clusters must be at least 2, got {n_clusters}")
    pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3) / 255.0
    if np.ptp(pixels.mean(1)) * 255.0 < MIN_CONTRAST:
        return np.zeros(image.shape[:2], dtype=bool)
    rng = np.random.default_rng(seed)
    sample = pixels[np.sort(rng.choice(len(pixels), size=min(n_samples, len(pixels)), replace=False))]
    if method == "kmeans":
        model = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=3, batch_size=4096).fit(sample)
        centres = model.cluster_centers_
    else:
        model = GaussianMixture(n_components=n_clusters, covariance_type="full", random_state=seed, reg_covar=1e-4).fit(sample)
        centres = model.means_
    nucleus = int(np.argmin(centres.mean(1)))
    return (model.predict(pixels) == nucleus).reshape(image.shape[:2])
