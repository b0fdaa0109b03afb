"""`ssimnet segment` on folders: inputs, resumption, summary, GeoJSON, worker processes, Dask, large regions."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import SMOKE, overlap

from ssimnet.cli import main
from ssimnet.config import NETWORK_MPP
from ssimnet.data import DataError, read_label, write_image
from ssimnet.net.checkpoint import load_model, save_model
from ssimnet.net.onnxnet import export_onnx
from ssimnet.net.train import Trainer
from ssimnet.predict import Segmentation
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.batch import BatchSettings, Job, find_images, is_done, output_paths, segment_file
from ssimnet.tool.geojson import rasterize
from ssimnet.tool.segmenter import Segmenter


@pytest.fixture(scope="module")
def checkpoint(segmenting_checkpoint) -> Path:
    """A trained network that separates many nuclei, as segment takes it with --model."""
    return segmenting_checkpoint


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    """The checkpoint's network exported to ONNX with its settings, as segment takes it with --model."""
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    trainer, inference = load_model(checkpoint)
    path.write_bytes(export_onnx(trainer.model, inference=inference))
    return path


@pytest.fixture(scope="module")
def other(checkpoint, tmp_path_factory) -> Path:
    """The same architecture and settings with other (untrained) weights."""
    path = tmp_path_factory.mktemp("other") / "other.pt"
    trainer, inference = load_model(checkpoint)
    save_model(path, Trainer.new(trainer.config, seed=1, device="cpu").state(), inference)
    return path


@pytest.fixture()
def folder(tmp_path) -> Path:
    root = tmp_path / "slides"
    for i, name in enumerate(["a.png", "sub/b.png", "sub/deeper/c.tif"]):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = synthetic_tile((96, 128), seed=10 + i).image
        if name.endswith(".tif"):
            tifffile.imwrite(path, image)
        else:
            write_image(path, image)
    (root / "notes.txt").write_text("not an image")
    return root


def test_find_images_searches_folders_and_patterns(folder, tmp_path):
    jobs = find_images([folder])
    assert [j.name for j in jobs] == ["a", "sub/b", "sub/deeper/c"]
    assert [j.name for j in find_images([str(folder / "sub" / "*.png")])] == ["b"]
    assert [j.name for j in find_images([str(folder / "**" / "*.tif")])] == ["c"]
    with pytest.raises(DataError, match="no file matches"):
        find_images([str(folder / "*.jpg")])
    (tmp_path / "other").mkdir()
    write_image(tmp_path / "other" / "a.png", synthetic_tile((64, 64), seed=1).image)
    write_image(tmp_path / "other" / "a\nb.png", synthetic_tile((64, 64), seed=1).image)
    jobs = find_images([folder / "a.png", tmp_path / "other" / "a.png", folder / "a.png", tmp_path / "other"])
    assert [(j.path, j.name) for j in jobs] == [(folder / "a.png", "a"), (tmp_path / "other" / "a.png", "a-2"),
                                               (tmp_path / "other" / "a\nb.png", "a_b")]


def _segment(folder: Path, out: Path, checkpoint: Path, *extra: str) -> int:
    return main(["segment", str(folder), "--out", str(out), "--model", str(checkpoint), "--profile", "smoke",
                 "--finetune-epochs", "0", "--quiet", *extra])


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not p.name.endswith("summary.json") and p.name != "summary.csv"}


def test_folder_batch_writes_every_output_and_a_summary_then_resumes(folder, tmp_path, checkpoint, capsys):
    out = tmp_path / "out"
    assert _segment(folder, out, checkpoint) == 0
    for name in ("a", "sub/b", "sub/deeper/c"):
        paths = output_paths(out, name)
        assert all(p.is_file() for p in paths.values()), name
        label = read_label(paths["label"])
        with open(paths["nuclei"]) as f:
            rows = list(csv.DictReader(f))
        collection = json.loads(paths["geojson"].read_text())
        assert len(rows) == len(collection["features"]) == len(np.unique(label[label > 0]))
        assert np.array_equal(rasterize(collection, label.shape), label)  # the polygons are the label map
    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert [r["image"] for r in summary] == ["a", "sub/b", "sub/deeper/c"]
    a = summary[0]
    label = read_label(out / "a_label.png")
    assert int(a["nuclei"]) == len(np.unique(label[label > 0])) and (int(a["width"]), int(a["height"])) == (128, 96)
    assert float(a["mean_area"]) == pytest.approx(np.count_nonzero(label) / int(a["nuclei"]))
    capsys.readouterr()

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*_label.png")}
    assert _segment(folder, out, checkpoint) == 0  # resumed: nothing left to do
    assert "3 of 3 images already done" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*_label.png")} == before
    write_image(folder / "a.png", synthetic_tile((96, 128), seed=99).image)  # new pixels under an old name
    assert _segment(folder, out, checkpoint) == 0
    assert "2 of 3 images already done" in capsys.readouterr().out
    assert _segment(folder, out, checkpoint, "--overwrite") == 0
    assert "already done" not in capsys.readouterr().out


def test_one_bad_file_does_not_stop_the_others(folder, tmp_path, checkpoint, capsys):
    (folder / "sub" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert _segment(folder, out, checkpoint) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0] and "cannot read image" in err[0]
    done = {j.name for j in find_images([folder]) if is_done(out, j, _settings(checkpoint))}
    assert done == {"a", "sub/b", "sub/deeper/c"}


def test_an_unreadable_file_is_listed_and_the_others_are_done(folder, checkpoint):
    """A file the user may not read (mode 000) is one line on stderr; the batch goes on.  Root reads any file,
    so as root the batch runs as user nobody (setpriv), in a folder nobody may use."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    if as_nobody and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: every file is readable")
    root = Path(tempfile.mkdtemp(prefix="ssimnet-unreadable-"))
    try:
        root.chmod(0o777)
        shutil.copytree(folder, root / "slides")
        shutil.copy(checkpoint, root / "net.pt")
        for path in [root / "slides", *(root / "slides").rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o644)
        secret = root / "slides" / "sub" / "secret.png"
        write_image(secret, synthetic_tile((96, 128), seed=40).image)
        secret.chmod(0o000)
        out = root / "out"
        done = subprocess.run([*as_nobody, sys.executable, "-m", "ssimnet", "segment", str(root / "slides"),
                               "--out", str(out), "--model", str(root / "net.pt"), "--profile", "smoke",
                               "--finetune-epochs", "0", "--quiet", "--workers", "1"],
                              capture_output=True, text=True, cwd=root, env={**os.environ, "HOME": str(root)})
        err = done.stderr.strip().splitlines()
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert len(err) == 1 and "secret.png" in err[0] and "permission denied" in err[0], err
        assert sorted(p.name for p in out.rglob("*_summary.json")) == ["a_summary.json", "b_summary.json",
                                                                       "c_summary.json"]
        assert not list(out.rglob("secret*"))
    finally:
        for path in root.rglob("*"):
            path.chmod(0o777 if path.is_dir() else 0o666)
        shutil.rmtree(root)


def _settings(checkpoint: Path, *, mpp: float | None = None, **changes) -> BatchSettings:
    """The batch settings segment makes for `checkpoint` with --profile smoke --finetune-epochs 0."""
    from ssimnet.data import file_digest

    inference = dataclasses.replace(Segmenter.from_checkpoint(checkpoint).settings, finetune_epochs=0, **changes)
    return BatchSettings(inference=inference, seed=0, mpp=mpp, min_side=1, pseudo=SMOKE.pseudo,
                         why="fine-tuning needs one (use --finetune-epochs 0)", model=file_digest(checkpoint))


@pytest.mark.parametrize("network", ["checkpoint", "exported"])
def test_worker_processes_and_a_dask_cluster_give_the_same_outputs(folder, tmp_path, request, network, other):
    checkpoint = request.getfixturevalue(network)
    assert _segment(folder, tmp_path / "one", checkpoint, "--workers", "1") == 0
    assert _segment(folder, tmp_path / "two", checkpoint, "--workers", "2") == 0
    assert _segment(folder, tmp_path / "dask", checkpoint, "--workers", "2", "--scheduler", "local") == 0
    one = _outputs(tmp_path / "one")
    assert len(one) == 3 * 4 and one == _outputs(tmp_path / "two") == _outputs(tmp_path / "dask")
    labels = [read_label(output_paths(tmp_path / "one", j.name)["label"]) for j in find_images([folder])]
    assert min(int(label.max()) for label in labels) >= 5  # a network that separates nuclei, so that ...
    assert _segment(folder, tmp_path / "other", other, "--workers", "1") == 0
    others = [read_label(output_paths(tmp_path / "other", j.name)["label"]) for j in find_images([folder])]
    assert all(overlap(a, b) < 0.9 for a, b in zip(labels, others))  # ... other weights would show


def test_an_onnx_network_segments_like_its_checkpoint_and_only_predicts(folder, tmp_path, checkpoint, exported, capsys):
    assert _segment(folder, tmp_path / "torch", checkpoint) == 0
    assert _segment(folder, tmp_path / "onnx", exported) == 0
    for name in ("a", "sub/b", "sub/deeper/c"):
        a, b = (read_label(output_paths(tmp_path / run, name)["label"]) for run in ("torch", "onnx"))
        assert a.max() >= 5 and overlap(a, b) > 0.99 and abs(int(a.max()) - int(b.max())) <= 1, name
    capsys.readouterr()
    code = main(["segment", str(folder), "--out", str(tmp_path / "tuned"), "--model", str(exported),
                 "--profile", "smoke", "--finetune-epochs", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "net.onnx: an ONNX network only predicts on the CPU" in err
    assert not (tmp_path / "tuned").exists() or not any((tmp_path / "tuned").iterdir())


def _fake(label: np.ndarray) -> Segmentation:
    return Segmentation(label=label.astype(np.int32), probability=None, pseudo=None, finetune_history=[])


def _threshold(rgb: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.label(ndi.binary_fill_holes(rgb.mean(axis=-1) < 150))[0]


def test_a_large_region_goes_tile_by_tile_into_a_32_bit_tiff(tmp_path, checkpoint, monkeypatch):

    import ssimnet.tool.segmenter

    # a deterministic segmenter in place of the network: the test is about the tiles' plumbing
    monkeypatch.setattr(ssimnet.tool.segmenter, "segment_image", lambda rgb, *a, **k: _fake(_threshold(rgb)))
    path = tmp_path / "region.png"
    write_image(path, synthetic_tile((300, 420), seed=5).image)
    settings = _settings(checkpoint, region_side=256, tile_size=128 + 2 * 48, region_halo=48)
    row = segment_file(Job(path, "region"), tmp_path / "out", settings, Segmenter.from_checkpoint(checkpoint))
    paths = output_paths(tmp_path / "out", "region")
    label = tifffile.imread(paths["label"].with_suffix(".tif"))
    assert label.dtype == np.uint32 and label.shape == (300, 420) and row["tiles"] == 3 * 4
    ids = np.unique(label)[1:]
    assert row["nuclei"] == len(ids) and np.array_equal(ids, np.arange(1, len(ids) + 1))  # region-wide ids, once each
    collection = json.loads(paths["geojson"].read_text())
    assert sorted(f["properties"]["nucleus"] for f in collection["features"]) == ids.tolist()
    with open(paths["nuclei"]) as f:
        rows = {int(r["id"]): r for r in csv.DictReader(f)}
    for feature in collection["features"][-3:]:  # measurements in region coordinates, in the CSV and the GeoJSON
        nucleus = feature["properties"]["nucleus"]
        r, c = np.argwhere(label == nucleus).mean(axis=0)
        assert feature["properties"]["measurements"]["centroid_row"] == pytest.approx(r)
        assert float(rows[nucleus]["centroid_col"]) == pytest.approx(c)
    back = rasterize(collection, label.shape)
    assert min(((back == i) & (label == i)).sum() / ((back == i) | (label == i)).sum() for i in ids) >= 0.95
    whole = _threshold(synthetic_tile((300, 420), seed=5).image)
    assert np.array_equal(label > 0, whole > 0) and len(ids) == whole.max()  # every nucleus once, whole
    assert not paths["overlay"].exists()


def test_stain_normalisation_is_a_setting_of_the_batch(folder, tmp_path, checkpoint, capsys):
    out = tmp_path / "out"
    assert _segment(folder, out, checkpoint) == 0  # with --model: the network's setting, auto
    capsys.readouterr()
    assert _segment(folder, out, checkpoint, "--normalize", "auto") == 0
    assert "3 of 3 images already done" in capsys.readouterr().out
    assert json.loads((out / "a_summary.json").read_text())["normalization"] == "normalised"
    assert _segment(folder, out, checkpoint, "--normalize") == 0  # on: another setting, every image again
    assert "already done" not in capsys.readouterr().out
    assert _segment(folder, out, checkpoint, "--no-normalize") == 0  # and off
    assert "already done" not in capsys.readouterr().out
    assert json.loads((out / "a_summary.json").read_text())["normalization"] == "not normalised (off)"
    with open(out / "summary.csv") as f:
        assert {row["normalization"] for row in csv.DictReader(f)} == {"not normalised (off)"}
    assert _segment(folder, out, checkpoint, "--normalize", "off") == 0  # --normalize off is --no-normalize
    assert "3 of 3 images already done" in capsys.readouterr().out
    jobs = find_images([folder])
    assert all(is_done(out, j, _settings(checkpoint, normalize="off")) for j in jobs)
    assert not any(is_done(out, j, _settings(checkpoint, normalize="on")) for j in jobs)


def test_mpp_resamples_for_the_network_and_labels_the_image_grid(folder, tmp_path, checkpoint, capsys):
    image = folder / "a.png"
    same, plain, half = tmp_path / "same", tmp_path / "plain", tmp_path / "half"
    assert _segment(image, plain, checkpoint) == 0
    assert _segment(image, same, checkpoint, "--mpp", str(NETWORK_MPP)) == 0  # the network's own pixel size: a no-op
    assert (same / "a_label.png").read_bytes() == (plain / "a_label.png").read_bytes()
    assert _segment(image, half, checkpoint, "--mpp", str(2 * NETWORK_MPP)) == 0  # 20x: seen twice as large
    assert read_label(half / "a_label.png").shape == (96, 128)  # labels on the image's own grid
    assert json.loads((half / "a_summary.json").read_text())["key"] != json.loads((plain / "a_summary.json").read_text())["key"]
    capsys.readouterr()
    assert main(["segment", str(image), "--out", str(tmp_path / "none"), "--mpp", "0.5", "--adapt", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ssimnet: error: --mpp resamples the images for a trained network; it does not go with --adapt"
    assert not (tmp_path / "none").exists()
    assert _segment(image, tmp_path / "bad", checkpoint, "--mpp", "0") == 2
    assert capsys.readouterr().err == "ssimnet: error: segment: argument --mpp: 0 µm per pixel is outside 0.05-5\n"


def test_mpp_segments_at_the_network_pixel_size(tmp_path, checkpoint, monkeypatch):
    import ssimnet.tool.segmenter

    seen = []

    def threshold(rgb, *a, **k):
        seen.append(rgb.shape[:2])
        return _fake(_threshold(rgb))

    monkeypatch.setattr(ssimnet.tool.segmenter, "segment_image", threshold)
    image = synthetic_tile((96, 128), seed=4).image
    write_image(tmp_path / "a.png", image)
    trainer = Segmenter.from_checkpoint(checkpoint)
    segment_file(Job(tmp_path / "a.png", "a"), tmp_path / "out", _settings(checkpoint, mpp=2 * NETWORK_MPP), trainer)
    assert seen == [(192, 256)]  # a 20x image, seen at the network's 40x
    label = read_label(tmp_path / "out" / "a_label.png")
    assert label.shape == (96, 128)
    truth = _threshold(image) > 0
    assert ((label > 0) & truth).sum() / ((label > 0) | truth).sum() >= 0.9  # the same nuclei, on the image's grid
    # large as the network sees it: tiles of the network's size, smaller on the image
    seen.clear()
    settings = _settings(checkpoint, mpp=2 * NETWORK_MPP, region_side=150, tile_size=64 + 2 * 16, region_halo=16)
    row = segment_file(Job(tmp_path / "a.png", "b"), tmp_path / "out", settings, trainer)
    assert row["tiles"] == 3 * 4 and (tmp_path / "out" / "b_label.tif").is_file()
    assert max(max(s) for s in seen) <= 2 * (32 + 2 * 8)  # 32-px cores and 8-px halos on the image, doubled


def test_a_summary_without_nuclei_is_strict_json_with_empty_cells():
    """No NaN in summary.json (JSON has none; jq and browsers refuse it): a mean over no nuclei is null."""
    from ssimnet.tool.batch import _summary

    empty = {"area": [], "eccentricity": [], "mean_hematoxylin": []}
    row = _summary(Job(Path("x.png"), "x"), (64, 48), empty, tiles=1, seconds=0.5)
    assert row["nuclei"] == 0 and row["mean_area"] is None and row["median_area"] is None
    assert row["mean_eccentricity"] is None and row["mean_hematoxylin"] is None
    text = json.dumps(row, allow_nan=False)  # raises on NaN
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}")) == row
    one = _summary(Job(Path("x.png"), "x"), (64, 48), {"area": [30.0], "eccentricity": [float("nan")],
                                                       "mean_hematoxylin": [0.5]}, tiles=1, seconds=0.5)
    assert (one["mean_area"], one["median_area"], one["mean_eccentricity"], one["mean_hematoxylin"]) == \
        (30.0, 30.0, None, 0.5)
