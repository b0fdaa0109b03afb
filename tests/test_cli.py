"""The ssimnet command line: data conversion, evaluation, the papermill book driver, error reporting."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from ssimnet.book.publish import METADATA_KEY, ChapterRecord, chapter_state
from ssimnet.cli import main
from ssimnet.config import SyntheticConfig, get_profile
from ssimnet.data import list_samples, read_sample, write_image, write_label
from ssimnet.datasets import resolve_dataset, write_synthetic_dataset
from ssimnet.net.checkpoint import save_checkpoint
from ssimnet.net.train import Trainer
from ssimnet.synthetic import synthetic_tile
from ssimnet.tool.segmenter import Segmenter

ROOT = Path(__file__).resolve().parents[1]
RAW_SAMPLE = ROOT.parent / "shared" / "data" / "monuseg-raw-sample"


def _one_line_error(capsys, code, argv, *fragments):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("ssimnet: error: ") and "\n" not in err
    for fragment in fragments:
        assert fragment in err
    return err


@pytest.mark.skipif(not RAW_SAMPLE.is_dir(), reason="raw MoNuSeg sample not present")
def test_data_convert_monuseg(tmp_path, capsys):
    assert main(["data", "convert", "monuseg", str(RAW_SAMPLE), str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'train'}: 1 images" in out and f"{tmp_path / 'test'}: 1 images" in out


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    _one_line_error(capsys, 2, ["data", "convert", "cpm17", str(tmp_path / "nope"), str(tmp_path / "out")], "nope", "folder not found")
    _one_line_error(capsys, 2, ["evaluate", str(tmp_path / "gt"), str(tmp_path / "pred")], "gt", "folder not found")
    _one_line_error(capsys, 2, ["book", "--profile", "smoke", "--data-dir", str(tmp_path), "--run-dir", str(tmp_path / "run")], "not a dataset")
    assert not (tmp_path / "out").exists()


def test_evaluate(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    a = np.zeros((10, 10), np.int32)
    a[1:4, 1:4], a[6:9, 6:9] = 1, 2
    b = np.where(a == 2, 0, a)  # second nucleus missed
    write_label(gt / "labels" / "x.png", a)
    write_label(gt / "labels" / "y.png", a)
    write_label(pred / "x.png", a)
    write_label(pred / "y.png", b)
    assert main(["evaluate", str(gt), str(pred), "--csv", str(tmp_path / "scores.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["image", "precision", "recall", "dice", "aji", "aji_plus", "pq"]
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    assert [r["image"] for r in rows] == ["x", "y", "mean"]
    assert float(rows[0]["aji"]) == 1.0 and float(rows[1]["recall"]) == 0.5
    assert float(rows[2]["recall"]) == 0.75 and int(rows[2]["n_true"]) == 4
    (pred / "y.png").unlink()
    _one_line_error(capsys, 2, ["evaluate", str(gt), str(pred)], "y.png", "prediction missing (1 of 2 images)")
    write_label(pred / "y.png", np.zeros((5, 5), np.int32))
    _one_line_error(capsys, 2, ["evaluate", str(gt), str(pred)], "size mismatch")


def test_resolve_dataset_draws_synthetic_data_once(tmp_path):
    config = SyntheticConfig(n_train=1, n_test=1, shape=(48, 48))
    root = resolve_dataset("", tmp_path, config)
    image_path = list_samples(root, "train")[0].image_path
    mtime = image_path.stat().st_mtime_ns
    assert resolve_dataset("", tmp_path, config) == root
    assert image_path.stat().st_mtime_ns == mtime  # reused, not redrawn
    bigger = SyntheticConfig(n_train=1, n_test=1, shape=(64, 48))
    resolve_dataset("", tmp_path, bigger)
    assert read_sample(list_samples(root, "train")[0])[0].shape == (64, 48, 3)  # settings changed: redrawn


def _book(tmp_path, notebook_source: str, name: str = "01_data") -> Path:
    book = tmp_path / "book_root"
    (book / "notebooks").mkdir(parents=True)
    (book / "_toc.yml").write_text(
        f"format: jb-book\nroot: book/intro\nchapters:\n  - file: book/published/{name}\n"
    )
    (book / "notebooks" / f"{name}.py").write_text(notebook_source)
    return book


PARAMS_CELL = '# %% tags=["parameters"]\ndata_dir = ""\nrun_dir = ""\nprofile = "smoke"\nseed = 0\ndevice = ""\n\n'


def test_book_driver_executes_the_data_chapter(tmp_path, capsys):
    book = _book(tmp_path, (ROOT / "notebooks" / "01_data.py").read_text())
    argv = ["book", "--profile", "smoke", "--book-dir", str(book), "--run-dir", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 0
    nb = nbformat.read(book / "book" / "executed" / "01_data.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # sample tiles, area histogram, within/between boxplot
    injected = [c for c in code if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0].metadata.tags
    assert str(tmp_path / "run") in injected[0].source
    assert "profile 'smoke'" in "".join(o.get("text", "") for c in code for o in c.outputs)
    record = ChapterRecord.from_metadata(nb.metadata[METADATA_KEY])  # stamped for the provenance line
    assert record.source == "notebooks/01_data.py" and record.profile == "smoke" and "test images" in record.data
    assert chapter_state(record, book_dir=book).note is None
    toc = (book / "book" / "executed" / "_toc.yml").read_text()  # the same book over the executed chapter
    assert "file: book/executed/01_data" in toc and "published" not in toc


def test_book_driver_fails_loudly_and_keeps_no_output(tmp_path, capsys):
    book = _book(tmp_path, PARAMS_CELL + "# %%\nraise RuntimeError('boom')\n", name="02_fail")
    err = _one_line_error(capsys, 1, ["book", "--profile", "smoke", "--book-dir", str(book), "--run-dir", str(tmp_path / "run"), "--quiet"],
                          "02_fail.py", "RuntimeError: boom")
    assert "cell" in err
    assert list((book / "book" / "executed").glob("*.ipynb")) == []
    silent = _book(tmp_path / "s", PARAMS_CELL + "# %%\nx = 1\n", name="03_silent")
    _one_line_error(capsys, 1, ["book", "--profile", "smoke", "--book-dir", str(silent), "--run-dir", str(tmp_path / "run"), "--quiet"],
                    "shows no output")
    _one_line_error(capsys, 2, ["book", "--profile", "smoke", "--book-dir", str(silent), "--run-dir", str(tmp_path / "run"), "--only", "nope"],
                    "no notebook named nope")
    shutil.rmtree(silent / "notebooks")
    _one_line_error(capsys, 2, ["book", "--profile", "smoke", "--book-dir", str(silent), "--run-dir", str(tmp_path / "run")],
                    "03_silent.py", "not found")


def test_book_driver_passes_further_parameters(tmp_path, capsys):
    source = PARAMS_CELL.replace('device = ""\n', 'device = ""\nruns = 0\nlabel = ""\n') + \
        '# %%\nf"runs={runs!r} label={label!r}"\n'
    book = _book(tmp_path, source, name="09_params")
    run = ["book", "--profile", "smoke", "--book-dir", str(book), "--run-dir", str(tmp_path / "run"), "--quiet"]
    assert main([*run, "--param", "runs=3", "--param", "label=a b"]) == 0
    nb = nbformat.read(book / "book" / "executed" / "09_params.ipynb", as_version=4)
    text = "".join(o.get("data", {}).get("text/plain", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "runs=3 label='a b'" in text  # a Python literal stays typed; anything else is a string
    _one_line_error(capsys, 2, [*run, "--param", "runs"], "--param 'runs'", "NAME=VALUE")
    _one_line_error(capsys, 2, [*run, "--param", "seed=4"], "--param seed", "--seed")


def test_train_then_segment(tmp_path, capsys):
    from dataclasses import replace

    from ssimnet.data import read_image, read_label
    from ssimnet.tool.pixel_size import nucleus_sigma

    data = tmp_path / "data"
    write_synthetic_dataset(data, SyntheticConfig(n_train=2, n_test=0, shape=(256, 256), seed=1))
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--profile", "smoke", "--quiet", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "15 epochs" in out
    checkpoint = Path(out.split(":")[0])
    assert checkpoint == run / "model.pt" and checkpoint.is_file()
    # the network carries the settings it segments with, and its training images' references of the
    # pixel-size check; a training checkpoint without them, its own method
    stored = Segmenter.from_checkpoint(checkpoint).settings
    scale = float(np.median([nucleus_sigma(read_image(s.image_path)) for s in list_samples(data, "train")]))
    assert stored.nucleus_scale == scale and stored.nucleus_area > 0
    assert stored == replace(get_profile("smoke").for_tool().inference, nucleus_scale=scale,
                             nucleus_area=stored.nucleus_area)
    raw = next(run.glob("train/*/checkpoint.pt"))
    assert (raw.parent / "history.csv").is_file() and Segmenter.from_checkpoint(raw).settings.instances == "cc"
    # a second call finds the finished checkpoint and trains nothing more
    mtime = raw.stat().st_mtime_ns
    assert main(["train", str(data), "--out", str(run), "--profile", "smoke", "--quiet", "--workers", "1"]) == 0
    assert raw.stat().st_mtime_ns == mtime

    image = list_samples(data, "train")[0].image_path
    seg = tmp_path / "seg"
    argv = ["segment", str(image), "--out", str(seg), "--model", str(checkpoint), "--profile", "smoke",
            "--finetune-epochs", "1", "--quiet"]
    assert main(argv) == 0
    name = image.stem
    label = read_label(seg / f"{name}_label.png")
    assert label.shape == (256, 256) and (seg / f"{name}_overlay.png").is_file()
    rows = list(csv.DictReader(open(seg / f"{name}_nuclei.csv")))
    assert len(rows) == label.max() > 0
    assert set(rows[0]) == {"id", "area", "centroid_row", "centroid_col", "eccentricity", "mean_hematoxylin"}
    # the options that repeat what the network stores change nothing; one that differs changes the labels
    same, other = tmp_path / "same", tmp_path / "other"
    assert main([*argv[:3], str(same), *argv[4:], "--instances", "distance", "--min-object-probability", "0",
                 "--normalize"]) == 0
    assert (read_label(same / f"{name}_label.png") == label).all()
    assert main([*argv[:3], str(other), *argv[4:], "--instances", "cc"]) == 0
    assert not np.array_equal(read_label(other / f"{name}_label.png"), label)


def test_segment_bad_input(tmp_path, capsys):
    from ssimnet.data import write_image

    small = tmp_path / "small.png"
    write_image(small, synthetic_tile((100, 100), seed=0).image)
    _one_line_error(capsys, 2, ["segment", str(small), "--out", str(tmp_path / "o"), "--profile", "smoke", "--adapt"],
                    "small.png", "smaller than a 256x256 patch", "without --adapt")
    checkpoint = tmp_path / "net.pt"
    save_checkpoint(checkpoint, Trainer.new(get_profile("smoke").train, device="cpu").state())
    _one_line_error(capsys, 2, ["segment", str(small), "--out", str(tmp_path / "o"), "--profile", "smoke", "--model",
                                str(checkpoint), "--finetune-epochs", "1"], "small.png", "smaller than a 256x256 patch",
                    "--finetune-epochs 0")
    big = tmp_path / "big.png"
    write_image(big, synthetic_tile((256, 256), seed=0).image)
    _one_line_error(capsys, 2, ["segment", str(big), "--out", str(tmp_path / "o"), "--profile", "smoke", "--model",
                                str(checkpoint), "--instances", "learned"], "net.pt", "--instances learned needs",
                    "has none")
    _one_line_error(capsys, 2, ["segment", str(big), "--out", str(tmp_path / "o"), "--profile", "smoke", "--adapt",
                                "--instances", "learned"], "--instances learned needs", "'smoke' profile trains none")
    _one_line_error(capsys, 2, ["segment", str(big), "--out", str(tmp_path / "o"), "--instances", "learned"],
                    "ssimnet-cpu-monuseg.onnx", "--instances learned needs", "has none")  # the shipped network
    _one_line_error(capsys, 2, ["segment", str(big), "--out", str(tmp_path / "o"), "--adapt", "--model",
                                str(checkpoint)], "--adapt", "does not go with --model")
    _one_line_error(capsys, 2, ["segment", str(big), "--out", str(tmp_path / "o"), "--adapt", "--mpp", "0.5"],
                    "--mpp", "does not go with --adapt")
    _one_line_error(capsys, 2, ["segment", str(big), "--out", str(tmp_path / "o"), "--profile", "smoke", "--model",
                                str(checkpoint), "--instances", "boundary"], "net.pt", "the boundary output", "has none")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    _one_line_error(capsys, 2, ["segment", str(small), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "bad.pt"),
                                "--finetune-epochs", "0"], "bad.pt", "not an ssimnet checkpoint")
    _one_line_error(capsys, 2, ["segment", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o")], "nope.png", "file not found")
    assert not (tmp_path / "o").exists()


def test_evaluate_reads_the_files_segment_writes(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "masks"
    a = np.zeros((10, 10), np.int32)
    a[1:4, 1:4], a[6:9, 6:9] = 1, 2
    write_label(gt / "labels" / "x.png", a)
    write_label(pred / "x_label.png", np.where(a == 2, 0, a))  # as `ssimnet segment` names it
    write_image(pred / "x_overlay.png", np.zeros((10, 10, 3), np.uint8))  # ignored
    assert main(["evaluate", str(gt), str(pred), "--csv", str(tmp_path / "s.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert rows[0]["image"] == "x" and float(rows[0]["recall"]) == 0.5
