"""The method's stages over a dataset on disk: pseudo labels of a split, then training.

- :func:`build_pseudo_labels` runs :func:`ssimnet.pseudo.labels.pseudo_labels` on every
  image of a split -- images only, it never opens a label file -- in parallel
  worker processes, stores each result under
  ``<run_dir>/pseudo/<split>/<key>/<name>.npz``, then sorts all patches of the
  split by USMI, keeps the fraction alpha and writes ``patches.csv``.
- :func:`train_network` trains SSimNet on them with a checkpoint after every
  epoch (``<run_dir>/train/<key>/``), :func:`train_self_training` adds
  self-training rounds (``<run_dir>/selftrain/<key>/``), and
  :func:`train_supervised` trains the supervised baseline
  (``<run_dir>/supervised/<key>/``).

Each ``key`` is a :func:`ssimnet.runs.store.stage_key` of the settings, the seed
and (for training) the content of the images; each pseudo-label file holds
the digest of its image's pixels and is recomputed when they change.  So a
rerun reuses what is there, and a run directory shared by two datasets never
mixes them.  A bad image does not stop
the others: they are all processed, then every bad one is reported
(:class:`ssimnet.data.DataErrors`).  Training resumes from its checkpoint to
the same weights as an uninterrupted run.
"""

from __future__ import annotations

import copy
import os
import signal
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..baselines import supervised_patches
from ..config import DEFAULT_SEED, PseudoLabelConfig
from ..data import DataError, DataErrors, Sample, check_image, list_samples, read_image, read_sample, write_table
from ..net.checkpoint import load_trainer, save_checkpoint
from ..net.selftrain import self_training_labels
from ..net.train import PatchData, Trainer
from ..predict import predict_probability
from ..pseudo.labels import pseudo_labels
from ..pseudo.purify import select_patches
from ..pseudo.stain import StainFallbackWarning
from .store import (
    PseudoLabelSet,
    array_digest,
    load_pseudo_labels,
    save_pseudo_labels,
    split_digest,
    stage_key,
    stored_digest,
)

if TYPE_CHECKING:
    from ..config import Profile, TrainConfig

__all__ = [
    "pseudo_label_key",
    "build_pseudo_labels",
    "purified_set",
    "load_training_patches",
    "train_network",
    "train_self_training",
    "self_training_patches",
    "train_supervised",
]


def pseudo_label_key(config: PseudoLabelConfig, seed: int) -> str:
    """Short hash of the settings that determine pseudo labels; each image's file also holds its pixels' digest."""
    return stage_key(config, seed, code=("pseudo",))


def _ignore_sigint() -> None:
    """Worker initialiser: Ctrl-C is the parent's to handle, so workers print no traceback of their own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _one_image(job: tuple[Path, Path, PseudoLabelConfig, int]) -> tuple[Path, DataError | None, list[str]]:
    """Pseudo labels of one image, stored at the target unless already there; returns its problem, if any."""
    image_path, target, config, seed = job
    notes: list[str] = []
    try:
        image = check_image(image_path, read_image(image_path), min_side=config.patch_size)
        digest = array_digest(image)
        if target.is_file() and stored_digest(target) == digest:
            return image_path, None, notes
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StainFallbackWarning)
            result = pseudo_labels(image, config, seed=seed)
        notes = [f"{image_path}: {w.message}" for w in caught if issubclass(w.category, StainFallbackWarning)]
        save_pseudo_labels(target, result, image_digest=digest)
    except DataError as exc:
        return image_path, exc, notes
    return image_path, None, notes


def build_pseudo_labels(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    config: PseudoLabelConfig,
    *,
    split: str = "train",
    seed: int = DEFAULT_SEED,
    workers: int = 1,
    progress: bool = True,
) -> PseudoLabelSet:
    """Pseudo labels and purified patch set of every image of one split (see the module docstring).

    Parameters
    ----------
    data_dir : path
        Dataset root in the uniform layout; labels, if present, are not read.
    run_dir : path
        Where ``pseudo/`` goes.
    config : PseudoLabelConfig
    split : str
    seed : int
    workers : int
        Worker processes (1 = in this process).  The result does not depend on it.
    progress : bool
        Show a progress bar on stderr; stain fallbacks are reported there too,
        naming the image.

    Raises
    ------
    DataErrors
        Naming every unreadable, blank or too small image, after the others
        were done.
    """
    samples = list_samples(data_dir, split, labels=False)
    directory = Path(run_dir) / "pseudo" / split / pseudo_label_key(config, seed)
    directory.mkdir(parents=True, exist_ok=True)
    jobs = [(s.image_path, directory / f"{s.name}.npz", config, seed) for s in samples]
    errors: list[DataError] = []
    with tqdm(total=len(jobs), desc=f"pseudo labels ({split})", unit="image", disable=not progress) as bar:

        def done(outcome: tuple[Path, DataError | None, list[str]]) -> None:
            _, error, notes = outcome
            if error is not None:
                errors.append(error)
            for note in notes if progress else ():
                bar.write(f"warning: {note}")
            bar.update()

        if workers > 1:
            pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
            try:
                for outcome in pool.map(_one_image, jobs):
                    done(outcome)
            finally:  # on Ctrl-C, drop the images not started; those running finish their atomic writes
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for job in jobs:
                done(_one_image(job))
    if errors:
        raise DataErrors(errors)

    return purified_set(directory, samples, config, split=split)


def purified_set(directory: Path, samples: list[Sample], config: PseudoLabelConfig, *, split: str) -> PseudoLabelSet:
    """The stored pseudo labels of `samples` in `directory` as a set: every patch by its stored score (USMI),
    the fraction alpha with the lowest kept, listed in ``directory/patches.csv``."""
    rows = []
    for sample in samples:
        for p in load_pseudo_labels(directory / f"{sample.name}.npz").patches:
            rows.append({"image": sample.name, "row": p.corner[0], "col": p.corner[1], "n_components": p.n_components,
                         "mean_hull_area": p.mean_hull_area, "mean_area": p.mean_area, "usmi": p.usmi, "kept": False})
    kept_idx = select_patches([r["usmi"] for r in rows], keep=config.keep_fraction)
    for i in kept_idx:
        rows[i]["kept"] = True
    write_table(directory / "patches.csv", rows)
    return PseudoLabelSet(
        directory=directory,
        split=split,
        names=[s.name for s in samples],
        images=[s.image_path for s in samples],
        kept=[(rows[i]["image"], rows[i]["row"], rows[i]["col"]) for i in kept_idx],
        n_patches=len(rows),
        patch_size=config.patch_size,
    )


def load_training_patches(
    labels: PseudoLabelSet, *, purify: bool, soft_labels: bool, distance_solidity: float | None, boundary_width: int = 0
) -> PatchData:
    """The training patches of a split: the purified set, or every patch when `purify` is False.

    With `distance_solidity`, rim-distance targets are added, with
    `boundary_width` > 0 boundary targets
    (:meth:`ssimnet.net.train.PatchData.from_pseudo_labels`).
    """
    items = {name: (read_image(path), load_pseudo_labels(labels.path(name))) for name, path in zip(labels.names, labels.images)}
    if purify:
        patches = labels.kept
    else:
        patches = [(name, *p.corner) for name, (_, pl) in items.items() for p in pl.patches]
    return PatchData.from_pseudo_labels(items, patches=patches, size=labels.patch_size, soft_labels=soft_labels,
                                        distance_solidity=distance_solidity, boundary_width=boundary_width)


def _fit_with_checkpoints(
    directory: Path,
    config: TrainConfig,
    data: Callable[[], PatchData],
    *,
    seed: int,
    device: str | None,
    restart: bool,
    progress: bool,
    desc: str = "training",
    start: Callable[[], Trainer] | None = None,
) -> tuple[Trainer, Path]:
    """Train to ``config.epochs``, resuming from and writing ``directory/checkpoint.pt`` and ``history.csv``.

    `data` is only called when there is training left to do.  Without a
    checkpoint, training starts from ``start()`` (default: fresh weights).
    """
    checkpoint = directory / "checkpoint.pt"
    if checkpoint.is_file() and not restart:
        trainer = load_trainer(checkpoint, config, device=device)
    elif start is not None:
        trainer = start()
    else:
        trainer = Trainer.new(config, seed=seed, device=device)
    if trainer.epoch < config.epochs:

        def save(t: Trainer) -> None:
            save_checkpoint(checkpoint, t.state())
            write_table(directory / "history.csv", t.history)

        trainer.fit(data(), config.epochs, on_epoch_end=save, progress=progress, desc=desc)
    return trainer, checkpoint


def train_network(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    workers: int = 1,
    restart: bool = False,
    progress: bool = True,
    labels: PseudoLabelSet | None = None,
) -> tuple[Trainer, Path]:
    """Pseudo labels of the training split, then SSimNet training with a checkpoint after every epoch.

    The checkpoint lives in ``<run_dir>/train/<key>/checkpoint.pt``, ``key``
    hashing the pseudo-label and training settings, the seed and the training
    images.  If it exists, training resumes from it (a finished run returns at
    once) unless `restart`.  ``history.csv`` beside it lists the per-epoch
    losses.  Fine-tuning and inference settings do not enter the key.
    `labels`, a training set stored elsewhere (the oracle diagnostics of
    :mod:`ssimnet.runs.attribution`), replaces the pseudo labels; its folder
    enters the key.

    Returns
    -------
    (Trainer, Path)
        The trained network and its checkpoint.
    """
    own = labels is None
    if labels is None:
        labels = build_pseudo_labels(data_dir, run_dir, profile.pseudo, split="train", seed=seed, workers=workers,
                                     progress=progress)
    cfg = profile.train
    parts = (profile.pseudo, cfg, seed, split_digest(data_dir, "train"), *(() if own else (labels.directory.name,)))
    directory = Path(run_dir) / "train" / stage_key(*parts, code=("pseudo", "train"))
    return _fit_with_checkpoints(
        directory, cfg,
        lambda: load_training_patches(labels, purify=cfg.purify, soft_labels=cfg.soft_labels,
                                      distance_solidity=cfg.distance_targets, boundary_width=cfg.boundary_width),
        seed=seed, device=device, restart=restart, progress=progress,
    )


def train_self_training(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    rounds: int | None = None,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    workers: int = 1,
    restart: bool = False,
    progress: bool = True,
) -> list[tuple[Trainer, Path]]:
    """SSimNet training (:func:`train_network`, round 0), then `rounds` rounds of self-training.

    Round ``r`` continues round ``r - 1``'s network and optimiser for
    ``profile.selftrain.epochs`` epochs on pseudo labels rebuilt from
    that network's predictions on the training images
    (:func:`self_training_patches`).  Each round has its checkpoint under
    ``<run_dir>/selftrain/<key>/`` and resumes like :func:`train_network`.
    `rounds` defaults to ``profile.selftrain.rounds``.  No ground truth
    is read.

    Returns
    -------
    list of (Trainer, Path)
        Every round's network and checkpoint, round 0 first.
    """
    cfg = profile.train
    rounds = profile.selftrain.rounds if rounds is None else rounds
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    result = [train_network(data_dir, run_dir, profile, seed=seed, device=device, workers=workers, restart=restart,
                            progress=progress)]
    labels = build_pseudo_labels(data_dir, run_dir, profile.pseudo, split="train", seed=seed, workers=workers,
                                 progress=False)
    images = split_digest(data_dir, "train")
    for r in range(1, rounds + 1):
        previous = result[-1][0]
        config = replace(cfg, epochs=previous.epoch + profile.selftrain.epochs)
        directory = Path(run_dir) / "selftrain" / stage_key(profile.pseudo, cfg, seed, r,
                                                            profile.selftrain.epochs, profile.inference.min_size, images,
                                                            code=("pseudo", "train", "selftrain"))

        def data(previous: Trainer = previous) -> PatchData:
            return self_training_patches(previous, labels, profile, progress=progress)

        def start(previous: Trainer = previous, config: TrainConfig = config) -> Trainer:
            return Trainer.from_state(copy.deepcopy(previous.state()), config, device=device)

        result.append(_fit_with_checkpoints(directory, config, data, seed=seed, device=device, restart=restart,
                                            progress=progress, desc=f"self-training round {r}", start=start))
    return result


def self_training_patches(trainer: Trainer, labels: PseudoLabelSet, profile: Profile, *, progress: bool = True) -> PatchData:
    """The training patches of one self-training round: pseudo labels rebuilt from `trainer`'s predictions.

    Every training image is predicted by `trainer`; its first-round pseudo
    labels are replaced by :func:`ssimnet.net.selftrain.self_training_labels`, and
    the patches are purified by USMI over the whole split as in the first
    round (all of them when ``profile.train.purify`` is off).  No ground truth
    is read.
    """
    cfg = profile.train
    items = {}
    for name, path in tqdm(list(zip(labels.names, labels.images)), desc="self-training labels", unit="image",
                           disable=not progress):
        image = read_image(path)
        probability = predict_probability(trainer.model, image, tile=labels.patch_size, overlap=profile.inference.tile_overlap,
                                          device=trainer.device)
        items[name] = (image, self_training_labels(load_pseudo_labels(labels.path(name)), probability, profile.pseudo,
                                                   min_size=profile.inference.min_size))
    patches = [(name, *p.corner) for name, (_, pl) in items.items() for p in pl.patches]
    if cfg.purify:
        usmi = [p.usmi for _, pl in items.values() for p in pl.patches]
        patches = [patches[i] for i in select_patches(usmi, keep=profile.pseudo.keep_fraction)]
    return PatchData.from_pseudo_labels(items, patches=patches, size=labels.patch_size, soft_labels=cfg.soft_labels,
                                        distance_solidity=cfg.distance_targets, boundary_width=cfg.boundary_width)


def train_supervised(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    seed: int = DEFAULT_SEED,
    device: str | None = None,
    restart: bool = False,
    progress: bool = True,
) -> tuple[Trainer, Path]:
    """The supervised U-Net baseline: the SSimNet network and schedule trained on the training split's labels.

    The only function of the project that reads training labels
    (:func:`ssimnet.baselines.supervised_patches`).  Checkpoints as in
    :func:`train_network`, under ``<run_dir>/supervised/<key>/``.
    """
    cfg = profile.pseudo
    directory = Path(run_dir) / "supervised" / stage_key("supervised", cfg.patch_size, cfg.patch_stride,
                                                         profile.train, seed,
                                                         split_digest(data_dir, "train", labels=True),
                                                         code=("supervised",))

    def data() -> PatchData:
        items = {s.name: read_sample(s) for s in list_samples(data_dir, "train")}
        return supervised_patches(items, size=cfg.patch_size, stride=cfg.patch_stride)

    return _fit_with_checkpoints(directory, profile.train, data, seed=seed, device=device, restart=restart,
                                 progress=progress, desc="training (supervised)")
