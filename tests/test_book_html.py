"""The built book (``_build/html``, after ``make book``) renders offline: no page loads a script from another host.

Skipped before the book is built; ``.ci/run`` runs it after the build.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

HTML = Path(__file__).resolve().parents[1] / "_build" / "html"
pages = sorted(HTML.rglob("*.html")) if HTML.is_dir() else []
EXTERNAL = re.compile(r"""<script\b[^>]*\bsrc=["'](?:https?:)?//""", re.I)


@pytest.mark.skipif(not pages, reason="the book is not built (make book)")
def test_no_page_loads_a_script_from_another_host():
    offenders = {str(p.relative_to(HTML)): EXTERNAL.findall(p.read_text(errors="replace")) for p in pages}
    assert {page: hits for page, hits in offenders.items() if hits} == {}
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").is_file()  # served from the build instead
    math_pages = [p for p in pages if "\\(" in p.read_text(errors="replace")]
    assert math_pages and all('src="' in p.read_text() and "mathjax/tex-chtml.js" in p.read_text() for p in math_pages)


def test_the_pattern_catches_external_scripts():
    assert EXTERNAL.search('<script defer="defer" src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js">')
    assert EXTERNAL.search("<script src='//cdn.example.org/x.js'>")
    assert not EXTERNAL.search('<script src="_static/mathjax/tex-chtml.js">')


@pytest.mark.skipif(not pages, reason="the book is not built (make book)")
def test_every_published_chapter_opens_with_its_provenance():
    chapters = sorted((HTML / "book" / "published").glob("*.html"))
    assert chapters
    for page in chapters:
        text = page.read_text(errors="replace")
        line = re.search(r'class="ssimnet-provenance"><em>(Executed [^<]*)</em>', text)
        assert line and " profile on " in line.group(1) and "commit " in line.group(1), page.name
        title, provenance = text.index("<h1", text.index("<article")), text.index("ssimnet-provenance")
        assert title < provenance < text.find("<h2", title)  # under the title, before the first section


@pytest.mark.skipif(not pages, reason="the book is not built (make book)")
def test_no_page_carries_a_launch_configuration_or_a_remote_script_url():
    # thebe's template Binder repository and its script on unpkg were dead configuration in every page
    for page in pages:
        text = page.read_text(errors="replace")
        assert "binder-examples" not in text and "unpkg.com" not in text and "x-thebe-config" not in text, page.name


@pytest.mark.skipif(not pages, reason="the book is not built (make book)")
def test_landing_page_shows_the_method_figure_the_generated_tables_and_the_glossary_resolves():
    from ssimnet.tool.shipped import read_card

    intro = (HTML / "book" / "intro.html").read_text()
    assert "pipeline.jpg" in intro and "Where to start" in intro
    shipped = read_card()["test"]["monuseg_test"]["aji"] * 100
    assert f"<td><p>{shipped:.1f}</p></td>" in intro or f">{shipped:.1f}<" in intro  # the tool table, as generated
    glossary = (HTML / "book" / "glossary.html").read_text()
    for term in ("AJI", "Dice", "PQ", "USMI", "Voronoi labels"):
        assert f'id="term-{term.replace(" ", "-")}"' in glossary, term
    assert 'href="glossary.html#term-USMI"' in intro  # a {term} in the page links to its entry


# What the published book (the reference run, `make book`) must never show a reader; each pattern is checked
# against a string it must catch in test_the_reader_patterns_catch_what_they_are_for.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|tmp|home|root)/")
ZERO_SPREAD = re.compile(r"±\s*0\.0+(?!\d*[1-9])")
NOT_A_NUMBER = re.compile(r"(?<![\w-])nan(?![\w-])", re.I)
TABLE = re.compile(r"<table\b.*?</table>", re.S | re.I)
TAG = re.compile(r"<[^>]+>")
chapters = sorted((HTML / "book" / "published").glob("*.html")) if HTML.is_dir() else []


def _tables_text(page: Path) -> list[str]:
    return [TAG.sub(" ", table) for table in TABLE.findall(page.read_text(errors="replace"))]


def test_the_reader_patterns_catch_what_they_are_for():
    assert MACHINE_PATH.search("results in /work/cpurun/runs/cpu/results") and MACHINE_PATH.search("'/tmp/x'")
    assert not MACHINE_PATH.search("see book/published/08_report and https://example.org/home/x")
    assert ZERO_SPREAD.search("55.3 ± 0.0") and ZERO_SPREAD.search("55.3 ±0.00 ")
    assert not ZERO_SPREAD.search("55.3 ± 0.04") and not ZERO_SPREAD.search("55.3 ± 0.1")
    assert NOT_A_NUMBER.search(" NaN ") and NOT_A_NUMBER.search("<td>nan</td>")
    assert not NOT_A_NUMBER.search("nanometre Nanjing")
    assert TAG.sub(" ", "<td><p>nan</p></td>").split() == ["nan"]


@pytest.mark.skipif(not pages, reason="the book is not built (make book)")
def test_no_page_shows_a_path_of_the_machine_that_built_it():
    hits = {str(p.relative_to(HTML)): MACHINE_PATH.findall(TAG.sub(" ", p.read_text(errors="replace"))) for p in pages}
    assert {page: found for page, found in hits.items() if found} == {}


@pytest.mark.skipif(not chapters, reason="the book is not built (make book)")
def test_no_rendered_table_shows_a_zero_spread_or_nan():
    for page in chapters:
        for text in _tables_text(page):
            assert not ZERO_SPREAD.search(text), (page.name, ZERO_SPREAD.search(text).group())
            assert not NOT_A_NUMBER.search(text), (page.name, text[:200])


@pytest.mark.skipif(not chapters, reason="the book is not built (make book)")
def test_no_published_chapter_is_stale():
    for page in chapters:
        text = page.read_text(errors="replace")
        assert "ssimnet-stale" not in text and "has changed since" not in text, page.name


@pytest.mark.skipif(not chapters, reason="the book is not built (make book)")
def test_every_chapter_opens_with_its_box_and_closes_with_a_summary():
    for page in chapters:
        text = page.read_text(errors="replace")
        title = text.index("<h1", text.index("<article"))
        box = text.find('<p class="admonition-title">In this chapter</p>', title)
        summary = re.search(r'<section id="summary[^"]*">\s*<h2>(?:<span class="section-number">[^<]*</span>)?Summary',
                            text)
        assert box != -1 and summary, page.name
        assert box < text.find("<h2", title) < summary.start(), page.name  # the box opens, the summary closes


def test_every_substitution_of_the_hand_written_pages_is_computed():
    from ssimnet.book.sphinx import page_facts
    from ssimnet.tool.shipped import read_card

    root = Path(__file__).resolve().parents[1]
    facts = page_facts(root)
    used = {name for page in (root / "book").glob("*.md") for name in re.findall(r"\{\{\s*(\w+)\s*\}\}", page.read_text())}
    assert used and used <= set(facts), used - set(facts)
    assert facts["tnbc_precision"] == f"{100 * read_card()['test']['tnbc']['precision']:.1f}"  # by hand from the card
    own = (root / "book" / "own_images.md").read_text()
    assert not re.search(r"\d\.\d", re.sub(r"\{\{[^}]*\}\}|`[^`]*`|CC BY-NC-SA\s+4\.0", "", own))  # no decimal typed


@pytest.mark.skipif(not pages, reason="the book is not built (make book)")
def test_the_hand_written_pages_show_their_computed_numbers():
    from ssimnet.tool.shipped import read_card

    own = TAG.sub("", (HTML / "book" / "own_images.html").read_text())
    assert "{{" not in own and f"precision {100 * read_card()['test']['tnbc']['precision']:.1f} %" in own
