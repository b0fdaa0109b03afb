"""Readings of Eq. 3's open details, chosen by the candidates' quality on the training images, the chosen scored on test once.

The paper says only "we transform I^T into CIELAB and invoke the Fuzzy
C-Means method with 2 clusters", then "active contour as a smoothing
operation".  This study varies what that leaves open, one detail at a time:

1. the FCM: its features (``L*, a*, b*`` or ``L*`` alone), the image it sees
   (``I^T`` or the RGB image) and which cluster is the nuclei (the darker or
   the smaller one) -- every combination, at the profile's contour iterations;
2. then, with the best of those, the active contour's iterations.

Each configuration's candidates ``P`` are scored against the 30 MoNuSeg
training images' ground truth (:func:`ssimnet.runs.experiments.pseudo_label_study`),
and the one with the highest mean AJI of ``P``'s components (to 0.1 point; a
tie goes to the one listed first, the profile's reading first) is chosen -- the
labels are read to choose, as any setting is chosen on training images, never
to build labels.  The chosen configuration's pseudo labels then train the
profile's network, scored on the test images once with the paper's connected
components, without and with fine-tuning.  Writes
``attribution_candidates_per_image.csv`` and its provenance
(:data:`ssimnet.book.results.ATTRIBUTION_CANDIDATES`).

    python studies/attribution_candidates.py --monuseg DIR [--run-dir runs/attribution] [--out results/cpu]
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pandas as pd
from _common import attribution_parser

from ssimnet.book.results import ATTRIBUTION_CANDIDATES, provenance, save_results
from ssimnet.config import PseudoLabelConfig, get_profile
from ssimnet.pseudo.candidates import FCM_FEATURES, FCM_IMAGES, FCM_NUCLEUS
from ssimnet.runs.evaluate import evaluate_network
from ssimnet.runs.experiments import pooled_aji_terms, pseudo_label_study
from ssimnet.runs.pipeline import train_network

#: The active contour's iterations tried once the FCM is chosen (besides the profile's).
CONTOUR_ITERATIONS: tuple[int, ...] = (0, 5, 20, 40)


def reading_name(config: PseudoLabelConfig) -> str:
    """A configuration's Eq. 3 details in words."""
    features = "L*a*b*" if config.fcm_features == "lab" else "L*"
    image = "I^T" if config.fcm_image == "hematoxylin" else "the RGB image"
    return f"FCM on {features} of {image}, {config.fcm_nucleus} cluster, {config.contour_iterations} contour iterations"


def main() -> None:
    args = attribution_parser(__doc__).parse_args()
    profile = get_profile(args.profile)
    start = time.perf_counter()

    def study(reading: str, configs: list[PseudoLabelConfig]) -> tuple[pd.DataFrame, PseudoLabelConfig]:
        named = {reading_name(c): c for c in configs}
        scores = pseudo_label_study(args.monuseg, args.run_dir, named, split="train", seed=args.seed, workers=2)
        means = (scores.groupby("config", sort=False)["aji"].mean() * 100).round(1)  # a tie goes to the earlier
        print(means.to_string(), flush=True)
        return scores.assign(reading=reading, scored="candidates", split="train", finetune=0, seed=args.seed), \
            named[means.idxmax()]

    fcm = [replace(profile.pseudo, fcm_features=f, fcm_image=i, fcm_nucleus=n)
           for f, i, n in itertools.product(FCM_FEATURES, FCM_IMAGES, FCM_NUCLEUS)]
    fcm_scores, chosen_fcm = study("fcm", fcm)
    contour = [chosen_fcm] + [replace(chosen_fcm, contour_iterations=n) for n in CONTOUR_ITERATIONS
                              if n != chosen_fcm.contour_iterations]
    contour_scores, chosen = study("contour", contour)

    trained = replace(profile, pseudo=chosen)
    trainer, _ = train_network(args.monuseg, args.run_dir, trained, seed=args.seed, workers=2)
    frames = [fcm_scores, contour_scores]
    for finetune in (0, profile.inference.finetune_epochs):
        scores, folder = evaluate_network(args.monuseg, args.run_dir, trained, trainer, split="test", method="cc",
                                          finetune_epochs=finetune, seed=args.seed, workers=2)
        frames.append(scores.merge(pooled_aji_terms(folder, args.monuseg, "test"), on="image").assign(
            reading="chosen", config=reading_name(chosen), scored="network", split="test", finetune=finetune,
            seed=args.seed))
    per_image = pd.concat(frames, ignore_index=True)
    per_image = per_image[[*ATTRIBUTION_CANDIDATES.keys, *[c for c in per_image if c not in ATTRIBUTION_CANDIDATES.keys]]]
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
    info.update(chosen={"fcm": reading_name(chosen_fcm), "contour": reading_name(chosen)},
                profile_reading=reading_name(profile.pseudo), seconds=round(time.perf_counter() - start, 1),
                selection="highest mean AJI of the candidates' components on the 30 training images; test scored once")
    save_results(args.out, per_image, info, kind=ATTRIBUTION_CANDIDATES)
    print(per_image[per_image.scored == "network"].groupby("finetune")[["dice", "aji", "pq"]].mean().round(3))


if __name__ == "__main__":
    main()
