"""Constants of the package: seeds, image checks, file formats, stain references, instance-method defaults.

Part of :mod:`ssimnet.config`, which re-exports every name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

#: Seed of a run when none is given (pseudo labels, training, baselines).
DEFAULT_SEED: int = 0

#: Below this spread (99th minus 1st percentile of the grey level, 0-255) an
#: image is blank -- all black, all white or one flat colour -- and is
#: rejected as input: it holds no tissue to segment.
MIN_IMAGE_RANGE: float = 10.0

#: The smallest nucleus kept and the largest hole filled, in pixels at 40x: the default both of the
#: candidates' clean-up (:class:`PseudoLabelConfig`) and of the network's instances (:class:`InferenceConfig`),
#: two settings of two stages that start from one number.
MIN_NUCLEUS_AREA: int = 30
MAX_HOLE_AREA: int = 200

#: The most pixels an image may have to be read at once (:func:`ssimnet.imread.read_image`), judged from its
#: header before any decoding: 20000x20000, 1.2 GB as RGB.  Pillow's own limit (about 179 M pixels, an
#: error rather than a one-line refusal) is replaced by this one.
MAX_IMAGE_PIXELS: int = 400_000_000

#: Microns per pixel of the images the networks learn from: MoNuSeg's 40x
#: scans, about 0.25 um per pixel.  ``ssimnet segment --mpp`` resamples an
#: image of another resolution to it (:mod:`ssimnet.tool.resample`).
NETWORK_MPP: float = 0.25

#: The pixel-size check of ``ssimnet segment --mpp auto`` (:mod:`ssimnet.tool.pixel_size`), chosen by
#: ``studies/stain_stress.py --only pixel`` on MoNuSeg *training* images (``results/cpu/pixel_size_selection_*``):
#: the references, measured on the 30 training images with no labels -- the median nucleus scale in the stain
#: (pixels at :data:`NETWORK_MPP`) and the median nucleus area the shipped network finds (pixels) -- and the
#: fractions of them below which an image is segmented enlarged twice
#: (:func:`ssimnet.runs.pixel_choice.choose_enlarge_below`).
TRAINING_NUCLEUS_SCALE: float = 6.727171322029716
TRAINING_NUCLEUS_AREA: float = 402.75
ENLARGE_BELOW: float = 0.8
AREA_BELOW: float = 0.6

#: The watershed fallback of ``ssimnet segment`` (``fallback_below``): below this confidence of the shipped
#: network in the nuclei it found (their mean nucleus probability), an image's nuclei are the classical
#: watershed's.  Chosen by ``studies/stain_stress.py --only fallback`` on MoNuSeg *training* images and their
#: stressed copies (``results/cpu/fallback_selection_*``): the best mean AJI over the stress transforms among
#: the thresholds that do not lower the untransformed images'
#: (:func:`ssimnet.runs.fallback_choice.choose_fallback_below`).
FALLBACK_BELOW: float = 0.625

#: Name of the network shipped in ``ssimnet/weights/`` (:mod:`ssimnet.tool.shipped`), the
#: default of ``ssimnet segment``: the ``cpu`` profile's tool network trained on
#: the MoNuSeg training images' pseudo labels by ``studies/ship_model.py``.
SHIPPED_MODEL: str = "ssimnet-cpu-monuseg"

#: ONNX opset of a network's export (:func:`ssimnet.net.onnxnet.export_onnx`), which
#: ``ssimnet segment`` runs with ONNX Runtime instead of torch when it only predicts.
ONNX_OPSET: int = 17

#: zlib level of the PNG files written (:func:`ssimnet.data.write_image`, ``write_label``):
#: 1 writes a 1000x1000 overlay three times faster than PIL's default 6, 8 % larger.
PNG_COMPRESSION: int = 1

#: The published book: the reference run's executed chapters, committed
#: (``_toc.yml`` lists them; ``make book`` builds them as they are).
BOOK_PUBLISHED: str = "book/published"
#: Where ``ssimnet book`` executes a run's chapters (git-ignored).
BOOK_EXECUTED: str = "book/executed"


class PublishFigures(NamedTuple):
    """How ``ssimnet publish`` stores figures (:func:`ssimnet.book.publish.compress_outputs`).

    PNG outputs above ``min_bytes`` (base64) become JPEG of this ``quality``,
    at most ``max_width`` pixels wide: screen resolution.
    """

    max_width: int = 1400
    quality: int = 82
    min_bytes: int = 150_000


PUBLISH_FIGURES = PublishFigures()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container or ``taskset`` may narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers() -> int:
    """Worker processes of a command when none are asked for: the usable CPUs, at most 4."""
    return max(1, min(4, usable_cpus()))


#: How the pseudo labels factorise stains (:class:`ssimnet.pseudo.stain.VahadaneSeparator`):
#: ``"cd"``, scikit-learn's mini-batch dictionary learning, with which every
#: committed result under ``results/`` was made.  ``ssimnet segment`` uses the
#: ``"exact"`` solver (:attr:`SegmentConfig.stain_solver`), ten times faster.
PSEUDO_STAIN_SOLVER: str = "cd"

#: Iteration limit and tolerance (largest change of a stain colour) of
#: :func:`ssimnet.pseudo.stain.factorize_stains`.
STAIN_SOLVER_MAX_ITER: int = 300
STAIN_SOLVER_TOL: float = 1e-5


@dataclass(frozen=True)
class StainReference:
    """Reference stain colours and densities of stain normalisation (:class:`ssimnet.tool.normalize.StainNormalizer`).

    Attributes
    ----------
    stain_matrix : ((3 floats), (3 floats))
        Unit optical-density colours of hematoxylin (row 0) and eosin.
    max_density : (float, float)
        Each stain's density at `percentile` of the tissue pixels.
    percentile : float
    """

    stain_matrix: tuple[tuple[float, float, float], tuple[float, float, float]]
    max_density: tuple[float, float]
    percentile: float = 99.0


#: The stain reference of the package: ``StainNormalizer(seed=0).fit(images)``
#: on the 30 MoNuSeg *training* images (median stain colours and 99th-percentile
#: densities; no labels), recorded in ``results/cpu/normalization_provenance.json``.
STAIN_REFERENCE: StainReference = StainReference(
    stain_matrix=((0.5298371600168138, 0.7469583245497939, 0.4016538873845016),
                  (0.29297146264611484, 0.8129325057762228, 0.5032975890339508)),
    max_density=(2.7301887204472166, 1.6416895826723996),
)


class StainGuard(NamedTuple):
    """Thresholds of the stain guard (:mod:`ssimnet.tool.stain_guard`) and of the check on a result.

    Chosen on ten MoNuSeg training images and their stress-tested copies
    (``studies/stain_stress.py``).  The guard's third version (both masks
    must agree) kept the second version's thresholds.  The fourth normalised
    a one-stain image as hematoxylin only instead of leaving it as it is, with
    one-stain thresholds chosen again on the training rows
    (:func:`ssimnet.runs.guard_choice.choose_one_stain`: 14 degrees, 2.0); on
    the test images they fired on untransformed and lavender images and
    lowered their scores.  The fifth, this one, keeps the third's thresholds
    and the way that scores higher with them on the training rows
    (hematoxylin only).  What each version scored on MoNuSeg test and TNBC is
    in ``results/cpu/stain_stress_*``.

    Attributes
    ----------
    order_margin, order_min_density : float
        The stain called hematoxylin becomes the counterstain when it is more
        than `order_margin` times as spread over the tissue as the other, and
        the other's 99th-percentile density is at least `order_min_density`
        times its own (not noise).
    one_stain_angle, one_stain_spread : float
        An image is one-stain when its stain colours are less than
        `one_stain_angle` degrees apart and their spreads within a factor
        `one_stain_spread`.
    one_stain_way : {"hematoxylin only", "off"}
        What ``normalize="auto"`` does with a one-stain image: normalise it as
        hematoxylin alone (:meth:`ssimnet.tool.normalize.StainNormalizer.one_stain`),
        or leave its colours as they are (the guard's first three versions).
    max_foreground : float
        A result whose nuclei cover more than this share of the tissue is
        implausible and warned about.
    """

    order_margin: float = 1.5
    order_min_density: float = 0.5
    one_stain_angle: float = 9.0
    one_stain_spread: float = 1.8
    one_stain_way: str = "hematoxylin only"
    max_foreground: float = 0.6


#: The stain guard's thresholds.
STAIN_GUARD: StainGuard = StainGuard()

#: Stain normalisation modes of :attr:`ssimnet.config.InferenceConfig.normalize` (and ``segment --normalize``).
NORMALIZE_MODES: tuple[str, ...] = ("auto", "on", "off")

#: Over which pixels of the Voronoi label Eq. (5)'s cross-entropy takes its mean
#: (:attr:`~ssimnet.config.TrainConfig.ce_pixels`): the labelled ones (the paper ignores the rest), or all of them,
#: the ignored ones adding 0.
CE_PIXELS: tuple[str, ...] = ("labelled", "all")


class InstanceDefaults(NamedTuple):
    """Default settings of one instance method of :func:`ssimnet.predict.nuclei.instances`."""

    threshold: float
    h: float | None


#: Instance methods of :func:`ssimnet.predict.nuclei.instances` with their default
#: foreground threshold and marker height `h` (probability units for
#: "watershed", pixels of distance for "distance"; "cc" has no markers).
#: "cc" is the paper's setting.  The "distance" defaults were chosen on the
#: MoNuSeg *training* split (``cpu`` network, no fine-tuning; thresholds
#: 0.3-0.6, h 0.25-2, sigma 0-2); over 3 seeds they give AJI 45.5, against
#: 40.8 for "watershed" and 27.8 for "cc".  The "boundary" defaults were chosen
#: on six MoNuSeg training images held out of training (``studies/levers.py``;
#: ``cpu`` networks with the 2- and 4-pixel boundary outputs after one
#: self-training round, seed 0, stains as they are): thresholds 0.15-0.45 and
#: h 0.1-0.5 gave AJI 35.2-51.9 (2 px), highest from 0.15 to 0.2 with h 0.1;
#: 4 px: 53.1 at 0.2 and 0.1, against 52.3 at 0.45 and 52.0 with h 0.2.
INSTANCE_METHODS: dict[str, InstanceDefaults] = {
    "cc": InstanceDefaults(threshold=0.5, h=None),
    "watershed": InstanceDefaults(threshold=0.5, h=0.1),
    "distance": InstanceDefaults(threshold=0.45, h=0.25),
    "learned": InstanceDefaults(threshold=0.45, h=0.05),
    "boundary": InstanceDefaults(threshold=0.2, h=0.1),
}

#: ``distance_weight`` of the learned separation output when it is switched on
#: (:mod:`ssimnet.net.separation`).  Chosen, with ``distance_solidity`` 0 and the
#: "learned" marker height 0.05, on the MoNuSeg *training* split (``cpu``
#: profile, seed 0, trained on a lent H100; ``results/gpu/``): training AJI
#: 45.1, against 44.5-44.7 for the weights 1 and 3 with solidity 0.9 and 43.8
#: without the output -- differences within the spread over seeds.
LEARNED_SEPARATION_WEIGHT: float = 1.0

#: Fields that checkpoints written before :class:`~ssimnet.config.InferenceConfig` existed keep in their ``TrainConfig``:
#: the inference settings ``ssimnet segment`` read from there (True), and the book's fine-tuning epochs,
#: which it did not (False).
LEGACY_TRAIN_FIELDS: dict[str, bool] = {"tile_overlap": True, "instances": True, "min_size": True, "max_hole": True,
                                        "min_object_probability": True, "finetune_lr": True, "finetune_norm": True,
                                        "finetune_epochs": False, "selftrain_rounds": False, "selftrain_epochs": False}
