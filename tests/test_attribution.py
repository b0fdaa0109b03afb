"""The oracle diagnostics of the attribution study (ssimnet.runs.attribution), on synthetic ground truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from ssimnet.config import PseudoLabelConfig
from ssimnet.data import write_image, write_label
from ssimnet.pseudo.labels import labels_from_candidates, pseudo_labels
from ssimnet.pseudo.voronoi import NUCLEUS, candidate_points, voronoi_from_points, voronoi_label
from ssimnet.runs.attribution import (
    ORACLES,
    build_oracle_labels,
    instance_points,
    merged_candidates,
    oracle_labels,
    split_instances,
)
from ssimnet.runs.pipeline import build_pseudo_labels
from ssimnet.runs.store import load_pseudo_labels
from ssimnet.synthetic import synthetic_tile

EIGHT = np.ones((3, 3))
CONFIG = PseudoLabelConfig()


def touching_pairs() -> np.ndarray:
    """Three instances: 1 and 2 share a vertical border, 3 stands alone."""
    truth = np.zeros((40, 60), np.int32)
    truth[10:20, 5:15] = 1
    truth[10:20, 15:25] = 2
    truth[25:35, 40:50] = 3
    return truth


def test_split_instances_makes_every_instance_its_own_component_and_leaves_lone_ones_whole():
    truth = touching_pairs()
    split = split_instances(truth)
    labels, n = ndi.label(split, structure=EIGHT)
    assert n == 3
    assert not (split & (truth == 0)).any()
    assert (split == (truth > 0))[truth == 3].all()  # nothing of the lone one is removed
    # exactly the two columns where 1 and 2 meet go
    assert np.array_equal(np.flatnonzero((truth > 0).sum(0) != split.sum(0)), [14, 15])
    # a synthetic tile: as many components as instances (none merges), never more
    tile = synthetic_tile((128, 128), seed=3)
    assert ndi.label(split_instances(tile.label), structure=EIGHT)[1] == len(np.unique(tile.label)) - 1


def test_merged_candidates_counts_the_true_instances_each_candidate_covers():
    truth = touching_pairs()
    candidates = truth > 0  # 1 and 2 merged into one candidate, 3 alone
    assert sorted(merged_candidates(candidates, truth).tolist()) == [1, 2]
    assert merged_candidates(split_instances(truth), truth).tolist() == [1, 1, 1]
    assert merged_candidates(np.zeros_like(candidates), truth).size == 0


def test_instance_points_are_the_centroids_and_voronoi_from_points_matches_voronoi_label():
    truth = touching_pairs()
    # centroids 14.5, 9.5, 19.5, 29.5, 44.5: rounded half to even
    assert instance_points(truth).tolist() == [[14, 10], [14, 20], [30, 44]]
    tile = synthetic_tile((128, 128), seed=1)
    mask = tile.label > 0
    assert np.array_equal(voronoi_label(mask, point_radius=2),
                          voronoi_from_points(candidate_points(mask), mask.shape, point_radius=2))
    # ... and differs once the points differ: the equivalence can fail
    assert not np.array_equal(voronoi_label(mask, point_radius=2),
                              voronoi_from_points(instance_points(tile.label), mask.shape, point_radius=2))


@pytest.fixture(scope="module")
def tile_and_own():
    tile = synthetic_tile((256, 256), seed=5)
    return tile, pseudo_labels(tile.image, CONFIG, seed=0)


@pytest.mark.parametrize("oracle", ORACLES)
def test_each_oracle_replaces_only_its_stage(tile_and_own, oracle):
    tile, own = tile_and_own
    got = oracle_labels(own, tile.label, oracle, CONFIG)
    same = lambda field: np.array_equal(getattr(got, field), getattr(own, field))  # noqa: E731
    assert same("hematoxylin") and same("stains") and same("fcm")
    if oracle == "candidates":
        expected = labels_from_candidates(tile.label > 0, CONFIG)
        assert np.array_equal(got.candidates, tile.label > 0) and np.array_equal(got.soft, expected["soft"])
        assert np.array_equal(got.voronoi, expected["voronoi"]) and got.patches == expected["patches"]
    elif oracle == "centres":
        assert same("candidates") and same("soft") and got.patches == own.patches
        points = instance_points(tile.label)
        assert (got.voronoi[points[:, 0], points[:, 1]] == NUCLEUS).all()
        assert not same("voronoi")
    elif oracle == "purification":
        assert same("candidates") and same("soft") and same("voronoi")
        (r, c), size = got.patches[0].corner, CONFIG.patch_size
        window = (slice(r, r + size), slice(c, c + size))
        merged = int((merged_candidates(own.candidates[window], tile.label[window]) >= 2).sum())
        assert got.patches[0].usmi == merged and got.patches[0].n_components == own.patches[0].n_components
    else:
        assert np.array_equal(got.candidates, split_instances(tile.label))
        assert ndi.label(got.candidates, structure=EIGHT)[1] == len(np.unique(tile.label)) - 1
        assert np.array_equal(got.soft, labels_from_candidates(got.candidates, CONFIG)["soft"])


def test_oracle_labels_refuse_an_unknown_oracle_or_a_mismatched_truth(tile_and_own):
    tile, own = tile_and_own
    with pytest.raises(ValueError, match="unknown oracle"):
        oracle_labels(own, tile.label, "everything", CONFIG)
    with pytest.raises(ValueError, match="shape"):
        oracle_labels(own, tile.label[:100], "candidates", CONFIG)


def test_build_oracle_labels_stores_a_purified_set_beside_the_label_free_one(tmp_path):
    config = replace(CONFIG, keep_fraction=0.5)
    for k in range(2):
        tile = synthetic_tile((300, 300), seed=10 + k)
        write_image(tmp_path / "data" / "train" / "images" / f"t{k}.png", tile.image)
        write_label(tmp_path / "data" / "train" / "labels" / f"t{k}.png", tile.label)
    data, run = tmp_path / "data", tmp_path / "run"
    oracle = build_oracle_labels(data, run, config, "purification", progress=False)
    own = build_pseudo_labels(data, run, config, progress=False)
    assert oracle.directory != own.directory and oracle.directory.name.startswith("oracle-purification-")
    assert oracle.n_patches == own.n_patches == 8 and len(oracle.kept) == 4
    scores = {(name, *p.corner): p.usmi for name in oracle.names for p in load_pseudo_labels(oracle.path(name)).patches}
    kept = [scores[k] for k in oracle.kept]
    assert max(kept) <= min(v for k, v in scores.items() if k not in oracle.kept)  # the least merged are kept
    stamp = oracle.path("t0").stat().st_mtime_ns
    assert build_oracle_labels(data, run, config, "purification", progress=False).kept == oracle.kept
    assert oracle.path("t0").stat().st_mtime_ns == stamp  # read back, not recomputed


def test_pooled_aji_sums_every_image_before_dividing(tmp_path):
    from ssimnet.book.attribution import attribution_table
    from ssimnet.runs.experiments import pooled_aji_terms

    truth = [np.array([[1, 1, 2, 2]]), np.array([[0, 3, 3, 0]])]
    pred = [np.array([[1, 1, 1, 1]]), np.array([[0, 0, 5, 0]])]  # C/U = 4/8 and 1/2
    for k, (t, p) in enumerate(zip(truth, pred)):
        write_image(tmp_path / "data" / "test" / "images" / f"i{k}.png", np.zeros((1, 4, 3), np.uint8))
        write_label(tmp_path / "data" / "test" / "labels" / f"i{k}.png", t)
        write_label(tmp_path / "pred" / f"i{k}.png", p)
    terms = pooled_aji_terms(tmp_path / "pred", tmp_path / "data", "test")
    assert terms[["aji_intersection", "aji_union"]].values.tolist() == [[4, 8], [1, 2]]
    frame = pd.DataFrame({"config": "reproduction", "oracle": False, "finetune": 0, "seed": 0, "image": ["i0", "i1"],
                          "aji": [0.5, 0.5]}).merge(terms, on="image")
    assert attribution_table(frame, finetune=False).loc["reproduction", "pooled aji"] == 50.0  # 5 / 10
    frame.loc[1, ["aji_intersection", "aji_union"]] = [1, 10]  # per-image mean unchanged, pooled 5 / 18
    assert attribution_table(frame, finetune=False).loc["reproduction", "pooled aji"] == round(500 / 18, 1)


def test_committed_attribution_results_name_every_oracle_row_and_load():
    from ssimnet.book.attribution import attribution_table
    from ssimnet.book.results import ATTRIBUTION, ATTRIBUTION_READINGS, load_results

    root = Path(__file__).resolve().parents[1] / "results" / "cpu"
    per_image, info = load_results(root, kind=ATTRIBUTION)
    assert (per_image["oracle"] == per_image["config"].str.startswith("oracle: ")).all()
    assert "never a default" in info["note"]
    table = attribution_table(per_image, finetune=True)
    assert table.loc["reproduction", "change"] == 0.0
    assert per_image.groupby(["config", "finetune", "seed"]).size().eq(14).all()  # every test image, every row
    readings, info = load_results(root, kind=ATTRIBUTION_READINGS)
    chosen = info["chosen"]["cc"]
    train = readings[(readings.split == "train") & (readings.finetune == 0)].groupby("config")["aji"].mean()
    assert train.idxmax() == chosen  # chosen on the training images
    assert set(readings.loc[readings.split == "test", "config"]) == {chosen}  # and only it scored on test


def test_attribution_change_is_paired_seed_by_seed_and_scores_show_the_spread():
    from ssimnet.book.attribution import attribution_scores, attribution_table

    rows = []
    for config, values in (("reproduction", {0: .38, 1: .40, 2: .42}), ("oracle: c", {0: .45}),
                           ("x", {0: .40, 1: .40, 2: .46})):
        for seed, value in values.items():
            rows.append({"config": config, "oracle": config.startswith("oracle"), "finetune": 5, "seed": seed,
                         "image": "a", "aji": value, "dice": value})
    frame = pd.DataFrame(rows)
    table = attribution_table(frame, finetune=True)
    # The one-seed oracle is compared with the reproduction's seed 0 (38), not with its mean over seeds (40).
    assert table.loc["oracle: c", "change"] == 7.0 and table.loc["oracle: c", "share of the gap"] == round(7 / 11.8, 2)
    assert table.loc["x", "change"] == 2.0 and table.loc["x", "change sd"] == 2.0  # differences 2, 0, 4
    assert table.loc["reproduction", "aji"] == 40.0 and table.loc["reproduction", "sd over seeds"] == 2.0
    scores = attribution_scores(frame, finetune=True, metrics=("aji",))
    assert scores["aji"].tolist() == ["40.0 ± 2.0", "45.0", "42.0 ± 3.5"]


def test_committed_candidate_readings_chosen_on_training_candidates_and_only_it_on_test():
    from ssimnet.book.results import ATTRIBUTION_CANDIDATES, load_results

    root = Path(__file__).resolve().parents[1] / "results" / "cpu"
    per_image, info = load_results(root, kind=ATTRIBUTION_CANDIDATES)
    train = per_image[per_image.scored == "candidates"]
    assert set(train.split) == {"train"} and train.groupby(["reading", "config"]).size().eq(30).all()
    for reading in ("fcm", "contour"):
        means = (train[train.reading == reading].groupby("config", sort=False).aji.mean() * 100).round(1)
        assert means.idxmax() == info["chosen"][reading]  # the highest, a tie to the one listed first
    assert info["chosen"]["contour"] in set(train.loc[train.reading == "contour", "config"])
    tested = per_image[per_image.scored == "network"]
    assert set(tested.split) == {"test"} and set(tested.config) == {info["chosen"]["contour"]}
    assert tested.groupby("finetune").size().eq(14).all()



def test_committed_finetune_readings_chosen_on_held_out_images_and_scored_on_test():
    from ssimnet.book.results import ATTRIBUTION_FINETUNE, load_results

    root = Path(__file__).resolve().parents[1] / "results" / "cpu"
    per_image, info = load_results(root, kind=ATTRIBUTION_FINETUNE)
    held = per_image[per_image.split == "heldout"]
    assert sorted(held.image.unique()) == info["held_out"] and len(info["held_out"]) == 6
    assert (held.groupby("config", sort=False).aji.mean() * 100).round(1).idxmax() == info["chosen"]
    tested = per_image[per_image.split == "test"]
    assert set(tested.config) <= {"no fine-tuning", info["profile_config"], info["chosen"]}
    assert not set(tested.image) & set(held.image)  # held-out images are training images, never test ones


def test_committed_training_readings_chosen_on_held_out_images_and_each_changes_one_detail(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "studies"))
    from attribution_training import READINGS, profile_reading, readings

    from ssimnet.book.results import ATTRIBUTION_TRAINING, load_results
    from ssimnet.config import get_profile, key_fields

    root = Path(__file__).resolve().parents[1] / "results" / "cpu"
    per_image, info = load_results(root, kind=ATTRIBUTION_TRAINING)
    profile = get_profile(info["profile"])
    held = per_image[per_image.split == "heldout"]
    assert list(held.config.unique()) == [profile_reading(profile), *READINGS]  # every reading, the profile's first
    assert held.groupby("config").size().eq(6).all() and (held.finetune == 0).all()
    assert (held.groupby("config", sort=False).aji.mean() * 100).round(1).idxmax() == info["chosen"]
    tested = per_image[per_image.split == "test"]
    assert set(tested.config) <= {info["chosen"]} - {profile_reading(profile)}  # only a new chosen reading on test
    # each reading differs from the profile in exactly one setting
    base = {**key_fields(profile.pseudo), **key_fields(profile.train)}
    for name, reading in list(readings(profile).items())[1:]:
        changed = {k for k, v in {**key_fields(reading.pseudo), **key_fields(reading.train)}.items() if base[k] != v}
        assert len(changed) == 1, (name, changed)
