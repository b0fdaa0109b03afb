"""Run artefacts on disk: pseudo labels, training checkpoints, predictions and their scores.

Everything a run writes lives under one run directory, each stage in a
folder named by a hash of the settings that determine it, so that a rerun
with unchanged settings reuses the stage and changed settings never mix with
old results:

- ``pseudo/<split>/<key>/`` -- :func:`build_pseudo_labels`
- ``train/<key>/checkpoint.pt`` and ``history.csv`` -- :func:`train_network`
- ``predictions/<key>/*.png`` and ``scores.csv`` -- :func:`evaluate_network`
  (and :func:`evaluate_supervised`)
- ``supervised/<key>/checkpoint.pt`` -- :func:`train_supervised`
- ``baselines/<method>/<key>/*.png`` and ``scores.csv`` -- :func:`evaluate_baseline`
- ``results/`` -- every method's test scores with their provenance,
  :func:`collect_results` and :func:`save_results` (the committed reference
  results under ``results/<profile>/`` have the same files)

:func:`build_pseudo_labels` runs :func:`ssimnet.pseudo.pseudo_labels` on every
image of a split -- images only, it never opens a label file -- in parallel
worker processes, and stores each result as ``<name>.npz`` under::

    <run_dir>/pseudo/<split>/<key>/

where ``key`` hashes the pseudo-label settings, the seed and the package
version: a rerun with the same settings reuses what is there (an image whose
pixels changed is recomputed), and other settings never mix with it.  It then
sorts all patches of the split by USMI, keeps the fraction alpha, and writes
``patches.csv`` (one row per patch: image, corner, USMI, kept).  All writes
are atomic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

from . import __version__
from .config import PseudoLabelConfig
from .data import DataError, atomic_path, list_samples, read_image, read_label, read_sample, write_label, write_table
from .metrics import score
from .purify import PatchStats, select_patches
from .pseudo import PseudoLabels, pseudo_labels

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd

    from .config import Profile, TrainConfig
    from .train import PatchData, Trainer

__all__ = [
    "PseudoLabelSet",
    "pseudo_label_key",
    "build_pseudo_labels",
    "load_pseudo_labels",
    "save_pseudo_labels",
    "pseudo_label_quality",
    "load_training_patches",
    "save_checkpoint",
    "load_checkpoint",
    "train_network",
    "train_self_training",
    "self_training_patches",
    "SELECTION_FILES",
    "save_selection",
    "load_selection",
    "train_supervised",
    "evaluate_network",
    "evaluate_supervised",
    "evaluate_baseline",
    "MethodRuns",
    "run_methods",
    "collect_results",
    "provenance",
    "save_results",
    "export_results",
    "load_results",
]


@dataclass(frozen=True)
class PseudoLabelSet:
    """The pseudo labels of one split, as stored.

    Attributes
    ----------
    directory : Path
        ``<run_dir>/pseudo/<split>/<key>``.
    split : str
    names : list of str
        Image names, sorted.
    images : list of Path
        The image files, in the same order.
    kept : list of (name, row, col)
        The purified patches, by ascending USMI.
    n_patches : int
        All patches of the split, before purification.
    patch_size : int
        Side of a patch in pixels.
    """

    directory: Path
    split: str
    names: list[str]
    images: list[Path]
    kept: list[tuple[str, int, int]]
    n_patches: int
    patch_size: int

    def path(self, name: str) -> Path:
        """The ``.npz`` file of one image."""
        return self.directory / f"{name}.npz"


def _key(*parts: object) -> str:
    blob = json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(f"{blob}{__version__}".encode()).hexdigest()[:12]


def pseudo_label_key(config: PseudoLabelConfig, seed: int) -> str:
    """Short hash of everything that determines the pseudo labels."""
    return _key(config, seed)


def _image_digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]


def save_pseudo_labels(path: str | os.PathLike[str], result: PseudoLabels, *, image_digest: str = "") -> None:
    """Store one image's pseudo labels as a compressed ``.npz``, atomically."""
    patches = np.array(
        [(p.corner[0], p.corner[1], p.n_components, p.mean_hull_area, p.mean_area, p.usmi) for p in result.patches],
        dtype=np.float64,
    ).reshape(-1, 6)
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            stains=result.stains,
            stain_fallback=result.stain_fallback,
            hematoxylin=result.hematoxylin,
            fcm=result.fcm,
            candidates=result.candidates,
            soft=result.soft,
            voronoi=result.voronoi,
            patches=patches,
            image_digest=image_digest,
        )


def load_pseudo_labels(path: str | os.PathLike[str]) -> PseudoLabels:
    """Read what :func:`save_pseudo_labels` wrote."""
    path = Path(path)
    try:
        with np.load(path) as z:
            patches = [
                PatchStats((int(r), int(c)), int(n), float(h), float(a), float(u)) for r, c, n, h, a, u in z["patches"]
            ]
            return PseudoLabels(
                stains=z["stains"],
                stain_fallback=bool(z["stain_fallback"]),
                hematoxylin=z["hematoxylin"],
                fcm=z["fcm"],
                candidates=z["candidates"],
                soft=z["soft"],
                voronoi=z["voronoi"],
                patches=patches,
            )
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(path, f"not a pseudo-label file ({exc})") from None


def _stored_digest(path: Path) -> str | None:
    try:
        with np.load(path) as z:
            return str(z["image_digest"])
    except (OSError, KeyError, ValueError):
        return None


def _one_image(job: tuple[Path, Path, PseudoLabelConfig, int]) -> Path:
    image_path, target, config, seed = job
    image = read_image(image_path)
    digest = _image_digest(image)
    if target.is_file() and _stored_digest(target) == digest:
        return target
    try:
        result = pseudo_labels(image, config, seed=seed)
    except ValueError as exc:
        raise DataError(image_path, str(exc)) from None
    save_pseudo_labels(target, result, image_digest=digest)
    return target


def build_pseudo_labels(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    config: PseudoLabelConfig,
    *,
    split: str = "train",
    seed: int = 0,
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
        Show a progress bar on stderr.

    Raises
    ------
    DataError
        For an unreadable image or one smaller than a patch (naming the file).
    """
    samples = list_samples(data_dir, split, labels=False)
    directory = Path(run_dir) / "pseudo" / split / pseudo_label_key(config, seed)
    directory.mkdir(parents=True, exist_ok=True)
    jobs = [(s.image_path, directory / f"{s.name}.npz", config, seed) for s in samples]
    bar = tqdm(total=len(jobs), desc=f"pseudo labels ({split})", unit="image", disable=not progress)
    try:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_one_image, jobs):
                    bar.update()
        else:
            for job in jobs:
                _one_image(job)
                bar.update()
    finally:
        bar.close()

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


def pseudo_label_quality(data_dir: str | os.PathLike[str], labels: PseudoLabelSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score stored pseudo labels against the ground truth of their split -- evaluation only.

    The candidate map ``P`` is scored as an instance map (its 8-connected
    components), the FCM map by pixels only.

    Returns
    -------
    images : DataFrame
        One row per image: ``fcm_precision``, ``fcm_recall``, ``fcm_dice`` and
        ``precision``, ``recall``, ``dice``, ``aji``, ``pq`` of ``P``.
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
        instances = ndi.label(result.candidates, structure=np.ones((3, 3)))[0]
        fcm, full = score(true, result.fcm.astype(np.int32)), score(true, instances)
        image_rows.append({"image": name, "fcm_precision": fcm.precision, "fcm_recall": fcm.recall, "fcm_dice": fcm.dice,
                           "precision": full.precision, "recall": full.recall, "dice": full.dice, "aji": full.aji,
                           "pq": full.pq, "stain_fallback": result.stain_fallback})
        for row in patches[patches.image == name].itertuples():
            crop = (slice(row.row, row.row + size), slice(row.col, row.col + size))
            s = score(true[crop], instances[crop])
            patch_scores.append({"index": row.Index, "precision": s.precision, "recall": s.recall, "dice": s.dice, "aji": s.aji})
    scores = pd.DataFrame(patch_scores).set_index("index").sort_index()
    return pd.DataFrame(image_rows), patches.join(scores)



# --------------------------------------------------------------------------- training data and checkpoints


def load_training_patches(
    labels: PseudoLabelSet, *, purify: bool = True, soft_labels: bool = True, distance_solidity: float | None = None
) -> PatchData:
    """The training patches of a split: the purified set (or every patch when `purify` is False).

    With `distance_solidity`, rim-distance targets are added
    (:meth:`ssimnet.train.PatchData.from_pseudo_labels`).
    """
    import pandas as pd

    from .train import PatchData

    items = {name: (read_image(path), load_pseudo_labels(labels.path(name))) for name, path in zip(labels.names, labels.images)}
    if purify:
        patches = labels.kept
    else:
        table = pd.read_csv(labels.directory / "patches.csv")
        patches = [(r.image, int(r.row), int(r.col)) for r in table.itertuples()]
    return PatchData.from_pseudo_labels(items, patches=patches, size=labels.patch_size, soft_labels=soft_labels,
                                        distance_solidity=distance_solidity)


def save_checkpoint(path: str | os.PathLike[str], state: dict) -> None:
    """Write a training checkpoint (:meth:`ssimnet.train.Trainer.state`) atomically."""
    import torch

    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    Raises
    ------
    DataError
        If the file is missing or is not an ssimnet checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds on a foreign file
        raise DataError(path, f"not an ssimnet checkpoint ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != "ssimnet-checkpoint-1":
        raise DataError(path, "not an ssimnet checkpoint (no ssimnet-checkpoint-1 format tag)")
    return state


def _claim(directory: Path, data_dir: str | os.PathLike[str], split: str) -> None:
    """Record which images a cached stage folder was made from, or check that they are the same.

    Keys hash settings, not data, so one run directory used for two datasets
    would otherwise mix their results; ``source.json`` (the split and its
    image names) turns that into a clear error.

    Raises
    ------
    DataError
        If `directory` holds results made from other images.
    """
    record = {"split": split, "images": [s.name for s in list_samples(data_dir, split, labels=False)]}
    path = directory / "source.json"
    if path.is_file():
        if json.loads(path.read_text()) != record:
            raise DataError(directory, f"holds results for other {split} images than those in {data_dir}; use another run directory")
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


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
    from .train import Trainer

    checkpoint = directory / "checkpoint.pt"
    if checkpoint.is_file() and not restart:
        trainer = Trainer.from_state(load_checkpoint(checkpoint), config, device=device)
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
    seed: int = 0,
    device: str | None = None,
    workers: int = 1,
    restart: bool = False,
    progress: bool = True,
) -> tuple[Trainer, Path]:
    """Pseudo labels of the training split, then SSimNet training with a checkpoint after every epoch.

    The checkpoint lives in ``<run_dir>/train/<key>/checkpoint.pt``, ``key``
    hashing the pseudo-label and training settings and the seed.  If it
    exists, training resumes from it (a finished run returns at once) unless
    `restart`.  ``history.csv`` beside it lists the per-epoch losses.
    Fine-tuning and inference settings do not enter the key.

    Returns
    -------
    (Trainer, Path)
        The trained network and its checkpoint.
    """
    labels = build_pseudo_labels(data_dir, run_dir, profile.pseudo, split="train", seed=seed, workers=workers, progress=progress)
    directory = Path(run_dir) / "train" / _key(profile.pseudo, profile.train.training_settings(), seed)
    _claim(directory, data_dir, "train")
    return _fit_with_checkpoints(
        directory, profile.train,
        lambda: load_training_patches(labels, purify=profile.train.purify, soft_labels=profile.train.soft_labels,
                                      distance_solidity=profile.train.distance_targets),
        seed=seed, device=device, restart=restart, progress=progress,
    )


def train_self_training(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    rounds: int | None = None,
    seed: int = 0,
    device: str | None = None,
    workers: int = 1,
    restart: bool = False,
    progress: bool = True,
) -> list[tuple[Trainer, Path]]:
    """SSimNet training (:func:`train_network`, round 0), then `rounds` rounds of self-training.

    Round ``r`` continues round ``r - 1``'s network and optimiser for
    ``profile.train.selftrain_epochs`` epochs on pseudo labels rebuilt from
    that network's predictions on the training images
    (:func:`ssimnet.selftrain.self_training_labels`), purified by USMI over the
    whole split as in the first round.  Each round has its checkpoint under
    ``<run_dir>/selftrain/<key>/`` and resumes like :func:`train_network`.
    No ground truth is read.

    Returns
    -------
    list of (Trainer, Path)
        Every round's network and checkpoint, round 0 first.
    """
    import copy
    from dataclasses import replace

    from .train import PatchData, Trainer

    cfg = profile.train
    rounds = cfg.selftrain_rounds if rounds is None else rounds
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    result = [train_network(data_dir, run_dir, profile, seed=seed, device=device, workers=workers, restart=restart,
                            progress=progress)]
    labels = build_pseudo_labels(data_dir, run_dir, profile.pseudo, split="train", seed=seed, workers=workers, progress=progress)
    for r in range(1, rounds + 1):
        previous = result[-1][0]
        config = replace(cfg, epochs=previous.epoch + cfg.selftrain_epochs)
        directory = Path(run_dir) / "selftrain" / _key(profile.pseudo, cfg.training_settings(), seed, r,
                                                       cfg.selftrain_epochs, cfg.min_size)
        _claim(directory, data_dir, "train")

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
    labels are replaced by :func:`ssimnet.selftrain.self_training_labels`, and
    the patches are purified by USMI over the whole split as in the first
    round (all of them when ``profile.train.purify`` is off).  No ground truth
    is read.
    """
    from .infer import predict_probability
    from .selftrain import self_training_labels
    from .train import PatchData

    cfg = profile.train
    items = {}
    for name, path in tqdm(list(zip(labels.names, labels.images)), desc="self-training labels", unit="image",
                           disable=not progress):
        image = read_image(path)
        probability = predict_probability(trainer.model, image, tile=labels.patch_size, overlap=cfg.tile_overlap,
                                          device=trainer.device)
        items[name] = (image, self_training_labels(load_pseudo_labels(labels.path(name)), probability, profile.pseudo,
                                                   min_size=cfg.min_size))
    patches = [(name, *p.corner) for name, (_, pl) in items.items() for p in pl.patches]
    if cfg.purify:
        usmi = [p.usmi for _, pl in items.values() for p in pl.patches]
        patches = [patches[i] for i in select_patches(usmi, keep=profile.pseudo.keep_fraction)]
    return PatchData.from_pseudo_labels(items, patches=patches, size=labels.patch_size, soft_labels=cfg.soft_labels,
                                        distance_solidity=cfg.distance_targets)


def train_supervised(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    seed: int = 0,
    device: str | None = None,
    restart: bool = False,
    progress: bool = True,
) -> tuple[Trainer, Path]:
    """The supervised U-Net baseline: the SSimNet network and schedule trained on the training split's labels.

    The only function of the project that reads training labels
    (:func:`ssimnet.baselines.supervised_patches`).  Checkpoints as in
    :func:`train_network`, under ``<run_dir>/supervised/<key>/``.
    """
    from .baselines import supervised_patches

    cfg = profile.pseudo
    directory = Path(run_dir) / "supervised" / _key("supervised", cfg.patch_size, cfg.patch_stride, profile.train.training_settings(), seed)

    _claim(directory, data_dir, "train")

    def data() -> PatchData:
        items = {s.name: read_sample(s) for s in list_samples(data_dir, "train")}
        return supervised_patches(items, size=cfg.patch_size, stride=cfg.patch_stride)

    return _fit_with_checkpoints(directory, profile.train, data, seed=seed, device=device, restart=restart,
                                 progress=progress, desc="training (supervised)")


def _weights_digest(trainer: Trainer) -> str:
    return hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in trainer.model.state_dict().values())).hexdigest()


def _segment_split(
    directory: Path,
    data_dir: str | os.PathLike[str],
    split: str,
    segment: Callable[[str, Path], np.ndarray],
    *,
    progress: bool,
    desc: str,
) -> pd.DataFrame:
    """Run ``segment(name, image_path)`` on every image of a split; write label PNGs and ``scores.csv``.

    An existing ``scores.csv`` is read back instead.  Ground truth is read only
    to score, after the prediction.  The ``seconds`` column times `segment`.
    """
    import pandas as pd

    _claim(directory, data_dir, split)
    if (directory / "scores.csv").is_file():
        return pd.read_csv(directory / "scores.csv")
    rows = []
    for sample in tqdm(list_samples(data_dir, split), desc=desc, unit="image", disable=not progress):
        start = time.perf_counter()
        label = segment(sample.name, sample.image_path)
        seconds = time.perf_counter() - start
        write_label(directory / f"{sample.name}.png", label)
        rows.append({"image": sample.name, **score(read_label(sample.label_path), label).as_dict(), "seconds": seconds})
    write_table(directory / "scores.csv", rows)
    return pd.DataFrame(rows)


def evaluate_network(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    trainer: Trainer,
    *,
    split: str = "test",
    finetune_epochs: int | None = None,
    method: str | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    tta: bool = False,
) -> tuple[pd.DataFrame, Path]:
    """Segment every image of a split label-free and score it against its ground truth.

    Pseudo labels of the split come from :func:`build_pseudo_labels` (cached);
    predictions are written as 16-bit label PNGs under
    ``<run_dir>/predictions/<key>/`` with ``scores.csv`` (one row per image),
    ``key`` hashing the network's weights and the fine-tuning and instance
    settings; an existing ``scores.csv`` there is read back instead of
    recomputing.  Ground truth is read only to score.  The ``seconds`` column
    is the wall time of fine-tuning plus prediction of the image (its pseudo
    labels are computed beforehand and cached).

    Returns
    -------
    (DataFrame, Path)
        Per-image scores and the predictions folder.
    """
    from .infer import segment_image

    epochs = profile.train.finetune_epochs if finetune_epochs is None else finetune_epochs
    method = method or profile.train.instances
    directory = Path(run_dir) / "predictions" / _key(_weights_digest(trainer), profile.pseudo, profile.train, epochs, method, seed, split,
                                                       *(["tta"] if tta else []))
    cached = (directory / "scores.csv").is_file()
    labels = None if cached else build_pseudo_labels(data_dir, run_dir, profile.pseudo, split=split, seed=seed,
                                                     workers=workers, progress=progress)

    def segment(name: str, image_path: Path) -> np.ndarray:
        result = segment_image(read_image(image_path), trainer, profile, finetune_epochs=epochs, method=method,
                               seed=seed, pseudo=load_pseudo_labels(labels.path(name)), tta=tta)
        return result.label

    return _segment_split(directory, data_dir, split, segment, progress=progress, desc=f"segmenting ({split})"), directory


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
    another `method` of :func:`ssimnet.infer.instances` with its defaults
    (:data:`ssimnet.config.INSTANCE_METHODS`); output under
    ``<run_dir>/predictions/<key>/`` like :func:`evaluate_network`.
    """
    from .infer import instances, predict_probability

    cfg = profile.train
    extra = () if method == "cc" else (method,)  # "cc" keeps the key it always had
    directory = Path(run_dir) / "predictions" / _key("plain", _weights_digest(trainer), cfg.tile_overlap, cfg.min_size,
                                                     split, *extra)

    def segment(name: str, image_path: Path) -> np.ndarray:
        prob = predict_probability(trainer.model, read_image(image_path), tile=profile.pseudo.patch_size,
                                   overlap=cfg.tile_overlap, device=trainer.device)
        return instances(prob, method=method, min_size=cfg.min_size)

    return _segment_split(directory, data_dir, split, segment, progress=progress, desc=f"segmenting ({split})"), directory


def evaluate_baseline(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    method: str,
    profile: Profile,
    *,
    split: str = "test",
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, Path]:
    """Run a label-free baseline (:func:`ssimnet.baselines.segment_baseline`) on a split and score it.

    Predictions and ``scores.csv`` go to ``<run_dir>/baselines/<method>/<key>/``,
    ``key`` hashing the baseline settings, the seed (not for a deterministic
    method) and the split; a finished folder is read back.
    """
    from .baselines import DETERMINISTIC, IMAGE_METHODS, segment_baseline

    if method not in IMAGE_METHODS:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(IMAGE_METHODS)}")
    cfg = profile.train
    settings = dataclasses.replace(profile.baselines, runs=0, network_runs=0)  # how many runs is not a setting of one
    directory = Path(run_dir) / "baselines" / method / _key(method, settings, cfg.min_size, None if method in DETERMINISTIC else seed, split)

    def segment(name: str, image_path: Path) -> np.ndarray:
        return segment_baseline(read_image(image_path), method, profile.baselines, seed=seed, min_size=cfg.min_size, device=device)

    return _segment_split(directory, data_dir, split, segment, progress=progress, desc=f"{method} ({split})"), directory


@dataclass(frozen=True)
class MethodRuns:
    """Repeated runs of one method on one split (paper Sec. 3.1 protocol).

    Attributes
    ----------
    method : str
        Key of :data:`ssimnet.baselines.METHOD_NAMES`.
    scores : list of DataFrame
        Per-image scores of each run (as written to its ``scores.csv``).
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
    seed: int = 0,
    device: str | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, MethodRuns]:
    """Run each method ``runs`` (per-image methods) or ``network_runs`` (trained networks) times and score it.

    Methods are keys of :data:`ssimnet.baselines.METHOD_NAMES`: the label-free
    baselines, ``"supervised"``, ``"ssimnet_noft"`` and ``"ssimnet"`` (with
    per-image fine-tuning; the paper's connected-component instances).  Run
    ``r`` uses seed ``seed + r``.  Every stage is cached on disk, so a rerun
    reads the results back.
    """
    from .baselines import DETERMINISTIC, IMAGE_METHODS, METHOD_NAMES

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
                trainer, _ = train_network(data_dir, run_dir, profile, seed=run_seed, device=device, workers=workers, progress=progress)
                frame, folder = evaluate_network(
                    data_dir, run_dir, profile, trainer, split=split, method="cc", seed=run_seed, workers=workers,
                    finetune_epochs=0 if method == "ssimnet_noft" else profile.train.finetune_epochs, progress=progress,
                )
            if method not in IMAGE_METHODS:
                seconds += sum(h["seconds"] for h in trainer.history)
            seconds += float(frame.seconds.sum())
            frames.append(frame)
            folders.append(folder)
        out[method] = MethodRuns(method, frames, folders, seconds)
    return out


# --------------------------------------------------------------------------- reference results

#: Files of a results folder (:func:`save_results`).
RESULT_FILES: tuple[str, ...] = ("per_image.csv", "runs.csv", "provenance.json")


def collect_results(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    seed: int = 0,
    device: str | None = None,
    workers: int = 1,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-image test scores of every Table 1 method and Table 3 variant, and each method's compute time.

    Runs :func:`run_methods` for :data:`ssimnet.baselines.TABLE1_METHODS` and
    each :data:`ssimnet.config.ABLATION` variant (every stage is cached, so
    after the book's notebooks this only reads results back).

    Returns
    -------
    per_image : DataFrame
        One row per method, run and image: ``method, run, seed, image`` and
        the columns of the runs' ``scores.csv``.
    seconds : dict
        Method -> compute time of all its runs (training plus segmentation).
    """
    import pandas as pd

    from .baselines import TABLE1_METHODS
    from .config import ABLATION

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


def _git_commit(directory: Path) -> dict[str, object]:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def provenance(
    profile: Profile,
    *,
    data_dir: str | os.PathLike[str],
    seed: int,
    device: str | None = None,
    stage_seconds: dict[str, float] | None = None,
    compute_seconds: dict[str, float] | None = None,
) -> dict[str, object]:
    """What produced a set of results: code version, settings, data, hardware, libraries and times.

    ``stage_seconds`` are wall times of the book's notebooks in the run that
    collected the results (stages cached by an earlier run take little time
    there); ``compute_seconds`` are each method's training and segmentation
    times, measured when they were computed.
    """
    import platform
    from datetime import datetime, timezone
    from importlib import metadata

    import torch

    from .train import resolve_device

    resolved = resolve_device(device)
    libraries = {}
    for name in ("numpy", "scipy", "scikit-image", "scikit-learn", "scikit-fuzzy", "pandas", "torch"):
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    data = Path(data_dir)
    return {
        "ssimnet": __version__,
        **_git_commit(Path(__file__).resolve().parent),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": profile.name,
        "seed": seed,
        "parameters": dataclasses.asdict(profile),
        "data": {"name": data.name, "test_images": len(list_samples(data, "test", labels=False))},
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "memory_gb": round(memory / 2**30, 1) if memory else None,
            "device": str(resolved),
            "gpu": torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else None,
            "torch_threads": torch.get_num_threads(),
        },
        "python": platform.python_version(),
        "libraries": libraries,
        "stage_seconds": dict(stage_seconds or {}),
        "compute_seconds": dict(compute_seconds or {}),
    }


def save_results(directory: str | os.PathLike[str], per_image: pd.DataFrame, info: dict[str, object]) -> Path:
    """Write a results folder: ``per_image.csv``, ``runs.csv`` (dataset means per method and run), ``provenance.json``.

    Each file is written atomically; ``runs.csv`` is derived from
    ``per_image.csv`` by :func:`ssimnet.report.run_means`.
    """
    from .report import run_means

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "per_image.csv") as tmp:
        per_image.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(directory / "runs.csv") as tmp:
        run_means(per_image).to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(directory / "provenance.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
    return directory


def export_results(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    profile: Profile,
    *,
    seed: int = 0,
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
    save_results(Path(run_dir) / "results", per_image, info)
    return per_image, info


def load_results(directory: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, object]]:
    """Read a results folder written by :func:`save_results`; returns ``(per_image, provenance)``.

    Raises
    ------
    DataError
        If a file is missing or unreadable, a column is missing, or
        ``runs.csv`` does not agree with the means of ``per_image.csv``.
    """
    import pandas as pd

    from .report import SCORE_COLUMNS, run_means

    directory = Path(directory)
    for name in RESULT_FILES:
        if not (directory / name).is_file():
            raise DataError(directory / name, "results file not found")
    try:
        per_image = pd.read_csv(directory / "per_image.csv")
        runs = pd.read_csv(directory / "runs.csv")
        info = json.loads((directory / "provenance.json").read_text())
    except (ValueError, OSError) as exc:
        raise DataError(directory, f"unreadable results: {exc}") from None
    missing = [c for c in ("method", "run", "seed", "image", *SCORE_COLUMNS) if c not in per_image.columns]
    if missing:
        raise DataError(directory / "per_image.csv", f"missing columns {', '.join(missing)}")
    expected = run_means(per_image)
    if list(runs.columns) != list(expected.columns) or len(runs) != len(expected) or not np.allclose(
        runs[list(SCORE_COLUMNS)].to_numpy(float), expected[list(SCORE_COLUMNS)].to_numpy(float), atol=1e-5
    ):
        raise DataError(directory / "runs.csv", "does not match the means of per_image.csv")
    return per_image, info


#: Files of a results folder holding the "Beyond the paper" selection study:
#: per-image scores (one row per config, split, run and image) and their provenance.
SELECTION_FILES: tuple[str, ...] = ("selection_per_image.csv", "selection_provenance.json")


def save_selection(directory: str | os.PathLike[str], per_image: pd.DataFrame, info: dict[str, object]) -> Path:
    """Write the selection study's per-image scores and provenance (:func:`provenance`), each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / SELECTION_FILES[0]) as tmp:
        per_image.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(directory / SELECTION_FILES[1]) as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
    return directory


def load_selection(directory: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, object]]:
    """Read what :func:`save_selection` wrote; returns ``(per_image, provenance)``.

    Raises
    ------
    DataError
        If a file is missing or unreadable, or a column is missing.
    """
    import pandas as pd

    from .report import SCORE_COLUMNS

    directory = Path(directory)
    for name in SELECTION_FILES:
        if not (directory / name).is_file():
            raise DataError(directory / name, "selection results not found")
    try:
        per_image = pd.read_csv(directory / SELECTION_FILES[0])
        info = json.loads((directory / SELECTION_FILES[1]).read_text())
    except (ValueError, OSError) as exc:
        raise DataError(directory, f"unreadable selection results: {exc}") from None
    missing = [c for c in ("config", "split", "run", "seed", "image", *SCORE_COLUMNS) if c not in per_image.columns]
    if missing:
        raise DataError(directory / SELECTION_FILES[0], f"missing columns {', '.join(missing)}")
    return per_image, info
