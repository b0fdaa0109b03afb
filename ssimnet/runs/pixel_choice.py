"""The pixel-size check's settings, chosen on training rows (:func:`choose_enlarge_below`).

:func:`ssimnet.runs.stress.pixel_size_rows` records, for each training image
under each stress transform, the nuclei's scale in the stain, the median
area of those the network finds as it is, and segment's result as the image
is and enlarged twice.  The references are the medians over the
untransformed training images (:func:`references`, as
:func:`ssimnet.tool.pixel_size.training_references` measures a network's; no
labels); :func:`enlarge_outcome` scores any pair of fractions on the rows
without segmenting again, and :func:`choose_enlarge_below` keeps the best of
:data:`ENLARGE_GRID`.  A test checks :data:`ssimnet.config.TRAINING_NUCLEUS_SCALE`,
``TRAINING_NUCLEUS_AREA``, ``ENLARGE_BELOW`` and ``AREA_BELOW`` against the
committed rows.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({"image": ["a", "a", "b", "b"], "transform": ["none"] * 4, "sigma": [6.0, 6.0, 3.0, 3.0],
...                      "area": [400.0, 400.0, 100.0, 100.0], "way": ["as it is", "enlarged twice"] * 2,
...                      "aji": [0.6, 0.3, 0.2, 0.5]})
>>> references(rows)
(4.5, 250.0)
>>> enlarge_outcome(rows, scale=4.5, area=250.0, enlarge_below=0.7, area_below=0.6).round(2).to_dict()
{'none': 0.55}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stress import by_way
from .ties import middle_of_best

__all__ = ["ENLARGE_GRID", "references", "enlarge_outcome", "choose_enlarge_below"]

#: The fractions of each reference :func:`choose_enlarge_below` tries: of the scale (``enlarge_below``) and of
#: the area (``area_below``).
ENLARGE_GRID: dict[str, tuple[float, ...]] = {
    "enlarge_below": (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0),
    "area_below": (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0),
}


def references(rows: pd.DataFrame) -> tuple[float, float]:
    """The median nucleus scale and median nucleus area of the untransformed images of
    :func:`~ssimnet.runs.stress.pixel_size_rows`' rows: the network's own
    (:attr:`ssimnet.config.InferenceConfig.nucleus_scale`, ``nucleus_area``)."""
    plain = rows[rows["transform"] == "none"].groupby("image")[["sigma", "area"]].first()
    return float(np.nanmedian(plain["sigma"])), float(np.median(plain["area"]))


def enlarge_outcome(rows: pd.DataFrame, *, scale: float, area: float, enlarge_below: float, area_below: float,
                    score: str = "aji") -> pd.Series:
    """The mean `score` per transform had every image whose scale is below `enlarge_below` times `scale` and
    whose nuclei's median area is below `area_below` times `area` been enlarged twice, every other left as
    it is."""
    frame = by_way(rows, score=score, measures=["sigma", "area"])
    enlarged = (frame["sigma"] < enlarge_below * scale) & (frame["area"] < area_below * area)  # NaN scale: no
    chosen = np.where(enlarged, frame["enlarged twice"], frame["as it is"])
    return frame.assign(chosen=chosen).groupby("transform")["chosen"].mean()


def choose_enlarge_below(rows: pd.DataFrame, *, scale: float, area: float,
                         grid: dict[str, tuple[float, ...]] | None = None) -> tuple[dict[str, float], pd.Series]:
    """The pair of `grid` fractions with the highest mean training AJI over the transforms (each transform
    weighs the same, however many images it has), the middle one of the best, in the grid's order, when
    several tie; and every pair's mean (a Series indexed by the pair).

    Examples
    --------
    >>> rows = pd.DataFrame({"image": ["a", "a", "b", "b"], "transform": ["none"] * 4,
    ...                      "sigma": [6.0, 6.0, 3.0, 3.0], "area": [400.0, 400.0, 100.0, 100.0],
    ...                      "way": ["as it is", "enlarged twice"] * 2, "aji": [0.6, 0.3, 0.2, 0.5]})
    >>> grid = {"enlarge_below": (0.5, 0.7, 0.9, 1.4), "area_below": (0.3, 0.5, 2.0)}
    >>> choose_enlarge_below(rows, scale=4.5, area=250.0, grid=grid)[0]  # five pairs enlarge b only
    {'enlarge_below': 0.9, 'area_below': 0.5}
    """
    grid = grid or ENLARGE_GRID
    pairs = [(a, b) for a in grid["enlarge_below"] for b in grid["area_below"]]
    means = pd.Series([float(enlarge_outcome(rows, scale=scale, area=area, enlarge_below=a, area_below=b).mean())
                       for a, b in pairs], index=pd.MultiIndex.from_tuples(pairs, names=list(grid)), name="aji")
    return dict(zip(grid, middle_of_best(means)[0])), means
