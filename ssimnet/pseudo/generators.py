"""Candidate generators beyond the paper: other ways to draw the candidate map ``P``.

The paper's candidates are ``P = ActiveContour(FCM(I^T))`` (Eq. 3,
:mod:`ssimnet.pseudo.candidates`).  ``PseudoLabelConfig.candidate_method`` chooses
another generator; softening, USMI purification and the Voronoi labels then
work on its ``P`` unchanged (:func:`ssimnet.pseudo.labels.pseudo_labels`):

``"fcm"``
    the paper's Eq. (3).
``"otsu"``
    Otsu's threshold of the hematoxylin density of the image's own stain
    matrix (Vahadane, Eq. 1), smoothed by a Gaussian of ``threshold_sigma``.
``"otsu_ruifrok"``
    the same on the density of the fixed Ruifrok-Johnston matrix
    (:func:`skimage.color.rgb2hed`), as classical tools do.
``"consensus"``
    the pixels that at least two of ``"fcm"``, ``"otsu"`` and
    ``"otsu_ruifrok"`` call nucleus.
``"watershed"``
    the ``"otsu"`` foreground split into nuclei by a watershed on its
    distance transform (markers at least ``split_h`` pixels high, as the
    classical baseline), with a one-pixel gap wherever two nuclei touch
    (:func:`ssimnet.pseudo.touching.separate_touching`): each nucleus is then its
    own component, so softening peaks once per nucleus and the Voronoi
    edges run between touching nuclei.

Each generator returns :class:`ssimnet.pseudo.candidates.Candidates`: its raw mask
(before clean-up; for ``"fcm"`` the FCM cluster) and ``P``.  None reads
ground truth.

Examples
--------
>>> from ssimnet.config import PseudoLabelConfig
>>> from ssimnet.pseudo.candidates import label_candidates
>>> yy, xx = np.mgrid[:60, :80]
>>> density = (((yy - 30) ** 2 + (xx - 28) ** 2 < 100) | ((yy - 30) ** 2 + (xx - 46) ** 2 < 100)) * 1.0
>>> config = PseudoLabelConfig(min_size=20)
>>> [int(label_candidates(generate_candidates(m, density=density, config=config).candidates).max())
...  for m in ("otsu", "watershed")]                 # two touching discs: one blob, or two nuclei
[1, 2]
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2hed
from skimage.filters import threshold_otsu

from ..config import DEFAULT_PSEUDO, PseudoLabelConfig
from .candidates import Candidates, candidate_maps, clean_mask
from .touching import distance_watershed, separate_touching

__all__ = ["CANDIDATE_METHODS", "otsu_mask", "generate_candidates"]

#: The generators of ``PseudoLabelConfig.candidate_method``; "fcm" is the paper's.
CANDIDATE_METHODS: tuple[str, ...] = ("fcm", "otsu", "otsu_ruifrok", "consensus", "watershed")


def otsu_mask(density: np.ndarray, *, sigma: float = DEFAULT_PSEUDO.threshold_sigma, min_range: float = 0.0) -> np.ndarray:
    """Pixels above Otsu's threshold of a stain density smoothed by a Gaussian of `sigma`.

    All False when the smoothed density is flat or spans less than `min_range`.

    >>> d = np.zeros((10, 10)); d[2:5, 2:5] = 1.0
    >>> int(otsu_mask(d, sigma=0).sum())
    9
    """
    smooth = ndi.gaussian_filter(np.asarray(density, dtype=np.float64), sigma) if sigma > 0 else np.asarray(density)
    spread = np.ptp(smooth)
    if spread <= 0 or spread < min_range:
        return np.zeros(smooth.shape, dtype=bool)
    return smooth > threshold_otsu(smooth)


def generate_candidates(
    method: str,
    *,
    density: np.ndarray,
    config: PseudoLabelConfig,
    image: np.ndarray | None = None,
    hematoxylin: np.ndarray | None = None,
    seed: int = 0,
) -> Candidates:
    """The candidate map ``P`` of one image by `method` (see the module docstring).

    Parameters
    ----------
    method : one of :data:`CANDIDATE_METHODS`
    density : (H, W) float
        Hematoxylin density of the image's own stain matrix (channel 0 of
        :meth:`ssimnet.pseudo.stain.VahadaneSeparator.transform`).
    config : PseudoLabelConfig
    image : (H, W, 3) uint8, optional
        The RGB image; needed by ``"otsu_ruifrok"`` and ``"consensus"``, and by
        ``"fcm"`` with ``config.fcm_image == "rgb"``.
    hematoxylin : (H, W, 3) uint8, optional
        ``I^T`` (Eq. 2); needed by ``"fcm"`` and ``"consensus"``.
    seed : int
        Seed of the FCM.
    """
    if method not in CANDIDATE_METHODS:
        raise ValueError(f"candidate method must be one of {', '.join(map(repr, CANDIDATE_METHODS))}, got {method!r}")
    if method in ("fcm", "consensus") and hematoxylin is None:
        raise ValueError(f"candidate method {method!r} needs the hematoxylin image")
    if method in ("otsu_ruifrok", "consensus") and image is None:
        raise ValueError(f"candidate method {method!r} needs the RGB image")

    def clean(mask: np.ndarray) -> np.ndarray:
        return clean_mask(mask, min_size=config.min_size, max_hole=config.max_hole)

    if method == "fcm":
        return candidate_maps(hematoxylin, config, seed=seed, image=image)
    own = otsu_mask(density, sigma=config.threshold_sigma)
    if method == "otsu":
        return Candidates(own, clean(own))
    if method in ("otsu_ruifrok", "consensus"):
        ruifrok = otsu_mask(rgb2hed(image)[..., 0], sigma=config.threshold_sigma)
        if method == "otsu_ruifrok":
            return Candidates(ruifrok, clean(ruifrok))
        votes = candidate_maps(hematoxylin, config, seed=seed, image=image).candidates.astype(np.uint8) + own + ruifrok
        return Candidates(votes >= 2, clean(votes >= 2))
    label = distance_watershed(own, h=config.split_h, min_size=config.min_size, max_hole=config.max_hole)
    return Candidates(own, separate_touching(label))
