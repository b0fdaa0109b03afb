"""Levers of better pseudo labels: chosen on held-out training images, then scored on test and TNBC.

Every configuration is trained label-free (``cpu`` profile) on 24 of the 30
MoNuSeg training images; the other six (every fifth image by name, from the
third) are *held out* of training and self-training, and their labels choose
between the configurations.  The ground truth of the training images never
enters training.

``--stage select`` (seed 0) scores every configuration, after training and
after one self-training round and with each instance method it supports, on
the held-out images, as ``ssimnet segment`` predicts by default (stains
normalised, brightening only; large tiles).  ``--stage test`` scores the
configuration named by ``--chosen`` on the test split and on TNBC once per
seed of ``--seeds``, and those named by ``--compare`` (such as today's
default) with the first seed, with the classical watershed beside them;
every configuration scored on test is kept in the results.
Writes ``levers_per_image.csv`` and its provenance (:data:`ssimnet.book.results.LEVERS`),
adding to what a previous stage wrote.

    python studies/levers.py --monuseg DIR --tnbc DIR --run-dir runs/levers --out results/cpu --stage select
    python studies/levers.py --monuseg DIR --tnbc DIR --run-dir runs/levers --out results/cpu --stage test \\
        --chosen "boundary 4 px, 1 round + boundary watershed" --seeds 0 1 2 \\
        --compare "paper network, 1 round + distance watershed"
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pandas as pd
from _common import link_samples

from ssimnet.book.results import LEVERS, load_results, provenance, save_results
from ssimnet.config import get_profile
from ssimnet.data import list_samples
from ssimnet.runs.evaluate import evaluate_baseline, evaluate_network
from ssimnet.runs.pipeline import train_self_training
from ssimnet.tool.normalize import segment_normalizer

HELD_OUT = "heldout"
#: Each lever's training settings (TrainConfig fields), the instance methods its network supports and its
#: self-training rounds (at most ``--rounds``; the colour jitter, for other labs' stains, is scored without).
LEVERS_TRIED: dict[str, tuple[dict[str, object], tuple[str, ...], int]] = {
    "paper network": ({}, ("distance",), 1),
    "boundary 2 px": ({"boundary_width": 2}, ("distance", "boundary"), 1),
    "boundary 4 px": ({"boundary_width": 4}, ("distance", "boundary"), 1),
    "HED jitter 0.05": ({"stain_jitter": 0.05}, ("distance",), 0),
    "boundary 6 px": ({"boundary_width": 6}, ("distance", "boundary"), 1),
    "boundary 4 px + HED jitter 0.05": ({"boundary_width": 4, "stain_jitter": 0.05}, ("distance", "boundary"), 1),
}
METHOD_NAMES = {"distance": "distance watershed", "boundary": "boundary watershed"}


def held_out_view(monuseg: Path, folder: Path) -> Path:
    """A dataset of MoNuSeg whose ``train`` split lacks every fifth image (from the third), held out in ``heldout``."""
    samples = list_samples(monuseg, "train")
    link_samples([s for i, s in enumerate(samples) if i % 5 != 2], folder, "train")
    link_samples([s for i, s in enumerate(samples) if i % 5 == 2], folder, HELD_OUT)
    return link_samples(list_samples(monuseg, "test"), folder, "test")


def configurations(rounds: int) -> dict[str, tuple[str, int, str]]:
    """Configuration name -> (lever, self-training round, instance method)."""
    out = {}
    for lever, (_, methods, most) in LEVERS_TRIED.items():
        for r in range(min(rounds, most) + 1):
            for method in methods:
                after = f", {r} round{'s' * (r > 1)}" if r else ""
                out[f"{lever}{after} + {METHOD_NAMES[method]}"] = (lever, r, method)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monuseg", required=True, type=Path)
    parser.add_argument("--tnbc", required=True, type=Path)
    parser.add_argument("--run-dir", default="runs/levers", type=Path)
    parser.add_argument("--out", default="results/cpu")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--stage", choices=("select", "test"), required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--chosen", nargs="*", default=[], help="configurations to score on test and TNBC")
    parser.add_argument("--compare", nargs="*", default=[], help="configurations scored there with the first seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    base = get_profile(args.profile)
    data = held_out_view(args.monuseg, args.run_dir / "monuseg-held-out")
    configs = configurations(args.rounds)
    unknown = [c for c in args.chosen + args.compare if c not in configs]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(configs)}")
    seeds = [0] if args.stage == "select" else args.seeds
    names = {seed: list(configs) if args.stage == "select" else args.chosen + args.compare * (seed == seeds[0])
             for seed in seeds}
    splits = {HELD_OUT: (data, HELD_OUT)} if args.stage == "select" else {"test": (data, "test"), "tnbc": (args.tnbc, "test")}
    frames = []
    for run, seed in enumerate(seeds):
        normalizer = segment_normalizer(base, seed=seed)
        for name in names[seed]:
            lever, r, method = configs[name]
            profile = replace(base, train=replace(base.train, **LEVERS_TRIED[lever][0]))
            trainer = train_self_training(data, args.run_dir, profile, rounds=r, seed=seed, workers=2)[r][0]
            for split, (root, folder) in splits.items():
                scores, _ = evaluate_network(root, args.run_dir, profile, trainer, split=folder, finetune_epochs=0,
                                             method=method, seed=seed, normalizer=normalizer,
                                             max_tile=base.for_tool().inference.tile_size)
                frames.append(scores.assign(config=name, split=split, run=run, seed=seed))
    for split, (root, folder) in splits.items():
        scores, _ = evaluate_baseline(root, args.run_dir, "watershed", base, split=folder)
        frames.append(scores.assign(config="classical watershed", split=split, run=0, seed=0))
    per_image = pd.concat(frames, ignore_index=True)
    previous = Path(args.out) / LEVERS.per_image
    if previous.is_file():  # the other stage's rows stay
        earlier, _ = load_results(args.out, kind=LEVERS)
        keep = ~earlier.split.isin(per_image.split.unique())
        per_image = pd.concat([earlier[keep], per_image], ignore_index=True)
    first = ["config", "split", "run", "seed", "image"]
    per_image = per_image[first + [c for c in per_image if c not in first]]
    info = provenance(base, data_dir=args.monuseg, seed=min(seeds))
    info.update(held_out=[s.name for s in list_samples(data, HELD_OUT)], levers={k: v[0] for k, v in LEVERS_TRIED.items()},
                seeds=sorted(set(per_image.seed)), datasets={"monuseg": str(args.monuseg), "tnbc": str(args.tnbc)})
    save_results(args.out, per_image, info, kind=LEVERS)
    table = per_image.groupby(["split", "config"], sort=False)[["precision", "recall", "dice", "aji", "pq"]].mean()
    print(table.mul(100).round(1).to_string())


if __name__ == "__main__":
    main()
