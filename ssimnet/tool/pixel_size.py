"""Pixel size from the nuclei themselves (``--mpp auto``): an image whose nuclei look half-size is a 20x scan
(beyond the paper).

A network learns nuclei at the size they have in its training images
(:mod:`ssimnet.tool.resample`); a 20x scan segmented as it is loses many of
them.  Many images come without their pixel size.  Asked to
(``ssimnet segment --mpp auto``, ``Segmenter.segment(..., mpp="auto")``), the
tool measures how large an image's nuclei are, label-free, two ways, and
enlarges the image twice only when both say they are small:

- **in the stain**: the scale at which the hematoxylin's blobs respond most
  strongly to a scale-normalised Laplacian of Gaussian (Lindeberg's blob
  detector), :func:`nucleus_sigma`.  Hematoxylin is read with the fixed
  Ruifrok and Johnston basis (:func:`skimage.color.rgb2hed`), so that the
  measurement does not depend on the image's stain measurement;
- **as the network segments them**: the median area of the nuclei it finds
  in the image as it is, :func:`median_area`.

Each is compared with the same measure on the network's training images
(:attr:`ssimnet.config.InferenceConfig.nucleus_scale` and ``nucleus_area``,
:func:`training_references`).  Either alone is fooled: a texture of small
dark grains gives a small blob scale, and a stain the network reads badly
gives small nuclei.  Only one step is made, to twice the network's pixel
size: 20x is the common lower magnification, and neither measure tells a
10x scan from a 20x scan of small nuclei.  It is not the default: scored
as the default twice, before the watershed fallback and beside it, it
lowered TNBC's AJI a little each time (chapter 10 of the book,
``results/cpu/stain_stress_*``).

Examples
--------
A disc of radius r responds most at sigma = r / sqrt(2); halving the image
halves it:

>>> from skimage.draw import disk
>>> image = np.full((128, 128, 3), 235, np.uint8)
>>> for centre in [(32, 32), (32, 96), (96, 32), (96, 96)]:
...     image[disk(centre, 10)] = (70, 40, 140)
>>> round(nucleus_sigma(image), 1), round(nucleus_sigma(image[::2, ::2]), 1)
(6.7, 3.4)
>>> small = dict(nucleus_scale=6.7, nucleus_area=400.0, enlarge_below=0.7, area_below=0.6, network_mpp=0.25)
>>> estimate_mpp(3.4, 100.0, **small), estimate_mpp(3.4, 380.0, **small), estimate_mpp(6.7, 100.0, **small)
(0.5, None, None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["AUTO", "SIGMAS", "nucleus_sigma", "median_area", "training_references", "estimate_mpp"]

#: The pixel size that asks for the check: ``--mpp auto``.
AUTO = "auto"

#: The scales tried, in pixels: a quarter octave apart, 1.4 to 16 (nuclei about 4 to 45 pixels across).
SIGMAS: tuple[float, ...] = tuple(float(2.0 ** (k / 4)) for k in range(2, 17))

#: Which quantile of each scale's response is compared: the strongest blobs', not the background's.
_QUANTILE = 99.5

#: The weakest response that is a blob, in hematoxylin optical density: a flat image's is rounding noise.
_MIN_RESPONSE = 1e-4


def nucleus_sigma(image: np.ndarray, *, sigmas: tuple[float, ...] = SIGMAS) -> float | None:
    """The scale of an RGB image's nuclei in its stain: the `sigmas` value, in pixels, whose scale-normalised
    Laplacian of Gaussian of the hematoxylin has the largest 99.5th percentile.

    The hematoxylin is averaged over 2x2 blocks first (four times fewer
    pixels; each sigma halved to match).

    Parameters
    ----------
    image : (H, W, 3) uint8
    sigmas : tuple of float
        Increasing scales to try, in pixels of `image`.

    Returns
    -------
    float or None
        None when no scale responds (no dark blobs: a blank or flat image).
    """
    from scipy import ndimage as ndi
    from skimage.color import rgb2hed

    hematoxylin = rgb2hed(np.asarray(image)[..., :3]).astype(np.float32)[..., 0]
    height, width = (hematoxylin.shape[0] // 2) * 2, (hematoxylin.shape[1] // 2) * 2
    if height == 0 or width == 0:
        return None
    pooled = hematoxylin[:height, :width].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    responses = [float(np.percentile(-((s / 2) ** 2) * ndi.gaussian_laplace(pooled, s / 2), _QUANTILE))
                 for s in sigmas]
    best = int(np.argmax(responses))
    return float(sigmas[best]) if responses[best] > _MIN_RESPONSE else None


def median_area(label: np.ndarray) -> float:
    """The median area, in pixels, of the nuclei of an instance map (0 when it has none).

    >>> median_area(np.array([[1, 1, 0], [2, 0, 3], [2, 0, 3]]))
    2.0
    """
    areas = np.bincount(np.asarray(label).ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(areas)) if len(areas) else 0.0


def training_references(images: Iterable[np.ndarray],
                        segment: Callable[[np.ndarray], np.ndarray]) -> tuple[float | None, float | None]:
    """A network's references, measured on its training `images`: the median :func:`nucleus_sigma` of those
    that have one, and the median :func:`median_area` of the nuclei `segment` (the network, as it is) finds
    in each; (None, None) when no image has a scale."""
    sigmas, areas = [], []
    for image in images:
        sigma = nucleus_sigma(image)
        if sigma is not None:
            sigmas.append(sigma)
            areas.append(median_area(segment(image)))
    return (float(np.median(sigmas)), float(np.median(areas))) if sigmas else (None, None)


def estimate_mpp(sigma: float | None, area: float, *, nucleus_scale: float, nucleus_area: float,
                 enlarge_below: float, area_below: float, network_mpp: float) -> float | None:
    """The pixel size an image is segmented at, from its nuclei's scale in the stain (`sigma`) and the
    median `area` of those the network found in it as it is: twice `network_mpp` when `sigma` is below
    `enlarge_below` times the training images' `nucleus_scale` *and* `area` below `area_below` times their
    `nucleus_area`; else None (as it is)."""
    if sigma is None or sigma >= enlarge_below * nucleus_scale or area >= area_below * nucleus_area:
        return None
    return 2.0 * network_mpp
