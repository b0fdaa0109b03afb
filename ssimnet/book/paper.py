"""The numbers the paper reports (Chen, Li & Zhou, MICCAI 2023), for side-by-side tables.

Values are percentages as printed.  Table 1 (MoNuSeg) gives
``(mean, standard deviation, best run)`` over ten runs; Tables 2 (CPM17) and
3 (ablation on MoNuSeg) give single values.  These are reported, not
reproduced: the book always labels them so.

Examples
--------
>>> TABLE1["SSimNet"]["dice"]
(79.2, 0.6, 80.0)
>>> TABLE3[(True, True, False)]["aji"]     # softening, purification, no fine-tuning
44.1
"""

from __future__ import annotations

__all__ = ["METRICS", "TABLE1", "TABLE2", "TABLE3"]

#: Metric columns of the paper's tables, in order.
METRICS: tuple[str, ...] = ("precision", "recall", "dice", "aji")


def _row(*cells: tuple[float, float, float]) -> dict[str, tuple[float, float, float]]:
    return dict(zip(METRICS, cells))


#: Table 1, MoNuSeg test: method -> metric -> (mean, std, best run).
TABLE1: dict[str, dict[str, tuple[float, float, float]]] = {
    "mKMeans": _row((65.7, 17.5, 67.9), (79.2, 17.4, 77.3), (67.8, 9.4, 68.2), (30.5, 14.0, 33.8)),
    "GMM": _row((63.1, 15.0, 66.4), (82.2, 10.9, 81.9), (69.5, 8.5, 71.7), (29.0, 15.1, 31.9)),
    "IIC": _row((46.7, 9.2, 51.6), (72.5, 12.1, 79.6), (56.0, 8.7, 61.8), (5.6, 3.0, 7.2)),
    "Kim et al.": _row((57.5, 24.9, 69.8), (82.4, 18.9, 77.2), (60.6, 17.1, 69.4), (22.0, 17.6, 32.3)),
    "Double DIP": _row((22.1, 5.1, 22.1), (82.0, 10.9, 85.1), (34.4, 6.7, 35.0), (1.3, 0.6, 1.3)),
    "Kanezaki et al.": _row((62.9, 19.5, 72.5), (82.2, 16.2, 78.3), (66.9, 11.9, 72.7), (26.0, 16.6, 35.1)),
    "DCGMM": _row((69.3, 13.5, 69.8), (78.6, 17.1, 80.1), (70.7, 6.4, 71.9), (31.4, 12.4, 34.5)),
    "DIC": _row((51.1, 24.9, 59.5), (84.8, 17.0, 83.2), (57.1, 16.5, 64.4), (14.7, 16.9, 19.3)),
    "DCAGMM": _row((61.9, 13.7, 69.1), (76.7, 13.1, 76.3), (66.4, 7.9, 70.6), (30.0, 12.6, 36.5)),
    "DCGN": _row((68.5, 11.3, 71.6), (83.4, 11.5, 80.8), (73.7, 4.3, 74.3), (35.2, 11.3, 37.9)),
    "SSimNet w/o ft": _row((80.8, 2.1, 79.7), (76.1, 3.3, 79.3), (76.7, 1.4, 78.5), (44.1, 1.5, 45.3)),
    "SSimNet": _row((82.0, 1.7, 82.0), (77.2, 2.5, 78.6), (79.2, 0.6, 80.0), (49.8, 0.9, 51.2)),
    "U-Net (supervised)": _row((73.8, 1.3, 75.5), (85.3, 0.4, 85.8), (78.7, 1.0, 80.0), (51.0, 0.9, 52.4)),
}

#: Table 2, CPM17 test: method -> metric -> value.
TABLE2: dict[str, dict[str, float]] = {
    "mKMeans": dict(zip(METRICS, (79.4, 74.9, 74.5, 46.1))),
    "GMM": dict(zip(METRICS, (79.0, 75.5, 72.7, 43.0))),
    "Kanezaki et al.": dict(zip(METRICS, (82.0, 65.4, 72.1, 46.7))),
    "SSimNet w/o ft": dict(zip(METRICS, (85.4, 80.7, 81.2, 49.3))),
    "SSimNet": dict(zip(METRICS, (85.8, 80.5, 81.6, 49.8))),
}

#: Table 3, ablation on MoNuSeg: (label softening, data purification, fine-tuning) -> metric -> value.
TABLE3: dict[tuple[bool, bool, bool], dict[str, float]] = {
    (False, True, True): dict(zip(METRICS, (78.8, 78.7, 78.3, 45.6))),
    (True, False, True): dict(zip(METRICS, (79.6, 77.3, 77.9, 47.6))),
    (True, True, False): dict(zip(METRICS, (80.8, 76.1, 76.7, 44.1))),
    (True, True, True): dict(zip(METRICS, (82.0, 77.2, 79.2, 49.8))),
}
