"""Candidate nuclei: paper Eq. (3), ``P = ActiveContour(FCM(I^T))``.

The hematoxylin-only image ``I^T`` (Eq. 2) is converted to CIELAB and its
pixels are split into two clusters by fuzzy c-means (scikit-fuzzy).  The
clustering is fitted on a seeded subsample of pixels and every pixel then goes
to the centre it is nearest to -- for a fuzzy partition with ``m > 1`` the
cluster of highest membership is exactly the nearest centre, so this equals
``cmeans_predict`` followed by an argmax, without computing memberships for a
million pixels.  The nucleus cluster is the darker one (lower ``L*``).

The paper names only "active contour as a smoothing operation".  We use the
morphological Chan-Vese model (scikit-image ``morphological_chan_vese``) on
``L*``, initialised with the FCM mask: it keeps the FCM topology where the
image supports it, smooths ragged borders (``smoothing``) and drops isolated
speckle, and needs no edge map or per-object contour.  Ten iterations with
smoothing 2 gave the best pixel Dice against ground truth on a MoNuSeg
*training* image (0.74 vs 0.69 for raw FCM) and cost ~0.7 s per 1000² image;
more iterations changed little.  Components smaller than ``min_size`` pixels
are removed and holes smaller than ``max_hole`` pixels filled (a vesicular
nucleus has a pale centre; a large enclosed region is stroma between nuclei
and stays background).

Examples
--------
>>> from ssimnet.synthetic import synthetic_tile
>>> tile = synthetic_tile((128, 128), seed=0)
>>> from ssimnet.pseudo.stain import VahadaneSeparator, hematoxylin_image
>>> sep = VahadaneSeparator().fit(tile.image)
>>> P = candidate_nuclei(hematoxylin_image(sep.transform(tile.image), sep.stain_matrix_))
>>> P.dtype, P.shape
(dtype('bool'), (128, 128))
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.morphology import remove_small_holes, remove_small_objects
from skimage.segmentation import morphological_chan_vese

from ..config import DEFAULT_PSEUDO, PseudoLabelConfig

__all__ = ["FCM_FEATURES", "FCM_IMAGES", "FCM_NUCLEUS", "fuzzy_cmeans_mask", "clean_mask", "refine_candidates", "Candidates", "candidate_maps", "candidate_nuclei",
           "label_candidates"]

_EIGHT = np.ones((3, 3), dtype=bool)


#: What the FCM clusters (``PseudoLabelConfig.fcm_features``): all of CIELAB, or ``L*`` alone.
FCM_FEATURES: tuple[str, ...] = ("lab", "lightness")
#: Which image the FCM and the active contour see (``fcm_image``): ``I^T`` of Eq. 2, or the RGB image itself.
FCM_IMAGES: tuple[str, ...] = ("hematoxylin", "rgb")
#: Which of the two clusters is the nuclei (``fcm_nucleus``): the darker (lower ``L*``) or the smaller one.
FCM_NUCLEUS: tuple[str, ...] = ("darker", "smaller")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def fuzzy_cmeans_mask(
    lab: np.ndarray,
    *,
    m: float = DEFAULT_PSEUDO.fcm_m,
    n_samples: int = DEFAULT_PSEUDO.fcm_samples,
    min_lightness_range: float = DEFAULT_PSEUDO.min_lightness_range,
    features: str = DEFAULT_PSEUDO.fcm_features,
    nucleus: str = DEFAULT_PSEUDO.fcm_nucleus,
    seed: int = 0,
) -> np.ndarray:
    """Two-cluster fuzzy c-means on CIELAB pixels; True where the nucleus cluster wins.

    Parameters
    ----------
    lab : (H, W, 3) float
        CIELAB image.
    m : float
        Fuzzifier (> 1).
    n_samples : int
        Pixels sampled (seeded) to fit the centres.
    min_lightness_range : float
        Below this spread of ``L*`` the image is blank: nothing to cluster.
    features : {"lab", "lightness"}
        Cluster on ``L*, a*, b*`` or on ``L*`` alone.
    nucleus : {"darker", "smaller"}
        The nucleus cluster: the one of lower ``L*``, or the one fewer pixels
        are nearest to.
    seed : int

    Returns
    -------
    (H, W) bool; all False for a blank image.

    Examples
    --------
    >>> lab = np.zeros((4, 4, 3)); lab[..., 0] = 80; lab[:2, :1, 0] = 20   # two dark pixels in a pale image
    >>> int(fuzzy_cmeans_mask(lab).sum()), int(fuzzy_cmeans_mask(lab, features="lightness", nucleus="smaller").sum())
    (2, 2)
    """
    import skfuzzy

    _choice("features", features, FCM_FEATURES)
    _choice("nucleus", nucleus, FCM_NUCLEUS)
    pixels = lab.reshape(-1, 3) if features == "lab" else lab.reshape(-1, 3)[:, :1]
    if np.ptp(pixels[:, 0]) < min_lightness_range:
        return np.zeros(lab.shape[:2], dtype=bool)
    rng = np.random.default_rng(seed)
    idx = rng.choice(pixels.shape[0], size=min(n_samples, pixels.shape[0]), replace=False)
    centres, *_ = skfuzzy.cmeans(pixels[np.sort(idx)].T, c=2, m=m, error=1e-5, maxiter=300, seed=seed)
    if not np.all(np.isfinite(centres)):
        return np.zeros(lab.shape[:2], dtype=bool)
    nearest = ((pixels[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    cluster = int(np.argmin(centres[:, 0])) if nucleus == "darker" else int(np.argmin(np.bincount(nearest, minlength=2)))
    return (nearest == cluster).reshape(lab.shape[:2])


def clean_mask(mask: np.ndarray, *, min_size: int = DEFAULT_PSEUDO.min_size,
               max_hole: int = DEFAULT_PSEUDO.max_hole) -> np.ndarray:
    """Remove components below `min_size` pixels, then fill holes of at most `max_hole` pixels.

    >>> m = np.zeros((7, 7), dtype=bool); m[1:6, 1:6] = True; m[3, 3] = False; m[0, 6] = True
    >>> int(clean_mask(m, min_size=2, max_hole=1).sum())     # speck gone, hole filled
    25
    """
    mask = np.asarray(mask, dtype=bool)
    if min_size > 1:
        mask = remove_small_objects(mask, max_size=min_size - 1)
    return remove_small_holes(mask, max_size=max_hole) if max_hole > 0 else mask


def refine_candidates(
    lightness: np.ndarray,
    mask: np.ndarray,
    *,
    contour_iterations: int = DEFAULT_PSEUDO.contour_iterations,
    contour_smoothing: int = DEFAULT_PSEUDO.contour_smoothing,
    min_size: int = DEFAULT_PSEUDO.min_size,
    max_hole: int = DEFAULT_PSEUDO.max_hole,
) -> np.ndarray:
    """Active-contour smoothing and clean-up of an FCM mask (the ``ActiveContour`` of Eq. 3).

    Parameters
    ----------
    lightness : (H, W) float
        ``L*`` of the hematoxylin image.
    mask : (H, W) bool
        The FCM nucleus mask that initialises the contour.
    contour_iterations, contour_smoothing : int
        Morphological Chan-Vese iterations and smoothing steps (0 iterations
        skips the active contour).
    min_size, max_hole : int
        Smallest component kept and largest hole filled, in pixels.

    Returns
    -------
    (H, W) bool
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    if contour_iterations > 0 and not mask.all():
        mask = morphological_chan_vese(lightness, contour_iterations, init_level_set=mask, smoothing=contour_smoothing)
        mask = mask.astype(bool)
    return clean_mask(mask, min_size=min_size, max_hole=max_hole)


class Candidates(NamedTuple):
    """The two maps of Eq. (3): the FCM nucleus cluster and the candidates ``P`` after the active contour."""

    fcm: np.ndarray
    candidates: np.ndarray


def candidate_maps(hematoxylin: np.ndarray, config: PseudoLabelConfig = DEFAULT_PSEUDO, *, seed: int = 0,
                   image: np.ndarray | None = None) -> Candidates:
    """Paper Eq. (3), ``P = ActiveContour(FCM(I^T))``, keeping the FCM map as well.

    :func:`fuzzy_cmeans_mask` on the CIELAB pixels of the hematoxylin image
    ``I^T``, then :func:`refine_candidates` on its ``L*``, with the settings
    of `config`.  With ``config.fcm_image == "rgb"`` (a reading of the paper,
    not the paper's), both see the RGB `image` instead of ``I^T``.
    """
    _choice("fcm_image", config.fcm_image, FCM_IMAGES)
    if config.fcm_image == "rgb" and image is None:
        raise ValueError("fcm_image 'rgb' needs the RGB image")
    lab = rgb2lab(hematoxylin if config.fcm_image == "hematoxylin" else image)
    fcm = fuzzy_cmeans_mask(lab, m=config.fcm_m, n_samples=config.fcm_samples,
                            min_lightness_range=config.min_lightness_range, features=config.fcm_features,
                            nucleus=config.fcm_nucleus, seed=seed)
    candidates = refine_candidates(lab[..., 0], fcm, contour_iterations=config.contour_iterations,
                                   contour_smoothing=config.contour_smoothing, min_size=config.min_size,
                                   max_hole=config.max_hole)
    return Candidates(fcm, candidates)


def candidate_nuclei(hematoxylin: np.ndarray, config: PseudoLabelConfig = DEFAULT_PSEUDO, *, seed: int = 0) -> np.ndarray:
    """Hard candidate map ``P`` of paper Eq. (3) from the hematoxylin image ``I^T``; (H, W) bool.

    The ``candidates`` of :func:`candidate_maps`.
    """
    return candidate_maps(hematoxylin, config, seed=seed).candidates


def label_candidates(candidates: np.ndarray) -> np.ndarray:
    """The candidate nuclei as an instance map: the 8-connected components of ``P``, (H, W) int32.

    8-connectivity is the one USMI measures (:mod:`ssimnet.pseudo.purify`).

    >>> P = np.eye(3, dtype=bool)
    >>> int(label_candidates(P).max())                 # diagonal pixels touch
    1
    """
    return ndi.label(np.asarray(candidates, dtype=bool), structure=_EIGHT)[0].astype(np.int32)
