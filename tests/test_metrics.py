"""ssimnet.metrics against hand-computed cases and an independent, loop-based reading of the definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from skimage.draw import disk

from ssimnet.metrics import (
    Scores,
    aggregated_jaccard_index,
    aggregated_jaccard_index_plus,
    mean_scores,
    panoptic_quality,
    pixel_scores,
    score,
)

# ----------------------------------------------------------------- reference implementation
# Written straight from the papers' definitions, one object mask at a time, and
# sharing no code with ssimnet.metrics.


def _masks(label):
    return [label == i for i in np.unique(label) if i != 0]


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def ref_aji(true, pred):
    gts, preds = _masks(true), _masks(pred)
    if not gts and not preds:
        return 1.0
    c = u = 0
    used = set()
    for g in gts:
        ious = [_iou(g, s) if (g & s).any() else -1.0 for s in preds]
        if not preds or max(ious) <= 0:
            u += g.sum()
            continue
        j = int(np.argmax(ious))
        used.add(j)
        c += (g & preds[j]).sum()
        u += (g | preds[j]).sum()
    u += sum(s.sum() for j, s in enumerate(preds) if j not in used)
    return c / u if u else 0.0


def ref_aji_plus(true, pred):
    gts, preds = _masks(true), _masks(pred)
    if not gts and not preds:
        return 1.0
    # Brute force over all one-to-one pairings of the (small) sets.
    best_total, best_pairs = -1.0, []
    k = min(len(gts), len(preds))
    for chosen in itertools.permutations(range(len(preds)), k) if len(gts) <= len(preds) else []:
        pairs = list(zip(range(len(gts)), chosen))
        total = sum(_iou(gts[i], preds[j]) for i, j in pairs)
        if total > best_total + 1e-12:
            best_total, best_pairs = total, pairs
    for chosen in itertools.permutations(range(len(gts)), k) if len(gts) > len(preds) else []:
        pairs = list(zip(chosen, range(len(preds))))
        total = sum(_iou(gts[i], preds[j]) for i, j in pairs)
        if total > best_total + 1e-12:
            best_total, best_pairs = total, pairs
    pairs = [(i, j) for i, j in best_pairs if (gts[i] & preds[j]).any()]
    c = sum((gts[i] & preds[j]).sum() for i, j in pairs)
    u = sum((gts[i] | preds[j]).sum() for i, j in pairs)
    u += sum(g.sum() for i, g in enumerate(gts) if i not in {p[0] for p in pairs})
    u += sum(s.sum() for j, s in enumerate(preds) if j not in {p[1] for p in pairs})
    return c / u if u else 0.0


def ref_pq(true, pred):
    gts, preds = _masks(true), _masks(pred)
    if not gts and not preds:
        return 1.0, 1.0, 1.0
    ious = [_iou(g, s) for g in gts for s in preds if _iou(g, s) > 0.5]
    tp = len(ious)
    fp, fn = len(preds) - tp, len(gts) - tp
    dq = tp / (tp + fp / 2 + fn / 2)
    sq = sum(ious) / tp if tp else 0.0
    return dq, sq, dq * sq


def random_label_map(rng, shape=(40, 40), n=6, id_range=50):
    """Random overlapping discs with random, non-consecutive ids (later discs overwrite)."""
    label = np.zeros(shape, dtype=np.int32)
    ids = rng.choice(np.arange(1, id_range), size=n, replace=False)
    for i in ids:
        rr, cc = disk(rng.uniform(0, shape[0], 2), rng.uniform(2, 9), shape=shape)
        label[rr, cc] = i
    return label


# ----------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_reference_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    true = random_label_map(rng, n=int(rng.integers(0, 7)))
    pred = random_label_map(rng, n=int(rng.integers(0, 7)))
    s = score(true, pred)
    assert s.aji == pytest.approx(ref_aji(true, pred))
    assert s.aji_plus == pytest.approx(ref_aji_plus(true, pred))
    assert (s.dq, s.sq, s.pq) == pytest.approx(ref_pq(true, pred))
    t, p = true > 0, pred > 0
    if t.any() and p.any():
        assert s.dice == pytest.approx(2 * (t & p).sum() / (t.sum() + p.sum()))
        assert s.precision == pytest.approx((t & p).sum() / p.sum())
        assert s.recall == pytest.approx((t & p).sum() / t.sum())
    assert s.n_true == len(np.unique(true[true > 0])) and s.n_pred == len(np.unique(pred[pred > 0]))


def test_hand_computed_merge_case():
    # Two ground truths of 4 px each, one prediction covering both plus 2 px.
    true = np.array([[1, 1, 1, 1, 2, 2, 2, 2, 0, 0]])
    pred = np.array([[9, 9, 9, 9, 9, 9, 9, 9, 9, 9]])
    s = score(true, pred)
    assert (s.precision, s.recall, s.dice) == pytest.approx((0.8, 1.0, 16 / 18))
    # AJI: both GTs take the prediction; C = 4 + 4, U = 10 + 10 (the union counted twice).
    assert s.aji == pytest.approx(8 / 20)
    # AJI+: one GT pairs with it (C = 4, U = 10), the other adds its 4 px.
    assert s.aji_plus == pytest.approx(4 / 14)
    # No IoU exceeds 0.5 (each is 0.4): no match.
    assert (s.tp, s.fp, s.fn, s.pq) == (0, 1, 2, 0.0)


def test_hand_computed_split_case():
    # One ground truth of 6 px split into predictions of 4 and 2 px; a spurious prediction.
    true = np.array([[1, 1, 1, 1, 1, 1, 0, 0]])
    pred = np.array([[3, 3, 3, 3, 4, 4, 0, 8]])
    s = score(true, pred)
    # AJI: GT takes pred 3 (IoU 4/6); preds 4 and 8 are unused: U = 6 + 2 + 1.
    assert s.aji == pytest.approx(4 / 9)
    assert s.aji_plus == pytest.approx(4 / 9)
    assert (s.tp, s.fp, s.fn) == (1, 2, 0)
    assert s.sq == pytest.approx(4 / 6)
    assert s.dq == pytest.approx(1 / (1 + 1 + 0))


def test_perfect_prediction_with_other_ids_scores_one():
    true = np.array([[0, 1, 1, 0, 5, 5], [0, 1, 1, 0, 5, 5]])
    pred = np.where(true == 1, 70, np.where(true == 5, 3, 0))
    s = score(true, pred)
    assert [s.precision, s.recall, s.dice, s.aji, s.aji_plus, s.dq, s.sq, s.pq] == [1.0] * 8
    assert (s.n_true, s.n_pred, s.tp, s.fp, s.fn) == (2, 2, 2, 0, 0)


def test_empty_maps():
    empty = np.zeros((4, 4), dtype=np.int32)
    full = np.ones((4, 4), dtype=np.int32)
    both = score(empty, empty)
    assert (both.dice, both.aji, both.aji_plus, both.pq) == (1.0, 1.0, 1.0, 1.0)
    no_pred = score(full, empty)
    assert (no_pred.precision, no_pred.recall, no_pred.dice, no_pred.aji, no_pred.pq, no_pred.fn) == (0, 0, 0, 0, 0, 1)
    no_true = score(empty, full)
    assert (no_true.precision, no_true.recall, no_true.aji, no_true.aji_plus, no_true.fp) == (0, 0, 0, 0, 1)


def test_single_function_api_matches_score():
    rng = np.random.default_rng(7)
    true, pred = random_label_map(rng), random_label_map(rng)
    s = score(true, pred)
    assert pixel_scores(true, pred) == (s.precision, s.recall, s.dice)
    assert aggregated_jaccard_index(true, pred) == s.aji
    assert aggregated_jaccard_index_plus(true, pred) == s.aji_plus
    assert panoptic_quality(true, pred) == (s.dq, s.sq, s.pq)


def test_scores_lie_in_unit_interval():
    rng = np.random.default_rng(3)
    for _ in range(20):
        true, pred = random_label_map(rng), random_label_map(rng)
        values = score(true, pred).as_dict()
        assert all(0.0 <= values[k] <= 1.0 for k in ("precision", "recall", "dice", "aji", "aji_plus", "dq", "sq", "pq"))


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        score(np.zeros((3, 3), int), np.zeros((3, 4), int))
    with pytest.raises(ValueError, match="integer"):
        score(np.zeros((3, 3)), np.zeros((3, 3), int))
    with pytest.raises(ValueError, match="negative"):
        score(-np.ones((3, 3), int), np.zeros((3, 3), int))


def test_mean_scores():
    a = Scores(1.0, 0.5, 0.6, 0.4, 0.4, 0.5, 0.8, 0.4, 10, 8, 5, 3, 5)
    b = Scores(0.0, 0.5, 0.2, 0.2, 0.1, 0.5, 0.6, 0.3, 4, 2, 1, 1, 3)
    m = mean_scores([a, b])
    assert m["precision"] == 0.5 and m["dice"] == pytest.approx(0.4) and m["aji"] == pytest.approx(0.3)
    assert m["n_true"] == 14 and m["tp"] == 6
    with pytest.raises(ValueError):
        mean_scores([])
