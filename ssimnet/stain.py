"""Stain optics: the Beer–Lambert law of paper Eq. (1).

An RGB image ``I`` with illumination ``I0 = 255`` has optical density
``V = log(I0 / I)``, and ``V = W H`` where the columns of ``W`` are the colours
of the stains and ``H`` their densities per pixel.  This module holds the
conversions in both directions and the reference H&E stain matrix of Ruifrok &
Johnston (2001).  Stain *estimation* (Vahadane's sparse NMF, paper ref. [21]) is
built on top of these.

Examples
--------
>>> import numpy as np
>>> rgb = np.array([[[255, 255, 255], [100, 50, 200]]], dtype=np.uint8)
>>> od = rgb_to_od(rgb)
>>> od[0, 0]
array([0., 0., 0.])
>>> int(np.abs(od_to_rgb(od).astype(int) - rgb).max())
0
"""

from __future__ import annotations

import numpy as np

__all__ = ["I0", "RUIFROK_HE", "rgb_to_od", "od_to_rgb"]

#: Illumination intensity of 8-bit images (paper Eq. 1).
I0: float = 255.0

#: Reference stain colours (unit optical-density vectors, rows: hematoxylin,
#: eosin; columns: R, G, B) from Ruifrok & Johnston, "Quantification of
#: histochemical staining by color deconvolution", Anal. Quant. Cytol. Histol.
#: 23(4), 2001 -- the same matrix as ``skimage.color.hed_from_rgb`` uses.
RUIFROK_HE: np.ndarray = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]])
RUIFROK_HE = RUIFROK_HE / np.linalg.norm(RUIFROK_HE, axis=1, keepdims=True)
RUIFROK_HE.setflags(write=False)


def rgb_to_od(image: np.ndarray) -> np.ndarray:
    """Optical density ``log(I0 / I)`` of an 8-bit RGB image (paper Eq. 1).

    Intensities are clipped to ``[1, 255]`` first, so pure black gives a large
    but finite density and pure white gives exactly 0.

    Parameters
    ----------
    image : (..., 3) array of uint8

    Returns
    -------
    (..., 3) array of float64, non-negative.
    """
    intensity = np.clip(np.asarray(image, dtype=np.float64), 1.0, I0)
    return np.log(I0 / intensity)


def od_to_rgb(od: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_od`: ``I = I0 exp(-V)``, rounded to uint8."""
    intensity = I0 * np.exp(-np.maximum(np.asarray(od, dtype=np.float64), 0.0))
    return np.clip(np.rint(intensity), 0, 255).astype(np.uint8)
