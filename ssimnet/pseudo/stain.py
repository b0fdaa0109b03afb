"""Stain optics and separation: paper Eq. (1)-(2).

An RGB image ``I`` with illumination ``I0 = 255`` has optical density
``V = log(I0 / I)``, and ``V = W H`` where the columns of ``W`` are the colours
of the stains and ``H`` their densities per pixel.  This module holds the
conversions in both directions, the reference H&E stain matrix of Ruifrok &
Johnston (2001), and :class:`VahadaneSeparator`, the sparse non-negative
factorisation of Vahadane et al. (paper ref. [21]) that estimates ``W`` and
``H`` for each image, from which :func:`hematoxylin_image` rebuilds the
hematoxylin-only image ``I^T`` of Eq. (2).

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

import warnings

import numpy as np

from ..config import DEFAULT_PSEUDO, PSEUDO_STAIN_SOLVER, STAIN_SOLVER_MAX_ITER, STAIN_SOLVER_TOL, PseudoLabelConfig

__all__ = [
    "I0",
    "RUIFROK_HE",
    "rgb_to_od",
    "od_to_rgb",
    "tissue_mask",
    "nonnegative_unmix",
    "sparse_stain_codes",
    "factorize_stains",
    "check_solver",
    "VahadaneSeparator",
    "hematoxylin_image",
    "StainFallbackWarning",
]

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
    image = np.asarray(image)
    if image.dtype == np.uint8:  # the same values, read from a table of the 256 levels (about 4x faster)
        return _OD_LEVELS[image]
    intensity = np.clip(image.astype(np.float64), 1.0, I0)
    return np.log(I0 / intensity)


_OD_LEVELS: np.ndarray = np.log(I0 / np.clip(np.arange(256, dtype=np.float64), 1.0, I0))
_OD_LEVELS.flags.writeable = False


def od_to_rgb(od: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_od`: ``I = I0 exp(-V)``, rounded to uint8."""
    intensity = I0 * np.exp(-np.maximum(np.asarray(od, dtype=np.float64), 0.0))
    return np.clip(np.rint(intensity), 0, 255).astype(np.uint8)


class StainFallbackWarning(UserWarning):
    """Stain estimation was impossible and the reference matrix was used instead."""


def tissue_mask(
    image: np.ndarray,
    *,
    luminosity_threshold: float = DEFAULT_PSEUDO.tissue_lightness,
    min_od: float = DEFAULT_PSEUDO.tissue_min_od,
) -> np.ndarray:
    """Pixels that hold stained tissue: CIELAB lightness below the threshold and visible density.

    Parameters
    ----------
    image : (H, W, 3) uint8
    luminosity_threshold : float
        Maximum ``L*/100`` of a tissue pixel (Vahadane et al. use 0.8).
    min_od : float
        Minimum summed optical density, which drops near-white and noise pixels.
    """
    return (_lightness(image) / 100.0 < luminosity_threshold) & (rgb_to_od(image).sum(-1) > min_od)


def _lightness(image: np.ndarray) -> np.ndarray:
    """CIELAB ``L*`` of an (H, W, 3) uint8 image: ``skimage.color.rgb2lab(image)[..., 0]``, bit for bit.

    The same operations in the same order, with the sRGB linearisation read
    from a table of the 256 levels rather than computed for every pixel
    (about four times faster on a 1000x1000 image).
    """
    from skimage.color.colorconv import xyz_from_rgb
    from skimage.util import img_as_float64

    levels = img_as_float64(np.arange(256, dtype=np.uint8))
    steep = levels > 0.04045
    levels[steep] = np.power((levels[steep] + 0.055) / 1.055, 2.4)
    levels[~steep] /= 12.92
    y = (levels[image] @ xyz_from_rgb.T)[..., 1]  # Y of the D65 white is 1
    curved = y > 0.008856
    y[curved] = np.cbrt(y[curved])
    y[~curved] = 7.787 * y[~curved] + 16.0 / 116.0
    return 116.0 * y - 16.0


def nonnegative_unmix(od: np.ndarray, stains: np.ndarray) -> np.ndarray:
    """Exact non-negative least squares ``min ||od - c @ stains||, c >= 0`` for every pixel.

    With two stains the problem has a closed form: the unconstrained solution
    where both densities are positive, else the better of the two
    single-stain projections (clipped at 0).

    Parameters
    ----------
    od : (..., 3) array
        Optical densities.
    stains : (2, 3) array
        Stain colours as rows.

    Returns
    -------
    (..., 2) array of non-negative densities.

    Examples
    --------
    >>> stains = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> nonnegative_unmix(np.array([[0.5, 0.2, 0.1], [-0.3, 0.4, 0.0]]), stains)
    array([[0.5, 0.2],
           [0. , 0.4]])
    """
    stains = np.asarray(stains, dtype=np.float64)
    if stains.shape != (2, 3):
        raise ValueError(f"stains must be a (2, 3) matrix, got {stains.shape}")
    flat = np.asarray(od, dtype=np.float64).reshape(-1, 3)
    both = flat @ np.linalg.pinv(stains)
    norms = (stains**2).sum(1)
    single = np.clip(flat @ stains.T / norms, 0.0, None)  # (n, 2): each stain alone
    # stain k alone leaves the squared residual ||od||^2 - single_k^2 |stain_k|^2: keep the larger decrease
    gain = single**2 * norms
    first = gain[:, 0] >= gain[:, 1]
    fallback = single * np.column_stack([first, ~first])
    out = np.where((both >= 0).all(1, keepdims=True), both, fallback)
    return out.reshape(*np.shape(od)[:-1], 2)


def sparse_stain_codes(od: np.ndarray, stains: np.ndarray, *, sparsity: float) -> np.ndarray:
    """Exact non-negative lasso ``min_c 0.5 ||od - c @ stains||^2 + sparsity * sum(c), c >= 0`` for every pixel.

    The sparse-coding step of Vahadane et al.'s factorisation, solved in
    closed form for two stains: the problem is convex, so its minimum is the
    best feasible one of the four supports (none, either stain alone, both),
    each solved exactly on its support.

    Parameters
    ----------
    od : (n, 3) array
        Optical densities.
    stains : (2, 3) array
        Stain colours as rows (linearly independent).
    sparsity : float
        L1 weight (Vahadane et al.'s lambda).

    Returns
    -------
    (n, 2) array of non-negative densities.

    Examples
    --------
    >>> stains = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> sparse_stain_codes(np.array([[0.5, 0.2, 0.0], [0.05, 0.4, 0.0]]), stains, sparsity=0.1)
    array([[0.4, 0.1],
           [0. , 0.3]])
    """
    od = np.asarray(od, dtype=np.float64)
    gram = stains @ stains.T
    b = od @ stains.T - sparsity  # (n, 2); the objective is const - c.b + c.G.c / 2
    diag = np.maximum(np.diag(gram), 1e-12)
    single = np.clip(b, 0.0, None) / diag  # each stain alone
    gain_single = 0.5 * single**2 * diag  # objective decrease of each single-stain solution
    both = b @ np.linalg.pinv(gram).T  # gram is symmetric
    feasible = (both > 0).all(1)
    gain_both = np.where(feasible, 0.5 * (both * b).sum(1), -np.inf)
    out = np.zeros_like(b)
    pick = np.argmax(gain_single, axis=1)
    rows = np.arange(len(b))
    out[rows, pick] = single[rows, pick]
    use_both = gain_both > gain_single.max(1)
    out[use_both] = both[use_both]
    return out


def factorize_stains(
    od: np.ndarray,
    *,
    sparsity: float = DEFAULT_PSEUDO.stain_sparsity,
    init: np.ndarray = RUIFROK_HE,
    max_iter: int = STAIN_SOLVER_MAX_ITER,
    tol: float = STAIN_SOLVER_TOL,
) -> np.ndarray:
    """Vahadane et al.'s sparse non-negative factorisation ``od ~ C W`` by exact alternating minimisation.

    Minimises ``0.5 ||od - C W||^2 + sparsity * |C|_1`` over ``C >= 0`` and
    ``W >= 0`` with rows of norm at most 1, alternating the exact sparse codes
    (:func:`sparse_stain_codes`) with an exact block-coordinate update of each
    stain colour (least squares given the other, clipped at 0 and projected on
    the unit ball), from `init`, until no colour moves by more than `tol`.
    No step raises the objective (each is an exact minimisation over its
    block), so the objective converges; the result is deterministic.

    Parameters
    ----------
    od : (n, 3) array
        Optical densities of tissue pixels.
    sparsity : float
    init : (2, 3) array
        Starting stain colours (default: Ruifrok & Johnston's H&E).
    max_iter : int
    tol : float

    Returns
    -------
    (2, 3) array
        The stain colours as rows, in the order of `init`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.array([[0.6, 0.75, 0.28], [0.2, 0.9, 0.4]])
    >>> truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    >>> codes = rng.exponential(0.5, (5000, 2)) * (rng.random((5000, 2)) < 0.7)
    >>> stains = factorize_stains(codes @ truth, sparsity=0.01)
    >>> bool(np.degrees(np.arccos((stains * truth).sum(1))).max() < 1)
    True
    """
    od = np.asarray(od, dtype=np.float64)
    stains = np.array(init, dtype=np.float64)
    for _ in range(max_iter):
        codes = sparse_stain_codes(od, stains, sparsity=sparsity)
        a, b = codes.T @ codes, codes.T @ od
        previous = stains.copy()
        for k in range(2):
            if a[k, k] <= 1e-12:  # an unused stain keeps its colour
                continue
            colour = np.clip((b[k] - a[k, 1 - k] * stains[1 - k]) / a[k, k], 0.0, None)
            norm = float(np.linalg.norm(colour))
            if norm > 1e-12:  # else the stain keeps its colour; a degenerate result is caught by the caller
                stains[k] = colour / max(1.0, norm)
        if np.abs(stains - previous).max() < tol:
            break
    return stains


def check_solver(solver: str) -> str:
    """`solver` if it names a stain solver of :class:`VahadaneSeparator` (``"cd"`` or ``"exact"``).

    Raises
    ------
    ValueError
        If it does not.
    """
    if solver not in ("cd", "exact"):
        raise ValueError(f"solver must be 'cd' or 'exact', got {solver!r}")
    return solver


class VahadaneSeparator:
    """Sparse non-negative stain separation (Vahadane et al., IEEE TMI 2016), r = 2.

    ``fit`` learns the stain matrix of one image: on a seeded subsample of its
    tissue pixels, the optical densities are factorised as ``V = C W`` with
    non-negative, L1-sparse densities ``C`` and non-negative unit stain colours
    ``W``: with ``solver="cd"``, scikit-learn's mini-batch dictionary learning
    (the same objective as the SPAMS call of the original; what the pseudo
    labels use, :data:`~ssimnet.config.PSEUDO_STAIN_SOLVER`); with
    ``solver="exact"``, :func:`factorize_stains`, which reaches a slightly
    lower objective about ten times faster and without scikit-learn.  The atom with the larger red optical
    density is hematoxylin (it absorbs red; eosin barely does), so the order
    never depends on the solver.  ``transform`` returns the densities of every
    pixel by :func:`nonnegative_unmix`.

    When an image has too little tissue, or the factorisation degenerates (an
    empty atom, or two atoms less than `min_angle` degrees apart), the
    reference matrix :data:`RUIFROK_HE` is used and a
    :class:`StainFallbackWarning` is issued; the result is never NaN.

    Parameters
    ----------
    n_samples : int
        Tissue pixels sampled for the fit.
    sparsity : float
        L1 weight on the densities (``lambda`` of Vahadane et al.: 0.1).
    min_tissue : int
        Fewest tissue pixels needed to fit.
    min_angle : float
        Smallest angle (degrees) between the two stain colours accepted.
    luminosity_threshold, min_od : float
        What a tissue pixel is (:func:`tissue_mask`).
    seed : int
        Seed of the subsample and of the solver.
    solver : {"cd", "exact"}
        How the factorisation is solved.

    Attributes
    ----------
    stain_matrix_ : (2, 3) array
        Unit stain colours, row 0 hematoxylin, row 1 eosin.
    fallback_ : bool
        True when the reference matrix was used.

    Examples
    --------
    >>> from ssimnet.synthetic import synthetic_tile
    >>> tile = synthetic_tile((128, 128), seed=0)
    >>> sep = VahadaneSeparator(seed=0).fit(tile.image)
    >>> bool(np.degrees(np.arccos(sep.stain_matrix_[0] @ tile.stains[0])) < 5)
    True
    """

    def __init__(
        self,
        *,
        n_samples: int = DEFAULT_PSEUDO.stain_samples,
        sparsity: float = DEFAULT_PSEUDO.stain_sparsity,
        min_tissue: int = DEFAULT_PSEUDO.stain_min_tissue,
        min_angle: float = DEFAULT_PSEUDO.stain_min_angle,
        luminosity_threshold: float = DEFAULT_PSEUDO.tissue_lightness,
        min_od: float = DEFAULT_PSEUDO.tissue_min_od,
        seed: int = 0,
        solver: str = PSEUDO_STAIN_SOLVER,
    ) -> None:
        check_solver(solver)
        self.n_samples = n_samples
        self.sparsity = sparsity
        self.min_tissue = min_tissue
        self.min_angle = min_angle
        self.luminosity_threshold = luminosity_threshold
        self.min_od = min_od
        self.seed = seed
        self.solver = solver

    @classmethod
    def from_config(cls, config: PseudoLabelConfig, *, seed: int = 0,
                    solver: str = PSEUDO_STAIN_SOLVER) -> VahadaneSeparator:
        """A separator with the stain settings of a :class:`~ssimnet.config.PseudoLabelConfig`."""
        return cls(n_samples=config.stain_samples, sparsity=config.stain_sparsity, min_tissue=config.stain_min_tissue,
                   min_angle=config.stain_min_angle, luminosity_threshold=config.tissue_lightness,
                   min_od=config.tissue_min_od, seed=seed, solver=solver)

    def fit(self, image: np.ndarray, *, tissue: np.ndarray | None = None) -> VahadaneSeparator:
        """Learn the stain matrix of `image` ((H, W, 3) uint8).

        `tissue` ((H, W) bool) is its :func:`tissue_mask` with this
        separator's settings, when the caller has it already.
        """
        od = rgb_to_od(image).reshape(-1, 3)
        if tissue is None:
            tissue = tissue_mask(image, luminosity_threshold=self.luminosity_threshold, min_od=self.min_od)
        tissue = np.flatnonzero(tissue.ravel())
        self.fallback_ = True
        self.stain_matrix_ = RUIFROK_HE.copy()
        if tissue.size < self.min_tissue:
            warnings.warn(
                f"only {tissue.size} tissue pixels (< {self.min_tissue}): using the Ruifrok-Johnston H&E matrix",
                StainFallbackWarning,
                stacklevel=2,
            )
            return self
        rng = np.random.default_rng(self.seed)
        sample = od[np.sort(rng.choice(tissue, size=min(self.n_samples, tissue.size), replace=False))]
        atoms = factorize_stains(sample, sparsity=self.sparsity) if self.solver == "exact" else self._fit_cd(sample)
        norms = np.linalg.norm(atoms, axis=1, keepdims=True)
        if not np.all(np.isfinite(atoms)) or np.any(norms < 1e-8):
            warnings.warn("stain estimation degenerated: using the Ruifrok-Johnston H&E matrix", StainFallbackWarning, stacklevel=2)
            return self
        atoms = atoms / norms
        angle = np.degrees(np.arccos(np.clip(atoms[0] @ atoms[1], -1.0, 1.0)))
        if angle < self.min_angle:
            warnings.warn(
                f"stain colours only {angle:.1f} degrees apart: using the Ruifrok-Johnston H&E matrix",
                StainFallbackWarning,
                stacklevel=2,
            )
            return self
        self.stain_matrix_ = atoms if atoms[0, 0] >= atoms[1, 0] else atoms[::-1].copy()
        self.fallback_ = False
        return self

    def _fit_cd(self, sample: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import MiniBatchDictionaryLearning

        learner = MiniBatchDictionaryLearning(
            n_components=2,
            alpha=self.sparsity,
            fit_algorithm="cd",
            transform_algorithm="lasso_cd",
            positive_code=True,
            positive_dict=True,
            batch_size=1024,
            max_iter=20,
            random_state=self.seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter of the solver
            return learner.fit(sample).components_

    def transform(self, image: np.ndarray) -> np.ndarray:
        """Stain densities ``H`` of every pixel, shape (H, W, 2): hematoxylin, eosin."""
        if not hasattr(self, "stain_matrix_"):
            raise RuntimeError("call fit() before transform()")
        return nonnegative_unmix(rgb_to_od(image), self.stain_matrix_)


def hematoxylin_image(density: np.ndarray, stains: np.ndarray) -> np.ndarray:
    """The hematoxylin-only RGB image ``I^T = I0 exp(-W[:, 0] H[0, :])`` of paper Eq. (2).

    Parameters
    ----------
    density : (H, W, 2) array
        Stain densities from :meth:`VahadaneSeparator.transform`.
    stains : (2, 3) array
        Stain colours as rows (row 0 hematoxylin).

    Returns
    -------
    (H, W, 3) uint8
    """
    return od_to_rgb(density[..., :1] * np.asarray(stains)[0])
