"""The one image reader (ssimnet.imread): what it accepts, converts, refuses; and a batch that survives a bad file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ssimnet.cli import main
from ssimnet.config import MAX_IMAGE_PIXELS
from ssimnet.data import read_image, read_label, write_image
from ssimnet.errors import DataError, InputWarning
from ssimnet.synthetic import synthetic_tile


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, side: int = 100_000) -> Path:
    """A PNG of a few dozen bytes whose header claims `side` x `side` RGB pixels."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + _chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def tile() -> np.ndarray:
    return synthetic_tile((64, 80), seed=6).image


def test_a_header_larger_than_the_limit_is_refused_before_decoding(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 100
    with pytest.raises(DataError, match=r"bomb.png: image of 100000x100000 pixels is larger than the 400,000,000"):
        read_image(path)
    assert MAX_IMAGE_PIXELS == 400_000_000
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((4, 4, 3), np.uint8))  # a TIFF goes through the same check
    from ssimnet import imread

    with pytest.raises(DataError, match="larger than the 15 pixels"):
        imread._check_size(tmp_path / "big.tif", 4, 4, limit=15)


def test_cmyk_jpeg_and_tiff_are_converted_with_a_warning(tmp_path, tile):
    rgb = Image.fromarray(tile)
    cmyk = rgb.convert("CMYK")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    cmyk.save(tmp_path / "c.tif")
    for name, tolerance in (("c.tif", 1), ("c.jpg", 12)):
        with pytest.warns(InputWarning, match="a CMYK image, converted to RGB"):
            back = read_image(tmp_path / name)
        assert back.shape == tile.shape and np.abs(back.astype(int) - tile).mean() < tolerance, name
    separated = np.dstack([255 - tile, np.zeros(tile.shape[:2], np.uint8)])  # C, M, Y = 255 - R, G, B; K = 0
    tifffile.imwrite(tmp_path / "sep.tif", separated, photometric="separated", tile=(16, 16))
    with pytest.warns(InputWarning, match="CMYK"):
        assert np.abs(read_image(tmp_path / "sep.tif").astype(int) - tile).max() <= 1


def test_the_exif_orientation_is_applied(tmp_path, tile):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(tile).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    seen = read_image(tmp_path / "turned.jpg")
    assert seen.shape == (tile.shape[1], tile.shape[0], 3)
    assert np.abs(seen.astype(int) - np.rot90(tile, -1)).mean() < 12


def test_many_frames_give_the_first_with_a_warning(tmp_path, tile):
    tifffile.imwrite(tmp_path / "pages.tif", np.stack([tile, 255 - tile]), photometric="rgb")
    with pytest.warns(InputWarning, match="has 2 frames \\(pages\\); the first is read"):
        assert np.array_equal(read_image(tmp_path / "pages.tif"), tile)
    frames = [Image.fromarray(tile).convert("P"), Image.fromarray(255 - tile).convert("P")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(InputWarning, match="has 2 frames"):
        assert read_image(tmp_path / "anim.gif").shape == tile.shape


@pytest.mark.parametrize(("make", "problem"), [
    (lambda t: Image.fromarray(t).convert("LA"), "grayscale"),
    (lambda t: Image.fromarray(np.full((8, 8), 40000, np.uint16)), "expected 8 bits per channel, got 16"),
    (lambda t: Image.fromarray(t[..., 0].astype(np.float32)), "expected 8 bits per channel, got 32"),
    (lambda t: Image.fromarray(t).convert("LAB"), "colour mode LAB"),
], ids=["grey+alpha", "grey16", "float", "lab"])
def test_other_colour_modes_are_refused_in_one_line(tmp_path, tile, make, problem):
    path = tmp_path / "x.tif"
    make(tile).save(path)
    with pytest.raises(DataError, match=f"x.tif: .*{problem}"):
        read_image(path)


def test_a_16_bit_grey_with_alpha_png_is_refused(tmp_path):
    header = struct.pack(">IIBBBBB", 2, 2, 16, 4, 0, 0, 0)  # colour type 4: grey + alpha, 16 bits
    raw = b"".join(b"\0" + b"\x12\x34\xff\xff" * 2 for _ in range(2))
    (tmp_path / "ga16.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw))
                                        + _chunk(b"IEND", b""))
    with pytest.raises(DataError, match="16-bit PNG"):
        read_image(tmp_path / "ga16.png")


def test_labels_keep_their_depth_through_the_same_reader(tmp_path):
    label = np.zeros((6, 7), np.uint16)
    label[1:3, 1:4] = 40000
    tifffile.imwrite(tmp_path / "l.tif", label, tile=(16, 16))  # tiled: read by tifffile
    assert read_label(tmp_path / "l.tif").max() == 40000


def test_a_batch_survives_a_bomb_and_a_damaged_file_and_reports_the_changes(tmp_path, capsys, tile):
    good, cmyk = tmp_path / "in" / "a_good.png", tmp_path / "in" / "b_cmyk.jpg"
    write_image(good, synthetic_tile((128, 128), seed=2).image)
    Image.fromarray(synthetic_tile((128, 128), seed=3).image).convert("CMYK").save(cmyk, quality=95)
    bomb_png(tmp_path / "in" / "c_bomb.png")
    (tmp_path / "in" / "d_cut.jpg").write_bytes(cmyk.read_bytes()[:200])  # a truncated JPEG
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "in"), "--out", str(out), "--quiet", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("b_cmyk.jpg: a CMYK image, converted to RGB" in line and "warning" in line for line in err)
    errors = [line for line in err if line.startswith("ssimnet: error:")]
    assert len(errors) == 2 and "c_bomb.png: image of 100000x100000 pixels" in errors[0] and "d_cut.jpg" in errors[1]
    assert "Traceback" not in "\n".join(err)
    assert sorted(p.name for p in out.glob("*_label.png")) == ["a_good_label.png", "b_cmyk_label.png"]
    assert (out / "summary.csv").read_text().count("\n") == 3  # header and the two good images


@pytest.mark.parametrize(("argv", "message"), [
    (["--mpp", "40"], "argument --mpp: 40 µm per pixel is outside 0.05-5; 40 looks like a magnification"),
    (["--mpp", "500"], "argument --mpp: 500 µm per pixel is outside 0.05-5"),
    (["--mpp", "nan"], "argument --mpp: nan µm per pixel is outside 0.05-5"),
    (["--workers", "0"], "argument --workers: 0 is not between 1 and"),
    (["--workers", "1000"], "argument --workers: 1000 is not between 1 and"),
    (["--workers", "two"], "argument --workers: 'two' is not a whole number"),
    (["--seed", "-1"], "argument --seed: -1 is negative"),
    (["--finetune-epochs", "-1"], "argument --finetune-epochs: -1 is negative"),
    (["--scheduler", "http://127.0.0.1:8787"], "is a web address, such as the Dask dashboard's"),
    (["--scheduler", "not a scheduler"], "is not local, tcp://HOST:PORT or HOST:PORT"),
    (["--device", "bogus"], "argument --device: 'bogus' is not cpu, cuda, cuda:N or mps"),
    (["--model", ""], "argument --model: empty path"),
    (["--out", " "], "argument --out: empty path"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_every_bad_option_is_one_line_before_any_work(tmp_path, capsys, argv, message):
    write_image(tmp_path / "a.png", synthetic_tile((64, 64), seed=1).image)
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ssimnet: error: segment: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_an_empty_input_is_refused_not_read_as_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "a.png", synthetic_tile((64, 64), seed=1).image)
    assert main(["segment", "a.png", "", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert err == "ssimnet: error: segment: argument images: empty path (an unset variable?); give a file or folder\n"
    assert not (tmp_path / "out").exists()


def test_a_device_this_torch_lacks_is_one_line(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    write_image(tmp_path / "a.png", synthetic_tile((64, 64), seed=1).image)
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ssimnet-cpu-monuseg.pt: device 'cuda' was asked for, but this torch has no CUDA" in err


def test_worker_processes_die_with_their_parent_even_by_sigkill(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    for i in range(6):
        write_image(tmp_path / "in" / f"t{i}.png", synthetic_tile((400, 400), seed=i).image)
    parent = subprocess.Popen([sys.executable, "-m", "ssimnet.cli", "segment", str(tmp_path / "in"), "--out",
                               str(tmp_path / "out"), "--workers", "2", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while len(children) < 2 and time.monotonic() < deadline:  # wait for the pool's two workers
        children = [c for c in psutil.Process(parent.pid).children() if "resource_tracker" not in " ".join(c.cmdline())]
        time.sleep(0.2)
    assert len(children) >= 2, "the pool did not start"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.pid for p in alive]


def test_outputs_never_leave_the_output_folder_nor_become_inputs(tmp_path, capsys):
    folder = tmp_path / "slides"
    write_image(folder / "a.png", synthetic_tile((64, 64), seed=1).image)
    write_image(folder / "..png", synthetic_tile((64, 64), seed=2).image)  # its stem is "."; hidden in a folder
    out = folder / "masks"  # inside the input folder
    for _ in range(2):
        assert main(["segment", str(folder), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    assert "1 of 1 images already done" in capsys.readouterr().out  # the second run read none of its outputs
    assert sorted(p.name for p in out.glob("*_label.png")) == ["a_label.png"]
    assert not (out / "masks").exists() and not list(tmp_path.glob("*_label.png")) and not list(folder.glob("*_label*"))
    here = tmp_path / "here"
    here.mkdir()
    import os

    cwd = os.getcwd()
    os.chdir(here)
    try:
        assert main(["segment", str(folder / "..png"), "--out", ".", "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    assert sorted(p.name for p in here.iterdir()) == ["__label.png", "__nuclei.csv", "__nuclei.geojson",
                                                      "__overlay.png", "__summary.json", "summary.csv"]


def _onnx_with(metadata: str | None = None, *, model: bytes | None = None) -> bytes:
    import onnx

    from ssimnet.net.onnxnet import ONNX_FORMAT
    from ssimnet.tool.shipped import shipped_model_path

    proto = onnx.load_from_string(model or shipped_model_path(onnx=True).read_bytes())
    if metadata is not None:
        for entry in proto.metadata_props:
            if entry.key == ONNX_FORMAT:
                entry.value = metadata
    return proto.SerializeToString()


@pytest.mark.parametrize(("metadata", "problem"), [
    ('{"depth": 4, "width": 8, "colour": 1}', "is not an architecture"),
    ("[4, 8]", "is not an architecture"),
    ('{"depth": "4"}', "describes no ssimnet network"),
    ('{"depth": 40, "width": 8, "out_channels": 3, "boundary": true}', "describes no ssimnet network"),
    ("{not json", "is not JSON"),
], ids=["unknown field", "a list", "a string depth", "depth 40", "not json"])
def test_an_onnx_file_with_bad_metadata_is_one_line(tmp_path, metadata, problem):
    from ssimnet.tool.segmenter import Segmenter

    (tmp_path / "NET.ONNX").write_bytes(_onnx_with(metadata))  # an uppercase suffix is an ONNX file too
    with pytest.raises(DataError, match=f"NET.ONNX: its ssimnet-onnx-1 metadata {problem}"):
        Segmenter.from_checkpoint(tmp_path / "NET.ONNX")


def test_an_onnx_file_whose_input_is_not_an_image_is_one_line(tmp_path):
    from onnx import TensorProto, helper

    from ssimnet.net.onnxnet import ONNX_FORMAT
    from ssimnet.tool.segmenter import Segmenter

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["maps"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("maps", TensorProto.FLOAT, [1, 3, 16, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_FORMAT, '{"depth": 2, "width": 4, "out_channels": 3}'
    (tmp_path / "float.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(DataError, match="float.onnx: its input is not the uint8 'image' of 3 channels"):
        Segmenter.from_checkpoint(tmp_path / "float.onnx")


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    import torch
    from conftest import TINY

    from ssimnet.net.checkpoint import save_checkpoint
    from ssimnet.net.train import Trainer
    from ssimnet.tool.segmenter import Segmenter

    state = Trainer.new(TINY, seed=0, device="cpu").state()
    name = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][name] = torch.full_like(state["model"][name], float("nan"))
    save_checkpoint(tmp_path / "nan.pt", state)
    with pytest.raises(DataError, match="nan.pt: the network's weights hold NaN or infinite values"):
        Segmenter.from_checkpoint(tmp_path / "nan.pt")


@pytest.mark.parametrize("text", ["[1, 2]", '{"name": "x"}', "{broken"])
def test_a_damaged_card_is_one_line(tmp_path, monkeypatch, text, capsys):
    from ssimnet.tool import shipped

    (tmp_path / "card.json").write_text(text)
    monkeypatch.setattr(shipped, "shipped_card_path", lambda: tmp_path / "card.json")
    with pytest.raises(DataError, match="card.json: damaged model card"):
        shipped.read_card()
    assert main(["segment", "--version"]) == 0
    assert "no shipped model: " in capsys.readouterr().out
    write_image(tmp_path / "a.png", synthetic_tile((64, 64), seed=1).image)
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "card.json: damaged model card" in err


def test_evaluate_reads_what_segment_writes_and_a_rerun_leaves_no_stale_output(tmp_path, capsys):
    image = synthetic_tile((300, 260), seed=8)
    write_image(tmp_path / "in" / "x.png", image.image)
    from ssimnet.data import write_label

    write_label(tmp_path / "gt" / "labels" / "x.png", image.label)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "in"), "--out", str(out), "--quiet"]) == 0
    assert (out / "x_label.png").is_file() and (out / "x_overlay.png").is_file()
    # the same image as a 20x scan of a large region: a label TIFF, no overlay; nothing of the first run stays
    assert main(["segment", str(tmp_path / "in"), "--out", str(out), "--quiet", "--mpp", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv", "x_label.tif", "x_nuclei.csv",
                                                     "x_nuclei.geojson", "x_summary.json"]
    import json

    assert json.loads((out / "x_summary.json").read_text())["settings"]["mpp"] == 2
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "gt"), str(out)]) == 0
    assert "x" in capsys.readouterr().out


def test_a_region_with_mpp_has_one_set_of_nuclei_in_its_map_table_and_polygons(tmp_path):
    import csv
    import json

    write_image(tmp_path / "in" / "r.png", synthetic_tile((300, 420), seed=9).image)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "in"), "--out", str(out), "--quiet", "--mpp", "1.25"]) == 0  # 5x: a region
    label = tifffile.imread(out / "r_label.tif")
    ids, areas = np.unique(label[label > 0], return_counts=True)
    with open(out / "r_nuclei.csv") as f:
        rows = {int(r["id"]): int(r["area"]) for r in csv.DictReader(f)}
    features = json.loads((out / "r_nuclei.geojson").read_text())["features"]
    assert len(ids) > 10 and json.loads((out / "r_summary.json").read_text())["tiles"] > 1
    assert rows == dict(zip(ids.tolist(), areas.tolist()))  # the same nuclei, the same areas
    assert sorted(f["properties"]["nucleus"] for f in features) == ids.tolist()


def test_patterns_and_folders_do_not_follow_symlink_loops(tmp_path):
    import time

    from ssimnet.tool.batch import find_images

    write_image(tmp_path / "s" / "a" / "x.png", synthetic_tile((32, 32), seed=1).image)
    (tmp_path / "s" / "a" / "up").symlink_to(tmp_path / "s")
    (tmp_path / "s" / "a" / "again").symlink_to(tmp_path / "s" / "a")
    start = time.perf_counter()
    assert [j.path for j in find_images([str(tmp_path / "s" / "**" / "*.png")])] == [tmp_path / "s" / "a" / "x.png"]
    assert [j.name for j in find_images([tmp_path / "s"])] == ["a/x"]
    assert time.perf_counter() - start < 5


def test_a_run_removes_what_an_interrupted_run_left_but_not_a_live_run_s_temporaries(tmp_path):
    import os
    import time

    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    old = out / "sub" / ".x_label.tif.k3j_9qzb.tif"  # as ssimnet.data.atomic_path names its temporaries
    live = out / ".y_nuclei.geojson.a1b2c3d4.geojson"
    other = out / ".x_label.tif.notes"  # a hidden file of another shape
    for path in (old, live, other):
        path.write_bytes(b"half written")
    for path in (old, other):
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    write_image(tmp_path / "a.png", synthetic_tile((64, 64), seed=1).image)
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(out), "--quiet"]) == 0
    assert not old.exists() and live.exists() and other.exists()
