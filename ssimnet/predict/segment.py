"""One image segmented with a trained network: optional fine-tuning, prediction, instances.

:func:`segment_image` is the whole label-free procedure for one image: its
pseudo labels, optional fine-tuning of a copy of the trained network on its
purified patches (paper Sec. 2.2), prediction, instances.  :class:`ssimnet.tool.segmenter.Segmenter`
wraps it with stain normalisation, resampling and large regions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..config import DEFAULT_INFERENCE, DEFAULT_PSEUDO, DEFAULT_SEED, Profile
from ..net.onnxnet import OnnxNetwork
from .maps import inference_tile, predict_maps
from .nuclei import instances, nucleus_confidence

if TYPE_CHECKING:
    from ..config import InferenceConfig, PseudoLabelConfig, StainReference
    from ..net.train import Trainer
    from ..pseudo.labels import PseudoLabels
    from ..tool.normalize import StainNormalizer

__all__ = ["Segmentation", "segment_image"]


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
    normalization : str
        What was done with the image's stains (:class:`ssimnet.Segmenter` fills it in):
        ``"normalised"``, ``"not normalised (off)"``, or why ``normalize="auto"`` left them.
    mpp : float or None
        The microns per pixel the image was segmented at, given or estimated
        (:meth:`ssimnet.Segmenter.pixel_size` fills it in); None: as it is.
    confidence : float or None
        The network's mean nucleus probability over the nuclei it found
        (:func:`~ssimnet.predict.nuclei.nucleus_confidence`); None for a large region.
    fallback : bool
        Whether ``label`` is the classical watershed's, the network being unsure
        (``fallback_below``; :class:`ssimnet.Segmenter` decides).
    """

    label: np.ndarray
    probability: np.ndarray | None
    pseudo: PseudoLabels | None
    finetune_history: list[dict[str, float]]
    distance: np.ndarray | None = None
    boundary: np.ndarray | None = None
    table: dict[str, np.ndarray] | None = None
    tiles: int = 1
    normalization: str = ""
    mpp: float | None = None
    confidence: float | None = None
    fallback: bool = False

    @property
    def labels(self) -> np.ndarray:
        """The (H, W) int32 instance map, 0 = background."""
        return self.label


def segment_image(
    image: np.ndarray,
    network: Trainer | OnnxNetwork,
    settings: InferenceConfig | Profile = DEFAULT_INFERENCE,
    *,
    pseudo_config: PseudoLabelConfig = DEFAULT_PSEUDO,
    seed: int = DEFAULT_SEED,
    pseudo: PseudoLabels | None = None,
    normalizer: StainNormalizer | None = None,
    source: StainReference | None = None,
    density: np.ndarray | None = None,
    **legacy: object,
) -> Segmentation:
    """Label-free segmentation of one image with a trained network: the step under
    :meth:`ssimnet.tool.segmenter.Segmenter.segment`, which measures stains, resamples and tiles large regions.

    The image's pseudo labels are computed only for fine-tuning, so without
    it an image of any size can be segmented.

    Parameters
    ----------
    image : (H, W, 3) uint8
    network : Trainer or OnnxNetwork
        The trained network with its optimiser state (left unchanged), or its
        ONNX export (:mod:`ssimnet.net.onnxnet`: prediction only, no fine-tuning).
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
        prediction; :mod:`ssimnet.tool.normalize`); the pseudo labels always come
        from the image as it is.  None: the image as it is.
    source : StainReference, optional
        The image's own stains for `normalizer` (:meth:`StainNormalizer.measure`),
        when measured elsewhere (a large region's thumbnail).
    density : (H, W, 2) array, optional
        The image's densities under `source`'s stains
        (:meth:`StainNormalizer.measure_densities`), when computed already.
    **legacy
        Version 0.1's call, ``segment_image(image, network, profile,
        finetune_epochs=, method=, tta=, max_tile=)``, still works with a
        :class:`DeprecationWarning` until 0.3.
    """
    if isinstance(settings, Profile) or legacy:
        settings, pseudo_config = _from_profile(settings, pseudo_config, legacy)
    seen = image if normalizer is None else normalizer.transform(image, source=source, density=density)
    epochs = settings.finetune_epochs
    onnx = isinstance(network, OnnxNetwork)
    if onnx and epochs > 0:
        raise ValueError("an ONNX network only predicts: fine-tuning needs its torch checkpoint (or finetune_epochs=0)")
    model, device = (network, None) if onnx else (network.model, network.device)
    history: list[dict[str, float]] = []
    if epochs > 0:
        from ..net.train import PatchData
        from ..pseudo.labels import pseudo_labels

        if pseudo is None:
            pseudo = pseudo_labels(image, pseudo_config, seed=seed)
        data = PatchData.from_pseudo_labels(
            {"image": (seen, pseudo)}, size=pseudo_config.patch_size, keep=pseudo_config.keep_fraction,
            soft_labels=network.config.soft_labels, distance_solidity=network.config.distance_targets,  # the network's
            boundary_width=network.config.boundary_width,
        )
        tuned = network.finetune_copy(data, epochs, lr=settings.finetune_lr, norm=settings.finetune_norm)
        model, history = tuned.model, tuned.history
    tile = inference_tile(seen.shape, largest=settings.tile_size, multiple=2 ** model.architecture.depth)
    # a tile below twice the overlap holds the whole image (inference_tile), where no overlap is needed
    overlap = min(settings.tile_overlap, tile // 2)
    maps = predict_maps(model, seen, tile=tile, overlap=overlap, device=device, tta=settings.tta)
    label = instances(maps.probability, method=settings.instances, threshold=settings.threshold, h=settings.h,
                      min_size=settings.min_size, max_hole=settings.max_hole, distance=maps.distance,
                      boundary=maps.boundary, min_object_probability=settings.min_object_probability)
    return Segmentation(label=label, probability=maps.probability, pseudo=pseudo, finetune_history=history,
                        distance=maps.distance, boundary=maps.boundary,
                        confidence=nucleus_confidence(maps.probability, label))


def _from_profile(settings: InferenceConfig | Profile, pseudo_config: PseudoLabelConfig,
                  legacy: dict[str, object]) -> tuple[InferenceConfig, PseudoLabelConfig]:
    """The settings of version 0.1's ``segment_image(image, network, profile, finetune_epochs=, method=, tta=,
    max_tile=)``, with a DeprecationWarning."""
    names = {"finetune_epochs": "finetune_epochs", "method": "instances", "tta": "tta", "max_tile": "tile_size"}
    unknown = set(legacy) - set(names)
    if unknown:
        raise TypeError(f"segment_image() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    warnings.warn("segment_image(image, network, profile, ...) is deprecated: pass the InferenceConfig "
                  "(profile.inference) and pseudo_config=profile.pseudo, or use ssimnet.Segmenter; the old call "
                  "goes in ssimnet 0.3", DeprecationWarning, stacklevel=3)
    if isinstance(settings, Profile):
        settings, pseudo_config = settings.inference, settings.pseudo
    return replace(settings, **{names[k]: v for k, v in legacy.items() if v is not None}), pseudo_config
