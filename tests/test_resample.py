"""Resolution: images resampled to the network's pixel size and their labels brought back."""

from __future__ import annotations

import numpy as np
import pytest

from ssimnet.config import NETWORK_MPP
from ssimnet.tool.resample import rescale_image, resize_labels, scale_factor


def test_scale_factor_is_the_ratio_of_pixel_sizes():
    assert scale_factor(0.5) == pytest.approx(0.5 / NETWORK_MPP)
    assert scale_factor(0.125, network_mpp=0.25) == 0.5  # 80x: shrunk by half
    for bad in (0.0, -0.25, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive number of microns"):
            scale_factor(bad)


def test_rescale_image_keeps_flat_colours_and_scales_shapes():
    flat = np.full((40, 60, 3), (200, 120, 180), np.uint8)
    assert np.array_equal(rescale_image(flat, 2.0), np.full((80, 120, 3), (200, 120, 180), np.uint8))
    assert rescale_image(flat, 0.5).shape == (20, 30, 3)
    yy, xx = np.mgrid[:100, :100]
    disc = np.where(((yy - 50) ** 2 + (xx - 50) ** 2 < 20**2)[..., None], 60, 230).astype(np.uint8).repeat(3, -1)
    big = rescale_image(disc, 2.0)
    assert big.dtype == np.uint8
    assert (big[..., 0] < 145).sum() / (disc[..., 0] < 145).sum() == pytest.approx(4.0, rel=0.02)  # area x factor^2


def test_resize_labels_nearest_pixel_centres():
    label = np.array([[1, 2], [3, 0]], np.int32)
    up = resize_labels(label, (4, 6))
    assert up.tolist() == [[1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2], [3, 3, 3, 0, 0, 0], [3, 3, 3, 0, 0, 0]]
    assert np.array_equal(resize_labels(up, (2, 2)), label)  # and back
    small = np.zeros((8, 8), np.int32)
    small[0, 0] = 5  # covers no pixel centre of the 2 x 2 grid: gone
    small[4:8, 4:8] = 9
    assert resize_labels(small, (2, 2)).tolist() == [[0, 0], [0, 1]]  # renumbered without gaps
