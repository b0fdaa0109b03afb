"""The published book: chapter records, staleness, figure compression, publishing a run, the Sphinx nodes."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from docutils import nodes
from PIL import Image

from ssimnet.book.publish import (
    METADATA_KEY,
    ChapterRecord,
    PublishError,
    chapter_state,
    compress_outputs,
    file_digest,
    package_digest,
    publish_run,
)
from ssimnet.book.sphinx import chapter_nodes
from ssimnet.cli import main

FIGURES = {"max_width": 400, "quality": 80, "min_bytes": 10_000}


def _record(book: Path, source: str = "notebooks/01_data.py", commit: str = "abcdef0123456789") -> ChapterRecord:
    return ChapterRecord(source=source, source_digest=file_digest(book / source), package_digest=package_digest(),
                         commit=commit, dirty=False, profile="cpu", data="monuseg (14 test images)",
                         hardware="2 CPUs (x86_64), no GPU", executed="2026-11-27", lock_digest=None)


def _png(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _notebook(record: ChapterRecord | None, *images: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("plot()")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
                           for png in images]
    if record is not None:
        nb.metadata[METADATA_KEY] = record.to_metadata()
    return nb


@pytest.fixture()
def book(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_data.py").write_text("# %%\nprint(1)\n")
    (tmp_path / "notebooks" / "02_more.py").write_text("# %%\nprint(2)\n")
    return tmp_path


def test_record_round_trips_and_reads_as_one_line(book):
    record = _record(book)
    assert ChapterRecord.from_metadata(json.loads(json.dumps(record.to_metadata()))) == record
    assert record.line() == ("Executed 2026-11-27 with the cpu profile on monuseg (14 test images), commit abcdef0, "
                             "2 CPUs (x86_64), no GPU.")
    with pytest.raises(PublishError, match="lacks source_digest"):
        ChapterRecord.from_metadata({k: v for k, v in record.to_metadata().items() if k != "source_digest"})


def test_a_chapter_is_stale_when_code_it_ran_changed_and_the_note_names_it(book, tmp_path):
    import shutil

    import ssimnet
    from ssimnet.book.publish import chapter_record

    (book / "notebooks" / "03_score.py").write_text("# %%\nfrom ssimnet.metrics import score\n")
    info = {"hardware": {"cpus": 2, "machine": "x86_64"}, "data": {"name": "x", "test_images": 1}, "commit": "abc",
            "dirty": False, "profile": "smoke", "created": "2026-12-06T00:00:00"}
    record = chapter_record(book / "notebooks" / "03_score.py", book_dir=book, info=info)
    assert record.code is not None and list(record.code) == ["ssimnet.metrics"]
    package = tmp_path / "pkg"
    shutil.copytree(Path(ssimnet.__file__).parent, package, ignore=shutil.ignore_patterns("weights", "__pycache__"))
    state = chapter_state(record, book_dir=book, package_dir=package)
    assert state.changed_modules == () and state.note is None
    (package / "pseudo" / "soften.py").write_text((package / "pseudo" / "soften.py").read_text() + "\nX = 1\n")  # code it did not run
    (package / "metrics.py").write_text((package / "metrics.py").read_text().replace('"""', '"""Edited. ', 1))
    assert chapter_state(record, book_dir=book, package_dir=package).note is None  # a docstring: nothing ran otherwise
    (package / "metrics.py").write_text((package / "metrics.py").read_text() + "\nX = 1\n")
    state = chapter_state(record, book_dir=book, package_dir=package)
    assert state.changed_modules == ("ssimnet.metrics",)
    assert "code it ran (ssimnet.metrics) has changed" in state.note


def test_unchanged_source_gives_no_note_and_changed_source_gives_one(book):
    record = _record(book)
    assert chapter_state(record, book_dir=book).note is None
    (book / "notebooks" / "01_data.py").write_text("# %%\nprint('changed')\n")
    note = chapter_state(record, book_dir=book).note
    assert note is not None and "commit abcdef0" in note and "notebooks/01_data.py has changed" in note
    (book / "notebooks" / "01_data.py").unlink()
    assert chapter_state(record, book_dir=book).source_changed  # a removed source is a changed one


def test_package_digest_follows_every_python_file(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    before = package_digest(tmp_path)
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert package_digest(tmp_path) != before
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    assert package_digest(tmp_path) == before
    (tmp_path / "notes.txt").write_text("not code")
    assert package_digest(tmp_path) == before


def test_sphinx_nodes_open_the_chapter_with_provenance_and_the_stale_note(book):
    path = book / "01_data.ipynb"
    nbformat.write(_notebook(_record(book)), path)
    fresh = chapter_nodes(path, book_dir=book)
    assert len(fresh) == 1 and "commit abcdef0" in fresh[0].astext()
    (book / "notebooks" / "01_data.py").write_text("# %%\nprint('edited')\n")
    stale = chapter_nodes(path, book_dir=book)
    assert len(stale) == 2 and isinstance(stale[1], nodes.caution) and "has changed since" in stale[1].astext()
    nbformat.write(_notebook(None), path)
    assert chapter_nodes(path, book_dir=book) == []  # a notebook not executed by `ssimnet book`


def test_compress_outputs_turns_large_photos_into_small_jpegs_and_keeps_plots():
    rng = np.random.default_rng(0)
    photo = _png(rng.integers(0, 255, (600, 900, 3), dtype=np.uint8))
    plot = np.full((300, 400, 3), 255, np.uint8)
    plot[150, :] = 0
    nb = _notebook(None, photo, _png(plot))
    saved = compress_outputs(nb, **FIGURES)
    first, second = (o["data"] for o in nb.cells[1].outputs)
    assert "image/png" not in first and saved == len(photo) - len(first["image/jpeg"]) > 0
    with Image.open(io.BytesIO(base64.b64decode(first["image/jpeg"]))) as im:
        assert im.format == "JPEG" and im.size == (400, 267)  # screen resolution, aspect kept
    assert "image/png" in second and "image/jpeg" not in second  # a small plot stays PNG


def test_publish_copies_a_whole_run_or_nothing(book, tmp_path, capsys):
    executed, published = book / "book" / "executed", book / "book" / "published"
    executed.mkdir(parents=True)
    rng = np.random.default_rng(1)
    nbformat.write(_notebook(_record(book), _png(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8))),
                   executed / "01_data.ipynb")
    with pytest.raises(PublishError, match="02_more.ipynb: not executed"):
        publish_run(["01_data", "02_more"], executed_dir=executed, published_dir=published, **FIGURES)
    nbformat.write(_notebook(_record(book, "notebooks/02_more.py", commit="1111111")), executed / "02_more.ipynb")
    with pytest.raises(PublishError, match="more than one run"):
        publish_run(["01_data", "02_more"], executed_dir=executed, published_dir=published, **FIGURES)
    assert not published.exists()  # nothing written
    nbformat.write(_notebook(_record(book, "notebooks/02_more.py")), executed / "02_more.ipynb")
    run = tmp_path / "run" / "results"
    run.mkdir(parents=True)
    for name in ("per_image.csv", "runs.csv", "provenance.json", "selection_per_image.csv"):
        (run / name).write_text(name)
    sizes = publish_run(["01_data", "02_more"], executed_dir=executed, published_dir=published,
                        results_from=run, results_to=tmp_path / "results", **FIGURES)
    assert set(sizes) == {"01_data", "02_more"} and all((published / f"{n}.ipynb").stat().st_size == s
                                                         for n, s in sizes.items())
    nb = nbformat.read(published / "01_data.ipynb", as_version=4)
    assert "image/jpeg" in nb.cells[1].outputs[0]["data"] and METADATA_KEY in nb.metadata
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["per_image.csv", "provenance.json", "runs.csv"]


def test_publish_command_reports_in_one_line(book, capsys):
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/published/01_data\n")
    assert main(["publish", "--book-dir", str(book)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "01_data.ipynb: not executed" in err[0]
    (book / "book" / "executed").mkdir(parents=True)
    nbformat.write(_notebook(_record(book)), book / "book" / "executed" / "01_data.ipynb")
    assert main(["publish", "--book-dir", str(book)]) == 0
    assert "published 1 chapters" in capsys.readouterr().out
    assert (book / "book" / "published" / "01_data.ipynb").is_file()


COMMITTED = Path(__file__).resolve().parents[1] / "results" / "cpu"


def _executed_run(book: Path, tmp_path: Path) -> Path:
    """A one-chapter book executed into `book` and a run folder holding the committed reference results."""
    import shutil

    from ssimnet.book.results import RESULTS

    (book / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/published/01_data\n")
    (book / "book" / "executed").mkdir(parents=True)
    nbformat.write(_notebook(_record(book)), book / "book" / "executed" / "01_data.ipynb")
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    for name in (RESULTS.per_image, RESULTS.provenance, "runs.csv"):
        shutil.copy(COMMITTED / name, run / "results" / name)
    return run


def test_publish_rewrites_the_readme_table_from_the_published_results(book, tmp_path, capsys):
    from ssimnet.book.readme import END, START, results_table
    from ssimnet.book.results import RESULTS, load_results
    from ssimnet.tool.shipped import read_card

    run = _executed_run(book, tmp_path)
    args = ["publish", "--book-dir", str(book), "--run-dir", str(run), "--results", str(tmp_path / "results")]
    (book / "README.md").write_text("# x\nno table here\n")
    assert main(args) == 2  # a README without the markers: one line, nothing published or rewritten
    assert "README.md: no generated table here" in capsys.readouterr().err
    assert (book / "README.md").read_text() == "# x\nno table here\n"
    assert not (book / "book" / "published").exists() and not (tmp_path / "results").exists()
    (book / "README.md").write_text(f"# x\n{START}\n| stale | 1.0 |\n{END}\nafter\n")
    assert main(args) == 0
    per_image, info = load_results(tmp_path / "results", kind=RESULTS)
    expected = f"# x\n{START}\n{results_table(per_image, read_card(), info)}\n{END}\nafter\n"
    assert (book / "README.md").read_text() == expected and "stale" not in expected


def test_publish_times_every_chapter_of_the_run_and_writes_the_teaching_table(book, tmp_path):
    import json

    from ssimnet.book.guide import TIMES_END, TIMES_START, times_table

    run = _executed_run(book, tmp_path)
    # the report saved its provenance before a later chapter ran: that chapter's time is only in timings.json
    (run / "timings.json").write_text(json.dumps({"01_data": 12.5, "10_later": 75.0}))
    (book / "book" / "teaching.md").write_text(f"# Teaching\n{TIMES_START}\n| stale |\n{TIMES_END}\n")
    args = ["publish", "--book-dir", str(book), "--run-dir", str(run), "--results", str(tmp_path / "results")]
    assert main(args) == 0
    info = json.loads((tmp_path / "results" / "provenance.json").read_text())
    before = json.loads((COMMITTED / "provenance.json").read_text())["stage_seconds"]
    assert info["stage_seconds"] == {**before, "01_data": 12.5, "10_later": 75.0}
    teaching = (book / "book" / "teaching.md").read_text()
    assert teaching == f"# Teaching\n{TIMES_START}\n{times_table(['01_data'], info)}\n{TIMES_END}\n"
    assert "| {ref}`chapter-01_data` | 12 s |" in teaching and "stale" not in teaching
