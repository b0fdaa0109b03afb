"""Where the tissue is on a slide, and where a QuPath annotation says to look.

:func:`find_tissue` works on a low-resolution image of the whole slide
(:func:`ssimnet.tool.slide_reader.read_downsampled`): stained tissue is
saturated and glass is grey or white, so the tissue is what is more saturated
than Otsu's threshold of the saturation (and than a floor, so that an empty
slide has none); specks below a minimum area go and holes are filled (a lumen or
a tear inside tissue is still worth the tiles around it).

:func:`read_roi` reads the polygons of a GeoJSON export (QuPath's *Export
objects*), in level-0 pixels; :func:`paint_polygons` rasterises them onto the
low-resolution grid and :func:`inside_polygons` keeps the nuclei whose centre
lies inside.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import DataError, first_line

__all__ = ["saturation", "find_tissue", "read_roi", "paint_polygons", "inside_polygons"]

#: A polygon: its exterior ring then its holes, each an (n, 2) array of level-0 (x, y).
Polygon = list[np.ndarray]


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation, (max - min) / max of R, G, B, in [0, 1] (0 where the pixel is black).

    >>> saturation(np.array([[[255, 255, 255], [200, 100, 100], [0, 0, 0]]], np.uint8)).round(2).tolist()
    [[0.0, 0.5, 0.0]]
    """
    rgb = np.asarray(rgb, np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    return np.divide(high - low, high, out=np.zeros_like(high), where=high > 0)


def find_tissue(rgb: np.ndarray, *, min_area: int, min_saturation: float = 0.05, closing: int = 0) -> np.ndarray:
    """Tissue mask of a low-resolution slide image: saturation above Otsu's threshold and `min_saturation`,
    closed by a disc of radius `closing`, parts smaller than `min_area` pixels removed, holes filled.

    Parameters
    ----------
    rgb : (H, W, 3) uint8
    min_area : int
        Smallest piece of tissue kept, in pixels of `rgb`.
    min_saturation : float
        Saturation below which nothing is tissue, whatever Otsu says (an
        empty slide's threshold falls inside the glass's noise).
    closing : int
        Radius in pixels of the morphological closing that joins the pieces of
        one tissue fragment split by pale stroma or fat before small parts go.

    Examples
    --------
    >>> rgb = np.full((40, 40, 3), 240, np.uint8)
    >>> rgb[5:30, 5:30] = (180, 90, 160); rgb[15:20, 15:20] = 240   # tissue with a hole
    >>> rgb[36, 36] = (180, 90, 160)                                 # a speck
    >>> mask = find_tissue(rgb, min_area=20)
    >>> int(mask.sum()), bool(mask[17, 17]), bool(mask[36, 36])
    (625, True, False)
    """
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_objects

    s = saturation(rgb)
    threshold = threshold_otsu(s) if s.size and s.max() > s.min() else np.inf
    mask = s > max(float(threshold), min_saturation)
    if closing > 0:
        from skimage.morphology import disk

        padded = np.pad(mask, closing)  # no erosion from the image's border
        mask = ndi.binary_closing(padded, structure=disk(closing))[closing:-closing, closing:-closing]
    mask = remove_small_objects(mask, max_size=max(0, int(min_area) - 1))
    return ndi.binary_fill_holes(mask)


def read_roi(path: str | os.PathLike[str]) -> list[Polygon]:
    """The polygons of a GeoJSON file (a FeatureCollection, a Feature, a list of features or a bare geometry;
    Polygon and MultiPolygon geometries), in level-0 pixel coordinates as QuPath exports them.

    Raises
    ------
    DataError
        If the file cannot be read, is not GeoJSON, or holds no polygon.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot be read as GeoJSON: {first_line(exc)}") from None
    polygons: list[Polygon] = []

    def visit(obj: object) -> None:
        if isinstance(obj, list):
            for item in obj:
                visit(item)
        elif isinstance(obj, dict):
            kind = obj.get("type")
            if kind == "FeatureCollection":
                visit(obj.get("features", []))
            elif kind == "Feature":
                visit(obj.get("geometry"))
            elif kind == "GeometryCollection":
                visit(obj.get("geometries", []))
            elif kind in ("Polygon", "MultiPolygon"):
                coords = obj.get("coordinates", [])
                for rings in ([coords] if kind == "Polygon" else coords):
                    polygons.append([np.asarray(ring, float)[:, :2] for ring in rings])

    try:
        visit(data)
    except (TypeError, ValueError, IndexError) as exc:
        raise DataError(path, f"has a polygon that is not a list of [x, y] rings: {first_line(exc)}") from None
    polygons = [p for p in polygons if p and len(p[0]) >= 3]
    if not polygons:
        raise DataError(path, "holds no Polygon or MultiPolygon")
    return polygons


def paint_polygons(polygons: list[Polygon], shape: tuple[int, int], *, scale: float) -> np.ndarray:
    """A mask of `shape` whose pixels (of `scale` level-0 pixels each) have their centre inside a polygon.

    >>> square = [np.array([[0, 0], [40, 0], [40, 20], [0, 20]], float)]
    >>> paint_polygons([square], (4, 6), scale=10).astype(int).tolist()
    [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]]
    """
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    centres = np.column_stack([(cols.ravel() + 0.5) * scale, (rows.ravel() + 0.5) * scale])
    return inside_polygons(centres, polygons).reshape(shape)


def inside_polygons(points: np.ndarray, polygons: list[Polygon]) -> np.ndarray:
    """Which (x, y) `points` lie inside a polygon's exterior ring and outside its holes.

    >>> ring = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    >>> hole = np.array([[4, 4], [6, 4], [6, 6], [4, 6]], float)
    >>> inside_polygons(np.array([[1, 1], [5, 5], [11, 1]], float), [[ring, hole]]).tolist()
    [True, False, False]
    """
    from matplotlib.path import Path as MplPath

    points = np.asarray(points, float).reshape(-1, 2)
    inside = np.zeros(len(points), bool)
    for exterior, *holes in polygons:
        lo, hi = exterior.min(axis=0), exterior.max(axis=0)
        near = np.flatnonzero((points >= lo).all(axis=1) & (points <= hi).all(axis=1) & ~inside)
        if not len(near):
            continue
        hit = MplPath(exterior).contains_points(points[near])
        for hole in holes:
            hit &= ~MplPath(hole).contains_points(points[near])
        inside[near[hit]] = True
    return inside
