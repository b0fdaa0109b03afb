"""The errors and warnings about inputs: one line that names the file and the problem.

Every problem with an input raises :class:`DataError`; it survives pickling,
so a worker process can report it.  A batch that goes on past bad files
collects them in :class:`DataErrors`.  What is accepted but changed on the
way in (a CMYK image converted, transparent pixels made white, the first
frame of many) is an :class:`InputWarning`, which ``ssimnet segment`` reports
with the file's name, as it does a :class:`SegmentationWarning`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DataError", "DataErrors", "InputWarning", "SegmentationWarning", "first_line"]


class DataError(ValueError):
    """A problem with an input file or folder; the message names it."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        return type(self), (self.path, self.problem)


class DataErrors(Exception):
    """Several bad inputs of one batch, each a :class:`DataError`; the rest of the batch was done.

    >>> import pickle
    >>> e = DataErrors([DataError("a.png", "blank image"), DataError("b.png", "file not found")])
    >>> str(pickle.loads(pickle.dumps(e)))
    'a.png: blank image\\nb.png: file not found'
    """

    def __init__(self, errors: Sequence[DataError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(map(str, self.errors)))

    def __reduce__(self) -> tuple[type, tuple[list[DataError]]]:
        return type(self), (self.errors,)


class InputWarning(UserWarning):
    """An input that was read, but changed on the way in (the message says how)."""


class SegmentationWarning(UserWarning):
    """An image that was segmented, but not as asked (its stains left as they are by ``normalize="auto"``),
    or whose result looks implausible (nuclei over most of the tissue); the message says which and what to try."""


def first_line(exc: BaseException, *, limit: int = 160) -> str:
    """What a reader's or loader's exception says, in one line: its first line, or its kind where the message
    says nothing readable (a bare key or number).

    >>> first_line(OSError("bad header\\nmore")), first_line(KeyError(101)), first_line(ValueError())
    ('bad header', 'KeyError: 101', 'ValueError')
    """
    lines = str(exc).strip().splitlines()
    text = lines[0][:limit] if lines else ""
    if not any(c.isalpha() for c in text):
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text
