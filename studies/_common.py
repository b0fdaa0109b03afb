"""What every study script shares: its command line and the record of the network it scores."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path

from ssimnet.config import DEFAULT_SEED
from ssimnet.data import Sample, file_digest


def study_parser(doc: str) -> argparse.ArgumentParser:
    """The options of every study: a checkpoint, MoNuSeg, the run and results folders, profile, seed, provenance."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--monuseg", required=True)
    parser.add_argument("--run-dir", default="runs/study")
    parser.add_argument("--out", default="results/cpu")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--about", default="", help="how the network was trained, for the provenance")
    return parser


def attribution_parser(doc: str) -> argparse.ArgumentParser:
    """The options of the attribution studies, which train their own networks: MoNuSeg, profile, seed, folders."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--monuseg", required=True, type=Path)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--run-dir", default="runs/attribution", type=Path)
    parser.add_argument("--out", default="results/cpu")
    return parser


def network_record(args: argparse.Namespace) -> dict[str, str]:
    """The scored network for the provenance: its file, its hash and how it was trained."""
    return {"checkpoint": args.checkpoint, "sha256": file_digest(args.checkpoint), "training": args.about}


def link_samples(samples: Iterable[Sample], folder: Path, split: str) -> Path:
    """A dataset folder whose `split` holds `samples` (images and labels) as symbolic links; returns `folder`.

    Every cache is keyed by the files' content, so a linked image reuses what its original computed.
    """
    for sample in samples:
        for kind, path in (("images", sample.image_path), ("labels", sample.label_path)):
            link = folder / split / kind / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.symlink(path.resolve(), link)
    return folder
