"""Nuclei as GeoJSON polygons, in QuPath's convention for imported detections.

QuPath (File > Import objects, or drag and drop) reads a GeoJSON
``FeatureCollection`` whose features carry ``"objectType": "detection"``, a
``classification`` and a ``measurements`` mapping; coordinates are pixels of
the full-resolution image with (0, 0) at the top-left *corner* of the
top-left pixel, so a pixel's centre is at ``(col + 0.5, row + 0.5)``.

Each nucleus's outline is the iso-line at 0.5 of its mask
(:func:`skimage.measure.find_contours`), which runs half-way between the
nucleus's boundary pixels and their outside neighbours, without the vertices
in the middle of straight runs; filling the polygon by pixel centres
(:func:`rasterize`) gives the mask back.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon
from skimage.measure import find_contours

__all__ = ["nucleus_polygons", "feature_collection", "rasterize"]


def _ring(contour: np.ndarray, offset: tuple[int, int]) -> list[list[float]]:
    """A closed (row, col) contour as a GeoJSON ring of [x, y], counter-clockwise in image axes."""
    xy = np.column_stack([contour[:, 1] + offset[1] + 0.5, contour[:, 0] + offset[0] + 0.5])
    x, y = xy[:, 0], xy[:, 1]
    if 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) < 0:  # GeoJSON's right-hand rule for exterior rings
        xy = xy[::-1]
    xy = np.round(xy, 2)
    if np.array_equal(xy[0], xy[-1]):
        xy = xy[:-1]
    # a vertex in the middle of a straight run changes nothing: drop it (about halves the file)
    before, after = xy - np.roll(xy, 1, axis=0), np.roll(xy, -1, axis=0) - xy
    straight = (before[:, 0] * after[:, 1] == before[:, 1] * after[:, 0]) & ((before * after).sum(1) > 0)
    if not straight.all():
        xy = xy[~straight]
    return np.vstack([xy, xy[:1]]).tolist()


def nucleus_polygons(label: np.ndarray, *, offset: tuple[int, int] = (0, 0)) -> dict[int, list[list[list[float]]]]:
    """Outer ring of every connected part of every nucleus, in QuPath pixel coordinates.

    Parameters
    ----------
    label : (H, W) int
        Instance map, 0 background.
    offset : (row, col)
        Where `label` sits in the whole image (for tiles of a large region).

    Returns
    -------
    dict
        Nucleus id -> list of rings (one per 8-connected part; holes are
        filled), each a closed list of ``[x, y]``.

    Examples
    --------
    >>> label = np.zeros((4, 4), int); label[1:3, 1:3] = 7
    >>> rings = nucleus_polygons(label)[7]
    >>> len(rings), rings[0][0] == rings[0][-1]
    (1, True)
    >>> sorted({tuple(p) for p in rings[0]})
    [(1.0, 1.5), (1.0, 2.5), (1.5, 1.0), (1.5, 3.0), (2.5, 1.0), (2.5, 3.0), (3.0, 1.5), (3.0, 2.5)]
    """
    out: dict[int, list[list[list[float]]]] = {}
    for index, box in enumerate(ndi.find_objects(label), start=1):
        if box is None:
            continue
        mask = np.pad(label[box] == index, 1)
        parts, n = ndi.label(mask, structure=np.ones((3, 3), bool))
        rings = []
        for part in range(1, n + 1):
            contours = find_contours((parts == part).astype(float), 0.5)
            outer = max(contours, key=len)  # the longest iso-line of a part is its outline
            rings.append(_ring(outer, (box[0].start + offset[0] - 1, box[1].start + offset[1] - 1)))
        out[index] = rings
    return out


def feature_collection(
    polygons: Mapping[int, list[list[list[float]]]],
    measurements: Mapping[str, np.ndarray] | None = None,
    *,
    classification: str = "Nucleus",
) -> dict[str, object]:
    """A GeoJSON ``FeatureCollection`` of QuPath detections, one per nucleus.

    `measurements` holds per-nucleus columns (as :func:`ssimnet.predict.nuclei.measure_nuclei`
    returns them) with an ``id`` column naming the nucleus of each row; each
    feature gets its row's finite values as ``measurements`` (the id as
    ``properties.nucleus``).  A nucleus in several parts is a ``MultiPolygon``.
    """
    rows: dict[int, dict[str, float]] = {}
    if measurements is not None and "id" in measurements:
        columns = {k: np.asarray(v, float) for k, v in measurements.items() if k != "id"}
        for i, nucleus in enumerate(np.asarray(measurements["id"]).tolist()):
            rows[int(nucleus)] = {k: float(v[i]) for k, v in columns.items() if np.isfinite(v[i])}
    features = []
    for nucleus, rings in polygons.items():
        geometry = ({"type": "Polygon", "coordinates": [rings[0]]} if len(rings) == 1 else
                    {"type": "MultiPolygon", "coordinates": [[ring] for ring in rings]})
        features.append({
            "type": "Feature",
            "id": str(nucleus),
            "geometry": geometry,
            "properties": {
                "objectType": "detection",
                "classification": {"name": classification},
                "nucleus": int(nucleus),
                "measurements": rows.get(int(nucleus), {}),
            },
        })
    return {"type": "FeatureCollection", "features": features}


def rasterize(collection: Mapping[str, object], shape: tuple[int, int], *, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Paint a :func:`feature_collection`'s polygons back into an instance map (pixel centres inside).

    Nucleus ids come from ``properties.nucleus``; later features paint over earlier ones.
    """
    label = np.zeros(shape, np.int32)
    for feature in collection["features"]:  # type: ignore[union-attr]
        geometry = feature["geometry"]
        polys = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        for poly in polys:
            ring = np.asarray(poly[0], float)
            rows, cols = draw_polygon(ring[:, 1] - 0.5 - offset[0], ring[:, 0] - 0.5 - offset[1], shape=shape)
            label[rows, cols] = feature["properties"]["nucleus"]
    return label
