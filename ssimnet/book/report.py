"""Tables of reproduced numbers beside the paper's reported ones.

A reproduced method is summarised over its runs by
:func:`ssimnet.metrics.summarise_runs`; this module lays such summaries out
as the paper does ("mean ± std (best run)", in percent), next to the values
of :mod:`ssimnet.book.paper`, and lists where the two disagree.

Examples
--------
>>> from ssimnet.metrics import summarise_runs
>>> s = summarise_runs([{"precision": .8, "recall": .7, "dice": .75, "aji": .4}])
>>> format_cell(s, "dice")  # one run: no spread to show, and it is its own best
'75.0'
>>> d = discrepancies({"GMM": s}, {"GMM": {"precision": (63.1, 15.0, 66.4), "recall": (82.2, 10.9, 81.9),
...                                        "dice": (69.5, 8.5, 71.7), "aji": (29.0, 15.1, 31.9)}})
>>> d[["metric", "reproduced", "reported", "difference"]].values.tolist()
[['precision', 80.0, 63.1, 16.9], ['recall', 70.0, 82.2, -12.2]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..metrics import RunSummary, summarise_runs
from .paper import METRICS, TABLE1, TABLE3

__all__ = [
    "candidate_table", "normalization_table",
    "SCORE_COLUMNS", "format_cell", "format_spread", "comparison_table", "discrepancies",
    "run_means", "method_summaries", "table1", "table3", "reproduction_report", "selection_table", "levers_table",
    "format_selection", "study_table",
    "study_network", "stress_table", "stress_verdict", "hematoxylin_only_counts", "enlarged_counts",
]

#: Metrics kept per image and per run (the paper's four, then AJI+ and PQ).
SCORE_COLUMNS: tuple[str, ...] = (*METRICS, "aji_plus", "pq")

Reported = Mapping[str, Mapping[str, "tuple[float, float, float] | float"]]


def format_spread(summary: RunSummary, metric: str) -> str:
    """``"mean ± std"`` of one metric in percent, one decimal; the value alone for a single run (it has no spread)."""
    if summary.runs == 1:
        return f"{100 * summary.mean[metric]:.1f}"
    return f"{100 * summary.mean[metric]:.1f} ± {100 * summary.std[metric]:.1f}"


def format_cell(summary: RunSummary, metric: str) -> str:
    """``"mean ± std (best)"`` of one metric in percent, one decimal; the value alone for a single run."""
    if summary.runs == 1:
        return format_spread(summary, metric)
    return f"{format_spread(summary, metric)} ({100 * summary.best[metric]:.1f})"


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


def _differences(reproduced: Mapping[str, RunSummary], reported: Reported, metrics: Sequence[str]) -> pd.DataFrame:
    """Reproduced beside reported mean of each method and metric both have, in percent, with the tolerance."""
    rows = []
    for name, s in reproduced.items():
        if name not in reported:
            continue
        for m in metrics:
            value = reported[name][m]
            mean, std = (value[0], value[1]) if isinstance(value, tuple) else (float(value), float("nan"))
            ours, our_std = round(100 * s.mean[m], 1), round(100 * s.std[m], 1)
            tolerance = max(our_std, 0.0 if std != std else std)
            rows.append({"method": name, "metric": m, "runs": s.runs, "reproduced": ours, "reproduced std": our_std,
                         "reported": mean, "reported std": std, "difference": round(ours - mean, 1),
                         "tolerance": round(tolerance, 1), "beyond std": abs(ours - mean) > tolerance})
    columns = ["method", "metric", "runs", "reproduced", "reproduced std", "reported", "reported std",
               "difference", "tolerance", "beyond std"]
    return pd.DataFrame(rows, columns=columns)


def discrepancies(reproduced: Mapping[str, RunSummary], reported: Reported, *, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Reproduced means that differ from the reported ones by more than a standard deviation.

    The tolerance is the larger of the reproduced and the reported standard
    deviation (a single-value report has none).  Values in percent.
    """
    rows = _differences(reproduced, reported, metrics)
    rows = rows[rows["beyond std"]].reset_index(drop=True)
    return rows[["method", "metric", "reproduced", "reported", "difference", "tolerance"]]


# --------------------------------------------------------------------------- results folders


def run_means(per_image: pd.DataFrame) -> pd.DataFrame:
    """Dataset figures of each method and run: the mean over images of each metric.

    `per_image` has one row per ``method``, ``run`` and image (as
    :func:`ssimnet.runs.experiments.collect_results` returns); the result one row per method
    and run, in the order they first appear.

    >>> frame = pd.DataFrame({"method": ["a", "a", "a"], "run": [0, 0, 1], "seed": [0, 0, 1],
    ...                       **{m: [0.5, 0.7, 0.2] for m in SCORE_COLUMNS}})
    >>> run_means(frame)[["method", "run", "dice"]].values.tolist()
    [['a', 0, 0.6], ['a', 1, 0.2]]
    """
    grouped = per_image.groupby(["method", "run", "seed"], sort=False)[list(SCORE_COLUMNS)].mean()
    return grouped.reset_index()


def method_summaries(per_image: pd.DataFrame, names: Mapping[str, str]) -> dict[str, RunSummary]:
    """:class:`~ssimnet.metrics.RunSummary` of each method key in `names` present in `per_image`, under its display name."""
    runs = run_means(per_image)
    return {name: summarise_runs(runs[runs.method == key].to_dict("records"), metrics=SCORE_COLUMNS)
            for key, name in names.items() if (runs.method == key).any()}


def table1(per_image: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 with this project's reproduced rows beside the reported ones."""
    from ..baselines import METHOD_NAMES, TABLE1_METHODS

    return comparison_table(method_summaries(per_image, {k: METHOD_NAMES[k] for k in TABLE1_METHODS}), TABLE1)


def _ablation_reported() -> dict[str, dict[str, float]]:
    from ..config import ABLATION

    return {v.name: TABLE3[v.components] for v in ABLATION}


def table3(per_image: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3 (ablation) with the reproduced variants beside the reported ones."""
    from ..config import ABLATION

    summaries = method_summaries(per_image, {v.key: v.name for v in ABLATION})
    return comparison_table(summaries, _ablation_reported())


def reproduction_report(per_image: pd.DataFrame) -> pd.DataFrame:
    """Every reproduced mean beside the paper's, with the difference, for Tables 1 and 3.

    One row per table, method and metric that the paper reports and this
    project reproduced: reproduced mean and standard deviation over runs,
    reported mean and standard deviation (Table 3 reports none: NaN), their
    difference, the tolerance (the larger standard deviation) and whether
    the difference exceeds it.  Percent.
    """
    from ..baselines import METHOD_NAMES, TABLE1_METHODS
    from ..config import ABLATION

    parts = {
        "Table 1": _differences(method_summaries(per_image, {k: METHOD_NAMES[k] for k in TABLE1_METHODS}), TABLE1, METRICS),
        "Table 3": _differences(method_summaries(per_image, {v.key: v.name for v in ABLATION}), _ablation_reported(), METRICS),
    }
    return pd.concat([frame.assign(table=table) for table, frame in parts.items()], ignore_index=True)[
        ["table", *parts["Table 1"].columns]]


def selection_table(per_image: pd.DataFrame, *, select: str = "aji", metrics: Sequence[str] = ("dice", "aji", "aji_plus", "pq"),
                    splits: Sequence[str] = ("train", "test"), exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Model selection on the training split beside the test figures of every configuration.

    `per_image` has one row per ``config``, ``split`` (by default "train" or
    "test"), ``run`` and image, with the metric columns.  The result has one
    row per configuration (in order of appearance): for each of `splits` and
    metric, the mean over runs of the dataset mean and its standard
    deviation, in percent (NaN where a configuration was not scored on a
    split); ``chosen`` marks the configuration, other than those in
    `exclude`, with the highest mean `select` on the first of `splits` --
    the other splits take no part in the choice.

    >>> frame = pd.DataFrame({"config": ["a", "a", "b", "b"], "split": ["train", "test"] * 2, "run": 0,
    ...                       "dice": [.7, .6, .8, .5], "aji": [.4, .5, .3, .6]})
    >>> t = selection_table(frame, metrics=("dice", "aji"))
    >>> float(t.loc["a", "train aji"]), float(t.loc["a", "test aji"]), t.index[t.chosen].tolist()
    (40.0, 50.0, ['a'])
    """
    runs = per_image.groupby(["config", "split", "run"], sort=False)[list(metrics)].mean() * 100
    stats = runs.groupby(["config", "split"], sort=False).agg(["mean", "std"])  # std NaN: one run on that split
    table = pd.DataFrame(index=pd.Index(per_image["config"].unique(), name="config"))
    for split in splits:
        for metric in metrics:
            column = stats.xs(split, level="split")[metric]
            table[f"{split} {metric}"] = column["mean"].round(1)
            table[f"{split} {metric} std"] = column["std"].round(1)
    table["runs"] = per_image.groupby("config", sort=False)["run"].nunique()
    table["chosen"] = table.index == table[f"{splits[0]} {select}"].drop(list(exclude)).idxmax()
    return table


def levers_table(per_image: pd.DataFrame) -> pd.DataFrame:
    """The levers study (``studies/levers.py``) as chapter 11 and the book's pages show it.

    :func:`selection_table` of Dice, AJI and PQ on the held-out training
    images, the test split and TNBC, chosen on held-out AJI; the classical
    watershed stands beside the configurations but is never chosen.

    >>> frame = pd.DataFrame({"config": ["a", "b", "classical watershed"] * 3, "run": 0, "dice": .7, "pq": .3,
    ...                       "split": ["heldout"] * 3 + ["test"] * 3 + ["tnbc"] * 3, "aji": [.4, .3, .5] * 3})
    >>> table = levers_table(frame)
    >>> table.index[table.chosen].tolist(), float(table.loc["a", "tnbc aji"])
    (['a'], 40.0)
    """
    return selection_table(per_image, metrics=("dice", "aji", "pq"), splits=("heldout", "test", "tnbc"),
                           exclude=("classical watershed",))


def study_table(per_image: pd.DataFrame, *, metrics: Sequence[str] = ("dice", "aji", "pq")) -> pd.DataFrame:
    """Mean scores of a study's configurations on each dataset, percent, rounded to 0.1.

    One row per ``config``, one column per ``split`` (in order of
    appearance) and metric.

    >>> frame = pd.DataFrame({"config": ["a", "a", "b", "b"], "split": ["x", "y"] * 2, "aji": [.4, .3, .5, .45]})
    >>> study_table(frame, metrics=("aji",)).to_dict("list")
    {'x aji': [40.0, 50.0], 'y aji': [30.0, 45.0]}
    """
    means = per_image.groupby(["config", "split"], sort=False)[list(metrics)].mean() * 100
    table = pd.DataFrame(index=pd.Index(per_image["config"].unique(), name="config"))
    for split in per_image["split"].unique():
        for metric in metrics:
            table[f"{split} {metric}"] = means.xs(split, level="split")[metric].round(1)
    return table


def normalization_table(per_image: pd.DataFrame, *, select: str = "aji", reference: str = "classical watershed",
                        metrics: Sequence[str] = ("dice", "aji", "pq")) -> pd.DataFrame:
    """Each stain normalisation (:func:`ssimnet.runs.experiments.normalization_study`) on each dataset, percent.

    One row per configuration, one column per dataset (``split``, in order of
    appearance) and metric: the mean over images.  ``chosen`` marks the
    configuration of highest training `select`, the `reference` method
    (which is not a choice) aside.

    >>> frame = pd.DataFrame({"config": ["a", "a", "b", "b", "w", "w"], "split": ["train", "new"] * 3,
    ...                       "dice": [.7, .5, .7, .6, .6, .6], "aji": [.4, .3, .5, .4, .6, .5]})
    >>> t = normalization_table(frame, metrics=("aji",), reference="w")
    >>> t.to_dict("list")
    {'train aji': [40.0, 50.0, 60.0], 'new aji': [30.0, 40.0, 50.0], 'chosen': [False, True, False]}
    """
    table = study_table(per_image, metrics=metrics)
    candidates = table.drop(index=[reference], errors="ignore")
    table["chosen"] = table.index == candidates[f"train {select}"].idxmax()
    return table


def candidate_table(per_image: pd.DataFrame, *, select: str = "aji") -> pd.DataFrame:
    """Pseudo-label quality per candidate generator (:func:`ssimnet.runs.experiments.candidate_study`), percent.

    One row per generator (in order of appearance): the mean over images of
    each score, the purified patches it keeps, and ``chosen`` for the
    highest mean `select` -- on the split the study ran on, the training
    split.

    >>> frame = pd.DataFrame({"candidates": ["fcm", "fcm", "otsu", "otsu"], "image": ["x", "y"] * 2,
    ...                       "dice": [.7, .8, .6, .7], "aji": [.2, .3, .4, .4], "kept_patches": [3, 4, 2, 5]})
    >>> candidate_table(frame).to_dict("list")
    {'dice': [75.0, 65.0], 'aji': [25.0, 40.0], 'kept patches': [7, 7], 'chosen': [False, True]}
    """
    metrics = [c for c in ("precision", "recall", "dice", "aji", "aji_plus", "pq") if c in per_image.columns]
    groups = per_image.groupby("candidates", sort=False)
    table = (groups[metrics].mean() * 100).round(1)
    table["kept patches"] = groups["kept_patches"].sum()
    table["chosen"] = table.index == table[select].idxmax()
    return table


def format_selection(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`selection_table` for reading: ``"mean ± std"`` cells under (split, metric) columns.

    A configuration measured in one run (on that split) has no spread, and its cells show the mean
    alone; one not scored on a split shows a dash.

    >>> t = pd.DataFrame({"train aji": [40.0, 30.0], "train aji std": [1.5, 0.0], "test aji": [50.0, 45.0],
    ...                   "test aji std": [0.0, 0.0], "runs": [3, 1], "chosen": [True, False]},
    ...                  index=pd.Index(["a", "b"], name="config"))
    >>> format_selection(t).astype(str).values.tolist()
    [['40.0 ± 1.5', '50.0 ± 0.0', '3', '✓'], ['30.0', '45.0', '1', '']]
    """
    metrics = [c for c in table.columns if f"{c} std" in table.columns]
    out = pd.DataFrame(index=table.index)
    for column in metrics:
        split, metric = column.split(" ", 1)
        out[(split, metric)] = ["–" if np.isnan(m) else f"{m:.1f}" if n == 1 or np.isnan(s) else f"{m:.1f} ± {s:.1f}"
                                for m, s, n in zip(table[column], table[f"{column} std"], table["runs"])]
    out[("", "runs")] = table["runs"]
    out[("", "chosen")] = np.where(table["chosen"], "✓", "")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def study_network(info: Mapping[str, object]) -> str:
    """The network a committed study used, in words, from its provenance (:func:`ssimnet.book.results.provenance`).

    >>> study_network({"profile": "cpu", "commit": "5c95db94aa", "created": "2026-11-24T22:40:18+00:00",
    ...                "parameters": {"train": {"width": 16, "epochs": 10}}})
    'the `cpu` profile of commit `5c95db9` (2026-11-24): U-Net width 16, 10 epochs'
    """
    train = info["parameters"]["train"]  # type: ignore[index]
    return (f"the `{info['profile']}` profile of commit `{str(info['commit'])[:7]}` ({str(info['created'])[:10]}): "
            f"U-Net width {train['width']}, {train['epochs']} epochs")


def stress_table(per_image: pd.DataFrame, *, dataset: str, metric: str = "aji") -> pd.DataFrame:
    """The stain stress test (:mod:`ssimnet.runs.stress`) on one dataset: the mean `metric` of each way of
    segmenting (columns, in order of appearance) under each transform (rows), percent, rounded to 0.1.

    >>> frame = pd.DataFrame({"dataset": ["d"] * 4, "transform": ["none", "none", "blue", "blue"],
    ...                       "config": ["a", "b"] * 2, "aji": [.5, .4, .45, .1]})
    >>> stress_table(frame, dataset="d").to_dict("index")
    {'none': {'a': 50.0, 'b': 40.0}, 'blue': {'a': 45.0, 'b': 10.0}}
    """
    rows = per_image[per_image["dataset"] == dataset]
    means = rows.groupby(["transform", "config"], sort=False)[metric].mean().mul(100).round(1).unstack("config")
    return means.reindex(index=rows["transform"].unique(), columns=rows["config"].unique()).rename_axis(
        index=None, columns=None)


def stress_verdict(per_image: pd.DataFrame, *, dataset: str, config: str = "default",
                   reference: str = "classical watershed") -> pd.DataFrame:
    """Whether `config` holds up under each stress transform on one dataset: its mean AJI as a share of its
    untransformed AJI (``kept``, percent), whether that AJI is above `reference`'s on the same transformed
    images, and its predicted foreground over the true one (``foreground``).

    >>> frame = pd.DataFrame({"dataset": ["d"] * 4, "transform": ["none", "none", "blue", "blue"],
    ...                       "config": ["a", "w"] * 2, "aji": [.5, .4, .3, .35],
    ...                       "foreground": [.2, .2, .5, .2], "true_foreground": [.2] * 4})
    >>> stress_verdict(frame, dataset="d", config="a", reference="w").to_dict("index")["blue"]
    {'kept': 60.0, 'above reference': False, 'foreground': 2.5}
    """
    rows = per_image[per_image["dataset"] == dataset]
    means = rows.groupby(["transform", "config"], sort=False)[["aji", "foreground", "true_foreground"]].mean()
    mine, theirs = means.xs(config, level="config"), means.xs(reference, level="config")
    verdict = pd.DataFrame({"kept": (mine["aji"] / mine.loc["none", "aji"] * 100).round(1),
                            "above reference": mine["aji"] > theirs["aji"],
                            "foreground": (mine["foreground"] / mine["true_foreground"]).round(2)})
    return verdict.reindex(rows["transform"].unique())


def hematoxylin_only_counts(per_image: pd.DataFrame, *, dataset: str, config: str = "default") -> pd.DataFrame:
    """How often `config` normalised an image of one dataset as hematoxylin only (the stain guard found
    one stain), per stress transform: those images (``hematoxylin only``) and all (``images``).

    >>> frame = pd.DataFrame({"dataset": ["d"] * 3, "transform": ["none", "blue", "blue"], "config": ["a"] * 3,
    ...                       "normalization": ["normalised", "normalised as hematoxylin only: one stain", ""]})
    >>> hematoxylin_only_counts(frame, dataset="d", config="a").to_dict("index")
    {'none': {'hematoxylin only': 0, 'images': 1}, 'blue': {'hematoxylin only': 1, 'images': 2}}
    """
    rows = per_image[(per_image["dataset"] == dataset) & (per_image["config"] == config)]
    one = rows["normalization"].fillna("").str.contains("hematoxylin only")
    return _counts(rows, one, "hematoxylin only")


def enlarged_counts(per_image: pd.DataFrame, *, dataset: str, config: str = "default") -> pd.DataFrame:
    """How often `config` segmented an image of one dataset enlarged (the pixel-size check found its nuclei
    half-size, :mod:`ssimnet.tool.pixel_size`), per stress transform: those images (``enlarged``) and all
    (``images``).  Rows made before the check have no ``mpp``: none enlarged.

    >>> frame = pd.DataFrame({"dataset": ["d"] * 3, "transform": ["none", "half", "half"], "config": ["a"] * 3,
    ...                       "mpp": [None, 0.5, None]})
    >>> enlarged_counts(frame, dataset="d", config="a").to_dict("index")
    {'none': {'enlarged': 0, 'images': 1}, 'half': {'enlarged': 1, 'images': 2}}
    """
    rows = per_image[(per_image["dataset"] == dataset) & (per_image["config"] == config)]
    mpp = rows["mpp"] if "mpp" in rows else pd.Series(np.nan, index=rows.index)
    return _counts(rows, mpp.notna(), "enlarged")


def fallback_counts(per_image: pd.DataFrame, *, dataset: str, config: str = "default") -> pd.DataFrame:
    """How often `config` gave an image of one dataset the classical watershed's nuclei (the network unsure of
    its own, ``fallback_below``), per stress transform: those images (``fallback``) and all (``images``).  Rows
    made before the fallback have no ``fallback``: none.

    >>> frame = pd.DataFrame({"dataset": ["d"] * 3, "transform": ["none", "faded", "faded"], "config": ["a"] * 3,
    ...                       "fallback": [False, True, None]})
    >>> fallback_counts(frame, dataset="d", config="a").to_dict("index")
    {'none': {'fallback': 0, 'images': 1}, 'faded': {'fallback': 1, 'images': 2}}
    """
    rows = per_image[(per_image["dataset"] == dataset) & (per_image["config"] == config)]
    flagged = rows["fallback"].eq(True) if "fallback" in rows else pd.Series(False, index=rows.index)
    return _counts(rows, flagged, "fallback")


def _counts(rows: pd.DataFrame, flagged: pd.Series, name: str) -> pd.DataFrame:
    counts = pd.DataFrame({name: flagged.astype(int).groupby(rows["transform"], sort=False).sum(),
                           "images": rows.groupby("transform", sort=False).size()})
    return counts.rename_axis(index=None)


def rerun_difference(per_image: pd.DataFrame, *, config: str, reference: str = "default",
                     metrics: Sequence[str] = ("dice", "aji", "pq", "foreground")) -> dict[str, float]:
    """How far a rerun of the same way of segmenting (`config`, kept under another name) lies from
    `reference`, image by image: the rows compared, those where any of `metrics` differs, and the largest
    difference (in the metrics' own units).

    >>> frame = pd.DataFrame({"dataset": ["d"] * 4, "image": ["x", "y"] * 2, "transform": ["none"] * 4,
    ...                       "config": ["a", "a", "b", "b"], "aji": [.5, .4, .5, .41]})
    >>> rerun_difference(frame, config="b", reference="a", metrics=["aji"])
    {'rows': 2, 'differ': 1, 'largest': 0.01}
    """
    keys = ["dataset", "image", "transform"]
    mine = per_image[per_image["config"] == config].set_index(keys)[list(metrics)]
    theirs = per_image[per_image["config"] == reference].set_index(keys)[list(metrics)]
    if not mine.index.sort_values().equals(theirs.index.sort_values()):
        raise ValueError(f"{config!r} and {reference!r} were not scored on the same images")
    gap = (mine - theirs.reindex(mine.index)).abs()
    return {"rows": len(gap), "differ": int((gap > 0).any(axis=1).sum()), "largest": round(float(gap.max().max()), 12)}
