"""The book's notebooks: executing them in ``_toc.yml`` order, and the set-up every chapter shares.

``_toc.yml`` lists the published chapters (``book/published/N.ipynb``, the
reference run, committed).  ``ssimnet book`` runs :func:`execute_book`,
which executes ``notebooks/N.py`` into ``book/executed/N.ipynb`` (git-ignored),
stamps each with its :class:`ssimnet.book.publish.ChapterRecord` and writes
``book/executed/_toc.yml``, the same book over the executed chapters
(:func:`executed_toc`).  Each notebook's first code cell calls
:func:`setup_chapter` with its papermill parameters.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import BOOK_EXECUTED, BOOK_PUBLISHED, DEFAULT_SEED, Profile, get_profile
from ..data import atomic_path
from ..datasets import is_synthetic, resolve_dataset
from .publish import METADATA_KEY, chapter_record

__all__ = ["BookError", "Chapter", "setup_chapter", "toc_notebooks", "executed_toc", "execute_book", "notebook_parameters"]


class BookError(Exception):
    """A notebook that cannot be executed, or a bad book option; reported in one line with exit `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return type(self), (str(self), self.code)


@dataclass(frozen=True)
class Chapter:
    """What a chapter of the book runs on (:func:`setup_chapter`).

    Attributes
    ----------
    profile : Profile
    data_root : Path
        The dataset in the uniform layout.
    run_dir : Path
        Where every stage's results are cached.
    seed : int
    device : str or None
        Torch device (None: CUDA if present, else the CPU).
    workers : int
        Worker processes of the pseudo-label stage.
    """

    profile: Profile
    data_root: Path
    run_dir: Path
    seed: int
    device: str | None
    workers: int

    @property
    def real(self) -> bool:
        """Whether the chapter runs on real data (not the synthetic tiles)."""
        return not is_synthetic(self.data_root)


def setup_chapter(
    *, data_dir: str, run_dir: str, profile: str, seed: int = DEFAULT_SEED, device: str = "", workers: int = 1
) -> Chapter:
    """The notebooks' papermill parameters as a :class:`Chapter`; draws the synthetic data if no `data_dir`."""
    config = get_profile(profile)
    return Chapter(profile=config, data_root=resolve_dataset(data_dir, run_dir, config.synthetic), run_dir=Path(run_dir),
                   seed=int(seed), device=device or None, workers=max(1, int(workers)))


def toc_notebooks(toc: str | os.PathLike[str], *, folder: str = BOOK_PUBLISHED) -> list[str]:
    """Names of the notebooks that ``_toc.yml`` takes from `folder`, in book order.

    Each name ``N`` is executed from ``notebooks/N.py`` into ``book/executed/N.ipynb``
    and published as ``book/published/N.ipynb``.
    """
    import yaml

    with open(toc) as f:
        tree = yaml.safe_load(f)
    names: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            file = node.get("file")
            if isinstance(file, str) and file.startswith(folder + "/"):
                names.append(Path(file).name.removesuffix(".ipynb"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return names


def executed_toc(toc_text: str, *, published: str = BOOK_PUBLISHED, executed: str = BOOK_EXECUTED) -> str:
    r"""``_toc.yml`` with its published chapters replaced by the executed ones.

    >>> executed_toc("chapters:\n  - file: book/published/01_data\n")
    'chapters:\n  - file: book/executed/01_data\n'
    """
    return toc_text.replace(f"file: {published}/", f"file: {executed}/")


def _has_display_output(nb: object) -> bool:
    kinds = {"display_data", "execute_result"}
    return any(
        out.get("output_type") in kinds for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )


def execute_book(
    *,
    book_dir: Path,
    parameters: dict[str, object],
    info: dict[str, object],
    only: Sequence[str] = (),
    quiet: bool = False,
    timings: Path | None = None,
) -> dict[str, float]:
    """Execute the book's notebooks with papermill, in ``_toc.yml`` order; returns each one's wall time (s).

    Each ``notebooks/N.py`` (jupytext py:percent) runs with `parameters` in
    `book_dir` and is written to ``book/executed/N.ipynb`` only if it ran to
    the end and shows at least one output, stamped with its
    :class:`~ssimnet.book.publish.ChapterRecord` (`info` is the run's
    :func:`ssimnet.book.results.provenance`); ``book/executed/_toc.yml`` is the
    book over the executed chapters (:func:`executed_toc`).  The ``parameters`` and
    ``injected-parameters`` cells are tagged ``remove-cell`` so the book does
    not show them.  With `timings`, each notebook's wall time is merged into
    that JSON file as soon as it has run, so that later notebooks (the
    reproduction report) can read the stages before them.

    Raises
    ------
    BookError
        If a notebook is missing, fails, or shows no output.
    """
    import jupytext
    import nbformat
    import papermill

    names = toc_notebooks(book_dir / "_toc.yml")
    with atomic_path(book_dir / BOOK_EXECUTED / "_toc.yml") as tmp:
        tmp.write_text(executed_toc((book_dir / "_toc.yml").read_text()))
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise BookError(f"_toc.yml: no notebook named {', '.join(unknown)} (known: {', '.join(names)})")
        names = [n for n in names if n in only]
    seconds: dict[str, float] = {}
    for name in names:
        source = book_dir / "notebooks" / f"{name}.py"
        if not source.is_file():
            raise BookError(f"{source}: notebook listed in _toc.yml not found")
        nb = jupytext.read(source)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        target = book_dir / BOOK_EXECUTED / f"{name}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        if not quiet:
            print(f"[book] {name}", file=sys.stderr)
        with atomic_path(target) as tmp:
            try:
                out = papermill.execute_notebook(
                    nb, str(tmp), parameters=parameters, kernel_name="python3", cwd=str(book_dir),
                    progress_bar=not quiet, log_output=False,
                )
            except papermill.PapermillExecutionError as exc:
                raise BookError(f"{source}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}", code=1) from None
            for cell in out.cells:
                tags = cell.metadata.get("tags", [])
                if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
                    cell.metadata["tags"] = [*tags, "remove-cell"]
            if not _has_display_output(out):
                raise BookError(f"{source}: executed, but shows no output", code=1)
            out.metadata[METADATA_KEY] = chapter_record(source, book_dir=book_dir, info=info).to_metadata()
            nbformat.write(out, str(tmp))
        seconds[name] = round(time.perf_counter() - start, 1)
        if not quiet:
            print(f"[book] {name}: {seconds[name]:.1f} s", file=sys.stderr)
        if timings is not None:
            recorded = json.loads(timings.read_text()) if timings.is_file() else {}
            with atomic_path(timings) as tmp:
                tmp.write_text(json.dumps({**recorded, name: seconds[name]}, indent=2) + "\n")
    return seconds


def notebook_parameters(items: Sequence[str], *, reserved: dict[str, object]) -> dict[str, object]:
    """``NAME=VALUE`` strings as papermill parameters; values are Python literals, else strings."""
    out: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise BookError(f"--param {item!r}: expected NAME=VALUE")
        if name in reserved:
            raise BookError(f"--param {name}: set by its own option (--{name.replace('_', '-')})")
        try:
            out[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[name] = text
    return out
