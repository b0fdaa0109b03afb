"""Store the tool's current inference settings with the shipped network, weights unchanged, and rescore it.

When only how ``ssimnet segment`` predicts changes (``Profile.for_tool().inference``),
the shipped weights need not be retrained (``studies/ship_model.py`` trains
them): this script writes the new settings into the checkpoint's
``inference`` entry and the ONNX export's metadata, checks that every
weight is the same, and rescores the export as segment runs it, on MoNuSeg
test and TNBC, once each, with the compact torch checkpoint on MoNuSeg test
and the classical watershed.  The card's training record and its scores
that need the training run (``uncompacted_monuseg_test``) or the slow
per-image fine-tuning (``finetuned``) are kept, and the card says under
which settings they were scored (``restamped``).

    python studies/restamp_model.py --monuseg ../shared/data/monuseg --tnbc ../shared/data/tnbc --run-dir runs/ship
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch
from ship_model import SCORES, mean_scores

from ssimnet.book.results import STAIN_STRESS, load_results, provenance
from ssimnet.config import DEFAULT_SEED, STAIN_GUARD, get_profile
from ssimnet.data import atomic_path, file_sha256
from ssimnet.net.checkpoint import INFERENCE_KEY, load_checkpoint, load_trainer, save_checkpoint
from ssimnet.net.onnxnet import OnnxNetwork, export_onnx
from ssimnet.runs.evaluate import evaluate_baseline, evaluate_network
from ssimnet.tool.shipped import read_card, shipped_card_path, shipped_model_path


def stress_means(folder: Path) -> dict[str, dict[str, dict[str, float]]]:
    """segment's default and the classical watershed in the stain stress test: each dataset's mean over its
    images and the transforms (:data:`ssimnet.runs.stress.TRANSFORMS`, the untransformed image included)."""
    frame, _ = load_results(folder, kind=STAIN_STRESS)
    means = {}
    for (dataset, config), rows in frame.groupby(["dataset", "config"]):
        if config in ("default", "classical watershed"):
            means.setdefault(dataset, {})[config] = {k: round(float(rows[k].mean()), 4) for k in SCORES}
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monuseg", required=True, type=Path)
    parser.add_argument("--tnbc", required=True, type=Path)
    parser.add_argument("--run-dir", default="runs/ship", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--stress", type=Path, default=Path("results/cpu"),
                        help="the stain stress test's results (studies/stain_stress.py), whose means go in the card")
    args = parser.parse_args()
    profile = get_profile("cpu").for_tool()
    card = read_card()
    if card["train"] != asdict(profile.train) or card["selftrain"] != asdict(profile.selftrain):
        raise SystemExit("the tool's training settings changed: retrain with studies/ship_model.py")
    # what the network carried before its last restamp (this run's, or an earlier one's when nothing changed)
    before = card.get("restamped", {}).get("inference_before") if card["inference"] == asdict(
        profile.inference) else card["inference"]
    inference = asdict(profile.inference)
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)  # before the files below change

    target = shipped_model_path()
    old = load_checkpoint(target)
    if old.get(INFERENCE_KEY) != inference:  # torch.save's bytes differ each time: write only a change
        save_checkpoint(target, {**old, INFERENCE_KEY: inference})
    new = load_checkpoint(target)
    if not all(torch.equal(old["model"][k], new["model"][k]) for k in old["model"]):
        raise SystemExit("the weights changed on restamping")
    shipped = load_trainer(target)
    exported = shipped_model_path(onnx=True)
    with atomic_path(exported) as tmp:
        Path(tmp).write_bytes(export_onnx(shipped.model, inference=inference))
    onnx = OnnxNetwork.from_file(exported)

    def scored(network, root: Path):
        return evaluate_network(root, args.run_dir, profile, network, split="test", settings=profile.inference,
                                finetune_epochs=0, seed=args.seed)[0]

    monuseg, tnbc, compact = scored(onnx, args.monuseg), scored(onnx, args.tnbc), scored(shipped, args.monuseg)
    water = {name: mean_scores(evaluate_baseline(root, args.run_dir, "watershed", profile, split="test")[0])
             for name, root in {"monuseg_test": args.monuseg, "tnbc": args.tnbc}.items()}
    card.update({
        "inference": inference,
        "bytes": target.stat().st_size,
        "sha256": file_sha256(target),
        "onnx_bytes": exported.stat().st_size,
        "onnx_sha256": file_sha256(exported),
        "test": {"monuseg_test": mean_scores(monuseg), "tnbc": mean_scores(tnbc)},
        "classical_watershed": water,
        "torch_monuseg_test": mean_scores(compact),
        "seconds_per_monuseg_test_image": round(float(monuseg.seconds.mean()), 2),
        "monuseg_test_images": {row.image: {k: round(float(getattr(row, k)), 6) for k in SCORES}
                                for row in monuseg.itertuples()},
        "stress_test": stress_means(args.stress),
        "restamped": {
            "created": info["created"], "commit": info["commit"], "dirty": info["dirty"],
            "inference_before": before,
            "stain_guard": STAIN_GUARD._asdict(),  # normalize="auto"'s guard, which the scores above ran
            "kept": {"uncompacted_monuseg_test": "scored at training, with inference_before",
                     "finetuned": "scored at training, with inference_before"},
        },
    })
    with atomic_path(shipped_card_path()) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({k: card[k] for k in ("sha256", "onnx_sha256", "test", "classical_watershed",
                                           "torch_monuseg_test")}, indent=1))


if __name__ == "__main__":
    main()
