"""USMI purification (Algorithm 1) and Voronoi tri-labels."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from ssimnet.pseudo.purify import patch_grid, patch_usmi, select_patches, usmi
from ssimnet.pseudo.voronoi import BACKGROUND, IGNORE, NUCLEUS, candidate_points, voronoi_label

# ----------------------------------------------------------------- patches and USMI


def test_patch_grid_covers_the_image_without_padding():
    corners = patch_grid((1000, 1000), size=256, stride=128)
    assert len(corners) == 49
    starts = sorted({r for r, _ in corners})
    assert starts == [0, 128, 256, 384, 512, 640, 744]
    covered = np.zeros((1000, 1000), bool)
    for r, c in corners:
        covered[r : r + 256, c : c + 256] = True
    assert covered.all()
    assert patch_grid((256, 300), size=256, stride=128) == [(0, 0), (0, 44)]


def test_patch_grid_rejects_small_images():
    with pytest.raises(ValueError, match="200x300 pixels is smaller than a 256x256 patch"):
        patch_grid((200, 300))


def test_usmi_hand_computed():
    mask = np.zeros((64, 64), bool)
    mask[2:4, 2:4] = True  # area 4
    mask[10:13, 10:13] = True  # area 9
    mask[20:24, 20:24] = True  # area 16
    mask[30:35, 30:35] = True  # area 25
    mask[40:50, 40:41] = True  # a bar: area 10
    # an L: area 5 + 4 = 9, convex hull of its pixel squares covers 5x5 triangle-ish region
    mask[55:60, 2] = True
    mask[59, 3:7] = True
    areas = np.array([4, 9, 16, 25, 10, 9])
    hull_L = 15  # pixel centres inside the hull of the L (a right triangle with legs of 5 pixels)
    hulls = np.array([4, 9, 16, 25, 10, hull_L])
    q1, q3 = np.percentile(areas, [25, 75])
    expected = hulls.mean() / areas[(areas >= q1) & (areas <= q3)].mean()
    assert usmi(mask) == pytest.approx(expected)


def test_merged_nuclei_raise_usmi():
    # 25 nuclei of radius 8; in the second map 5 of them have a touching twin (a
    # merged candidate). The merged hulls raise the mean hull area while the
    # inter-quartile area stays that of a single nucleus.
    isolated = np.zeros((256, 256), bool)
    for r in range(30, 256, 50):
        for c in range(30, 256, 50):
            rr, cc = disk((r, c), 8, shape=isolated.shape)
            isolated[rr, cc] = True
    merged = isolated.copy()
    for r in range(30, 256, 50):
        rr, cc = disk((r, 30 + 14), 8, shape=merged.shape)  # twin overlapping the first nucleus of each row
        merged[rr, cc] = True
    assert usmi(isolated) < 1.1
    assert usmi(merged) > usmi(isolated) + 0.1


def test_too_few_components_give_infinity_and_sort_last():
    mask = np.zeros((256, 256), bool)
    mask[10:20, 10:20] = True
    assert usmi(mask) == float("inf")
    assert usmi(mask, min_components=1) == pytest.approx(1.0)
    stats = patch_usmi(mask, size=256, stride=128)
    assert len(stats) == 1 and stats[0].n_components == 1 and stats[0].usmi == float("inf")
    assert list(select_patches([np.inf, 2.0, 1.5, np.inf], keep=0.75)) == [2, 1, 0]


def test_patch_usmi_equals_usmi_of_each_crop():
    rng = np.random.default_rng(0)
    mask = np.zeros((400, 300), bool)
    for _ in range(150):
        rr, cc = disk(rng.uniform(0, 400, 2) * [1, 0.75], rng.uniform(3, 10), shape=mask.shape)
        mask[rr, cc] = True
    stats = patch_usmi(mask, size=256, stride=100)
    assert [s.corner for s in stats] == patch_grid(mask.shape, size=256, stride=100)
    for s in stats:
        r, c = s.corner
        assert s.usmi == usmi(mask[r : r + 256, c : c + 256])
        assert s.usmi == pytest.approx(s.mean_hull_area / s.mean_area)


def test_select_patches_keeps_the_fraction():
    scores = np.random.default_rng(1).random(1000)
    kept = select_patches(scores, keep=0.7)
    assert len(kept) == 700 and scores[kept].max() <= np.sort(scores)[699]
    with pytest.raises(ValueError):
        select_patches(scores, keep=0)


# ----------------------------------------------------------------- Voronoi


def _blobs():
    mask = np.zeros((120, 150), bool)
    centres = [(20, 20), (30, 90), (80, 40), (90, 120), (60, 75)]
    for r, c in centres:
        rr, cc = disk((r, c), 6, shape=mask.shape)
        mask[rr, cc] = True
    return mask, np.array(centres)


def test_points_are_component_centroids():
    mask, centres = _blobs()
    points = candidate_points(mask)
    assert sorted(map(tuple, points)) == sorted(map(tuple, centres))


def test_voronoi_edges_are_equidistant_and_points_are_nuclei():
    mask, centres = _blobs()
    label = voronoi_label(mask, point_radius=2)
    assert set(np.unique(label)) == {BACKGROUND, NUCLEUS, IGNORE}
    for r, c in centres:
        assert label[r, c] == NUCLEUS and label[r, c + 2] == NUCLEUS and label[r, c + 4] == IGNORE
    rows, cols = np.nonzero(label == BACKGROUND)
    d = np.sqrt((rows[:, None] - centres[None, :, 0]) ** 2 + (cols[:, None] - centres[None, :, 1]) ** 2)
    d.sort(axis=1)
    assert (d[:, 1] - d[:, 0] <= 2.0).all()  # an edge pixel (2 px wide) is about as close to two points
    # every pair of Voronoi neighbours is separated: a straight path between two centres crosses an edge
    line = np.linspace(0, 1, 200)
    r = np.rint(centres[0, 0] + line * (centres[4, 0] - centres[0, 0])).astype(int)
    c = np.rint(centres[0, 1] + line * (centres[4, 1] - centres[0, 1])).astype(int)
    assert (label[r, c] == BACKGROUND).any()


def test_voronoi_degenerate_cases():
    assert (voronoi_label(np.zeros((10, 10), bool)) == IGNORE).all()
    one = np.zeros((20, 20), bool)
    one[5:9, 5:9] = True
    label = voronoi_label(one, point_radius=1)
    assert (label != BACKGROUND).all() and label[6, 6] == NUCLEUS
