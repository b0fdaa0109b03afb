"""The sections of a run profile: synthetic data, pseudo labels, training, ``segment``, baselines.

Part of :mod:`ssimnet.config`, which re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace


def neutral(default: object) -> object:
    """A field added after results were cached, whose `default` computes exactly what was computed before it existed.

    :func:`key_fields` leaves such a field out while it holds its default, so
    that cache keys made before the field existed stay valid.  Its default
    must therefore never change.
    """
    return field(default=default, metadata={"neutral": True})


def key_fields(section: object) -> dict[str, object]:
    """The fields of a settings dataclass that key a cache: all but the :func:`neutral` ones at their default.

    >>> from ssimnet.config import TrainConfig
    >>> "boundary_width" in key_fields(TrainConfig()), "boundary_width" in key_fields(TrainConfig(boundary_width=3))
    (False, True)
    """
    return {f.name: _plain(getattr(section, f.name)) for f in fields(section)
            if not (f.metadata.get("neutral") and getattr(section, f.name) == f.default)}


def _plain(value: object) -> object:
    """`value` with nested settings dataclasses turned into their :func:`key_fields`, as :func:`dataclasses.asdict` does."""
    if is_dataclass(value) and not isinstance(value, type):
        return key_fields(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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

    Stain separation (Eq. 1-2, :mod:`ssimnet.stain`)
        ``stain_samples`` tissue pixels are factorised with L1 weight
        ``stain_sparsity`` (Vahadane et al.'s lambda = 0.1).  A tissue pixel
        has CIELAB ``L*/100`` below ``tissue_lightness`` (Vahadane et al.'s
        0.8) and summed optical density above ``tissue_min_od``; with fewer
        than ``stain_min_tissue`` of them, or stain colours less than
        ``stain_min_angle`` degrees apart, the reference matrix is used.
    Candidates (Eq. 3, :mod:`ssimnet.candidates`)
        Fuzzy c-means with fuzzifier ``fcm_m`` on ``fcm_samples`` pixels (an
        image whose ``L*`` spans less than ``min_lightness_range`` has no
        nucleus cluster);
        ``contour_iterations`` steps of a morphological Chan-Vese active
        contour with ``contour_smoothing``; components below ``min_size``
        pixels removed and holes below ``max_hole`` pixels filled.
    Candidate generator (beyond the paper, :mod:`ssimnet.generators`)
        ``candidate_method`` draws ``P``: ``"fcm"`` is the paper's Eq. (3);
        the others threshold the hematoxylin density (Otsu after a Gaussian
        of ``threshold_sigma``) and ``"watershed"`` splits it by a distance
        watershed with markers ``split_h`` pixels high.
    Softening (Eq. 4, :mod:`ssimnet.soften`)
        Erosion stops once the confidence exceeds ``soften_stop`` (0.975).
    Purification (Algorithm 1, :mod:`ssimnet.purify`)
        ``patch_size`` patches every ``patch_stride`` pixels; the fraction
        ``keep_fraction`` (alpha = 70 %) of lowest USMI is kept; patches with
        fewer than ``min_components`` candidates get USMI = inf.
    Voronoi labels (:mod:`ssimnet.voronoi`)
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
    min_lightness_range: float = 5.0
    contour_iterations: int = 10
    contour_smoothing: int = 2
    min_size: int = 30
    max_hole: int = 200
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
    """Network, training, fine-tuning and inference settings (paper Sec. 2.2 and 3.1).

    Network (:mod:`ssimnet.model`)
        U-Net with ``depth`` down-sampling steps and base width ``width``.
    Training (:mod:`ssimnet.train`)
        Adam at ``lr``, multiplied by ``lr_decay`` after every epoch, for
        ``epochs`` epochs of ``batch_size`` patches; loss
        ``loss_lambda * BCE + (1 - loss_lambda) * CE`` (Eq. 5); random flips
        and 90-degree rotations when ``augment``; with ``stain_jitter`` > 0
        also HED-space colour jitter of that strength (beyond the paper,
        :mod:`ssimnet.augment`).
    Ablation switches (paper Table 3)
        ``soft_labels`` (False: the BCE target is the hard candidate map),
        ``purify`` (False: train on every patch), ``finetune_epochs`` (0: no
        per-image fine-tuning).
    Fine-tuning (:meth:`ssimnet.train.Trainer.finetune_copy`)
        ``finetune_epochs`` epochs on the image's own purified patches,
        continuing from the saved optimiser state; its learning rate is the
        schedule's where training stopped (the paper), or ``finetune_lr``
        when that is set.  ``finetune_norm`` is ``"train"`` (batch
        normalisation re-estimates its statistics on the image, as a plain
        fine-tuning does) or ``"frozen"`` (it keeps the trained network's).
    Inference (:mod:`ssimnet.infer`)
        Tiles of the patch size overlapping by ``tile_overlap`` pixels;
        instances by one of the four methods of :data:`INSTANCE_METHODS`:
        connected components of probability > 0.5 (``"cc"``, the paper's
        setting and this class's default, which the book's reproduction
        uses), a marker-controlled watershed on the probability
        (``"watershed"``), on the distance transform of the foreground
        (``"distance"``, the choice of the ``smoke`` and ``cpu`` profiles) or
        on the learned rim distance (``"learned"``); objects below
        ``min_size`` pixels removed and holes up to ``max_hole`` pixels
        filled; with ``min_object_probability`` > 0, nuclei whose mean
        probability is below it are dropped (beyond the paper; 0, the
        default, keeps every one; self-training's pseudo instances keep every
        one too).
    Self-training (beyond the paper, :mod:`ssimnet.selftrain`)
        ``selftrain_rounds`` rounds, each continuing the previous round's
        network and schedule for ``selftrain_epochs`` epochs on pseudo labels
        rebuilt from its own predictions on the training images.
    Learned separation (beyond the paper, :mod:`ssimnet.separation`)
        With ``distance_weight`` > 0 the U-Net has a third output, the
        normalised distance to the nucleus rim, trained with that weight
        (mean squared error) on the candidates whose solidity is at least
        ``distance_solidity``; the ``"learned"`` instance method splits
        nuclei with it.  0 (the default) is the paper's network.
    Boundary-aware target (beyond the paper, :mod:`ssimnet.boundary`)
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
    finetune_epochs: int = 5
    finetune_lr: float | None = None
    finetune_norm: str = "train"
    tile_overlap: int = 64
    instances: str = "cc"
    min_size: int = 30
    max_hole: int = 200
    selftrain_rounds: int = 0
    selftrain_epochs: int = 5
    distance_weight: float = 0.0
    distance_solidity: float = 0.0
    boundary_width: int = neutral(0)
    boundary_weight: float = neutral(1.0)
    min_object_probability: float = neutral(0.0)

    def __post_init__(self) -> None:
        if self.finetune_norm not in ("train", "frozen"):
            raise ValueError(f"finetune_norm must be 'train' or 'frozen', got {self.finetune_norm!r}")
        if self.stain_jitter < 0:
            raise ValueError(f"stain_jitter must be >= 0, got {self.stain_jitter}")
        if self.boundary_width < 0:
            raise ValueError(f"boundary_width must be >= 0, got {self.boundary_width}")
        if not 0 <= self.min_object_probability < 1:
            raise ValueError(f"min_object_probability must lie in [0, 1), got {self.min_object_probability}")

    @property
    def distance_targets(self) -> float | None:
        """The solidity threshold of the rim-distance targets, or None when the network has no distance output."""
        return self.distance_solidity if self.distance_weight > 0 else None

    def training_settings(self) -> dict[str, object]:
        """The fields that change the first round's trained weights (not self-training, fine-tuning or inference)."""
        skip = {"finetune_epochs", "finetune_lr", "finetune_norm", "tile_overlap", "instances", "min_size", "max_hole",
                "min_object_probability", "selftrain_rounds", "selftrain_epochs"}
        return {k: v for k, v in key_fields(self).items() if k not in skip}


@dataclass(frozen=True)
class SegmentConfig:
    """What ``ssimnet segment`` does to each image by default (:func:`ssimnet.infer.segment_image`).

    Attributes
    ----------
    finetune_epochs : int
        Epochs of per-image fine-tuning (paper Sec. 2.2: 5; 0 = none).  The
        ``smoke`` and ``cpu`` profiles do not fine-tune: on MoNuSeg *training*
        images fine-tuning lowered AJI at every learning rate tried (27.3
        without, 20.4-27.6 with), so the tool skips it there.
    tta : bool
        Test-time augmentation (eight orientations, 8x the prediction time);
        off: +0.1 AJI on the MoNuSeg training split.
    normalize_stains : bool
        Map each image's stains onto :data:`STAIN_REFERENCE` before the
        network sees it (:mod:`ssimnet.normalize`).
    stain_solver : {"exact", "cd"}
        How each image's stains are measured (normalisation and hematoxylin
        density; :class:`ssimnet.stain.VahadaneSeparator`).  ``"exact"``
        reaches the same stain colours as the pseudo labels' ``"cd"`` within
        about 2 degrees on MoNuSeg and TNBC, at a slightly lower objective, in
        a tenth of the time.
    normalize_min_scale : float
        Smallest factor of that mapping's density scaling: 1 strengthens
        pale stains and never weakens dark ones.  Chosen on the MoNuSeg
        *training* split with the ``cpu`` network (seed 0, watershed
        candidates): AJI 45.4 as the images are, 46.3 matched both ways,
        46.7 brightening only (``results/cpu/normalization_*``).
    tile_size : int
        Largest tile the network predicts at once (:func:`ssimnet.infer.inference_tile`):
        a 1000x1000 image is one tile of 1008 pixels instead of 36 patch-size
        tiles, twice as fast.  On the MoNuSeg training split (``cpu``
        network, seed 0, watershed candidates, normalised) AJI was 47.3 with
        it and 47.4 with 256-pixel tiles.
    region_side : int
        Images with a side longer than this are large regions, segmented tile
        by tile (:mod:`ssimnet.region`) into a 32-bit TIFF label map.
    region_tile, region_halo : int
        Core size of those tiles and the context read around each, in
        pixels (together one `tile_size` tile); the halo must exceed a nucleus (MoNuSeg nuclei at 40x are at
        most about 60 pixels across).
    """

    finetune_epochs: int = 5
    tta: bool = False
    normalize_stains: bool = True
    stain_solver: str = "exact"
    normalize_min_scale: float = 1.0
    tile_size: int = 1024
    region_side: int = 2048
    region_tile: int = 832
    region_halo: int = 96


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
        Network, training, fine-tuning and inference.
    segment : SegmentConfig
        What ``ssimnet segment`` does to each image by default.
    baselines : BaselineConfig
        Comparison methods and the number of runs per method.
    tool : TrainConfig or None
        The network, training and inference of ``ssimnet train`` and
        ``ssimnet segment`` where they differ from `train`: the levers chosen
        beyond the paper.  `train` stays the network the book's chapters
        reproduce the paper with.  None: `train`.

    Examples
    --------
    >>> from ssimnet.config import get_profile
    >>> cpu = get_profile("cpu")
    >>> cpu.train.boundary_width, cpu.for_tool().train.boundary_width, cpu.for_tool().tool is None
    (0, 4, True)
    """

    name: str
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    tool: TrainConfig | None = neutral(None)

    def for_tool(self) -> Profile:
        """This profile as ``ssimnet train`` and ``ssimnet segment`` run it: `train` replaced by `tool`, if set."""
        return self if self.tool is None else replace(self, train=self.tool, tool=None)


#: The default settings of each section: the paper's, and the defaults of the
#: stage functions that take them one by one.
DEFAULT_PSEUDO: PseudoLabelConfig = PseudoLabelConfig()
DEFAULT_TRAIN: TrainConfig = TrainConfig()
DEFAULT_BASELINES: BaselineConfig = BaselineConfig()
