"""Scoring on a dataset on disk: pseudo-label quality, and every method's segmentation of a split.

Ground truth is read here, and only to score: after the prediction, never by
the method.  Each evaluation writes its 16-bit label PNGs and its scores (one
row per image, :func:`ssimnet.metrics.score`) under a folder keyed by the
method's settings, the code it runs and the content of the split's images and
labels (:func:`ssimnet.runs.store.split_digest`); a finished folder is read
back, and a change to the metrics alone scores the stored labels again.

- :func:`evaluate_network` -- SSimNet's label-free segmentation
  (``<run_dir>/predictions/<key>/``);
- :func:`evaluate_supervised` -- plain prediction of a network, the supervised
  baseline (``<run_dir>/predictions/<key>/``);
- :func:`evaluate_baseline` -- a label-free baseline
  (``<run_dir>/baselines/<method>/<key>/``);
- :func:`pseudo_label_quality` -- stored pseudo labels against the ground truth.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ..baselines import DETERMINISTIC, IMAGE_METHODS, segment_baseline
from ..config import DEFAULT_SEED
from ..data import list_samples, read_image, read_label, write_label, write_table
from ..fingerprint import code_fingerprint
from ..metrics import score
from ..net.checkpoint import weights_digest
from ..predict import instances, predict_probability
from ..pseudo.candidates import label_candidates
from .pipeline import build_pseudo_labels
from .store import PseudoLabelSet, load_pseudo_labels, split_digest, stage_key

if TYPE_CHECKING:
    import pandas as pd

    from ..config import InferenceConfig, Profile
    from ..net.onnxnet import OnnxNetwork
    from ..net.train import Trainer
    from ..tool.normalize import StainNormalizer

__all__ = ["pseudo_label_quality", "segment_split", "evaluate_network", "evaluate_supervised", "evaluate_baseline"]


def pseudo_label_quality(data_dir: str | os.PathLike[str], labels: PseudoLabelSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score stored pseudo labels against the ground truth of their split -- evaluation only.

    The candidate map ``P`` is scored as an instance map
    (:func:`ssimnet.pseudo.candidates.label_candidates`), the FCM map by pixels only.

    Returns
    -------
    images : DataFrame
        One row per image: ``fcm_precision``, ``fcm_recall``, ``fcm_dice`` (of
        the raw mask) and ``precision``, ``recall``, ``dice``, ``aji``,
        ``aji_plus``, ``pq`` of ``P``.
    patches : DataFrame
        One row per patch (``patches.csv`` plus ``precision``, ``recall``,
        ``dice``, ``aji`` of ``P`` inside the patch).
    """
    import pandas as pd

    patches = pd.read_csv(labels.directory / "patches.csv")
    size = labels.patch_size
    truth = {s.name: s.label_path for s in list_samples(data_dir, labels.split)}
    image_rows, patch_scores = [], []
    for name in labels.names:
        result = load_pseudo_labels(labels.path(name))
        true = read_label(truth[name])
        candidates = label_candidates(result.candidates)
        fcm, full = score(true, result.fcm.astype(np.int32)), score(true, candidates)
        image_rows.append({"image": name, "fcm_precision": fcm.precision, "fcm_recall": fcm.recall, "fcm_dice": fcm.dice,
                           "precision": full.precision, "recall": full.recall, "dice": full.dice, "aji": full.aji,
                           "aji_plus": full.aji_plus, "pq": full.pq, "stain_fallback": result.stain_fallback})
        for row in patches[patches.image == name].itertuples():
            crop = (slice(row.row, row.row + size), slice(row.col, row.col + size))
            s = score(true[crop], candidates[crop])
            patch_scores.append({"index": row.Index, "precision": s.precision, "recall": s.recall, "dice": s.dice, "aji": s.aji})
    scores = pd.DataFrame(patch_scores).set_index("index").sort_index()
    return pd.DataFrame(image_rows), patches.join(scores)


def segment_split(
    directory: Path,
    data_dir: str | os.PathLike[str],
    split: str,
    segment: Callable[[str, Path], np.ndarray],
    *,
    progress: bool,
    desc: str,
) -> pd.DataFrame:
    """Run ``segment(name, image_path)`` on every image of a split; write label PNGs, ``segmented.csv`` and
    the scores.

    `directory` is keyed by what segments (its settings and code); the
    scores go to ``scores-<fingerprint>.csv``, keyed by the metrics' code
    (:func:`ssimnet.fingerprint.code_fingerprint` of ``"score"``).  Scores
    already made are read back; labels already made (``segmented.csv`` lists
    them with the seconds each took) are scored again without segmenting when
    only the metrics changed.  Ground truth is read only to score, after the
    prediction.  The ``seconds`` column times `segment`.
    """
    import pandas as pd

    scores = directory / f"scores-{code_fingerprint('score')}.csv"
    if scores.is_file():
        return pd.read_csv(scores)
    samples = list_samples(data_dir, split)
    done = directory / "segmented.csv"
    if not done.is_file():
        timed = []
        for sample in tqdm(samples, desc=desc, unit="image", disable=not progress):
            start = time.perf_counter()
            label = segment(sample.name, sample.image_path)
            timed.append({"image": sample.name, "seconds": time.perf_counter() - start})
            write_label(directory / f"{sample.name}.png", label)
        write_table(done, timed)
    seconds = dict(pd.read_csv(done)[["image", "seconds"]].itertuples(index=False))
    rows = [{"image": s.name, **score(read_label(s.label_path), read_label(directory / f"{s.name}.png")).as_dict(),
             "seconds": seconds[s.name]} for s in samples]
    write_table(scores, rows)
    return pd.DataFrame(rows)


def evaluate_network(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    trainer: Trainer | OnnxNetwork,
    *,
    split: str = "test",
    settings: InferenceConfig | None = None,
    finetune_epochs: int | None = None,
    method: str | None = None,
    seed: int = DEFAULT_SEED,
    workers: int = 1,
    progress: bool = True,
    tta: bool | None = None,
    normalizer: StainNormalizer | None = None,
    max_tile: int | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Segment every image of a split label-free (:class:`ssimnet.tool.segmenter.Segmenter`) and score it
    against its ground truth.

    The network segments with `settings` (default: ``profile.inference``,
    how the book's chapters segment), with `finetune_epochs`, `method` (the
    instance method), `tta` and `max_tile` (the largest tile) replacing
    theirs where given.  Pseudo labels of the split come from
    :func:`ssimnet.runs.pipeline.build_pseudo_labels` (cached) when it fine-tunes.
    The ``seconds`` column is the wall time of fine-tuning plus prediction of
    the image (its pseudo labels are computed beforehand and cached).  With a
    fitted `normalizer`, the network sees each image normalised by it
    (:mod:`ssimnet.tool.normalize`) instead of as the settings say.

    Returns
    -------
    (DataFrame, Path)
        Per-image scores and the predictions folder.
    """
    from ..tool.segmenter import Segmenter

    overrides = {"finetune_epochs": finetune_epochs, "instances": method, "tta": tta, "tile_size": max_tile}
    settings = dataclasses.replace(settings or profile.inference, **{k: v for k, v in overrides.items() if v is not None})
    segmenter = Segmenter(trainer, settings, pseudo=profile.pseudo)
    directory = Path(run_dir) / "predictions" / stage_key(
        weights_digest(trainer), getattr(trainer, "config", None), profile.pseudo, settings, seed, split, split_digest(data_dir, split, labels=True),
        normalizer.settings() if normalizer is not None else None, code=("segment", "evaluate"))
    labels = None
    if settings.finetune_epochs > 0 and not (directory / "segmented.csv").is_file():  # only fine-tuning needs them
        labels = build_pseudo_labels(data_dir, run_dir, profile.pseudo, split=split, seed=seed, workers=workers,
                                     progress=progress)

    def segment(name: str, image_path: Path) -> np.ndarray:
        pseudo = load_pseudo_labels(labels.path(name)) if labels is not None else None
        return segmenter.segment(read_image(image_path), seed=seed, pseudo=pseudo, normalizer=normalizer,
                                 measure=False).labels

    return segment_split(directory, data_dir, split, segment, progress=progress, desc=f"segmenting ({split})"), directory


def evaluate_supervised(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    trainer: Trainer,
    *,
    split: str = "test",
    method: str = "cc",
    progress: bool = True,
) -> tuple[pd.DataFrame, Path]:
    """Score a network on a split by plain prediction (no pseudo labels, no fine-tuning): the supervised baseline.

    Instances by connected components as in the paper's protocol, or by
    another `method` of :func:`ssimnet.predict.nuclei.instances`, with the profile's
    inference settings; output under ``<run_dir>/predictions/<key>/`` like
    :func:`evaluate_network`.
    """
    cfg = profile.inference
    directory = Path(run_dir) / "predictions" / stage_key("plain", weights_digest(trainer), cfg.tile_overlap, cfg.min_size,
                                                          cfg.max_hole, split, method,
                                                          split_digest(data_dir, split, labels=True),
                                                          code=("segment", "evaluate"))

    def segment(name: str, image_path: Path) -> np.ndarray:
        prob = predict_probability(trainer.model, read_image(image_path), tile=profile.pseudo.patch_size,
                                   overlap=cfg.tile_overlap, device=trainer.device)
        return instances(prob, method=method, min_size=cfg.min_size, max_hole=cfg.max_hole)

    return segment_split(directory, data_dir, split, segment, progress=progress, desc=f"segmenting ({split})"), directory


def evaluate_baseline(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    method: str,
    profile: Profile,
    *,
    split: str = "test",
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, Path]:
    """Run a label-free baseline (:func:`ssimnet.baselines.segment_baseline`) on a split and score it.

    Predictions and their scores go to ``<run_dir>/baselines/<method>/<key>/``,
    ``key`` hashing the baseline settings, the seed (not for a deterministic
    method), the split and its content; a finished folder is read back.
    """
    if method not in IMAGE_METHODS:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(IMAGE_METHODS)}")
    cfg = profile.inference
    settings = dataclasses.replace(profile.baselines, runs=0, network_runs=0)  # how many runs is not a setting of one
    directory = Path(run_dir) / "baselines" / method / stage_key(
        method, settings, cfg.min_size, cfg.max_hole, None if method in DETERMINISTIC else seed, split,
        split_digest(data_dir, split, labels=True), code=("baseline", "evaluate"))

    def segment(name: str, image_path: Path) -> np.ndarray:
        return segment_baseline(read_image(image_path), method, profile.baselines, seed=seed, min_size=cfg.min_size,
                                max_hole=cfg.max_hole, device=device)

    return segment_split(directory, data_dir, split, segment, progress=progress, desc=f"{method} ({split})"), directory
