"""Segmentation metrics: pixel precision, recall and Dice; AJI, AJI+ and PQ.

All scores compare a ground-truth instance map `true` with a predicted one
`pred` (integer arrays of the same shape, 0 = background; ids need not be
consecutive).  Everything is computed from one sparse contingency table of
the two maps, so scoring a 1000x1000 image with ~1,000 nuclei takes a small
fraction of a second (``benchmarks/bench_metrics.py``).

Definitions
-----------
Pixel scores (what the paper's Tables 1-3 report), on the binary foregrounds
``T = true > 0`` and ``P = pred > 0``: precision ``|T∩P| / |P|``, recall
``|T∩P| / |T|``, Dice ``2|T∩P| / (|T| + |P|)``.

AJI, the Aggregated Jaccard Index of Kumar et al., "A dataset and a technique
for generalized nuclear segmentation for computational pathology", IEEE TMI
36(7), 2017: each ground-truth nucleus ``G_i`` takes the prediction ``S_j``
of highest IoU among those it overlaps; ``C += |G_i ∩ S_j|`` and
``U += |G_i ∪ S_j|``.  A prediction may serve several ground truths.  A ground
truth overlapping no prediction adds ``|G_i|`` to ``U``; every prediction used
by no ground truth adds its area to ``U``.  ``AJI = C / U``.

AJI+, Graham et al., "HoVer-Net", Medical Image Analysis 58, 2019: as AJI,
but ground truths and predictions are paired one-to-one by the assignment that
maximises the total IoU (Hungarian algorithm), so a prediction is never
counted twice.

PQ, Kirillov et al., "Panoptic Segmentation", CVPR 2019: a ground truth and a
prediction match when their IoU exceeds 0.5 (such matches are unique).
``DQ = TP / (TP + FP/2 + FN/2)``, ``SQ`` = mean IoU of the matches,
``PQ = DQ * SQ``.

Conventions for empty maps: when both maps are empty every score is 1 (there
was nothing to find and nothing was found).  Otherwise a ratio whose
denominator is 0 is 0 -- e.g. precision of an empty prediction, or SQ without
matches.

A dataset's figure is the mean of the per-image scores (:func:`mean_scores`);
:func:`aji_sums` gives what AJI pooled over a dataset's pixels needs.

Examples
--------
>>> import numpy as np
>>> true = np.array([[1, 1, 0, 2, 2]])
>>> pred = np.array([[5, 5, 5, 0, 7]])
>>> s = score(true, pred)
>>> round(s.dice, 3), round(s.aji, 3), s.tp, s.fp, s.fn
(0.75, 0.6, 1, 1, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "Scores",
    "score",
    "pixel_scores",
    "aggregated_jaccard_index",
    "aji_sums",
    "aggregated_jaccard_index_plus",
    "panoptic_quality",
    "mean_scores",
    "RunSummary",
    "summarise_runs",
]


@dataclass(frozen=True)
class Scores:
    """Scores of one image (see the module docstring for the definitions).

    ``n_true`` and ``n_pred`` count instances; ``tp``, ``fp``, ``fn`` are the
    PQ matches at IoU > 0.5.
    """

    precision: float
    recall: float
    dice: float
    aji: float
    aji_plus: float
    dq: float
    sq: float
    pq: float
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int

    def as_dict(self) -> dict[str, float]:
        """The scores as a plain dict (for tables and CSV)."""
        return asdict(self)


@dataclass(frozen=True)
class _Overlap:
    """Sparse contingency table of two instance maps.

    ``true_area[i]`` and ``pred_area[j]`` are the areas of the i-th and j-th
    instance (0-based, background excluded); ``rows``, ``cols``, ``inter`` list
    every overlapping pair with its intersection area.
    """

    true_area: np.ndarray
    pred_area: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    inter: np.ndarray

    @property
    def iou(self) -> np.ndarray:
        union = self.true_area[self.rows] + self.pred_area[self.cols] - self.inter
        return self.inter / union

    @property
    def both_empty(self) -> bool:
        return self.true_area.size == 0 and self.pred_area.size == 0


def _dense_ids(label: np.ndarray) -> tuple[np.ndarray, int]:
    """Map ids to 0 (background) and 1..N, in order of the original ids."""
    ids, inverse = np.unique(label, return_inverse=True)
    if ids.size and ids[0] < 0:
        raise ValueError("label maps must not hold negative ids")
    if ids.size and ids[0] == 0:
        return inverse.reshape(label.shape), ids.size - 1
    return inverse.reshape(label.shape) + 1, ids.size


def _overlap(true: np.ndarray, pred: np.ndarray) -> _Overlap:
    true, pred = np.asarray(true), np.asarray(pred)
    if true.shape != pred.shape:
        raise ValueError(f"true and pred must have the same shape, got {true.shape} and {pred.shape}")
    if true.dtype.kind not in "iub" or pred.dtype.kind not in "iub":
        raise ValueError("true and pred must be integer label maps")
    t, n_true = _dense_ids(true)
    p, n_pred = _dense_ids(pred)
    t, p = t.ravel(), p.ravel()
    true_area = np.bincount(t, minlength=n_true + 1)[1:]
    pred_area = np.bincount(p, minlength=n_pred + 1)[1:]
    both = (t > 0) & (p > 0)
    key = t[both].astype(np.int64) * (n_pred + 1) + p[both]
    pairs, inter = np.unique(key, return_counts=True)
    return _Overlap(
        true_area=true_area,
        pred_area=pred_area,
        rows=pairs // (n_pred + 1) - 1,
        cols=pairs % (n_pred + 1) - 1,
        inter=inter,
    )


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def _pixel(ov: _Overlap) -> tuple[float, float, float]:
    if ov.both_empty:
        return 1.0, 1.0, 1.0
    tp, t, p = ov.inter.sum(), ov.true_area.sum(), ov.pred_area.sum()
    return _ratio(tp, p), _ratio(tp, t), _ratio(2 * tp, t + p)


def _aji(ov: _Overlap) -> float:
    return 1.0 if ov.both_empty else _ratio(*_aji_sums(ov))


def _aji_sums(ov: _Overlap) -> tuple[int, int]:
    """AJI's ``C`` and ``U`` (see the module docstring)."""
    iou = ov.iou
    # For each ground truth, the pair of highest IoU (the lowest pred id on ties).
    order = np.lexsort((ov.cols, -iou, ov.rows))
    rows = ov.rows[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    best = order[first]
    intersection = ov.inter[best].sum()
    union = (ov.true_area[ov.rows[best]] + ov.pred_area[ov.cols[best]] - ov.inter[best]).sum()
    matched_true = np.zeros(ov.true_area.size, dtype=bool)
    matched_true[ov.rows[best]] = True
    used_pred = np.zeros(ov.pred_area.size, dtype=bool)
    used_pred[ov.cols[best]] = True
    union += ov.true_area[~matched_true].sum() + ov.pred_area[~used_pred].sum()
    return int(intersection), int(union)


def _aji_plus(ov: _Overlap) -> float:
    if ov.both_empty:
        return 1.0
    if ov.inter.size:
        # The assignment only concerns instances that overlap something.
        t_ids, r = np.unique(ov.rows, return_inverse=True)
        p_ids, c = np.unique(ov.cols, return_inverse=True)
        iou = np.zeros((t_ids.size, p_ids.size))
        iou[r, c] = ov.iou
        ri, ci = linear_sum_assignment(iou, maximize=True)
        keep = iou[ri, ci] > 0
        rows, cols = t_ids[ri[keep]], p_ids[ci[keep]]
        inter_matrix = np.zeros_like(iou)
        inter_matrix[r, c] = ov.inter
        inter = inter_matrix[ri[keep], ci[keep]]
    else:
        rows = cols = np.zeros(0, dtype=np.int64)
        inter = np.zeros(0)
    intersection = inter.sum()
    union = (ov.true_area[rows] + ov.pred_area[cols] - inter).sum()
    union += ov.true_area.sum() - ov.true_area[rows].sum() + ov.pred_area.sum() - ov.pred_area[cols].sum()
    return _ratio(intersection, union)


def _pq(ov: _Overlap) -> tuple[float, float, float, int, int, int]:
    if ov.both_empty:
        return 1.0, 1.0, 1.0, 0, 0, 0
    iou = ov.iou
    matched = iou > 0.5
    tp = int(matched.sum())
    fp, fn = ov.pred_area.size - tp, ov.true_area.size - tp
    dq = _ratio(tp, tp + 0.5 * fp + 0.5 * fn)
    sq = _ratio(iou[matched].sum(), tp)
    return dq, sq, dq * sq, tp, fp, fn


def score(true: np.ndarray, pred: np.ndarray) -> Scores:
    """All scores of one image.

    Parameters
    ----------
    true, pred : (H, W) integer arrays
        Ground-truth and predicted instance maps, 0 = background.

    Returns
    -------
    Scores
    """
    ov = _overlap(true, pred)
    precision, recall, dice = _pixel(ov)
    dq, sq, pq, tp, fp, fn = _pq(ov)
    return Scores(
        precision=precision,
        recall=recall,
        dice=dice,
        aji=_aji(ov),
        aji_plus=_aji_plus(ov),
        dq=dq,
        sq=sq,
        pq=pq,
        n_true=int(ov.true_area.size),
        n_pred=int(ov.pred_area.size),
        tp=tp,
        fp=fp,
        fn=fn,
    )


def pixel_scores(true: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Pixel ``(precision, recall, dice)`` of the binary foregrounds.

    >>> pixel_scores(np.array([[1, 1, 0, 0]]), np.array([[0, 3, 3, 0]]))
    (0.5, 0.5, 0.5)
    """
    return _pixel(_overlap(true, pred))


def aggregated_jaccard_index(true: np.ndarray, pred: np.ndarray) -> float:
    """AJI of Kumar et al. 2017 (see the module docstring).

    A prediction that covers two ground truths is used for both:

    >>> aggregated_jaccard_index(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 1]]))
    0.5
    """
    return _aji(_overlap(true, pred))


def aji_sums(true: np.ndarray, pred: np.ndarray) -> tuple[int, int]:
    """AJI's aggregated intersection ``C`` and union ``U`` of one image, in pixels: summed over a dataset's
    images, ``sum(C) / sum(U)`` is AJI pooled over the dataset instead of averaged over images.

    >>> aji_sums(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 1]]))
    (4, 8)
    """
    return _aji_sums(_overlap(true, pred))


def aggregated_jaccard_index_plus(true: np.ndarray, pred: np.ndarray) -> float:
    """AJI+ of Graham et al. 2019, with one-to-one matching.

    The merged prediction serves only one of the two ground truths:

    >>> aggregated_jaccard_index_plus(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 1]]))
    0.333...
    """
    return _aji_plus(_overlap(true, pred))


def panoptic_quality(true: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """``(DQ, SQ, PQ)`` with matching at IoU > 0.5 (Kirillov et al. 2019).

    >>> panoptic_quality(np.array([[1, 1, 1, 0]]), np.array([[1, 1, 0, 0]]))
    (1.0, 0.666..., 0.666...)
    """
    return _pq(_overlap(true, pred))[:3]


def mean_scores(scores: Iterable[Scores]) -> dict[str, float]:
    """Dataset figure: the mean of each score over images (counts are summed).

    Raises
    ------
    ValueError
        If `scores` is empty.
    """
    scores = list(scores)
    if not scores:
        raise ValueError("no scores to average")
    counts = {"n_true", "n_pred", "tp", "fp", "fn"}
    return {
        f.name: (sum(getattr(s, f.name) for s in scores) if f.name in counts else float(np.mean([getattr(s, f.name) for s in scores])))
        for f in fields(Scores)
    }


class RunSummary(NamedTuple):
    """One method's table cell per metric over repeated runs (paper Table 1: "mean +- std (upper bound)").

    Attributes
    ----------
    mean, std : dict metric -> float
        Mean and sample standard deviation (ddof = 1; 0 for a single run) over
        runs of the dataset-mean metric.
    best : dict metric -> float
        The metrics of the best run, chosen by `select` (one run for every
        column, as the paper's parenthesised "upper-bound results").
    runs : int
    """

    mean: dict[str, float]
    std: dict[str, float]
    best: dict[str, float]
    runs: int


def summarise_runs(runs: Sequence[Mapping[str, float]], *, metrics: Sequence[str] = ("precision", "recall", "dice", "aji"), select: str = "dice") -> RunSummary:
    """Mean, standard deviation and best run of dataset-mean metrics over repeated runs.

    Parameters
    ----------
    runs : sequence of mapping metric -> value
        Each run's dataset figure (e.g. :func:`mean_scores`).
    metrics : sequence of str
    select : str
        The metric whose highest value picks the best run.

    >>> s = summarise_runs([{"dice": 0.7, "aji": 0.4}, {"dice": 0.8, "aji": 0.3}], metrics=("dice", "aji"))
    >>> round(s.mean["dice"], 3), round(s.std["dice"], 4), s.best["aji"]
    (0.75, 0.0707, 0.3)
    """
    if not runs:
        raise ValueError("no runs to summarise")
    table = np.array([[float(r[m]) for m in metrics] for r in runs])
    std = table.std(0, ddof=1) if len(runs) > 1 else np.zeros(len(metrics))
    best = int(np.argmax(table[:, list(metrics).index(select)]))
    return RunSummary(
        mean=dict(zip(metrics, table.mean(0).tolist())),
        std=dict(zip(metrics, std.tolist())),
        best=dict(zip(metrics, table[best].tolist())),
        runs=len(runs),
    )
