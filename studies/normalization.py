"""Stain normalisation study: one trained network on MoNuSeg train and test and on TNBC, three ways.

Writes ``results/cpu/normalization_per_image.csv`` and its provenance
(:data:`ssimnet.results.NORMALIZATION`).  The stain reference is fitted on
the MoNuSeg training images (no labels) and must equal
:data:`ssimnet.config.STAIN_REFERENCE`.  The configuration is chosen on the
training split; test and TNBC are scored for every configuration listed,
and all of them are reported.

    python studies/normalization.py CHECKPOINT --monuseg DIR --tnbc DIR --run-dir runs/study --out results/cpu
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from ssimnet.config import DEFAULT_SEED, STAIN_REFERENCE, get_profile
from ssimnet.data import list_samples
from ssimnet.experiments import fit_stain_reference, normalization_study
from ssimnet.normalize import StainNormalizer
from ssimnet.results import NORMALIZATION, provenance, save_results
from ssimnet.publish import file_digest
from ssimnet.store import load_trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--monuseg", required=True)
    parser.add_argument("--tnbc", required=True)
    parser.add_argument("--run-dir", default="runs/study")
    parser.add_argument("--out", default="results/cpu")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--about", default="", help="how the network was trained, for the provenance")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    reference = fit_stain_reference(args.monuseg, "train", seed=args.seed)
    if reference != STAIN_REFERENCE:
        sys.exit(f"the stain reference of {args.monuseg} differs from ssimnet.config.STAIN_REFERENCE: {reference}")
    normalizers = {
        "as it is": None,
        "normalised": StainNormalizer.from_reference(reference, min_scale=0.0, seed=args.seed),
        "normalised, brighten only": StainNormalizer.from_reference(reference, min_scale=1.0, seed=args.seed),
    }
    trainer = load_trainer(args.checkpoint, profile.train)
    datasets = {"train": (args.monuseg, "train"), "test": (args.monuseg, "test"), "tnbc": (args.tnbc, "test")}
    per_image = normalization_study(datasets, args.run_dir, profile, trainer, normalizers, seed=args.seed)
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
    info.update(stain_reference=asdict(reference), stain_reference_images={"data": Path(args.monuseg).name, "split": "train",
                                        "images": len(list_samples(args.monuseg, "train", labels=False))},
                network={"checkpoint": args.checkpoint, "sha256": file_digest(args.checkpoint),
                         "training": args.about},
                datasets={k: str(v[0]) for k, v in datasets.items()})
    save_results(args.out, per_image, info, kind=NORMALIZATION)
    print(per_image.groupby(["split", "config"])[["dice", "aji", "pq"]].mean().mul(100).round(1).to_string())


if __name__ == "__main__":
    main()
