"""The label-free pseudo labels of one image: all of paper Sec. 2.1 and the per-image part of 2.2.

:func:`pseudo_labels` chains the stages -- stain separation (Eq. 1-2),
candidates (Eq. 3, or another generator of :mod:`ssimnet.pseudo.generators`), softening (Eq. 4), the USMI of every patch (Algorithm 1)
and the Voronoi tri-label -- and returns every intermediate result, so the
book can show each stage.  It takes only the RGB image: no ground truth.
Selecting the patches to keep happens over a whole training set
(:func:`ssimnet.pseudo.purify.select_patches`).

Examples
--------
>>> from ssimnet.config import PseudoLabelConfig
>>> from ssimnet.synthetic import synthetic_tile
>>> result = pseudo_labels(synthetic_tile((256, 256), seed=0).image, PseudoLabelConfig())
>>> result.soft.dtype, float(result.soft.max()) <= 1.0, len(result.patches)
(dtype('float32'), True, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PseudoLabelConfig
from .generators import generate_candidates
from .purify import PatchStats, patch_usmi
from .soften import soften_labels
from .stain import VahadaneSeparator, hematoxylin_image
from .voronoi import voronoi_label

__all__ = ["PseudoLabels", "pseudo_labels", "labels_from_candidates"]


@dataclass(frozen=True)
class PseudoLabels:
    """Every stage's output for one image.

    Attributes
    ----------
    stains : (2, 3) float
        Estimated stain colours (row 0 hematoxylin).
    stain_fallback : bool
        True if the reference matrix had to be used.
    hematoxylin : (H, W, 3) uint8
        ``I^T`` (Eq. 2).
    fcm : (H, W) bool
        Fuzzy c-means nucleus cluster, before the active contour (with another
        candidate generator, its raw mask before clean-up).
    candidates : (H, W) bool
        Hard candidate map ``P`` (Eq. 3, or ``config.candidate_method``'s).
    soft : (H, W) float32
        Soft pseudo label (Eq. 4): 0 background, [0.5, 1) nuclei.
    voronoi : (H, W) uint8
        Tri-label: 1 nucleus point, 0 Voronoi edge, 2 ignore.
    patches : list of PatchStats
        USMI of every patch (Algorithm 1).
    """

    stains: np.ndarray
    stain_fallback: bool
    hematoxylin: np.ndarray
    fcm: np.ndarray
    candidates: np.ndarray
    soft: np.ndarray
    voronoi: np.ndarray
    patches: list[PatchStats]


def labels_from_candidates(candidates: np.ndarray, config: PseudoLabelConfig) -> dict[str, object]:
    """The stages that follow the candidate map ``P``: ``soft`` (Eq. 4), ``voronoi`` and ``patches`` (USMI).

    Returned as the keyword arguments of :class:`PseudoLabels` that they fill.
    """
    return {
        "soft": soften_labels(candidates, stop=config.soften_stop),
        "voronoi": voronoi_label(candidates, point_radius=config.point_radius),
        "patches": patch_usmi(candidates, size=config.patch_size, stride=config.patch_stride,
                              min_components=config.min_components),
    }


def pseudo_labels(image: np.ndarray, config: PseudoLabelConfig, *, seed: int = 0) -> PseudoLabels:
    """Run every pseudo-label stage on one RGB image.

    Parameters
    ----------
    image : (H, W, 3) uint8
        At least ``config.patch_size`` pixels in each direction.
    config : PseudoLabelConfig
    seed : int
        Seed of the stain-fit subsample and the FCM initialisation.

    Raises
    ------
    ValueError
        If the image is not (H, W, 3) uint8 or is smaller than one patch.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if min(image.shape[:2]) < config.patch_size:
        raise ValueError(
            f"image of {image.shape[0]}x{image.shape[1]} pixels is smaller than a "
            f"{config.patch_size}x{config.patch_size} patch"
        )
    separator = VahadaneSeparator.from_config(config, seed=seed).fit(image)
    density = separator.transform(image)
    hematoxylin = hematoxylin_image(density, separator.stain_matrix_)
    fcm, candidates = generate_candidates(config.candidate_method, density=density[..., 0], config=config, image=image,
                                          hematoxylin=hematoxylin, seed=seed)
    return PseudoLabels(
        stains=separator.stain_matrix_,
        stain_fallback=separator.fallback_,
        hematoxylin=hematoxylin,
        fcm=fcm,
        candidates=candidates,
        **labels_from_candidates(candidates, config),
    )
