"""Train the network shipped in the package (``ssimnet/weights/``) and write its model card.

The ``cpu`` profile's tool network (:meth:`ssimnet.config.Profile.for_tool`:
the boundary-aware target, one self-training round) is trained label-free on
all 30 MoNuSeg *training* images -- their pseudo labels only, no labels -- as
``ssimnet train`` trains it.  The checkpoint is stored compactly
(:func:`ssimnet.tool.shipped.compact_state`) and exported to ONNX
(:func:`ssimnet.net.onnxnet.export_onnx`), and the export is scored as ``ssimnet
segment`` predicts by default (ONNX Runtime, stains normalised, large tiles,
the tool's instance method) on the MoNuSeg test images and on TNBC, once each,
beside the classical watershed.  The compact and the uncompacted torch
networks are scored on MoNuSeg test too, to show that neither compaction nor
the runtime moves the scores, and the checkpoint with the paper's per-image
fine-tuning (``segment --finetune-epochs 5``, an option) on both.  Nothing is
chosen here.  Training is cached in ``--run-dir``: run again, the script
re-exports and re-scores the same network.

    python studies/ship_model.py --monuseg ../shared/data/monuseg --tnbc ../shared/data/tnbc --run-dir runs/ship
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import torch

from ssimnet.book.results import provenance
from ssimnet.config import DEFAULT_SEED, ONNX_OPSET, get_profile
from ssimnet.data import atomic_path, file_sha256, list_samples
from ssimnet.net.checkpoint import INFERENCE_KEY, load_checkpoint, load_trainer, save_checkpoint
from ssimnet.net.onnxnet import OnnxNetwork, export_onnx
from ssimnet.runs.evaluate import evaluate_baseline, evaluate_network
from ssimnet.runs.pipeline import train_self_training
from ssimnet.runs.store import split_digest
from ssimnet.tool.shipped import compact_state, shipped_card_path, shipped_model_path

SCORES = ("dice", "aji", "pq")
LICENCE = ("trained on MoNuSeg 2018 images (CC BY-NC-SA 4.0): the weights are for non-commercial use, "
           "shared alike")


def mean_scores(frame) -> dict[str, float]:
    return {k: round(float(frame[k].mean()), 4) for k in ("precision", "recall", *SCORES)}


def same_values(a: object, b: object) -> bool:
    """Whether two checkpoint contents hold the same values (tensors of the same dtype, equal)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same_values, a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monuseg", required=True, type=Path)
    parser.add_argument("--tnbc", required=True, type=Path)
    parser.add_argument("--run-dir", default="runs/ship", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    profile = get_profile("cpu").for_tool()
    trainer, checkpoint = train_self_training(args.monuseg, args.run_dir, profile, seed=args.seed,
                                              workers=args.workers)[-1]
    # every epoch's time as it was measured, also when the rounds were cached by an earlier call
    training_seconds = sum(record["seconds"] for record in trainer.history)

    target = shipped_model_path()
    state = compact_state(load_checkpoint(checkpoint))
    inference = asdict(profile.inference)  # the settings travel with the network: in both files and the card
    state = {**state, INFERENCE_KEY: inference}
    if not (target.is_file() and same_values(load_checkpoint(target), state)):  # torch.save's bytes differ each time
        save_checkpoint(target, state)
    shipped = load_trainer(target)
    exported = shipped_model_path(onnx=True)
    with atomic_path(exported) as tmp:
        Path(tmp).write_bytes(export_onnx(shipped.model, inference=inference))
    onnx = OnnxNetwork.from_file(exported)

    def scored(network, root: Path, epochs: int = 0):
        # its "seconds" column: each image's fine-tuning and prediction when it was computed, also when read back
        frame, _ = evaluate_network(root, args.run_dir, profile, network, split="test", settings=profile.inference,
                                    finetune_epochs=epochs, seed=args.seed)
        return frame

    datasets = {"monuseg_test": args.monuseg, "tnbc": args.tnbc}
    monuseg, tnbc = scored(onnx, args.monuseg), scored(onnx, args.tnbc)
    compact, full = scored(shipped, args.monuseg), scored(trainer, args.monuseg)
    # segment --finetune-epochs N from the shipped checkpoint: the paper's per-image fine-tuning, an option
    epochs = get_profile("paper").inference.finetune_epochs
    tuned = {name: scored(shipped, root, epochs) for name, root in datasets.items()}
    water = {name: mean_scores(evaluate_baseline(root, args.run_dir, "watershed", profile, split="test")[0])
             for name, root in datasets.items()}
    info = provenance(profile, data_dir=args.monuseg, seed=args.seed)
    card = {
        "name": target.stem,
        "format": "ssimnet-checkpoint-1, float16 weights and bfloat16 Adam moments; its ONNX export beside it",
        **{k: info[k] for k in ("ssimnet", "commit", "dirty", "created", "hardware", "python", "lock")},
        "libraries": {**info["libraries"], **{name: metadata.version(name) for name in ("onnx", "onnxruntime")}},
        "profile": f"{profile.name} (Profile.for_tool)",
        "train": asdict(profile.train),
        "selftrain": asdict(profile.selftrain),
        "inference": inference,
        "seed": args.seed,
        "trained_on": f"MoNuSeg 2018 train ({len(list_samples(args.monuseg, 'train', labels=False))} images, "
                      "pseudo labels only)",
        "train_images_digest": split_digest(args.monuseg, "train"),
        "epochs": trainer.epoch,
        "training_seconds": round(training_seconds, 1),
        "parameters": sum(p.numel() for p in shipped.model.parameters()),
        "bytes": target.stat().st_size,
        "sha256": file_sha256(target),
        "onnx_opset": ONNX_OPSET,
        "onnx_bytes": exported.stat().st_size,
        "onnx_sha256": file_sha256(exported),
        "licence": LICENCE,
        # as ssimnet segment predicts by default: the ONNX export
        "test": {"monuseg_test": mean_scores(monuseg), "tnbc": mean_scores(tnbc)},
        "classical_watershed": water,
        "torch_monuseg_test": mean_scores(compact),
        "finetuned": {"epochs": epochs, **{name: mean_scores(frame) for name, frame in tuned.items()},
                      "seconds_per_monuseg_test_image": round(float(tuned["monuseg_test"].seconds.mean()), 1)},
        "uncompacted_monuseg_test": mean_scores(full),
        "seconds_per_monuseg_test_image": round(float(monuseg.seconds.mean()), 2),
        # what tests/test_shipped.py checks again, image by image
        "monuseg_test_images": {row.image: {k: round(float(getattr(row, k)), 6) for k in SCORES}
                                for row in monuseg.itertuples()},
    }
    with atomic_path(shipped_card_path()) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({k: card[k] for k in ("sha256", "bytes", "onnx_sha256", "onnx_bytes", "training_seconds", "commit",
                                           "test", "classical_watershed", "torch_monuseg_test", "finetuned",
                                           "uncompacted_monuseg_test")}, indent=1))


if __name__ == "__main__":
    main()
