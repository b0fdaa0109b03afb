"""A corpus of bad inputs run through every command: exit code 2, one line per bad file naming it, no traceback.

Each case also checks that a failed input leaves no output of its own, and
that in a batch the good inputs are still done.
"""

from __future__ import annotations

import csv
import json

import dataclasses
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import SMOKE
from PIL import Image

from ssimnet.book import BookError
from ssimnet.cli import main
from ssimnet.data import DataError, DataErrors, read_label, write_image, write_label
from ssimnet.net.checkpoint import save_checkpoint
from ssimnet.net.train import Trainer
from ssimnet.synthetic import synthetic_tile


def _png16(path: Path, rgb: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """Bad image files, each with a fragment of the problem its error must name."""
    root = tmp_path_factory.mktemp("corpus")
    good = synthetic_tile((64, 64), seed=0).image
    cases: dict[str, tuple[Path, str]] = {}

    def add(name: str, problem: str) -> Path:
        cases[name] = (root / name, problem)
        return root / name

    add("missing.png", "file not found")
    add("empty.png", "cannot read image").write_bytes(b"")
    add("junk.png", "cannot read image").write_bytes(b"this is not an image")
    full = root / "full.png"
    write_image(full, good)
    add("truncated.png", "cannot read image").write_bytes(full.read_bytes()[:200])
    Image.fromarray(good[..., 0]).save(add("grey.png", "single-channel"))
    _png16(add("rgb16.png", "16-bit PNG"), good.astype(np.uint16) * 257 // 64)  # dark: an 8-bit cut would be black
    tifffile.imwrite(add("rgb16.tif", "expected 8 bits per channel, got 16"), good.astype(np.uint16) * 257)
    write_image(add("black.png", "blank image"), np.zeros((64, 64, 3), np.uint8))
    write_image(add("white.png", "blank image"), np.full((64, 64, 3), 255, np.uint8))
    write_image(add("flat.png", "blank image"), np.full((64, 64, 3), (200, 120, 180), np.uint8))
    add("folder.png", "is a folder").mkdir()
    return cases


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("net") / "net.pt"
    save_checkpoint(path, Trainer.new(SMOKE.train, device="cpu").state())
    return path


def _errors(capsys, code: int, argv: list[str]) -> list[str]:
    """Run the command; assert its exit code and that stderr is nothing but one-line errors."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line and not line.startswith("ssimnet: warning: ")]
    assert lines and all(line.startswith("ssimnet: error: ") for line in lines), err
    return lines


def test_errors_survive_pickling_as_across_a_process_pool():
    error = pickle.loads(pickle.dumps(DataError("x.png", "bad")))
    assert (error.path, error.problem, str(error)) == (Path("x.png"), "bad", "x.png: bad")
    errors = pickle.loads(pickle.dumps(DataErrors([DataError("a.png", "one"), DataError("b.png", "two")])))
    assert [str(e) for e in errors.errors] == ["a.png: one", "b.png: two"]
    book = pickle.loads(pickle.dumps(BookError("nb.py: failed", code=1)))
    assert (str(book), book.code) == ("nb.py: failed", 1)


@pytest.mark.parametrize("case", ["missing.png", "empty.png", "junk.png", "truncated.png", "grey.png", "rgb16.png",
                                  "rgb16.tif", "black.png", "white.png", "flat.png", "folder.png"])
def test_segment_names_each_bad_image(case, corpus, checkpoint, tmp_path, capsys):
    path, problem = corpus[case]
    out = tmp_path / "out"
    lines = _errors(capsys, 2, ["segment", str(path), "--out", str(out), "--model", str(checkpoint), "--profile", "smoke",
                                "--quiet"])
    assert len(lines) == 1 and str(path) in lines[0] and problem in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_segment_batch_finishes_the_good_images_and_reports_every_bad_one(corpus, checkpoint, tmp_path, capsys):
    good = tmp_path / "good.png"
    write_image(good, synthetic_tile((96, 96), seed=3).image)
    bad = [corpus[name][0] for name in ("junk.png", "black.png", "rgb16.png")]
    out = tmp_path / "out"
    lines = _errors(capsys, 2, ["segment", str(bad[0]), str(good), str(bad[1]), str(bad[2]), "--out", str(out),
                                "--model", str(checkpoint), "--profile", "smoke", "--quiet"])
    assert len(lines) == 3 and all(str(p) in line for p, line in zip(bad, lines))
    assert sorted(p.name for p in out.iterdir()) == ["good_label.png", "good_nuclei.csv", "good_nuclei.geojson",
                                                     "good_overlay.png", "good_summary.json", "summary.csv"]
    assert read_label(out / "good_label.png").shape == (96, 96)


def test_segment_reports_bad_images_in_the_order_given_whichever_worker_finished_first(corpus, checkpoint, tmp_path,
                                                                                        capsys, monkeypatch):
    import ssimnet.tool.batch as batch

    real = batch.run_batch
    monkeypatch.setattr(batch, "run_batch", lambda *a, **k: real(*a, **k)[::-1])  # as if the last finished first
    bad = [corpus[name][0] for name in ("junk.png", "black.png", "rgb16.png")]
    lines = _errors(capsys, 2, ["segment", *map(str, bad), "--out", str(tmp_path / "out"), "--model", str(checkpoint),
                                "--profile", "smoke", "--quiet", "--workers", "1"])
    assert [next(p.name for p in bad if str(p) in line) for line in lines] == ["junk.png", "black.png", "rgb16.png"]


def test_segment_names_both_images_that_share_a_name(tmp_path, checkpoint, capsys):
    a, b = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    for p in (a, b):
        write_image(p, synthetic_tile((64, 64), seed=1).image)
    write_image(tmp_path / "a" / "x\ny.png", synthetic_tile((64, 64), seed=2).image)  # a newline in a name
    out = tmp_path / "o"
    assert main(["segment", str(a), str(b), str(tmp_path / "a" / "x?y.png"), "--out", str(out), "--model",
                 str(checkpoint), "--profile", "smoke", "--quiet"]) == 0
    with open(out / "summary.csv") as f:
        rows = {row["image"]: row["source"] for row in csv.DictReader(f)}
    assert rows == {"x": str(a), "x-2": str(b), "x_y": str(tmp_path / "a" / "x\ny.png")}
    assert sorted(p.name for p in out.glob("*_label.png")) == ["x-2_label.png", "x_label.png", "x_y_label.png"]


def test_segment_with_a_model_takes_images_smaller_than_a_patch(tmp_path, checkpoint, capsys):
    small = tmp_path / "small.png"
    write_image(small, synthetic_tile((100, 120), seed=2).image)
    assert main(["segment", str(small), "--out", str(tmp_path / "o"), "--model", str(checkpoint), "--profile", "smoke",
                 "--quiet"]) == 0
    assert read_label(tmp_path / "o" / "small_label.png").shape == (100, 120)


def _damaged_checkpoints(root: Path, checkpoint: Path) -> dict[str, tuple[Path, str]]:
    state = torch.load(checkpoint, weights_only=True)
    cases = {}
    (root / "zero.pt").write_bytes(b"")
    cases["zero"] = (root / "zero.pt", "not an ssimnet checkpoint")
    (root / "junk.pt").write_bytes(b"junk")
    cases["junk"] = (root / "junk.pt", "not an ssimnet checkpoint")
    torch.save({"format": state["format"]}, root / "tag.pt")
    cases["tag"] = (root / "tag.pt", "damaged ssimnet checkpoint")
    torch.save({**state, "model": {k: v.reshape(-1)[:1] for k, v in state["model"].items()}}, root / "weights.pt")
    cases["weights"] = (root / "weights.pt", "damaged ssimnet checkpoint")
    optimiser = {**state["optimizer"], "param_groups": [{**state["optimizer"]["param_groups"][0], "params": [0, 1, 2]}]}
    torch.save({**state, "optimizer": optimiser}, root / "optimiser.pt")
    cases["optimiser"] = (root / "optimiser.pt", "optimiser state covers 3 parameters")
    torch.save([1, 2, 3], root / "list.pt")
    cases["list"] = (root / "list.pt", "no ssimnet-checkpoint-1 format tag")
    cases["missing"] = (root / "missing.pt", "checkpoint not found")
    return cases


def test_segment_refuses_every_damaged_checkpoint_in_one_line(tmp_path, checkpoint, capsys):
    image = tmp_path / "x.png"
    write_image(image, synthetic_tile((64, 64), seed=1).image)
    for name, (path, problem) in _damaged_checkpoints(tmp_path, checkpoint).items():
        lines = _errors(capsys, 2, ["segment", str(image), "--out", str(tmp_path / "o"), "--model", str(path)])
        assert len(lines) == 1 and problem in lines[0], name
        assert lines[0].count(str(path)) == 1, name  # the path is named once
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for i in range(2):
        tile = synthetic_tile((256, 256), seed=10 + i)
        write_image(root / "train" / "images" / f"t{i}.png", tile.image)
        write_label(root / "train" / "labels" / f"t{i}.png", tile.label)
    return root


def test_train_refuses_a_checkpoint_of_another_network_when_it_resumes(small_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(small_dataset), "--out", str(run), "--profile", "smoke", "--quiet", "--workers", "1"]) == 0
    capsys.readouterr()
    (stored,) = run.glob("train/*/checkpoint.pt")
    wider = Trainer.new(dataclasses.replace(SMOKE.train, width=4), device="cpu").state()
    save_checkpoint(stored, wider)
    lines = _errors(capsys, 2, ["train", str(small_dataset), "--out", str(run), "--profile", "smoke", "--quiet"])
    assert len(lines) == 1 and str(stored) in lines[0] and "width 4" in lines[0]


def test_pseudo_labels_and_train_report_every_bad_image_of_a_split(small_dataset, corpus, tmp_path, capsys):
    data = tmp_path / "data"
    images = data / "train" / "images"
    images.mkdir(parents=True)
    for p in (small_dataset / "train" / "images").iterdir():
        (images / p.name).write_bytes(p.read_bytes())
    for name in ("junk.png", "black.png", "rgb16.png", "grey.png"):
        (images / name).write_bytes(corpus[name][0].read_bytes())
    for command in (["pseudo-labels"], ["train"]):
        lines = _errors(capsys, 2, [*command, str(data), "--out", str(tmp_path / "run"), "--profile", "smoke", "--quiet",
                                    "--workers", "2"])
        assert [line.split(": ")[2].rsplit("/", 1)[-1] for line in lines] == ["black.png", "grey.png", "junk.png",
                                                                               "rgb16.png"]
    (kept,) = (tmp_path / "run" / "pseudo" / "train").iterdir()
    assert sorted(p.name for p in kept.iterdir()) == ["t0.npz", "t1.npz"]  # the good ones are done, nothing half-written


def test_every_command_refuses_an_unwritable_output_before_any_work(small_dataset, tmp_path, capsys, monkeypatch):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    image = small_dataset / "train" / "images" / "t0.png"
    commands = [
        ["data", "synth", "{out}", "--profile", "smoke"],
        ["data", "convert", "cpm17", str(tmp_path), "{out}"],
        ["pseudo-labels", str(small_dataset), "--out", "{out}", "--profile", "smoke"],
        ["train", str(small_dataset), "--out", "{out}", "--profile", "smoke"],
        ["segment", str(image), "--out", "{out}", "--profile", "smoke"],
        ["evaluate", str(small_dataset / "train"), str(small_dataset / "train"), "--csv", "{out}/scores.csv"],
        ["book", "--run-dir", "{out}", "--profile", "smoke"],
    ]
    for argv in commands:
        for out in (afile, afile / "below"):
            lines = _errors(capsys, 2, [a.format(out=out) for a in argv])
            assert len(lines) == 1 and str(afile) in lines[0] and "existing file" in lines[0], argv

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("ssimnet.data.tempfile.TemporaryFile", read_only)
    for argv in commands:
        out = tmp_path / "ro"
        lines = _errors(capsys, 2, [a.format(out=out) for a in argv])
        assert len(lines) == 1 and "not writable (Read-only file system)" in lines[0], argv
        assert not out.exists()


def test_keyboard_interrupt_is_one_line_and_exit_130(small_dataset, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ssimnet.runs.pipeline.build_pseudo_labels", interrupted)
    lines = _errors(capsys, 130, ["pseudo-labels", str(small_dataset), "--out", str(tmp_path), "--profile", "smoke"])
    assert lines == ["ssimnet: error: interrupted"]


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal.  A shell starts background jobs with SIGINT ignored, and a
    Python started so never raises KeyboardInterrupt (a CI script run with `&` would pass that on)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("signum", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_or_sigterm_on_a_worker_pool_prints_no_traceback(signum, code, word, tmp_path):
    data = tmp_path / "data"
    for i in range(8):
        write_image(data / "train" / "images" / f"t{i}.png", synthetic_tile((512, 512), seed=i).image)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "ssimnet", "pseudo-labels", str(data), "--out", str(run),
                             "--profile", "smoke", "--workers", "2", "--quiet"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    while not (run / "pseudo").exists() and time.monotonic() < deadline:  # wait until the pool is at work
        time.sleep(0.1)
    time.sleep(1.0)
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)  # as a terminal's Ctrl-C: the whole process group
    else:
        proc.send_signal(signum)  # as `timeout` or a scheduler: the command itself
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"ssimnet: error: {word}"
    (folder,) = (run / "pseudo" / "train").iterdir()
    assert len(list(folder.glob("*.npz"))) < 8 and not list(folder.glob(".*"))  # stopped early, no temporary file


def test_evaluate_names_the_bad_label(tmp_path, corpus, capsys):
    truth, pred = tmp_path / "gt", tmp_path / "pred"
    label = np.zeros((8, 8), np.int32)
    label[2:5, 2:5] = 1
    write_label(truth / "a.png", label)
    write_label(truth / "b.png", label)
    write_label(pred / "a.png", label)
    (pred / "b.png").write_bytes(b"junk")
    lines = _errors(capsys, 2, ["evaluate", str(truth), str(pred)])
    assert len(lines) == 1 and str(pred / "b.png") in lines[0] and "cannot read image" in lines[0]
    write_label(pred / "b.png", np.zeros((9, 9), np.int32))
    lines = _errors(capsys, 2, ["evaluate", str(truth), str(pred)])
    assert len(lines) == 1 and "b.png: size mismatch" in lines[0]


def test_convert_refuses_annotations_that_lie_outside_the_image(tmp_path, capsys):
    src = tmp_path / "raw"
    src.mkdir()
    tifffile.imwrite(src / "x.tif", synthetic_tile((64, 64), seed=0).image)
    region = ('<Region Id="1"><Vertices><Vertex X="500" Y="500"/><Vertex X="520" Y="500"/>'
              '<Vertex X="520" Y="520"/></Vertices></Region>')
    (src / "x.xml").write_text(f"<Annotations><Annotation><Regions>{region}</Regions></Annotation></Annotations>")
    lines = _errors(capsys, 2, ["data", "convert", "monuseg", str(src), str(tmp_path / "out")])
    assert len(lines) == 1 and "x.xml" in lines[0] and "none of its 1 annotated regions lies inside" in lines[0]
    assert not (tmp_path / "out").exists()
    (src / "x.xml").write_text("<Annotations><Region")
    lines = _errors(capsys, 2, ["data", "convert", "monuseg", str(src), str(tmp_path / "out")])
    assert len(lines) == 1 and "x.xml: not a valid XML file" in lines[0]


def test_segment_reusing_an_output_folder_with_other_images_of_the_same_names(tmp_path, capsys):
    for folder, seed in (("a", 20), ("b", 30)):
        write_image(tmp_path / folder / "x.png", synthetic_tile((256, 256), seed=seed).image)
    args = ["--profile", "smoke", "--adapt", "--quiet"]
    shared, fresh = tmp_path / "shared", tmp_path / "fresh"
    assert main(["segment", str(tmp_path / "a" / "x.png"), "--out", str(shared), *args]) == 0
    first = read_label(shared / "x_label.png")
    assert main(["segment", str(tmp_path / "b" / "x.png"), "--out", str(shared), *args]) == 0
    assert main(["segment", str(tmp_path / "b" / "x.png"), "--out", str(fresh), *args]) == 0
    # the second run in the shared folder trained its own network, as a fresh folder does
    assert np.array_equal(read_label(shared / "x_label.png"), read_label(fresh / "x_label.png"))
    assert not np.array_equal(first, read_label(shared / "x_label.png"))
    assert len(list((shared / ".run" / "train").iterdir())) == 2  # one network per set of images
    # a network trained on the images has seen their nuclei at their size: no pixel-size check
    inference = json.loads((shared / "x_summary.json").read_text())["settings"]["inference"]
    assert inference["nucleus_scale"] is None and inference["nucleus_area"] is None
