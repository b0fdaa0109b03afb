"""The pseudo-label pipeline of one image and of a dataset split: determinism, cache, no ground truth, bad input."""

from __future__ import annotations

import csv
import dataclasses
import re
import warnings

import numpy as np
import pytest

from ssimnet.cli import main
from ssimnet.config import PseudoLabelConfig, SyntheticConfig
from ssimnet.data import DataError, DataErrors, list_samples, write_image
from ssimnet.datasets import write_synthetic_dataset
from ssimnet.pseudo import pseudo_labels
from ssimnet.runs.pipeline import build_pseudo_labels, pseudo_label_key
from ssimnet.runs.store import load_pseudo_labels
from ssimnet.synthetic import synthetic_tile

CONFIG = PseudoLabelConfig(patch_size=128, patch_stride=64, stain_samples=5000, fcm_samples=5000)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_synthetic_dataset(root, SyntheticConfig(n_train=3, n_test=1, shape=(192, 192), seed=4))
    return root


def _assert_same(a, b):
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), field.name
        else:
            assert x == y, field.name


def test_pipeline_is_deterministic_bit_for_bit():
    image = synthetic_tile((192, 192), seed=2).image
    _assert_same(pseudo_labels(image, CONFIG, seed=1), pseudo_labels(image, CONFIG, seed=1))


def test_pipeline_outputs_are_consistent():
    tile = synthetic_tile((192, 192), seed=3)
    r = pseudo_labels(tile.image, CONFIG)
    assert ((r.soft > 0) == r.candidates).all()
    assert r.soft[r.candidates].min() == 0.5 and r.soft.max() < 1.0
    assert set(np.unique(r.voronoi)) <= {0, 1, 2}
    assert len(r.patches) == 4 and all(np.isfinite(p.usmi) for p in r.patches)
    assert r.hematoxylin.shape == tile.image.shape and r.fcm.shape == tile.label.shape


@pytest.mark.parametrize(
    "name,image",
    [
        ("all-white", np.full((160, 160, 3), 255, np.uint8)),
        ("all-dark", np.zeros((160, 160, 3), np.uint8)),
    ],
)
def test_blank_tiles_give_empty_labels_not_nan(name, image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pseudo_labels(image, CONFIG)
    assert r.stain_fallback and not r.candidates.any() and not r.soft.any()
    assert (r.voronoi == 2).all()
    assert all(p.usmi == float("inf") and p.n_components == 0 for p in r.patches)


def test_single_giant_component():
    image = np.full((160, 160, 3), 235, np.uint8)
    image[10:150, 10:150] = (90, 60, 150)
    image[60:100, 60:100] = (200, 120, 170)  # some eosin so that two stains exist
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pseudo_labels(image, CONFIG)
    assert np.isfinite(r.soft).all() and r.soft.max() < 1.0
    assert all(p.n_components <= 2 for p in r.patches) and all(p.usmi == float("inf") for p in r.patches)


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match="100x300 pixels is smaller than a 128x128 patch"):
        pseudo_labels(np.zeros((100, 300, 3), np.uint8), CONFIG)
    with pytest.raises(ValueError, match="RGB"):
        pseudo_labels(np.zeros((200, 200), np.uint8), CONFIG)


def test_split_never_reads_labels_and_is_cached(dataset, tmp_path):
    # Replace every label with garbage: the pipeline must not notice.
    for sample in list_samples(dataset, "train"):
        sample.label_path.write_bytes(b"not a png")
    run = tmp_path / "run"
    result = build_pseudo_labels(dataset, run, CONFIG, split="train", progress=False)
    assert result.directory == run / "pseudo" / "train" / pseudo_label_key(CONFIG, 0)
    assert result.names == ["synthetic-train-000", "synthetic-train-001", "synthetic-train-002"]
    assert result.n_patches == 3 * 4 and len(result.kept) == round(0.7 * 12)
    rows = list(csv.DictReader(open(result.directory / "patches.csv")))
    kept_usmi = sorted(float(r["usmi"]) for r in rows if r["kept"] == "True")
    dropped_usmi = [float(r["usmi"]) for r in rows if r["kept"] == "False"]
    assert max(kept_usmi) <= min(dropped_usmi)

    stamps = {n: result.path(n).stat().st_mtime_ns for n in result.names}
    again = build_pseudo_labels(dataset, run, CONFIG, split="train", progress=False)
    assert again.kept == result.kept
    assert {n: again.path(n).stat().st_mtime_ns for n in again.names} == stamps  # reused

    # an image whose pixels change is recomputed; the others are not
    changed = list_samples(dataset, "train", labels=False)[1]
    write_image(changed.image_path, synthetic_tile((192, 192), seed=99).image)
    third = build_pseudo_labels(dataset, run, CONFIG, split="train", progress=False)
    assert third.path(changed.name).stat().st_mtime_ns != stamps[changed.name]
    assert third.path(result.names[0]).stat().st_mtime_ns == stamps[result.names[0]]

    # other settings go to another directory
    other = build_pseudo_labels(dataset, run, dataclasses.replace(CONFIG, keep_fraction=0.5), progress=False)
    assert other.directory != result.directory and len(other.kept) == 6


def test_workers_do_not_change_the_result(dataset, tmp_path):
    one = build_pseudo_labels(dataset, tmp_path / "a", CONFIG, split="train", workers=1, progress=False)
    two = build_pseudo_labels(dataset, tmp_path / "b", CONFIG, split="train", workers=2, progress=False)
    assert one.kept == two.kept
    for name in one.names:
        _assert_same(load_pseudo_labels(one.path(name)), load_pseudo_labels(two.path(name)))


def test_bad_image_in_a_split_names_the_file(tmp_path):
    write_image(tmp_path / "train" / "images" / "small.png", synthetic_tile((64, 64), seed=0).image)
    write_image(tmp_path / "train" / "images" / "blank.png", np.zeros((192, 192, 3), np.uint8))
    write_image(tmp_path / "train" / "images" / "good.png", synthetic_tile((192, 192), seed=1).image)
    (tmp_path / "train" / "images" / "broken.png").write_bytes(b"\x89PNG broken")
    for workers in (1, 2):  # the errors cross the process pool, and the good image is still done
        with pytest.raises(DataErrors) as info:
            build_pseudo_labels(tmp_path, tmp_path / f"run{workers}", CONFIG, workers=workers, progress=False)
        lines = str(info.value).splitlines()
        assert len(lines) == 3
        assert re.search(r"small\.png: image of 64x64 pixels is smaller than a 128x128 patch", lines[2])
        assert "blank.png: blank image" in lines[0] and "broken.png: cannot read image" in lines[1]
        done = tmp_path / f"run{workers}" / "pseudo" / "train" / pseudo_label_key(CONFIG, 0)
        assert sorted(p.name for p in done.iterdir()) == ["good.npz"]  # no temporary file left
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    with pytest.raises(DataError, match="not a pseudo-label file"):
        load_pseudo_labels(bad)


def test_cli_pseudo_labels(dataset, tmp_path, capsys):
    # the smoke profile uses 256-pixel patches: the 192-pixel tiles are too small
    assert main(["pseudo-labels", str(dataset), "--out", str(tmp_path), "--quiet", "--workers", "1", "--profile",
                 "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssimnet: error: ") and "smaller than a 256x256 patch" in err
    big = tmp_path / "big"
    write_synthetic_dataset(big, SyntheticConfig(n_train=2, n_test=0, shape=(256, 256)))
    assert main(["pseudo-labels", str(big), "--out", str(tmp_path / "run"), "--quiet", "--workers", "1", "--profile",
                 "smoke"]) == 0
    assert "2 images; 1 of 2 patches kept (alpha = 70%)" in capsys.readouterr().out
