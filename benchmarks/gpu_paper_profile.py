"""SSimNet in the `paper` profile on a lent GPU, within a wall-clock budget; scored back on this machine.

A GPU session here is short (minutes) and can carry at most 64 MiB, so the
experiment runs in three steps:

``pack DATA PACK``
    (here) The dataset's images as lossless WebP and, per image, only the
    pseudo-label *candidates* of the run directory's cached pseudo labels
    (``ssimnet pseudo-labels --profile paper``); soft labels, Voronoi labels
    and USMI are recomputed from them, which the step checks against the
    cached files.  No ground truth is packed.
``run PACK OUT --budget S``
    (on the GPU) Unpack, train the `paper` profile's U-Net from the pseudo
    labels (150 epochs, or as many as fit in the budget, less a reserve for
    what follows), predict the training and test images, fine-tune per test
    image (paper Sec. 2.2) and, time permitting, run one self-training round;
    each stage's probability maps go to ``OUT`` as uint8 (p * 255, rounded).
``score OUT DATA RESULTS``
    (here) Instances by every method of :data:`ssimnet.config.INSTANCE_METHODS`
    from the probability maps, scored against DATA's ground truth; a table
    is printed and ``scores.csv`` written.

The probability maps are quantised to 1/255 for the transfer, so scores can
differ from a run that keeps float maps by pixels whose probability lies
within 1/510 of a threshold.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import lzma
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from ssimnet.config import INSTANCE_METHODS, get_profile
from ssimnet.data import list_samples, read_image, read_label, write_image, write_table
from ssimnet.pseudo import labels_from_candidates
from ssimnet.runs.pipeline import build_pseudo_labels, load_training_patches, pseudo_label_key, self_training_patches
from ssimnet.runs.store import array_digest, load_pseudo_labels, save_pseudo_labels

SPLITS = ("train", "test")
STAGES = ("train", "test", "test_ft", "train_st1", "test_st1")
#: Instance methods (and marker heights) scored by `sweep`: the distance watershed at its default, the learned one at three.
SWEEP_METHODS = (("distance", None), ("learned", 0.05), ("learned", 0.1), ("learned", 0.2))


def _rebuild(candidates: np.ndarray, stains: np.ndarray, fallback: bool, config) -> dict:
    return {"candidates": candidates, "stains": stains, "stain_fallback": fallback,
            **labels_from_candidates(candidates, config)}


def _pack_one(job: tuple[Path, Path, Path]) -> str:
    from PIL import Image

    image_path, pseudo_path, dst = job
    image = read_image(image_path)
    stored = load_pseudo_labels(pseudo_path)
    config = get_profile("paper").pseudo
    rebuilt = _rebuild(stored.candidates, stored.stains, stored.stain_fallback, config)
    if not (np.array_equal(rebuilt["soft"], stored.soft) and np.array_equal(rebuilt["voronoi"], stored.voronoi)
            and rebuilt["patches"] == stored.patches):
        raise SystemExit(f"{pseudo_path}: soft/Voronoi/USMI recomputed from the candidates differ from the stored ones")
    webp = dst / f"{image_path.stem}.webp"
    if not webp.is_file():
        Image.fromarray(image).save(webp, format="WEBP", lossless=True, quality=100, method=6)
    if not np.array_equal(np.asarray(Image.open(webp).convert("RGB")), image):
        raise SystemExit(f"{webp}: does not decode to the pixels of {image_path}")
    np.savez_compressed(dst / f"{image_path.stem}.npz", candidates=stored.candidates, stains=stored.stains,
                        stain_fallback=stored.stain_fallback, image_digest=array_digest(image))
    return image_path.stem


def pack(data: Path, run: Path, dst: Path, workers: int, labels: bool) -> None:
    config = get_profile("paper").pseudo
    jobs = []
    for split in SPLITS:
        (dst / split).mkdir(parents=True, exist_ok=True)
        pseudo_dir = run / "pseudo" / split / pseudo_label_key(config, 0)
        for s in list_samples(data, split, labels=False):
            jobs.append((s.image_path, pseudo_dir / f"{s.name}.npz", dst / split))
        if labels:  # ground truth, used only to score on the GPU machine (the `sweep` step)
            (dst / "labels" / split).mkdir(parents=True, exist_ok=True)
            for s in list_samples(data, split):
                shutil.copyfile(s.label_path, dst / "labels" / split / s.label_path.name)
    with ProcessPoolExecutor(workers) as pool:
        names = list(pool.map(_pack_one, jobs))
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"packed {len(names)} images into {dst}: {size / 2**20:.1f} MiB")


def _unpack_one(job: tuple[Path, Path, Path]) -> None:
    from PIL import Image

    from ssimnet.pseudo import PseudoLabels

    src, image_dst, pseudo_dst = job
    image = np.asarray(Image.open(src.with_suffix(".webp")).convert("RGB"))
    write_image(image_dst, image)
    z = np.load(src.with_suffix(".npz"))
    parts = _rebuild(z["candidates"], z["stains"], bool(z["stain_fallback"]), get_profile("paper").pseudo)
    empty = np.zeros((1, 1, 3), np.uint8)  # the hematoxylin image is not needed for training
    save_pseudo_labels(pseudo_dst, PseudoLabels(hematoxylin=empty, fcm=parts["candidates"], **parts),
                       image_digest=str(z["image_digest"]))


def _save_maps(path: Path, maps: dict[str, np.ndarray]) -> None:
    """Write probability maps as uint8 in an LZMA-compressed ``.npz.xz`` (about 20 % smaller than zlib)."""
    with lzma.open(path, "wb") as f:
        np.savez(f, **{k: np.round(v * 255).astype(np.uint8) for k, v in maps.items()})


def _load_maps(path: Path) -> dict[str, np.ndarray]:
    with lzma.open(path, "rb") as f, np.load(io.BytesIO(f.read())) as z:
        return {k: z[k].astype(np.float32) / 255 for k in z.files}


def _unpack(packed: Path) -> tuple[Path, dict]:
    """Unpack to a dataset root and run directory under $TMPDIR; return the root and each split's pseudo labels."""
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "ssimnet-gpu"
    shutil.rmtree(work, ignore_errors=True)
    data, run_dir = work / "data", work / "run"
    config = get_profile("paper").pseudo
    jobs = []
    for split in SPLITS:
        (data / split / "images").mkdir(parents=True)
        pseudo_dir = run_dir / "pseudo" / split / pseudo_label_key(config, 0)
        pseudo_dir.mkdir(parents=True)
        for src in sorted((packed / split).glob("*.webp")):
            jobs.append((src, data / split / "images" / f"{src.stem}.png", pseudo_dir / f"{src.stem}.npz"))
        if (packed / "labels" / split).is_dir():  # ground truth, for scoring on that machine only
            shutil.copytree(packed / "labels" / split, data / split / "labels")
    with ProcessPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(_unpack_one, jobs))
    return data, {s: build_pseudo_labels(data, run_dir, config, split=s, progress=False) for s in SPLITS}


def run(packed: Path, out: Path, budget: float, reserve: float, device: str | None, profile_name: str,
        epochs: int | None) -> None:
    import torch

    from ssimnet.net.train import Trainer
    from ssimnet.predict import predict_probability, segment_image

    start = time.perf_counter()
    elapsed = lambda: time.perf_counter() - start  # noqa: E731
    torch.backends.cudnn.benchmark = True
    profile = get_profile(profile_name)
    if epochs is not None:
        profile = replace(profile, train=replace(profile.train, epochs=epochs))
    if profile.pseudo != get_profile("paper").pseudo:
        raise SystemExit(f"profile {profile.name!r} has other pseudo-label settings than the packed (paper) ones")
    data, labels = _unpack(packed)
    info: dict[str, object] = {"profile": profile.name, "torch": torch.__version__, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                               "unpack_s": elapsed(), "budget_s": budget, "reserve_s": reserve}
    print(f"unpacked in {elapsed():.0f} s; {len(labels['train'].kept)} training patches", flush=True)

    cfg = profile.train
    patches = load_training_patches(labels["train"], purify=cfg.purify, soft_labels=cfg.soft_labels,
                                    distance_solidity=cfg.distance_targets)
    trainer = Trainer.new(profile.train, seed=0, device=device)
    while trainer.epoch < profile.train.epochs and elapsed() < budget - reserve:
        record = trainer.run_epoch(patches)
        print(f"epoch {record['epoch']:3d} loss {record['loss']:.4f} lr {record['lr']:.2e} {record['seconds']:.1f} s", flush=True)
    write_table(out / "history.csv", trainer.history)
    info.update(epochs=trainer.epoch, train_s=sum(r["seconds"] for r in trainer.history))

    def predict(model_trainer: Trainer, split: str) -> dict[str, np.ndarray]:
        return {name: predict_probability(model_trainer.model, read_image(path), tile=profile.pseudo.patch_size,
                                          overlap=profile.inference.tile_overlap, device=model_trainer.device)
                for name, path in zip(labels[split].names, labels[split].images)}

    t = time.perf_counter()
    for split in SPLITS:
        _save_maps(out / f"prob_{split}.npz.xz", predict(trainer, split))
    info["predict_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tuned = {}
    for name, path in zip(labels["test"].names, labels["test"].images):
        tuned[name] = segment_image(read_image(path), trainer, profile.inference, pseudo_config=profile.pseudo,
                                    pseudo=load_pseudo_labels(labels["test"].path(name))).probability
    _save_maps(out / "prob_test_ft.npz.xz", tuned)
    info["finetune_s"] = time.perf_counter() - t
    print(f"predicted and fine-tuned at {elapsed():.0f} s", flush=True)

    if elapsed() < budget - 0.6 * reserve:
        try:  # needs scikit-image >= 0.26 there; the maps above are kept whatever happens here
            t = time.perf_counter()
            data_st = self_training_patches(trainer, labels["train"], profile, progress=False)
            config = replace(profile.train, epochs=trainer.epoch + profile.selftrain.epochs)
            second = Trainer.from_state(copy.deepcopy(trainer.state()), config, device=device)
            second.fit(data_st, config.epochs, progress=False)
            for split in SPLITS:
                _save_maps(out / f"prob_{split}_st1.npz.xz", predict(second, split))
            info["selftrain_s"] = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 -- report and keep what was measured
            info["selftrain_error"] = repr(exc)
    info["total_s"] = elapsed()
    (out / "info.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info), flush=True)


def score_maps(out: Path, data: Path, results: Path) -> None:
    import pandas as pd

    from ssimnet.metrics import score
    from ssimnet.predict import instances

    rows = []
    for stage in STAGES:
        path = out / f"prob_{stage}.npz.xz"
        if not path.is_file():
            continue
        split = stage.split("_")[0]
        truth = {s.name: s.label_path for s in list_samples(data, split)}
        methods = ["cc"] if stage == "test_ft" else list(INSTANCE_METHODS)
        for name, prob in _load_maps(path).items():
            true = read_label(truth[name])
            for method in methods:
                rows.append({"stage": stage, "method": method, "image": name,
                             **score(true, instances(prob, method=method)).as_dict()})
    table = pd.DataFrame(rows)
    results.mkdir(parents=True, exist_ok=True)
    write_table(results / "scores.csv", rows)
    summary = table.groupby(["stage", "method"], sort=False)[["dice", "aji", "aji_plus", "pq"]].mean() * 100
    print(summary.round(1).to_string())


def _score_image(job: tuple) -> list[dict]:
    from ssimnet.metrics import score
    from ssimnet.predict import instances

    split, name, probability, distance, label_path = job
    true = read_label(label_path)
    rows = []
    for method, h in SWEEP_METHODS:
        if method == "learned" and distance is None:
            continue
        label = instances(probability, method=method, h=h, distance=distance)
        rows.append({"split": split, "image": name, "method": method, "h": h, **score(true, label).as_dict()})
    return rows


def sweep(packed: Path, out: Path, configs: list[tuple[float, float]], seed: int, budget: float,
          device: str | None, epochs: int | None = None) -> None:
    """Learned-separation settings on the `cpu` profile's network: train, predict, score every image on both splits."""
    import torch

    from ssimnet.net.train import Trainer
    from ssimnet.predict import predict_maps

    start = time.perf_counter()
    torch.backends.cudnn.benchmark = True
    data, labels = _unpack(packed)
    base = get_profile("cpu")
    if epochs is not None:
        base = replace(base, train=replace(base.train, epochs=epochs))
    rows: list[dict] = []
    for weight, solidity in configs:
        if time.perf_counter() - start > budget:
            print(f"budget spent; skipped weight {weight}, solidity {solidity}", flush=True)
            continue
        t = time.perf_counter()
        profile = replace(base, train=replace(base.train, distance_weight=weight, distance_solidity=solidity))
        patches = load_training_patches(labels["train"], purify=profile.train.purify,
                                        soft_labels=profile.train.soft_labels,
                                        distance_solidity=profile.train.distance_targets)
        trainer = Trainer.new(profile.train, seed=seed, device=device).fit(patches, profile.train.epochs, progress=False)
        jobs = []
        for split in SPLITS:
            for sample in list_samples(data, split):
                maps = predict_maps(trainer.model, read_image(sample.image_path), tile=profile.pseudo.patch_size,
                                    overlap=profile.inference.tile_overlap, device=trainer.device)
                jobs.append((split, sample.name, maps.probability, maps.distance, sample.label_path))
        with ProcessPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
            for image_rows in pool.map(_score_image, jobs):
                rows += [{"weight": weight, "solidity": solidity, "seed": seed, **r} for r in image_rows]
        write_table(out / "sweep.csv", rows)
        print(f"weight {weight} solidity {solidity}: {time.perf_counter() - t:.0f} s; last loss "
              f"{trainer.history[-1]}", flush=True)
    import pandas as pd

    table = pd.DataFrame(rows).fillna({"h": -1})
    print((table.groupby(["weight", "solidity", "method", "h", "split"])[["dice", "aji", "pq"]].mean() * 100)
          .round(1).unstack("split").to_string(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("data", type=Path)
    p.add_argument("run", type=Path, help="run directory holding the cached paper-profile pseudo labels")
    p.add_argument("dst", type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--labels", action="store_true", help="also pack the ground truth, for `sweep`")
    r = sub.add_parser("run")
    r.add_argument("packed", type=Path)
    r.add_argument("out", type=Path)
    r.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run")
    r.add_argument("--reserve", type=float, default=150.0, help="seconds kept after training for prediction and the rest")
    r.add_argument("--device", default=None)
    r.add_argument("--profile", default="paper", help="training settings (a dry run on a CPU: smoke)")
    r.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    w = sub.add_parser("sweep")
    w.add_argument("packed", type=Path)
    w.add_argument("out", type=Path)
    w.add_argument("--configs", nargs="+", default=["1:0.9", "0:0.9", "3:0.9", "1:0"],
                   help="distance_weight:distance_solidity pairs, in order")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--budget", type=float, default=240.0, help="no new configuration starts after this many seconds")
    w.add_argument("--device", default=None)
    w.add_argument("--epochs", type=int, default=None, help="override the cpu profile's epochs (a dry run)")
    s = sub.add_parser("score")
    s.add_argument("out", type=Path)
    s.add_argument("data", type=Path)
    s.add_argument("results", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.data, args.run, args.dst, args.workers, args.labels)
    elif args.command == "run":
        args.out.mkdir(parents=True, exist_ok=True)
        run(args.packed, args.out, args.budget, args.reserve, args.device, args.profile, args.epochs)
    elif args.command == "sweep":
        args.out.mkdir(parents=True, exist_ok=True)
        configs = [tuple(float(v) for v in c.split(":")) for c in args.configs]
        sweep(args.packed, args.out, configs, args.seed, args.budget, args.device, args.epochs)
    else:
        score_maps(args.out, args.data, args.results)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
