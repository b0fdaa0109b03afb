"""Run profiles: every tunable setting of a run, in one place.

A profile is a frozen dataclass. Three are predefined:

``smoke``
    Synthetic data (the embedded default dataset), minutes on two CPU cores.
    This is what CI executes every notebook with (``make book PROFILE=smoke``).
``cpu``
    Real MoNuSeg with a reduced network and fewer epochs (about two hours on
    two cores): the published book's reference run.
``paper``
    The paper's settings (Sec. 3.1), meant for a GPU.

Later stages add their own sections (stain separation, purification, training)
to :class:`Profile`; modules never keep settings of their own as globals.

Examples
--------
>>> p = get_profile("smoke")
>>> p.name, p.synthetic.n_train > 0
('smoke', True)
>>> get_profile("cpu").synthetic.shape
(1000, 1000)

The settings live in four modules, all re-exported here:
:mod:`ssimnet.config.constants`, :mod:`ssimnet.config.sections`,
:mod:`ssimnet.config.slide` and :mod:`ssimnet.config.profiles`.
"""

from __future__ import annotations

from .constants import (  # noqa: F401
    AREA_BELOW,
    BOOK_EXECUTED,
    BOOK_PUBLISHED,
    CE_PIXELS,
    DEFAULT_SEED,
    ENLARGE_BELOW,
    FALLBACK_BELOW,
    INSTANCE_METHODS,
    LEARNED_SEPARATION_WEIGHT,
    MAX_HOLE_AREA,
    MAX_IMAGE_PIXELS,
    MIN_IMAGE_RANGE,
    MIN_NUCLEUS_AREA,
    NETWORK_MPP,
    NORMALIZE_MODES,
    ONNX_OPSET,
    PNG_COMPRESSION,
    PSEUDO_STAIN_SOLVER,
    PUBLISH_FIGURES,
    SHIPPED_MODEL,
    STAIN_GUARD,
    STAIN_REFERENCE,
    STAIN_SOLVER_MAX_ITER,
    STAIN_SOLVER_TOL,
    TRAINING_NUCLEUS_AREA,
    TRAINING_NUCLEUS_SCALE,
    InstanceDefaults,
    PublishFigures,
    StainGuard,
    StainReference,
    default_workers,
    usable_cpus,
)
from .profiles import (  # noqa: F401
    ABLATION,
    DEFAULT_PROFILE,
    PAPER_FINAL_LR,
    PROFILES,
    TOOL_INFERENCE,
    AblationVariant,
    get_profile,
)
from .sections import (  # noqa: F401
    DEFAULT_BASELINES,
    DEFAULT_INFERENCE,
    DEFAULT_PSEUDO,
    DEFAULT_TRAIN,
    METHOD_NEEDS,
    BaselineConfig,
    InferenceConfig,
    Profile,
    PseudoLabelConfig,
    SelfTrainConfig,
    SyntheticConfig,
    TrainConfig,
    key_fields,
    split_train_dict,
)
from .slide import DEFAULT_SLIDE, SlideConfig  # noqa: F401

__all__ = [
    "SyntheticConfig", "PseudoLabelConfig", "TrainConfig", "CE_PIXELS", "InferenceConfig", "SelfTrainConfig", "SlideConfig", "DEFAULT_SLIDE", "BaselineConfig", "Profile",
    "PAPER_FINAL_LR", "PROFILES", "DEFAULT_PROFILE", "TOOL_INFERENCE", "METHOD_NEEDS", "split_train_dict", "DEFAULT_INFERENCE", "get_profile", "AblationVariant", "ABLATION", "InstanceDefaults",
    "INSTANCE_METHODS", "LEARNED_SEPARATION_WEIGHT", "DEFAULT_PSEUDO", "DEFAULT_TRAIN", "DEFAULT_BASELINES", "key_fields",
    "DEFAULT_SEED", "default_workers", "usable_cpus", "MIN_IMAGE_RANGE", "MIN_NUCLEUS_AREA", "MAX_HOLE_AREA", "MAX_IMAGE_PIXELS", "TRAINING_NUCLEUS_SCALE", "TRAINING_NUCLEUS_AREA", "ENLARGE_BELOW", "AREA_BELOW", "FALLBACK_BELOW", "SHIPPED_MODEL", "ONNX_OPSET", "BOOK_PUBLISHED", "BOOK_EXECUTED", "PUBLISH_FIGURES",
    "PublishFigures", "StainReference", "STAIN_REFERENCE", "StainGuard", "STAIN_GUARD", "NORMALIZE_MODES", "PSEUDO_STAIN_SOLVER", "STAIN_SOLVER_MAX_ITER",
    "STAIN_SOLVER_TOL", "PNG_COMPRESSION",
]
