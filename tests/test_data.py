"""The dataset layer: layout, readers, validation, atomic writes, raw-format conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from ssimnet import data
from ssimnet.config import SyntheticConfig
from ssimnet.data import (
    DataError,
    list_samples,
    read_image,
    read_label,
    read_manifest,
    read_sample,
    write_image,
    write_label,
)
from ssimnet.datasets import (
    convert_cpm17,
    convert_monuseg,
    polygons_to_label,
    read_monuseg_xml,
    write_synthetic_dataset,
)
from ssimnet.errors import InputWarning

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MONUSEG = SHARED / "monuseg"
RAW_SAMPLE = SHARED / "monuseg-raw-sample"
needs_monuseg = pytest.mark.skipif(not MONUSEG.is_dir(), reason="MoNuSeg not present beside the checkout")
needs_raw = pytest.mark.skipif(not RAW_SAMPLE.is_dir(), reason="raw MoNuSeg sample not present beside the checkout")


def _rgb(h=8, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------- reading and validation


def test_image_round_trip_an_opaque_alpha_is_dropped_and_transparency_is_white(tmp_path):
    image = _rgb()
    write_image(tmp_path / "a.png", image)
    assert np.array_equal(read_image(tmp_path / "a.png"), image)
    opaque = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    Image.fromarray(opaque).save(tmp_path / "opaque.png")
    assert np.array_equal(read_image(tmp_path / "opaque.png"), image)
    half = opaque.copy()
    half[:, : image.shape[1] // 2, 3] = 0  # a transparent half, black underneath
    half[:, : image.shape[1] // 2, :3] = 0
    Image.fromarray(half).save(tmp_path / "half.png")
    with pytest.warns(InputWarning, match="50% of its pixels are transparent: composited onto white"):
        read = read_image(tmp_path / "half.png")
    assert (read[:, : image.shape[1] // 2] == 255).all() and np.array_equal(read[:, image.shape[1] // 2 :],
                                                                            image[:, image.shape[1] // 2 :])


def test_bad_images_are_rejected_with_the_file_named(tmp_path):
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((5, 5), np.uint16)).save(tmp_path / "gray16.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    cases = {
        "gray.png": "grayscale",
        "gray16.png": "grayscale",
        "junk.png": "cannot read image",
        "missing.png": "file not found",
    }
    for name, problem in cases.items():
        with pytest.raises(DataError, match=problem) as err:
            read_image(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name))
        assert "\n" not in str(err.value)


def test_sixteen_bit_rgb_tiff_is_rejected(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "deep.tif", np.zeros((6, 6, 3), np.uint16))
    with pytest.raises(DataError, match="8 bits per channel"):
        read_image(tmp_path / "deep.tif")


def test_label_round_trip_sixteen_bit(tmp_path):
    label = np.zeros((6, 7), np.int32)
    label[1:3, 1:3] = 40000  # beyond 8 bits, within 16
    label[4, 4] = 3
    write_label(tmp_path / "l.png", label)
    back = read_label(tmp_path / "l.png")
    assert back.dtype == np.int32 and np.array_equal(back, label)


def test_bad_labels_are_rejected(tmp_path):
    write_image(tmp_path / "rgb.png", _rgb())
    with pytest.raises(DataError, match="not an integer map"):
        read_label(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="16-bit"):
        write_label(tmp_path / "big.png", np.full((2, 2), 70000))
    with pytest.raises(ValueError, match="integer"):
        write_label(tmp_path / "float.png", np.zeros((2, 2)))


def test_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    write_image(target, _rgb(seed=1))
    before = target.read_bytes()

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, _rgb(seed=2))
    assert target.read_bytes() == before  # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temporary left behind


def _make_split(root, split, names, *, shape=(8, 10), label_shape=None):
    for i, name in enumerate(names):
        write_image(root / split / "images" / f"{name}.png", _rgb(*shape, seed=i))
        write_label(root / split / "labels" / f"{name}.png", np.zeros(label_shape or shape, np.int32))


def test_list_samples_and_read_sample(tmp_path):
    _make_split(tmp_path, "train", ["b", "a"])
    samples = list_samples(tmp_path, "train")
    assert [s.name for s in samples] == ["a", "b"]
    image, label = read_sample(samples[0])
    assert image.shape == (8, 10, 3) and label.shape == (8, 10)


def test_layout_errors(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        list_samples(tmp_path, "train")
    _make_split(tmp_path, "train", ["a"], label_shape=(8, 9))
    (tmp_path / "train" / "images" / "nolabel.png").write_bytes((tmp_path / "train" / "images" / "a.png").read_bytes())
    with pytest.raises(DataError, match="label not found for image nolabel.png"):
        list_samples(tmp_path, "train")
    unlabelled = list_samples(tmp_path, "train", labels=False)
    assert [s.label_path is None for s in unlabelled] == [False, True]
    with pytest.raises(DataError, match="size mismatch: label is 8x9 but image a.png is 8x10"):
        read_sample(unlabelled[0])
    (tmp_path / "test" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        list_samples(tmp_path, "test")


def test_manifest(tmp_path):
    assert read_manifest(tmp_path) == {}
    (tmp_path / "manifest.csv").write_text("name,split,organ\nx,train,liver\n")
    assert read_manifest(tmp_path) == {"x": "liver"}
    (tmp_path / "manifest.csv").write_text("name,split\nx,train\n")
    with pytest.raises(DataError, match="organ"):
        read_manifest(tmp_path)


@needs_monuseg
def test_shared_monuseg_layout():
    train, test = list_samples(MONUSEG, "train"), list_samples(MONUSEG, "test")
    assert (len(train), len(test)) == (30, 14)
    image, label = read_sample(test[0])
    assert image.shape == (1000, 1000, 3) and label.max() == len(np.unique(label)) - 1
    assert set(read_manifest(MONUSEG).values()) >= {"breast", "kidney", "lung", "brain"}


# ----------------------------------------------------------------- raw formats


def test_polygons_to_label_order_and_degenerate():
    square = np.array([[0, 0], [0, 3], [3, 3], [3, 0]])
    later = square + 2
    outside = np.array([[10, 10], [10, 12], [12, 12]])  # covers no pixel of a 6x6 image
    label = polygons_to_label([square, outside, later], (6, 6))
    assert label.max() == 2  # degenerate dropped, numbering consecutive
    assert label[2, 2] == 2  # later overwrites earlier
    assert label[0, 0] == 1


def test_monuseg_xml_vertices_are_one_based(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text(
        '<Annotations><Annotation><Regions>'
        '<Region Id="1"><Vertices><Vertex X="2" Y="3"/><Vertex X="5" Y="3"/><Vertex X="5" Y="6"/>'
        '<Vertex X="2" Y="6"/></Vertices></Region>'
        "</Regions></Annotation></Annotations>"
    )
    (poly,) = read_monuseg_xml(xml)
    assert np.array_equal(poly, [[2, 1], [2, 4], [5, 4], [5, 1]])  # (row, col), minus one
    xml.write_text("<Annotations><Region><Vertex X='a' Y='1'/></Region></Annotations>")
    with pytest.raises(DataError, match="without numeric X and Y"):
        read_monuseg_xml(xml)
    xml.write_text("<Annotations")
    with pytest.raises(DataError, match="not a valid XML"):
        read_monuseg_xml(xml)


@needs_raw
@needs_monuseg
def test_monuseg_raw_reader_reproduces_converted_labels(tmp_path):
    written = convert_monuseg(RAW_SAMPLE, tmp_path)
    assert [p.name for p in written] == ["test", "train"]
    for split in ("train", "test"):
        for sample in list_samples(tmp_path, split):
            image, label = read_sample(sample)
            ref_image, ref_label = read_sample(next(s for s in list_samples(MONUSEG, split) if s.name == sample.name))
            assert np.array_equal(image, ref_image)
            ours, ref = label > 0, ref_label > 0
            assert (ours & ref).sum() / (ours | ref).sum() >= 0.99
            assert label.max() == ref_label.max()


@needs_raw
def test_monuseg_single_folder_goes_to_the_given_split(tmp_path):
    convert_monuseg(RAW_SAMPLE / "MoNuSegTestData", tmp_path, split="test")
    assert [s.name for s in list_samples(tmp_path, "test")] == ["TCGA-2Z-A9J9-01A-01-TS1"]
    assert not (tmp_path / "train").exists()


def _cpm17_folder(root, names, *, fractional=False, float_map=True):
    (root / "Images").mkdir(parents=True)
    (root / "Labels").mkdir()
    for i, name in enumerate(names):
        Image.fromarray(np.dstack([_rgb(12, 14, seed=i), np.full((12, 14), 255, np.uint8)])).save(root / "Images" / f"{name}.png")
        inst = np.zeros((12, 14))
        inst[2:5, 2:5], inst[7:10, 8:12] = 4, 9  # non-consecutive ids, stored as double like CPM17
        if fractional:
            inst[0, 0] = 0.5
        savemat(root / "Labels" / f"{name}.mat", {"inst_map": inst if float_map else inst.astype(np.int16)})


def test_cpm17_reader(tmp_path):
    src = tmp_path / "cpm17"
    _cpm17_folder(src / "train", ["image_00", "image_01"])
    _cpm17_folder(src / "test", ["image_00"], float_map=False)
    convert_cpm17(src, tmp_path / "out")
    train = list_samples(tmp_path / "out", "train")
    assert [s.name for s in train] == ["image_00", "image_01"]
    image, label = read_sample(train[1])
    assert np.array_equal(image, _rgb(12, 14, seed=1))  # alpha dropped
    assert sorted(np.unique(label)) == [0, 1, 2]  # renumbered consecutively
    assert (label == 1).sum() == 9 and (label == 2).sum() == 12
    assert len(list_samples(tmp_path / "out", "test")) == 1


def test_cpm17_bad_input_leaves_no_partial_output(tmp_path):
    src = tmp_path / "cpm17"
    _cpm17_folder(src, ["image_00", "image_01"])
    (src / "Labels" / "image_01.mat").unlink()
    with pytest.raises(DataError, match=r"image_01\.mat: file not found"):
        convert_cpm17(src, tmp_path / "out")
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
    _cpm17_folder(tmp_path / "frac", ["a"], fractional=True)
    with pytest.raises(DataError, match="fractional"):
        convert_cpm17(tmp_path / "frac", tmp_path / "out2")
    savemat(tmp_path / "frac" / "Labels" / "a.mat", {"other": np.zeros((12, 14))})
    with pytest.raises(DataError, match="no 'inst_map'"):
        convert_cpm17(tmp_path / "frac", tmp_path / "out3")


def test_cpm17_size_mismatch(tmp_path):
    _cpm17_folder(tmp_path / "src", ["a"])
    savemat(tmp_path / "src" / "Labels" / "a.mat", {"inst_map": np.zeros((11, 14))})
    with pytest.raises(DataError, match="size mismatch"):
        convert_cpm17(tmp_path / "src", tmp_path / "out")


# ----------------------------------------------------------------- synthetic dataset


def test_synthetic_dataset_is_written_in_the_layout_and_deterministic(tmp_path):
    config = SyntheticConfig(n_train=2, n_test=1, shape=(64, 80), seed=5)
    write_synthetic_dataset(tmp_path / "a", config)
    write_synthetic_dataset(tmp_path / "b", config)
    train = list_samples(tmp_path / "a", "train")
    assert [s.name for s in train] == ["synthetic-train-000", "synthetic-train-001"]
    assert len(list_samples(tmp_path / "a", "test")) == 1
    for sample in train:
        twin = data.Sample(sample.name, "train", tmp_path / "b" / "train" / "images" / f"{sample.name}.png",
                           tmp_path / "b" / "train" / "labels" / f"{sample.name}.png")
        (i1, l1), (i2, l2) = read_sample(sample), read_sample(twin)
        assert i1.shape == (64, 80, 3) and np.array_equal(i1, i2) and np.array_equal(l1, l2)
    assert set(read_manifest(tmp_path / "a").values()) == {"synthetic"}
    # different tiles differ
    assert not np.array_equal(read_sample(train[0])[0], read_sample(train[1])[0])


def test_written_files_have_normal_permissions(tmp_path):
    import os

    write_image(tmp_path / "a.png", _rgb())
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask
