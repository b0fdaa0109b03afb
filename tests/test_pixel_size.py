"""The label-free pixel-size check: the nuclei's scale, the decision it makes, and segment acting on it."""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from skimage.draw import disk

from ssimnet import Segmenter
from ssimnet.cli import main
from ssimnet.config import NETWORK_MPP, TOOL_INFERENCE, get_profile
from ssimnet.data import read_label, write_image
from ssimnet.errors import SegmentationWarning
from ssimnet.runs.pixel_choice import choose_enlarge_below, enlarge_outcome, references
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.pixel_size import SIGMAS, estimate_mpp, median_area, nucleus_sigma, training_references


def _discs(radius: float, side: int = 192) -> np.ndarray:
    """Purple discs of `radius` on a pale background, a grid of them."""
    image = np.full((side, side, 3), 235, np.uint8)
    step = int(4 * radius)
    for r in range(step // 2, side - step // 2 + 1, step):
        for c in range(step // 2, side - step // 2 + 1, step):
            image[disk((r, c), radius, shape=image.shape[:2])] = (70, 40, 140)
    return image


@pytest.mark.parametrize("radius", [5.0, 8.0, 12.0])
def test_nucleus_sigma_is_the_grid_scale_nearest_a_disc_radius_over_root_two(radius):
    sigma = nucleus_sigma(_discs(radius))
    nearest = min(SIGMAS, key=lambda s: abs(np.log(s / (radius / np.sqrt(2)))))
    assert sigma == pytest.approx(nearest)
    # the same discs at half the size: a scale half as large, one octave (four grid steps) down
    half = nucleus_sigma(_discs(radius)[::2, ::2].copy())
    assert SIGMAS.index(half) == pytest.approx(SIGMAS.index(sigma) - 4, abs=1)


def test_no_blobs_no_scale_and_no_enlargement():
    assert nucleus_sigma(np.full((64, 64, 3), 200, np.uint8)) is None
    assert nucleus_sigma(np.full((1, 1, 3), 200, np.uint8)) is None  # nothing left after 2x2 pooling
    kw = {"nucleus_scale": 6.7, "nucleus_area": 400.0, "enlarge_below": 0.7, "area_below": 0.6, "network_mpp": 0.25}
    assert estimate_mpp(None, 0.0, **kw) is None
    flat = [np.full((64, 64, 3), 200, np.uint8)]
    assert training_references(flat, lambda image: np.zeros(image.shape[:2], int)) == (None, None)


def test_estimate_mpp_enlarges_only_when_both_measures_are_below_their_fractions():
    kw = {"nucleus_scale": 8.0, "nucleus_area": 400.0, "enlarge_below": 0.5, "area_below": 0.6, "network_mpp": 0.25}
    assert estimate_mpp(3.99, 239.0, **kw) == 0.5
    assert estimate_mpp(4.0, 239.0, **kw) is None  # the scale at its threshold: as it is
    assert estimate_mpp(3.99, 240.0, **kw) is None  # the area at its threshold: as it is
    assert estimate_mpp(20.0, 20.0, **kw) is None  # large in the stain: never enlarged, whatever the network found
    assert estimate_mpp(2.0, 4000.0, **kw) is None  # a grainy stain, nuclei the network finds large: as it is


def test_median_area_and_training_references():
    label = np.zeros((10, 10), int)
    label[:2, :2], label[5:, 5:], label[0, 9] = 1, 2, 3  # areas 4, 25, 1
    assert median_area(label) == 4.0 and median_area(np.zeros((3, 3), int)) == 0.0
    images = [_discs(5.0), _discs(8.0), _discs(12.0)]
    seen = []
    scale, area = training_references(images, lambda image: seen.append(image.shape) or label * (len(seen) > 1))
    assert scale == pytest.approx(nucleus_sigma(images[1])) and len(seen) == 3
    assert area == 4.0  # median of 0 (no nuclei), 4 and 4


def test_mpp_auto_enlarges_a_half_size_tile_as_an_explicit_mpp_does_and_leaves_a_full_size_one():
    segmenter = Segmenter.pretrained()
    assert (segmenter.settings.nucleus_scale, segmenter.settings.nucleus_area) == (
        TOOL_INFERENCE.nucleus_scale, TOOL_INFERENCE.nucleus_area)  # what the shipped network carries
    tile = synthetic_tile((256, 256), seed=0).image
    half = np.ascontiguousarray(tile[::2, ::2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SegmentationWarning)
        full_result = segmenter.segment(tile, measure=False, mpp="auto")
        assert not caught  # nuclei of the size it learned: no warning
        half_result = segmenter.segment(half, measure=False, mpp="auto")
        as_is = segmenter.segment(half, measure=False)  # the default: as it is, whatever its nuclei
    assert len(caught) == 1 and "nuclei look half the size" in str(caught[0].message)
    assert full_result.mpp is None and half_result.mpp == 2 * NETWORK_MPP and as_is.mpp is None
    assert np.array_equal(full_result.labels, segmenter.segment(tile, measure=False).labels)
    told = segmenter.segment(half, measure=False, mpp=2 * NETWORK_MPP)
    assert np.array_equal(half_result.labels, told.labels)  # the same pixels as --mpp 0.5
    assert not np.array_equal(as_is.labels, half_result.labels)  # the check changed something
    # either measure alone does not enlarge: the network's nuclei must look small too
    large = segmenter.segment(half, measure=False, mpp="auto",
                              nucleus_area=median_area(as_is.labels) / TOOL_INFERENCE.area_below)
    assert large.mpp is None and np.array_equal(large.labels, as_is.labels)
    with pytest.raises(ValueError, match="carries no nucleus_scale and nucleus_area"):
        segmenter.segment(half, mpp="auto", nucleus_area=None)


def test_segment_mpp_auto_records_the_pixel_size_it_used(tmp_path, capsys):
    tile = synthetic_tile((256, 256), seed=0).image
    write_image(tmp_path / "full.png", tile)
    write_image(tmp_path / "half.png", np.ascontiguousarray(tile[::2, ::2]))
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "full.png"), str(tmp_path / "half.png"), "--out", str(out), "--quiet",
                 "--workers", "1", "--mpp", "auto"]) == 0
    with open(out / "summary.csv") as f:
        rows = {row["image"]: row["mpp"] for row in csv.DictReader(f)}
    assert rows == {"full": "", "half": str(2 * NETWORK_MPP)}
    summary = json.loads((out / "half_summary.json").read_text())
    assert summary["mpp"] == 2 * NETWORK_MPP and any("nuclei look half the size" in w for w in summary["warnings"])
    assert summary["settings"]["mpp"] == "auto"
    assert read_label(out / "half_label.png").shape == (128, 128)  # on the image's own grid
    told, plain = tmp_path / "told", tmp_path / "plain"
    assert main(["segment", str(tmp_path / "half.png"), "--out", str(told), "--quiet", "--mpp",
                 str(2 * NETWORK_MPP)]) == 0
    assert np.array_equal(read_label(told / "half_label.png"), read_label(out / "half_label.png"))
    assert main(["segment", str(tmp_path / "half.png"), "--out", str(plain), "--quiet"]) == 0  # the default
    assert json.loads((plain / "half_summary.json").read_text())["mpp"] is None


def test_segment_mpp_auto_needs_a_network_with_references(tmp_path, capsys):
    from ssimnet.net.checkpoint import save_model
    from ssimnet.net.train import Trainer

    model = tmp_path / "net.pt"
    smoke = get_profile("smoke").for_tool()
    save_model(model, Trainer.new(smoke.train, device="cpu").state(), asdict(smoke.inference) | {
        "nucleus_scale": None, "nucleus_area": None})
    write_image(tmp_path / "a.png", synthetic_tile((64, 64), seed=0).image)
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "o"), "--model", str(model),
                 "--profile", "smoke", "--mpp", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ssimnet: error: {model}: --mpp auto compares") and "\n" not in err
    assert not (tmp_path / "o").exists()


def _rows() -> pd.DataFrame:
    """Three images: a (large nuclei) better as it is, b (small) better enlarged, c (no blobs), d (a grainy
    stain: small scale, but nuclei the network finds large) better as it is."""
    rows = []
    for image, sigma, area, as_is, twice in (("a", 8.0, 400.0, 0.6, 0.3), ("b", 3.0, 100.0, 0.2, 0.5),
                                             ("c", np.nan, 0.0, 0.4, 0.1), ("d", 3.0, 400.0, 0.5, 0.2)):
        for way, aji in (("as it is", as_is), ("enlarged twice", twice)):
            rows.append({"image": image, "transform": "none", "sigma": sigma, "area": area, "way": way, "aji": aji})
    rows += [{"image": "a", "transform": "half resolution", "sigma": 4.0, "area": 150.0, "way": way, "aji": aji}
             for way, aji in (("as it is", 0.2), ("enlarged twice", 0.5))]
    return pd.DataFrame(rows)


def test_enlarge_outcome_and_the_choice_by_hand():
    rows = _rows()
    assert references(rows) == (3.0, 250.0)  # medians of 8, 3, 3 (c has no scale) and of 400, 100, 0, 400
    out = enlarge_outcome(rows, scale=3.0, area=250.0, enlarge_below=1.2, area_below=0.5)  # below 3.6, 125: b
    assert out.to_dict() == pytest.approx({"none": (0.6 + 0.5 + 0.4 + 0.5) / 4, "half resolution": 0.2})
    out = enlarge_outcome(rows, scale=3.0, area=250.0, enlarge_below=1.4, area_below=0.7)  # below 4.2, 175: a halved
    assert out.to_dict() == pytest.approx({"none": (0.6 + 0.5 + 0.4 + 0.5) / 4, "half resolution": 0.5})
    out = enlarge_outcome(rows, scale=3.0, area=250.0, enlarge_below=1.4, area_below=2.0)  # d too: it loses
    assert out["none"] == pytest.approx((0.6 + 0.5 + 0.4 + 0.2) / 4)
    grid = {"enlarge_below": (0.9, 1.2, 1.4, 2.0, 3.0), "area_below": (0.5, 0.7, 2.0)}
    best, means = choose_enlarge_below(rows, scale=3.0, area=250.0, grid=grid)
    # b and the halved a, not d: scale fractions 1.4-3.0 with the area's 0.7 (2.0 takes d as well); the middle
    assert best == {"enlarge_below": 2.0, "area_below": 0.7} and means[1.4, 0.7] == means[3.0, 0.7]
    assert means[1.4, 0.7] > means[1.2, 0.7] > means[0.9, 0.7] and means[1.4, 2.0] < means[1.4, 0.7]


def test_the_pixel_size_check_s_settings_are_the_choice_on_the_committed_training_rows():
    """TRAINING_NUCLEUS_SCALE, TRAINING_NUCLEUS_AREA, ENLARGE_BELOW and AREA_BELOW are computed from
    results/cpu/pixel_size_selection_*, not typed: chosen on training images only, and the check raised the
    mean training AJI over never enlarging, without lowering it on the images as they are."""
    from pathlib import Path

    from ssimnet.book.results import PIXEL_SIZE_SELECTION, load_results
    from ssimnet.config import AREA_BELOW, ENLARGE_BELOW, TRAINING_NUCLEUS_AREA, TRAINING_NUCLEUS_SCALE

    rows, info = load_results(Path(__file__).resolve().parents[1] / "results" / "cpu", kind=PIXEL_SIZE_SELECTION)
    assert info["split"].startswith("train") and set(rows["dataset"]) == {"monuseg train"}
    assert set(rows["way"]) == {"as it is", "enlarged twice"}
    assert rows[rows["transform"] == "none"]["image"].nunique() == len(info["images"])  # every one as it is
    scale, area = references(rows)  # as the rows keep them: to six decimals, as the rows' own scales
    assert (scale, area) == pytest.approx((TRAINING_NUCLEUS_SCALE, TRAINING_NUCLEUS_AREA), abs=5e-7)
    best, means = choose_enlarge_below(rows, scale=scale, area=area)
    assert best == {"enlarge_below": ENLARGE_BELOW, "area_below": AREA_BELOW}
    refs = {"scale": scale, "area": area}
    never = enlarge_outcome(rows, **refs, enlarge_below=1.0, area_below=0.0)
    checked = enlarge_outcome(rows, **refs, **best)
    assert checked.mean() > never.mean() and checked["none"] >= never["none"]
    assert (TOOL_INFERENCE.nucleus_scale, TOOL_INFERENCE.nucleus_area, TOOL_INFERENCE.enlarge_below,
            TOOL_INFERENCE.area_below) == (TRAINING_NUCLEUS_SCALE, TRAINING_NUCLEUS_AREA, ENLARGE_BELOW, AREA_BELOW)
