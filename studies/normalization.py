"""Stain normalisation study: one trained network on MoNuSeg train and test and on TNBC, four ways.

Writes ``results/cpu/normalization_per_image.csv`` and its provenance
(:data:`ssimnet.book.results.NORMALIZATION`).  The stain reference is fitted on
the MoNuSeg training images (no labels) and must equal
:data:`ssimnet.config.STAIN_REFERENCE`.  The configuration is chosen on the
training split; test and TNBC are scored for every configuration listed,
and all of them are reported.  The last configuration is what ``ssimnet
segment`` does by default: brightening only, each image's stains measured by
the exact solver, prediction in tiles of up to 1024 pixels
(:class:`ssimnet.config.SegmentConfig`).

    python studies/normalization.py CHECKPOINT --monuseg DIR --tnbc DIR --run-dir runs/study --out results/cpu
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from _common import network_record, study_parser

from ssimnet.book.results import NORMALIZATION, provenance, save_results
from ssimnet.config import STAIN_REFERENCE, get_profile
from ssimnet.data import list_samples
from ssimnet.net.checkpoint import load_trainer
from ssimnet.runs.experiments import fit_stain_reference, normalization_study
from ssimnet.tool.normalize import StainNormalizer, segment_normalizer

SEGMENT_DEFAULT = "segment's default (exact stain solver, large tiles)"


def main() -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--tnbc", required=True)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    reference = fit_stain_reference(args.monuseg, "train", seed=args.seed)
    if reference != STAIN_REFERENCE:
        sys.exit(f"the stain reference of {args.monuseg} differs from ssimnet.config.STAIN_REFERENCE: {reference}")
    normalizers = {
        "as it is": None,
        "normalised": StainNormalizer.from_reference(reference, min_scale=0.0, seed=args.seed),
        "normalised, brighten only": StainNormalizer.from_reference(reference, min_scale=1.0, seed=args.seed),
        SEGMENT_DEFAULT: segment_normalizer(profile, seed=args.seed),
    }
    trainer = load_trainer(args.checkpoint, profile.train)
    datasets = {"train": (args.monuseg, "train"), "test": (args.monuseg, "test"), "tnbc": (args.tnbc, "test")}
    per_image = normalization_study(datasets, args.run_dir, profile, trainer, normalizers, seed=args.seed,
                                    max_tiles={SEGMENT_DEFAULT: profile.for_tool().inference.tile_size})
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
    info.update(stain_reference=asdict(reference), stain_reference_images={"data": Path(args.monuseg).name, "split": "train",
                                        "images": len(list_samples(args.monuseg, "train", labels=False))},
                network=network_record(args),
                datasets={k: str(v[0]) for k, v in datasets.items()})
    save_results(args.out, per_image, info, kind=NORMALIZATION)
    print(per_image.groupby(["split", "config"])[["dice", "aji", "pq"]].mean().mul(100).round(1).to_string())


if __name__ == "__main__":
    main()
