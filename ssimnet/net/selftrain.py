"""Self-training (beyond the paper): a trained network's nuclei become the next round's pseudo labels.

The first round's pseudo labels (paper Sec. 2.1) merge nuclei that touch: the
candidate map ``P`` joins them into one component, so softening (Eq. 4) gives
them one centre and the Voronoi tri-label one point and no edge between them.
After a first training, the network's probability map of each training image
is split into nuclei by :func:`ssimnet.predict.nuclei.instances` (the distance-transform
watershed by default), and :func:`self_training_labels` rebuilds every
pseudo label from them:

1. the new candidate map is their union *with a gap where two nuclei touch*
   (:func:`ssimnet.pseudo.touching.separate_touching`), so each nucleus is its own component;
2. softening, the Voronoi tri-label and the USMI of every patch are recomputed
   from it exactly as in the first round -- the Voronoi edges now run between
   touching nuclei, so the cross-entropy term of Eq. (5) teaches the network
   to cut there, and the soft labels peak once per nucleus.  The gap pixels
   get the soft label of a nucleus rim, 0.5 (undecided), not 0: a gap of
   background there would shrink the foreground a little more every round;
3. USMI purification then keeps the patches whose predicted nuclei are most
   self-similar (the confident regions).

The stains and hematoxylin image of the first round are kept.  Nothing here
reads ground truth.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import PseudoLabelConfig
from ..predict import instances
from ..pseudo.labels import PseudoLabels, labels_from_candidates
from ..pseudo.touching import separate_touching
from ..pseudo.voronoi import BACKGROUND, IGNORE

__all__ = ["separate_touching", "self_training_labels"]


def self_training_labels(
    pseudo: PseudoLabels,
    probability: np.ndarray,
    config: PseudoLabelConfig,
    *,
    method: str = "distance",
    h: float | None = None,
    min_size: int = 30,
) -> PseudoLabels:
    """The next round's pseudo labels of one image from its probability map (see the module docstring).

    Parameters
    ----------
    pseudo : PseudoLabels
        The image's first-round pseudo labels (stains, hematoxylin image and
        FCM map are carried over).
    probability : (H, W) float
        The previous round's nucleus probability (:func:`ssimnet.predict.maps.predict_probability`).
    config : PseudoLabelConfig
        Softening, Voronoi and patch settings.
    method : str
        Instance method that splits the probability map into nuclei.
    h : float, optional
        Its marker height (default: the method's).
    min_size : int
        Smallest nucleus kept, in pixels.
    """
    probability = np.asarray(probability)
    if probability.shape != pseudo.candidates.shape:
        raise ValueError(f"probability map of shape {probability.shape} does not match the image's {pseudo.candidates.shape}")
    label = instances(probability, method=method, h=h, min_size=min_size, max_hole=config.max_hole)
    candidates = separate_touching(label)
    gap = (label > 0) & ~candidates
    derived = labels_from_candidates(candidates, config)
    derived["soft"][gap] = 0.5
    voronoi = derived["voronoi"]
    voronoi[candidates & (voronoi == BACKGROUND)] = IGNORE
    voronoi[gap] = BACKGROUND
    return dataclasses.replace(pseudo, candidates=candidates, **derived)
