"""The README is a page for users: the two commands first, and only computed numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ssimnet.book.readme import END, START, results_table, with_generated_table
from ssimnet.book.results import RESULTS, load_results
from ssimnet.tool.shipped import read_card

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _prose(text: str) -> str:
    """`text` without its code blocks, inline code, links' targets and the generated table."""
    text = text[: text.index(START)] + text[text.index(END) + len(END):]
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"doi:\S+", "", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def test_readme_shows_exactly_the_generated_results_table():
    per_image, info = load_results(ROOT / "results" / "cpu", kind=RESULTS)
    assert with_generated_table(README, results_table(per_image, read_card(), info)) == README
    block = README[README.index(START):README.index(END)]
    ssimnet_aji = per_image[per_image.method == "ssimnet"].groupby("run").aji.mean().mean() * 100
    assert "| SSimNet (`cpu` profile) | " in block and f" {ssimnet_aji:.1f} | " in block  # by hand from the CSV
    assert f"| {read_card()['test']['monuseg_test']['aji'] * 100:.1f} |" in block


def test_the_table_follows_the_results_it_is_built_from():
    per_image, info = load_results(ROOT / "results" / "cpu", kind=RESULTS)
    changed = per_image.copy()
    changed.loc[changed.method == "ssimnet", "aji"] += 0.1
    assert results_table(changed, read_card(), info) != results_table(per_image, read_card(), info)
    with pytest.raises(ValueError, match="no generated table"):
        with_generated_table("# no markers\n", "| table |")


def test_readme_opens_with_the_two_commands_and_a_quick_start_and_stays_short():
    first = "\n".join(README.splitlines()[:40])
    assert "make book" in first and "make test" in first
    assert "ssimnet segment" in README[: README.index("## Results")]
    assert 3_000 < len(README.encode()) < 10_000


def test_readme_prose_types_no_measured_number():
    # a decimal in the prose would be a number typed by hand; versions and licences are not measurements
    decimals = set(re.findall(r"\d+\.\d+", _prose(README))) - {"3.11", "4.0"}
    assert not decimals, decimals
    assert "± 0.0" not in README and "nan" not in README.lower().split()


def test_landing_page_shows_exactly_the_generated_tool_table_and_includes_the_readme_table():
    from ssimnet.book.readme import TOOL_END, TOOL_START, tool_table

    intro = (ROOT / "book" / "intro.md").read_text()
    card = read_card()
    assert with_generated_table(intro, tool_table(card), start=TOOL_START, end=TOOL_END) == intro
    block = intro[intro.index(TOOL_START):intro.index(TOOL_END)]
    assert f"| TNBC | `ssimnet segment`, shipped network | {card['test']['tnbc']['dice'] * 100:.1f} |" in block
    assert f':start-after: "{START}"' in intro and f':end-before: "{END}"' in intro  # the README's table, included


def test_teaching_page_shows_exactly_the_generated_run_times_of_every_chapter():
    import json

    from ssimnet.book.execute import toc_notebooks
    from ssimnet.book.guide import TIMES_END, TIMES_START, times_table

    teaching = (ROOT / "book" / "teaching.md").read_text()
    info = json.loads((ROOT / "results" / "cpu" / "provenance.json").read_text())
    chapters = toc_notebooks(ROOT / "_toc.yml")
    assert with_generated_table(teaching, times_table(chapters, info), start=TIMES_START, end=TIMES_END) == teaching
    block = teaching[teaching.index(TIMES_START):teaching.index(TIMES_END)]
    assert all(f"chapter-{name}` | –" not in block for name in chapters)  # the published run timed every chapter
    assert f"| {{ref}}`chapter-04_train` | {round(info['stage_seconds']['04_train'] / 60)} min |" in block
