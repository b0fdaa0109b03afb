"""Tables of reproduced numbers beside the paper's reported ones.

A reproduced method is summarised over its runs by
:func:`ssimnet.metrics.summarise_runs`; this module lays such summaries out
as the paper does ("mean ± std (best run)", in percent), next to the values
of :mod:`ssimnet.paper`, and lists where the two disagree.

Examples
--------
>>> from ssimnet.metrics import summarise_runs
>>> s = summarise_runs([{"precision": .8, "recall": .7, "dice": .75, "aji": .4}])
>>> format_cell(s, "dice")
'75.0 ± 0.0 (75.0)'
>>> d = discrepancies({"GMM": s}, {"GMM": {"precision": (63.1, 15.0, 66.4), "recall": (82.2, 10.9, 81.9),
...                                        "dice": (69.5, 8.5, 71.7), "aji": (29.0, 15.1, 31.9)}})
>>> d[["metric", "reproduced", "reported", "difference"]].values.tolist()
[['precision', 80.0, 63.1, 16.9], ['recall', 70.0, 82.2, -12.2]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from .metrics import RunSummary
from .paper import METRICS

__all__ = ["format_cell", "comparison_table", "discrepancies"]

Reported = Mapping[str, Mapping[str, "tuple[float, float, float] | float"]]


def format_cell(summary: RunSummary, metric: str) -> str:
    """``"mean ± std (best)"`` of one metric in percent, one decimal."""
    return f"{100 * summary.mean[metric]:.1f} ± {100 * summary.std[metric]:.1f} ({100 * summary.best[metric]:.1f})"


def _reported_cell(value: tuple[float, float, float] | float) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:.1f} ± {value[1]:.1f} ({value[2]:.1f})"
    return f"{value:.1f}"


def comparison_table(
    reproduced: Mapping[str, RunSummary],
    reported: Reported,
    *,
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """One row per method and source: the paper's reported cells and this project's reproduced ones.

    Methods are listed in the paper's order, then those only reproduced here.
    The ``source`` column says "reported" or "reproduced (R runs)"; a method
    the paper reports but this run did not reproduce has only its reported row.
    """
    rows = []
    for name in [*reported, *(n for n in reproduced if n not in reported)]:
        if name in reported:
            rows.append({"method": name, "source": "reported", **{m: _reported_cell(reported[name][m]) for m in metrics}})
        if name in reproduced:
            s = reproduced[name]
            rows.append({"method": name, "source": f"reproduced ({s.runs} run{'s' if s.runs != 1 else ''})",
                         **{m: format_cell(s, m) for m in metrics}})
    return pd.DataFrame(rows, columns=["method", "source", *metrics])


def discrepancies(reproduced: Mapping[str, RunSummary], reported: Reported, *, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Reproduced means that differ from the reported ones by more than a standard deviation.

    The tolerance is the larger of the reproduced and the reported standard
    deviation (a single-value report has none).  Values in percent.
    """
    rows = []
    for name, s in reproduced.items():
        if name not in reported:
            continue
        for m in metrics:
            value = reported[name][m]
            mean, std = (value[0], value[1]) if isinstance(value, tuple) else (float(value), 0.0)
            ours = round(100 * s.mean[m], 1)
            tolerance = max(100 * s.std[m], std)
            if abs(ours - mean) > tolerance:
                rows.append({"method": name, "metric": m, "reproduced": ours, "reported": mean,
                             "difference": round(ours - mean, 1), "tolerance": round(tolerance, 1)})
    return pd.DataFrame(rows, columns=["method", "metric", "reproduced", "reported", "difference", "tolerance"])
