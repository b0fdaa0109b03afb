"""Large regions segmented tile by tile, with every nucleus once and whole across tile seams.

A region (a 10k×10k crop of a slide, say) is cut into *core* windows that
partition it; each core is segmented with a *halo* of context around it, and
only the nuclei whose centroid lies in the core are kept.  Cores partition
the region, so a nucleus straddling a seam belongs to exactly one tile; it
comes out whole as long as it extends less than `halo` pixels past its core
-- choose the halo larger than a nucleus.  Memory stays bounded by one
haloed tile, whatever the region's size, when the image is an array that
reads windows lazily (a memory map, or a zarr view of a tiled TIFF).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

__all__ = ["Window", "tile_windows", "own_nuclei", "RegionTile", "segment_region", "paint_tile"]


class Window(NamedTuple):
    """A tile: its core ``[row0, row1) × [col0, col1)`` and the haloed window read around it."""

    core: tuple[slice, slice]
    read: tuple[slice, slice]


def tile_windows(shape: tuple[int, int], *, tile: int, halo: int) -> list[Window]:
    """Core windows of at most `tile` pixels that partition `shape`, each with a `halo` around it.

    >>> [w.core for w in tile_windows((5, 3), tile=3, halo=1)]
    [(slice(0, 3, None), slice(0, 3, None)), (slice(3, 5, None), slice(0, 3, None))]
    >>> tile_windows((5, 3), tile=3, halo=1)[1].read
    (slice(2, 5, None), slice(0, 3, None))
    """
    if tile < 1 or halo < 0:
        raise ValueError(f"tile must be positive and halo non-negative (got {tile}, {halo})")
    height, width = shape
    windows = []
    for r in range(0, height, tile):
        for c in range(0, width, tile):
            core = (slice(r, min(r + tile, height)), slice(c, min(c + tile, width)))
            read = (slice(max(r - halo, 0), min(r + tile + halo, height)), slice(max(c - halo, 0), min(c + tile + halo, width)))
            windows.append(Window(core, read))
    return windows


def own_nuclei(label: np.ndarray, window: Window) -> np.ndarray:
    """The ids of the nuclei of `label` (over `window`'s read window) whose centroid lies in its core:
    the tile's own, every nucleus of a region belonging to exactly one tile.

    >>> label = np.zeros((4, 6), int); label[1:3, 0:2] = 1; label[1:3, 3:5] = 2
    >>> own_nuclei(label, Window((slice(0, 4), slice(2, 6)), (slice(0, 4), slice(0, 6)))).tolist()
    [2]
    """
    ids = np.unique(label)
    ids = ids[ids > 0]
    if not len(ids):
        return ids
    rows, cols = window.read
    centroids = np.asarray(ndi.center_of_mass(np.ones(label.shape), label, ids)).reshape(-1, 2)
    centre_r = np.floor(centroids[:, 0]).astype(int) + rows.start
    centre_c = np.floor(centroids[:, 1]).astype(int) + cols.start
    core_r, core_c = window.core
    return ids[(centre_r >= core_r.start) & (centre_r < core_r.stop) & (centre_c >= core_c.start) & (centre_c < core_c.stop)]


class RegionTile(NamedTuple):
    """The nuclei one tile contributes: `label` over the tile's read window at `offset`
    (row, col), holding only the `count` nuclei whose centroid lies in its core."""

    offset: tuple[int, int]
    label: np.ndarray
    count: int


def segment_region(
    image: object,
    segment: Callable[[np.ndarray], np.ndarray],
    *,
    tile: int,
    halo: int,
) -> Iterator[RegionTile]:
    """Segment a large `image` tile by tile; yield each tile's own nuclei with region-wide ids.

    Parameters
    ----------
    image : array-like, (H, W, 3)
        Anything with ``shape`` that returns an ndarray when sliced
        (ndarray, memory map, zarr array).
    segment : callable
        Instance map (0 background) of an RGB tile.
    tile, halo : int
        Core size and context around it, in pixels.

    Yields
    ------
    RegionTile
        One per tile, in row-major order; ids continue from one tile to the
        next, so painting every tile's nonzero pixels gives the region's map.
    """
    shape = tuple(int(s) for s in image.shape[:2])  # type: ignore[attr-defined]
    next_id = 1
    for window in tile_windows(shape, tile=tile, halo=halo):  # type: ignore[arg-type]
        rows, cols = window.read
        crop = np.asarray(image[rows, cols])  # type: ignore[index]
        label = np.asarray(segment(crop))
        mine = own_nuclei(label, window)
        lut = np.zeros(int(label.max()) + 1 if label.size else 1, np.int64)
        lut[mine] = np.arange(next_id, next_id + len(mine))
        yield RegionTile((rows.start, cols.start), lut[label], len(mine))
        next_id += len(mine)


def paint_tile(region: np.ndarray, tile: RegionTile) -> RegionTile:
    """Paint `tile`'s nuclei into the `region`'s label map, in place, where no earlier tile placed one;
    return the tile as it now stands in the region: only the pixels of its nuclei that were painted.

    What is measured and outlined of a tile must be what the region's map holds, so that the map, the
    table and the polygons are one set of nuclei.

    >>> region = np.zeros((2, 4), np.int32); region[0, 1] = 7
    >>> visible = paint_tile(region, RegionTile((0, 1), np.array([[3, 3], [0, 3]]), 1))
    >>> region.tolist(), visible.label.tolist()
    ([[0, 7, 3, 0], [0, 0, 3, 0]], [[0, 3], [0, 3]])
    """
    r, c = tile.offset
    h, w = tile.label.shape
    window = region[r : r + h, c : c + w]
    new = (tile.label > 0) & (window == 0)  # a nucleus placed by an earlier tile keeps its pixels
    window[new] = tile.label[new]
    return tile._replace(label=np.where(window == tile.label, tile.label, 0).astype(tile.label.dtype))
