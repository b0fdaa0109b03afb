"""Candidate nuclei (Eq. 3) and label softening (Eq. 4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.draw import disk, ellipse

from ssimnet.metrics import pixel_scores
from ssimnet.pseudo.candidates import candidate_nuclei, fuzzy_cmeans_mask, refine_candidates
from ssimnet.pseudo.soften import erosion_rings, soften_labels
from ssimnet.pseudo.stain import VahadaneSeparator, hematoxylin_image
from ssimnet.synthetic import synthetic_tile

# ----------------------------------------------------------------- candidates


def test_fcm_takes_the_darker_cluster():
    image = np.full((40, 40, 3), 230, np.uint8)
    image[10:20, 10:30] = (60, 50, 120)
    mask = fuzzy_cmeans_mask(rgb2lab(image))
    assert mask[10:20, 10:30].all() and mask.sum() == 200


def test_fcm_on_lightness_alone_ignores_a_colour_split_that_lab_follows():
    lab = np.zeros((40, 40, 3))
    lab[..., 0] = 80.0
    lab[:, 20:, 1] = 100.0  # the right half far redder at the same lightness
    lab[5:9, 5:15, 0] = lab[25:29, 25:35, 0] = 30.0  # two dark nuclei, one in each half
    nuclei = lab[..., 0] < 50
    with_colour = fuzzy_cmeans_mask(lab, features="lab")
    assert abs(int(with_colour.sum()) - 800) <= 40  # the two colours are the clusters: half the image
    assert np.array_equal(fuzzy_cmeans_mask(lab, features="lightness"), nuclei)


def test_fcm_nucleus_cluster_darker_or_smaller():
    lab = np.zeros((20, 20, 3))
    lab[..., 0] = 30.0
    lab[:, 14:, 0] = 80.0  # dark pixels are the majority: 280 against 120
    assert int(fuzzy_cmeans_mask(lab, nucleus="darker").sum()) == 280
    assert int(fuzzy_cmeans_mask(lab, nucleus="smaller").sum()) == 120
    with pytest.raises(ValueError, match="nucleus must be one of"):
        fuzzy_cmeans_mask(lab, nucleus="largest")


def test_fcm_on_the_rgb_image_reads_that_image_and_needs_it():
    from dataclasses import replace

    from ssimnet.config import DEFAULT_PSEUDO
    from ssimnet.pseudo.candidates import candidate_maps

    tile = synthetic_tile((96, 96), seed=1)
    sep = VahadaneSeparator().fit(tile.image)
    hema = hematoxylin_image(sep.transform(tile.image), sep.stain_matrix_)
    rgb = replace(DEFAULT_PSEUDO, fcm_image="rgb")
    # Handed I^T as "the RGB image", the reading computes exactly Eq. 3; handed the tile, something else.
    assert np.array_equal(candidate_maps(hema, rgb, image=hema).candidates, candidate_maps(hema).candidates)
    assert not np.array_equal(candidate_maps(hema, rgb, image=tile.image).fcm, candidate_maps(hema).fcm)
    with pytest.raises(ValueError, match="needs the RGB image"):
        candidate_maps(hema, rgb)


def test_fcm_on_a_blank_image_finds_nothing():
    assert not fuzzy_cmeans_mask(rgb2lab(np.full((30, 30, 3), 240, np.uint8))).any()


def test_refine_removes_specks_and_fills_small_holes_only():
    mask = np.zeros((80, 80), bool)
    rr, cc = disk((20, 20), 10)
    mask[rr, cc] = True
    mask[20, 20] = False  # small hole
    mask[60, 60] = True  # speck
    ring = np.zeros_like(mask)
    rr, cc = disk((55, 25), 20, shape=mask.shape)
    ring[rr, cc] = True
    rr, cc = disk((55, 25), 16, shape=mask.shape)
    ring[rr, cc] = False  # a large enclosed region (> max_hole)
    out = refine_candidates(np.zeros(mask.shape), mask | ring, contour_iterations=0, min_size=30, max_hole=200)
    assert out[20, 20] and not out[60, 60] and not out[55, 25]


@pytest.mark.parametrize("seed", [0, 1])
def test_candidates_find_synthetic_nuclei(seed):
    tile = synthetic_tile((256, 256), seed=seed)
    sep = VahadaneSeparator().fit(tile.image)
    P = candidate_nuclei(hematoxylin_image(sep.transform(tile.image), sep.stain_matrix_), seed=0)
    precision, recall, dice = pixel_scores(tile.label, P.astype(int))
    assert dice > 0.9 and precision > 0.9 and recall > 0.9
    again = candidate_nuclei(hematoxylin_image(sep.transform(tile.image), sep.stain_matrix_), seed=0)
    assert np.array_equal(P, again)


# ----------------------------------------------------------------- softening


def _soften_by_erosion(mask, stop=0.975):
    """Eq. 4 literally: erode each component step by step (independent of ssimnet.pseudo.soften)."""
    out = np.zeros(mask.shape)
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    for i in range(1, n + 1):
        remaining = labels == i
        area = remaining.sum()
        b = 0.5
        while remaining.any():
            eroded = ndi.binary_erosion(remaining, border_value=0)
            ring = remaining & ~eroded
            if b > stop:
                out[remaining] = b  # the core keeps the value at which erosion stops
                break
            out[ring] = b
            b += ring.sum() / (2 * area)
            remaining = eroded
    return out


def _shapes():
    mask = np.zeros((120, 120), bool)
    for (r, c), rad in [((20, 20), 12), ((60, 25), 5), ((100, 100), 15), ((2, 100), 6)]:
        rr, cc = disk((r, c), rad, shape=mask.shape)
        mask[rr, cc] = True
    rr, cc = ellipse(70, 80, 8, 20, shape=mask.shape, rotation=0.6)
    mask[rr, cc] = True
    mask[40:42, 60:90] = True  # a thin bar
    return mask


def test_soften_matches_literal_erosion():
    mask = _shapes()
    assert np.allclose(soften_labels(mask), _soften_by_erosion(mask), atol=1e-6)
    assert np.allclose(soften_labels(mask, stop=0.7), _soften_by_erosion(mask, stop=0.7), atol=1e-6)


def test_soft_labels_range_and_monotone_from_rim_to_centre():
    mask = _shapes()
    soft = soften_labels(mask)
    assert (soft[~mask] == 0).all()
    assert soft[mask].min() == 0.5 and soft[mask].max() < 1.0
    rings = erosion_rings(mask)
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    for i in range(1, n + 1):
        comp = labels == i
        values = [soft[comp & (rings == k)].max() for k in range(rings[comp].max() + 1)]
        lows = [soft[comp & (rings == k)].min() for k in range(rings[comp].max() + 1)]
        assert values == lows  # one value per ring
        assert all(a <= b for a, b in zip(values, values[1:]))  # never decreasing inwards


def test_disc_centre_and_rim():
    mask = np.zeros((41, 41), bool)
    rr, cc = disk((20, 20), 15)
    mask[rr, cc] = True
    soft = soften_labels(mask)
    rim = mask & ~ndi.binary_erosion(mask)
    assert (soft[rim] == 0.5).all()
    assert 0.975 < soft[20, 20] < 1.0


def test_empty_map():
    assert not soften_labels(np.zeros((5, 5), bool)).any()
