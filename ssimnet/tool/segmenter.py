"""The one way to segment: a trained network with the inference settings it carries.

A :class:`Segmenter` holds a network -- a torch checkpoint, or its ONNX export,
which predicts without torch -- and its :class:`~ssimnet.config.InferenceConfig`:
instance method, thresholds, tiles, stain normalisation, fine-tuning.  Those
settings are stored with the network (a checkpoint's ``inference`` entry, an
export's ``ssimnet-inference`` metadata, the shipped network's model card) and
read from there, as StarDist keeps ``thresholds.json`` beside its weights.
Every one can be overridden for one call, as Cellpose's ``eval`` takes them.

``ssimnet segment``, :mod:`ssimnet.tool.batch`, the book's evaluation and the
studies all segment through it, so the command line and Python give the same
pixels.

Examples
--------
>>> from ssimnet.synthetic import synthetic_tile
>>> segmenter = Segmenter.pretrained()
>>> segmenter.settings.instances, segmenter.settings.min_object_probability
('boundary', 0.5)
>>> result = segmenter.segment(synthetic_tile((256, 256), seed=0).image)
>>> result.labels.shape, result.labels.dtype, len(result.table["id"]) == int(result.labels.max())
((256, 256), dtype('int32'), True)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..config import (
    DEFAULT_PSEUDO,
    DEFAULT_SEED,
    METHOD_NEEDS,
    STAIN_GUARD,
    TOOL_INFERENCE,
    InferenceConfig,
    PseudoLabelConfig,
)
from ..data import DataError
from ..net.onnxnet import OnnxNetwork
from ..predict import Segmentation, measure_nuclei, segment_image
from .pixel_size import AUTO
from .region import RegionTile, paint_tile, segment_region

if TYPE_CHECKING:
    from ..net.train import Trainer
    from ..pseudo.labels import PseudoLabels
    from .normalize import StainNormalizer

__all__ = ["Segmenter", "settings_for", "check_references", "RegionPart", "Stains", "concatenate_tables"]


def settings_for(architecture: object, stored: dict[str, object] | None = None) -> InferenceConfig:
    """The inference settings of a network: those it stores, else ``ssimnet segment``'s defaults
    (:data:`ssimnet.config.TOOL_INFERENCE`) with its own instance method.

    A network without stored settings (an older checkpoint or export, or a
    training checkpoint) keeps what it holds of them, and has no references
    for ``mpp="auto"`` unless it holds them; an instance method that
    needs an output the network lacks gives way to the network's own: the
    boundary watershed for a network with the boundary output, the learned
    separation for one with the distance output, connected components (the
    paper's) for the plain network.

    >>> from ssimnet.net.architecture import Architecture
    >>> settings_for(Architecture(boundary=True, out_channels=3)).instances
    'boundary'
    >>> settings_for(Architecture(), {"instances": "boundary", "min_size": 10})
    InferenceConfig(instances='cc', ...min_size=10, ...)
    """
    if stored and set(stored) >= set(InferenceConfig.__dataclass_fields__):
        return InferenceConfig.from_dict(stored)  # complete, as saved: kept as it is
    # the references of mpp="auto" belong to the network's training images: unknown unless stored
    settings = {**asdict(TOOL_INFERENCE), "nucleus_scale": None, "nucleus_area": None, **(stored or {})}
    method = settings["instances"] if stored and "instances" in stored else None
    if method is None or (method in METHOD_NEEDS and not getattr(architecture, METHOD_NEEDS[method][0])):
        own = [m for m, (flag, _) in METHOD_NEEDS.items() if getattr(architecture, flag)]
        settings["instances"] = own[-1] if own else "cc"
    return InferenceConfig.from_dict(settings)


def concatenate_tables(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-nucleus tables of the same columns (:func:`ssimnet.predict.nuclei.measure_nuclei`) as one.

    >>> concatenate_tables([{"id": np.array([1])}, {"id": np.array([2, 3])}])["id"].tolist()
    [1, 2, 3]
    """
    return {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}


class RegionPart(NamedTuple):
    """One tile of a large region (:meth:`Segmenter.segment_tiles`): its own nuclei and their measurements,
    centroids in region coordinates."""

    tile: RegionTile
    table: dict[str, np.ndarray]
    normalization: str = ""  # what was done with the region's stains (Segmentation.normalization)


class Segmenter:
    """A trained network and the settings it segments with.

    Parameters
    ----------
    network : Trainer or OnnxNetwork
        A torch network (:class:`ssimnet.net.train.Trainer`, can fine-tune and run
        on a GPU) or its ONNX export (CPU, prediction only, no torch).
    settings : InferenceConfig, optional
        Its inference settings (default: :func:`settings_for` the network).
    pseudo : PseudoLabelConfig
        How fine-tuning draws an image's pseudo labels and patches, and how
        many tissue pixels a stain measurement samples.
    path : Path, optional
        The file the network came from (named in errors).

    Raises
    ------
    ValueError
        If the instance method needs an output the network lacks.
    """

    def __init__(self, network: Trainer | OnnxNetwork, settings: InferenceConfig | None = None, *,
                 pseudo: PseudoLabelConfig = DEFAULT_PSEUDO, path: Path | None = None) -> None:
        self.network = network
        self.settings = settings_for(network.architecture) if settings is None else settings
        self.settings.check_network(network.architecture)
        self.pseudo = pseudo
        self.path = path

    def __repr__(self) -> str:
        kind = "ONNX" if isinstance(self.network, OnnxNetwork) else "torch"
        return f"Segmenter({kind} network{f' from {self.path}' if self.path else ''}, {self.settings})"

    # ------------------------------------------------------------------ loading

    @classmethod
    def pretrained(cls, *, torch: bool = False, device: str | None = None) -> Segmenter:
        """The network shipped with ssimnet (:mod:`ssimnet.tool.shipped`), its bytes checked against its card.

        Its ONNX export, which needs no torch; with `torch` (or a `device`), its
        checkpoint, which can fine-tune and run on a GPU.  Both carry the same settings.
        """
        from .shipped import check_shipped

        return cls.from_checkpoint(check_shipped(onnx=not torch and device is None), device=device)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], *, device: str | None = None,
                        pseudo: PseudoLabelConfig = DEFAULT_PSEUDO) -> Segmenter:
        """The network in a checkpoint (``ssimnet train``) or an ONNX export (``.onnx``), with its stored settings.

        Raises
        ------
        DataError
            If the file is missing or damaged, an ONNX export is asked to run
            on a device other than the CPU, or its stored settings are invalid.
        """
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            if device not in (None, "", "cpu"):
                raise DataError(path, f"an ONNX network runs on the CPU, not on {device!r}: give its torch checkpoint")
            network: Trainer | OnnxNetwork = OnnxNetwork.from_file(path)
            stored = network.inference
        else:
            from ..net.checkpoint import load_model

            network, stored = load_model(path, device=device or None)
        try:
            return cls(network, settings_for(network.architecture, stored), pseudo=pseudo, path=path)
        except ValueError as exc:
            raise DataError(path, f"stored inference settings: {exc}") from None

    def with_settings(self, **overrides: object) -> Segmenter:
        """The same network with some settings replaced (keyword arguments of :class:`InferenceConfig`)."""
        return Segmenter(self.network, self._settings(overrides), pseudo=self.pseudo, path=self.path)

    def _settings(self, overrides: dict[str, object]) -> InferenceConfig:
        unknown = set(overrides) - set(InferenceConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown inference setting(s): {', '.join(sorted(unknown))}")
        settings = replace(self.settings, **overrides) if overrides else self.settings
        settings.check_network(self.network.architecture)
        if settings.finetune_epochs > 0 and isinstance(self.network, OnnxNetwork):
            raise ValueError("an ONNX network only predicts: fine-tuning needs its torch checkpoint "
                             "(Segmenter.pretrained(torch=True), or finetune_epochs=0)")
        return settings

    def stored(self) -> dict[str, object]:
        """The settings as stored with a network (:func:`dataclasses.asdict`)."""
        return asdict(self.settings)

    # ------------------------------------------------------------------ segmenting

    def segment(self, image: np.ndarray, *, mpp: float | str | None = None, seed: int = DEFAULT_SEED,
                pseudo: PseudoLabels | None = None, normalizer: StainNormalizer | None = None, measure: bool = True,
                **overrides: object) -> Segmentation:
        """Nuclei of one (H, W, 3) uint8 RGB image.

        Parameters
        ----------
        image : (H, W, 3) uint8
        mpp : float or "auto", optional
            The image's microns per pixel: it is resampled to the network's
            (``network_mpp``) and the labels back to the image's grid.  None:
            as it is.  ``"auto"``: as it is, unless its nuclei look half-size
            both in its stain and as the network finds them, against the
            training images' (``nucleus_scale``, ``nucleus_area``,
            :mod:`ssimnet.tool.pixel_size`): then enlarged twice.  An image
            that would be a region once enlarged is taken as it is.
        seed : int
            Seed of the stain measurement and of fine-tuning.
        pseudo : PseudoLabels, optional
            The image's pseudo labels, if already computed (fine-tuning only).
        normalizer : StainNormalizer, optional
            Another stain normalisation than the settings' (a study's).
        measure : bool
            Measure the nuclei (``table``); False skips it, and the stain
            fit it needs when the image is not normalised (scoring a split).
        **overrides
            Any :class:`~ssimnet.config.InferenceConfig` field, for this call:
            ``instances``, ``threshold``, ``h``, ``min_size``, ``max_hole``,
            ``min_object_probability``, ``finetune_epochs``, ``tile_size``,
            ``tile_overlap``, ``tta``, ``normalize``, ...

        Returns
        -------
        Segmentation
            ``labels`` (H, W) int32, ``table`` (one row per nucleus,
            :func:`ssimnet.predict.nuclei.measure_nuclei`, with the mean hematoxylin
            density), ``probability`` and the network's other maps.  An image
            larger than ``region_side`` is segmented tile by tile
            (:meth:`segment_tiles`) and has no maps.  ``mpp`` is the pixel
            size it was segmented at (None: as it is).  ``confidence`` is the
            network's in the nuclei it found; below ``fallback_below``, the
            nuclei are the classical hematoxylin watershed's (``fallback``, with
            a warning).  A large region is the network's throughout.
        """
        image = _rgb(image)
        settings = self._settings(overrides)
        check = mpp == AUTO
        if check:
            check_references(settings)
            mpp = None
        if self._is_region(image, settings, mpp):  # type: ignore[arg-type]
            return replace(self._assemble(image, settings, mpp=mpp, seed=seed), mpp=mpp)
        stains = Stains.measure(image, settings, self.pseudo, seed=seed, normalizer=normalizer, matrix=measure)
        result = self._segment_one(image, settings, stains, mpp=mpp, seed=seed, pseudo=pseudo,
                                   density=stains.densities)
        if check and not self._is_region(image, settings, 2 * settings.network_mpp):
            mpp = self._pixel_size(image, settings, result.label)
            if mpp is not None:  # the same stains, the image enlarged
                result = self._segment_one(image, settings, stains, mpp=mpp, seed=seed, pseudo=pseudo)
        result = replace(result, normalization=stains.note, mpp=mpp)
        if settings.fallback_below is not None and result.confidence is not None \
                and result.confidence < settings.fallback_below:
            result = self._fall_back(image, settings, result)
        check_foreground(result.label, stains.tissue if stains.tissue is not None else tissue_share(image),
                         normalized=stains.normalizer is not None)
        if not measure:
            return result
        hematoxylin = stains.densities[..., 0] if stains.densities is not None else stains.hematoxylin(image)
        return replace(result, table=measure_nuclei(result.label, hematoxylin))

    @staticmethod
    def _pixel_size(image: np.ndarray, settings: InferenceConfig, label: np.ndarray) -> float | None:
        """Twice ``network_mpp`` when `image`'s nuclei look half-size (:mod:`ssimnet.tool.pixel_size`), with a
        :class:`~ssimnet.errors.SegmentationWarning` saying so; None (as it is) otherwise.  `label` is the
        image segmented as it is."""
        import warnings

        from ..errors import SegmentationWarning
        from .pixel_size import estimate_mpp, median_area, nucleus_sigma

        sigma, area = nucleus_sigma(image), median_area(label)
        estimated = estimate_mpp(sigma, area, nucleus_scale=settings.nucleus_scale,  # type: ignore[arg-type]
                                 nucleus_area=settings.nucleus_area,  # type: ignore[arg-type]
                                 enlarge_below=settings.enlarge_below, area_below=settings.area_below,
                                 network_mpp=settings.network_mpp)
        if estimated is not None:
            warnings.warn(f"nuclei look half the size the network learned (scale {sigma:.1f} px against "
                          f"{settings.nucleus_scale:.1f}, median area {area:.0f} px against "
                          f"{settings.nucleus_area:.0f}): segmented as {estimated:g} um per pixel, enlarged twice; "
                          "--mpp gives the pixel size", SegmentationWarning, stacklevel=3)
        return estimated

    @staticmethod
    def _fall_back(image: np.ndarray, settings: InferenceConfig, result: Segmentation) -> Segmentation:
        """`result` with the classical hematoxylin watershed's nuclei instead of the network's (found at the
        resolution the network saw the image at), and a :class:`~ssimnet.errors.SegmentationWarning` saying so."""
        import warnings

        from ..baselines.watershed import hematoxylin_watershed
        from ..config import DEFAULT_BASELINES
        from ..errors import SegmentationWarning
        from .resample import rescale_image, resize_labels, scale_factor

        factor = 1.0 if result.mpp is None else scale_factor(result.mpp, network_mpp=settings.network_mpp)
        label = hematoxylin_watershed(image if factor == 1.0 else rescale_image(image, factor),
                                      sigma=DEFAULT_BASELINES.watershed_sigma, h=DEFAULT_BASELINES.watershed_h,
                                      min_size=settings.min_size, max_hole=settings.max_hole)
        warnings.warn(f"the network is unsure of the nuclei it found (mean probability {result.confidence:.3f}, "
                      f"below {settings.fallback_below:g}): the classical hematoxylin watershed's nuclei instead; "
                      "--fallback-below 0 keeps the network's", SegmentationWarning, stacklevel=3)
        return replace(result, label=label if factor == 1.0 else resize_labels(label, image.shape[:2]), fallback=True)

    def is_region(self, image: np.ndarray, *, mpp: float | None = None, **overrides: object) -> bool:
        """Whether :meth:`segment` does `image` tile by tile (a side above ``region_side`` at the network's resolution)."""
        return self._is_region(image, self._settings(overrides), mpp)

    def segment_tiles(self, image: object, into: np.ndarray, *, mpp: float | None = None, seed: int = DEFAULT_SEED,
                      **overrides: object) -> Iterator[RegionPart]:
        """A large region segmented tile by tile (:func:`ssimnet.tool.region.segment_region`) into the label map
        `into` (zeros of the image's height and width; a memory map), every nucleus once.

        `image` is anything with ``shape`` that returns an ndarray when
        sliced (a memory map reads only the tiles).  Its stains are measured
        once, on a thumbnail, and serve every tile.  Each yielded part holds
        one tile's nuclei as painted into `into`, with region-wide ids, and
        their table: the map, the tables and anything drawn from the parts are
        one set of nuclei.
        """
        from .resample import scale_factor

        settings = self._settings(overrides)
        factor = 1.0 if mpp is None else scale_factor(mpp, network_mpp=settings.network_mpp)
        shape = tuple(int(s) for s in image.shape[:2])  # type: ignore[attr-defined]
        step = -(-max(shape) // 1024)
        thumbnail = np.ascontiguousarray(np.asarray(image[::step, ::step]))  # type: ignore[index]
        stains = self.measure_stains(thumbnail, seed=seed, **asdict(settings))
        share = stains.tissue if stains.tissue is not None else tissue_share(thumbnail)
        painted = 0
        densities: list[np.ndarray] = []  # the tile just segmented: unmixed once, for the network and the table

        def segment(rgb: np.ndarray) -> np.ndarray:
            densities[:] = [stains.unmix(rgb)]
            return self._segment_one(rgb, settings, stains, mpp=mpp, seed=seed, density=densities[0]).label

        # tiles and halos of the same size at the network's resolution, whatever the image's
        tile, halo = round(settings.region_tile / factor), round(settings.region_halo / factor)
        for part in segment_region(image, segment, tile=tile, halo=halo):
            part = paint_tile(into, part)  # what of this tile's nuclei the region holds
            r, c = part.offset
            table = measure_nuclei(part.label, densities[0][..., 0])  # the tile's window, as segmented
            table["centroid_row"] = table["centroid_row"] + r  # region coordinates
            table["centroid_col"] = table["centroid_col"] + c
            painted += int(np.count_nonzero(part.label))
            yield RegionPart(part, table, stains.note)
        check_foreground(painted / max(1, shape[0] * shape[1]), share, normalized=stains.normalizer is not None)

    def measure_stains(self, image: np.ndarray, *, seed: int = DEFAULT_SEED, **overrides: object) -> Stains:
        """One measurement of the stains of `image` -- a thumbnail of a region, or a mosaic of a slide's
        tissue -- that serves every tile of it (:meth:`segment_tile`): what normalises them, what gives
        their hematoxylin density, and what was done (``note``).  Warns as :meth:`segment` does when
        ``normalize="auto"`` leaves the stains as they are."""
        return Stains.measure(_rgb(image), self._settings(overrides), self.pseudo, seed=seed, keep_densities=False)

    def segment_tile(self, image: np.ndarray, stains: Stains, *, mpp: float | None = None, seed: int = DEFAULT_SEED,
                     density: np.ndarray | None = None, **overrides: object) -> np.ndarray:
        """The instance map (int32, 0 background) of one tile of a region or slide, its stains those
        :meth:`measure_stains` measured once for all its tiles; `density` is ``stains.unmix(image)``
        when the caller has it already."""
        return self._segment_one(_rgb(image), self._settings(overrides), stains, mpp=mpp, seed=seed,
                                 density=density).label

    # ------------------------------------------------------------------ the steps

    @staticmethod
    def _is_region(image: np.ndarray, settings: InferenceConfig, mpp: float | None) -> bool:
        from .resample import scale_factor

        factor = 1.0 if mpp is None else scale_factor(mpp, network_mpp=settings.network_mpp)
        return max(image.shape[:2]) * factor > settings.region_side

    def _segment_one(self, rgb: np.ndarray, settings: InferenceConfig, stains: Stains, *, mpp: float | None,
                     seed: int, pseudo: PseudoLabels | None = None, density: np.ndarray | None = None) -> Segmentation:
        """`rgb` segmented at the network's resolution, the labels on its own grid."""
        from .resample import rescale_image, resize_labels, scale_factor

        factor = 1.0 if mpp is None else scale_factor(mpp, network_mpp=settings.network_mpp)
        seen = rgb if factor == 1.0 else rescale_image(rgb, factor)
        result = segment_image(seen, self.network, settings, pseudo_config=self.pseudo, seed=seed, pseudo=pseudo,
                               normalizer=stains.normalizer, source=stains.source,
                               density=density if factor == 1.0 else None)
        if factor == 1.0:
            return result
        return replace(result, label=resize_labels(result.label, rgb.shape[:2]), probability=None, distance=None,
                       boundary=None)

    def _assemble(self, image: np.ndarray, settings: InferenceConfig, *, mpp: float | None, seed: int) -> Segmentation:
        label = np.zeros(image.shape[:2], np.int32)
        tables, note = [], ""
        for part in self.segment_tiles(image, label, mpp=mpp, seed=seed, **asdict(settings)):
            tables.append(part.table)
            note = part.normalization
        return Segmentation(label=label, probability=None, pseudo=None, finetune_history=[],
                            table=concatenate_tables(tables), tiles=len(tables), normalization=note)


def check_references(settings: InferenceConfig) -> None:
    """Raise ValueError unless `settings` carry the training images' references that ``mpp="auto"`` needs."""
    if settings.nucleus_scale is None or settings.nucleus_area is None:
        raise ValueError("mpp='auto' compares an image's nuclei with the network's training images', and this "
                         "network carries no nucleus_scale and nucleus_area (ssimnet train stores them)")


def _rgb(image: np.ndarray) -> np.ndarray:
    """`image` as an (H, W, 3) uint8 array, or a ValueError saying what it is instead."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image (ssimnet.data.read_image reads one), got {image.dtype} "
                         f"of shape {image.shape}")
    return image


class Stains(NamedTuple):
    """One measurement of an image's stains: what normalises it and gives its hematoxylin density
    (:meth:`Segmenter.measure_stains`; picklable, so that one measurement serves a slide's tiles on any worker)."""

    normalizer: StainNormalizer | None
    source: object  # the image's own StainReference when normalising, else None
    stain_matrix: np.ndarray | None  # None when not asked for (no table) and not normalising
    densities: np.ndarray | None  # (H, W, 2) of the measured image itself, when the measurement made them
    note: str = ""  # what was done with the stains (Segmentation.normalization)
    tissue: float | None = None  # share of the image that is tissue, when the measurement found it

    @classmethod
    def measure(cls, image: np.ndarray, settings: InferenceConfig, pseudo: PseudoLabelConfig, *, seed: int,
                normalizer: StainNormalizer | None = None, keep_densities: bool = True, matrix: bool = True) -> Stains:
        import warnings

        from ..errors import SegmentationWarning
        from ..pseudo.stain import VahadaneSeparator
        from .normalize import inference_normalizer

        asked = normalizer is not None  # a study's own normalisation is always applied
        normalizer = normalizer or inference_normalizer(settings, n_samples=pseudo.stain_samples, seed=seed)
        if normalizer is not None:  # one measurement serves the normalisation and the densities
            source, densities, check = normalizer.measure_checked(image)
            kept = densities if keep_densities else None
            swapped = "; stain names swapped by where each stain is" if check.swapped else ""
            if check.one_stain and settings.normalize == "auto" and not asked:
                matrix = np.asarray(source.stain_matrix)
                if STAIN_GUARD.one_stain_way == "off":
                    note = f"not normalised: {check.describe()}"
                    warnings.warn(f"stains not normalised (--normalize auto): {check.describe()}; --normalize on "
                                  "forces it", SegmentationWarning, stacklevel=3)
                    return cls(None, None, matrix, kept, note + swapped, check.tissue)
                normalizer, source = normalizer.one_stain(source, check)
                note = f"normalised as hematoxylin only: {check.describe()}"
                warnings.warn(f"stains normalised as hematoxylin only (--normalize auto): {check.describe()}; "
                              "--normalize on normalises two stains, off none", SegmentationWarning, stacklevel=3)
                return cls(normalizer, source, matrix, kept, note + swapped, check.tissue)
            return cls(normalizer, source, np.asarray(source.stain_matrix), kept, "normalised" + swapped, check.tissue)
        if not matrix:
            return cls(None, None, None, None, "not normalised (off)")
        stains = VahadaneSeparator.from_config(pseudo, seed=seed, solver=settings.stain_solver).fit(image).stain_matrix_
        return cls(None, None, stains, None, "not normalised (off)")

    def unmix(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 2) hematoxylin and eosin densities of `rgb` under the measured stains: what normalising
        it starts from, and what the nuclei's mean hematoxylin is read from."""
        from ..pseudo.stain import nonnegative_unmix, rgb_to_od

        return nonnegative_unmix(rgb_to_od(rgb), self.stain_matrix)

    def hematoxylin(self, rgb: np.ndarray) -> np.ndarray:
        return self.unmix(rgb)[..., 0]


def tissue_share(image: np.ndarray) -> float:
    """The share of `image`'s pixels that are tissue (:func:`ssimnet.pseudo.stain.tissue_mask`)."""
    from ..pseudo.stain import tissue_mask

    return float(np.mean(tissue_mask(image)))


def check_foreground(label: np.ndarray | float, tissue: float, *, normalized: bool) -> float | None:
    """The share of the tissue that `label` (or a nucleus share of the image) calls nucleus; above
    :attr:`ssimnet.config.STAIN_GUARD.max_foreground` a :class:`~ssimnet.errors.SegmentationWarning`
    says so and what to try.  None when the image has almost no tissue."""
    import warnings

    from ..errors import SegmentationWarning

    nuclei = float(label) if np.isscalar(label) else float(np.count_nonzero(label)) / max(1, np.size(label))
    if tissue < 0.01:
        return None
    share = min(1.0, nuclei / tissue)
    if share > STAIN_GUARD.max_foreground:
        other = "--normalize off" if normalized else "--normalize on"
        warnings.warn(f"nuclei cover {share:.0%} of the tissue, more than the {STAIN_GUARD.max_foreground:.0%} of a "
                      f"plausible result: unusual staining? try {other}, or --adapt", SegmentationWarning, stacklevel=3)
    return share
