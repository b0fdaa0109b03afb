"""GeoJSON export for QuPath: polygons rasterise back to the label map."""

from __future__ import annotations

import json

import numpy as np

from ssimnet.predict import measure_nuclei
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.geojson import feature_collection, nucleus_polygons, rasterize


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_round_trip_gives_every_nucleus_back():
    label = synthetic_tile((256, 256), seed=3).label
    table = measure_nuclei(label)
    collection = json.loads(json.dumps(feature_collection(nucleus_polygons(label), table)))  # survives JSON
    back = rasterize(collection, label.shape)
    ids = np.unique(label)[1:]
    assert len(collection["features"]) == len(ids) > 20
    assert min(_iou(label == i, back == i) for i in ids) >= 0.95
    feature = collection["features"][0]
    props = feature["properties"]
    assert props["objectType"] == "detection" and props["classification"] == {"name": "Nucleus"}
    row = list(table["id"]).index(props["nucleus"])
    assert props["measurements"]["area"] == float(table["area"][row])  # the CSV's numbers, per nucleus
    assert "mean_hematoxylin" not in props["measurements"]  # NaN without a hematoxylin image: left out, not invalid JSON
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]  # closed


def test_pixel_corners_offsets_and_parts():
    label = np.zeros((6, 8), np.int32)
    label[2, 3] = 1  # one pixel: a diamond around its centre (3.5, 2.5) in QuPath's pixel coordinates
    label[4:6, 0:2] = 2
    label[0, 6] = label[3, 7] = 3  # two parts
    polygons = nucleus_polygons(label, offset=(100, 200))
    assert sorted({tuple(p) for p in polygons[1][0]}) == [(203.0, 102.5), (203.5, 102.0), (203.5, 103.0), (204.0, 102.5)]
    assert len(polygons[3]) == 2
    collection = feature_collection(polygons)
    kinds = {f["properties"]["nucleus"]: f["geometry"]["type"] for f in collection["features"]}
    assert kinds == {1: "Polygon", 2: "Polygon", 3: "MultiPolygon"}
    assert np.array_equal(rasterize(collection, label.shape, offset=(100, 200)), label)


def test_straight_runs_keep_only_their_ends():
    label = np.zeros((8, 16), np.int32)
    label[2:5, 1:13] = 1  # a 3 x 12 rectangle: its outline is an octagon with four long straight sides
    (ring,) = nucleus_polygons(label)[1]
    assert len(ring) == 9  # eight corners, closed
    assert {tuple(p) for p in ring} == {(1.5, 2.0), (12.5, 2.0), (13.0, 2.5), (13.0, 4.5), (12.5, 5.0), (1.5, 5.0),
                                        (1.0, 4.5), (1.0, 2.5)}
    collection = feature_collection({1: [ring]})
    assert np.array_equal(rasterize(collection, label.shape), label)  # the same pixels, exactly
