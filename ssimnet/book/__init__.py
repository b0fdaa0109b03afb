"""The reproduction's book: executing the notebooks, their results and provenance, publishing a run.

- :mod:`ssimnet.book.execute` -- executing the book's notebooks with papermill
- :mod:`ssimnet.book.results` -- provenance, saving and loading results
- :mod:`ssimnet.book.report` -- the book's tables from results
- :mod:`ssimnet.book.paper` -- the paper's reported numbers
- :mod:`ssimnet.book.prose` -- the words of computed sentences that state a direction
- :mod:`ssimnet.book.guide` -- run times in the chapter boxes and on the teaching page
- :mod:`ssimnet.book.publish` -- chapter records, staleness, publishing a run
- :mod:`ssimnet.book.sphinx` -- the book's Sphinx extension (provenance line, stale note)

The names of :mod:`ssimnet.book.execute` are importable from here, as they
were when it was the module ``ssimnet.book`` (importing it costs no papermill).
"""

from __future__ import annotations

from .execute import BookError, Chapter, execute_book, executed_toc, notebook_parameters, setup_chapter, toc_notebooks

__all__ = ["BookError", "Chapter", "setup_chapter", "toc_notebooks", "executed_toc", "execute_book",
           "notebook_parameters"]
