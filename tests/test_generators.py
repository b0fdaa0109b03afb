"""Candidate generators beyond the paper: each against synthetic ground truth, and the paper's path unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from skimage.color import rgb2hed

from ssimnet.config import PseudoLabelConfig
from ssimnet.metrics import pixel_scores
from ssimnet.pseudo import pseudo_labels
from ssimnet.pseudo.candidates import candidate_maps, label_candidates
from ssimnet.pseudo.generators import CANDIDATE_METHODS, generate_candidates, otsu_mask
from ssimnet.pseudo.stain import VahadaneSeparator, hematoxylin_image
from ssimnet.synthetic import synthetic_tile

CONFIG = PseudoLabelConfig(patch_size=128, patch_stride=64)


@pytest.fixture(scope="module")
def tile():
    tile = synthetic_tile((256, 256), seed=4)
    separator = VahadaneSeparator.from_config(CONFIG).fit(tile.image)
    density = separator.transform(tile.image)
    return tile, density[..., 0], hematoxylin_image(density, separator.stain_matrix_)


@pytest.mark.parametrize("method", CANDIDATE_METHODS)
def test_every_generator_finds_the_synthetic_nuclei_and_is_deterministic(method, tile):
    tile, density, hematoxylin = tile
    kwargs = dict(density=density, config=CONFIG, image=tile.image, hematoxylin=hematoxylin, seed=0)
    raw, P = generate_candidates(method, **kwargs)
    assert raw.shape == P.shape == tile.label.shape and P.dtype == bool
    assert pixel_scores(tile.label > 0, P)[2] > 0.7
    again = generate_candidates(method, **kwargs)
    assert np.array_equal(again.candidates, P) and np.array_equal(again.fcm, raw)


def test_fcm_is_the_papers_eq3_and_the_default(tile):
    tile, density, hematoxylin = tile
    assert CONFIG.candidate_method == "fcm"
    paper = candidate_maps(hematoxylin, CONFIG, seed=0)
    got = generate_candidates("fcm", density=density, config=CONFIG, hematoxylin=hematoxylin, seed=0)
    assert np.array_equal(got.candidates, paper.candidates) and np.array_equal(got.fcm, paper.fcm)
    assert np.array_equal(pseudo_labels(tile.image, CONFIG, seed=0).candidates, paper.candidates)


def test_consensus_is_the_majority_of_the_three_masks(tile):
    tile, density, hematoxylin = tile
    votes = (candidate_maps(hematoxylin, CONFIG, seed=0).candidates.astype(int)
             + otsu_mask(density, sigma=CONFIG.threshold_sigma)
             + otsu_mask(rgb2hed(tile.image)[..., 0], sigma=CONFIG.threshold_sigma))
    raw, _ = generate_candidates("consensus", density=density, config=CONFIG, image=tile.image,
                                 hematoxylin=hematoxylin, seed=0)
    assert np.array_equal(raw, votes >= 2)


def test_watershed_splits_what_otsu_joins_and_leaves_no_two_nuclei_touching(tile):
    tile, density, _ = tile
    otsu = generate_candidates("otsu", density=density, config=CONFIG).candidates
    split = generate_candidates("watershed", density=density, config=CONFIG).candidates
    assert label_candidates(split).max() > label_candidates(otsu).max()
    assert not (split & ~otsu).any()  # only gaps are taken away


def test_bad_method_or_missing_input_is_refused(tile):
    _, density, _ = tile
    with pytest.raises(ValueError, match="candidate method must be one of"):
        generate_candidates("kmeans", density=density, config=CONFIG)
    with pytest.raises(ValueError, match="needs the hematoxylin image"):
        generate_candidates("fcm", density=density, config=CONFIG)
    with pytest.raises(ValueError, match="needs the RGB image"):
        generate_candidates("otsu_ruifrok", density=density, config=CONFIG)


def test_pseudo_labels_with_another_generator_carry_it_through_every_stage(tile):
    tile, _, _ = tile
    result = pseudo_labels(tile.image, dataclasses.replace(CONFIG, candidate_method="watershed"), seed=0)
    components = label_candidates(result.candidates).max()
    assert components > 0 and (result.soft[result.candidates] >= 0.5).all() and (result.soft[~result.candidates] == 0).all()
    assert sum(p.n_components for p in result.patches) >= components  # USMI sees the split nuclei


def test_candidate_study_scores_every_generator_on_the_split(tmp_path):
    from ssimnet.book.report import candidate_table
    from ssimnet.config import get_profile
    from ssimnet.data import write_image, write_label
    from ssimnet.runs.experiments import candidate_study

    for i in range(2):
        tile = synthetic_tile((128, 128), seed=20 + i)
        write_image(tmp_path / "data" / "train" / "images" / f"t{i}.png", tile.image)
        write_label(tmp_path / "data" / "train" / "labels" / f"t{i}.png", tile.label)
    profile = dataclasses.replace(get_profile("smoke"), pseudo=CONFIG)
    study = candidate_study(tmp_path / "data", tmp_path / "run", profile, ("fcm", "watershed"), progress=False)
    assert study[["candidates", "image"]].values.tolist() == [["fcm", "t0"], ["fcm", "t1"], ["watershed", "t0"],
                                                              ["watershed", "t1"]]
    assert study[["dice", "aji", "pq"]].apply(lambda c: c.between(0, 1)).all().all()
    table = candidate_table(study)
    assert table.loc["fcm", "aji"] == pytest.approx(100 * study[study.candidates == "fcm"].aji.mean(), abs=0.05)
    assert table.chosen.sum() == 1 and table.loc[table.chosen].aji.iloc[0] == table.aji.max()


def test_committed_candidate_study_covers_the_monuseg_training_split():
    from pathlib import Path

    from ssimnet.book.report import candidate_table
    from ssimnet.book.results import CANDIDATES, load_results

    per_image, info = load_results(Path(__file__).resolve().parents[1] / "results" / "cpu", kind=CANDIDATES)
    assert info["profile"] == "cpu" and info["data"]["name"] == "monuseg"
    assert per_image.groupby("candidates").image.nunique().to_dict() == {m: 30 for m in CANDIDATE_METHODS}
    table = candidate_table(per_image)
    assert table.index[table.chosen].tolist() == ["watershed"] and table.loc["fcm", "aji"] < table.loc["watershed", "aji"]
