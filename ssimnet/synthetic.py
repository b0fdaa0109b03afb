"""Synthetic H&E tiles with exact ground truth.

The embedded default dataset: it needs no download, draws in well under a
second per tile, and -- unlike real data -- its right answer is known to the
pixel: the instance map, the stain colours and the stain densities.

How a tile is drawn (all from one seed):

1. *Stain colours*: the Ruifrok–Johnston H&E vectors, each perturbed by
   ``stain_jitter`` and renormalised, so that a stain estimator has to find them.
2. *Tissue*: a smooth random field decides tissue versus white space (lumen);
   stroma gets an eosin density with fibrous (anisotropic) texture and a faint
   hematoxylin background.
3. *Nuclei*: ellipses whose mean size is drawn once per tile and varies a little
   between nuclei (the intra-image self similarity that the method relies on),
   random aspect ratio and orientation.  A fraction ``cluster_fraction`` is
   placed against an existing nucleus, which gives touching clusters; where two
   overlap the earlier one keeps its pixels.  Hematoxylin density with
   chromatin texture, little eosin.
4. *Red blood cells*: a few small dense eosin discs (a common distractor).
5. *Optics*: ``V = C W`` (Beer–Lambert, paper Eq. 1), Gaussian blur of the
   optical density, ``I = 255 exp(-V)``, additive Gaussian noise, uint8.

Examples
--------
>>> tile = synthetic_tile((128, 128), seed=1)
>>> tile.image.shape, tile.image.dtype, tile.label.dtype
((128, 128, 3), dtype('uint8'), dtype('int32'))
>>> int(tile.label.max()) == len(np.unique(tile.label)) - 1   # ids are 1..N
True
>>> bool((synthetic_tile((128, 128), seed=1).image == tile.image).all())
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk, ellipse

from .pseudo.stain import RUIFROK_HE, od_to_rgb

__all__ = ["SyntheticTile", "synthetic_tile", "write_slide"]


@dataclass(frozen=True)
class SyntheticTile:
    """One synthetic tile and its ground truth.

    Attributes
    ----------
    image : (H, W, 3) uint8
        The RGB tile.
    label : (H, W) int32
        Nucleus instance map, 0 = background, nuclei numbered 1..N.
    stains : (2, 3) float64
        Unit optical-density vectors actually used: row 0 hematoxylin, row 1 eosin.
    density : (H, W, 2) float64
        Hematoxylin and eosin densities per pixel before blur and noise.
    """

    image: np.ndarray
    label: np.ndarray
    stains: np.ndarray
    density: np.ndarray


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-filtered white noise, rescaled to [0, 1]."""
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    lo, hi = field.min(), field.max()
    return (field - lo) / (hi - lo) if hi > lo else np.zeros(shape)


def _jitter_stains(rng: np.random.Generator, jitter: float) -> np.ndarray:
    stains = np.abs(RUIFROK_HE + jitter * rng.standard_normal(RUIFROK_HE.shape))
    return stains / np.linalg.norm(stains, axis=1, keepdims=True)


def _place_nuclei(
    rng: np.random.Generator,
    tissue: np.ndarray,
    *,
    radius: tuple[float, float],
    coverage: float,
    cluster_fraction: float,
) -> np.ndarray:
    """Paint non-overlapping elliptical nuclei into an int32 label map."""
    shape = tissue.shape
    label = np.zeros(shape, dtype=np.int32)
    mean_radius = rng.uniform(*radius)
    target = coverage * tissue.sum() / (np.pi * mean_radius**2)
    centres: list[tuple[float, float, float]] = []
    next_id, attempts = 1, 0
    while next_id <= target and attempts < 20 * target + 100:
        attempts += 1
        r_major = mean_radius * rng.uniform(0.8, 1.25)
        r_minor = r_major * rng.uniform(0.6, 1.0)
        if centres and rng.random() < cluster_fraction:
            cy, cx, r_other = centres[rng.integers(len(centres))]
            angle = rng.uniform(0, 2 * np.pi)
            step = 0.85 * (r_other + r_minor)
            cy, cx = cy + step * np.sin(angle), cx + step * np.cos(angle)
        else:
            cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        iy, ix = int(cy), int(cx)
        if not (0 <= iy < shape[0] and 0 <= ix < shape[1]) or not tissue[iy, ix] or label[iy, ix]:
            continue
        rr, cc = ellipse(cy, cx, r_major, r_minor, shape=shape, rotation=rng.uniform(-np.pi, np.pi))
        free = label[rr, cc] == 0
        if free.sum() < 0.75 * rr.size or rr.size < 9:
            continue
        label[rr[free], cc[free]] = next_id
        centres.append((cy, cx, r_minor))
        next_id += 1
    return label


def synthetic_tile(
    shape: tuple[int, int] = (512, 512),
    *,
    seed: int | np.random.SeedSequence = 0,
    radius: tuple[float, float] = (6.0, 13.0),
    coverage: float = 0.22,
    cluster_fraction: float = 0.35,
    stain_jitter: float = 0.06,
    blur_sigma: float = 0.8,
    noise_sigma: float = 3.0,
) -> SyntheticTile:
    """Draw one synthetic H&E tile with its exact ground truth.

    Parameters
    ----------
    shape : tuple of int
        Height and width in pixels (at least 16 each).
    seed : int or numpy.random.SeedSequence
        Everything is drawn from this seed; the same seed gives the same tile.
    radius : tuple of float
        Range of the per-tile mean nucleus semi-major axis, in pixels (MoNuSeg
        at 40x: medians of 6-13 per organ).
    coverage : float
        Fraction of the tissue area to cover with nuclei (before rejections).
    cluster_fraction : float
        Probability that a new nucleus is placed against an existing one.
    stain_jitter : float
        Standard deviation of the perturbation of the reference stain vectors.
    blur_sigma, noise_sigma : float
        Optical blur (pixels) and additive noise (intensity levels).

    Returns
    -------
    SyntheticTile
    """
    if len(shape) != 2 or min(shape) < 16:
        raise ValueError(f"shape must be two sizes of at least 16 pixels, got {shape}")
    if not 0 < coverage < 1 or not 0 <= cluster_fraction <= 1:
        raise ValueError("coverage must lie in (0, 1) and cluster_fraction in [0, 1]")
    rng = np.random.default_rng(seed)
    shape = (int(shape[0]), int(shape[1]))
    stains = _jitter_stains(rng, stain_jitter)

    # Tissue versus white space, and the stroma's densities.
    scale = max(shape) / 6
    tissue_field = _smooth_noise(rng, shape, scale)
    tissue = tissue_field > np.quantile(tissue_field, rng.uniform(0.05, 0.2))
    soft_tissue = ndi.gaussian_filter(tissue.astype(float), 2.0)
    fibres = 0.5 * _smooth_noise(rng, shape, (1.0, 6.0)) + 0.5 * _smooth_noise(rng, shape, (6.0, 1.0))
    eosin = (rng.uniform(0.1, 0.25) + 0.7 * fibres**2) * soft_tissue
    hema = (0.03 + 0.05 * _smooth_noise(rng, shape, 4.0)) * soft_tissue

    # Nuclei.
    label = _place_nuclei(rng, tissue, radius=radius, coverage=coverage, cluster_fraction=cluster_fraction)
    n = int(label.max())
    nuclear = label > 0
    strength = np.concatenate([[0.0], rng.uniform(0.8, 1.15, size=n)]) * rng.uniform(1.1, 1.7)
    chromatin = 1.0 + 0.6 * (_smooth_noise(rng, shape, 1.0) - 0.5)
    hema = np.where(nuclear, strength[label] * chromatin, hema)
    eosin = np.where(nuclear, 0.15 * eosin, eosin)

    # Red blood cells: small, dense eosin discs away from nuclei.
    for _ in range(int(rng.integers(0, 6 + tissue.sum() // 40000))):
        rr, cc = disk((rng.uniform(0, shape[0]), rng.uniform(0, shape[1])), rng.uniform(3, 4.5), shape=shape)
        keep = ~nuclear[rr, cc]
        eosin[rr[keep], cc[keep]] = rng.uniform(0.9, 1.3)

    density = np.stack([hema, eosin], axis=-1)
    od = density @ stains
    if blur_sigma > 0:
        od = ndi.gaussian_filter(od, (blur_sigma, blur_sigma, 0))
    rgb = od_to_rgb(od).astype(np.float64) + noise_sigma * rng.standard_normal(od.shape)
    image = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return SyntheticTile(image=image, label=label, stains=stains, density=density)


def write_slide(path: str | os.PathLike[str], image: np.ndarray, *, mpp: float | None, downsamples: tuple[int, ...] = (1, 4),
                tile: int = 256, kind: str = "svs") -> None:
    """Write `image` as a small pyramidal slide, for tests and benchmarks of whole-slide reading.

    Parameters
    ----------
    path : path
    image : (H, W, 3) uint8
        Level 0.
    mpp : float, optional
        Microns per pixel at level 0, written as the format keeps it.
    downsamples : tuple of int
        The levels, each `image` taken every that many pixels.
    tile : int
        TIFF tile side (a multiple of 16).
    kind : {"svs", "tiff", "ome"}
        An Aperio SVS (its description carries the pixel size), a generic
        tiled TIFF (resolution tags) or an OME-TIFF (levels in SubIFDs).
    """
    import tifffile

    levels = [np.ascontiguousarray(image[::d, ::d]) for d in downsamples]
    options = {"tile": (tile, tile), "photometric": "rgb", "compression": "zlib"}
    with tifffile.TiffWriter(path, ome=kind == "ome") as tif:
        if kind == "ome":
            metadata = {"axes": "YXS", **({"PhysicalSizeX": mpp, "PhysicalSizeY": mpp} if mpp else {})}
            tif.write(levels[0], subifds=len(levels) - 1, metadata=metadata, **options)
            for level in levels[1:]:
                tif.write(level, subfiletype=1, **options)
            return
        for k, level in enumerate(levels):
            extra: dict[str, object] = {"metadata": None}
            if kind == "svs":
                h, w = level.shape[:2]
                extra["description"] = (f"Aperio Image Library v12.0.0 \r\n{w}x{h} ({tile}x{tile})"
                                        + (f"|MPP = {mpp}" if mpp and k == 0 else ""))
            elif k == 0 and mpp:
                extra.update(resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
            tif.write(level, subfiletype=1 if k else 0, **options, **extra)
