"""Per-image fine-tuning (paper Sec. 2.2) with batch norm re-estimated or frozen, on training images.

One trained network is scored on the first `--images` images (by name) of the
MoNuSeg training split: without fine-tuning, with the paper's fine-tuning
(batch normalisation re-estimates its statistics on the image) and with batch
normalisation frozen (``InferenceConfig.finetune_norm = "frozen"``).  Fine-tuning
reads only the image's own pseudo labels; the labels score.  Writes
``finetune_per_image.csv`` and its provenance (:data:`ssimnet.book.results.FINETUNE`).

    python studies/finetune.py CHECKPOINT --monuseg DIR --candidates watershed --run-dir runs/study --out results/cpu
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
from _common import link_samples, network_record, study_parser

from ssimnet.book.results import FINETUNE, provenance, save_results
from ssimnet.config import get_profile
from ssimnet.data import list_samples
from ssimnet.net.checkpoint import load_trainer
from ssimnet.runs.evaluate import evaluate_network


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--candidates", default="fcm", help="candidate_method the network was trained with")
    args = parser.parse_args()
    base = get_profile(args.profile)
    base = replace(base, pseudo=replace(base.pseudo, candidate_method=args.candidates))
    data = link_samples(list_samples(args.monuseg, "train")[: args.images],
                        Path(args.run_dir) / f"train-first-{args.images}", "train")
    configs = {"no fine-tuning": (0, "train"), "fine-tuning (paper)": (base.inference.finetune_epochs, "train"),
               "fine-tuning, batch norm frozen": (base.inference.finetune_epochs, "frozen")}
    frames = []
    for name, (epochs, norm) in configs.items():
        profile = replace(base, inference=replace(base.inference, finetune_norm=norm))
        trainer = load_trainer(args.checkpoint, profile.train)
        scores, _ = evaluate_network(data, args.run_dir, profile, trainer, split="train", finetune_epochs=epochs,
                                     seed=args.seed)
        frames.append(scores.assign(config=name, split="train"))
    per_image = pd.concat(frames, ignore_index=True)
    per_image = per_image[["config", "split", "image", *[c for c in per_image if c not in ("config", "split", "image")]]]
    info = provenance(base, data_dir=args.monuseg, seed=args.seed)
    info.update(images=args.images, network=network_record(args))
    save_results(args.out, per_image, info, kind=FINETUNE)
    print(per_image.groupby("config", sort=False)[["dice", "aji", "pq", "seconds"]].mean().round(3).to_string())


if __name__ == "__main__":
    main()
