"""Readings of what the paper leaves open, chosen on the training images and scored on test once.

Each reading varies one detail the paper does not give, on the profile's
reproduction network (``studies/attribution.py``'s ``reproduction`` row, read
back from the same run folder), with the paper's connected components:

- ``cc``: the connected components' foreground threshold, smallest object
  and largest hole filled (the paper names none; ``literal`` is 0.5 with
  nothing removed or filled, the profile's is 0.5, 30 and 200 pixels).

Every configuration is scored without fine-tuning on the 30 MoNuSeg training
images (the network was trained on their label-free pseudo labels, never on
their ground truth); the one with the highest mean AJI is then scored on test
once, without and with the paper's fine-tuning.  Writes
``attribution_readings_per_image.csv`` and its provenance
(:data:`ssimnet.book.results.ATTRIBUTION_READINGS`).

    python studies/attribution_readings.py --monuseg DIR [--run-dir runs/attribution] [--out results/cpu]
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pandas as pd
from _common import attribution_parser

from ssimnet.book.report import selection_table
from ssimnet.book.results import ATTRIBUTION_READINGS, provenance, save_results
from ssimnet.config import get_profile
from ssimnet.runs.evaluate import evaluate_network
from ssimnet.runs.experiments import pooled_aji_terms
from ssimnet.runs.pipeline import train_network

#: The connected components' (threshold, min_size, max_hole) tried; "literal" first.
CC_READINGS = {"literal": (0.5, 0, 0),
               **{f"threshold {t}, min size {m}, holes {h}": (t, m, h)
                  for t, m, h in itertools.product((0.3, 0.4, 0.5, 0.6, 0.7), (30, 60), (200,))}}


def main() -> None:
    args = attribution_parser(__doc__).parse_args()
    profile = get_profile(args.profile)
    start = time.perf_counter()
    trainer, _ = train_network(args.monuseg, args.run_dir, profile, seed=args.seed, workers=2)

    def scored(name: str, split: str, finetune: int) -> pd.DataFrame:
        threshold, min_size, max_hole = CC_READINGS[name]
        settings = replace(profile.inference, instances="cc", threshold=threshold, min_size=min_size, max_hole=max_hole)
        scores, folder = evaluate_network(args.monuseg, args.run_dir, profile, trainer, split=split, settings=settings,
                                          finetune_epochs=finetune, seed=args.seed, workers=2)
        return scores.merge(pooled_aji_terms(folder, args.monuseg, split), on="image").assign(
            reading="cc", config=name, split=split, finetune=finetune, run=0, seed=args.seed)

    frames = [scored(name, "train", 0) for name in CC_READINGS]
    table = selection_table(pd.concat(frames), splits=("train",))
    chosen = table.index[table.chosen][0]
    frames += [scored(chosen, "test", finetune) for finetune in (0, profile.inference.finetune_epochs)]
    per_image = pd.concat(frames, ignore_index=True)
    per_image = per_image[[*ATTRIBUTION_READINGS.keys, *[c for c in per_image if c not in ATTRIBUTION_READINGS.keys]]]
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
    info.update(chosen={"cc": chosen}, seconds=round(time.perf_counter() - start, 1),
                selection="highest mean AJI on the 30 training images without fine-tuning; test scored once")
    save_results(args.out, per_image, info, kind=ATTRIBUTION_READINGS)
    print(table.round(1).to_string())
    print(per_image[per_image.split == "test"].groupby(["config", "finetune"])[["dice", "aji", "pq"]].mean().round(3))


if __name__ == "__main__":
    main()
