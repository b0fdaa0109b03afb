"""Inference: probability maps of any image size, nuclei instances, per-image fine-tuning.

:func:`predict_maps` (and :func:`predict_probability`) runs the network on overlapping tiles (the patch
size, overlapping by ``overlap`` pixels, the last ones aligned to the border)
and blends them with a weight that falls linearly towards each tile's edge, so
seams do not show; an image smaller than a tile is reflect-padded.

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
    network's own rim-distance output (:mod:`ssimnet.separation`), for a
    network trained with ``distance_weight`` > 0.
``"boundary"`` (beyond the paper)
    the same foreground, split by a marker-controlled watershed on the
    probability of the *inside* class, ``p (1 - b)`` with ``b`` the
    network's boundary output (:mod:`ssimnet.boundary`): the boundary class
    dips between touching nuclei, so each inside region rising ``h`` above
    its surroundings seeds one nucleus; for a network trained with
    ``boundary_width`` > 0.

Every method can then drop the nuclei the network is unsure of: with
``min_object_probability`` > 0, a nucleus whose mean nucleus probability is
below it is removed (StarDist's object probability threshold, here the mean
of the pixel probabilities).  The pixel threshold decides a nucleus's
extent, the object threshold whether it is one.

:func:`segment_image` is the whole label-free procedure for one image: its
pseudo labels, optional fine-tuning of a copy of the trained network on its
purified patches (paper Sec. 2.2), prediction, instances.

Examples
--------
>>> prob = np.zeros((20, 40), dtype=np.float32)
>>> prob[5:15, 3:13] = 0.9; prob[5:15, 20:35] = 0.8
>>> labels = instances(prob, min_size=5)
>>> int(labels.max()), labels.dtype
(2, dtype('int32'))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

from .candidates import clean_mask
from .config import DEFAULT_INFERENCE, DEFAULT_PSEUDO, DEFAULT_SEED, DEFAULT_TRAIN, INSTANCE_METHODS
from .onnxnet import OnnxNetwork
from .purify import patch_grid
from .touching import marker_watershed

if TYPE_CHECKING:  # torch is imported only where a torch network runs: the ONNX path never loads it
    import torch

    from .config import InferenceConfig, PseudoLabelConfig, StainReference
    from .model import UNet
    from .normalize import StainNormalizer
    from .pseudo import PseudoLabels
    from .train import Trainer

__all__ = ["Maps", "predict_maps", "predict_probability", "inference_tile", "instances", "drop_unsure", "marker_watershed", "measure_nuclei", "Segmentation", "segment_image"]


def _blend_window(size: int, overlap: int) -> np.ndarray:
    ramp = np.ones(size, dtype=np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        ramp[:overlap], ramp[-overlap:] = edge, edge[::-1]
    return np.outer(ramp, ramp)


class Maps(NamedTuple):
    """The network's per-pixel outputs for one image (:func:`predict_maps`)."""

    probability: np.ndarray
    distance: np.ndarray | None
    boundary: np.ndarray | None = None


def _forward(model: UNet | OnnxNetwork, device: str | torch.device | None) -> Callable[[np.ndarray], np.ndarray]:
    """The function from a uint8 (N, 3, H, W) batch to `model`'s maps (N, C, H, W), float32, on `device`."""
    if isinstance(model, OnnxNetwork):
        if device is not None and str(device) != "cpu":
            raise ValueError(f"an ONNX network runs on the CPU, not on {device!r} (use its torch checkpoint)")
        return model.maps
    import torch

    from .model import Predictor
    from .train import resolve_device

    device = resolve_device(device)
    predictor = Predictor(model.to(device).eval())
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    @torch.no_grad()
    def forward(batch: np.ndarray) -> np.ndarray:
        with autocast:
            return predictor(torch.from_numpy(batch).to(device, memory_format=torch.channels_last)).cpu().numpy()

    return forward


def predict_maps(
    model: UNet | OnnxNetwork,
    image: np.ndarray,
    *,
    tile: int = DEFAULT_PSEUDO.patch_size,
    overlap: int = DEFAULT_INFERENCE.tile_overlap,
    batch_size: int = DEFAULT_TRAIN.batch_size,
    device: str | torch.device | None = None,
    tta: bool = False,
) -> Maps:
    """Nucleus probability of every pixel of an (H, W, 3) uint8 image, and the rim distance and boundary
    probability if the network predicts them.

    Every map is (H, W) float32 in [0, 1]; ``distance`` and ``boundary`` are
    None for a network without that output.  `model` is a torch network
    (:class:`ssimnet.model.UNet`, run on `device`) or its ONNX export
    (:class:`ssimnet.onnxnet.OnnxNetwork`, on the CPU, without torch).  `tile` must be a multiple of ``2 ** depth`` of the
    network.  With `tta` (test-time augmentation), each tile is predicted in
    its eight orientations (four 90-degree rotations, each also mirrored),
    each prediction turned back, and the eight averaged: 8x the compute.
    """
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must lie in [0, {tile}), got {overlap}")
    forward = _forward(model, device)
    h, w = image.shape[:2]
    padded = np.pad(image, ((0, max(0, tile - h)), (0, max(0, tile - w)), (0, 0)), mode="reflect")
    corners = patch_grid(padded.shape, size=tile, stride=tile - overlap)
    weight = _blend_window(tile, overlap)
    total = None  # (1 to 3, H, W): probability, then distance and boundary when the network has them
    norm = np.zeros(padded.shape[:2], dtype=np.float32)
    views = [(k, flip) for k in range(4) for flip in (False, True)] if tta else [(0, False)]
    for start in range(0, len(corners), batch_size):
        batch = corners[start : start + batch_size]
        x = np.stack([padded[r : r + tile, c : c + tile].transpose(2, 0, 1) for r, c in batch])
        out = 0
        for k, flip in views:
            view = np.rot90(x, k, axes=(2, 3))
            maps = forward(np.ascontiguousarray(view[..., ::-1] if flip else view))
            out = out + np.rot90(maps[..., ::-1] if flip else maps, -k, axes=(2, 3))
        out = out / np.float32(len(views))
        if total is None:
            total = np.zeros((out.shape[1], *padded.shape[:2]), dtype=np.float32)
        for (r, c), o in zip(batch, out):
            total[:, r : r + tile, c : c + tile] += o * weight
            norm[r : r + tile, c : c + tile] += weight
    result = (total / norm)[:, :h, :w]
    arch = model.architecture
    return Maps(result[0], result[1] if arch.has_distance else None, result[-1] if arch.boundary else None)


def inference_tile(shape: tuple[int, ...], *, largest: int, multiple: int) -> int:
    """The tile side that predicts an image of `shape` in as few tiles as possible.

    The image's longer side rounded up to a multiple of `multiple` (the
    network's ``2 ** depth``), at most `largest` rounded down to one.

    Examples
    --------
    >>> inference_tile((1000, 1000), largest=1024, multiple=16), inference_tile((3000, 500), largest=1024, multiple=16)
    (1008, 1024)
    """
    if largest < multiple:
        raise ValueError(f"the largest tile ({largest}) is smaller than one step of {multiple} pixels")
    side = -(-max(int(shape[0]), int(shape[1])) // multiple) * multiple
    return min(side, largest // multiple * multiple)


def predict_probability(model: UNet | OnnxNetwork, image: np.ndarray, **options) -> np.ndarray:
    """Nucleus probability of every pixel of an (H, W, 3) uint8 image, as (H, W) float32 in [0, 1].

    :func:`predict_maps` without the distance map; the same options.
    """
    return predict_maps(model, image, **options).probability


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


def measure_nuclei(label: np.ndarray, hematoxylin: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-nucleus measurements: id, area, centroid, eccentricity, mean hematoxylin density.

    The definitions of :func:`skimage.measure.regionprops` (eccentricity of
    the ellipse with the same second central moments), computed for all
    nuclei at once from per-label sums.

    Parameters
    ----------
    label : (H, W) int instance map
    hematoxylin : (H, W) float, optional
        Hematoxylin density (:meth:`ssimnet.stain.VahadaneSeparator.transform`
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


@dataclass(frozen=True)
class Segmentation:
    """The result of :func:`segment_image`.

    Attributes
    ----------
    label : (H, W) int32 instance map (also :attr:`labels`)
    probability : (H, W) float32 nucleus probability (None for a large region, segmented tile by tile)
    pseudo : PseudoLabels of the image (its stains, hematoxylin image, candidates), or None
        when they were neither given nor needed (no fine-tuning)
    finetune_history : list of per-epoch losses of the fine-tuning (empty without)
    distance : (H, W) float32 predicted rim distance, or None (network without that output)
    boundary : (H, W) float32 predicted boundary probability, or None (network without that output)
    table : dict of per-nucleus columns (:func:`measure_nuclei`), or None when not measured
    tiles : int
        How many tiles of a large region it was segmented in (1: the whole image at once).
    """

    label: np.ndarray
    probability: np.ndarray | None
    pseudo: PseudoLabels | None
    finetune_history: list[dict[str, float]]
    distance: np.ndarray | None = None
    boundary: np.ndarray | None = None
    table: dict[str, np.ndarray] | None = None
    tiles: int = 1

    @property
    def labels(self) -> np.ndarray:
        """The (H, W) int32 instance map, 0 = background."""
        return self.label


def segment_image(
    image: np.ndarray,
    network: Trainer | OnnxNetwork,
    settings: InferenceConfig = DEFAULT_INFERENCE,
    *,
    pseudo_config: PseudoLabelConfig = DEFAULT_PSEUDO,
    seed: int = DEFAULT_SEED,
    pseudo: PseudoLabels | None = None,
    normalizer: StainNormalizer | None = None,
    source: StainReference | None = None,
    density: np.ndarray | None = None,
) -> Segmentation:
    """Label-free segmentation of one image with a trained network: the step under
    :meth:`ssimnet.segmenter.Segmenter.segment`, which measures stains, resamples and tiles large regions.

    The image's pseudo labels are computed only for fine-tuning, so without
    it an image of any size can be segmented.

    Parameters
    ----------
    image : (H, W, 3) uint8
    network : Trainer or OnnxNetwork
        The trained network with its optimiser state (left unchanged), or its
        ONNX export (:mod:`ssimnet.onnxnet`: prediction only, no fine-tuning).
    settings : InferenceConfig
        Fine-tuning epochs, tiles, test-time augmentation and instances
        (``normalize`` and the region settings are the segmenter's).
    pseudo_config : PseudoLabelConfig
        How fine-tuning draws the image's pseudo labels and patches.
    seed : int
    pseudo : PseudoLabels, optional
        The image's pseudo labels, if already computed (used by fine-tuning).
    normalizer : StainNormalizer, optional
        Stain normalisation of what the network sees (fine-tuning patches and
        prediction; :mod:`ssimnet.normalize`); the pseudo labels always come
        from the image as it is.  None: the image as it is.
    source : StainReference, optional
        The image's own stains for `normalizer` (:meth:`StainNormalizer.measure`),
        when measured elsewhere (a large region's thumbnail).
    density : (H, W, 2) array, optional
        The image's densities under `source`'s stains
        (:meth:`StainNormalizer.measure_densities`), when computed already.
    """
    seen = image if normalizer is None else normalizer.transform(image, source=source, density=density)
    epochs = settings.finetune_epochs
    onnx = isinstance(network, OnnxNetwork)
    if onnx and epochs > 0:
        raise ValueError("an ONNX network only predicts: fine-tuning needs its torch checkpoint (or finetune_epochs=0)")
    model, device = (network, None) if onnx else (network.model, network.device)
    history: list[dict[str, float]] = []
    if epochs > 0:
        from .pseudo import pseudo_labels
        from .train import PatchData

        if pseudo is None:
            pseudo = pseudo_labels(image, pseudo_config, seed=seed)
        data = PatchData.from_pseudo_labels(
            {"image": (seen, pseudo)}, size=pseudo_config.patch_size, keep=pseudo_config.keep_fraction,
            soft_labels=network.config.soft_labels, distance_solidity=network.config.distance_targets,  # the network's
            boundary_width=network.config.boundary_width,
        )
        tuned = network.finetune_copy(data, epochs)
        model, history = tuned.model, tuned.history
    tile = inference_tile(seen.shape, largest=settings.tile_size, multiple=2 ** model.architecture.depth)
    # a tile below twice the overlap holds the whole image (inference_tile), where no overlap is needed
    overlap = min(settings.tile_overlap, tile // 2)
    maps = predict_maps(model, seen, tile=tile, overlap=overlap, device=device, tta=settings.tta)
    label = instances(maps.probability, method=settings.instances, threshold=settings.threshold, h=settings.h,
                      min_size=settings.min_size, max_hole=settings.max_hole, distance=maps.distance,
                      boundary=maps.boundary, min_object_probability=settings.min_object_probability)
    return Segmentation(label=label, probability=maps.probability, pseudo=pseudo, finetune_history=history,
                        distance=maps.distance, boundary=maps.boundary)
