"""The method's prediction: probability maps of any image size, nuclei instances, one image segmented.

- :mod:`ssimnet.predict.maps` -- the network on overlapping tiles, blended
- :mod:`ssimnet.predict.nuclei` -- nuclei from the maps (the paper's connected components and four
  watersheds), the object threshold, per-nucleus measurements
- :mod:`ssimnet.predict.segment` -- one image: optional fine-tuning, prediction, instances

Every name is importable from here, as it was from the module ``ssimnet.predict``.
"""

from __future__ import annotations

from .maps import Maps, inference_tile, predict_maps, predict_probability
from .nuclei import drop_unsure, instances, marker_watershed, measure_nuclei, nucleus_confidence
from .segment import Segmentation, segment_image

__all__ = ["Maps", "predict_maps", "predict_probability", "inference_tile", "instances", "drop_unsure",
           "nucleus_confidence", "marker_watershed", "measure_nuclei", "Segmentation", "segment_image"]
