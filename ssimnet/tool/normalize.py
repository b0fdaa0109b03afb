"""Stain normalisation: every image's stains mapped onto one reference (beyond the paper).

A network trained on one lab's slides sees another lab's paler or bluer
slides as out of distribution: the probability of its nuclei drops below the
threshold and most of them are missed.  Vahadane et al. (IEEE TMI 2016,
Sec. III-C; paper ref. [21]) normalise an image by keeping its stain
*densities* and replacing its stain *colours*:

1. the image's own stain matrix ``W`` and densities ``H`` (``V = W H``, paper
   Eq. 1, by :class:`ssimnet.pseudo.stain.VahadaneSeparator`);
2. each stain's densities scaled so that their 99th percentile over tissue
   pixels equals the reference's (``max_density``);
3. the image rebuilt with the reference colours: ``I = I0 exp(-W_ref H')``.

:class:`StainNormalizer` follows the ``fit`` / ``transform`` convention of
tiatoolbox's ``StainNormalizer``: ``fit`` learns the reference from one or
more images (label-free: the median stain colours and 99th-percentile
densities of the images), ``transform`` maps any image onto it.  The
package's reference, :data:`ssimnet.config.STAIN_REFERENCE`, was fitted on
the 30 MoNuSeg training images.

Examples
--------
>>> from ssimnet.synthetic import synthetic_tile
>>> tile = synthetic_tile((96, 96), seed=0)
>>> norm = StainNormalizer(seed=0).fit(tile.image)
>>> out = norm.transform(tile.image)
>>> out.shape, out.dtype
((96, 96, 3), dtype('uint8'))
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import asdict

import numpy as np

from ..config import (
    DEFAULT_INFERENCE,
    DEFAULT_PSEUDO,
    PSEUDO_STAIN_SOLVER,
    STAIN_REFERENCE,
    InferenceConfig,
    Profile,
    StainReference,
)
from ..pseudo.stain import VahadaneSeparator, check_solver, nonnegative_unmix, od_to_rgb, rgb_to_od, tissue_mask
from .stain_guard import StainCheck, guard_stains, stained_mask

__all__ = ["StainNormalizer", "max_density", "stain_normalizer", "inference_normalizer", "segment_normalizer"]


def max_density(density: np.ndarray, tissue: np.ndarray, *, percentile: float) -> np.ndarray:
    """The `percentile` of each stain's density over the tissue pixels, shape (2,).

    Parameters
    ----------
    density : (H, W, 2) array
        Stain densities (:meth:`ssimnet.pseudo.stain.VahadaneSeparator.transform`).
    tissue : (H, W) bool
        Tissue pixels (:func:`ssimnet.pseudo.stain.tissue_mask`); all pixels when none is tissue.

    Examples
    --------
    >>> d = np.stack([np.arange(100.0).reshape(10, 10), np.ones((10, 10))], axis=-1)
    >>> max_density(d, d[..., 0] >= 50, percentile=50).tolist()
    [74.5, 1.0]
    """
    pixels = density[tissue] if np.any(tissue) else density.reshape(-1, density.shape[-1])
    return np.percentile(pixels, percentile, axis=0)


class StainNormalizer:
    """Map images onto reference stain colours and densities (Vahadane et al. 2016).

    Parameters
    ----------
    percentile : float
        Percentile of a stain's tissue densities that is matched to the
        reference's (Vahadane et al. use 99).
    min_scale : float
        Smallest factor a stain's densities are scaled by: 0 matches the
        reference both ways, 1 (the default, :attr:`InferenceConfig.normalize_min_scale`)
        only ever strengthens a pale stain and leaves a darker-than-reference
        image's densities as they are.
    n_samples : int
        Tissue pixels sampled to fit each image's stain matrix.
    seed : int
        Seed of the stain fits.
    solver : {"cd", "exact"}
        How each image's stain matrix is fitted (:class:`ssimnet.pseudo.stain.VahadaneSeparator`).
    order : bool
        Name hematoxylin by where each stain is when the separation's
        colour rule is clearly wrong (:func:`ssimnet.tool.stain_guard.order_stains`);
        False measures as version 0.2 did (the stress test's comparison).
    hematoxylin_only : bool
        Treat the image as stained by hematoxylin alone (what ``normalize="auto"``
        does with a one-stain image, :attr:`ssimnet.tool.stain_guard.StainCheck.one_stain`):
        the two measured stains are two shades of it, so their densities are
        added, scaled to the reference's hematoxylin and painted in its colour,
        with no eosin.  See :meth:`one_stain`.

    Attributes
    ----------
    stain_matrix_ : (2, 3) array
        Reference unit stain colours, row 0 hematoxylin.
    max_density_ : (2,) array
        Reference densities at `percentile`, hematoxylin and eosin.
    """

    def __init__(self, *, percentile: float = 99.0, min_scale: float = DEFAULT_INFERENCE.normalize_min_scale, n_samples: int = DEFAULT_PSEUDO.stain_samples,
                 seed: int = 0, solver: str = PSEUDO_STAIN_SOLVER, order: bool = True,
                 hematoxylin_only: bool = False) -> None:
        if not 50.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must lie in [50, 100], got {percentile}")
        if min_scale < 0:
            raise ValueError(f"min_scale must be >= 0, got {min_scale}")
        self.percentile = percentile
        self.min_scale = min_scale
        self.n_samples = n_samples
        self.seed = seed
        self.solver = check_solver(solver)
        self.order = order
        self.hematoxylin_only = hematoxylin_only

    @classmethod
    def from_reference(cls, reference: StainReference, *, min_scale: float = DEFAULT_INFERENCE.normalize_min_scale,
                       n_samples: int = DEFAULT_PSEUDO.stain_samples, seed: int = 0,
                       solver: str = PSEUDO_STAIN_SOLVER, order: bool = True) -> StainNormalizer:
        """A normaliser onto a stored reference (such as :data:`ssimnet.config.STAIN_REFERENCE`)."""
        norm = cls(percentile=reference.percentile, min_scale=min_scale, n_samples=n_samples, seed=seed, solver=solver,
                   order=order)
        norm.stain_matrix_ = np.asarray(reference.stain_matrix, dtype=np.float64)
        norm.max_density_ = np.asarray(reference.max_density, dtype=np.float64)
        return norm

    def reference(self) -> StainReference:
        """The fitted reference, to store in a configuration."""
        self._check_fitted()
        return _reference(self.stain_matrix_, self.max_density_, self.percentile)

    def settings(self) -> dict[str, object]:
        """Everything that decides :meth:`transform`'s output: what keys cached results of it."""
        return {"reference": asdict(self.reference()), "min_scale": self.min_scale, "n_samples": self.n_samples,
                "seed": self.seed, "solver": self.solver, "order": self.order,
                "hematoxylin_only": self.hematoxylin_only}

    def one_stain(self, source: StainReference, check: StainCheck) -> tuple[StainNormalizer, StainReference]:
        """This normalisation for an image of one stain, and the image's stains to map from.

        The normaliser is a copy with ``hematoxylin_only=True``; the source keeps
        the measured colours (tiles are unmixed with them) and records as the
        hematoxylin's density the `percentile` of both stains' densities added
        (``check.combined_density``).

        >>> from ssimnet.config import STAIN_REFERENCE
        >>> from ssimnet.tool.stain_guard import StainCheck
        >>> norm = StainNormalizer.from_reference(STAIN_REFERENCE)
        >>> check = StainCheck(angle=3.0, spread=(0.2, 0.2), swapped=False, one_stain=True, combined_density=1.5)
        >>> h, source = norm.one_stain(STAIN_REFERENCE, check)
        >>> h.hematoxylin_only, source.max_density
        (True, (1.5, 0.0))
        """
        self._check_fitted()
        one = copy.copy(self)
        one.hematoxylin_only = True
        return one, _reference(np.asarray(source.stain_matrix), np.array([check.combined_density, 0.0]),
                                source.percentile)

    def measure(self, image: np.ndarray) -> StainReference:
        """The stain colours and `percentile` densities of one (H, W, 3) uint8 image.

        What :meth:`transform` maps from; measured on a thumbnail, it maps
        every tile of a large region the same way.
        """
        return self.measure_densities(image)[0]

    def measure_densities(self, image: np.ndarray) -> tuple[StainReference, np.ndarray]:
        """:meth:`measure`, and the image's (H, W, 2) stain densities it was measured from.

        Both can go to :meth:`transform`, which then need not unmix the image again.
        """
        source, density, _ = self.measure_checked(image)
        return source, density

    def measure_checked(self, image: np.ndarray) -> tuple[StainReference, np.ndarray, StainCheck]:
        """:meth:`measure_densities`, and what the stain guard found (:func:`ssimnet.tool.stain_guard.check_stains`).

        Hematoxylin is the stain the separation names so, unless the other
        is clearly the one concentrated in nuclei
        (:func:`~ssimnet.tool.stain_guard.order_stains`): a lavender or blue
        counterstain absorbs more red than the nuclei do, and would be
        mapped onto the reference's hematoxylin.
        """
        tissue = tissue_mask(image)
        separator = VahadaneSeparator(n_samples=self.n_samples, seed=self.seed, solver=self.solver).fit(image, tissue=tissue)
        stains, density = separator.stain_matrix_, separator.transform(image)
        masks = (tissue, stained_mask(image))  # the guard acts where both agree (ssimnet.tool.stain_guard)
        top = max_density(np.concatenate([density, density.sum(-1, keepdims=True)], -1), tissue,
                          percentile=self.percentile)  # each stain's, and both together's (one_stain)
        stains, density, check = guard_stains(stains, density, masks, order=self.order,
                                              tissue_share=float(np.mean(tissue)), combined_density=float(top[2]))
        top = top[:2] if not check.swapped else top[1::-1]
        return _reference(stains, top, self.percentile), density, check

    def fit(self, images: np.ndarray | Iterable[np.ndarray]) -> StainNormalizer:
        """Learn the reference from one (H, W, 3) uint8 image or several: the median of their stain colours and densities.

        The images may come from a generator: each is measured and released in turn.
        """
        images = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else images
        measured = [self.measure(image) for image in images]
        if not measured:
            raise ValueError("fit needs at least one image")
        stains = np.median([m.stain_matrix for m in measured], axis=0)
        self.stain_matrix_ = stains / np.linalg.norm(stains, axis=1, keepdims=True)
        self.max_density_ = np.median([m.max_density for m in measured], axis=0)
        return self

    def transform(self, image: np.ndarray, *, source: StainReference | None = None,
                  density: np.ndarray | None = None) -> np.ndarray:
        """`image` ((H, W, 3) uint8) with the reference's stain colours and density range; (H, W, 3) uint8.

        A stain absent from the image (no density at the percentile) is left
        at zero rather than scaled.  With ``hematoxylin_only``, both stains'
        densities are hematoxylin's, and the first density of `source` is
        theirs together, as :meth:`one_stain` makes it.

        Parameters
        ----------
        source : StainReference, optional
            The image's own stains (:meth:`measure`); measured on `image` when not given.
        density : (H, W, 2) array, optional
            `image`'s densities under `source`'s stains (:meth:`measure_densities`),
            when computed already; unmixed from `image` when not given.
        """
        self._check_fitted()
        if source is None:
            source, density = self.measure_densities(image)
        elif density is None:
            density = nonnegative_unmix(rgb_to_od(image), np.asarray(source.stain_matrix))
        elif density.shape != (*image.shape[:2], 2):
            raise ValueError(f"density must be of shape {(*image.shape[:2], 2)}, got {density.shape}")
        if self.hematoxylin_only:
            density = np.stack([density.sum(-1), np.zeros(density.shape[:2])], axis=-1)
        own = np.asarray(source.max_density, dtype=np.float64)
        scale = np.where(own > 1e-6, np.maximum(self.max_density_ / np.maximum(own, 1e-6), self.min_scale), 1.0)
        return od_to_rgb((density * scale) @ self.stain_matrix_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "stain_matrix_"):
            raise RuntimeError("call fit() or from_reference() before transform()")


def _reference(stains: np.ndarray, top: np.ndarray, percentile: float) -> StainReference:
    return StainReference(stain_matrix=tuple(tuple(float(v) for v in row) for row in stains),
                          max_density=(float(top[0]), float(top[1])), percentile=percentile)


def stain_normalizer(settings: InferenceConfig, *, n_samples: int = DEFAULT_PSEUDO.stain_samples,
                     seed: int = 0, order: bool = True) -> StainNormalizer:
    """The normalisation onto :data:`STAIN_REFERENCE` with `settings`' density scaling and stain solver
    (`order`: :class:`StainNormalizer`'s)."""
    return StainNormalizer.from_reference(STAIN_REFERENCE, min_scale=settings.normalize_min_scale,
                                          n_samples=n_samples, seed=seed, solver=settings.stain_solver, order=order)


def inference_normalizer(settings: InferenceConfig, *, n_samples: int = DEFAULT_PSEUDO.stain_samples,
                         seed: int = 0) -> StainNormalizer | None:
    """What a network segmenting with `settings` normalises with (:func:`stain_normalizer`), or None
    when ``settings.normalize`` is ``"off"``.  With ``"auto"`` the segmenter normalises a one-stain
    image as hematoxylin only (:meth:`StainNormalizer.one_stain`)."""
    return None if settings.normalize == "off" else stain_normalizer(settings, n_samples=n_samples, seed=seed)


def segment_normalizer(profile: Profile, *, seed: int = 0) -> StainNormalizer:
    """The normalisation ``ssimnet segment`` uses with the network `profile` trains for the tool
    (:meth:`ssimnet.config.Profile.for_tool`), whether or not that network normalises."""
    tool = profile.for_tool()
    return stain_normalizer(tool.inference, n_samples=profile.pseudo.stain_samples, seed=seed)
