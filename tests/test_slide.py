"""Whole slides: readers, tissue, level choice, seams, outputs in level-0 pixels, resume after SIGKILL, Dask."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SMOKE

from ssimnet.cli import main
from ssimnet.config import SlideConfig
from ssimnet.synthetic import synthetic_tile, write_slide
from ssimnet.tool.batch import BatchSettings, Job, run_batch, segment_file
from ssimnet.tool.geojson import rasterize
from ssimnet.tool.segmenter import Segmenter
from ssimnet.tool.slide import plan_slide
from ssimnet.tool.slide_files import slide_paths
from ssimnet.tool.slide_reader import best_level, is_slide, open_slide
from ssimnet.tool.tissue import find_tissue, read_roi

OUTPUTS = ("geojson", "nuclei", "tissue", "thumbnail")
GLASS = (236, 234, 238)


PIECES = [(40, 40), (40, 480), (480, 40), (480, 480)]  # 400-pixel squares of synthetic tissue
TILE, HALO = 512, 64  # the test network's tiles: cores of 384 pixels


def _canvas(height: int = 1000, width: int = 1300, *, seed: int = 0) -> np.ndarray:
    """Glass with four synthetic tissue pieces in its left part: the right strip holds no tissue."""
    rng = np.random.default_rng(seed)
    canvas = np.clip(np.array(GLASS) + rng.integers(-3, 4, (height, width, 3)), 0, 255).astype(np.uint8)
    for k, (r, c) in enumerate(PIECES):
        canvas[r : r + 400, c : c + 400] = synthetic_tile((400, 400), seed=40 + k).image
    return canvas


@pytest.fixture(scope="module")
def canvas() -> np.ndarray:
    return _canvas()


@pytest.fixture(scope="module")
def net(segmenting_checkpoint, tmp_path_factory) -> Path:
    """The test network with smaller region tiles stored with it: a slide of twelve tiles in seconds."""
    from ssimnet.net.checkpoint import load_model, save_model

    trainer, inference = load_model(segmenting_checkpoint)
    path = tmp_path_factory.mktemp("net") / "slide-net.pt"
    save_model(path, trainer.state(), {**inference, "tile_size": TILE, "region_halo": HALO})
    return path


@pytest.fixture(scope="module")
def svs(canvas, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("slides") / "slide.svs"
    write_slide(path, canvas, mpp=0.25, downsamples=(1, 4, 16))
    return path


def _settings(checkpoint: Path, **changes) -> BatchSettings:
    from ssimnet.data import file_digest

    inference = Segmenter.from_checkpoint(checkpoint).settings
    return BatchSettings(inference=inference, seed=0, pseudo=SMOKE.pseudo, model=file_digest(checkpoint), **changes)


def _outputs(out: Path, name: str) -> dict[str, bytes]:
    return {kind: slide_paths(out, name)[kind].read_bytes() for kind in OUTPUTS}


def _nuclei(out: Path, name: str) -> list[dict[str, str]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(gzip.decompress(slide_paths(out, name)["nuclei"].read_bytes()).decode())))


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("kind, form", [("svs", "aperio"), ("tiff", "generic-tiff"), ("ome", "ome-tiff")])
def test_every_reader_reads_the_levels_pixel_size_and_windows_exactly(tmp_path, kind, form):
    image = np.random.default_rng(1).integers(0, 256, (700, 900, 3), dtype=np.uint8)
    path = tmp_path / ("s.ome.tif" if kind == "ome" else f"s.{kind}")
    write_slide(path, image, mpp=0.5, downsamples=(1, 2, 4), tile=128, kind=kind)
    assert is_slide(path)
    with open_slide(path) as reader:
        assert reader.format == form
        assert reader.shapes == [(700, 900), (350, 450), (175, 225)]
        assert reader.downsamples == pytest.approx([1, 2, 4])
        assert reader.mpp == pytest.approx(0.5)
        np.testing.assert_array_equal(reader.read(0, slice(130, 390), slice(250, 777)), image[130:390, 250:777])
        np.testing.assert_array_equal(reader.read(1, slice(3, 200), slice(100, 449)), image[::2, ::2][3:200, 100:449])


def test_plain_images_are_not_slides_and_a_damaged_slide_is_one_line(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((64, 64, 3), np.uint8))  # untiled: read whole, as before
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "bad.svs").write_bytes(b"II*\x00 this is not a slide")
    assert not is_slide(tmp_path / "plain.tif") and not is_slide(tmp_path / "x.png") and is_slide(tmp_path / "bad.svs")
    with pytest.raises(Exception) as caught:
        open_slide(tmp_path / "bad.svs")
    assert "bad.svs" in str(caught.value) and "cannot be read as a slide" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_level_closest_to_the_network_pixel_size_is_read(tmp_path):
    image = np.zeros((64, 64, 3), np.uint8)
    write_slide(tmp_path / "s.svs", image, mpp=0.0625, downsamples=(1, 2, 4, 8))
    with open_slide(tmp_path / "s.svs") as reader:
        assert best_level(reader, reader.mpp, 0.25) == 2  # 0.0625 * 4
        assert best_level(reader, reader.mpp, 0.3) == 2 and best_level(reader, reader.mpp, 0.4) == 3
        assert best_level(reader, None, 0.25) == 0  # no pixel size: as it is


# ----------------------------------------------------------------------------- tissue and plan


def test_tissue_is_found_and_glass_tiles_are_skipped(svs, canvas, net):
    truth = np.zeros(canvas.shape[:2], bool)
    for r, c in PIECES:
        truth[r : r + 400, c : c + 400] = True
    settings = Segmenter.from_checkpoint(net).settings
    with open_slide(svs) as reader:
        plan = plan_slide(reader, settings=settings, slide=SlideConfig(thumbnail_side=512))
    assert plan.level == 0 and plan.scale == pytest.approx(4)  # level 1, 325 pixels wide, is the thumbnail
    small = truth[::4, ::4][: plan.tissue.shape[0], : plan.tissue.shape[1]]
    assert (plan.tissue & small).sum() > 0.9 * small.sum()  # the synthetic pieces are tissue ...
    assert not plan.tissue[:, 930 // 4 :].any() and not plan.tissue[930 // 4 :].any()  # ... the glass is not
    assert plan.total == 12 and len(plan.windows) == 9  # the right-hand column of tiles is glass only
    assert all(w.core[1].start < 880 for w in plan.windows)
    blank = np.full((100, 100, 3), 240, np.uint8)
    assert not find_tissue(blank, min_area=10).any()  # an empty slide has no tissue


# ----------------------------------------------------------------------------- outputs


@pytest.fixture(scope="module")
def segmented(svs, net, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assert main(["segment", str(svs), "--out", str(out), "--model", str(net), "--quiet",
                 "--workers", "1"]) == 0
    return out


def test_a_slide_gives_geojson_a_table_a_tissue_mask_a_thumbnail_and_a_summary(segmented, canvas):
    paths = slide_paths(segmented, "slide")
    summary = json.loads(paths["summary"].read_text())
    collection = json.loads(paths["geojson"].read_text())
    rows = _nuclei(segmented, "slide")
    assert summary["nuclei"] == len(rows) == len(collection["features"]) >= 100
    assert summary["slide"]["format"] == "aperio" and summary["slide"]["tissue_tiles"] == 9
    assert [int(r["id"]) for r in rows] == list(range(1, len(rows) + 1))
    assert [f["properties"]["nucleus"] for f in collection["features"]] == list(range(1, len(rows) + 1))
    # every nucleus once: painted back, no two overlap by more than a seam's pixels and each keeps its area
    label = rasterize(collection, canvas.shape[:2])
    areas = np.bincount(label.ravel(), minlength=len(rows) + 1)[1:]
    assert (areas > 0).all() and np.abs(areas - np.array([float(r["area"]) for r in rows])).max() <= 0.05 * areas.max()
    assert not paths["tiles"].exists()  # the journal goes once the summary is written
    assert paths["thumbnail"].is_file() and paths["tissue"].is_file()
    assert (segmented / "summary.csv").read_text().count("\n") == 2


def test_seams_keep_each_nucleus_once_and_whole(segmented, canvas, net):
    """The slide's nuclei against one segmentation of the whole canvas with the same stains: the nuclei that
    straddle a tile seam are there, whole, once."""
    from ssimnet.tool.slide import slide_stains

    segmenter = Segmenter.from_checkpoint(net)
    with open_slide(json.loads(slide_paths(segmented, "slide")["summary"].read_text())["source"]) as reader:
        plan = plan_slide(reader, settings=segmenter.settings)
        stains = slide_stains(reader, plan, segmenter)
    whole = segmenter.segment_tile(canvas[:, :900], stains, tile_size=1024)  # the network's tiles over it: one
    tiled = rasterize(json.loads(slide_paths(segmented, "slide")["geojson"].read_text()), canvas.shape[:2])[:, :900]
    seam = TILE - 2 * HALO  # the first core's side
    crossing = np.unique(whole[seam - 1 : seam + 1, :])  # nuclei of the one-piece map across a seam
    crossing = crossing[crossing > 0]
    assert len(crossing) >= 5
    matched = 0
    for nucleus in crossing:
        mask = whole == nucleus
        ids, counts = np.unique(tiled[mask], return_counts=True)
        best = ids[np.argmax(counts)]
        if best and (tiled == best).sum() and counts.max() / (mask | (tiled == best)).sum() > 0.8:
            matched += 1
    assert matched >= 0.8 * len(crossing)  # whole, and not cut in two at the seam


def test_a_pyramid_level_is_read_and_the_outputs_are_in_level_0_pixels(canvas, net, tmp_path):
    """The same pixels as level 0 at 0.25 um, or as level 1 of a slide four times finer: the nuclei are the
    same, their coordinates four times larger."""
    crop = canvas[:500, :500]
    write_slide(tmp_path / "coarse.svs", crop, mpp=0.25, downsamples=(1, 4))
    write_slide(tmp_path / "fine.svs", np.repeat(np.repeat(crop, 4, axis=0), 4, axis=1), mpp=0.0625,
                downsamples=(1, 4, 16))
    settings = _settings(net, slide=SlideConfig(thumbnail_side=500))
    segmenter = Segmenter.from_checkpoint(net)
    for name in ("coarse", "fine"):
        segment_file(Job(tmp_path / f"{name}.svs", name), tmp_path / "out", settings, segmenter)
    coarse, fine = (json.loads(slide_paths(tmp_path / "out", n)["geojson"].read_text())["features"]
                    for n in ("coarse", "fine"))
    assert len(coarse) == len(fine) >= 20
    for a, b in zip(coarse, fine):
        np.testing.assert_allclose(4 * np.asarray(a["geometry"]["coordinates"][0]),
                                   np.asarray(b["geometry"]["coordinates"][0]), atol=1e-6)
    rows_c, rows_f = _nuclei(tmp_path / "out", "coarse"), _nuclei(tmp_path / "out", "fine")
    for a, b in zip(rows_c, rows_f):
        assert float(b["centroid_col"]) == pytest.approx((float(a["centroid_col"]) + 0.5) * 4 - 0.5)
        assert float(b["area"]) == pytest.approx(16 * float(a["area"]))
        assert float(b["area_um2"]) == pytest.approx(float(a["area_um2"]))
    summary = json.loads(slide_paths(tmp_path / "out", "fine")["summary"].read_text())["slide"]
    assert summary["level"] == 1 and summary["level_mpp"] == pytest.approx(0.25)


def test_a_roi_restricts_the_work_to_its_polygons(svs, net, tmp_path, segmented):
    roi = tmp_path / "roi.geojson"
    ring = [[50, 50], [440, 50], [440, 440], [50, 440], [50, 50]]
    roi.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"objectType": "annotation"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}))
    assert len(read_roi(roi)) == 1
    assert main(["segment", str(svs), "--out", str(tmp_path / "o"), "--model", str(net), "--quiet",
                 "--workers", "1", "--roi", str(roi)]) == 0
    rows = _nuclei(tmp_path / "o", "slide")
    every = _nuclei(segmented, "slide")
    xy = np.array([[float(r["centroid_col"]) + 0.5, float(r["centroid_row"]) + 0.5] for r in rows])
    assert len(rows) >= 20 and (xy >= 50).all() and (xy <= 440).all()
    inside = [r for r in every if 50 <= float(r["centroid_col"]) + 0.5 <= 440 and 50 <= float(r["centroid_row"]) + 0.5 <= 440]
    mine = {(round(float(r["centroid_row"])), round(float(r["centroid_col"]))) for r in rows}
    same = [r for r in inside if (round(float(r["centroid_row"])), round(float(r["centroid_col"]))) in mine]
    assert len(same) >= 0.95 * max(len(inside), len(rows))  # the slide's own nuclei there (same stains; the
    # tiles are cut to the annotation, so a nucleus at its edge may come out otherwise)
    summary = json.loads(slide_paths(tmp_path / "o", "slide")["summary"].read_text())
    assert summary["slide"]["tissue_tiles"] == 4


def test_roi_errors_are_one_line(svs, tmp_path, capsys):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "Point", "coordinates": [1, 2]}')
    assert main(["segment", str(svs), "--out", str(tmp_path / "o"), "--roi", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.geojson" in err and "no Polygon" in err and "\n" not in err
    assert not (tmp_path / "o" / "slide_summary.json").exists()


# ----------------------------------------------------------------------------- resume and Dask


def test_a_killed_run_resumes_at_the_first_unfinished_tile_and_ends_with_the_same_bytes(
        svs, segmented, net, tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "ssimnet", "segment", str(svs), "--out", str(out), "--model",
               str(net), "--quiet", "--workers", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = slide_paths(out, "slide")["tiles"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(journal.glob("*/*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(journal.glob("*/*.json")))
    assert 2 <= finished < 9, finished  # killed part way
    from ssimnet.tool.batch import _TEMPORARY

    left = [p.name for p in out.iterdir() if p.is_file() and p.name.startswith(".")]
    assert left and all(_TEMPORARY.fullmatch(n) for n in left), left  # outputs being written: a later run clears them
    assert not slide_paths(out, "slide")["summary"].exists()
    assert main(command[3:]) == 0  # resumed (in this process: the same command)
    summary = json.loads(slide_paths(out, "slide")["summary"].read_text())
    assert summary["slide"]["resumed_tiles"] >= finished - 1  # a tile being written when killed is redone
    assert _outputs(out, "slide") == _outputs(segmented, "slide")


def test_worker_processes_and_a_dask_cluster_give_the_same_outputs(svs, segmented, net, tmp_path):
    settings = _settings(net)
    segmenter = Segmenter.from_checkpoint(net)
    job = Job(svs, "slide")
    assert run_batch([job], tmp_path / "pool", dataclasses.replace(settings, geojson_gz=True), segmenter, workers=2) == []
    assert run_batch([job], tmp_path / "dask", settings, segmenter, workers=2, scheduler="local") == []
    assert _outputs(tmp_path / "pool", "slide") == _outputs(segmented, "slide") == _outputs(tmp_path / "dask", "slide")
    packed = slide_paths(tmp_path / "pool", "slide")["geojson_gz"].read_bytes()  # --geojson-gz: the same GeoJSON
    assert gzip.decompress(packed) == _outputs(segmented, "slide")["geojson"]
    assert not slide_paths(tmp_path / "dask", "slide")["geojson_gz"].exists()


def test_a_changed_setting_starts_a_new_journal(svs, net, tmp_path):
    """Tiles journalled with other settings are not reused: the journal is keyed like the outputs."""
    from ssimnet.tool.batch import job_key
    from ssimnet.tool.slide_files import _journal

    job = Job(svs, "slide")
    a = _settings(net)
    b = dataclasses.replace(a, inference=dataclasses.replace(a.inference, min_size=a.inference.min_size + 5))
    assert len({job_key(job, a), job_key(job, b), job_key(job, dataclasses.replace(a, roi=str(svs)))}) == 3
    root = slide_paths(tmp_path, "slide")["tiles"]
    old = _journal(root, job_key(job, a))
    (old / "000000.json").write_text("{}")
    assert _journal(root, job_key(job, a)) == old and (old / "000000.json").exists()  # the same key resumes
    new = _journal(root, job_key(job, b))
    assert [p.name for p in root.iterdir()] == [new.name] and not any(new.iterdir())  # another key starts afresh


def test_a_damaged_slide_or_one_without_tissue_is_one_line_and_no_output(tmp_path, net, capsys):
    (tmp_path / "bad.svs").write_bytes(b"II*\x00" + bytes(200))
    write_slide(tmp_path / "glass.svs", np.full((600, 600, 3), 238, np.uint8), mpp=0.25, downsamples=(1, 4))
    for name, problem in (("bad.svs", "cannot be read as a slide"), ("glass.svs", "has no tissue")):
        out = tmp_path / f"out-{name}"
        assert main(["segment", str(tmp_path / name), "--out", str(out), "--model", str(net), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and name in err and problem in err, err
        assert not any(p.is_file() for p in out.rglob("*")) if out.exists() else True


def test_the_book_shows_the_committed_benchmark_of_a_slide():
    """book/own_images.md includes benchmarks/results/slide.md, which is the table of slide.json."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_slide", root / "benchmarks" / "bench_slide.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = json.loads((root / "benchmarks" / "results" / "slide.json").read_text())
    assert (root / "benchmarks" / "results" / "slide.md").read_text() == bench.table(results)
    assert "../benchmarks/results/slide.md" in (root / "book" / "own_images.md").read_text()
    assert {r["run"] for r in results["runs"]} == set(bench.RUNS)
