"""Sphinx extension of the book: each executed chapter opens with its provenance, and says when it is stale.

It also hands the hand-written pages their computed numbers (:mod:`ssimnet.book.facts`) as MyST substitutions.

Listed in ``_config.yml`` (``sphinx.extra_extensions``).  For every notebook
page that carries a :class:`ssimnet.book.publish.ChapterRecord`, the page's title
is followed by the record's one-line provenance and, if the chapter's source
notebook or code it ran has changed since it was executed
(:func:`ssimnet.book.publish.chapter_state`), by a caution naming what.

It also unplugs ``sphinx_thebe``, which Jupyter Book always loads: the book
has no live kernel to launch, and thebe's configuration would otherwise put a
template Binder repository and a script from the network into every page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes

from .publish import PublishError, chapter_state, read_record

__all__ = ["chapter_nodes", "page_facts", "setup"]


def chapter_nodes(notebook: str | Path, *, book_dir: str | Path) -> list[nodes.Element]:
    """The nodes a chapter opens with: its provenance line, then the stale note if any.

    Empty for a notebook without a record (a page not executed by ``ssimnet book``).
    """
    record = read_record(notebook)
    if record is None:
        return []
    state = chapter_state(record, book_dir=book_dir)
    old = state.changed_modules is None and state.package_changed  # a record without code fingerprints
    line = record.line() + (" The package has changed since." if old and not state.source_changed else "")
    out: list[nodes.Element] = [nodes.paragraph("", "", nodes.emphasis(text=line), classes=["ssimnet-provenance"])]
    if state.note is not None:
        out.append(nodes.caution("", nodes.paragraph(text=state.note), classes=["ssimnet-stale"]))
    return out


def _on_doctree_read(app: Any, doctree: nodes.document) -> None:
    path = Path(app.env.doc2path(app.env.docname))
    if path.suffix != ".ipynb":
        return
    try:
        extra = chapter_nodes(path, book_dir=app.srcdir)
    except PublishError as exc:
        raise PublishError(f"{path}: {exc}") from None
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not extra:
        return
    title = next((i for i, child in enumerate(section.children) if isinstance(child, nodes.title)), -1)
    for k, node in enumerate(extra):
        section.insert(title + 1 + k, node)


def _drop_thebe(app: Any) -> None:
    """Disconnect sphinx_thebe's event handlers and stylesheet (loaded before this extension)."""
    for event, listeners in app.events.listeners.items():
        app.events.listeners[event] = [l for l in listeners if getattr(l.handler, "__module__", "") != "sphinx_thebe"]
    app.registry.css_files = [(name, attributes) for name, attributes in app.registry.css_files if "thebe" not in name]


def page_facts(book_dir: str | Path) -> dict[str, str]:
    """The hand-written pages' numbers (:mod:`ssimnet.book.facts`), read from the committed files under `book_dir`."""
    from ..cli.options import MPP_RANGE
    from ..config import MAX_IMAGE_PIXELS, PseudoLabelConfig, get_profile
    from ..tool.segmenter import Segmenter
    from ..tool.shipped import read_card
    from .facts import card_facts, profile_facts, settings_facts, study_facts
    from .report import levers_table, normalization_table
    from .results import LEVERS, NORMALIZATION, OBJECT_PROBABILITY, load_results

    results = Path(book_dir) / "results" / "cpu"
    levers, lever_info = load_results(results, kind=LEVERS)
    normalization, _ = load_results(results, kind=NORMALIZATION)
    objects, _ = load_results(results, kind=OBJECT_PROBABILITY)
    return {
        **card_facts(read_card()),
        **settings_facts(Segmenter.pretrained().stored(), mpp_range=MPP_RANGE, max_pixels=MAX_IMAGE_PIXELS,
                         patch_size=PseudoLabelConfig().patch_size),
        **profile_facts(get_profile("cpu"), get_profile("paper")),
        **study_facts(normalization=normalization_table(normalization),
                      levers=levers_table(levers),
                      object_probability=objects, held_out=len(lever_info["held_out"])),
    }


def _substitutions(app: Any, config: Any) -> None:
    config.myst_substitutions = {**page_facts(app.srcdir), **(config.myst_substitutions or {})}


def setup(app: Any) -> dict[str, object]:
    app.connect("config-inited", _substitutions)
    app.connect("doctree-read", _on_doctree_read)
    _drop_thebe(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
