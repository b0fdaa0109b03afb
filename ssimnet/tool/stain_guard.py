"""The stain guard: which measured stain is hematoxylin, and whether an image has two stains to normalise.

Stain normalisation (:mod:`ssimnet.tool.normalize`) maps an image's
hematoxylin onto the reference's hematoxylin and its eosin onto the
reference's eosin.  Two things can make that mapping paint stroma and
background as hematoxylin, so that the network sees nuclei everywhere:

1. **The stains are swapped.**  The separation returns two stain colours
   and calls hematoxylin the one that absorbs more red light
   (:class:`ssimnet.pseudo.stain.VahadaneSeparator`).  When the
   counterstain is lavender or blue (little eosin, a bluish scanner), the
   counterstain absorbs more red than the nuclei do and the names swap.
   What does not depend on colour is *where* each stain is: hematoxylin is
   dense in the nuclei and light elsewhere, a counterstain is spread over
   the tissue.  :func:`stain_spread` measures that (median over 99th
   percentile of a stain's densities), on two masks that fail in different
   images -- the tissue (:func:`ssimnet.pseudo.stain.tissue_mask`, which in
   a pale image holds little but nuclei) and every stained pixel
   (:func:`stained_mask`) -- and the guard acts only where both agree; :func:`order_stains`
   swaps the names when the one called hematoxylin is clearly the more
   spread (by more than ``order_margin``) and the other is a real stain,
   not noise (its 99th-percentile density at least half the first's: in a
   hematoxylin-only image the tissue *is* the nuclei, evenly dense, and the
   second "stain" is faint noise).
2. **There is no counterstain.**  In an eosin-free image (a smear, a
   hematoxylin-only stain) the second colour the separation finds is a
   lighter shade of hematoxylin, close in colour and just as sparse.
   Normalising paints it as eosin and the nuclei fade.  :func:`check_stains`
   calls such an image *one-stain* when its two stain colours are less than
   ``one_stain_angle`` degrees apart and neither is clearly the more spread
   (their spreads within a factor ``one_stain_spread``); ``normalize="auto"``
   then leaves its colours as they are.

The thresholds (:data:`ssimnet.config.STAIN_GUARD`) were chosen on ten
MoNuSeg *training* images and their stress-tested copies
(:mod:`ssimnet.runs.stress`); see ``studies/stain_stress.py``.

Examples
--------
>>> import numpy as np
>>> stains = np.array([[0.2, 0.9, 0.4], [0.65, 0.7, 0.3]])  # the red-absorbing one first
>>> density = np.zeros((4, 4, 2)); density[..., 0] = 0.5; density[0, 0, 1] = 2.0  # row 0 everywhere
>>> ordered, _, swapped = order_stains(stains, density, np.ones((4, 4), bool), margin=1.5)
>>> swapped, ordered[0].tolist()
(True, [0.65, 0.7, 0.3])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ..config import DEFAULT_PSEUDO, STAIN_GUARD
from ..pseudo.stain import rgb_to_od

__all__ = ["StainCheck", "stained_mask", "stain_spread", "order_stains", "check_stains", "guard_stains"]


def stained_mask(image: np.ndarray, *, min_od: float = DEFAULT_PSEUDO.tissue_min_od) -> np.ndarray:
    """Pixels with any stain: summed optical density above `min_od`, however light.

    Where each stain is is judged on these, not on
    :func:`ssimnet.pseudo.stain.tissue_mask`: in a pale image the lightness
    threshold keeps little but the nuclei, over which hematoxylin is evenly
    dense, and pale stroma counts as much as dark.

    >>> stained_mask(np.array([[[255, 255, 255], [230, 200, 220]]], np.uint8)).tolist()
    [[False, True]]
    """
    return rgb_to_od(image).sum(-1) > min_od


def stain_spread(density: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """How spread each stain is over the tissue: the median of its densities over their 99th percentile, (2,).

    Near 0 for a stain dense in a few places (hematoxylin in nuclei), near 1
    for one laid evenly over the tissue (a counterstain).  Scaling a stain's
    densities does not change it.

    >>> d = np.stack([np.r_[np.zeros(90), np.ones(10)], np.full(100, 0.7)], axis=-1)
    >>> stain_spread(d, np.ones(100, bool)).round(2).tolist()
    [0.0, 1.0]
    """
    return _Where.on(density, tissue).spread


class _Where(NamedTuple):
    """Where each stain is on one mask: its spread and its 99th-percentile density, (2,) each, taken once."""

    spread: np.ndarray
    top: np.ndarray

    @classmethod
    def on(cls, density: np.ndarray, mask: np.ndarray) -> _Where:
        pixels = density[mask] if np.any(mask) else density.reshape(-1, density.shape[-1])
        top = np.percentile(pixels, 99, axis=0)
        return cls(np.where(top > 1e-6, np.median(pixels, axis=0) / np.maximum(top, 1e-6), 1.0), top)

    def swapped(self) -> _Where:
        return _Where(self.spread[::-1], self.top[::-1])


def _measure(density: np.ndarray, tissue: np.ndarray | Sequence[np.ndarray]) -> list[_Where]:
    return [_Where.on(density, mask) for mask in _masks(tissue)]


def _misnamed(where: list[_Where], margin: float, min_density: float) -> bool:
    """Whether the stain called hematoxylin is the counterstain, on every mask (see :func:`order_stains`)."""
    return all(w.spread[0] > margin * w.spread[1] and w.top[1] >= min_density * w.top[0] for w in where)


def order_stains(stains: np.ndarray, density: np.ndarray, tissue: np.ndarray | Sequence[np.ndarray], *,
                 margin: float = STAIN_GUARD.order_margin,
                 min_density: float = STAIN_GUARD.order_min_density) -> tuple[np.ndarray, np.ndarray, bool]:
    """The stains and densities with hematoxylin first, judged by where each stain is.

    Swapped when the stain called hematoxylin is more than `margin` times as
    spread (:func:`stain_spread`) as the other, and the other's 99th-percentile
    density is at least `min_density` times its own, on `tissue` -- on every
    one of them when it is several masks; else as they came.

    Returns
    -------
    stains : (2, 3) array
    density : (H, W, 2) array
    swapped : bool
    """
    if _misnamed(_measure(density, tissue), margin, min_density):
        return np.asarray(stains)[::-1].copy(), density[..., ::-1].copy(), True
    return np.asarray(stains), density, False


@dataclass(frozen=True)
class StainCheck:
    """What the guard found in one image's stains.

    Attributes
    ----------
    angle : float
        Degrees between the two stain colours.
    spread : (float, float)
        :func:`stain_spread` of hematoxylin and of the counterstain.
    swapped : bool
        The separation's names were swapped (:func:`order_stains`).
    one_stain : bool
        The image has no counterstain to normalise (see the module).
    tissue : float
        The share of the image that is tissue.
    combined_density : float
        The 99th-percentile density of both stains added, over the tissue:
        a one-stain image's hematoxylin density
        (:meth:`ssimnet.tool.normalize.StainNormalizer.one_stain`).
    """

    angle: float
    spread: tuple[float, float]
    swapped: bool
    one_stain: bool
    tissue: float = 1.0
    combined_density: float = 0.0

    def describe(self) -> str:
        """One line on what was found, for a warning or a run record."""
        ratio = max(self.spread) / max(min(self.spread), 1e-6)
        found = (f"stain colours {self.angle:.1f} degrees apart, spread {self.spread[0]:.2f} and "
                 f"{self.spread[1]:.2f} (ratio {ratio:.2f})")
        return f"one stain only ({found})" if self.one_stain else found


def check_stains(stains: np.ndarray, density: np.ndarray, tissue: np.ndarray | Sequence[np.ndarray], *,
                 swapped: bool = False, one_stain_angle: float = STAIN_GUARD.one_stain_angle,
                 one_stain_spread: float = STAIN_GUARD.one_stain_spread,
                 tissue_share: float | None = None) -> StainCheck:
    """The :class:`StainCheck` of stains (2, 3) and their densities (H, W, 2) on `tissue` (H, W), or on
    several masks, where the spreads must be within `one_stain_spread` on every one and the first is
    recorded; `tissue_share` is recorded as the image's tissue (default: the first mask's share).

    >>> stains = np.array([[0.6, 0.75, 0.3], [0.55, 0.78, 0.3]])  # 3 degrees apart
    >>> density = np.random.default_rng(0).exponential(1.0, (64, 64, 2))  # equally spread
    >>> check_stains(stains, density, np.ones((64, 64), bool)).one_stain
    True
    """
    share = float(np.mean(_masks(tissue)[0])) if tissue_share is None else tissue_share
    return _check(stains, _measure(density, tissue), swapped, share, one_stain_angle, one_stain_spread)


def guard_stains(stains: np.ndarray, density: np.ndarray, masks: Sequence[np.ndarray], *, order: bool = True,
                 tissue_share: float, combined_density: float = 0.0) -> tuple[np.ndarray, np.ndarray, StainCheck]:
    """:func:`order_stains` (when `order`) and then :func:`check_stains` with the default thresholds, each
    mask's statistics taken once for both: what :meth:`ssimnet.tool.normalize.StainNormalizer.measure_checked`
    runs on every image."""
    where = _measure(density, list(masks))
    swapped = order and _misnamed(where, STAIN_GUARD.order_margin, STAIN_GUARD.order_min_density)
    if swapped:
        stains, density, where = np.asarray(stains)[::-1].copy(), density[..., ::-1].copy(), [w.swapped() for w in where]
    check = _check(stains, where, swapped, tissue_share, STAIN_GUARD.one_stain_angle, STAIN_GUARD.one_stain_spread)
    return np.asarray(stains), density, replace(check, combined_density=combined_density)


def _masks(tissue: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    return list(tissue) if isinstance(tissue, (list, tuple)) else [tissue]


def _check(stains: np.ndarray, where: list[_Where], swapped: bool, tissue_share: float, one_stain_angle: float,
           one_stain_spread: float) -> StainCheck:
    stains = np.asarray(stains, dtype=np.float64)
    unit = stains / np.maximum(np.linalg.norm(stains, axis=1, keepdims=True), 1e-12)
    angle = float(np.degrees(np.arccos(np.clip(unit[0] @ unit[1], -1.0, 1.0))))
    ratios = [float(w.spread.max() / max(w.spread.min(), 1e-6)) for w in where]
    return StainCheck(angle=angle, spread=(float(where[0].spread[0]), float(where[0].spread[1])), swapped=swapped,
                      one_stain=angle < one_stain_angle and all(ratio < one_stain_spread for ratio in ratios),
                      tissue=tissue_share)
