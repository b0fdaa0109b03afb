"""Baselines (clustering, Kanezaki, classical watershed, supervised U-Net) and the repeated-runs protocol."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from skimage.draw import disk

from ssimnet.baselines import IMAGE_METHODS, segment_baseline, supervised_patches
from ssimnet.baselines.clustering import cluster_foreground
from ssimnet.baselines.kanezaki import kanezaki_foreground, kanezaki_labels, superpixel_refine
from ssimnet.baselines.watershed import hematoxylin_watershed
from ssimnet.book.report import comparison_table, discrepancies
from ssimnet.config import BaselineConfig, InferenceConfig, PseudoLabelConfig, SyntheticConfig, TrainConfig, get_profile
from ssimnet.data import list_samples, read_image, read_label, write_image, write_label
from ssimnet.datasets import write_synthetic_dataset
from ssimnet.metrics import pixel_scores, score, summarise_runs
from ssimnet.predict import instances, predict_probability
from ssimnet.runs.evaluate import evaluate_baseline, evaluate_supervised
from ssimnet.runs.experiments import run_methods
from ssimnet.runs.pipeline import train_supervised
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.viz import crowded_window

FAST = BaselineConfig(runs=2, cluster_samples=5000, kanezaki_channels=16, kanezaki_iterations=30, kanezaki_superpixel_area=64)


@pytest.fixture(scope="module")
def tile():
    return synthetic_tile((192, 192), seed=5)


# ----------------------------------------------------------------- clustering


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_clustering_finds_the_synthetic_nuclei(tile, method):
    mask = cluster_foreground(tile.image, method=method, n_clusters=3, seed=0)
    dice = pixel_scores(tile.label > 0, mask)[2]
    assert dice > 0.7, dice
    again = cluster_foreground(tile.image, method=method, n_clusters=3, seed=0)
    assert np.array_equal(mask, again)


def test_clustering_blank_and_bad_arguments():
    blank = np.full((32, 32, 3), 200, dtype=np.uint8)
    assert not cluster_foreground(blank).any()
    with pytest.raises(ValueError, match="method"):
        cluster_foreground(blank, method="dbscan")
    with pytest.raises(ValueError, match="at least 2"):
        cluster_foreground(blank, n_clusters=1)


def test_darkest_cluster_is_nucleus_whatever_the_cluster_order():
    image = np.full((20, 20, 3), 220, dtype=np.uint8)
    image[:, :10] = (60, 40, 110)
    for seed in range(4):  # cluster ids are arbitrary; the dark half must come out every time
        mask = cluster_foreground(image, method="gmm", n_clusters=2, seed=seed)
        assert mask[:, :10].all() and not mask[:, 10:].any()


# ----------------------------------------------------------------- watershed


def test_watershed_splits_touching_discs_and_keeps_separate_ones():
    image = np.full((80, 120, 3), 235, dtype=np.uint8)
    truth = np.zeros((80, 120), dtype=np.int32)
    for i, (r, c) in enumerate([(30, 30), (30, 49), (60, 95)], start=1):  # first two touch
        rr, cc = disk((r, c), 10, shape=truth.shape)
        truth[rr, cc] = i
        image[rr, cc] = (70, 50, 140)
    label = hematoxylin_watershed(image, min_size=20)
    assert label.max() == 3
    assert score(truth, label).aji > 0.85


def test_watershed_on_synthetic_tile_and_blank(tile):
    s = score(tile.label, hematoxylin_watershed(tile.image))
    assert s.dice > 0.7 and s.aji > 0.4, s
    assert hematoxylin_watershed(np.full((40, 40, 3), 240, np.uint8)).max() == 0


# ----------------------------------------------------------------- Kanezaki


def test_superpixel_refine_takes_the_majority_per_superpixel():
    labels = np.array([3, 3, 1, 0, 2, 2, 2, 1])
    superpixels = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    assert superpixel_refine(labels, superpixels, 4).tolist() == [3, 3, 3, 2, 2, 2, 2, 1]


def test_kanezaki_reduces_labels_and_is_deterministic(tile):
    crop = tile.image[:96, :96]
    a = kanezaki_labels(crop, channels=16, iterations=40, superpixel_area=32, seed=3)
    b = kanezaki_labels(crop, channels=16, iterations=40, superpixel_area=32, seed=3)
    assert np.array_equal(a, b)
    assert len(np.unique(a)) < 16
    mask = kanezaki_foreground(tile.image, channels=16, iterations=40, superpixel_area=32, seed=3)
    assert pixel_scores(tile.label > 0, mask)[2] > 0.6


def test_kanezaki_scale_returns_full_size_mask(tile):
    mask = kanezaki_foreground(tile.image, scale=0.5, channels=8, iterations=10, superpixel_area=16, seed=0)
    assert mask.shape == tile.image.shape[:2] and mask.dtype == bool


# ----------------------------------------------------------------- dispatcher


@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_segment_baseline_gives_instances(tile, method):
    label = segment_baseline(tile.image, method, FAST, seed=0)
    assert label.shape == tile.label.shape and label.dtype == np.int32
    ids = np.unique(label)
    assert ids[0] == 0 and np.array_equal(ids, np.arange(len(ids)))  # consecutive
    assert score(tile.label, label).dice > 0.5


def test_segment_baseline_unknown_method(tile):
    with pytest.raises(ValueError, match="unknown baseline"):
        segment_baseline(tile.image, "iic", FAST)


# ----------------------------------------------------------------- supervised U-Net


def test_supervised_patches_use_ground_truth_foreground():
    image = np.zeros((300, 260, 3), dtype=np.uint8)
    label = np.zeros((300, 260), dtype=np.int32)
    label[5:15, 5:15], label[200:210, 100:120] = 3, 9
    data = supervised_patches({"a": (image, label)}, size=128, stride=128)
    assert np.array_equal(data.soft["a"], (label > 0).astype(np.float32))
    assert set(np.unique(data.voronoi["a"])) == {0, 1}  # nothing ignored
    assert len(data.patches) == 3 * 3  # rows 0,128,172 x cols 0,128,132
    with pytest.raises(ValueError, match="image is 300x260 but its label 10x10"):
        supervised_patches({"a": (image, label[:10, :10])})


# ----------------------------------------------------------------- protocol


def test_summarise_runs_hand_computed():
    runs = [{"dice": 0.70, "aji": 0.40}, {"dice": 0.80, "aji": 0.30}, {"dice": 0.75, "aji": 0.50}]
    s = summarise_runs(runs, metrics=("dice", "aji"))
    assert s.mean["dice"] == pytest.approx(0.75) and s.mean["aji"] == pytest.approx(0.4)
    assert s.std["dice"] == pytest.approx(0.05) and s.std["aji"] == pytest.approx(0.1)
    assert s.best == {"dice": 0.80, "aji": 0.30} and s.runs == 3  # one run for every column
    assert summarise_runs(runs, metrics=("dice", "aji"), select="aji").best == {"dice": 0.75, "aji": 0.50}
    assert summarise_runs(runs[:1], metrics=("dice",)).std == {"dice": 0.0}
    with pytest.raises(ValueError):
        summarise_runs([])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("syn"), SyntheticConfig(n_train=2, n_test=2, shape=(160, 160)))


def test_evaluate_baseline_writes_scores_and_reuses_them(dataset, tmp_path):
    profile = dataclasses.replace(get_profile("smoke"), baselines=FAST)
    scores, directory = evaluate_baseline(dataset, tmp_path, "gmm", profile, seed=1, progress=False)
    names = [s.name for s in list_samples(dataset, "test")]
    assert scores.image.tolist() == names
    for name, row in zip(names, scores.itertuples()):  # the stored prediction is what was scored
        truth = read_label(dataset / "test" / "labels" / f"{name}.png")
        assert score(truth, read_label(directory / f"{name}.png")).dice == pytest.approx(row.dice)
    (directory / f"{names[0]}.png").unlink()  # a finished folder is read back, not recomputed
    again, _ = evaluate_baseline(dataset, tmp_path, "gmm", profile, seed=1, progress=False)
    pd.testing.assert_frame_equal(scores, again)
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate_baseline(dataset, tmp_path, "supervised", profile)


def test_supervised_baseline_trains_on_labels_and_beats_chance(dataset, tmp_path):
    profile = dataclasses.replace(
        get_profile("smoke"),
        pseudo=PseudoLabelConfig(patch_size=64, patch_stride=48),
        train=TrainConfig(depth=2, width=8, epochs=20, batch_size=6, lr=1e-2),
        inference=InferenceConfig(tile_overlap=16),
    )
    trainer, checkpoint = train_supervised(dataset, tmp_path, profile, progress=False)
    assert checkpoint.is_file() and trainer.epoch == 20
    scores, folder = evaluate_supervised(dataset, tmp_path, profile, trainer, progress=False)
    assert len(scores) == 2 and scores.dice.mean() > 0.6
    split, split_folder = evaluate_supervised(dataset, tmp_path, profile, trainer, method="distance", progress=False)
    assert split_folder != folder and len(split) == 2
    name = scores.image.iloc[0]
    prob = predict_probability(trainer.model, read_image(dataset / "test" / "images" / f"{name}.png"), tile=64,
                               overlap=16, device=trainer.device)
    for method, where in (("cc", folder), ("distance", split_folder)):
        expected = instances(prob, method=method, min_size=profile.inference.min_size)
        np.testing.assert_array_equal(read_label(where / f"{name}.png"), expected)
    resumed, _ = train_supervised(dataset, tmp_path, profile, progress=False)  # finished: loaded, not retrained
    assert resumed.history == trainer.history


def test_run_methods_repeats_with_successive_seeds(dataset, tmp_path):
    profile = dataclasses.replace(get_profile("smoke"), baselines=FAST)
    runs = run_methods(dataset, tmp_path, profile, ["mkmeans", "watershed"], seed=4, progress=False)
    assert len(runs["mkmeans"].scores) == 2 and len(runs["watershed"].scores) == 1  # deterministic: once
    for r, folder in enumerate(runs["mkmeans"].folders):  # run r is seed 4 + r
        _, same = evaluate_baseline(dataset, tmp_path, "mkmeans", profile, seed=4 + r, progress=False)
        assert same == folder
    means = runs["mkmeans"].means()
    assert means[0]["dice"] == pytest.approx(runs["mkmeans"].scores[0].dice.mean())
    assert runs["watershed"].seconds == pytest.approx(runs["watershed"].scores[0].seconds.sum())
    with pytest.raises(ValueError, match="unknown method"):
        run_methods(dataset, tmp_path, profile, ["iic"])


def test_comparison_table_and_discrepancies():
    ours = summarise_runs([{"precision": 0.5, "recall": 0.9, "dice": 0.6, "aji": 0.3},
                           {"precision": 0.7, "recall": 0.7, "dice": 0.7, "aji": 0.2}])
    reported = {"GMM": {"precision": (63.1, 15.0, 66.4), "recall": (82.2, 10.9, 81.9), "dice": (69.5, 8.5, 71.7), "aji": (29.0, 15.1, 31.9)},
                "DIC": {"precision": 1.0, "recall": 2.0, "dice": 3.0, "aji": 4.0}}
    table = comparison_table({"GMM": ours, "Mine": ours}, reported)
    assert table.method.tolist() == ["GMM", "GMM", "DIC", "Mine"]
    assert table.source.tolist() == ["reported", "reproduced (2 runs)", "reported", "reproduced (2 runs)"]
    assert table.iloc[1].dice == "65.0 ± 7.1 (70.0)" and table.iloc[0].aji == "29.0 ± 15.1 (31.9)" and table.iloc[2].dice == "3.0"
    assert discrepancies({"GMM": ours}, reported).empty  # every gap within the paper's wide deviations
    far = summarise_runs([{"precision": 0.1, "recall": 0.1, "dice": 0.1, "aji": 0.1}])
    gaps = discrepancies({"DIC": far, "Mine": far}, reported)
    assert gaps.metric.tolist() == ["precision", "recall", "dice", "aji"] and gaps.difference.tolist() == [9.0, 8.0, 7.0, 6.0]


def test_crowded_window_matches_brute_force():
    rng = np.random.default_rng(0)
    label = (rng.random((30, 40)) < 0.5) * rng.integers(1, 4, size=(30, 40))
    rows, cols = crowded_window(label, 7)
    touch = np.zeros(label.shape, dtype=bool)
    for r in range(30):
        for c in range(40):
            for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < 30 and 0 <= cc < 40 and label[r, c] and label[rr, cc] and label[r, c] != label[rr, cc]:
                    touch[r, c] = True
    counts = [[touch[r:r + 7, c:c + 7].sum() for c in range(34)] for r in range(24)]
    assert touch[rows, cols].sum() == np.max(counts)
    assert (rows.stop - rows.start, cols.stop - cols.start) == (7, 7)


def test_a_run_directory_keys_results_by_image_content_not_names(dataset, tmp_path):
    profile = dataclasses.replace(get_profile("smoke"), baselines=FAST)
    first, folder = evaluate_baseline(dataset, tmp_path / "run", "watershed", profile, progress=False)
    other = tmp_path / "other"  # the same file names, other pixels
    shutil.copytree(dataset, other)
    for sample in list_samples(other, "test"):
        tile = synthetic_tile((160, 160), seed=77 + int(sample.name[-1]))
        write_image(sample.image_path, tile.image)
        write_label(sample.label_path, tile.label)
    second, other_folder = evaluate_baseline(other, tmp_path / "run", "watershed", profile, progress=False)
    fresh, _ = evaluate_baseline(other, tmp_path / "fresh", "watershed", profile, progress=False)
    assert other_folder != folder
    assert_frame_equal(second.drop(columns="seconds"), fresh.drop(columns="seconds"))
    assert not np.allclose(second.aji, first.aji)
    moved = tmp_path / "moved"  # the same images elsewhere are the same source
    shutil.copytree(dataset, moved)
    again, again_folder = evaluate_baseline(moved, tmp_path / "run", "watershed", profile, progress=False)
    assert again_folder == folder and len(again) == 2
