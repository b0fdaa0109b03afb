"""Nuclei instances from a probability map, and their measurements.

:func:`instances` turns the probability map into labelled nuclei:

``"cc"`` (the paper's setting)
    probability > 0.5, objects below ``min_size`` removed, holes filled,
    connected components.
``"watershed"``
    the same foreground, split by a marker-controlled watershed on the
    probability: the softened labels (Eq. 4) teach the network to peak at
    nucleus centres, so the regional maxima of the smoothed probability that
    rise ``h`` above their surroundings mark one nucleus each.
``"distance"`` (beyond the paper)
    the same foreground, split by a marker-controlled watershed on its
    Euclidean distance transform, smoothed by a Gaussian of ``sigma``: a
    marker is a maximum at least ``h`` pixels above its surroundings, so two
    round nuclei joined by a waist get one each -- the classical split of
    :func:`ssimnet.baselines.watershed.hematoxylin_watershed` applied to the
    network's foreground.
``"learned"`` (beyond the paper)
    the same foreground, split by a marker-controlled watershed on the
    network's own rim-distance output (:mod:`ssimnet.net.separation`), for a
    network trained with ``distance_weight`` > 0.
``"boundary"`` (beyond the paper)
    the same foreground, split by a marker-controlled watershed on the
    probability of the *inside* class, ``p (1 - b)`` with ``b`` the
    network's boundary output (:mod:`ssimnet.net.boundary`): the boundary class
    dips between touching nuclei, so each inside region rising ``h`` above
    its surroundings seeds one nucleus; for a network trained with
    ``boundary_width`` > 0.

Every method can then drop the nuclei the network is unsure of: with
``min_object_probability`` > 0, a nucleus whose mean nucleus probability is
below it is removed (StarDist's object probability threshold, here the mean
of the pixel probabilities).  The pixel threshold decides a nucleus's
extent, the object threshold whether it is one.

:func:`measure_nuclei` measures every nucleus at once: area, centroid,
eccentricity and mean hematoxylin density.

Examples
--------
>>> prob = np.zeros((20, 40), dtype=np.float32)
>>> prob[5:15, 3:13] = 0.9; prob[5:15, 20:35] = 0.8
>>> labels = instances(prob, min_size=5)
>>> int(labels.max()), labels.dtype
(2, dtype('int32'))
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

from ..config import DEFAULT_INFERENCE, INSTANCE_METHODS
from ..pseudo.candidates import clean_mask
from ..pseudo.touching import marker_watershed

__all__ = ["instances", "drop_unsure", "nucleus_confidence", "marker_watershed", "measure_nuclei"]


def instances(
    probability: np.ndarray,
    *,
    method: str = DEFAULT_INFERENCE.instances,
    threshold: float | None = None,
    min_size: int = DEFAULT_INFERENCE.min_size,
    max_hole: int = DEFAULT_INFERENCE.max_hole,
    h: float | None = None,
    sigma: float = 1.0,
    distance: np.ndarray | None = None,
    boundary: np.ndarray | None = None,
    min_object_probability: float = DEFAULT_INFERENCE.min_object_probability,
) -> np.ndarray:
    """Nuclei instances from a probability map (see the module docstring); (H, W) int32, 0 = background.

    Parameters
    ----------
    method : {"cc", "watershed", "distance", "learned", "boundary"}
    threshold : float, optional
        Foreground is ``probability > threshold``; defaults to the method's
        entry in :data:`ssimnet.config.INSTANCE_METHODS`.
    min_size, max_hole : int
        Smallest object kept and largest hole filled, in pixels.
    h, sigma : float
        Watershed methods only: a marker is a regional maximum of the
        surface (probability or distance transform), smoothed by a Gaussian
        of `sigma`, at least `h` above its surroundings; `h` defaults to the
        method's entry in :data:`ssimnet.config.INSTANCE_METHODS`.
    distance : (H, W) float, optional
        The predicted rim distance (:func:`predict_maps`); required by, and
        only used by, ``"learned"``.
    boundary : (H, W) float, optional
        The predicted boundary probability (:func:`predict_maps`); required
        by, and only used by, ``"boundary"``.
    min_object_probability : float
        Nuclei whose mean probability is below this are dropped (0: none);
        the others are numbered 1, 2, ... in their order.

    Examples
    --------
    >>> prob = np.zeros((12, 30), dtype=np.float32); prob[2:10, 2:10] = 0.9; prob[2:10, 18:26] = 0.4
    >>> every = instances(prob, threshold=0.3, min_size=5)
    >>> sure = instances(prob, threshold=0.3, min_size=5, min_object_probability=0.5)
    >>> int(every.max()), int(sure.max())
    (2, 1)
    """
    if method not in INSTANCE_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, INSTANCE_METHODS))}, got {method!r}")
    if method == "learned" and (distance is None or np.shape(distance) != np.shape(probability)):
        raise ValueError("method 'learned' needs the network's distance map, of the probability map's shape "
                         "(a network trained with distance_weight > 0)")
    if method == "boundary" and (boundary is None or np.shape(boundary) != np.shape(probability)):
        raise ValueError("method 'boundary' needs the network's boundary map, of the probability map's shape "
                         "(a network trained with boundary_width > 0)")
    defaults = INSTANCE_METHODS[method]
    threshold = defaults.threshold if threshold is None else threshold
    foreground = clean_mask(np.asarray(probability) > threshold, min_size=min_size, max_hole=max_hole)
    if method == "cc":
        label = ndi.label(foreground, structure=np.ones((3, 3)))[0].astype(np.int32)
        return drop_unsure(label, probability, min_object_probability)
    if method == "watershed":
        surface = np.asarray(probability, dtype=np.float64)
    elif method == "learned":
        surface = np.asarray(distance, dtype=np.float64)
    elif method == "boundary":
        surface = np.asarray(probability, dtype=np.float64) * (1.0 - np.asarray(boundary, dtype=np.float64))
    else:
        surface = ndi.distance_transform_edt(foreground)
    h = defaults.h if h is None else h
    label = marker_watershed(ndi.gaussian_filter(surface, sigma), foreground, h=h, min_size=min_size)
    return drop_unsure(label, probability, min_object_probability)


def drop_unsure(label: np.ndarray, probability: np.ndarray, least: float) -> np.ndarray:
    """`label` without the nuclei whose mean `probability` is below `least`, renumbered 1, 2, ... in order.

    >>> label = np.array([[1, 1, 0, 2, 2, 0, 3]]); prob = np.array([[.9, .7, 0, .4, .5, 0, .6]])
    >>> drop_unsure(label, prob, 0.5)
    array([[1, 1, 0, 0, 0, 0, 2]], dtype=int32)
    """
    label = np.asarray(label, dtype=np.int32)
    n = int(label.max())
    if least <= 0 or n == 0:
        return label
    keep = np.concatenate(([False], ndi.mean(probability, label, index=np.arange(1, n + 1)) >= least))
    return relabel_sequential(np.where(keep[label], label, 0))[0].astype(np.int32)  # as marker_watershed renumbers


def nucleus_confidence(probability: np.ndarray, label: np.ndarray) -> float:
    """How sure the network is of the nuclei it found: the mean `probability` over their pixels (0: none found).

    Label-free: a network shown colours or sizes it did not learn finds nuclei with lower probabilities
    (``fallback_below`` of :class:`ssimnet.config.InferenceConfig`).

    >>> prob = np.array([[0.9, 0.7, 0.2, 0.6]], np.float32)
    >>> round(nucleus_confidence(prob, np.array([[1, 1, 0, 2]])), 4), nucleus_confidence(prob, np.zeros((1, 4), int))
    (0.7333, 0.0)
    """
    inside = np.asarray(label) > 0
    return float(np.asarray(probability)[inside].mean()) if inside.any() else 0.0


def measure_nuclei(label: np.ndarray, hematoxylin: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-nucleus measurements: id, area, centroid, eccentricity, mean hematoxylin density.

    The definitions of :func:`skimage.measure.regionprops` (eccentricity of
    the ellipse with the same second central moments), computed for all
    nuclei at once from per-label sums.

    Parameters
    ----------
    label : (H, W) int instance map
    hematoxylin : (H, W) float, optional
        Hematoxylin density (:meth:`ssimnet.pseudo.stain.VahadaneSeparator.transform`
        channel 0); the column is NaN without it.

    Examples
    --------
    >>> label = np.zeros((6, 8), np.int32)
    >>> label[1:3, 1:7] = 5
    >>> table = measure_nuclei(label)
    >>> table["id"].tolist(), table["area"].tolist(), table["centroid_col"].tolist()
    ([5], [12], [3.5])
    """
    flat = np.asarray(label).ravel()
    size = int(flat.max(initial=0)) + 1
    area = np.bincount(flat, minlength=size).astype(np.float64)
    ids = np.flatnonzero(area[1:]) + 1
    rows, cols = np.divmod(np.arange(flat.size), label.shape[1])

    def per_label(values: np.ndarray | None) -> np.ndarray:
        return np.bincount(flat, weights=values, minlength=size)[ids] / area[ids]

    row, col = per_label(rows.astype(np.float64)), per_label(cols.astype(np.float64))
    centre = np.zeros((2, size))
    centre[:, ids] = row, col
    dr, dc = rows - centre[0, flat], cols - centre[1, flat]
    var_r, var_c, cov = per_label(dr * dr), per_label(dc * dc), per_label(dr * dc)
    half_sum, root = (var_r + var_c) / 2, np.sqrt(((var_r - var_c) / 2) ** 2 + cov**2)
    major, minor = half_sum + root, np.clip(half_sum - root, 0.0, None)
    eccentricity = np.sqrt(1.0 - np.divide(minor, major, out=np.ones_like(major), where=major > 0))
    mean = (per_label(np.asarray(hematoxylin, dtype=np.float64).ravel()) if hematoxylin is not None
            else np.full(len(ids), np.nan))
    return {
        "id": ids.astype(label.dtype if np.issubdtype(label.dtype, np.integer) else np.int64),
        "area": area[ids].astype(np.int64),
        "centroid_row": row,
        "centroid_col": col,
        "eccentricity": eccentricity,
        "mean_hematoxylin": mean,
    }
