"""Run artefacts on disk: pseudo labels, training checkpoints, predictions and their scores.

Everything a run writes lives under one run directory, each stage in a
folder named by a hash of the settings that determine it, so that a rerun
with unchanged settings reuses the stage and changed settings never mix with
old results:

- ``pseudo/<split>/<key>/`` -- :func:`build_pseudo_labels`
- ``train/<key>/checkpoint.pt`` and ``history.csv`` -- :func:`train_network`
- ``predictions/<key>/*.png`` and ``scores.csv`` -- :func:`evaluate_network`

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
from .data import DataError, atomic_path, list_samples, read_image, read_label, write_label, write_table
from .metrics import score
from .purify import PatchStats, select_patches
from .pseudo import PseudoLabels, pseudo_labels

if TYPE_CHECKING:
    import pandas as pd

    from .config import Profile
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
    "evaluate_network",
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


def load_training_patches(labels: PseudoLabelSet, *, purify: bool = True, soft_labels: bool = True) -> PatchData:
    """The training patches of a split: the purified set (or every patch when `purify` is False)."""
    import pandas as pd

    from .config import Profile
    from .train import PatchData, Trainer

    items = {name: (read_image(path), load_pseudo_labels(labels.path(name))) for name, path in zip(labels.names, labels.images)}
    if purify:
        patches = labels.kept
    else:
        table = pd.read_csv(labels.directory / "patches.csv")
        patches = [(r.image, int(r.row), int(r.col)) for r in table.itertuples()]
    return PatchData.from_pseudo_labels(items, patches=patches, size=labels.patch_size, soft_labels=soft_labels)


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
    from .train import Trainer

    labels = build_pseudo_labels(data_dir, run_dir, profile.pseudo, split="train", seed=seed, workers=workers, progress=progress)
    directory = Path(run_dir) / "train" / _key(profile.pseudo, profile.train.training_settings(), seed)
    checkpoint = directory / "checkpoint.pt"
    if checkpoint.is_file() and not restart:
        trainer = Trainer.from_state(load_checkpoint(checkpoint), profile.train, device=device)
    else:
        trainer = Trainer.new(profile.train, seed=seed, device=device)
    if trainer.epoch < profile.train.epochs:
        data = load_training_patches(labels, purify=profile.train.purify, soft_labels=profile.train.soft_labels)

        def save(t: Trainer) -> None:
            save_checkpoint(checkpoint, t.state())
            write_table(directory / "history.csv", t.history)

        trainer.fit(data, profile.train.epochs, on_epoch_end=save, progress=progress)
    return trainer, checkpoint


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
    import pandas as pd

    from .infer import segment_image

    epochs = profile.train.finetune_epochs if finetune_epochs is None else finetune_epochs
    method = method or profile.train.instances
    weights = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in trainer.model.state_dict().values())).hexdigest()
    directory = Path(run_dir) / "predictions" / _key(weights, profile.pseudo, profile.train, epochs, method, seed, split)
    if (directory / "scores.csv").is_file():
        return pd.read_csv(directory / "scores.csv"), directory
    labels = build_pseudo_labels(data_dir, run_dir, profile.pseudo, split=split, seed=seed, workers=workers, progress=progress)
    truth = {s.name: s.label_path for s in list_samples(data_dir, split)}
    rows = []
    for name, image_path in tqdm(list(zip(labels.names, labels.images)), desc=f"segmenting ({split})", unit="image", disable=not progress):
        image = read_image(image_path)
        start = time.perf_counter()
        result = segment_image(image, trainer, profile, finetune_epochs=epochs, method=method,
                               seed=seed, pseudo=load_pseudo_labels(labels.path(name)))
        seconds = time.perf_counter() - start
        write_label(directory / f"{name}.png", result.label)
        rows.append({"image": name, **score(read_label(truth[name]), result.label).as_dict(), "seconds": seconds})
    write_table(directory / "scores.csv", rows)
    return pd.DataFrame(rows), directory
