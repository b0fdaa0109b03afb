"""Sphinx extension of the book: each executed chapter opens with its provenance, and says when it is stale.

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

__all__ = ["chapter_nodes", "setup"]


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


def setup(app: Any) -> dict[str, object]:
    app.connect("doctree-read", _on_doctree_read)
    _drop_thebe(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
