"""The stain guard's one-stain settings, chosen on training rows (:func:`choose_one_stain`).

:func:`ssimnet.runs.stress.guard_selection_rows` records, for each training
image under each stress transform, what the separation measured and four
results; :func:`ssimnet.runs.stress.guard_outcome` scores any guard settings on
those rows without segmenting again.  This module tries a grid of one-stain
settings (:data:`ONE_STAIN_GRID`) and keeps the best; the guard's fourth
version took it.  :func:`choose_one_stain_red` keeps the fifth version's
settings and chooses a counterstain red share above which an image is
one-stain as well (:data:`ONE_STAIN_RED_GRID`); the sixth version took it.
Both were scored once on test and set aside: :data:`ssimnet.config.STAIN_GUARD`
is the fifth.  :func:`choose_one_stain_margin` chose, on
:func:`ssimnet.runs.stress.second_opinion_rows`' rows, how much surer the network
must be of an image normalised as hematoxylin only for segment to keep that
instead of its two-stain result (a second opinion); scored once on test, it
was set aside too.  Tests check each choice against the committed rows.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ..config import FALLBACK_BELOW, STAIN_GUARD
from .stress import guard_outcome

__all__ = ["ONE_STAIN_GRID", "ONE_STAIN_RED_GRID", "ONE_STAIN_MARGINS", "PSEUDO_CAP", "choose_one_stain", "choose_one_stain_red",
           "second_opinion_outcome", "choose_one_stain_margin"]


#: The one-stain settings :func:`choose_one_stain` tries: angles (degrees), spread ratios and ways.
ONE_STAIN_GRID: dict[str, tuple] = {"one_stain_angle": (8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 16.0, 20.0),
                                    "one_stain_spread": (1.5, 1.8, 2.0, 2.5),
                                    "one_stain_way": ("off", "hematoxylin only")}

#: The margins :func:`choose_one_stain_margin` tries (None: no second opinion).
ONE_STAIN_MARGINS: tuple[float | None, ...] = (None, 0.0, 0.005, 0.01, 0.02, 0.05)

#: The second opinion's second cap: a hematoxylin-only result is kept only if its foreground is at most this many
#: times the share its image's own pseudo labels call nucleus.  The issue's bar on a result's foreground
#: (1.5 times the true one), with the pseudo labels standing in for the truth: fixed, not chosen, after the
#: second opinion without it doubled the nuclei of two MoNuSeg test images.
PSEUDO_CAP: float = 1.5

#: The counterstain red shares :func:`choose_one_stain_red` tries (infinity: never, the fifth version).
ONE_STAIN_RED_GRID: tuple[float, ...] = (0.30, 0.32, 0.34, 0.36, 0.38, 0.40, 0.42, 0.45, 0.50, float("inf"))


def choose_one_stain(rows: object, *, order_margin: float, order_min_density: float,
                     grid: dict[str, tuple] | None = None) -> tuple[dict[str, object], object]:
    """The one-stain settings of the stain guard with the highest mean training AJI over the transforms
    (:func:`guard_outcome` on :func:`guard_selection_rows`' rows), the smallest angle, then spread, among
    ties; and every setting's mean, best first (a DataFrame).

    >>> rows = [{"image": "a", "transform": "t", "way": w, "aji": v, "angle": 5.0, "spread_h": .3, "spread_e": .3,
    ...          "stained_spread_h": .2, "stained_spread_e": .2, "density_h": 2.0, "density_e": 1.9}
    ...         for w, v in (("as named", .2), ("swapped", .1), ("off", .3), ("hematoxylin only", .5))]
    >>> choose_one_stain(rows, order_margin=1.5, order_min_density=.5,
    ...                  grid={"one_stain_angle": (4.0, 6.0), "one_stain_spread": (1.5,),
    ...                        "one_stain_way": ("off", "hematoxylin only")})[0]
    {'one_stain_angle': 6.0, 'one_stain_spread': 1.5, 'one_stain_way': 'hematoxylin only'}
    """
    grid = ONE_STAIN_GRID if grid is None else grid
    names = list(grid)
    means = []
    for values in itertools.product(*grid.values()):
        settings = dict(zip(names, values))
        outcome = guard_outcome(rows, order_margin=order_margin, order_min_density=order_min_density, **settings)
        means.append({**settings, "mean": round(float(outcome.mean()), 9)})
    table = pd.DataFrame(means).sort_values(["mean", "one_stain_angle", "one_stain_spread"],
                                            ascending=[False, True, True], kind="stable").reset_index(drop=True)
    best = table.iloc[0]
    return {name: best[name].item() if hasattr(best[name], "item") else best[name] for name in names}, table


def choose_one_stain_red(rows: object, *, guard: dict[str, object],
                         grid: tuple[float, ...] = ONE_STAIN_RED_GRID) -> tuple[float, object]:
    """The counterstain red share above which an image is one-stain (:func:`ssimnet.runs.stress.red_share`;
    the guard's sixth version) with the highest mean training AJI over the transforms, the other settings `guard` kept
    (:func:`guard_outcome` on :func:`ssimnet.runs.stress.guard_selection_rows`' rows); among ties the
    highest, which calls the fewest images one-stain.  Also every value's mean, best first (a DataFrame).

    >>> rows = [{"image": "a", "transform": "t", "way": w, "aji": v, "angle": 12.0, "spread_h": .3, "spread_e": .3,
    ...          "stained_spread_h": .2, "stained_spread_e": .2, "density_h": 2.0, "density_e": 1.9,
    ...          "red_h": .6, "red_e": .45} for w, v in (("as named", .2), ("swapped", .1), ("off", .3),
    ...                                              ("hematoxylin only", .5))]
    >>> guard = {"order_margin": 1.5, "order_min_density": .5, "one_stain_angle": 9.0, "one_stain_spread": 1.8,
    ...          "one_stain_way": "hematoxylin only"}
    >>> choose_one_stain_red(rows, guard=guard, grid=(0.3, 0.4, 0.5))[0]
    0.4
    """
    means = [{"one_stain_red": red, "mean": round(float(guard_outcome(rows, **guard, one_stain_red=red).mean()), 9)}
             for red in grid]
    table = pd.DataFrame(means).sort_values(["mean", "one_stain_red"], ascending=[False, False],
                                            kind="stable").reset_index(drop=True)
    return float(table["one_stain_red"].iloc[0]), table


def second_opinion_outcome(rows: object, *, margin: float | None, cap: float = STAIN_GUARD.max_foreground,
                           pseudo_cap: float = np.inf, below: float | None = FALLBACK_BELOW, score: str = "aji",
                           by: str | list[str] = "transform") -> pd.Series:
    """The mean `score` per transform (or per `by`: ``"image"``, ``["dataset", "transform"]``) of
    :func:`ssimnet.runs.stress.second_opinion_rows`' rows had segment kept an image's ``hematoxylin only``
    result where it was ``tried``, its confidence exceeds the ``two stains`` result's by more than `margin`
    and its ``foreground`` is at most `cap` and at most `pseudo_cap` times the image's pseudo labels'
    (``pseudo_foreground``), and then fallen back to the ``classical watershed`` below a confidence of
    `below` (None: never).  `margin` None: never kept.

    >>> rows = [{"image": "a", "transform": "t", "tried": True, "way": w, "aji": v, "confidence": c,
    ...          "foreground": f} for w, v, c, f in (("two stains", .3, .6, .2), ("hematoxylin only", .5, .7, .3),
    ...                                              ("classical watershed", .4, None, .3))]
    >>> [float(second_opinion_outcome(rows, margin=m, below=b)["t"]) for m, b in ((None, None), (0.0, None),
    ...                                                                             (0.2, None), (None, 0.65))]
    [0.3, 0.5, 0.3, 0.4]
    >>> rows = [{**row, "pseudo_foreground": 0.25} for row in rows]  # 0.3 is 1.2 times the pseudo labels' share
    >>> [float(second_opinion_outcome(rows, margin=0.0, below=None, pseudo_cap=k)["t"]) for k in (1.5, 1.1)]
    [0.5, 0.3]
    """
    table = pd.DataFrame(rows)
    keys = [k for k in ("dataset", "image", "transform") if k in table.columns]
    wide = table.pivot_table(index=keys, columns="way", values=[score, "confidence", "foreground"])
    tried = table.groupby(keys)["tried"].first().reindex(wide.index).to_numpy(bool)
    confidence = wide["confidence"]
    take = np.zeros(len(wide), bool) if margin is None else (
        tried & (confidence["hematoxylin only"] - confidence["two stains"] > margin).to_numpy()
        & (wide["foreground"]["hematoxylin only"] <= cap).to_numpy()
        & (np.isinf(pseudo_cap) | (wide["foreground"]["hematoxylin only"] <= pseudo_cap * _pseudo(table, keys,
                                                                                                wide.index))))
    chosen = np.where(take, wide[score]["hematoxylin only"], wide[score]["two stains"])
    if below is not None:
        sure = np.where(take, confidence["hematoxylin only"], confidence["two stains"])
        chosen = np.where(sure < below, wide[score]["classical watershed"], chosen)
    return pd.Series(chosen, index=wide.index).groupby(by).mean()


def _pseudo(table: pd.DataFrame, keys: list[str], index: pd.Index) -> np.ndarray:
    """Each image's pseudo-label foreground share in the order of `index` (infinity where the rows lack it)."""
    if "pseudo_foreground" not in table.columns:
        return np.full(len(index), np.inf)
    return table.groupby(keys)["pseudo_foreground"].first().reindex(index).to_numpy(float)


def choose_one_stain_margin(rows: object, *, grid: tuple[float | None, ...] = ONE_STAIN_MARGINS,
                            plain: str = "none", **options: object) -> tuple[float | None, pd.DataFrame]:
    """The margin of `grid` (:func:`second_opinion_outcome`) with the highest mean training AJI over the
    transforms among those that keep the untransformed images' (`plain`) mean AJI at least what it is without
    a second opinion (``allowed``); the largest among ties, which keeps the fewest second opinions, None
    (never) above all.  Also every margin's two means; `options` go to
    :func:`second_opinion_outcome`.

    >>> rows = [{"image": i, "transform": t, "tried": True, "way": w, "aji": v, "confidence": c, "foreground": .2}
    ...         for i, t, gain, better in (("a", "none", .01, -.1), ("b", "faded", .1, .2))
    ...         for w, v, c in (("two stains", .3, .7), ("hematoxylin only", .3 + better, .7 + gain),
    ...                         ("classical watershed", .1, None))]
    >>> choose_one_stain_margin(rows, grid=(None, 0.0, 0.02, 0.2))[0]  # 0.0 would lower a, untransformed
    0.02
    """
    table = pd.DataFrame([{"margin": margin, "mean over transforms": round(float((o := second_opinion_outcome(
        rows, margin=margin, **options)).mean()), 9), "untransformed": float(o[plain])} for margin in grid])
    never = float(second_opinion_outcome(rows, margin=None, **options)[plain])
    table["allowed"] = table["untransformed"] >= never - 1e-12
    order = table.assign(rank=table["margin"].fillna(np.inf)).sort_values(
        ["mean over transforms", "rank"], ascending=[False, False], kind="stable")
    best = order.loc[order["allowed"], "margin"].iloc[0]
    return (None if pd.isna(best) else float(best)), table.set_index("margin")
