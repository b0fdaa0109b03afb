"""`ssimnet.Segmenter`: the one way to segment, with the settings stored with the network."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import overlap

from ssimnet.cli import main
from ssimnet.config import TOOL_INFERENCE, get_profile
from ssimnet.data import DataError, read_image, read_label, write_image
from ssimnet.net.architecture import Architecture
from ssimnet.net.onnxnet import OnnxNetwork, with_inference
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.segmenter import Segmenter, settings_for
from ssimnet.tool.shipped import read_card, shipped_model_path

MONUSEG_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "monuseg" / "test" / "images"


@pytest.fixture(scope="module")
def pretrained() -> Segmenter:
    return Segmenter.pretrained()


def _cli_labels(image: Path, out: Path, *extra: str) -> np.ndarray:
    assert main(["segment", str(image), "--out", str(out), "--quiet", *extra]) == 0
    return read_label(out / f"{image.stem}_label.png")


def test_the_api_gives_the_command_line_pixels_on_a_synthetic_tile(pretrained, tmp_path):
    image = synthetic_tile((300, 260), seed=8).image
    write_image(tmp_path / "tile.png", image)
    labels = pretrained.segment(read_image(tmp_path / "tile.png")).labels
    assert labels.max() >= 5
    np.testing.assert_array_equal(labels, _cli_labels(tmp_path / "tile.png", tmp_path / "out"))
    # and an override is the option's: the same pixels again, other pixels than the default
    cc = pretrained.segment(image, instances="cc", min_object_probability=0.0).labels
    np.testing.assert_array_equal(cc, _cli_labels(tmp_path / "tile.png", tmp_path / "cc", "--instances", "cc",
                                                  "--min-object-probability", "0"))
    assert not np.array_equal(cc, labels)


@pytest.mark.skipif(not MONUSEG_TEST.is_dir(), reason="MoNuSeg is not in ../shared/data")
def test_the_api_gives_the_command_line_pixels_on_a_monuseg_test_image(pretrained, tmp_path):
    path = MONUSEG_TEST / "TCGA-2Z-A9J9-01A-01-TS1.png"
    labels = pretrained.segment(read_image(path)).labels
    assert labels.max() > 500  # a dense image: about 700 nuclei
    np.testing.assert_array_equal(labels, _cli_labels(path, tmp_path / "out"))


def test_the_settings_travel_with_the_network(pretrained):
    card = read_card()
    assert card["inference"] == dataclasses.asdict(pretrained.settings) == pretrained.stored()
    assert pretrained.settings == get_profile("cpu").for_tool().inference  # what ship_model.py stores
    torch_one = Segmenter.pretrained(torch=True)
    assert torch_one.settings == pretrained.settings and not isinstance(torch_one.network, OnnxNetwork)
    assert isinstance(pretrained.network, OnnxNetwork) and pretrained.network.inference == card["inference"]


def test_settings_for_a_network_without_stored_ones():
    boundary = Architecture(depth=2, width=4, out_channels=3, boundary=True)
    distance = Architecture(depth=2, width=4, out_channels=3)
    plain = Architecture(depth=2, width=4)
    assert settings_for(boundary).instances == "boundary"
    assert settings_for(distance).instances == "learned"
    # segment's defaults, but no references of training images it may not have learned from (mpp="auto")
    unknown = {"nucleus_scale": None, "nucleus_area": None}
    assert settings_for(plain) == dataclasses.replace(TOOL_INFERENCE, **unknown) and TOOL_INFERENCE.instances == "cc"
    assert TOOL_INFERENCE.nucleus_scale is not None  # the shipped network's, which it stores
    # an older checkpoint's inference fields are kept; a method the network cannot run gives way to its own
    assert settings_for(plain, {"instances": "distance", "min_size": 12}) == dataclasses.replace(
        TOOL_INFERENCE, instances="distance", min_size=12, **unknown)
    assert settings_for(plain, {"nucleus_scale": 5.0, "nucleus_area": 300.0}).nucleus_area == 300.0
    assert settings_for(plain, {"instances": "boundary"}).instances == "cc"
    with pytest.raises(ValueError, match="unknown inference settings: colour"):
        settings_for(plain, {"colour": "red"})


def test_overrides_are_checked(pretrained):
    image = synthetic_tile((64, 64), seed=1).image
    with pytest.raises(TypeError, match="unknown inference setting"):
        pretrained.segment(image, instance="cc")
    with pytest.raises(ValueError, match="needs a network trained with the learned separation output"):
        pretrained.segment(image, instances="learned")
    with pytest.raises(ValueError, match="only predicts"):
        pretrained.segment(image, finetune_epochs=1)
    with pytest.raises(ValueError, match="min_object_probability"):
        pretrained.with_settings(min_object_probability=1.0)
    assert pretrained.with_settings(tta=True).settings.tta and not pretrained.settings.tta  # a copy
    for bad in (image.astype(np.float32), image[..., 0], image[..., :2]):
        with pytest.raises(ValueError, match="expected an \\(H, W, 3\\) uint8 RGB image"):
            pretrained.segment(bad)


def test_a_stored_setting_decides_and_a_damaged_one_is_refused(tmp_path, pretrained):
    onnx = shipped_model_path(onnx=True).read_bytes()
    (tmp_path / "cc.onnx").write_bytes(with_inference(onnx, {**pretrained.stored(), "instances": "cc"}))
    assert Segmenter.from_checkpoint(tmp_path / "cc.onnx").settings.instances == "cc"
    (tmp_path / "bad.onnx").write_bytes(with_inference(onnx, {"tile_size": 3}))
    with pytest.raises(DataError, match="bad.onnx: stored inference settings: tile_size must be at least 16"):
        Segmenter.from_checkpoint(tmp_path / "bad.onnx")
    with pytest.raises(DataError, match="runs on the CPU"):
        Segmenter.from_checkpoint(tmp_path / "cc.onnx", device="cuda")


def test_a_large_image_goes_tile_by_tile_and_keeps_every_nucleus_once(pretrained):
    image = synthetic_tile((300, 420), seed=5).image
    small = dict(region_side=256, tile_size=224, region_halo=48)
    assert pretrained.is_region(image, **small) and not pretrained.is_region(image)
    whole = pretrained.segment(image)
    tiled = pretrained.segment(image, **small)
    assert tiled.tiles == 3 * 4 and tiled.probability is None  # 128-pixel cores
    ids = np.unique(tiled.labels)[1:]
    assert np.array_equal(ids, np.arange(1, len(ids) + 1)) and len(tiled.table["id"]) == len(ids)
    assert np.array_equal(np.sort(tiled.table["id"]), ids)
    assert overlap(tiled.labels, whole.labels) > 0.9 and abs(len(ids) - whole.labels.max()) <= 0.15 * len(ids)


def test_the_table_measures_the_labels(pretrained):
    image = synthetic_tile((200, 200), seed=3).image
    result = pretrained.segment(image)
    table = result.table
    assert len(table["id"]) == result.labels.max()
    areas = np.bincount(result.labels.ravel())[1:]
    assert table["area"].tolist() == areas.tolist() and np.all(np.isfinite(table["mean_hematoxylin"]))
    assert pretrained.segment(image, measure=False).table is None


def test_import_and_segment_load_neither_torch_nor_the_book_machinery(tmp_path):
    write_image(tmp_path / "tile.png", synthetic_tile((128, 128), seed=2).image)
    code = ("import sys, ssimnet; from ssimnet.data import read_image; "
            f"n = int(ssimnet.Segmenter.pretrained().segment(read_image({str(tmp_path / 'tile.png')!r})).labels.max()); "
            "heavy = [m for m in ('torch', 'jupyter_book', 'papermill', 'sphinx', 'nbformat', 'ssimnet.book.publish', "
            "'ssimnet.book', 'ssimnet.book.results', 'ssimnet.book.report') if m in sys.modules]; print(n, heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, heavy = done.stdout.split(" ", 1)
    assert int(count) > 0 and heavy.strip() == "[]", done.stdout + done.stderr


def test_segment_version_shows_the_stored_settings(capsys):
    assert main(["segment", "--version"]) == 0
    out = capsys.readouterr().out
    assert "segments with: instances boundary" in out and "min_object_probability 0.5" in out
    assert json.loads(json.dumps(read_card()["inference"]))["tile_size"] == 1024
