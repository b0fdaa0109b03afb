"""The tool's object probability threshold, chosen on six MoNuSeg training images held out of training.

``ssimnet segment`` keeps a nucleus only if its mean nucleus probability is at
least ``min_object_probability`` (:func:`ssimnet.predict.nuclei.drop_unsure`).  The
tool's network (:meth:`ssimnet.config.Profile.for_tool`) is trained
label-free, with one self-training round, on the 24 MoNuSeg training images
of the levers study (:func:`levers.held_out_view`, the same cached network);
the six others score each threshold of :data:`THRESHOLDS` as ``ssimnet
segment`` predicts (stains normalised, large tiles, no fine-tuning).  Their
labels choose; nothing here reads the test split or TNBC.  Writes
``object_probability_per_image.csv`` and its provenance
(:data:`ssimnet.book.results.OBJECT_PROBABILITY`).

    python studies/object_probability.py --monuseg ../shared/data/monuseg --run-dir runs/levers --out results/cpu
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pandas as pd
from levers import HELD_OUT, held_out_view

from ssimnet.book.results import OBJECT_PROBABILITY, provenance, save_results
from ssimnet.config import DEFAULT_SEED, get_profile
from ssimnet.data import list_samples
from ssimnet.runs.evaluate import evaluate_network
from ssimnet.runs.pipeline import train_self_training

#: The thresholds scored (0: every nucleus kept, as before the setting existed).
THRESHOLDS = (0.0, 0.4, 0.45, 0.5, 0.55, 0.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monuseg", required=True, type=Path)
    parser.add_argument("--run-dir", default="runs/levers", type=Path)
    parser.add_argument("--out", default="results/cpu")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    tool = get_profile(args.profile).for_tool()
    data = held_out_view(args.monuseg, args.run_dir / "monuseg-held-out")
    trainer = train_self_training(data, args.run_dir, tool, seed=args.seed, workers=2)[-1][0]
    frames = []
    for least in THRESHOLDS:
        scores, _ = evaluate_network(data, args.run_dir, tool, trainer, split=HELD_OUT, seed=args.seed,
                                     settings=replace(tool.inference, min_object_probability=least))
        frames.append(scores.assign(config=f"min_object_probability {least}", split=HELD_OUT))
    per_image = pd.concat(frames, ignore_index=True)
    per_image = per_image[["config", "split"] + [c for c in per_image if c not in ("config", "split")]]
    info = provenance(tool, data_dir=args.monuseg, seed=args.seed)
    info.update(held_out=[s.name for s in list_samples(data, HELD_OUT)], thresholds=list(THRESHOLDS),
                network="the tool's network trained on the other 24 training images, one self-training round")
    save_results(args.out, per_image, info, kind=OBJECT_PROBABILITY)
    table = per_image.groupby("config", sort=False)[["precision", "recall", "dice", "aji", "pq"]].mean()
    print(table.mul(100).round(2).to_string())


if __name__ == "__main__":
    main()
