"""What the book states about each chapter's cost, read from the committed reference run.

Each chapter opens with an "In this chapter" box whose time is glued in by
:func:`reference_time`, and the teaching page's table of run times, between
:data:`TIMES_START` and :data:`TIMES_END`, is written by ``ssimnet publish``
with :func:`times_table`, so that no run time in the book is typed by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["TIMES_START", "TIMES_END", "reference_time", "times_table"]

#: The lines that enclose the teaching page's generated table of run times.
TIMES_START = "<!-- run times: written by `ssimnet publish` from results/cpu/provenance.json; do not edit -->"
TIMES_END = "<!-- end of the run times -->"


def _duration(seconds: float) -> str:
    """A run time in words, to the minute above one minute.

    >>> _duration(14.6), _duration(587.4), _duration(7300)
    ('15 s', '10 min', '2 h 2 min')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def reference_time(chapter: str, results_dir: str | os.PathLike[str]) -> str:
    """How long `chapter` took in the reference run whose provenance is in `results_dir`, in words.

    Reads ``provenance.json``'s ``stage_seconds`` (the chapter's wall time
    when the run executed it) and its profile and hardware.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "provenance.json").write_text(json.dumps({"profile": "cpu", "stage_seconds": {"04_train": 587.4},
    ...     "hardware": {"cpus": 2, "gpu": None}}))
    >>> reference_time("04_train", folder)
    '10 min in the reference run (`cpu` profile, 2 CPUs, no GPU)'
    >>> reference_time("10_new", folder)
    'not measured yet in the reference run (`cpu` profile)'
    >>> reference_time("04_train", folder / "missing")[:17]
    'not measured here'
    """
    path = Path(results_dir) / "provenance.json"
    if not path.is_file():  # a book built elsewhere than the repository (its tests, a user's own run)
        return f"not measured here: no reference run in `{results_dir}`"
    info = json.loads(path.read_text())
    profile = info["profile"]
    seconds = (info.get("stage_seconds") or {}).get(chapter)
    if seconds is None:
        return f"not measured yet in the reference run (`{profile}` profile)"
    hardware = info["hardware"]
    gpu = f"GPU {hardware['gpu']}" if hardware.get("gpu") else "no GPU"
    return f"{_duration(seconds)} in the reference run (`{profile}` profile, {hardware['cpus']} CPUs, {gpu})"


def times_table(chapters: list[str], info: dict) -> str:
    """A Markdown table of each chapter's wall time in the run whose provenance is `info`.

    `chapters` are notebook names in book order (``_toc.yml``); a chapter the
    run did not time shows "–".

    >>> info = {"profile": "cpu", "stage_seconds": {"01_data": 9.4, "04_train": 587.4}}
    >>> print(times_table(["01_data", "04_train", "10_new"], info))
    | chapter | `cpu` profile |
    |---|---:|
    | {ref}`chapter-01_data` | 9 s |
    | {ref}`chapter-04_train` | 10 min |
    | {ref}`chapter-10_new` | – |
    | all | 10 min |
    """
    seconds = info.get("stage_seconds") or {}
    lines = [f"| chapter | `{info['profile']}` profile |", "|---|---:|"]
    lines += [f"| {{ref}}`chapter-{name}` | {_duration(seconds[name]) if name in seconds else '–'} |" for name in chapters]
    lines.append(f"| all | {_duration(sum(seconds.get(name, 0.0) for name in chapters))} |")
    return "\n".join(lines)
