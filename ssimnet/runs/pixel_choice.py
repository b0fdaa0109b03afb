"""The pixel-size check's settings, chosen on training rows (:func:`choose_enlarge_below`).

:func:`ssimnet.runs.stress.pixel_size_rows` records, for each training image
under each stress transform, the nuclei's scale and segment's result as the
image is and enlarged twice.  The reference scale is the median over the
untransformed training images (:func:`reference_scale`, as
:func:`ssimnet.tool.pixel_size.training_scale` measures a network's; no labels);
:func:`enlarge_outcome` scores any threshold on the rows without segmenting
again, and :func:`choose_enlarge_below` keeps the best of
:data:`ENLARGE_GRID`.  A test checks :data:`ssimnet.config.TRAINING_NUCLEUS_SCALE`
and :data:`ssimnet.config.ENLARGE_BELOW` against the committed rows.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({"image": ["a", "a", "b", "b"], "transform": ["none"] * 4, "sigma": [6.0, 6.0, 3.0, 3.0],
...                      "way": ["as it is", "enlarged twice"] * 2, "aji": [0.6, 0.3, 0.2, 0.5]})
>>> reference_scale(rows)
4.5
>>> enlarge_outcome(rows, nucleus_scale=4.5, enlarge_below=0.7).round(2).to_dict()   # b enlarged
{'none': 0.55}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ENLARGE_GRID", "reference_scale", "enlarge_outcome", "choose_enlarge_below"]

#: The fractions of the reference scale :func:`choose_enlarge_below` tries.
ENLARGE_GRID: tuple[float, ...] = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def reference_scale(rows: pd.DataFrame) -> float:
    """The median nucleus scale of the untransformed images of :func:`~ssimnet.runs.stress.pixel_size_rows`'
    rows: the network's own (:attr:`ssimnet.config.InferenceConfig.nucleus_scale`)."""
    plain = rows[rows["transform"] == "none"].groupby("image")["sigma"].first()
    return float(np.nanmedian(plain))


def enlarge_outcome(rows: pd.DataFrame, *, nucleus_scale: float, enlarge_below: float,
                    score: str = "aji") -> pd.Series:
    """The mean `score` per transform had every image whose scale is below `enlarge_below` times
    `nucleus_scale` been enlarged twice, and every other left as it is."""
    frame = rows.pivot_table(index=["image", "transform"], columns="way", values=score).join(
        rows.groupby(["image", "transform"])["sigma"].first())
    enlarged = frame["sigma"] < enlarge_below * nucleus_scale  # NaN (no scale): as it is
    chosen = np.where(enlarged, frame["enlarged twice"], frame["as it is"])
    return frame.assign(chosen=chosen).groupby("transform")["chosen"].mean()


def choose_enlarge_below(rows: pd.DataFrame, *, nucleus_scale: float,
                         grid: tuple[float, ...] = ENLARGE_GRID) -> tuple[float, pd.Series]:
    """The `grid` fraction with the highest mean training AJI over the transforms (each transform weighs
    the same, however many images it has), the middle one of the best when several tie (the farthest
    from both edges of the best range); and every fraction's mean.

    Examples
    --------
    >>> rows = pd.DataFrame({"image": ["a", "a", "b", "b"], "transform": ["none"] * 4,
    ...                      "sigma": [6.0, 6.0, 3.0, 3.0], "way": ["as it is", "enlarged twice"] * 2,
    ...                      "aji": [0.6, 0.3, 0.2, 0.5]})
    >>> choose_enlarge_below(rows, nucleus_scale=4.5, grid=(0.5, 0.6, 0.7, 0.8, 1.0, 1.4))[0]  # 0.7-1.0 tie
    0.8
    """
    means = pd.Series({t: float(enlarge_outcome(rows, nucleus_scale=nucleus_scale, enlarge_below=t).mean())
                       for t in grid}, name="aji")
    best = means[np.isclose(means, means.max(), rtol=0, atol=1e-12)].index
    return float(best[(len(best) - 1) // 2]), means
