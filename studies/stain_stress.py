"""The stain stress test: the shipped network under colour changes other labs' slides show.

Three parts:

1. **Selection** (``results/cpu/stain_guard_selection_*``).  Ten MoNuSeg
   *training* images (every third) under every stress transform
   (:data:`ssimnet.runs.stress.TRANSFORMS`): the stains as the separation
   names them, and four results (normalised as named, normalised with the
   names swapped, not normalised, normalised as hematoxylin only).  The
   one-stain settings are those of :func:`ssimnet.runs.guard_choice.choose_one_stain`
   and, for the counterstain's red share, :func:`~ssimnet.runs.guard_choice.choose_one_stain_red`.
   The stain guard's thresholds (:data:`ssimnet.config.STAIN_GUARD`) were chosen on these rows; the script
   prints what each candidate threshold would have given
   (:func:`ssimnet.runs.stress.guard_outcome`).
2. **Second opinion** (``--only second``, ``results/cpu/second_opinion_*``).
   Every MoNuSeg training image as it is, every third under every
   transform: segment's default without the fallback, the same image
   normalised as hematoxylin only, and the classical watershed, with the
   network's confidence (:func:`ssimnet.runs.stress.second_opinion_rows`);
   the margin by which the network must be surer of the hematoxylin-only
   result to keep it is :func:`ssimnet.runs.guard_choice.choose_one_stain_margin`'s
   choice.  The same rows of the MoNuSeg test images and TNBC, as they are,
   score it once (it was set aside).  ``--only pixel`` and ``--only fallback``
   chose the pixel-size check and the watershed fallback alike.
3. **Stress test** (``results/cpu/stain_stress_*``).  The 14 MoNuSeg test
   images, the 50 TNBC images and 14 synthetic tiles (exact labels; their
   stains vary from tile to tile) under every transform, segmented four ways
   (:data:`ssimnet.runs.stress.STRESS_CONFIGS`): segment's default
   (``normalize="auto"``), version 0.2's normaliser, no normalisation, and the
   classical watershed.  Scored once; nothing is chosen here.  With
   ``--earlier``, an earlier run's default (and what it kept) stays beside
   this one's, so that every configuration scored on test is reported; an
   earlier version with this run's guard settings and rows (a version set
   aside, then the default again) is this run's default, and not kept twice.

Each image's rows are cached in ``--run-dir`` by the image's bytes, the
settings and the code of the stages that made them.

    python studies/stain_stress.py --monuseg ../shared/data/monuseg --tnbc ../shared/data/tnbc --out results/cpu
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ssimnet.book.report import rerun_difference
from ssimnet.book.results import (
    FALLBACK_SELECTION,
    PIXEL_SIZE_SELECTION,
    SECOND_OPINION_SELECTION,
    SECOND_OPINION_TEST,
    STAIN_GUARD_SELECTION,
    STAIN_STRESS,
    load_results,
    provenance,
    save_results,
)
from ssimnet.config import (
    AREA_BELOW,
    DEFAULT_SEED,
    ENLARGE_BELOW,
    FALLBACK_BELOW,
    STAIN_GUARD,
    TRAINING_NUCLEUS_AREA,
    TRAINING_NUCLEUS_SCALE,
    get_profile,
)
from ssimnet.data import atomic_path, file_digest, list_samples, read_image, read_label
from ssimnet.datasets import write_synthetic_dataset
from ssimnet.runs.fallback_choice import (
    choose_fallback_below,
    choose_fallback_watershed,
    fallback_outcome,
    with_fallback,
)
from ssimnet.runs.guard_choice import (
    PSEUDO_CAP,
    choose_one_stain,
    choose_one_stain_margin,
    choose_one_stain_red,
    second_opinion_outcome,
)
from ssimnet.runs.pixel_choice import choose_enlarge_below, enlarge_outcome, references
from ssimnet.runs.store import stage_key
from ssimnet.runs.stress import (
    TRANSFORMS,
    fallback_rows,
    guard_outcome,
    guard_selection_rows,
    pixel_size_rows,
    second_opinion_rows,
    stress_rows,
)

_SEGMENTER = None


def _segmenter():
    global _SEGMENTER
    if _SEGMENTER is None:
        from ssimnet import Segmenter

        shipped = Segmenter.pretrained()
        _SEGMENTER = Segmenter(shipped.network.with_threads(1), shipped.settings, path=shipped.path)
    return _SEGMENTER


#: What each part computes for one image.
_ROWS = {"selection": guard_selection_rows, "stress": stress_rows, "pixel": pixel_size_rows,
         "fallback": fallback_rows, "second": second_opinion_rows}


#: The name of segment's default with the watershed fallback scored before it was the default (--fallback-below).
FALLBACK_CONFIG = "default, watershed fallback"


def _unit(task: tuple[str, str, str, str, int, Path, tuple[str, ...]]) -> list[dict[str, object]]:
    """One image's rows under `transforms`, from the cache or computed (in a worker process)."""
    part, dataset, image_path, label_path, seed, run_dir, transforms = task
    segmenter = _segmenter()
    key = stage_key(part, file_digest(image_path), file_digest(label_path), list(transforms), seed,
                    asdict(segmenter.settings), file_digest(segmenter.path), code=("stress",))
    cached = run_dir / part / f"{Path(image_path).stem}-{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    image, label = read_image(image_path), read_label(label_path)
    rows = [{"dataset": dataset, "image": Path(image_path).stem, **row}
            for row in _ROWS[part](image, label, segmenter, seed=seed, transforms=transforms)]
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        Path(tmp).write_text(json.dumps(rows))
    return rows


def _run(tasks: list[tuple], workers: int) -> pd.DataFrame:
    with ProcessPoolExecutor(workers) as pool:
        return pd.DataFrame([row for rows in pool.map(_unit, tasks) for row in rows])


def _same_rows(version: pd.DataFrame, frame: pd.DataFrame) -> bool:
    """Whether an earlier version's rows hold the scores of this run's default, image by image (to the
    six decimals that the results files keep)."""
    if version.empty:
        return False
    try:
        gap = rerun_difference(pd.concat([frame[frame["config"] == "default"], version]),
                               config=version["config"].iloc[0])
    except ValueError:  # not the same images
        return False
    return gap["largest"] <= 5e-7


def _training_rows(part: str, args: argparse.Namespace, profile: object, record: dict[str, object], *,
                   kind: object) -> pd.DataFrame:
    """A selection's rows (`part` of :data:`_ROWS`): every MoNuSeg training image as it is, every third under
    every transform; saved as `kind` with their provenance."""
    train = list_samples(args.monuseg, "train")
    tasks = [(part, "monuseg train", str(s.image_path), str(s.label_path), args.seed, args.run_dir,
              tuple(TRANSFORMS) if i % 3 == 0 else ("none",)) for i, s in enumerate(train)]
    rows = _run(tasks, args.workers)
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
    info.update(record, images=[s.name for s in train],
                split="train: every image untransformed, every third under every transform")
    save_results(args.out, rows, info, kind=kind)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monuseg", required=True, type=Path)
    parser.add_argument("--tnbc", required=True, type=Path)
    parser.add_argument("--run-dir", default="runs/stress", type=Path)
    parser.add_argument("--out", default="results/cpu", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", choices=["selection", "pixel", "fallback", "second", "stress"], default=None)
    parser.add_argument("--fallback-below", type=float, default=None,
                        help="score segment's default with this watershed fallback threshold too, as "
                             "'default, watershed fallback' (from the rows' confidence; not in the stress test "
                             "before it is chosen by --only fallback)")
    parser.add_argument("--synthetic", type=int, default=14,
                        help="synthetic test tiles (the cpu profile's generator: exact labels, varied stains) "
                             "stressed beside MoNuSeg and TNBC; 0: none")
    parser.add_argument("--earlier", type=Path, default=None,
                        help="an earlier stress test's results folder: its default's rows are kept beside this "
                             "one's as --earlier-name, with those it kept (every configuration scored on test "
                             "stays reported)")
    parser.add_argument("--earlier-name", default="default, earlier guard")
    args = parser.parse_args()
    profile = get_profile("cpu").for_tool()
    record = {"network": "the shipped network (ssimnet/weights), as ssimnet segment runs it",
              "stain_guard": STAIN_GUARD._asdict(), "transforms": list(TRANSFORMS),
              "pixel_size": {k: getattr(profile.inference, k) for k in ("nucleus_scale", "nucleus_area",
                                                                         "enlarge_below", "area_below")}}

    if args.only in (None, "selection"):
        train = list_samples(args.monuseg, "train")[::3]
        tasks = [("selection", "monuseg train", str(s.image_path), str(s.label_path), args.seed, args.run_dir,
                  tuple(TRANSFORMS)) for s in train]
        selection = _run(tasks, args.workers)
        info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
        info.update(record, images=[s.name for s in train], split="train (every third image)")
        save_results(args.out, selection, info, kind=STAIN_GUARD_SELECTION)
        guard = {k: v for k, v in STAIN_GUARD._asdict().items() if k != "max_foreground"}
        unguarded = {**guard, "order_margin": float("inf"), "one_stain_angle": 0.0, "one_stain_red": float("inf")}
        print("AJI per transform, training images, without the guard and with the chosen thresholds, "
              "a one-stain image left as it is or normalised as hematoxylin only:")
        print(pd.DataFrame({"no guard": guard_outcome(selection, **unguarded),
                            **{f"one stain: {way}": guard_outcome(selection, **{**guard, "one_stain_way": way})
                               for way in ("off", "hematoxylin only")}}).round(3).to_string())
        best, means = choose_one_stain(selection, order_margin=STAIN_GUARD.order_margin,
                                       order_min_density=STAIN_GUARD.order_min_density)
        print("one-stain settings by mean training AJI over the transforms, best first:")
        print(means.head(10).round(4).to_string())
        if any(getattr(STAIN_GUARD, name) != value for name, value in best.items()):
            print(f"the grid's best one-stain settings {best} are not STAIN_GUARD's (the fourth guard took them)")
        _, red_means = choose_one_stain_red(selection, guard=guard)
        print("counterstain red share above which an image is also one-stain (the sixth guard took the best, "
              "and was set aside), by mean training AJI, best first:")
        print(red_means.round(4).to_string())

    if args.only in (None, "pixel"):
        rows = _training_rows("pixel", args, profile, record, kind=PIXEL_SIZE_SELECTION)
        scale, area = references(rows)
        best, means = choose_enlarge_below(rows, scale=scale, area=area)
        print(f"the training images' nucleus scale {scale:.4f} px and area {area:.2f} px; enlarged twice below "
              f"{best}; the best pairs by mean training AJI over the transforms:")
        print(means.sort_values(ascending=False).head(12).round(4).to_string())
        never = enlarge_outcome(rows, scale=scale, area=area, enlarge_below=1.0, area_below=0.0)
        print(pd.DataFrame({"as it is": never, "checked": enlarge_outcome(rows, scale=scale, area=area, **best)}
                           ).round(3).to_string())
        config = (TRAINING_NUCLEUS_SCALE, TRAINING_NUCLEUS_AREA, ENLARGE_BELOW, AREA_BELOW)
        if not np.allclose((scale, area, best["enlarge_below"], best["area_below"]), config, rtol=0, atol=1e-9):
            print(f"these are not the config's {config}: set them in ssimnet/config/constants.py")

    if args.only in (None, "fallback"):
        rows = _training_rows("fallback", args, profile, record, kind=FALLBACK_SELECTION)
        best, table = choose_fallback_below(rows)
        print(f"fall back to the watershed below a confidence of {best}; every threshold, by mean training AJI "
              "over the transforms (and the untransformed images' mean, which the choice may not lower):")
        print(table.round(4).to_string())
        print(pd.DataFrame({"never": fallback_outcome(rows, below=0.0), "chosen": fallback_outcome(rows, below=best)}
                           ).round(3).to_string())
        if best != FALLBACK_BELOW:
            print(f"this is not the config's {FALLBACK_BELOW}: set FALLBACK_BELOW in ssimnet/config/constants.py")
        way, ways = choose_fallback_watershed(rows, below=FALLBACK_BELOW)
        print(f"at {FALLBACK_BELOW}, the fallback's watershed by mean training AJI over the transforms: {way}")
        print(ways.round(4).to_string())

    if args.only in (None, "second"):
        rows = _training_rows("second", args, profile, record, kind=SECOND_OPINION_SELECTION)
        best, table = choose_one_stain_margin(rows)
        print(f"a second opinion as hematoxylin only, kept when the network is surer of it by more than {best} "
              f"(None: never); every margin by mean training AJI over the transforms, the fallback at "
              f"{FALLBACK_BELOW} (and the untransformed images' mean, which the choice may not lower):")
        print(table.round(4).to_string())
        print(pd.DataFrame({"never": second_opinion_outcome(rows, margin=None),
                            "chosen": second_opinion_outcome(rows, margin=best),
                            "chosen, no foreground cap": second_opinion_outcome(rows, margin=best, cap=np.inf),
                            "chosen, pseudo-label cap": second_opinion_outcome(rows, margin=best,
                                                                               pseudo_cap=PSEUDO_CAP)}
                           ).round(3).to_string())
        roots = {"monuseg test": args.monuseg, "tnbc": args.tnbc}  # scored once, as they are
        tasks = [("second", name, str(s.image_path), str(s.label_path), args.seed, args.run_dir, ("none",))
                 for name, root in roots.items() for s in list_samples(root, "test")]
        tested = _run(tasks, args.workers)
        info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
        info.update(record, datasets={name: str(root) for name, root in roots.items()}, one_stain_margin=best)
        save_results(args.out, tested, info, kind=SECOND_OPINION_TEST)
        print(f"on test, as they are, mean Dice and AJI without and with the second opinion at {best}, and with "
              f"the pseudo-label cap {PSEUDO_CAP}:")
        print(pd.DataFrame({f"{name} {score}": second_opinion_outcome(tested, score=score, by="dataset", **how)
                            for score in ("dice", "aji") for name, how in (
                                ("never", {"margin": None}), ("chosen", {"margin": best}),
                                ("pseudo cap", {"margin": best, "pseudo_cap": PSEUDO_CAP}))}).round(4).to_string())

    if args.only in (None, "stress"):
        roots = {"monuseg test": args.monuseg, "tnbc": args.tnbc}
        if args.synthetic:
            synthetic = replace(profile.synthetic, n_train=0, n_test=args.synthetic)
            roots["synthetic test"] = args.run_dir / f"synthetic-{stage_key(synthetic)}"
            if not (roots["synthetic test"] / "manifest.csv").is_file():
                write_synthetic_dataset(roots["synthetic test"], synthetic)
        tasks = [("stress", name, str(s.image_path), str(s.label_path), args.seed, args.run_dir, tuple(TRANSFORMS))
                 for name, root in roots.items() for s in list_samples(root, "test")]
        frame = _run(tasks, args.workers)
        info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
        info.update(record, datasets={name: str(root) for name, root in roots.items()})
        if args.synthetic:
            info["synthetic"] = asdict(synthetic)
        if args.earlier is not None:
            earlier, earlier_info = load_results(args.earlier, kind=STAIN_STRESS)
            kept = earlier[earlier["config"].str.startswith("default, ")]
            renamed = earlier[earlier["config"] == "default"].assign(config=args.earlier_name)
            made = {k: earlier_info[k] for k in ("commit", "dirty", "created", "stain_guard")}
            versions = [{"config": args.earlier_name, **made}, *earlier_info.get("earlier", [])]
            if "fallback_below" in earlier_info:  # the earlier run's default with a fallback threshold, scored then
                versions.append({"config": FALLBACK_CONFIG, **made, "fallback_below": earlier_info["fallback_below"]})
            earlier_rows = pd.concat([renamed, kept]).reindex(columns=frame.columns)  # older rows lack some columns
            # an earlier version with this run's guard whose rows this run repeats is this default: not kept twice
            same = [v["config"] for v in versions if v["stain_guard"] == STAIN_GUARD._asdict()
                    and _same_rows(earlier_rows[earlier_rows["config"] == v["config"]], frame)]
            if same:
                print(f"{', '.join(same)}: the same guard and the same rows as this run's default, not kept twice")
            frame = pd.concat([frame, earlier_rows[~earlier_rows["config"].isin(same)]], ignore_index=True)
            info["earlier"] = [v for v in versions if v["config"] not in same]
        if args.fallback_below is not None:
            frame = pd.concat([frame, with_fallback(frame, below=args.fallback_below, config=FALLBACK_CONFIG)],
                              ignore_index=True)
            info["fallback_below"] = args.fallback_below
        save_results(args.out, frame, info, kind=STAIN_STRESS)
        means = frame.groupby(["dataset", "transform", "config"])[["dice", "aji", "pq", "foreground",
                                                                   "true_foreground"]].mean()
        print(means.mul(100).round(1).to_string())


if __name__ == "__main__":
    main()
