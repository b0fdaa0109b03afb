"""The watershed fallback: the network's confidence, the segmenter falling back on it, and the threshold's choice."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from ssimnet import Segmenter
from ssimnet.baselines import segment_baseline
from ssimnet.cli import main
from ssimnet.config import DEFAULT_BASELINES, FALLBACK_BELOW, InferenceConfig
from ssimnet.data import read_label, write_image
from ssimnet.errors import SegmentationWarning
from ssimnet.metrics import score
from ssimnet.predict import nucleus_confidence
from ssimnet.runs.fallback_choice import (
    choose_fallback_below,
    choose_fallback_watershed,
    fallback_outcome,
    with_fallback,
)
from ssimnet.runs.stress import FALLBACK_WATERSHEDS, fallback_rows
from ssimnet.synthetic import synthetic_tile


def test_nucleus_confidence_is_the_mean_probability_over_the_nuclei_pixels():
    probability = np.array([[0.9, 0.8, 0.1], [0.6, 0.2, 0.4]], np.float32)
    label = np.array([[1, 1, 0], [2, 0, 3]])
    assert nucleus_confidence(probability, label) == pytest.approx((0.9 + 0.8 + 0.6 + 0.4) / 4)
    assert nucleus_confidence(probability, np.zeros_like(label)) == 0.0  # nothing found: no confidence
    with pytest.raises(ValueError, match="fallback_below must lie in"):
        InferenceConfig(fallback_below=1.5)


def test_an_unsure_network_gives_the_classical_watershed_s_nuclei_and_says_so():
    segmenter = Segmenter.pretrained()
    tile = synthetic_tile((256, 256), seed=0).image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SegmentationWarning)
        network = segmenter.segment(tile, measure=False)
        assert not caught and not network.fallback and network.confidence > 0.5
        falls = segmenter.segment(tile, fallback_below=network.confidence + 1e-3)
    assert len(caught) == 1 and "the network is unsure" in str(caught[0].message)
    assert falls.fallback and falls.confidence == network.confidence
    water = segment_baseline(tile, "watershed", DEFAULT_BASELINES)  # what the stress study scores as the fallback
    assert np.array_equal(falls.labels, water) and not np.array_equal(water, network.labels)
    assert len(falls.table["id"]) == int(water.max())  # the table measures the nuclei given
    stays = segmenter.segment(tile, measure=False, fallback_below=network.confidence)  # not below: the network's
    assert not stays.fallback and np.array_equal(stays.labels, network.labels)
    # given a pixel size, the watershed sees the image at the network's resolution too, and its labels come back
    half = np.ascontiguousarray(tile[::2, ::2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SegmentationWarning)
        told = segmenter.segment(half, measure=False, mpp=0.5, fallback_below=1.0)
    assert told.fallback and told.labels.shape == half.shape[:2] and told.labels.max() > 0


def test_segment_records_the_confidence_and_the_fallback(tmp_path):
    tile = synthetic_tile((128, 128), seed=1).image
    write_image(tmp_path / "a.png", tile)
    plain, falls = tmp_path / "plain", tmp_path / "falls"
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(plain), "--quiet"]) == 0
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(falls), "--quiet", "--fallback-below", "1"]) == 0
    kept, fell = (json.loads((d / "a_summary.json").read_text()) for d in (plain, falls))
    assert kept["fallback"] is False and fell["fallback"] is True and kept["confidence"] == fell["confidence"] > 0
    stored = {name: d["settings"]["inference"]["fallback_below"] for name, d in (("kept", kept), ("fell", fell))}
    assert stored == {"kept": FALLBACK_BELOW, "fell": 1.0}  # the shipped network's own, and the option's
    assert any("the network is unsure" in w for w in fell["warnings"])
    assert np.array_equal(read_label(falls / "a_label.png"), segment_baseline(tile, "watershed", DEFAULT_BASELINES))
    with open(falls / "summary.csv") as f:
        row = next(csv.DictReader(f))
    assert row["fallback"] == "True" and float(row["confidence"]) == pytest.approx(fell["confidence"])


def test_the_fallback_s_training_rows_hold_each_watershed_and_the_network_s_confidence():
    segmenter = Segmenter.pretrained()
    tile = synthetic_tile((192, 192), seed=1)
    rows = pd.DataFrame(fallback_rows(tile.image, tile.label, segmenter, transforms=("none", "lavender")))
    assert rows.groupby("transform")["way"].apply(list).to_dict() == {
        t: ["network", *FALLBACK_WATERSHEDS] for t in ("lavender", "none")}
    network = segmenter.segment(tile.image, measure=False, fallback_below=None)
    assert (rows["confidence"][rows["transform"] == "none"] == network.confidence).all()
    water = rows.set_index(["transform", "way"])["aji"]
    assert water["none", "classical watershed"] == pytest.approx(
        score(tile.label, segment_baseline(tile.image, "watershed", DEFAULT_BASELINES)).aji)
    # not normalised, the image the network sees is the image itself: that watershed is the classical one
    off = pd.DataFrame(fallback_rows(tile.image, tile.label, segmenter.with_settings(normalize="off"),
                                     transforms=("lavender",))).set_index("way")["aji"]
    assert off["watershed, normalised image"] == off["classical watershed"]
    assert water["lavender", "watershed, normalised image"] != water["lavender", "classical watershed"]


def _rows() -> pd.DataFrame:
    """Four training images: a and b sure and better as the network has them, c unsure and better by the
    watershed (untransformed), d under a transform, unsure and better by the watershed."""
    rows = []
    for image, transform, confidence, network, water in (
            ("a", "none", 0.70, 0.60, 0.50), ("b", "none", 0.64, 0.50, 0.10), ("c", "none", 0.60, 0.30, 0.40),
            ("d", "faded", 0.58, 0.20, 0.45)):
        rows += [{"image": image, "transform": transform, "way": way, "confidence": confidence, "aji": aji}
                 for way, aji in (("network", network), ("classical watershed", water))]
    return pd.DataFrame(rows)


def test_the_fallback_s_outcome_and_choice_by_hand():
    rows = _rows()
    never, fell = fallback_outcome(rows, below=0.0), fallback_outcome(rows, below=0.61)  # c and d fall back
    assert never.to_dict() == pytest.approx({"faded": 0.2, "none": (0.6 + 0.5 + 0.3) / 3})
    assert fell.to_dict() == pytest.approx({"faded": 0.45, "none": (0.6 + 0.5 + 0.4) / 3})
    best, table = choose_fallback_below(rows, grid=(0.0, 0.59, 0.61, 0.62, 0.65, 0.7))
    # 0.65 would take b's watershed too, lowering the untransformed mean: the best of 0.61 and 0.62, the middle
    assert best == 0.61 and table.loc[0.65, "untransformed"] < table.loc[0.0, "untransformed"]
    assert table["falls back"].to_dict() == {0.0: 0, 0.59: 1, 0.61: 2, 0.62: 2, 0.65: 3, 0.7: 3}


def test_the_fallback_s_watershed_is_another_only_when_it_is_better_by_the_margin_and_keeps_the_plain_images():
    rows = _rows()
    for image, transform, confidence, other in (("a", "none", 0.70, 0.55), ("b", "none", 0.64, 0.05),
                                                ("c", "none", 0.60, 0.42), ("d", "faded", 0.58, 0.50)):
        rows.loc[len(rows)] = {"image": image, "transform": transform, "way": "other", "confidence": confidence,
                               "aji": other}
    # c and d fall back: the other watershed gives c 0.42 (not 0.40) and d 0.50 (not 0.45); a and b do not matter
    chosen, table = choose_fallback_watershed(rows, below=0.61)
    assert chosen == "other" and table.loc["other", "mean over transforms"] == pytest.approx(
        (0.50 + (0.6 + 0.5 + 0.42) / 3) / 2)
    assert choose_fallback_watershed(rows, below=0.61, margin=0.1)[0] == "classical watershed"  # not by 0.1
    assert fallback_outcome(rows, below=0.61, watershed="other").to_dict() == pytest.approx(
        {"faded": 0.5, "none": (0.6 + 0.5 + 0.42) / 3})
    rows.loc[(rows["way"] == "other") & (rows["image"] == "c"), "aji"] = 0.30  # lower on the plain images
    chosen, table = choose_fallback_watershed(rows, below=0.61)
    assert chosen == "classical watershed" and not table.loc["other", "allowed"]
    assert table.loc["other", "mean over transforms"] > table.loc["classical watershed", "mean over transforms"]


def test_with_fallback_takes_the_watershed_s_row_of_the_same_image_and_transform():
    frame = pd.DataFrame({"dataset": ["d"] * 6, "image": ["a", "a", "b", "b", "a", "a"],
                          "transform": ["none", "none", "none", "none", "faded", "faded"],
                          "config": ["default", "classical watershed"] * 3, "aji": [0.6, 0.5, 0.2, 0.4, 0.1, 0.3],
                          "dice": [0.7, 0.65, 0.3, 0.5, 0.2, 0.4], "confidence": [0.7, None, 0.55, None, 0.59, None]})
    made = with_fallback(frame, below=0.6, config="fb")
    assert made[["image", "transform", "aji", "dice", "fallback"]].to_dict("records") == [
        {"image": "a", "transform": "none", "aji": 0.6, "dice": 0.7, "fallback": False},
        {"image": "b", "transform": "none", "aji": 0.4, "dice": 0.5, "fallback": True},
        {"image": "a", "transform": "faded", "aji": 0.3, "dice": 0.4, "fallback": True}]
    assert set(made["config"]) == {"fb"} and made["confidence"].tolist() == [0.7, 0.55, 0.59]
    with pytest.raises(ValueError, match="needs a 'classical watershed' row"):
        with_fallback(frame.iloc[:5], below=0.6, config="fb")


def test_the_fallback_threshold_is_the_choice_on_the_committed_training_rows():
    """FALLBACK_BELOW is computed from results/cpu/fallback_selection_*, not typed: chosen on training images
    only; it raises the mean training AJI over the transforms and leaves the untransformed images' as it is."""
    from pathlib import Path

    from ssimnet.book.results import FALLBACK_SELECTION, load_results

    rows, info = load_results(Path(__file__).resolve().parents[1] / "results" / "cpu", kind=FALLBACK_SELECTION)
    assert info["split"].startswith("train") and set(rows["dataset"]) == {"monuseg train"}
    assert set(rows["way"]) == {"network", *FALLBACK_WATERSHEDS}
    assert rows[rows["transform"] == "none"]["image"].nunique() == len(info["images"])  # every one as it is
    best, table = choose_fallback_below(rows)
    assert best == FALLBACK_BELOW
    never, chosen = table.loc[0.0], table.loc[best]
    assert chosen["mean over transforms"] > never["mean over transforms"] and chosen["falls back"] > 0
    # segment falls back to the classical watershed: the choice among the watersheds on the same rows
    assert choose_fallback_watershed(rows, below=best)[0] == "classical watershed"
    assert chosen["untransformed"] >= never["untransformed"]
