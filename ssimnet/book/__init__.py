"""The reproduction's book: executing the notebooks, their results and provenance, publishing a run.

- :mod:`ssimnet.book.execute` -- executing the book's notebooks with papermill
- :mod:`ssimnet.book.results` -- provenance, saving and loading results
- :mod:`ssimnet.book.report` -- the book's tables from results
- :mod:`ssimnet.book.paper` -- the paper's reported numbers
- :mod:`ssimnet.book.publish` -- chapter records, staleness, publishing a run
- :mod:`ssimnet.book.sphinx` -- the book's Sphinx extension (provenance line, stale note)

The names of :mod:`ssimnet.book.execute` are importable from here, as they
were when it was the module ``ssimnet.book``.
"""

from __future__ import annotations

__all__ = ["BookError", "Chapter", "setup_chapter", "toc_notebooks", "executed_toc", "execute_book",
           "notebook_parameters"]


def __getattr__(name: str) -> object:  # papermill and jupytext are imported only when a name is first used
    if name.startswith("__") or name == "execute":  # dunders, and the submodule while it is being imported
        raise AttributeError(name)
    from . import execute

    try:
        return getattr(execute, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
