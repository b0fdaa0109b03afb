"""The paper's evaluation protocol on a dataset on disk: every method, repeated runs, all results collected.

:func:`run_methods` runs each method of Table 1 (and the Table 3 variants)
``runs`` or ``network_runs`` times with seeds ``seed, seed + 1, ...`` (paper
Sec. 3.1) and scores it on a split; :func:`collect_results` gathers every
method's per-image test scores, and :func:`export_results` saves them with
their provenance (:mod:`ssimnet.book.results`).  Every stage is cached on disk
(:mod:`ssimnet.runs.store`), so after the book's notebooks this only reads results
back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..baselines import DETERMINISTIC, IMAGE_METHODS, METHOD_NAMES, TABLE1_METHODS
from ..book.results import RESULTS, provenance, save_results
from ..config import ABLATION, DEFAULT_SEED
from .evaluate import evaluate_baseline, evaluate_network, evaluate_supervised, pseudo_label_quality
from .pipeline import build_pseudo_labels, train_network, train_supervised

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Profile, PseudoLabelConfig, StainReference
    from ..net.train import Trainer
    from ..tool.normalize import StainNormalizer

__all__ = ["MethodRuns", "run_methods", "collect_results", "export_results", "pseudo_label_study", "candidate_study", "fit_stain_reference",
           "normalization_study", "pooled_aji_terms"]


@dataclass(frozen=True)
class MethodRuns:
    """Repeated runs of one method on one split (paper Sec. 3.1 protocol).

    Attributes
    ----------
    method : str
        Key of :data:`ssimnet.baselines.METHOD_NAMES`.
    scores : list of DataFrame
        Per-image scores of each run (as written to its scores file).
    folders : list of Path
        Where each run's predictions lie.
    seconds : float
        Compute time of all runs: training (from the training history) plus
        per-image segmentation, whether computed now or read back from disk.
    """

    method: str
    scores: list[pd.DataFrame]
    folders: list[Path]
    seconds: float

    def means(self) -> list[dict[str, float]]:
        """The dataset figure (mean over images) of each run."""
        return [frame.drop(columns=["image"]).mean().to_dict() for frame in self.scores]


def run_methods(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    methods: Sequence[str],
    *,
    split: str = "test",
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, MethodRuns]:
    """Run each method ``runs`` (per-image methods) or ``network_runs`` (trained networks) times and score it.

    Methods are keys of :data:`ssimnet.baselines.METHOD_NAMES`: the label-free
    baselines, ``"supervised"``, ``"ssimnet_noft"`` and ``"ssimnet"`` (with
    per-image fine-tuning; the paper's connected-component instances).  Run
    ``r`` uses seed ``seed + r``.
    """
    out: dict[str, MethodRuns] = {}
    for method in methods:
        if method not in METHOD_NAMES:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHOD_NAMES)}")
        if method in IMAGE_METHODS:
            n = 1 if method in DETERMINISTIC else profile.baselines.runs
        else:
            n = profile.baselines.network_runs
        frames, folders, seconds = [], [], 0.0
        for run in range(n):
            run_seed = seed + run
            if method in IMAGE_METHODS:
                frame, folder = evaluate_baseline(data_dir, run_dir, method, profile, split=split, seed=run_seed,
                                                  device=device, progress=progress)
            elif method == "supervised":
                trainer, _ = train_supervised(data_dir, run_dir, profile, seed=run_seed, device=device, progress=progress)
                frame, folder = evaluate_supervised(data_dir, run_dir, profile, trainer, split=split, progress=progress)
            else:
                trainer, _ = train_network(data_dir, run_dir, profile, seed=run_seed, device=device, workers=workers,
                                           progress=progress)
                frame, folder = evaluate_network(
                    data_dir, run_dir, profile, trainer, split=split, method="cc", seed=run_seed, workers=workers,
                    finetune_epochs=0 if method == "ssimnet_noft" else profile.inference.finetune_epochs, progress=progress,
                )
            if method not in IMAGE_METHODS:
                seconds += sum(h["seconds"] for h in trainer.history)
            seconds += float(frame.seconds.sum())
            frames.append(frame)
            folders.append(folder)
        out[method] = MethodRuns(method, frames, folders, seconds)
    return out


def collect_results(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    workers: int = 1,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-image test scores of every Table 1 method and Table 3 variant, and each method's compute time.

    Runs :func:`run_methods` for :data:`ssimnet.baselines.TABLE1_METHODS` and
    each :data:`ssimnet.config.ABLATION` variant.

    Returns
    -------
    per_image : DataFrame
        One row per method, run and image: ``method, run, seed, image`` and
        the columns of the runs' scores files.
    seconds : dict
        Method -> compute time of all its runs (training plus segmentation).
    """
    import pandas as pd

    found = run_methods(data_dir, run_dir, profile, TABLE1_METHODS, seed=seed, device=device, workers=workers, progress=progress)
    for variant in ABLATION:
        if variant.key not in found:
            found[variant.key] = run_methods(data_dir, run_dir, variant.profile(profile), [variant.method], seed=seed,
                                             device=device, workers=workers, progress=progress)[variant.method]
    frames = [frame.assign(method=key, run=r, seed=seed + r)
              for key, runs in found.items() for r, frame in enumerate(runs.scores)]
    per_image = pd.concat(frames, ignore_index=True)
    first = ["method", "run", "seed", "image"]
    per_image = per_image[first + [c for c in per_image.columns if c not in first]]
    return per_image, {key: round(runs.seconds, 1) for key, runs in found.items()}


def export_results(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    workers: int = 1,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Collect a run's results and save them with their provenance under ``run_dir/results``.

    The stage wall times come from ``run_dir/timings.json``, which ``ssimnet
    book`` writes after each notebook.  Returns ``(per_image, provenance)``.
    """
    per_image, compute = collect_results(data_dir, run_dir, profile, seed=seed, device=device, workers=workers,
                                         progress=progress)
    timings = Path(run_dir) / "timings.json"
    stages = json.loads(timings.read_text()) if timings.is_file() else {}
    info = provenance(profile, data_dir=data_dir, seed=seed, device=device, stage_seconds=stages, compute_seconds=compute)
    save_results(Path(run_dir) / "results", per_image, info, kind=RESULTS)
    return per_image, info


def pseudo_label_study(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    configs: Mapping[str, PseudoLabelConfig],
    *,
    split: str = "train",
    seed: int = DEFAULT_SEED,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Pseudo-label quality of each pseudo-label configuration on a split.

    For each named configuration, the split's pseudo labels are built
    (cached like any others) and their candidates scored against the split's
    ground truth by :func:`ssimnet.runs.evaluate.pseudo_label_quality` -- to
    choose a setting on the training split, never to build labels.

    Returns
    -------
    DataFrame
        One row per configuration and image: ``config``, ``image`` and the
        scores of :func:`ssimnet.runs.evaluate.pseudo_label_quality`, plus
        ``kept_patches``, the image's patches in the purified set.
    """
    import pandas as pd

    frames = []
    for name, config in configs.items():
        labels = build_pseudo_labels(data_dir, run_dir, config, split=split, seed=seed, workers=workers,
                                     progress=progress)
        images, patches = pseudo_label_quality(data_dir, labels)
        kept = patches[patches.kept].groupby("image").size()
        frames.append(images.assign(config=name, kept_patches=images.image.map(kept).fillna(0).astype(int)))
    per_image = pd.concat(frames, ignore_index=True)
    return per_image[["config", "image", *[c for c in per_image.columns if c not in ("config", "image")]]]


def candidate_study(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    methods: Sequence[str],
    *,
    split: str = "train",
    seed: int = DEFAULT_SEED,
    workers: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Pseudo-label quality of each candidate generator (:mod:`ssimnet.pseudo.generators`) on a split:
    :func:`pseudo_label_study` of the profile's pseudo labels with ``candidate_method`` set to each of `methods`,
    its ``config`` column named ``candidates``."""
    configs = {method: replace(profile.pseudo, candidate_method=method) for method in methods}
    study = pseudo_label_study(data_dir, run_dir, configs, split=split, seed=seed, workers=workers, progress=progress)
    return study.rename(columns={"config": "candidates"})


def fit_stain_reference(data_dir: str | os.PathLike[str], split: str = "train", *, seed: int = DEFAULT_SEED,
                        progress: bool = True) -> StainReference:
    """The stain reference of a split's images (:meth:`ssimnet.tool.normalize.StainNormalizer.fit`); labels are not read."""
    from tqdm import tqdm

    from ..data import list_samples, read_image
    from ..tool.normalize import StainNormalizer

    samples = list_samples(data_dir, split, labels=False)
    images = (read_image(s.image_path) for s in tqdm(samples, desc="stain reference", unit="image", disable=not progress))
    return StainNormalizer(seed=seed).fit(images).reference()


def normalization_study(
    datasets: dict[str, tuple[str | os.PathLike[str], str]],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    trainer: Trainer,
    normalizers: dict[str, StainNormalizer | None],
    *,
    max_tiles: dict[str, int] | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
) -> pd.DataFrame:
    """One network's scores with each stain normalisation, and the classical watershed's, on several datasets.

    Parameters
    ----------
    datasets : {name: (data_dir, split)}
        Where to score, e.g. ``{"train": (monuseg, "train"), "tnbc": (tnbc, "test")}``.
    normalizers : {config name: StainNormalizer or None}
        What the network sees (None: the image as it is); the profile's
        instance method, no fine-tuning.
    max_tiles : {config name: int}, optional
        Configurations predicted in tiles up to this size, as ``ssimnet
        segment`` does (the others in patch-size tiles).

    Returns
    -------
    DataFrame
        One row per configuration, dataset and image: ``config``, ``split``
        (the dataset's name), ``image`` and the scores; the classical
        watershed's rows have config ``"classical watershed"``.
    """
    import pandas as pd

    frames = []
    for name, (data_dir, split) in datasets.items():
        for config, normalizer in normalizers.items():
            scores, _ = evaluate_network(data_dir, run_dir, profile, trainer, split=split, finetune_epochs=0, seed=seed,
                                         progress=progress, normalizer=normalizer,
                                         max_tile=(max_tiles or {}).get(config))
            frames.append(scores.assign(config=config, split=name))
        scores, _ = evaluate_baseline(data_dir, run_dir, "watershed", profile, split=split, seed=seed, progress=progress)
        frames.append(scores.assign(config="classical watershed", split=name))
    per_image = pd.concat(frames, ignore_index=True)
    return per_image[["config", "split", "image", *[c for c in per_image.columns if c not in ("config", "split", "image")]]]


def pooled_aji_terms(directory: Path, data_dir: str | os.PathLike[str], split: str) -> pd.DataFrame:
    """AJI's intersection and union (:func:`ssimnet.metrics.aji_sums`) of every image of a split segmented into
    `directory` (by :func:`ssimnet.runs.evaluate.segment_split`): columns ``image``, ``aji_intersection``,
    ``aji_union``; their sums over the split give AJI pooled over its pixels."""
    import pandas as pd

    from ..data import list_samples, read_label
    from ..metrics import aji_sums

    rows = []
    for sample in list_samples(data_dir, split):
        inter, union = aji_sums(read_label(sample.label_path), read_label(Path(directory) / f"{sample.name}.png"))
        rows.append({"image": sample.name, "aji_intersection": inter, "aji_union": union})
    return pd.DataFrame(rows)

