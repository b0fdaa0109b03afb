"""The generated tables of the README and the book's landing page, from the reference results and the model card.

``ssimnet publish`` rewrites the README's table between :data:`START` and
:data:`END`, and the landing page's between :data:`TOOL_START` and
:data:`TOOL_END`, whenever it publishes reference results, so neither page
shows a number typed by hand; ``tests/test_readme.py`` checks that they show
exactly these.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .paper import TABLE1
from .report import method_summaries

__all__ = ["START", "END", "TOOL_START", "TOOL_END", "results_table", "tool_table", "with_generated_table"]

#: The lines that enclose the generated table in the README.
START = "<!-- results table: written by `ssimnet publish` from results/cpu and the shipped model card; do not edit -->"
END = "<!-- end of the results table -->"
#: The lines that enclose the landing page's generated table of the tool.
TOOL_START = "<!-- tool table: written by `ssimnet publish` from the shipped model card; do not edit -->"
TOOL_END = "<!-- end of the tool table -->"

#: The table's metrics and their headers.
_METRICS = {"dice": "Dice", "aji": "AJI", "pq": "PQ"}


def _cell(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1f}"


def results_table(per_image: pd.DataFrame, card: Mapping[str, object], info: Mapping[str, object]) -> str:
    """A Markdown table: MoNuSeg test scores of this project beside the paper's, in percent, and its caption.

    Rows are the reproduced methods of the paper's Table 1 (mean over a
    method's runs), then ``ssimnet segment`` with the shipped network as
    its model `card` records it.  The paper reports no PQ, and nothing for
    the methods it does not run: those cells are "–".  The caption names
    the run's network from its provenance `info`.

    >>> frame = pd.DataFrame({"method": "ssimnet", "run": 0, "seed": 0, "image": ["a", "b"], "precision": 0.5,
    ...                       "recall": 0.5, "dice": [0.7, 0.8], "aji": 0.4, "aji_plus": 0.4, "pq": 0.3})
    >>> card = {"test": {"monuseg_test": {"dice": 0.79, "aji": 0.57, "pq": 0.53}}}
    >>> info = {"profile": "cpu", "commit": "0123456789", "parameters": {"train": {"width": 8, "epochs": 6}},
    ...         "hardware": {"cpus": 2}}
    >>> print(results_table(frame, card, info))
    MoNuSeg test split, 2 images. SSimNet: the `cpu` profile, a U-Net of width 8 trained 6 epochs on 2 CPUs (commit 0123456).
    <BLANKLINE>
    | MoNuSeg test, % | Dice | AJI | PQ | paper: Dice | paper: AJI |
    |---|---:|---:|---:|---:|---:|
    | SSimNet (`cpu` profile) | 75.0 | 40.0 | 30.0 | 79.2 | 49.8 |
    | `ssimnet segment` (shipped network) | 79.0 | 57.0 | 53.0 | – | – |
    """
    from ..baselines import METHOD_NAMES, TABLE1_METHODS

    summaries = method_summaries(per_image, {k: METHOD_NAMES[k] for k in TABLE1_METHODS})
    train, profile = info["parameters"]["train"], info["profile"]  # type: ignore[index]
    caption = (f"MoNuSeg test split, {per_image['image'].nunique()} images. SSimNet: the `{profile}` profile, a U-Net of "
               f"width {train['width']} trained {train['epochs']} epochs on {info['hardware']['cpus']} CPUs "  # type: ignore[index]
               f"(commit {str(info['commit'])[:7]}).")
    lines = [caption, "", "| MoNuSeg test, % | " + " | ".join(_METRICS.values()) + " | paper: Dice | paper: AJI |",
             "|---|" + "---:|" * (len(_METRICS) + 2)]
    for name, summary in summaries.items():
        ours = [_cell(100 * summary.mean[m]) for m in _METRICS]
        paper = [_cell(TABLE1[name][m][0]) if name in TABLE1 else "–" for m in ("dice", "aji")]
        label = f"{name} (`{profile}` profile)" if name.startswith("SSimNet") else name
        lines.append(f"| {label} | " + " | ".join([*ours, *paper]) + " |")
    shipped = card["test"]["monuseg_test"]  # type: ignore[index]
    lines.append("| `ssimnet segment` (shipped network) | " + " | ".join(
        [*(_cell(100 * shipped[m]) for m in _METRICS), "–", "–"]) + " |")
    return "\n".join(lines)


def tool_table(card: Mapping[str, object]) -> str:
    """A Markdown table: ``ssimnet segment`` with the shipped network against the classical watershed, in percent.

    One row per dataset (the MoNuSeg test split, then TNBC, which chose
    nothing) and method, as the model `card` records them.

    >>> scores = {"monuseg_test": {"dice": 0.79, "aji": 0.57, "pq": 0.53}, "tnbc": {"dice": 0.7, "aji": 0.48, "pq": 0.45}}
    >>> print(tool_table({"test": scores, "classical_watershed": scores}).splitlines()[2])
    | MoNuSeg test | `ssimnet segment`, shipped network | 79.0 | 57.0 | 53.0 |
    """
    lines = ["| data | method | " + " | ".join(_METRICS.values()) + " |", "|---|---|" + "---:|" * len(_METRICS)]
    for data, name in (("monuseg_test", "MoNuSeg test"), ("tnbc", "TNBC")):
        for key, label in (("test", "`ssimnet segment`, shipped network"), ("classical_watershed",
                                                                             "classical hematoxylin watershed")):
            scores = card[key][data]  # type: ignore[index]
            lines.append(f"| {name} | {label} | " + " | ".join(_cell(100 * scores[m]) for m in _METRICS) + " |")
    return "\n".join(lines)


def with_generated_table(readme: str, table: str, *, start: str = START, end: str = END) -> str:
    """`readme` with the text between `start` and `end` (the README's table by default) replaced by `table`.

    >>> with_generated_table(f"a\\n{START}\\nold\\n{END}\\nb", "new")[-len(END) - 6:]
    'new\\n<!-- end of the results table -->\\nb'

    Raises
    ------
    ValueError
        If either marker is missing or they are out of order.
    """
    first, last = readme.find(start), readme.find(end)
    if first < 0 or last < first:
        raise ValueError("no generated table here (its start and end lines are missing)")
    return readme[: first + len(start)] + "\n" + table + "\n" + readme[last:]
