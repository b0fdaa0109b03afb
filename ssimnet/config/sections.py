"""The sections of a run profile: synthetic data, pseudo labels, training, ``segment``, baselines.

Part of :mod:`ssimnet.config`, which re-exports every name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..net.architecture import Architecture
from .constants import (AREA_BELOW, CE_PIXELS, ENLARGE_BELOW, INSTANCE_METHODS, LEGACY_TRAIN_FIELDS, MAX_HOLE_AREA,
                        MIN_NUCLEUS_AREA, NETWORK_MPP, NORMALIZE_MODES)


def key_fields(section: object) -> dict[str, object]:
    """Every field of a settings dataclass, nested ones included: what keys a cache (:func:`ssimnet.runs.store.stage_key`).

    >>> from ssimnet.config import TrainConfig
    >>> key_fields(TrainConfig())["boundary_width"], key_fields(TrainConfig(boundary_width=3))["boundary_width"]
    (0, 3)
    """
    return asdict(section)


@dataclass(frozen=True)
class SyntheticConfig:
    """How the embedded synthetic H&E dataset is drawn (see :mod:`ssimnet.synthetic`).

    Attributes
    ----------
    n_train, n_test : int
        Number of tiles in the ``train`` and ``test`` splits.
    shape : tuple of int
        Tile height and width in pixels.
    seed : int
        Base seed; tile ``i`` of split ``s`` uses a seed derived from it, so the
        dataset is identical on every machine.
    """

    n_train: int = 6
    n_test: int = 3
    shape: tuple[int, int] = (512, 512)
    seed: int = 2023


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Settings of the label-free pseudo-label pipeline (paper Sec. 2.1-2.2).

    Stain separation (Eq. 1-2, :mod:`ssimnet.pseudo.stain`)
        ``stain_samples`` tissue pixels are factorised with L1 weight
        ``stain_sparsity`` (Vahadane et al.'s lambda = 0.1).  A tissue pixel
        has CIELAB ``L*/100`` below ``tissue_lightness`` (Vahadane et al.'s
        0.8) and summed optical density above ``tissue_min_od``; with fewer
        than ``stain_min_tissue`` of them, or stain colours less than
        ``stain_min_angle`` degrees apart, the reference matrix is used.
    Candidates (Eq. 3, :mod:`ssimnet.pseudo.candidates`)
        Fuzzy c-means with fuzzifier ``fcm_m`` on ``fcm_samples`` pixels (no
        nucleus cluster if ``L*`` spans less than ``min_lightness_range``), on
        the ``fcm_features`` ("lab" or "lightness") of the ``fcm_image``
        ("hematoxylin", ``I^T`` as in Eq. 3, or "rgb"), the nuclei its
        ``fcm_nucleus`` cluster ("darker" or "smaller");
        ``contour_iterations`` steps of a morphological Chan-Vese active
        contour with ``contour_smoothing``; components below ``min_size``
        pixels removed and holes below ``max_hole`` pixels filled.
    Candidate generator (beyond the paper, :mod:`ssimnet.pseudo.generators`)
        ``candidate_method`` draws ``P``: ``"fcm"`` is the paper's Eq. (3);
        the others threshold the hematoxylin density (Otsu after a Gaussian
        of ``threshold_sigma``) and ``"watershed"`` splits it by a distance
        watershed with markers ``split_h`` pixels high.
    Softening (Eq. 4, :mod:`ssimnet.pseudo.soften`)
        Erosion stops once the confidence exceeds ``soften_stop`` (0.975).
    Purification (Algorithm 1, :mod:`ssimnet.pseudo.purify`)
        ``patch_size`` patches every ``patch_stride`` pixels; the fraction
        ``keep_fraction`` (alpha = 70 %) of lowest USMI is kept; patches with
        fewer than ``min_components`` candidates get USMI = inf.
    Voronoi labels (:mod:`ssimnet.pseudo.voronoi`)
        Points dilated to discs of radius ``point_radius``.
    """

    stain_samples: int = 20000
    stain_sparsity: float = 0.1
    tissue_lightness: float = 0.8
    tissue_min_od: float = 0.15
    stain_min_tissue: int = 500
    stain_min_angle: float = 5.0
    fcm_m: float = 2.0
    fcm_samples: int = 20000
    fcm_features: str = "lab"
    fcm_image: str = "hematoxylin"
    fcm_nucleus: str = "darker"
    min_lightness_range: float = 5.0
    contour_iterations: int = 10
    contour_smoothing: int = 2
    min_size: int = MIN_NUCLEUS_AREA
    max_hole: int = MAX_HOLE_AREA
    candidate_method: str = "fcm"
    threshold_sigma: float = 1.0
    split_h: float = 1.0
    soften_stop: float = 0.975
    patch_size: int = 256
    patch_stride: int = 128
    keep_fraction: float = 0.7
    min_components: int = 3
    point_radius: int = 2


@dataclass(frozen=True)
class TrainConfig:
    """The network and its training (paper Sec. 2.2 and 3.1): every field changes the trained weights.

    Self-training rounds after it are :class:`SelfTrainConfig`; how the
    trained network then segments an image, per-image fine-tuning included, is
    :class:`InferenceConfig`, which is stored with the network.

    Network (:mod:`ssimnet.net.model`)
        U-Net with ``depth`` down-sampling steps and base width ``width``.
    Training (:mod:`ssimnet.net.train`)
        Adam at ``lr``, multiplied by ``lr_decay`` after every epoch, for
        ``epochs`` epochs of ``batch_size`` patches; loss
        ``loss_lambda * BCE + (1 - loss_lambda) * CE`` (Eq. 5), the CE's mean over
        the ``ce_pixels`` (:data:`CE_PIXELS`) of the Voronoi label; random flips
        and 90-degree rotations when ``augment``; with ``stain_jitter`` > 0
        also HED-space colour jitter of that strength (beyond the paper,
        :mod:`ssimnet.net.augment`).
    Ablation switches (paper Table 3)
        ``soft_labels`` (False: the BCE target is the hard candidate map),
        ``purify`` (False: train on every patch); per-image fine-tuning is
        :attr:`InferenceConfig.finetune_epochs`.
    Learned separation (beyond the paper, :mod:`ssimnet.net.separation`)
        With ``distance_weight`` > 0 the U-Net has a third output, the
        normalised distance to the nucleus rim, trained with that weight
        (mean squared error) on the candidates whose solidity is at least
        ``distance_solidity``; the ``"learned"`` instance method splits
        nuclei with it.  0 (the default) is the paper's network.
    Boundary-aware target (beyond the paper, :mod:`ssimnet.net.boundary`)
        With ``boundary_width`` > 0 the U-Net has one more output, the
        probability that a nucleus pixel lies on a nucleus boundary: within
        ``boundary_width`` pixels of its rim, or between two touching
        nuclei.  With the nucleus class of Eq. (5) it makes the three classes
        inside / boundary / background; it is trained with that weight
        (``boundary_weight``, binary cross-entropy) on the boundaries of the
        pseudo instances, and the ``"boundary"`` instance method seeds one
        nucleus per inside region.  0 (the default) is the paper's network.
    """

    depth: int = 4
    width: int = 64
    epochs: int = 150
    batch_size: int = 8
    lr: float = 5e-5
    lr_decay: float = 0.98
    loss_lambda: float = 0.9
    augment: bool = True
    stain_jitter: float = 0.0
    soft_labels: bool = True
    purify: bool = True
    distance_weight: float = 0.0
    distance_solidity: float = 0.0
    boundary_width: int = 0
    boundary_weight: float = 1.0
    ce_pixels: str = "labelled"

    def __post_init__(self) -> None:
        for name, bad in (("stain_jitter", self.stain_jitter < 0), ("boundary_width", self.boundary_width < 0)):
            if bad:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.ce_pixels not in CE_PIXELS:
            raise ValueError(f"ce_pixels must be one of {', '.join(CE_PIXELS)}, got {self.ce_pixels!r}")

    @property
    def architecture(self) -> Architecture:
        """The shape of the network these settings train (2 outputs, Eq. 5; one more for the rim distance,
        and the boundary class last)."""
        return Architecture(depth=self.depth, width=self.width,
                            out_channels=2 + (self.distance_weight > 0) + (self.boundary_width > 0),
                            boundary=self.boundary_width > 0)

    @property
    def distance_targets(self) -> float | None:
        """The solidity threshold of the rim-distance targets, or None when the network has no distance output."""
        return self.distance_solidity if self.distance_weight > 0 else None


@dataclass(frozen=True)
class SelfTrainConfig:
    """Self-training (beyond the paper, :mod:`ssimnet.net.selftrain`): `rounds` rounds, each continuing the
    previous round's network and schedule for `epochs` epochs on pseudo labels rebuilt from its own
    predictions on the training images.  0 rounds (the default) is the paper's training.

    >>> SelfTrainConfig(rounds=-1)
    Traceback (most recent call last):
    ...
    ValueError: rounds must be >= 0 and epochs >= 1, got -1 and 5
    """

    rounds: int = 0
    epochs: int = 5

    def __post_init__(self) -> None:
        if self.rounds < 0 or self.epochs < 1:
            raise ValueError(f"rounds must be >= 0 and epochs >= 1, got {self.rounds} and {self.epochs}")


def split_train_dict(values: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """A stored ``TrainConfig`` dict split into its TrainConfig fields and the inference settings an older one held.

    >>> split_train_dict({"depth": 3, "instances": "distance", "finetune_epochs": 5})
    ({'depth': 3}, {'instances': 'distance'})
    """
    train = {k: v for k, v in values.items() if k not in LEGACY_TRAIN_FIELDS}
    inference = {k: v for k, v in values.items() if LEGACY_TRAIN_FIELDS.get(k)}
    return train, inference


#: What each instance method needs of the network: the :class:`~ssimnet.net.architecture.Architecture`
#: flag, and what it is in words.
METHOD_NEEDS: dict[str, tuple[str, str]] = {
    "learned": ("has_distance", "the learned separation output (distance_weight > 0)"),
    "boundary": ("boundary", "the boundary output (boundary_width > 0)"),
}


@dataclass(frozen=True)
class InferenceConfig:
    """How a trained network segments an image: every setting of :meth:`ssimnet.tool.segmenter.Segmenter.segment`.

    A network carries its own (in its checkpoint, its ONNX export and the shipped network's model card),
    so that the same network segments the same way from the command line, Python, a batch or the book.
    The defaults are the paper's protocol (Sec. 3.1), which the book's reproduction uses.

    Attributes
    ----------
    instances : {"cc", "watershed", "distance", "learned", "boundary"}
        Instance method (:func:`ssimnet.predict.nuclei.instances`); ``"cc"``, connected
        components, is the paper's.
    threshold, h : float or None
        Foreground threshold and marker height of that method; None: the
        method's entry in :data:`INSTANCE_METHODS`.
    min_size, max_hole : int
        Smallest nucleus kept and largest hole filled, in pixels.
    min_object_probability : float
        Nuclei whose mean probability is below this are dropped (beyond the paper; 0 keeps every one).
    finetune_epochs : int
        Epochs of per-image fine-tuning on the image's own purified patches (paper Sec. 2.2: 5; 0 = none),
        continuing from the saved optimiser state (:meth:`ssimnet.net.train.Trainer.finetune_copy`).
    finetune_lr : float or None
        The learning rate fine-tuning starts at; None: the schedule's where training stopped (the paper).
    finetune_norm : {"train", "frozen"}
        ``"train"``: batch normalisation re-estimates its statistics on the image, as a plain
        fine-tuning does; ``"frozen"``: it keeps the trained network's.
    tile_size : int
        Largest tile the network predicts at once
        (:func:`ssimnet.predict.maps.inference_tile`): the paper's patch size, 256,
        or 1024, with which a 1000x1000 image is one tile instead of 36, twice
        as fast (AJI 47.3 against 47.4 on the MoNuSeg training split).
    tile_overlap : int
        Overlap of neighbouring tiles, in pixels (blended linearly).
    tta : bool
        Test-time augmentation: eight orientations averaged, 8x the time.
    normalize : {"off", "on", "auto"}
        Map each image's stains onto :data:`STAIN_REFERENCE` before the
        network sees it (:mod:`ssimnet.tool.normalize`): ``"on"`` always,
        ``"auto"`` too, an image of one stain only (the stain guard,
        :mod:`ssimnet.tool.stain_guard`) as hematoxylin alone, ``"off"`` never.  ``True`` and
        ``False`` (version 0.2's settings) read as ``"on"`` and ``"off"``.
    normalize_min_scale : float
        Smallest factor of that mapping's density scaling: 1 strengthens pale
        stains and never weakens dark ones (``results/cpu/normalization_*``).
    stain_solver : {"exact", "cd"}
        How each image's stains are measured (:class:`ssimnet.pseudo.stain.VahadaneSeparator`).
    network_mpp : float
        Microns per pixel of the images the network learned from; an image
        of another resolution is resampled to it and back.
    nucleus_scale, nucleus_area, enlarge_below, area_below : float or None, float or None, float, float
        The nuclei's scale in the stain and their median area as the network segments them, on its
        training images (pixels): with ``mpp="auto"``, an image under both `enlarge_below` of the one and
        `area_below` of the other (fractions in (0, 1]) is segmented enlarged twice
        (:mod:`ssimnet.tool.pixel_size`).  None: unknown, and ``"auto"`` is refused.
    fallback_below : float or None
        When the network's confidence in the nuclei it finds (their pixels' mean nucleus probability,
        :func:`ssimnet.predict.nuclei.nucleus_confidence`) is below this, the image's nuclei are the
        classical hematoxylin watershed's instead (:mod:`ssimnet.baselines.watershed`).  None: never.
    region_side, region_halo : int
        Images with a side longer than `region_side` are segmented tile by tile (:mod:`ssimnet.tool.region`),
        each tile's core with `region_halo` pixels of context around it, more than a nucleus; core and
        halos make one `tile_size` tile (:attr:`region_tile`).

    Examples
    --------
    >>> InferenceConfig().instances, InferenceConfig(tile_size=1024).region_tile
    ('cc', 832)
    >>> InferenceConfig(instances="dots")
    Traceback (most recent call last):
    ...
    ValueError: instances must be one of 'cc', 'watershed', 'distance', 'learned', 'boundary', got 'dots'
    """

    instances: str = "cc"
    threshold: float | None = None
    h: float | None = None
    min_size: int = MIN_NUCLEUS_AREA
    max_hole: int = MAX_HOLE_AREA
    min_object_probability: float = 0.0
    finetune_epochs: int = 5
    finetune_lr: float | None = None
    finetune_norm: str = "train"
    tile_size: int = 256
    tile_overlap: int = 64
    tta: bool = False
    normalize: str = "off"
    normalize_min_scale: float = 1.0
    stain_solver: str = "exact"
    network_mpp: float = NETWORK_MPP
    nucleus_scale: float | None = None
    nucleus_area: float | None = None
    enlarge_below: float = ENLARGE_BELOW
    area_below: float = AREA_BELOW
    fallback_below: float | None = None
    region_side: int = 2048
    region_halo: int = 96

    def __post_init__(self) -> None:
        if isinstance(self.normalize, bool):  # version 0.2 stored a bool
            object.__setattr__(self, "normalize", "on" if self.normalize else "off")
        if self.instances not in INSTANCE_METHODS:
            raise ValueError(f"instances must be one of {', '.join(map(repr, INSTANCE_METHODS))}, got {self.instances!r}")
        checks = [
            (self.threshold is None or 0 <= self.threshold < 1, "threshold must lie in [0, 1)", self.threshold),
            (self.h is None or self.h >= 0, "h must be >= 0", self.h),
            (self.min_size >= 0 and self.max_hole >= 0, "min_size and max_hole must be >= 0", (self.min_size, self.max_hole)),
            (0 <= self.min_object_probability < 1, "min_object_probability must lie in [0, 1)", self.min_object_probability),
            (self.finetune_epochs >= 0, "finetune_epochs must be >= 0", self.finetune_epochs),
            (self.finetune_lr is None or self.finetune_lr >= 0, "finetune_lr must be >= 0", self.finetune_lr),
            (self.finetune_norm in ("train", "frozen"), "finetune_norm must be 'train' or 'frozen'", self.finetune_norm),
            (self.tile_size >= 16, "tile_size must be at least 16", self.tile_size),
            (0 <= self.tile_overlap < self.tile_size, "tile_overlap must lie in [0, tile_size)", self.tile_overlap),
            (self.normalize in NORMALIZE_MODES, f"normalize must be one of {', '.join(NORMALIZE_MODES)}", self.normalize),
            (self.normalize_min_scale >= 0, "normalize_min_scale must be >= 0", self.normalize_min_scale),
            (self.stain_solver in ("exact", "cd"), "stain_solver must be 'exact' or 'cd'", self.stain_solver),
            (self.network_mpp > 0, "network_mpp must be > 0", self.network_mpp),
            (all(v is None or v > 0 for v in (self.nucleus_scale, self.nucleus_area)),
             "nucleus_scale and nucleus_area must be > 0", (self.nucleus_scale, self.nucleus_area)),
            (0 < min(self.enlarge_below, self.area_below) <= max(self.enlarge_below, self.area_below) <= 1,
             "enlarge_below and area_below must lie in (0, 1]", (self.enlarge_below, self.area_below)),
            (self.fallback_below is None or 0 <= self.fallback_below <= 1, "fallback_below must lie in [0, 1]",
             self.fallback_below),
            (0 <= 2 * self.region_halo < self.tile_size, "a region tile's two halos must leave a core: 2 * region_halo "
                                                         "< tile_size", (self.region_halo, self.tile_size)),
            (self.region_side >= 1, "region_side must be positive", self.region_side),
        ]
        for ok, message, value in checks:
            if not ok:
                raise ValueError(f"{message}, got {value!r}")

    @property
    def region_tile(self) -> int:
        """Core side of a large region's tiles: one `tile_size` tile less its two halos."""
        return self.tile_size - 2 * self.region_halo

    def check_network(self, architecture: object) -> None:
        """Raise ValueError if the instance method needs an output the network (its Architecture) lacks."""
        need = METHOD_NEEDS.get(self.instances)
        if need and not getattr(architecture, need[0]):
            raise ValueError(f"instances {self.instances!r} needs a network trained with {need[1]}; this one has none")

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> InferenceConfig:
        """Settings stored as a dict (:func:`dataclasses.asdict`); unknown keys are a ValueError."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown inference settings: {', '.join(sorted(unknown))}")
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the comparison methods (:mod:`ssimnet.baselines`) and the evaluation protocol.

    Protocol (paper Sec. 3.1)
        Every per-image method runs ``runs`` times, and every trained network
        (SSimNet, its ablations, the supervised U-Net) ``network_runs`` times,
        with seeds ``seed, seed + 1, ...`` (the paper: ten runs on MoNuSeg).
        Deterministic methods (the classical watershed) run once.
    Pixel clustering (mKMeans, GMM)
        ``cluster_k`` clusters of RGB colour fitted on ``cluster_samples``
        pixels; the darkest cluster is the nucleus class.  K = 3 (nuclei,
        other tissue, background) was chosen on the MoNuSeg *training*
        split: Dice 66.6 (mKMeans) and 69.1 (GMM) against 56.5 and 56.2 for
        K = 2, where the dark cluster swallows the eosin-stained tissue.
    Kanezaki et al. (2018)
        A per-image CNN of ``kanezaki_convs`` 3x3 layers with
        ``kanezaki_channels`` channels, trained by SGD (``kanezaki_lr``,
        momentum 0.9) for at most ``kanezaki_iterations`` steps or until at
        most ``kanezaki_min_labels`` labels remain, with SLIC superpixels of
        about ``kanezaki_superpixel_area`` pixels and ``kanezaki_compactness``;
        the image is first resized by ``kanezaki_scale`` (the superpixel
        area counts pixels of the resized image).
    Classical watershed
        Ruifrok hematoxylin smoothed by ``watershed_sigma``, Otsu threshold,
        markers = maxima of the distance transform at least
        ``watershed_h`` pixels high (h = 1, 2, 3 on the MoNuSeg training
        split: AJI 39.3, 37.7, 35.8).
    """

    runs: int = 10
    network_runs: int = 10
    cluster_k: int = 3
    cluster_samples: int = 50000
    kanezaki_channels: int = 100
    kanezaki_convs: int = 2
    kanezaki_lr: float = 0.1
    kanezaki_iterations: int = 1000
    kanezaki_min_labels: int = 3
    kanezaki_superpixel_area: int = 100
    kanezaki_compactness: float = 100.0
    kanezaki_scale: float = 1.0
    watershed_sigma: float = 1.0
    watershed_h: float = 1.0


@dataclass(frozen=True)
class Profile:
    """All settings of one run.

    Attributes
    ----------
    name : str
        Profile name, recorded with every result.
    synthetic : SyntheticConfig
        Dataset drawn when no data directory is given.
    pseudo : PseudoLabelConfig
        The pseudo-label pipeline.
    train : TrainConfig
        The network and its training: the network the book's chapters
        reproduce the paper with.
    selftrain : SelfTrainConfig
        Self-training rounds after it (``ssimnet train``; chapter 9).
    inference : InferenceConfig
        How the book's chapters segment with that network.
    baselines : BaselineConfig
        Comparison methods and the number of runs per method.
    tool_train, tool_inference : TrainConfig and InferenceConfig, or None
        The network ``ssimnet train`` (and ``segment --adapt``) trains and how
        it segments, where they differ from `train` and `inference`: the
        levers chosen beyond the paper.  None: the same.

    Examples
    --------
    >>> from ssimnet.config import get_profile
    >>> cpu = get_profile("cpu")
    >>> cpu.train.boundary_width, cpu.for_tool().train.boundary_width, cpu.for_tool().inference.instances
    (0, 4, 'boundary')
    """

    name: str
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    selftrain: SelfTrainConfig = field(default_factory=SelfTrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    tool_train: TrainConfig | None = None
    tool_inference: InferenceConfig | None = None

    def for_tool(self) -> Profile:
        """This profile as ``ssimnet train`` runs it: `train` and `inference` replaced by the tool's, where set."""
        return replace(self, train=self.tool_train or self.train, inference=self.tool_inference or self.inference,
                       tool_train=None, tool_inference=None)


#: The default settings of each section: the paper's, and the defaults of the
#: stage functions that take them one by one.
DEFAULT_PSEUDO: PseudoLabelConfig = PseudoLabelConfig()
DEFAULT_TRAIN: TrainConfig = TrainConfig()
DEFAULT_INFERENCE: InferenceConfig = InferenceConfig()
DEFAULT_BASELINES: BaselineConfig = BaselineConfig()
