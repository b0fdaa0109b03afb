"""The numbers of the book's hand-written pages, computed from the model card, the stored settings and the studies.

The page "Use it on your own images" is Markdown, not an executed chapter,
yet it quotes scores, times and defaults. Each is a MyST substitution
(``{{ tnbc_precision }}``) whose value :func:`page_facts` computes; the
book's Sphinx extension (:mod:`ssimnet.book.sphinx`) reads the committed
card, settings and results and hands the values to MyST when the book is
built, so no number on the page is typed by hand.

Examples
--------
>>> card = {"test": {"tnbc": {"precision": 0.6486}}}
>>> percent(card["test"]["tnbc"]["precision"])
'64.9'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ..config import Profile

__all__ = ["percent", "scores", "card_facts", "settings_facts", "profile_facts", "study_facts"]

_SCORES = ("dice", "aji", "pq")


def percent(value: float) -> str:
    """A fraction as a percentage with one decimal, as the book's tables print it.

    >>> percent(0.57314)
    '57.3'
    """
    return f"{100 * value:.1f}"


def scores(entry: Mapping[str, float]) -> str:
    """``"Dice / AJI / PQ"`` of a score entry, in percent.

    >>> scores({"dice": 0.7895, "aji": 0.5731, "pq": 0.528})
    '79.0 / 57.3 / 52.8'
    """
    return " / ".join(percent(entry[k]) for k in _SCORES)


def card_facts(card: Mapping[str, object]) -> dict[str, str]:
    """What the shipped network's model card says, as the page quotes it.

    Scores of the network as ``ssimnet segment`` runs it and fine-tuned, its
    files' sizes, its training time, its speed, and the largest change any
    score made when its weights were stored in float16 (percentage points).

    >>> entry = {"precision": 0.75, "recall": 0.8, "dice": 0.79, "aji": 0.57, "pq": 0.53}
    >>> card = {"test": {"monuseg_test": entry, "tnbc": entry}, "finetuned": {"epochs": 5, "monuseg_test": {
    ...     **entry, "aji": 0.55}, "tnbc": entry, "seconds_per_monuseg_test_image": 20.9},
    ...     "uncompacted_monuseg_test": {**entry, "dice": 0.7897}, "bytes": 3019119, "onnx_bytes": 1956091,
    ...     "training_seconds": 1265.4, "seconds_per_monuseg_test_image": 2.42, "train": {"width": 8},
    ...     "selftrain": {"rounds": 1},
    ...     "classical_watershed": {"monuseg_test": {**entry, "aji": 0.5}, "tnbc": {**entry, "dice": 0.8}}}
    >>> facts = card_facts(card)
    >>> facts["float16_change"], facts["finetune_effect"], facts["training_minutes"], facts["checkpoint_mb"]
    ('0.03', 'lowered some scores and left the others', '21', '3')
    >>> facts["split_vs_watershed"], facts["dice_vs_watershed"]
    ('on both sides of', 'on both sides of')
    """
    test, tuned = card["test"], card["finetuned"]  # type: ignore[index]
    lower = [tuned[d][m] < test[d][m] for d in ("monuseg_test", "tnbc") for m in _SCORES]  # type: ignore[index]
    higher = [tuned[d][m] > test[d][m] for d in ("monuseg_test", "tnbc") for m in _SCORES]  # type: ignore[index]
    effect = ("lowered every score" if all(lower) else "raised every score" if all(higher)
              else "lowered some scores and left the others" if not any(higher)
              else "raised some scores and left the others" if not any(lower)
              else "raised some scores and lowered others")
    water = card["classical_watershed"]  # type: ignore[index]

    def against_watershed(metrics: tuple[str, ...]) -> str:
        sides = {side for d in ("monuseg_test", "tnbc") for m in metrics
                 for side in [(test[d][m] > water[d][m]) - (test[d][m] < water[d][m])]}  # type: ignore[index]
        return {frozenset({1}): "above", frozenset({-1}): "below"}.get(frozenset(sides), "on both sides of")

    plain, kept = test["monuseg_test"], card["uncompacted_monuseg_test"]  # type: ignore[index]
    change = max(abs(plain[m] - kept[m]) for m in ("precision", "recall", *_SCORES)) * 100  # type: ignore[index]
    return {
        "monuseg_scores": scores(test["monuseg_test"]),  # type: ignore[index]
        "tnbc_scores": scores(test["tnbc"]),  # type: ignore[index]
        "tnbc_precision": percent(test["tnbc"]["precision"]),  # type: ignore[index]
        "tnbc_recall": percent(test["tnbc"]["recall"]),  # type: ignore[index]
        "finetune_epochs": str(tuned["epochs"]),  # type: ignore[index]
        "finetuned_monuseg_scores": scores(tuned["monuseg_test"]),  # type: ignore[index]
        "finetuned_tnbc_scores": scores(tuned["tnbc"]),  # type: ignore[index]
        "finetune_effect": effect,
        "finetuned_seconds": f"{tuned['seconds_per_monuseg_test_image']:.0f}",  # type: ignore[index]
        "seconds_per_image": f"{card['seconds_per_monuseg_test_image']:.1f}",
        "training_minutes": f"{card['training_seconds'] / 60:.0f}",  # type: ignore[operator]
        "checkpoint_mb": f"{card['bytes'] / 2**20:.0f}",  # type: ignore[operator]
        "onnx_mb": f"{card['onnx_bytes'] / 2**20:.0f}",  # type: ignore[operator]
        "float16_change": f"{change:.2f}",
        "network_width": str(card["train"]["width"]),  # type: ignore[index]
        "network_rounds": str(card["selftrain"]["rounds"]),  # type: ignore[index]
        "split_vs_watershed": against_watershed(("aji", "pq")),
        "dice_vs_watershed": against_watershed(("dice",)),
    }


def settings_facts(stored: Mapping[str, object], *, mpp_range: tuple[float, float], max_pixels: int,
                      patch_size: int) -> dict[str, str]:
    """The settings the page quotes: the shipped network's stored ones and the tool's limits.

    >>> stored = {"min_object_probability": 0.5, "min_size": 30, "network_mpp": 0.25, "region_side": 2048,
    ...           "region_halo": 96, "tile_size": 1024, "normalize": "auto", "finetune_epochs": 0}
    >>> facts = settings_facts(stored, mpp_range=(0.05, 5.0), max_pixels=400_000_000, patch_size=256)
    >>> facts["region_core"], facts["max_megapixels"], facts["mpp_max"], facts["min_object_probability"]
    ('832', '400', '5', '0.5')
    >>> facts["fallback_below"], settings_facts({**stored, "fallback_below": 0.625}, mpp_range=(0.05, 5.0),
    ...                                         max_pixels=1, patch_size=256)["fallback_below"]
    ('never', '0.625')
    """
    return {
        "normalize": str(stored["normalize"]),
        "finetune_default": "off" if not stored["finetune_epochs"] else f"{stored['finetune_epochs']} epochs",
        "min_object_probability": f"{stored['min_object_probability']:g}",
        "fallback_below": "never" if stored.get("fallback_below") is None else f"{stored['fallback_below']:g}",
        "min_size": str(stored["min_size"]),
        "network_mpp": f"{stored['network_mpp']:g}",
        "region_side": str(stored["region_side"]),
        "region_halo": str(stored["region_halo"]),
        "region_window": str(stored["tile_size"]),
        "region_core": str(int(stored["tile_size"]) - 2 * int(stored["region_halo"])),  # type: ignore[call-overload]
        "mpp_min": f"{mpp_range[0]:g}",
        "mpp_max": f"{mpp_range[1]:g}",
        "max_megapixels": f"{max_pixels / 1e6:g}",
        "patch_size": str(patch_size),
    }



def profile_facts(cpu: Profile, paper: Profile) -> dict[str, str]:
    """What the page says of the profiles: the `cpu` tool network's self-training rounds, the paper's epochs.

    >>> from ssimnet.config import get_profile
    >>> facts = profile_facts(get_profile("cpu"), get_profile("paper"))
    >>> facts["paper_epochs"] == str(get_profile("paper").train.epochs)
    True
    """
    tool = cpu.for_tool()
    depths = {tool.train.depth, paper.train.depth}
    if len(depths) != 1:
        raise ValueError(f"the cpu and paper networks differ in depth ({sorted(depths)}); the page names one multiple")
    return {
        "selftrain_rounds": str(tool.selftrain.rounds),
        "paper_finetune_epochs": str(paper.inference.finetune_epochs),
        "paper_epochs": str(paper.train.epochs),
        "input_multiple": str(2 ** depths.pop()),
    }


def study_facts(*, normalization: pd.DataFrame, levers: pd.DataFrame, object_probability: pd.DataFrame,
                held_out: int) -> dict[str, str]:
    """What the committed studies say that the page quotes (percent; the choices as the chapters make them).

    `normalization` and `levers` are the tables of
    :func:`ssimnet.book.report.normalization_table` and
    :func:`ssimnet.book.report.levers_table` (a ``chosen`` column);
    `object_probability` holds the object-threshold study's per-image rows;
    `held_out` is the number of training images the levers study held out.

    >>> norm = pd.DataFrame({"tnbc aji": [24.6, 47.5], "chosen": [False, True]}, index=["as it is", "default"])
    >>> lev = pd.DataFrame({"heldout aji": [53.0, 48.9], "chosen": [True, False]},
    ...                    index=["b, 1 round + boundary watershed", "b, 1 round + distance watershed"])
    >>> obj = pd.DataFrame({"config": ["t 0.0", "t 0.5"], "dice": [0.78, 0.786], "aji": [0.53, 0.535]})
    >>> facts = study_facts(normalization=norm, levers=lev, object_probability=obj, held_out=6)
    >>> facts["tnbc_aji_as_is"], facts["tnbc_aji_normalised"], facts["levers_distance_aji"], facts["object_best_dice"]
    ('24.6', '47.5', '48.9', '78.6')
    """
    chosen_norm = normalization.index[normalization.chosen][0]
    chosen_lever = levers.index[levers.chosen][0]
    distance = chosen_lever.replace("boundary watershed", "distance watershed")
    objects = object_probability.groupby("config", sort=False)[["dice", "aji"]].mean() * 100
    best = objects.dice.idxmax()
    return {
        "levers_held_out": str(held_out),
        "tnbc_aji_as_is": f"{normalization.loc['as it is', 'tnbc aji']:.1f}",
        "tnbc_aji_normalised": f"{normalization.loc[chosen_norm, 'tnbc aji']:.1f}",
        "levers_boundary_aji": f"{levers.loc[chosen_lever, 'heldout aji']:.1f}",
        "levers_distance_aji": f"{levers.loc[distance, 'heldout aji']:.1f}" if distance in levers.index else "–",
        "object_all_dice": f"{objects.dice.iloc[0]:.1f}",
        "object_all_aji": f"{objects.aji.iloc[0]:.1f}",
        "object_best_dice": f"{objects.dice[best]:.1f}",
        "object_best_aji": f"{objects.aji[best]:.1f}",
    }

