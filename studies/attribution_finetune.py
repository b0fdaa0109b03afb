"""Fine-tuning on images the network never trained on: epochs and rate chosen on held-out training images, scored on test once.

The paper fine-tunes on each *test* image's own pseudo labels (``SET_k``,
Sec. 2.2) and gives no epochs or rate for it.  Chapter 05's fine-tuning study
ran on training images whose pseudo labels the network had already learned,
which says little about images it has never seen.  Here the profile's network
is trained label-free on 24 of the 30 MoNuSeg training images; the other six
(the levers study's, :func:`levers.held_out_view`) are held out of training.
On them every configuration below is scored with the paper's connected
components; the one with the highest mean AJI is chosen, and the chosen and
the profile's own are then scored on the test images once, with the same
network.  Fine-tuning reads only each image's own pseudo labels; the labels
score.  Writes ``attribution_finetune_per_image.csv`` and its provenance
(:data:`ssimnet.book.results.ATTRIBUTION_FINETUNE`), after the held-out stage
and again after the test stage.

    python studies/attribution_finetune.py --monuseg DIR [--run-dir runs/attribution] [--out results/cpu]
"""

from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd
from _common import attribution_parser
from levers import HELD_OUT, held_out_view

from ssimnet.book.results import ATTRIBUTION_FINETUNE, provenance, save_results
from ssimnet.config import get_profile
from ssimnet.runs.evaluate import evaluate_network
from ssimnet.runs.pipeline import train_network

#: Learning rates tried at the profile's epochs, and epochs tried at the profile's rate.
RATES: tuple[float, ...] = (2e-5, 2e-4)
EPOCHS: tuple[int, ...] = (2, 10)


def configurations(epochs: int, rate: float) -> dict[str, tuple[int, float]]:
    """Configuration name -> (fine-tuning epochs, learning rate); the profile's `epochs` and `rate` second."""
    out = {"no fine-tuning": (0, rate), f"{epochs} epochs at {rate:.2g} (profile)": (epochs, rate)}
    out.update({f"{epochs} epochs at {r:.2g}": (epochs, r) for r in RATES if r != rate})
    out.update({f"{e} epochs at {rate:.2g}": (e, rate) for e in EPOCHS if e != epochs})
    return out


def main() -> None:
    parser = attribution_parser(__doc__)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    rate = profile.inference.finetune_lr
    if rate is None:
        parser.error(f"profile {args.profile!r} fine-tunes at its training rate; name a rate in its inference settings")
    start = time.perf_counter()
    data = held_out_view(args.monuseg, args.run_dir / "monuseg-held-out")
    trainer, _ = train_network(data, args.run_dir, profile, seed=args.seed, workers=2)
    configs = configurations(profile.inference.finetune_epochs, rate)

    def scored(name: str, split: str) -> pd.DataFrame:
        epochs, lr = configs[name]
        settings = replace(profile.inference, instances="cc", finetune_lr=lr)
        scores, _ = evaluate_network(data, args.run_dir, profile, trainer, split=split, settings=settings,
                                     finetune_epochs=epochs, seed=args.seed, workers=2)
        return scores.assign(config=name, split=split, epochs=epochs, lr=lr, seed=args.seed)

    frames = [scored(name, HELD_OUT) for name in configs]
    means = (pd.concat(frames).groupby("config", sort=False)["aji"].mean() * 100).round(1)  # a tie: the earlier
    chosen = means.idxmax()
    print(means.to_string(), flush=True)
    profile_config = list(configs)[1]
    info = provenance(profile, data_dir=str(args.monuseg), seed=args.seed)
    info.update(held_out=sorted(set(frames[0].image)), chosen=chosen, profile_config=profile_config,
                selection="highest mean AJI on the six held-out training images; test scored once",
                network="trained label-free on the other 24 training images")

    def save(frames: list[pd.DataFrame]) -> None:
        per_image = pd.concat(frames, ignore_index=True)
        per_image = per_image[[*ATTRIBUTION_FINETUNE.keys, *[c for c in per_image if c not in ATTRIBUTION_FINETUNE.keys]]]
        save_results(args.out, per_image, {**info, "seconds": round(time.perf_counter() - start, 1)},
                     kind=ATTRIBUTION_FINETUNE)

    save(frames)
    for name in dict.fromkeys(["no fine-tuning", profile_config, chosen]):
        frames.append(scored(name, "test"))
        save(frames)
    print(pd.concat(frames).groupby(["split", "config"], sort=False)[["dice", "aji", "pq"]].mean().round(3).to_string())


if __name__ == "__main__":
    main()
