"""The watershed fallback's threshold, chosen on training rows (:func:`choose_fallback_below`).

:func:`ssimnet.runs.stress.fallback_rows` records, for each training image
under each stress transform, the network's confidence in the nuclei it found
(their mean nucleus probability, :func:`ssimnet.predict.nuclei.nucleus_confidence`)
and the results of segment's default and of the watersheds it could fall back to.
:func:`fallback_outcome` scores any threshold on those rows without
segmenting again (below it, an image's nuclei are the watershed's), and
:func:`choose_fallback_below` keeps the best of :data:`FALLBACK_GRID` that
does not lower the untransformed images' mean.  :func:`choose_fallback_watershed`
weighs, at that threshold, which watershed the fallback runs.  :func:`with_fallback`
makes the rows segment would give with a threshold from the stress test's rows.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({"image": ["a", "a", "b", "b"], "transform": ["none", "none", "faded", "faded"],
...                      "way": ["network", "classical watershed"] * 2, "confidence": [0.7, 0.7, 0.55, 0.55],
...                      "aji": [0.6, 0.5, 0.2, 0.4]})
>>> fallback_outcome(rows, below=0.6).round(2).to_dict()
{'faded': 0.4, 'none': 0.6}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stress import by_way
from .ties import middle_of_best

__all__ = ["FALLBACK_GRID", "WATERSHED_MARGIN", "fallback_outcome", "choose_fallback_below",
           "choose_fallback_watershed", "with_fallback"]

#: The thresholds :func:`choose_fallback_below` tries (0: never fall back).
FALLBACK_GRID: tuple[float, ...] = (0.0, *np.round(np.arange(0.5, 0.8001, 0.005), 3).tolist())

#: How much higher (AJI, a fraction) another watershed's mean over the transforms must be for
#: :func:`choose_fallback_watershed` to take it instead of the classical one.
WATERSHED_MARGIN: float = 0.001


def fallback_outcome(rows: pd.DataFrame, *, below: float, score: str = "aji",
                     watershed: str = "classical watershed") -> pd.Series:
    """The mean `score` per transform had every image whose ``confidence`` is below `below` been given the
    nuclei of `watershed` (a ``way`` of the rows: :data:`ssimnet.runs.stress.FALLBACK_WATERSHEDS`), every
    other the network's."""
    return _outcome(by_way(rows, score=score, measures=["confidence"]), below, watershed)


def _outcome(frame: pd.DataFrame, below: float, watershed: str = "classical watershed") -> pd.Series:
    """:func:`fallback_outcome` on rows already one per image and transform (:func:`~ssimnet.runs.stress.by_way`)."""
    chosen = np.where(frame["confidence"] < below, frame[watershed], frame["network"])
    return frame.assign(chosen=chosen).groupby("transform")["chosen"].mean()


def choose_fallback_below(rows: pd.DataFrame, *, grid: tuple[float, ...] = FALLBACK_GRID,
                          plain: str = "none") -> tuple[float, pd.DataFrame]:
    """The threshold of `grid` with the highest mean training AJI over the transforms (each transform weighs
    the same, however many images it has) among those that keep the untransformed images' (`plain`) mean
    AJI at least what it is without a fallback (``allowed``); the middle one of the best, in the grid's order,
    when several tie (:func:`~ssimnet.runs.ties.middle_of_best`).  Also every threshold's two means and how
    many rows it falls back on.

    Examples
    --------
    >>> rows = pd.DataFrame({"image": list("aabbcc"), "transform": ["none"] * 4 + ["faded"] * 2,
    ...                      "way": ["network", "classical watershed"] * 3,
    ...                      "confidence": [0.7, 0.7, 0.62, 0.62, 0.55, 0.55], "aji": [0.6, 0.5, 0.5, 0.45, 0.2, 0.4]})
    >>> choose_fallback_below(rows, grid=(0.0, 0.6, 0.65, 0.7))[0]  # 0.65 would lower b, untransformed
    0.6
    """
    frame = by_way(rows, score="aji", measures=["confidence"])  # pivoted once for every threshold
    table = pd.DataFrame([{"below": below, "falls back": int((frame["confidence"] < below).sum()),
                           "mean over transforms": float((outcome := _outcome(frame, below)).mean()),
                           "untransformed": float(outcome[plain])} for below in grid]).set_index("below")
    never = float(_outcome(frame, 0.0)[plain])
    table["allowed"] = table["untransformed"] >= never - 1e-12
    return float(middle_of_best(table.loc[table["allowed"], "mean over transforms"])[0]), table


def choose_fallback_watershed(rows: pd.DataFrame, *, below: float, plain: str = "none",
                              margin: float = WATERSHED_MARGIN) -> tuple[str, pd.DataFrame]:
    """Which watershed the fallback runs, at the threshold `below`: the way of `rows`
    (:data:`ssimnet.runs.stress.FALLBACK_WATERSHEDS`) whose fallback gives the highest mean training AJI over
    the transforms, if that beats the classical watershed's by at least `margin` and does not lower the
    untransformed images' (`plain`) mean; else the classical watershed.  Also each way's two means.

    >>> rows = pd.DataFrame({"image": ["a"] * 3 + ["b"] * 3, "transform": ["none"] * 3 + ["faded"] * 3,
    ...                      "way": ["network", "classical watershed", "other"] * 2,
    ...                      "confidence": [0.7] * 3 + [0.5] * 3, "aji": [0.6, 0.5, 0.4, 0.2, 0.3, 0.35]})
    >>> choose_fallback_watershed(rows, below=0.6)[0]  # b falls back, and the other watershed is better there
    'other'
    """
    frame = by_way(rows, score="aji", measures=["confidence"])
    ways = [c for c in frame.columns if c not in ("image", "transform", "confidence", "network")]
    outcomes = {way: _outcome(frame, below, way) for way in ways}
    table = pd.DataFrame({"mean over transforms": {way: float(o.mean()) for way, o in outcomes.items()},
                          "untransformed": {way: float(o[plain]) for way, o in outcomes.items()}})
    table.index.name = "watershed"
    classical = table.loc["classical watershed"]
    table["allowed"] = (table["untransformed"] >= classical["untransformed"] - 1e-12) & (
        table["mean over transforms"] >= classical["mean over transforms"] + margin)
    table.loc["classical watershed", "allowed"] = True
    best = table.loc[table["allowed"], "mean over transforms"].idxmax()
    return str(best), table


def with_fallback(frame: pd.DataFrame, *, below: float, config: str, network: str = "default",
                  watershed: str = "classical watershed") -> pd.DataFrame:
    """The rows of the `network` config of a stress table (:func:`ssimnet.runs.stress.stress_rows`) as segment
    gives them with ``fallback_below=below``: where the row's ``confidence`` is below it, the `watershed`
    config's scores of the same image and transform (the segmenter's fallback is that watershed, with the
    same settings); named `config`, with a ``fallback`` column.

    >>> frame = pd.DataFrame({"dataset": ["d"] * 4, "image": ["a", "a", "b", "b"], "transform": ["none"] * 4,
    ...                       "config": ["default", "classical watershed"] * 2, "aji": [0.6, 0.5, 0.2, 0.4],
    ...                       "confidence": [0.7, None, 0.5, None]})
    >>> with_fallback(frame, below=0.6, config="fb")[["image", "aji", "fallback"]].to_dict("records")
    [{'image': 'a', 'aji': 0.6, 'fallback': False}, {'image': 'b', 'aji': 0.4, 'fallback': True}]
    """
    keys = ["dataset", "image", "transform"]
    mine = frame[frame["config"] == network].reset_index(drop=True)
    scores = [c for c in mine.columns if c not in keys + ["config", "confidence", "normalization", "mpp"]]
    water = frame[frame["config"] == watershed].set_index(keys).reindex(pd.MultiIndex.from_frame(mine[keys]))
    if water[scores].isna().all(axis=1).any():
        raise ValueError(f"every {network!r} row needs a {watershed!r} row of the same image and transform")
    falls = (mine["confidence"] < below).to_numpy()
    out = mine.copy()
    out.loc[falls, scores] = water.loc[:, scores].to_numpy()[falls]
    return out.assign(config=config, fallback=falls)
