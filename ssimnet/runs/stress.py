"""The stain stress test: an H&E image's colours changed as other labs' slides differ, its nuclei kept.

Each transform takes an image and its instance labels and returns a changed
image and the labels that still hold for it.  Stain transforms work in
optical density (paper Eq. 1): the image's own stains are measured
(:class:`ssimnet.pseudo.stain.VahadaneSeparator`, exact solver), its
densities changed, and the difference added back, so that what the two
stains do not explain (the residual) stays as it was:
``V' = V + (H' - H) W``.  Labels are used by one transform only, *nuclei on
white*, to know where the nuclei are; the method under test never sees them.

=====================  ==========================================================
transform              what it does
=====================  ==========================================================
``none``               nothing (the untransformed image)
``eosin x0.5``         eosin densities halved
``eosin removed``      eosin densities set to 0: hematoxylin only
``lavender``           eosin recoloured lavender (same densities) and a faint
                       lavender cast over everything, background included
``blue``, ``yellow``   the same with a blue or a yellow tint
``hematoxylin x1.5``   hematoxylin densities x1.5 (over-stained); ``x2`` likewise
``hematoxylin x0.5``   hematoxylin densities halved (faded)
``HED jitter``         each stain's densities scaled by U(0.75, 1.25) and shifted
                       by U(-0.05, 0.05) on tissue, per image (scanners differ)
``JPEG q15``           JPEG compression at quality 15
``half resolution``    the image and labels at half size (a 20x slide without
                       ``--mpp``)
``nuclei on white``    eosin set to 0 outside the nuclei, as in a smear
``faded, no eosin``    hematoxylin halved and eosin removed: a pale smear
=====================  ==========================================================

Examples
--------
>>> from ssimnet.synthetic import synthetic_tile
>>> tile = synthetic_tile((64, 64), seed=0)
>>> image, label = stress(tile.image, tile.label, "eosin removed", seed=0)
>>> image.shape == tile.image.shape and bool((label == tile.label).all())
True
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np

from ..errors import SegmentationWarning
from ..pseudo.stain import VahadaneSeparator, nonnegative_unmix, od_to_rgb, rgb_to_od, tissue_mask
from ..tool.stain_guard import stain_spread, stained_mask

__all__ = ["TRANSFORMS", "TINTS", "stress", "foreground_fraction", "red_share", "pixel_size_rows", "fallback_rows",
           "FALLBACK_WATERSHEDS", "second_opinion_rows", "by_way"]

#: Tint colours (RGB of a lightly tinted area) of the tinted transforms.
TINTS: dict[str, tuple[int, int, int]] = {"lavender": (205, 180, 225), "blue": (185, 205, 235),
                                          "yellow": (235, 225, 170)}
_CAST = 0.35  # the faint cast over everything, as a fraction of the tint's own optical density


def _unit(rgb: tuple[int, int, int]) -> np.ndarray:
    od = rgb_to_od(np.array(rgb, np.uint8))
    return od / np.linalg.norm(od)


def _unmix(image: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image's optical density, its (H, W, 2) stain densities and its (2, 3) stain colours."""
    stains = VahadaneSeparator(seed=seed, solver="exact").fit(image).stain_matrix_
    od = rgb_to_od(image)
    return od, nonnegative_unmix(od, stains), stains


def _restain(image: np.ndarray, change: Callable[[np.ndarray], np.ndarray], seed: int) -> np.ndarray:
    od, density, stains = _unmix(image, seed)
    return od_to_rgb(od + (change(density.copy()) - density) @ stains)


def _scale(hematoxylin: float, eosin: float) -> Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    def transform(image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        def change(d: np.ndarray) -> np.ndarray:
            d[..., 0] *= hematoxylin
            d[..., 1] *= eosin
            return d

        return _restain(image, change, seed), label
    return transform


def _tint(name: str) -> Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    colour = _unit(TINTS[name])
    cast = rgb_to_od(np.array(TINTS[name], np.uint8)) * _CAST

    def transform(image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        od, density, stains = _unmix(image, seed)  # eosin keeps its densities and takes the tint's colour
        return od_to_rgb(od + density[..., 1:] * (colour - stains[1]) + cast), label
    return transform


def _jitter(image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale, shift = rng.uniform(0.75, 1.25, 2), rng.uniform(-0.05, 0.05, 2)
    tissue = tissue_mask(image)[..., None]

    def change(d: np.ndarray) -> np.ndarray:
        return np.maximum(d * scale + shift * tissue, 0.0)

    return _restain(image, change, seed), label


def _jpeg(image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=15)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")), label


def _half(image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    size = (max(1, image.shape[1] // 2), max(1, image.shape[0] // 2))
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
    return small, label[::2, ::2][: size[1], : size[0]].copy()


def _on_white(image: np.ndarray, label: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    def change(d: np.ndarray) -> np.ndarray:
        d[..., 1] *= label > 0
        return d

    return _restain(image, change, seed), label


#: The stress transforms by name: ``(image, label, seed) -> (image, label)``.
TRANSFORMS: dict[str, Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]] = {
    "none": lambda image, label, seed: (image, label),
    "eosin x0.5": _scale(1.0, 0.5),
    "eosin removed": _scale(1.0, 0.0),
    "lavender": _tint("lavender"),
    "blue": _tint("blue"),
    "yellow": _tint("yellow"),
    "hematoxylin x1.5": _scale(1.5, 1.0),
    "hematoxylin x2": _scale(2.0, 1.0),
    "hematoxylin x0.5": _scale(0.5, 1.0),
    "HED jitter": _jitter,
    "JPEG q15": _jpeg,
    "half resolution": _half,
    "nuclei on white": _on_white,
    "faded, no eosin": _scale(0.5, 0.0),
}


def stress(image: np.ndarray, label: np.ndarray, transform: str, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`image` ((H, W, 3) uint8) under the stress `transform` (:data:`TRANSFORMS`), and its labels.

    Raises
    ------
    ValueError
        If `transform` is not one of :data:`TRANSFORMS`.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown stress transform {transform!r}; one of {', '.join(TRANSFORMS)}")
    return TRANSFORMS[transform](np.asarray(image), np.asarray(label), seed)


def red_share(stains: np.ndarray) -> np.ndarray:
    """The red component of each stain's unit optical-density colour, (n,) for stains (n, 3).

    How much red light a stain absorbs beside the rest: near 0.1 for eosin
    (which absorbs green), about 0.5 or more for hematoxylin; scaling a
    stain's colour does not change it.  The guard's sixth version, scored once
    and set aside, called an image one-stain when its counterstain's was high
    (:func:`guard_outcome`'s `one_stain_red`).

    >>> red_share(np.array([[0.65, 0.70, 0.29], [0.14, 1.98, 0.22]])).round(2).tolist()
    [0.65, 0.07]
    """
    stains = np.asarray(stains, dtype=np.float64)
    return stains[:, 0] / np.maximum(np.linalg.norm(stains, axis=1), 1e-12)


def foreground_fraction(label: np.ndarray) -> float:
    """The fraction of the pixels that are nucleus (label > 0).

    >>> foreground_fraction(np.array([[0, 1], [2, 0]]))
    0.5
    """
    return float(np.count_nonzero(label)) / max(1, np.size(label))


#: The ways the stress test segments each transformed image.
STRESS_CONFIGS: tuple[str, ...] = ("default", "0.2 normaliser", "off", "classical watershed")


def _scored(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from ..metrics import score

    s = score(true, pred)
    return {"precision": s.precision, "recall": s.recall, "dice": s.dice, "aji": s.aji, "aji_plus": s.aji_plus,
            "pq": s.pq,
            "foreground": foreground_fraction(pred), "true_foreground": foreground_fraction(true)}


def stress_rows(image: np.ndarray, label: np.ndarray, segmenter: object, *, seed: int = 0,
                transforms: tuple[str, ...] = tuple(TRANSFORMS), baselines: object = None) -> list[dict[str, object]]:
    """Every :data:`STRESS_CONFIGS` way of segmenting `image` under each stress transform, scored against
    the transformed labels: one row per transform and way.

    ``default`` is `segmenter` with ``normalize="auto"`` (what ``ssimnet segment`` does),
    ``0.2 normaliser`` always normalises with the stains measured as
    version 0.2 did (no stain guard), ``off`` never normalises (both with the segmenter's other settings,
    its watershed fallback included), and
    ``classical watershed`` is the hematoxylin watershed baseline.  ``mpp`` is the pixel size each was
    segmented at (None: as it is; :mod:`ssimnet.tool.pixel_size`), ``confidence`` the network's in the nuclei
    it found (:func:`ssimnet.predict.nuclei.nucleus_confidence`) and ``fallback`` whether its nuclei are the
    classical watershed's instead (the segmenter's ``fallback_below``).  For a segmenter that does not fall
    back, :func:`ssimnet.runs.fallback_choice.with_fallback` makes from them the rows it would give with a
    threshold.
    """
    from ..baselines import segment_baseline
    from ..config import DEFAULT_BASELINES
    from ..tool.normalize import stain_normalizer

    old = stain_normalizer(segmenter.settings, seed=seed, order=False)  # type: ignore[attr-defined]
    rows = []
    for transform in transforms:
        seen, truth = stress(image, label, transform, seed=seed)
        with warnings.catch_warnings():  # the foreground column records what the warning would say
            warnings.simplefilter("ignore", SegmentationWarning)
            results = {way: segmenter.segment(seen, seed=seed, measure=False, **how)  # type: ignore[attr-defined]
                       for way, how in (("default", {"normalize": "auto"}), ("0.2 normaliser", {"normalizer": old}),
                                        ("off", {"normalize": "off"}))}
        for config, result in results.items():
            rows.append({"transform": transform, "config": config, **_scored(truth, result.label),
                         "normalization": result.normalization, "mpp": result.mpp, "confidence": result.confidence,
                         "fallback": result.fallback})
        water = segment_baseline(seen, "watershed", baselines or DEFAULT_BASELINES, seed=seed)
        rows.append({"transform": transform, "config": "classical watershed", **_scored(truth, water),
                     "normalization": "", "mpp": None, "confidence": None, "fallback": False})
    return rows


def guard_selection_rows(image: np.ndarray, label: np.ndarray, segmenter: object, *, seed: int = 0,
                         transforms: tuple[str, ...] = tuple(TRANSFORMS)) -> list[dict[str, object]]:
    """What the stain guard's thresholds were chosen from, for one *training* image: under each transform,
    the stains as the separation names them (their angle, each stain's spread, 99th-percentile density and
    red share) and four results (``way``) -- normalised as named, normalised with the names swapped, not
    normalised, and normalised as hematoxylin only; a row per transform and way.  :func:`guard_outcome`
    then scores any settings on these rows without segmenting again."""
    from ..config import StainReference
    from ..tool.normalize import stain_normalizer
    norm = stain_normalizer(segmenter.settings, seed=seed, order=False)  # type: ignore[attr-defined]
    rows = []
    for transform in transforms:
        seen, truth = stress(image, label, transform, seed=seed)
        source, density, check = norm.measure_checked(seen)  # the stains as the separation names them
        on_stained = stain_spread(density, stained_mask(seen))
        swapped = StainReference(stain_matrix=source.stain_matrix[::-1], max_density=source.max_density[::-1],
                                 percentile=source.percentile)
        one, one_source = norm.one_stain(source, check)
        ways = {"as named": norm.transform(seen, source=source, density=density),
                "swapped": norm.transform(seen, source=swapped, density=density[..., ::-1].copy()), "off": seen,
                "hematoxylin only": one.transform(seen, source=one_source, density=density)}
        red = red_share(np.asarray(source.stain_matrix))
        stains = {"angle": check.angle, "spread_h": check.spread[0], "spread_e": check.spread[1],
                  "stained_spread_h": on_stained[0], "stained_spread_e": on_stained[1],
                  "density_h": source.max_density[0], "density_e": source.max_density[1], "tissue": check.tissue,
                  "red_h": red[0], "red_e": red[1]}
        for way, shown in ways.items():
            with warnings.catch_warnings():  # a collapse here is what the rows are for
                warnings.simplefilter("ignore", SegmentationWarning)
                result = segmenter.segment(shown, seed=seed, measure=False, normalize="off")  # type: ignore[attr-defined]
            rows.append({"transform": transform, "way": way, **stains, **_scored(truth, result.label)})
    return rows


def pixel_size_rows(image: np.ndarray, label: np.ndarray, segmenter: object, *, seed: int = 0,
                    transforms: tuple[str, ...] = tuple(TRANSFORMS)) -> list[dict[str, object]]:
    """What the pixel-size check was chosen from, for one *training* image: under each transform, the
    nuclei's scale in the stain (:func:`ssimnet.tool.pixel_size.nucleus_sigma`, ``sigma``; NaN when none),
    the median area of those `segmenter` finds as it is (``area``), and its default segmentation two ways
    (``way``): as it is, and enlarged twice (as a scan at twice its ``network_mpp``); a row per transform and
    way.  :func:`ssimnet.runs.pixel_choice.enlarge_outcome` then scores any thresholds without segmenting
    again."""
    from ..tool.pixel_size import median_area, nucleus_sigma

    network_mpp = segmenter.settings.network_mpp  # type: ignore[attr-defined]
    rows = []
    for transform in transforms:
        seen, truth = stress(image, label, transform, seed=seed)
        sigma = nucleus_sigma(seen)
        results = {}
        for way, mpp in (("as it is", network_mpp), ("enlarged twice", 2 * network_mpp)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SegmentationWarning)
                results[way] = segmenter.segment(seen, mpp=mpp, seed=seed, measure=False)  # type: ignore[attr-defined]
        area = median_area(results["as it is"].label)
        rows += [{"transform": transform, "way": way, "sigma": np.nan if sigma is None else sigma, "area": area,
                  **_scored(truth, result.label)} for way, result in results.items()]
    return rows


#: The watersheds :func:`fallback_rows` weighs as the fallback: the classical baseline's (Ruifrok's hematoxylin
#: of the image as it is, what segment falls back to), the same on the image as normalised (what the network
#: saw), and Otsu's threshold on the hematoxylin density of the stains segment measured (the stain guard's).
FALLBACK_WATERSHEDS: tuple[str, ...] = ("classical watershed", "watershed, normalised image",
                                        "watershed, measured hematoxylin")


def fallback_rows(image: np.ndarray, label: np.ndarray, segmenter: object, *, seed: int = 0,
                  transforms: tuple[str, ...] = tuple(TRANSFORMS), baselines: object = None) -> list[dict[str, object]]:
    """What the watershed fallback was chosen from, for one *training* image: under each transform, the
    network's confidence in the nuclei it found (``confidence``) and the results (``way``) of segment's default
    without the fallback (``network``) and of each of :data:`FALLBACK_WATERSHEDS`; a row per transform and way.
    :func:`ssimnet.runs.fallback_choice.fallback_outcome` then scores any threshold, and any of those
    watersheds as the fallback, without segmenting again."""
    from ..baselines import segment_baseline
    from ..baselines.watershed import MIN_DENSITY_RANGE, hematoxylin_watershed
    from ..config import DEFAULT_BASELINES
    from ..pseudo.generators import otsu_mask
    from ..pseudo.touching import distance_watershed

    baselines = baselines or DEFAULT_BASELINES
    settings = segmenter.settings  # type: ignore[attr-defined]
    sizes = {"min_size": settings.min_size, "max_hole": settings.max_hole}
    rows = []
    for transform in transforms:
        seen, truth = stress(image, label, transform, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SegmentationWarning)
            result = segmenter.segment(seen, seed=seed, measure=False, fallback_below=None)  # type: ignore[attr-defined]
            stains = segmenter.measure_stains(seen, seed=seed)  # type: ignore[attr-defined]
        normalised = seen if stains.normalizer is None else stains.normalizer.transform(seen, source=stains.source)
        measured = otsu_mask(stains.hematoxylin(seen), sigma=baselines.watershed_sigma, min_range=MIN_DENSITY_RANGE)
        found = {"network": result.label, "classical watershed": segment_baseline(seen, "watershed", baselines,
                                                                                  seed=seed),
                 "watershed, normalised image": hematoxylin_watershed(normalised, sigma=baselines.watershed_sigma,
                                                                      h=baselines.watershed_h, **sizes),
                 "watershed, measured hematoxylin": distance_watershed(measured, h=baselines.watershed_h, **sizes)}
        rows += [{"transform": transform, "way": way, "confidence": result.confidence, **_scored(truth, labels)}
                 for way, labels in found.items()]
    return rows


def second_opinion_rows(image: np.ndarray, label: np.ndarray, segmenter: object, *, seed: int = 0,
                        transforms: tuple[str, ...] = tuple(TRANSFORMS),
                        baselines: object = None) -> list[dict[str, object]]:
    """What a second opinion as hematoxylin only was weighed from, for one image: under each transform, three
    results (``way``) -- segment's default without the watershed fallback (``two stains``), the same image
    normalised as hematoxylin only as the stain guard normalises a one-stain image (``hematoxylin only``;
    the default itself where the guard made it one-stain already, ``tried`` False), and the classical
    watershed the fallback gives -- each with the network's ``confidence`` and its ``foreground``, beside
    the share of the image its own pseudo labels call nucleus (``pseudo_foreground``: the candidates of
    :func:`ssimnet.pseudo.labels.pseudo_labels`, no ground truth); a row per transform and way.
    :func:`ssimnet.runs.guard_choice.second_opinion_outcome` then scores, without segmenting again, segment
    keeping the hematoxylin-only result when the network is surer of it."""
    from ..baselines import segment_baseline
    from ..config import DEFAULT_BASELINES
    from ..pseudo.labels import pseudo_labels
    from ..tool.normalize import stain_normalizer

    settings = segmenter.settings  # type: ignore[attr-defined]
    norm = stain_normalizer(settings, n_samples=segmenter.pseudo.stain_samples, seed=seed)  # type: ignore[attr-defined]
    rows = []
    for transform in transforms:
        seen, truth = stress(image, label, transform, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SegmentationWarning)
            two = segmenter.segment(seen, seed=seed, measure=False, fallback_below=None)  # type: ignore[attr-defined]
            source, density, check = norm.measure_checked(seen)  # as segment measures them
            one, tried = two, settings.normalize == "auto" and not check.one_stain
            if tried:  # the network sees what segment shows it of a one-stain image
                hematoxylin, own = norm.one_stain(source, check)
                shown = hematoxylin.transform(seen, source=own, density=density)
                one = segmenter.segment(shown, seed=seed, measure=False, fallback_below=None,  # type: ignore[attr-defined]
                                        normalize="off")
        water = segment_baseline(seen, "watershed", baselines or DEFAULT_BASELINES, seed=seed)
        pseudo = foreground_fraction(pseudo_labels(seen, segmenter.pseudo, seed=seed).candidates)  # type: ignore[attr-defined]
        rows += [{"transform": transform, "way": way, "tried": tried, "confidence": confidence,
                  "pseudo_foreground": pseudo, **_scored(truth, labels)}
                 for way, labels, confidence in (("two stains", two.label, two.confidence),
                                                 ("hematoxylin only", one.label, one.confidence),
                                                 ("classical watershed", water, None))]
    return rows


def by_way(rows: object, *, score: str, measures: list[str]) -> object:
    """Selection rows (one per image, transform and ``way``) as one row per image and transform: `score`
    under each way in its own column, beside the image's `measures` (the same for every way).

    >>> rows = [{"image": "a", "transform": "t", "way": w, "aji": v, "sigma": 3.0}
    ...         for w, v in (("as it is", 0.4), ("enlarged twice", 0.6))]
    >>> by_way(rows, score="aji", measures=["sigma"]).to_dict("records")
    [{'image': 'a', 'transform': 't', 'as it is': 0.4, 'enlarged twice': 0.6, 'sigma': 3.0}]
    """
    import pandas as pd

    table = pd.DataFrame(rows)
    keys = ["image", "transform"]
    return table.pivot_table(index=keys, columns="way", values=score).join(
        table.groupby(keys)[measures].first()).reset_index().rename_axis(columns=None)


def guard_outcome(rows: object, *, order_margin: float, order_min_density: float, one_stain_angle: float,
                  one_stain_spread: float, one_stain_red: float = np.inf, one_stain_way: str = "off",
                  score: str = "aji") -> object:
    """The mean `score` per transform of :func:`guard_selection_rows`' rows (a DataFrame) had the guard used
    these settings (:class:`ssimnet.config.StainGuard`): swap when hematoxylin is more than
    `order_margin` times as spread and the other stain is dense enough; when the image's stains are one
    (spreads within `one_stain_spread`, and colours closer than `one_stain_angle` degrees or a
    counterstain whose red share is above `one_stain_red`), take the `one_stain_way` result -- each judged
    on the tissue and on every stained pixel, and only where both agree, as the guard does.  The default
    `one_stain_red` (never) is every version of the guard but the sixth, which was set aside."""
    import pandas as pd

    table = pd.DataFrame(rows)
    stains = ["angle", "spread_h", "spread_e", "stained_spread_h", "stained_spread_e", "density_h", "density_e"]
    stains += [c for c in ("red_h", "red_e") if c in table.columns]  # rows made before the sixth guard lack them
    frame = by_way(table, score=score, measures=stains)
    swap = frame["density_e"] >= order_min_density * frame["density_h"]
    alike = np.ones(len(frame), dtype=bool)
    for h, e in (("spread_h", "spread_e"), ("stained_spread_h", "stained_spread_e")):  # both masks must agree
        swap &= frame[h] > order_margin * frame[e]
        alike &= np.maximum(frame[h], frame[e]) / np.maximum(np.minimum(frame[h], frame[e]), 1e-6) < one_stain_spread
    one = frame["angle"] < one_stain_angle
    if np.isfinite(one_stain_red):
        if "red_e" not in frame:
            raise ValueError("these rows have no red shares (red_h, red_e): made before the guard's sixth version")
        one |= np.where(swap, frame["red_h"], frame["red_e"]) > one_stain_red  # the counterstain, after any swap
    one &= alike
    chosen = np.where(one, frame[one_stain_way], np.where(swap, frame["swapped"], frame["as named"]))
    return frame.assign(chosen=chosen).groupby("transform")["chosen"].mean()
