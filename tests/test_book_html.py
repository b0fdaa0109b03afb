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
