"""A second opinion as hematoxylin only (weighed and set aside): its rows, its outcome and its margin's choice."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssimnet import Segmenter
from ssimnet.config import STAIN_GUARD
from ssimnet.data import list_samples, read_image, read_label
from ssimnet.errors import SegmentationWarning
from ssimnet.metrics import score
from ssimnet.pseudo.labels import pseudo_labels
from ssimnet.runs.guard_choice import PSEUDO_CAP, choose_one_stain_margin, second_opinion_outcome
from ssimnet.runs.stress import second_opinion_rows, stress

MONUSEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg"
needs_monuseg = pytest.mark.skipif(not MONUSEG.is_dir(), reason="MoNuSeg not present beside the checkout")
RESULTS = Path(__file__).resolve().parents[1] / "results" / "cpu"


def _rows(cases):
    """Selection rows: (image, transform, tried, aji two/one/watershed, confidence two/one, foreground one)."""
    return pd.DataFrame([{"image": i, "transform": t, "tried": tried, "way": way, "aji": aji, "confidence": conf,
                          "foreground": fg}
                         for i, t, tried, (a2, a1, aw), (c2, c1), f1 in cases
                         for way, aji, conf, fg in (("two stains", a2, c2, 0.2), ("hematoxylin only", a1, c1, f1),
                                                    ("classical watershed", aw, None, 0.3))])


def test_the_outcome_keeps_hematoxylin_only_where_tried_surer_and_not_a_collapse():
    rows = _rows([("a", "none", True, (0.5, 0.1, 0.4), (0.70, 0.72), 0.75),   # surer, but a collapse: kept out
                  ("b", "none", True, (0.5, 0.6, 0.4), (0.70, 0.71), 0.30),   # surer by 0.01
                  ("c", "faded", True, (0.2, 0.5, 0.3), (0.60, 0.66), 0.30),  # surer by 0.06, above the fallback
                  ("d", "faded", False, (0.4, 0.4, 0.3), (0.70, 0.70), 0.30)])  # the guard made it one-stain
    never = second_opinion_outcome(rows, margin=None, below=None)
    assert never.to_dict() == pytest.approx({"none": 0.5, "faded": 0.3})
    assert second_opinion_outcome(rows, margin=0.0, below=None).to_dict() == pytest.approx({"none": 0.55,
                                                                                            "faded": 0.45})
    assert second_opinion_outcome(rows, margin=0.0, below=None, cap=1.0)["none"] == pytest.approx(0.35)
    assert second_opinion_outcome(rows, margin=0.02, below=None)["none"] == pytest.approx(0.5)  # b not surer enough
    # the fallback judges the result kept: c falls back two-stain (0.60 < 0.65), not as hematoxylin only (0.66)
    assert second_opinion_outcome(rows, margin=None, below=0.65)["faded"] == pytest.approx((0.3 + 0.4) / 2)
    assert second_opinion_outcome(rows, margin=0.0, below=0.65)["faded"] == pytest.approx((0.5 + 0.4) / 2)


def test_the_margin_s_choice_may_not_lower_the_untransformed_images():
    rows = _rows([("a", "none", True, (0.5, 0.45, 0.4), (0.70, 0.705), 0.3),  # surer by 0.005, worse
                  ("c", "faded", True, (0.2, 0.5, 0.3), (0.60, 0.66), 0.3)])
    best, table = choose_one_stain_margin(rows, grid=(None, 0.0, 0.01, 0.1), below=None)
    assert best == 0.01  # 0.0 lowers a; 0.1 keeps c out; ties would take the larger margin
    assert not table.loc[0.0, "allowed"] and table.loc[0.1, "allowed"]
    assert table.loc[0.01, "mean over transforms"] == pytest.approx((0.5 + 0.5) / 2)
    worse = _rows([("c", "faded", True, (0.5, 0.2, 0.3), (0.60, 0.66), 0.3), ("a", "none", True,
                                                                           (0.5, 0.5, 0.4), (0.7, 0.7), 0.3)])
    assert choose_one_stain_margin(worse, grid=(None, 0.0), below=None)[0] is None  # never, when it only hurts


@needs_monuseg
def test_the_rows_hold_what_segment_gives_as_two_stains_and_as_hematoxylin_only(monkeypatch):
    """The rows are segment's own results: ``two stains`` is segment's default without the fallback, and
    ``hematoxylin only`` is, pixel for pixel, what segment gives when the stain guard calls the image
    one-stain; an image the guard already made one-stain is not tried, and its rows hold its result twice."""
    import ssimnet.tool.stain_guard as guard_module

    sample = list_samples(MONUSEG, "train")[0]
    image, label = read_image(sample.image_path)[:400, :400], read_label(sample.label_path)[:400, :400]
    segmenter = Segmenter.pretrained()
    rows = pd.DataFrame(second_opinion_rows(image, label, segmenter, transforms=("faded, no eosin", "nuclei on white")))
    faded = rows[rows["transform"] == "faded, no eosin"].set_index("way")
    assert faded["tried"].all() and faded.loc["hematoxylin only", "aji"] != faded.loc["two stains", "aji"]
    seen, truth = stress(image, label, "faded, no eosin", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)
        two = segmenter.segment(seen, measure=False, fallback_below=None)
        monkeypatch.setattr(guard_module, "STAIN_GUARD", STAIN_GUARD._replace(one_stain_angle=180.0,
                                                                              one_stain_spread=1e9))
        one = segmenter.segment(seen, measure=False, fallback_below=None)
    assert two.normalization == "normalised" and one.normalization.startswith("normalised as hematoxylin only")
    for way, result in (("two stains", two), ("hematoxylin only", one)):
        assert faded.loc[way, "confidence"] == result.confidence
        assert faded.loc[way, "aji"] == pytest.approx(score(truth, result.label).aji, abs=1e-12)
        assert faded.loc[way, "foreground"] == pytest.approx(np.count_nonzero(result.label) / result.label.size)
    pseudo = pseudo_labels(seen, segmenter.pseudo, seed=0).candidates  # the image's own, label-free
    assert (faded["pseudo_foreground"] == np.count_nonzero(pseudo) / pseudo.size).all()
    white = rows[rows["transform"] == "nuclei on white"].set_index("way")
    assert not white["tried"].any() and white.loc["two stains", "aji"] == white.loc["hematoxylin only", "aji"]


def test_the_second_opinion_s_committed_rows_agree_with_the_stress_test_and_lower_monuseg_test():
    """The margin is chosen on training rows only (and raises their mean over the transforms without lowering
    the untransformed images'); the test rows without a second opinion are the stress test's default as it is,
    image by image; and, as chapter 10 says, with the chosen margin they lower MoNuSeg test's mean AJI."""
    from ssimnet.book.results import SECOND_OPINION_SELECTION, SECOND_OPINION_TEST, STAIN_STRESS, load_results

    rows, info = load_results(RESULTS, kind=SECOND_OPINION_SELECTION)
    assert info["split"].startswith("train") and set(rows["dataset"]) == {"monuseg train"}
    assert set(rows["way"]) == {"two stains", "hematoxylin only", "classical watershed"}
    best, table = choose_one_stain_margin(rows)
    never = table.loc[table.index.isna()].iloc[0]
    chosen = table.loc[table.index == best].iloc[0]
    assert chosen["untransformed"] >= never["untransformed"]
    assert chosen["mean over transforms"] > never["mean over transforms"]
    tested, tested_info = load_results(RESULTS, kind=SECOND_OPINION_TEST)
    assert tested_info["one_stain_margin"] == best and set(tested["transform"]) == {"none"}
    stress, _ = load_results(RESULTS, kind=STAIN_STRESS)
    default = stress[(stress["config"] == "default") & (stress["transform"] == "none")].set_index("image")["aji"]
    plain = second_opinion_outcome(tested, margin=None, by="image")
    assert len(plain) == 64 and np.allclose(plain.to_numpy(), default.reindex(plain.index).to_numpy(), atol=1e-6)
    by_set = {m: second_opinion_outcome(tested, margin=m, by="dataset") for m in (None, best)}
    assert by_set[best]["monuseg test"] < by_set[None]["monuseg test"]
    # every image's pseudo-label share is one label-free number, the same for its three ways
    for frame in (rows, tested):
        shares = frame.groupby(["image", "transform"])["pseudo_foreground"]
        assert (shares.nunique() == 1).all() and frame["pseudo_foreground"].between(0, 1).all()
    # a second cap only ever keeps fewer hematoxylin-only results: where it changes an image, it gives two stains
    two = second_opinion_outcome(tested, margin=best, by="image", below=None, cap=np.inf, pseudo_cap=np.inf)
    capped = second_opinion_outcome(tested, margin=best, by="image", below=None, cap=np.inf, pseudo_cap=PSEUDO_CAP)
    plain_two = second_opinion_outcome(tested, margin=None, by="image", below=None)
    moved = capped != two
    assert (capped[moved] == plain_two[moved]).all()
