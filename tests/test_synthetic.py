"""The synthetic H&E generator: determinism, exact ground truth, plausible optics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from ssimnet.pseudo.stain import RUIFROK_HE, rgb_to_od
from ssimnet.synthetic import synthetic_tile


@pytest.fixture(scope="module")
def tile():
    return synthetic_tile((256, 256), seed=11)


def test_same_seed_same_tile_other_seed_other_tile(tile):
    again = synthetic_tile((256, 256), seed=11)
    other = synthetic_tile((256, 256), seed=12)
    assert np.array_equal(tile.image, again.image) and np.array_equal(tile.label, again.label)
    assert not np.array_equal(tile.image, other.image)


def test_labels_are_consecutive_and_nuclei_connected(tile):
    ids = np.unique(tile.label)
    assert np.array_equal(ids, np.arange(ids.size)) and ids.size > 20
    objects = ndi.find_objects(tile.label)
    for i, sl in enumerate(objects, start=1):
        _, n = ndi.label(tile.label[sl] == i)
        assert n == 1  # a nucleus partly covered by an earlier one is still one piece


def test_nucleus_sizes_follow_the_radius_setting():
    small = synthetic_tile((256, 256), seed=3, radius=(4.0, 4.0))
    large = synthetic_tile((256, 256), seed=3, radius=(9.0, 9.0))
    area = lambda t: np.bincount(t.label.ravel())[1:]  # noqa: E731
    # an ellipse of semi-axes r*U(.8,1.25) and r*U(.6,1) has a mean area near 0.78*pi*r^2
    assert 0.5 * np.pi * 16 < np.median(area(small)) < 1.1 * np.pi * 16
    assert 0.5 * np.pi * 81 < np.median(area(large)) < 1.1 * np.pi * 81


def test_touching_clusters_exist(tile):
    # some nuclei share a border with another nucleus
    grown = ndi.grey_dilation(tile.label, size=3)
    touching = (grown != tile.label) & (tile.label > 0) & (grown > 0)
    assert touching.sum() > 0


def test_stains_are_unit_vectors_near_the_reference(tile):
    assert np.allclose(np.linalg.norm(tile.stains, axis=1), 1.0)
    angles = np.degrees(np.arccos(np.clip((tile.stains * RUIFROK_HE).sum(1), -1, 1)))
    assert (angles < 15).all()


def test_nuclei_carry_hematoxylin(tile):
    # Project the optical density onto the true stains: nuclei are hematoxylin-rich.
    od = rgb_to_od(tile.image).reshape(-1, 3)
    density, *_ = np.linalg.lstsq(tile.stains.T, od.T, rcond=None)
    hema = density[0].reshape(tile.label.shape)
    nuclear = tile.label > 0
    assert hema[nuclear].mean() > 3 * hema[~nuclear].mean()
    assert np.corrcoef(hema.ravel(), tile.density[..., 0].ravel())[0, 1] > 0.8


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 16"):
        synthetic_tile((8, 100))
    with pytest.raises(ValueError, match="coverage"):
        synthetic_tile((32, 32), coverage=1.5)
