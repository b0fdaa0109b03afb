"""Reference results: the committed files parse, agree with each other, and the book shows exactly their numbers."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from ssimnet.baselines import METHOD_NAMES, TABLE1_METHODS
from ssimnet.book.report import SCORE_COLUMNS, format_selection, reproduction_report, run_means, selection_table, table3
from ssimnet.book.results import RESULTS, SELECTION, load_results, save_results
from ssimnet.config import ABLATION
from ssimnet.data import DataError

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted(p.parent for p in (ROOT / "results").glob("*/provenance.json"))


def _toy_results() -> pd.DataFrame:
    rows = []
    for method, runs in (("ssimnet", 2), ("ssimnet_noft", 1)):
        for run in range(runs):
            for i in range(3):
                rows.append({"method": method, "run": run, "seed": run, "image": f"img{i}",
                             **{m: 0.1 * (i + 1) + 0.2 * run for m in SCORE_COLUMNS}, "seconds": 1.0})
    return pd.DataFrame(rows)


def test_run_means_and_table3_by_hand():
    frame = _toy_results()
    means = run_means(frame)
    # image values 0.1, 0.2, 0.3 (+0.2 for run 1): means 0.2 and 0.4
    assert means[["method", "run"]].values.tolist() == [["ssimnet", 0], ["ssimnet", 1], ["ssimnet_noft", 0]]
    assert np.allclose(means.dice, [0.2, 0.4, 0.2])
    table = table3(frame).set_index(["method", "source"])
    # mean 30.0, sample std of (20, 40) = 14.1, best run (highest Dice) 40.0
    assert table.loc[("SSimNet (all)", "reproduced (2 runs)"), "aji"] == "30.0 ± 14.1 (40.0)"
    assert table.loc[("SSimNet (all)", "reported"), "aji"] == "49.8"
    assert ("w/o label softening", "reproduced (1 run)") not in table.index


def test_reproduction_report_difference_and_tolerance():
    report = reproduction_report(_toy_results()).set_index(["table", "method", "metric"])
    row = report.loc[("Table 1", "SSimNet", "dice")]
    assert (row.reproduced, row.reported, row.difference) == (30.0, 79.2, -49.2)
    assert row.tolerance == 14.1 and bool(row["beyond std"])
    assert np.isnan(report.loc[("Table 3", "w/o fine-tuning", "aji"), "reported std"])


def test_save_load_roundtrip_and_tampering(tmp_path):
    frame = _toy_results()
    save_results(tmp_path / "r", frame, {"profile": "smoke"}, kind=RESULTS)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(RESULTS.files)
    loaded, info = load_results(tmp_path / "r", kind=RESULTS)
    assert info == {"profile": "smoke"}
    assert np.allclose(loaded[list(SCORE_COLUMNS)], frame[list(SCORE_COLUMNS)], atol=1e-6)
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    runs.loc[0, "aji"] += 0.01
    runs.to_csv(tmp_path / "r" / "runs.csv", index=False)
    with pytest.raises(DataError, match="runs.csv: does not match"):
        load_results(tmp_path / "r", kind=RESULTS)
    (tmp_path / "r" / "provenance.json").unlink()
    with pytest.raises(DataError, match="provenance.json: results file not found"):
        load_results(tmp_path / "r", kind=RESULTS)


@pytest.mark.parametrize("directory", COMMITTED, ids=lambda p: p.name)
def test_committed_results_parse_and_are_complete(directory):
    per_image, info = load_results(directory, kind=RESULTS)
    assert info["profile"] == directory.name
    expected = {*TABLE1_METHODS, *(v.key for v in ABLATION)}
    assert set(per_image.method) == expected
    assert per_image.groupby(["method", "run"]).image.nunique().eq(info["data"]["test_images"]).all()
    assert per_image[list(SCORE_COLUMNS)].apply(lambda c: c.between(0, 1)).all().all()
    for key in ("commit", "hardware", "libraries", "parameters", "compute_seconds"):
        assert info[key]


def _cell(values: pd.Series, best: float) -> str:
    if len(values) == 1:  # a single run has no spread: its value alone
        return f"{100 * values.mean():.1f}"
    return f"{100 * values.mean():.1f} ± {100 * values.std(ddof=1):.1f} ({100 * best:.1f})"


def _html_rows(markup: str) -> set[tuple[str, ...]]:
    rows = set()
    for row in re.findall(r"<tr>(.*?)</tr>", markup, flags=re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        rows.add(tuple(cells))
    return rows


def _html_table(markup: str) -> dict[str, tuple[str, ...]]:
    """Each row of an HTML table by its first cell (the index), header or data."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", markup, flags=re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)]
        if cells:
            rows[cells[0]] = tuple(cells[1:])
    return rows


@pytest.fixture(scope="module")
def report_notebook(tmp_path_factory):
    """Chapter 08 executed on the committed cpu results, once for this module."""
    import jupytext
    import papermill

    tmp_path = tmp_path_factory.mktemp("report")
    nb = jupytext.read(ROOT / "notebooks" / "08_report.py")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return papermill.execute_notebook(nb, str(tmp_path / "out.ipynb"), kernel_name="python3", cwd=str(ROOT), progress_bar=False,
                                      parameters={"data_dir": "", "run_dir": str(tmp_path),
                                                  "results_dir": str(ROOT / "results" / "cpu")})


def _outputs(nb, kind: str) -> list[str]:
    return [html.unescape(o["data"][kind]) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if kind in o.get("data", {})]


@pytest.mark.skipif(not (ROOT / "results" / "cpu").is_dir(), reason="no committed cpu results")
def test_report_notebook_shows_exactly_the_committed_numbers(report_notebook):
    out = report_notebook
    directory = ROOT / "results" / "cpu"
    tables = [o["data"]["text/html"] for c in out.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "text/html" in o.get("data", {}) and "reproduced (" in o["data"]["text/html"]]
    assert len(tables) == 2  # Table 1 and Table 3
    shown = _html_rows(tables[0]) | _html_rows(tables[1])

    # Expected cells straight from the committed CSV, without the package's summary code.
    per_image = pd.read_csv(directory / "per_image.csv")
    means = per_image.groupby(["method", "run"])[["precision", "recall", "dice", "aji"]].mean()
    for key in [*TABLE1_METHODS, *(v.key for v in ABLATION)]:
        runs = means.loc[key]
        best = runs.loc[runs.dice.idxmax()]
        expected = tuple(_cell(runs[m], best[m]) for m in ("precision", "recall", "dice", "aji"))
        assert expected in shown, (key, expected)
    assert any("SSimNet" in html.unescape(t) for t in tables)
    assert METHOD_NAMES["watershed"] in tables[0]

    # The GPU table: every cell straight from results/gpu/scores.csv.
    gpu = pd.read_csv(ROOT / "results" / "gpu" / "scores.csv")
    gpu_tables = [html.unescape(o["data"]["text/html"]) for c in out.cells if c.cell_type == "code"
                  for o in c.get("outputs", []) if "paper` network on the GPU" in html.unescape(o.get("data", {}).get("text/html", ""))]
    assert len(gpu_tables) == 1
    gpu_rows = _html_table(gpu_tables[0])
    for stage, name in (("test", "SSimNet w/o fine-tuning, `paper` network on the GPU"), ("test_ft", "SSimNet, `paper` network on the GPU")):
        expected = gpu[(gpu.stage == stage) & (gpu.method == "cc")][["precision", "recall", "dice", "aji"]].mean() * 100
        assert gpu_rows[name] == tuple(f"{v:.1f}" for v in expected), name


@pytest.mark.skipif(not (ROOT / "results" / "cpu" / "attribution_per_image.csv").is_file(), reason="no attribution results")
def test_report_notebook_shows_the_committed_attribution_and_its_verdict(report_notebook):
    directory = ROOT / "results" / "cpu"
    attribution = pd.read_csv(directory / "attribution_per_image.csv")
    # Expected cells straight from the CSV: the mean over seeds of each seed's image mean, with its SD over seeds.
    tuned = attribution[attribution.finetune > 0]
    seeds = tuned.groupby(["config", "seed"])[["dice", "aji", "aji_plus", "pq"]].mean() * 100
    (table,) = [t for t in _outputs(report_notebook, "text/html") if "oracle: candidates" in t and "share" in t]
    shown = _html_table(table)
    base = seeds.loc["reproduction"].aji
    for config, runs in seeds.groupby(level="config"):
        runs = runs.droplevel("config")
        cells = [f"{runs[m].mean():.1f}" if len(runs) == 1 else f"{runs[m].mean():.1f} ± {runs[m].std():.1f}"
                 for m in ("dice", "aji", "aji_plus", "pq")]
        differences = runs.aji - base[runs.index]  # against the reproduction on the same seeds
        change = (f"{differences.mean():+.1f}" if len(runs) == 1 or config == "reproduction"
                  else f"{differences.mean():+.1f} ± {differences.std():.1f}")
        assert shown[config][:4] == tuple(cells), config
        assert shown[config][5] == change, config
        if config == "oracle: candidates":  # its share of the gap, by hand: (48.5 - 39.3) / (49.8 - 39.3)
            assert shown[config][6] == f"{differences.mean() / (49.8 - base[runs.index].mean()):.2f}"
    # The waterfall is drawn, and the verdict states the reference run's SSimNet AJI against the paper's.
    assert any("fig-report-gap" in str(c.metadata) and any(o.get("output_type") == "display_data" for o in c.outputs)
               for c in report_notebook.cells if c.cell_type == "code")
    runs = pd.read_csv(directory / "per_image.csv").groupby(["method", "run"]).aji.mean() * 100
    ours = runs.loc["ssimnet"].mean()
    verdict = "\n".join(t for t in _outputs(report_notebook, "text/markdown") if "directions hold" in t)
    assert f"**SSimNet, AJI: {'lower here' if ours < 49.8 - 0.9 else 'reproduces'}** ({ours:.1f} against 49.8)" in verdict


def _toy_selection() -> pd.DataFrame:
    rows = []
    for config, base in (("a", 0.3), ("b", 0.5)):
        for run in range(2):
            for split, n in (("train", 3), ("test", 2)):
                for i in range(n):
                    rows.append({"config": config, "split": split, "run": run, "seed": run, "image": f"{split}{i}",
                                 **{m: base + 0.1 * i + 0.05 * run for m in SCORE_COLUMNS}})
    return pd.DataFrame(rows)


def test_selection_table_by_hand_and_chosen_on_train_only(tmp_path):
    frame = _toy_selection()
    table = selection_table(frame)
    # config "a", train: run means 0.40 and 0.45 -> mean 42.5, sample std 3.5; test: 0.35, 0.40 -> 37.5
    assert table.loc["a", "train aji"] == 42.5 and table.loc["a", "train aji std"] == 3.5
    assert table.loc["a", "test dice"] == 37.5 and table.loc["a", "runs"] == 2
    assert table.index[table.chosen].tolist() == ["b"]
    flipped = frame.copy()
    flipped.loc[(flipped.config == "a") & (flipped.split == "test"), "aji"] = 0.99  # test scores cannot change the choice
    assert selection_table(flipped).index[selection_table(flipped).chosen].tolist() == ["b"]
    assert format_selection(table).loc["a", ("train", "aji")] == "42.5 ± 3.5"
    # other splits, the first chooses; an excluded row is never chosen; a split not scored is a dash
    held = frame.replace({"split": {"train": "heldout"}})
    held = pd.concat([held[~((held.config == "a") & (held.split == "test"))],
                      held[held.config == "b"].assign(config="ref", aji=0.9)], ignore_index=True)
    other = selection_table(held, splits=("heldout", "test"), exclude=("ref",))
    assert other.index[other.chosen].tolist() == ["b"] and other.loc["ref", "heldout aji"] == 90.0
    assert np.isnan(other.loc["a", "test aji"]) and format_selection(other).loc["a", ("test", "aji")] == "–"
    assert format_selection(other).loc["a", ("heldout", "aji")] == "42.5 ± 3.5"
    save_results(tmp_path, frame, {"commit": "abc"}, kind=SELECTION)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SELECTION.files)
    loaded, info = load_results(tmp_path, kind=SELECTION)
    assert_frame_equal(loaded, frame, check_dtype=False)
    assert info == {"commit": "abc"}
    frame.drop(columns="pq").to_csv(tmp_path / SELECTION.per_image, index=False)
    with pytest.raises(DataError, match="missing columns pq"):
        load_results(tmp_path, kind=SELECTION)
    with pytest.raises(DataError, match="not found"):
        load_results(tmp_path / "nowhere", kind=SELECTION)


def test_committed_selection_study_is_complete_and_consistent():
    per_image, info = load_results(ROOT / "results" / "cpu", kind=SELECTION)
    assert info["profile"] == "cpu" and info["data"]["name"] == "monuseg" and info["commit"]
    assert per_image[list(SCORE_COLUMNS)].apply(lambda c: c.between(0, 1)).all().all()
    counts = per_image.groupby(["config", "split", "run"]).image.nunique().unstack("split")
    assert (counts["train"] == 30).all() and (counts["test"] == 14).all()
    table = selection_table(per_image)
    for config, group in per_image.groupby("config"):
        for split in ("train", "test"):
            runs = group[group.split == split].groupby("run").aji.mean() * 100
            assert table.loc[config, f"{split} aji"] == pytest.approx(runs.mean(), abs=0.051)
    chosen = table.index[table.chosen][0]
    assert table.loc[chosen, "train aji"] == table["train aji"].max()


def test_networks_used_groups_studies_by_network_and_finds_their_chapters(tmp_path):
    import json

    from ssimnet.book.results import networks_used
    from ssimnet.book.results import FINETUNE, LEVERS, NORMALIZATION, RESULTS

    def write(kind, commit, width, network=None):
        info = {"profile": "cpu", "commit": commit, "created": f"2026-12-0{commit[0]}T00:00:00",
                "parameters": {"train": {"width": width, "epochs": 6}}}
        (tmp_path / "results" / kind.provenance).write_text(json.dumps({**info, **({"network": network} if network else {})}))

    (tmp_path / "results").mkdir()
    checkpoint = {"checkpoint": "a.pt", "sha256": "abcdef0123", "training": "x"}
    write(RESULTS, "1111111aaa", 8)
    write(FINETUNE, "2222222bbb", 16, checkpoint)
    write(NORMALIZATION, "3333333ccc", 16, checkpoint)  # the same checkpoint: one network
    write(LEVERS, "4444444ddd", 8)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "05_x.py").write_text("load_results(d, kind=FINETUNE)\n")
    (notebooks / "09_y.py").write_text("load_results(d, kind=NORMALIZATION)\nload_results(d, kind=LEVERS)\n")
    table = networks_used(tmp_path / "results", notebooks).set_index("trained")
    assert list(table.index) == ["commit 1111111", "checkpoint abcdef0", "commit 4444444"]  # by date
    assert table.loc["checkpoint abcdef0", "results"] == "finetune, normalization"
    assert table.loc["checkpoint abcdef0", "chapters"] == "05, 09"
    assert table.loc["commit 1111111", "chapters"] == "all"
    assert table.loc["commit 4444444", "network"] == "U-Net width 8, 6 epochs"
    # the run being shown stands for the reference run's committed provenance, which it has not replaced yet
    run = {"profile": "cpu", "commit": "5555555eee", "created": "2026-12-09T00:00:00",
           "parameters": {"train": {"width": 8, "epochs": 6}}}
    shown = networks_used(tmp_path / "results", notebooks, reference=run).set_index("results")
    assert shown.loc["the book's reference run", "trained"] == "commit 5555555"
    assert shown.loc["the book's reference run", "date"] == "2026-12-09"
    assert "commit 1111111" not in set(shown.trained)


@pytest.mark.skipif(not (ROOT / "results" / "cpu").is_dir(), reason="no committed cpu results")
def test_report_notebook_shows_the_networks_used_and_no_single_run_spread(report_notebook):
    from ssimnet.book.results import networks_used

    expected = networks_used(ROOT / "results" / "cpu", ROOT / "notebooks")
    (table,) = [t for t in _outputs(report_notebook, "text/html") if "the book&#x27;s reference run" in t
                or "the book's reference run" in t]
    for _, row in expected.iterrows():
        assert row.trained in html.unescape(table) and row.results in html.unescape(table)
    assert "± 0.0" not in "\n".join(_outputs(report_notebook, "text/html") + _outputs(report_notebook, "text/markdown"))
