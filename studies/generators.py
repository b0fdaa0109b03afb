"""A network trained on other candidates (``PseudoLabelConfig.candidate_method``), scored as chapter 09 scores its own.

The profile's network is trained label-free on the MoNuSeg training images'
pseudo labels, drawn from the candidates of `--candidates` instead of the
paper's FCM, with no self-training round, and scored with the distance
watershed, no fine-tuning, on the training split (which chooses) and the
test split (scored once).  Chapter 09 sets it beside seed `--seed` of the
committed three-seed selection study, whose networks learn from the paper's
candidates.  Writes ``generators/selection_per_image.csv`` and its provenance
(:data:`ssimnet.book.results.SELECTION`) under `--out`.

    python studies/generators.py --monuseg DIR --candidates watershed --run-dir runs/cpu --out results/cpu
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
from _common import attribution_parser

from ssimnet.book.results import SELECTION, provenance, save_results
from ssimnet.config import get_profile
from ssimnet.runs.evaluate import evaluate_network
from ssimnet.runs.pipeline import train_self_training


def main() -> None:
    parser = attribution_parser(__doc__)
    parser.add_argument("--candidates", default="watershed", help="the candidate_method to train on")
    args = parser.parse_args()
    base = get_profile(args.profile)
    profile = replace(base, pseudo=replace(base.pseudo, candidate_method=args.candidates))
    ((trainer, _),) = train_self_training(args.monuseg, args.run_dir, profile, rounds=0, seed=args.seed, progress=True)
    name = f"candidates {args.candidates} + distance watershed"
    frames = []
    for split in ("train", "test"):
        scores, _ = evaluate_network(args.monuseg, args.run_dir, profile, trainer, split=split, finetune_epochs=0,
                                     method="distance", seed=args.seed)
        frames.append(scores.assign(config=name, split=split, run=0, seed=args.seed))
    per_image = pd.concat(frames, ignore_index=True)
    save_results(Path(args.out) / "generators", per_image, provenance(profile, data_dir=args.monuseg, seed=args.seed),
                 kind=SELECTION)
    print(per_image.groupby("split", sort=False)[["dice", "aji", "pq"]].mean().mul(100).round(1).to_string())


if __name__ == "__main__":
    main()
