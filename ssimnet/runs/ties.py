"""The tie-break of the book's choices on training rows: the middle one of the best.

A grid of settings scored on a few dozen training rows often has a run of
neighbours with the same mean (they change the outcome of the same rows).
Taking the middle of that run, in the grid's order, keeps the choice away
from either edge, where a small change of the rows would first move it.
:func:`ssimnet.runs.pixel_choice.choose_enlarge_below` and
:func:`ssimnet.runs.fallback_choice.choose_fallback_below` both choose so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["middle_of_best"]


def middle_of_best(means: pd.Series, *, atol: float = 1e-12) -> tuple[object, list[object]]:
    """The index of `means` whose value is the largest, the middle one (in `means`' order, the earlier of
    the two middle ones) when several are equal to within `atol`; and all of those.

    >>> middle_of_best(pd.Series([0.1, 0.3, 0.3, 0.3, 0.2], index=[1, 2, 3, 4, 5]))
    (3, [2, 3, 4])
    >>> middle_of_best(pd.Series([0.5, 0.5], index=["a", "b"]))
    ('a', ['a', 'b'])
    """
    best = [key for key, mean in means.items() if np.isclose(mean, means.max(), rtol=0, atol=atol)]
    return best[(len(best) - 1) // 2], best
