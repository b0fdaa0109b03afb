"""The published book (``book/published``): one whole run, small enough, and exactly the committed numbers.

``make book`` builds these committed chapters without executing them, so
what they show is checked here against the committed results files, with
plain pandas rather than the package's summary code.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat
import pandas as pd

from ssimnet.book import toc_notebooks
from ssimnet.book.publish import METADATA_KEY, ChapterRecord

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "book" / "published"
RESULTS = ROOT / "results" / "cpu"
NAMES = toc_notebooks(ROOT / "_toc.yml")


def _notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(PUBLISHED / f"{name}.ipynb", as_version=4)


def _tables(nb: nbformat.NotebookNode, source: str) -> list[dict[str, tuple[str, ...]]]:
    """Every HTML table shown by a code cell containing `source`: row header -> its cells."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code" or source not in cell.source:
            continue
        for output in cell.get("outputs", []):
            markup = output.get("data", {}).get("text/html")
            if not markup:
                continue
            rows = {}
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", markup, flags=re.S):
                header = re.findall(r"<th[^>]*>(.*?)</th>", row, flags=re.S)
                cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
                if header and cells:
                    rows[html.unescape(header[0]).strip()] = tuple(html.unescape(c).strip() for c in cells)
            out.append(rows)
    return out


def _means(per_image: pd.DataFrame, config: str, split: str, metric: str) -> str:
    rows = per_image[(per_image.config == config) & (per_image.split == split)]
    return f"{100 * rows.groupby('run')[metric].mean().mean():.1f}"


def test_the_published_set_is_one_whole_run_and_small():
    assert NAMES and all((PUBLISHED / f"{n}.ipynb").is_file() for n in NAMES)
    records = [ChapterRecord.from_metadata(_notebook(n).metadata[METADATA_KEY]) for n in NAMES]
    assert len({(r.profile, r.commit, r.data) for r in records}) == 1  # every chapter from the same run
    assert [r.source for r in records] == [f"notebooks/{n}.py" for n in NAMES]
    size = sum((PUBLISHED / f"{n}.ipynb").stat().st_size for n in NAMES)
    assert size <= 15 * 2**20
    executed = {o.get("output_type") for n in NAMES for c in _notebook(n).cells if c.cell_type == "code"
                for o in c.get("outputs", [])}
    assert "error" not in executed and "display_data" in executed


def test_the_published_set_is_a_real_monuseg_run_recorded_in_results():
    # The published book is the reference run on MoNuSeg, never the synthetic smoke tiles, and the
    # reproduction report's committed results come from that same run.
    records = [ChapterRecord.from_metadata(_notebook(n).metadata[METADATA_KEY]) for n in NAMES]
    assert {r.profile for r in records} <= {"cpu", "paper"}
    assert all(r.data.startswith("monuseg (") for r in records)
    info = json.loads((RESULTS / "provenance.json").read_text())
    assert {r.commit for r in records} == {info["commit"]} and {r.profile for r in records} == {info["profile"]}


def test_chapter_9_shows_the_committed_learned_separation_and_generator_numbers():
    nb = _notebook("09_beyond")
    study = pd.read_csv(RESULTS / "selection_per_image.csv")
    learned = pd.read_csv(RESULTS / "learned_separation_per_image.csv")
    generators = pd.read_csv(RESULTS / "generators" / "selection_per_image.csv")

    (separation,) = _tables(nb, 'separation[["train aji"')
    columns = [("train", "aji"), ("test", "dice"), ("test", "aji"), ("test", "pq")]
    seed0 = study[study.seed == 0]
    for config in ("distance watershed", "self-training, 1 round + distance watershed"):
        assert separation[config] == tuple(_means(seed0, config, s, m) for s, m in columns), config
    for config in learned.config.unique():
        assert separation[config] == tuple(_means(learned, config, s, m) for s, m in columns), config

    (table,) = _tables(nb, 'generators[["train dice"')
    columns = [(s, m) for s in ("train", "test") for m in ("dice", "aji", "pq")]
    assert table["candidates fcm (paper) + distance watershed"] == tuple(
        _means(seed0, "distance watershed", s, m) for s, m in columns)
    for config in generators.config.unique():
        assert table[config] == tuple(_means(generators, config, s, m) for s, m in columns), config


def test_chapter_10_shows_the_committed_normalization_study():
    nb = _notebook("10_generalisation")
    study = pd.read_csv(RESULTS / "normalization_per_image.csv")
    (table,) = _tables(nb, "normalization = normalization_table(")
    splits = list(study.split.unique())
    assert splits == ["train", "test", "tnbc"]
    for config in study.config.unique():
        rows = study[study.config == config]
        expected = tuple(f"{100 * rows[rows.split == s][m].mean():.1f}" for s in splits for m in ("dice", "aji", "pq"))
        assert table[config][: len(expected)] == expected, config


def test_chapter_10_shows_the_committed_resolution_study():
    nb = _notebook("10_generalisation")
    study = pd.read_csv(RESULTS / "resolution_per_image.csv")
    (table,) = _tables(nb, "resolution = study_table(")
    splits = list(study.split.unique())
    assert splits == ["test at 20x", "test at 60x"]
    assert set(table) == set(study.config)
    for config, rows in study.groupby("config"):
        expected = tuple(f"{100 * rows[rows.split == s][m].mean():.1f}" for s in splits for m in ("dice", "aji", "pq"))
        assert table[config] == expected, config


def test_chapter_5_shows_the_committed_finetuning_study():
    nb = _notebook("05_finetune_evaluate")
    study = pd.read_csv(RESULTS / "finetune_per_image.csv")
    (table,) = _tables(nb, "finetune = finetune_runs.groupby(")
    assert set(table) == set(study.config)
    for config, rows in study.groupby("config"):
        assert table[config][:3] == tuple(f"{100 * rows[m].mean():.1f}" for m in ("dice", "aji", "pq")), config


def test_chapter_8_keeps_the_fine_tuned_test_scores_of_the_training_study_apart():
    # the held-out readings were scored on test without and with fine-tuning: one column each, never their average
    nb = _notebook("08_report")
    study = pd.read_csv(RESULTS / "attribution_training_per_image.csv")
    (table,) = _tables(nb, "training_table = split_table(training)")
    test = study[study.split == "test"]
    assert set(test.finetune) == {0, 5}
    for config, rows in test.groupby("config"):
        plain, tuned = (f"{100 * rows[rows.finetune == e].aji.mean():.1f}" for e in (0, 5))
        assert table[config][3] == plain and table[config][5] == tuned, config
    for config in set(study.config) - set(test.config):
        assert table[config][2:] == ("–",) * 4, config


def test_chapter_8_names_its_own_run_among_the_networks_used():
    nb = _notebook("08_report")
    record = ChapterRecord.from_metadata(nb.metadata[METADATA_KEY])
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "networks_used(" in c.source]
    (markup,) = [o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]
    rows = [tuple(html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S))
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", markup, flags=re.S)]
    ours = [row for row in rows if "the book's reference run" in row]
    assert len(ours) == 1 and f"commit {record.commit[:7]}" in ours[0], rows
