"""The slide section of ``ssimnet segment``: how a whole slide's tissue is found and its stains measured.

Part of :mod:`ssimnet.config`, which re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SlideConfig", "DEFAULT_SLIDE"]


@dataclass(frozen=True)
class SlideConfig:
    """How ``ssimnet segment`` finds a whole slide's tissue and measures its stains (:mod:`ssimnet.tool.slide`;
    the tiles are the network's region tiles, :attr:`ssimnet.config.InferenceConfig.region_tile`).

    The tissue is found on an image of the slide about `thumbnail_side` pixels
    a side (:func:`ssimnet.tool.tissue.find_tissue`): saturation above Otsu's
    threshold and `min_saturation`, closed by a disc of `tissue_closing`
    microns, pieces under `min_tissue_area` square microns dropped (level-0
    pixels when the slide has no pixel size).  The stains are measured once,
    on a mosaic of `stain_crops` crops of `stain_crop_side` pixels.
    """

    thumbnail_side: int = 2048
    min_tissue_area: float = 10000.0  # 0.01 mm^2, 100 x 100 um: smaller pieces are debris
    min_saturation: float = 0.05
    tissue_closing: float = 8.0
    stain_crops: int = 9
    stain_crop_side: int = 384

    def __post_init__(self) -> None:
        if not (self.thumbnail_side >= 64 and self.min_tissue_area >= 0 and 0 <= self.min_saturation < 1
                and self.tissue_closing >= 0 and self.stain_crops >= 1 and self.stain_crop_side >= 64):
            raise ValueError(f"implausible slide settings: {self} (thumbnail_side and stain_crop_side >= 64, "
                             "stain_crops >= 1, min_saturation in [0, 1), areas and closing >= 0)")


DEFAULT_SLIDE = SlideConfig()
