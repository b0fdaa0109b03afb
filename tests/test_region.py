"""Large regions tile by tile: nuclei across seams come out exactly once, whole."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import disk

from ssimnet.tool.region import segment_region, tile_windows


def _threshold(rgb: np.ndarray) -> np.ndarray:
    return ndi.label(rgb[..., 0] < 128)[0]


def _region_with_nuclei_on_seams(tile: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    rng = np.random.default_rng(0)
    image = np.full((3 * tile + 37, 2 * tile + 11, 3), 230, np.uint8)
    discs = []
    for r in (tile, 2 * tile):  # centred on a horizontal seam, a vertical seam, and on a corner
        for c in range(15, image.shape[1] - 15, 40):
            discs.append((r + int(rng.integers(-6, 7)), c, int(rng.integers(5, 12))))
    for r in range(20, image.shape[0] - 20, 45):
        discs.append((r, tile + int(rng.integers(-6, 7)), int(rng.integers(5, 12))))
    discs.append((tile, tile, 10))
    truth = np.zeros(image.shape[:2], np.int32)
    for k, (r, c, radius) in enumerate(discs, start=1):
        rr, cc = disk((r, c), radius, shape=truth.shape)
        if (truth[rr, cc] == 0).all():  # keep the discs apart
            truth[rr, cc] = k
    image[truth > 0] = (60, 40, 120)
    return image, [d for k, d in enumerate(discs, start=1) if (truth == k).any()]


def test_windows_partition_the_region():
    windows = tile_windows((250, 130), tile=100, halo=20)
    cover = np.zeros((250, 130), int)
    for w in windows:
        cover[w.core] += 1
        assert w.read[0].start <= w.core[0].start and w.read[0].stop >= w.core[0].stop
    assert (cover == 1).all() and len(windows) == 3 * 2
    with pytest.raises(ValueError, match="tile must be positive"):
        tile_windows((10, 10), tile=0, halo=1)


def test_nuclei_across_seams_come_out_exactly_once_and_whole():
    tile = 100
    image, discs = _region_with_nuclei_on_seams(tile)
    whole = _threshold(image)
    region = np.zeros(image.shape[:2], np.int64)
    total = 0
    for part in segment_region(image, _threshold, tile=tile, halo=30):
        r, c = part.offset
        h, w = part.label.shape
        window = region[r : r + h, c : c + w]
        assert not (window[part.label > 0] > 0).any()  # no nucleus painted twice
        window[part.label > 0] = part.label[part.label > 0]
        total += part.count
    assert total == whole.max() == len(discs) >= 12
    assert np.array_equal(region > 0, whole > 0)  # every nucleus whole
    pairs = set(zip(region[whole > 0].tolist(), whole[whole > 0].tolist()))
    assert len(pairs) == whole.max() == len({a for a, _ in pairs})  # one region id per true nucleus, and back


def test_a_halo_smaller_than_a_nucleus_cuts_it():
    image, _ = _region_with_nuclei_on_seams(100)
    region = np.zeros(image.shape[:2], np.int64)
    for part in segment_region(image, _threshold, tile=100, halo=2):
        r, c = part.offset
        h, w = part.label.shape
        region[r : r + h, c : c + w][part.label > 0] = part.label[part.label > 0]
    assert not np.array_equal(region > 0, _threshold(image) > 0)  # the check above can fail
