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
is the fifth.  Tests check each choice against the committed rows.
"""

from __future__ import annotations

import itertools

import pandas as pd

from .stress import guard_outcome

__all__ = ["ONE_STAIN_GRID", "ONE_STAIN_RED_GRID", "choose_one_stain", "choose_one_stain_red"]


#: The one-stain settings :func:`choose_one_stain` tries: angles (degrees), spread ratios and ways.
ONE_STAIN_GRID: dict[str, tuple] = {"one_stain_angle": (8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 16.0, 20.0),
                                    "one_stain_spread": (1.5, 1.8, 2.0, 2.5),
                                    "one_stain_way": ("off", "hematoxylin only")}

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
