"""Resolution: an image scanned at another magnification, resampled to the network's and back (beyond the paper).

A network learns nuclei at the size they have in its training images
(MoNuSeg at 40x, about :data:`ssimnet.config.NETWORK_MPP` microns per pixel).
The same nuclei scanned at 20x are half as wide: patches hold four times as
many of them, the minimum object size removes the small ones, and the
network, which never saw nuclei that small, misses or merges them.  StarDist's
and QuPath's detectors take the image's pixel size for the same reason.

With the image's pixel size known, ``ssimnet segment --mpp`` resamples it by
:func:`scale_factor` (:func:`rescale_image`), segments it there, and brings
the label map back to the image's own grid (:func:`resize_labels`), where the
measurements are taken.

Examples
--------
>>> scale_factor(0.5, network_mpp=0.25)             # 20x: enlarged twice
2.0
>>> label = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]])
>>> resize_labels(label, (2, 2)).tolist()
[[1, 0], [0, 2]]
"""

from __future__ import annotations

import numpy as np

from ..config import NETWORK_MPP

__all__ = ["scale_factor", "rescale_image", "resize_labels"]


def scale_factor(mpp: float, *, network_mpp: float = NETWORK_MPP) -> float:
    """How much an image of `mpp` microns per pixel is enlarged to reach the network's `network_mpp`.

    Raises
    ------
    ValueError
        If `mpp` is not a positive number.
    """
    if not (np.isfinite(mpp) and mpp > 0):
        raise ValueError(f"must be a positive number of microns per pixel, got {mpp}")
    return float(mpp) / network_mpp


def rescale_image(image: np.ndarray, factor: float) -> np.ndarray:
    """`image` ((H, W, 3) uint8) resampled by `factor` (bilinear; smoothed first when shrinking); uint8.

    The output has ``round(H * factor)`` x ``round(W * factor)`` pixels.

    >>> rescale_image(np.full((10, 20, 3), 200, np.uint8), 1.5).shape
    (15, 30, 3)
    """
    from skimage.transform import resize

    image = np.asarray(image)
    shape = (max(1, round(image.shape[0] * factor)), max(1, round(image.shape[1] * factor)))
    out = resize(image, (*shape, image.shape[2]), order=1, mode="edge", anti_aliasing=factor < 1,
                 preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize_labels(label: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An instance map resampled to `shape` by nearest neighbour (pixel centres); (H, W) int32 numbered 1..N.

    A nucleus too small to cover any pixel centre of the new grid
    disappears; the others keep their order and are renumbered without gaps.
    """
    from skimage.segmentation import relabel_sequential

    label = np.asarray(label)
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * label.shape[0] / shape[0]).astype(np.intp), label.shape[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * label.shape[1] / shape[1]).astype(np.intp), label.shape[1] - 1)
    return relabel_sequential(label[np.ix_(rows, cols)])[0].astype(np.int32)
