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

__all__ = ["outline_overlay", "draw_rings", "error_overlay", "crowded_window", "TP_COLOR", "FP_COLOR", "FN_COLOR",
           "VORONOI_COLOURS"]

#: Colours of the paper's Figures 1 and 4: true positive, false positive, false negative.
TP_COLOR, FP_COLOR, FN_COLOR = (0, 200, 0), (255, 215, 0), (220, 0, 0)

#: Colours of the Voronoi tri-label's values 0 (cell edges, background), 1 (nucleus points) and 2 (ignored),
#: the same in every figure of the book: ``ListedColormap(VORONOI_COLOURS)`` with ``vmin=0, vmax=2``.
VORONOI_COLOURS: tuple[str, str, str] = ("black", "tab:blue", "#e6e6e6")


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


def draw_rings(image: np.ndarray, rings: list[list[list[float]]], *, scale: float,
               color: tuple[int, int, int] = (0, 255, 0), samples: int = 4) -> None:
    """Draw polygon `rings` ([x, y] in pixels of `scale` times `image`'s) onto `image`, in place: each edge
    marked at `samples` points, all rings at once -- the outlines of a slide's nuclei on its thumbnail.

    >>> image = np.zeros((4, 4, 3), np.uint8)
    >>> draw_rings(image, [[[10, 10], [25, 10], [25, 25], [10, 25], [10, 10]]], scale=10)
    >>> image[..., 1].astype(bool).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    rings = [np.asarray(ring, float) for ring in rings if len(ring) > 1]
    if not rings:
        return
    start = np.concatenate([ring[:-1] for ring in rings])
    step = np.concatenate([np.diff(ring, axis=0) for ring in rings])
    t = np.arange(samples, dtype=float)[:, None, None] / samples
    xy = np.floor((start + t * step).reshape(-1, 2) / scale).astype(np.int64)
    inside = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < image.shape[1]) & (xy[:, 1] < image.shape[0])
    image[xy[inside, 1], xy[inside, 0]] = color


def error_overlay(image: np.ndarray, true: np.ndarray, pred: np.ndarray, *, alpha: float = 0.6) -> np.ndarray:
    """Colour pixels by agreement, as the paper's Figures 1 and 4.

    Green where prediction and ground truth are both foreground (true
    positive), yellow where only the prediction is (false positive), red where
    only the ground truth is (false negative); the image shows through with
    weight ``1 - alpha``.

    >>> img = np.zeros((1, 3, 3), dtype=np.uint8)
    >>> error_overlay(img, np.array([[1, 1, 0]]), np.array([[1, 0, 1]]), alpha=1.0)[0].tolist()
    [[0, 200, 0], [220, 0, 0], [255, 215, 0]]
    """
    t, p = np.asarray(true) > 0, np.asarray(pred) > 0
    if t.shape != image.shape[:2] or p.shape != image.shape[:2]:
        raise ValueError("image, true and pred must have the same height and width")
    out = image.astype(np.float64)
    for mask, colour in ((t & p, TP_COLOR), (p & ~t, FP_COLOR), (t & ~p, FN_COLOR)):
        out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, dtype=np.float64)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def crowded_window(label: np.ndarray, size: int) -> tuple[slice, slice]:
    """The `size` x `size` window where most pixels of different nuclei touch (for zoomed figures).

    Touching pixels are foreground pixels with a 4-neighbour of another
    nonzero id; the window with the most of them wins (ties: top-left first).

    >>> label = np.zeros((8, 8), dtype=int); label[5:7, 4] = 1; label[5:7, 5] = 2
    >>> crowded_window(label, 4)
    (slice(3, 7, None), slice(2, 6, None))
    """
    label = np.asarray(label)
    size = min(size, *label.shape)
    touch = np.zeros(label.shape, dtype=np.int64)
    vertical = (label[:-1] > 0) & (label[1:] > 0) & (label[:-1] != label[1:])
    horizontal = (label[:, :-1] > 0) & (label[:, 1:] > 0) & (label[:, :-1] != label[:, 1:])
    touch[:-1] |= vertical
    touch[1:] |= vertical
    touch[:, :-1] |= horizontal
    touch[:, 1:] |= horizontal
    integral = np.pad(touch.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    r, c = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return slice(int(r), int(r) + size), slice(int(c), int(c) + size)
