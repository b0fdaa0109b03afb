"""The attribution chapter's numbers: where the reproduced AJI departs from the paper's, and which claims hold.

Two kinds of results feed it:

- the attribution study (``studies/attribution.py``,
  :data:`ssimnet.book.results.ATTRIBUTION`): one label stage at a time
  replaced by an oracle or a label-free alternative, scored on test --
  :func:`attribution_table`, :func:`attribution_scores` and :func:`gap_steps`
  (the waterfall) lay it out;
- the reference run (:data:`ssimnet.book.results.RESULTS`):
  :func:`paper_claims` checks each claim of the paper's Tables 1 and 3 against
  it, a number within the tolerance of :func:`ssimnet.book.report.reproduction_report`
  or a direction with the same sign.

Every value is in percent.

Examples
--------
>>> frame = pd.DataFrame({"config": ["reproduction", "oracle: x"] * 2, "oracle": [False, True] * 2,
...                       "finetune": [5] * 4, "seed": [0] * 4, "image": ["a", "a", "b", "b"],
...                       "dice": [.7, .6, .8, .7], "aji": [.38, .44, .40, .46]})
>>> attribution_scores(frame, finetune=True, metrics=("dice", "aji"))[["dice", "aji"]].values.tolist()  # one seed
[['75.0', '39.0'], ['65.0', '45.0']]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .paper import METRICS, TABLE1, TABLE3
from .report import reproduction_report, run_means

__all__ = ["attribution_table", "attribution_scores", "gap_steps", "paper_claims", "split_table"]


def _per_seed(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each configuration's (rows, in order of appearance) image mean of `metric` on each seed (columns), percent."""
    means = (rows.groupby(["config", "seed"], sort=False)[metric].mean() * 100).unstack("seed")
    return means.reindex(rows["config"].unique())


def _seed_stats(per_seed: pd.DataFrame) -> pd.DataFrame:
    """The mean over seeds of :func:`_per_seed`, its SD and the number of seeds."""
    return pd.DataFrame({"mean": per_seed.mean(axis=1), "sd": per_seed.std(axis=1), "seeds": per_seed.count(axis=1)})


def attribution_table(per_image: pd.DataFrame, *, finetune: bool, metric: str = "aji",
                      reference: str = "reproduction") -> pd.DataFrame:
    """The attribution study in one table: each row's `metric` (mean over its seeds of the per-seed means) and
    its spread over seeds; its change against `reference` on the same seeds (the mean of the per-seed
    differences, and their SD), and the share of the gap between `reference` (on those seeds) and the paper's
    SSimNet (Table 1, with or without fine-tuning) that the change closes.  With the columns
    ``aji_intersection`` and ``aji_union``, AJI pooled over all images' pixels too.

    >>> frame = pd.DataFrame({"config": ["reproduction", "oracle: x"] * 2, "oracle": [False, True] * 2,
    ...                       "finetune": [5] * 4, "seed": [0] * 4, "image": ["a", "a", "b", "b"],
    ...                       "aji": [.38, .44, .40, .46]})
    >>> attribution_table(frame, finetune=True)[["aji", "change", "share of the gap"]].values.tolist()
    [[39.0, 0.0, 0.0], [45.0, 6.0, 0.56]]
    """
    rows = per_image[(per_image["finetune"] > 0) == finetune]
    per_seed = _per_seed(rows, metric)
    stats = _seed_stats(per_seed)
    table = pd.DataFrame({metric: stats["mean"].round(1), "sd over seeds": stats["sd"].round(1),
                          "seeds": stats["seeds"]})
    table["oracle"] = rows.groupby("config", sort=False)["oracle"].first()
    paper = TABLE1["SSimNet" if finetune else "SSimNet w/o ft"][metric][0]
    if metric == "aji" and "aji_union" in rows:  # AJI pooled over the test set's pixels, not averaged over images
        sums = rows.groupby(["config", "seed"], sort=False)[["aji_intersection", "aji_union"]].sum()
        pooled = (sums["aji_intersection"] / sums["aji_union"] * 100).groupby(level="config", sort=False).mean()
        table["pooled aji"] = pooled.round(1)
    base = per_seed.loc[reference]
    differences = per_seed.sub(base, axis="columns")  # paired, seed by seed (NaN where either lacks the seed)
    table["change"] = differences.mean(axis=1).round(1)
    table["change sd"] = differences.std(axis=1).round(1)
    gap = (per_seed * 0).add(paper - base, axis="columns").mean(axis=1)  # from the reference on the row's seeds
    table["share of the gap"] = (differences.mean(axis=1) / gap).round(2)  # 6.0 / (49.8 - 39.0) = 0.56
    return table


def attribution_scores(per_image: pd.DataFrame, *, finetune: bool,
                       metrics: Sequence[str] = ("dice", "aji", "aji_plus", "pq")) -> pd.DataFrame:
    """Each row's `metrics` as printed cells: ``"mean ± sd"`` over seeds, the mean alone for a single seed;
    with the number of seeds and whether the row is an oracle."""
    rows = per_image[(per_image["finetune"] > 0) == finetune]
    table = pd.DataFrame(index=pd.Index(rows["config"].unique(), name="config"))
    for metric in metrics:
        stats = _seed_stats(_per_seed(rows, metric))
        table[metric] = [f"{m:.1f}" if n == 1 else f"{m:.1f} ± {s:.1f}"
                         for m, s, n in zip(stats["mean"], stats["sd"], stats["seeds"])]
    table["seeds"] = stats["seeds"]
    table["oracle"] = rows.groupby("config", sort=False)["oracle"].first()
    return table


def gap_steps(table: pd.DataFrame, *, chain: Mapping[str, str], paper: float, metric: str = "aji",
              reference: str = "reproduction") -> pd.DataFrame:
    """The waterfall from `reference`'s `metric` to the paper's, through `chain`.

    `chain` maps rows of `table` (:func:`attribution_table`) to step labels,
    in order, each row holding the interventions of the one before it and one
    more, so that consecutive differences are that one intervention's effect.
    Returns one row per bar: ``step``, ``start``, ``end``, ``change`` and
    ``kind`` -- "level" for the reference and the paper (bars from 0),
    "oracle" or "label-free" for a step, "remaining" for what separates the
    chain's last row from the paper (negative when it overshoots).

    >>> t = pd.DataFrame({"aji": [39.0, 48.0], "oracle": [False, True]}, index=["reproduction", "oracle: x"])
    >>> gap_steps(t, chain={"oracle: x": "x"}, paper=50.0)[["step", "start", "end", "kind"]].values.tolist()
    [['reproduction', 0.0, 39.0, 'level'], ['x', 39.0, 48.0, 'oracle'], ['remaining', 48.0, 50.0, 'remaining'], ['paper', 0.0, 50.0, 'level']]
    """
    level = float(table.loc[reference, metric])
    steps = [(reference, 0.0, level, "level")]
    for name, label in chain.items():
        value = float(table.loc[name, metric])
        steps.append((label, level, value, "oracle" if bool(table.loc[name, "oracle"]) else "label-free"))
        level = value
    steps += [("remaining", level, float(paper), "remaining"), ("paper", 0.0, float(paper), "level")]
    frame = pd.DataFrame(steps, columns=["step", "start", "end", "kind"])
    frame["change"] = (frame["end"] - frame["start"]).round(1)
    return frame[["step", "start", "end", "change", "kind"]]


def split_table(per_image: pd.DataFrame, *, metrics: Sequence[str] = ("dice", "aji")) -> pd.DataFrame:
    """Each configuration's mean per split, in percent to 0.1: a column ``"<split> <metric>"`` per pair.

    Configurations keep the order they first appear in; a split a
    configuration was not scored on is NaN (the readings scored on test once).
    Where a split was scored both without and with fine-tuning (a
    ``finetune`` column of epochs), the fine-tuned means get columns of their
    own, ``"<split> <metric> (fine-tuned)"``, rather than being averaged in.

    >>> frame = pd.DataFrame({"config": ["a", "a", "b", "a"], "split": ["heldout", "heldout", "heldout", "test"],
    ...                       "aji": [0.2, 0.3, 0.1, 0.4], "dice": 0.5})
    >>> split_table(frame, metrics=("aji",))
       held-out AJI  test AJI
    a          25.0      40.0
    b          10.0       NaN
    >>> split_table(frame.assign(finetune=[0, 0, 0, 5]), metrics=("aji",)).columns.tolist()
    ['held-out AJI', 'test AJI (fine-tuned)']
    >>> both = pd.concat([frame, frame.iloc[[3]].assign(aji=0.6)]).assign(finetune=[0, 0, 0, 0, 5])
    >>> split_table(both, metrics=("aji",)).loc["a"].tolist()
    [25.0, 40.0, 60.0]
    """
    names = {"dice": "Dice", "aji": "AJI", "aji_plus": "AJI+", "pq": "PQ"}
    frame = per_image.assign(fine_tuned=per_image["finetune"] > 0 if "finetune" in per_image else False)
    means = (frame.groupby(["config", "split", "fine_tuned"], sort=False)[list(metrics)].mean() * 100).round(1)
    means = means.unstack(["split", "fine_tuned"])
    first = {split: i for i, split in enumerate(dict.fromkeys(frame["split"]))}
    scored = sorted(set(zip(frame["split"], frame["fine_tuned"])), key=lambda key: (first[key[0]], key[1]))

    def column(metric: str, split: str, fine_tuned: bool) -> str:
        return (f"{'held-out' if split == 'heldout' else split} {names.get(metric, metric)}"
                + (" (fine-tuned)" if fine_tuned else ""))

    table = pd.DataFrame({column(m, split, ft): means[(m, split, ft)] for split, ft in scored for m in metrics})
    return table.loc[list(dict.fromkeys(frame["config"]))].rename_axis(None)


def _direction(paper: float, here: float) -> str:
    return "same direction" if np.sign(paper) == np.sign(here) else "opposite direction"


def paper_claims(per_image: pd.DataFrame, *, metric: str = "aji") -> pd.DataFrame:
    """The paper's claims that this project measures, each with the paper's number, this run's and a verdict.

    `per_image` is the reference run (:data:`ssimnet.book.results.RESULTS`).
    A *number* (a Table 1 mean) reproduces when it differs from the paper's by
    at most the tolerance of :func:`ssimnet.book.report.reproduction_report`,
    and is otherwise "lower here" or "higher here".  A *direction* (what a
    component or fine-tuning does to `metric`, whether SSimNet beats the
    paper's label-free baselines) is the difference it makes, in the paper and
    here; it holds when both have the same sign.  Percent.
    """
    name = {"aji": "AJI", "dice": "Dice"}.get(metric, metric)
    if metric not in METRICS:
        raise ValueError(f"the paper reports {', '.join(METRICS)}, not {metric!r}")
    report = reproduction_report(per_image)
    table1 = report[(report.table == "Table 1") & (report.metric == metric)].set_index("method")
    rows = []
    for method in ("SSimNet", "SSimNet w/o ft", "U-Net (supervised)"):
        if method in table1.index:
            r = table1.loc[method]
            verdict = "reproduces" if not r["beyond std"] else ("lower here" if r["difference"] < 0 else "higher here")
            rows.append({"claim": f"{method}: {name} (Table 1)", "kind": "number", "paper": r["reported"],
                         "here": r["reproduced"], "tolerance": r["tolerance"], "verdict": verdict})
    means = run_means(per_image).groupby("method", sort=False)[metric].mean() * 100
    effects = {
        "fine-tuning": ("ssimnet_noft", (True, True, False)),
        "label softening": ("ssimnet_no_softening", (False, True, True)),
        "data purification": ("ssimnet_no_purification", (True, False, True)),
    }
    for component, (without, key) in effects.items():
        if {"ssimnet", without} <= set(means.index):
            paper = TABLE3[(True, True, True)][metric] - TABLE3[key][metric]
            here = means["ssimnet"] - means[without]
            rows.append({"claim": f"{component} raises {name} (Table 3)", "kind": "direction", "paper": round(paper, 1),
                         "here": round(here, 1), "tolerance": np.nan, "verdict": _direction(paper, here)})
    baselines = {"mkmeans": "mKMeans", "gmm": "GMM", "kanezaki": "Kanezaki et al."}
    present = [key for key in baselines if key in means.index]
    if present and "ssimnet" in means.index:
        best = max(present, key=lambda key: means[key])
        paper = TABLE1["SSimNet"][metric][0] - max(TABLE1[baselines[key]][metric][0] for key in present)
        here = means["ssimnet"] - means[best]
        rows.append({"claim": f"SSimNet beats the paper's label-free baselines in {name} (Table 1)",
                     "kind": "direction", "paper": round(paper, 1), "here": round(here, 1), "tolerance": np.nan,
                     "verdict": _direction(paper, here)})
    return pd.DataFrame(rows, columns=["claim", "kind", "paper", "here", "tolerance", "verdict"])
