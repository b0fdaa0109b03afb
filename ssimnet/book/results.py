"""Results with their provenance: what produced them, and one save/load pair for every results folder.

A results folder holds per-image scores (one CSV) and a ``provenance.json``
(:func:`provenance`: code version and commit, settings, data, hardware,
libraries, times).  Eight kinds are written, each a :class:`ResultKind`:

- :data:`RESULTS` -- every Table 1 method and Table 3 variant
  (``per_image.csv``, with ``runs.csv``, the means per method and run);
- :data:`SELECTION` -- the "Beyond the paper" selection study
  (``selection_per_image.csv``, one row per configuration, split, run and image);
- :data:`CANDIDATES` -- the candidate generators' pseudo-label quality on
  the training split (``candidates_per_image.csv``);
- :data:`NORMALIZATION` -- one network with and without stain normalisation,
  and the classical watershed, on MoNuSeg and TNBC (``normalization_per_image.csv``);
- :data:`FINETUNE` -- per-image fine-tuning with batch norm re-estimated or
  frozen (``finetune_per_image.csv``);
- :data:`RESOLUTION` -- ``ssimnet segment`` on MoNuSeg test images rescaled
  to 20x and 60x, with and without ``--mpp`` (``resolution_per_image.csv``);
- :data:`LEVERS` -- the levers of better pseudo labels, chosen on held-out
  training images, then scored on test and TNBC (``levers_per_image.csv``);
- :data:`OBJECT_PROBABILITY` -- the tool's object probability threshold on
  the same held-out images (``object_probability_per_image.csv``);
- :data:`ATTRIBUTION` -- oracle interventions and label-free alternatives,
  one label stage at a time, scored on test (``attribution_per_image.csv``);
- :data:`ATTRIBUTION_READINGS` -- readings of the paper's open details, chosen
  on training images (``attribution_readings_per_image.csv``);
- :data:`ATTRIBUTION_CANDIDATES` -- readings of Eq. 3's open details, chosen
  by the candidates' quality on training images (``attribution_candidates_per_image.csv``);
- :data:`ATTRIBUTION_FINETUNE` -- fine-tuning's epochs and rate chosen on
  held-out training images (``attribution_finetune_per_image.csv``);
- :data:`ATTRIBUTION_TRAINING` -- readings of the training's open details
  (K, alpha, the CE on ignored pixels), chosen on held-out training images
  (``attribution_training_per_image.csv``).

The committed reference results under ``results/<profile>/`` are such folders.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..data import DataError, atomic_path, file_digest, list_samples
from .report import SCORE_COLUMNS, run_means

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Profile

__all__ = ["ResultKind", "RESULTS", "SELECTION", "CANDIDATES", "NORMALIZATION", "STAIN_STRESS", "STAIN_GUARD_SELECTION", "PIXEL_SIZE_SELECTION", "FALLBACK_SELECTION", "SECOND_OPINION_SELECTION", "SECOND_OPINION_TEST", "FINETUNE", "RESOLUTION", "LEVERS", "OBJECT_PROBABILITY", "ATTRIBUTION", "ATTRIBUTION_READINGS", "ATTRIBUTION_CANDIDATES", "ATTRIBUTION_FINETUNE", "ATTRIBUTION_TRAINING", "networks_used", "provenance", "save_results", "load_results"]


@dataclass(frozen=True)
class ResultKind:
    """The files and columns of one kind of results folder.

    Attributes
    ----------
    per_image, provenance : str
        File names of the per-image scores and of the provenance.
    keys : tuple of str
        Columns that identify a row (besides the score columns).
    runs : str or None
        File of the means per method and run (:func:`ssimnet.book.report.run_means`), if this kind has one.
    """

    per_image: str
    provenance: str
    keys: tuple[str, ...]
    runs: str | None = None

    @property
    def files(self) -> tuple[str, ...]:
        """Every file of the folder."""
        return (self.per_image, *((self.runs,) if self.runs else ()), self.provenance)


#: Every Table 1 method and Table 3 variant (:func:`ssimnet.runs.experiments.export_results`).
RESULTS = ResultKind("per_image.csv", "provenance.json", ("method", "run", "seed", "image"), runs="runs.csv")
#: The "Beyond the paper" selection study (book chapter 09).
SELECTION = ResultKind("selection_per_image.csv", "selection_provenance.json", ("config", "split", "run", "seed", "image"))
#: Pseudo-label quality of each candidate generator on the training split
#: (:func:`ssimnet.runs.experiments.candidate_study`).
CANDIDATES = ResultKind("candidates_per_image.csv", "candidates_provenance.json", ("candidates", "image"))
#: One network with and without stain normalisation, and the classical
#: watershed, on MoNuSeg and on data never tuned on
#: (:func:`ssimnet.runs.experiments.normalization_study`).
NORMALIZATION = ResultKind("normalization_per_image.csv", "normalization_provenance.json", ("config", "split", "image"))
#: The stain stress test (``studies/stain_stress.py``): MoNuSeg test and TNBC under colour transforms, four ways.
STAIN_STRESS = ResultKind("stain_stress_per_image.csv", "stain_stress_provenance.json",
                          ("dataset", "transform", "config", "image"))
#: What chose the stain guard's thresholds: MoNuSeg training images and their stressed copies.
STAIN_GUARD_SELECTION = ResultKind("stain_guard_selection_per_image.csv", "stain_guard_selection_provenance.json",
                                   ("transform", "way", "image"))
#: What chose the pixel-size check: MoNuSeg training images and their stressed copies, as they are and
#: enlarged twice (``studies/stain_stress.py --only pixel``).
PIXEL_SIZE_SELECTION = ResultKind("pixel_size_selection_per_image.csv", "pixel_size_selection_provenance.json",
                                  ("transform", "way", "image"))
#: What chose the watershed fallback's threshold: MoNuSeg training images and their stressed copies, segment's
#: default and the classical watershed, with the network's confidence (``studies/stain_stress.py --only fallback``).
FALLBACK_SELECTION = ResultKind("fallback_selection_per_image.csv", "fallback_selection_provenance.json",
                                ("transform", "way", "image"))
#: What weighed a second opinion as hematoxylin only, and chose its margin: MoNuSeg training images and their
#: stressed copies, segment's default as two stains and as hematoxylin only, and the classical watershed
#: (``studies/stain_stress.py --only second``).
SECOND_OPINION_SELECTION = ResultKind("second_opinion_selection_per_image.csv",
                                      "second_opinion_selection_provenance.json", ("transform", "way", "image"))
#: The same rows of the MoNuSeg test images and TNBC as they are: the second opinion scored once, and set aside.
SECOND_OPINION_TEST = ResultKind("second_opinion_test_per_image.csv", "second_opinion_test_provenance.json",
                                 ("dataset", "transform", "way", "image"))
#: ``ssimnet segment`` on rescaled MoNuSeg test images, with and without
#: their pixel size (``studies/resolution.py``).
RESOLUTION = ResultKind("resolution_per_image.csv", "resolution_provenance.json", ("config", "split", "image"))
#: Per-image fine-tuning with batch norm re-estimated or frozen (``studies/finetune.py``).
FINETUNE = ResultKind("finetune_per_image.csv", "finetune_provenance.json", ("config", "split", "image"))
#: The levers of better pseudo labels, chosen on held-out training images and scored on test and TNBC
#: (``studies/levers.py``).
LEVERS = ResultKind("levers_per_image.csv", "levers_provenance.json", ("config", "split", "run", "seed", "image"))
#: The tool's object probability threshold on the levers study's held-out images (``studies/object_probability.py``).
OBJECT_PROBABILITY = ResultKind("object_probability_per_image.csv", "object_probability_provenance.json",
                                ("config", "split", "image"))
#: Where the reproduction loses to the paper: oracle interventions and label-free alternatives, one stage at a
#: time, scored on test with the paper's connected components (``studies/attribution.py``).
ATTRIBUTION = ResultKind("attribution_per_image.csv", "attribution_provenance.json",
                         ("config", "oracle", "finetune", "seed", "image"))
#: Readings of the paper's open details, chosen on training images, the chosen scored on test
#: (``studies/attribution_readings.py``).
ATTRIBUTION_READINGS = ResultKind("attribution_readings_per_image.csv", "attribution_readings_provenance.json",
                                  ("reading", "config", "split", "finetune", "run", "seed", "image"))
#: Readings of Eq. 3's open details (the FCM's input and nucleus cluster, the active contour's iterations), chosen
#: by the candidates' quality on the training images, the chosen trained and scored on test
#: (``studies/attribution_candidates.py``); ``scored`` says whether a row scores candidates or a network.
#: Fine-tuning's epochs and rate chosen on training images held out of training, the chosen and the profile's
#: scored on test with the same network (``studies/attribution_finetune.py``).
ATTRIBUTION_FINETUNE = ResultKind("attribution_finetune_per_image.csv", "attribution_finetune_provenance.json",
                                  ("config", "split", "seed", "image"))
ATTRIBUTION_CANDIDATES = ResultKind("attribution_candidates_per_image.csv", "attribution_candidates_provenance.json",
                                    ("reading", "config", "scored", "split", "finetune", "seed", "image"))
ATTRIBUTION_TRAINING = ResultKind("attribution_training_per_image.csv", "attribution_training_provenance.json",
                                  ("config", "split", "finetune", "seed", "image"))


def _git_commit(directory: Path) -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def provenance(
    profile: Profile,
    *,
    data_dir: str | os.PathLike[str],
    seed: int,
    device: str | None = None,
    stage_seconds: dict[str, float] | None = None,
    compute_seconds: dict[str, float] | None = None,
) -> dict[str, object]:
    """What produced a set of results: code version, settings, data, hardware, libraries and times.

    ``lock`` is the :func:`ssimnet.book.publish.file_digest` of ``requirements.lock``
    (the locked environment) when the package runs from a checkout.

    ``stage_seconds`` are wall times of the book's notebooks in the run that
    collected the results (stages cached by an earlier run take little time
    there); ``compute_seconds`` are each method's training and segmentation
    times, measured when they were computed.
    """
    import torch

    from ..net.model import resolve_device

    resolved = resolve_device(device)
    libraries = {}
    for name in ("numpy", "scipy", "scikit-image", "scikit-learn", "scikit-fuzzy", "pandas", "torch"):
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    data = Path(data_dir)
    lock = Path(__file__).resolve().parents[2] / "requirements.lock"
    return {
        "ssimnet": __version__,
        **_git_commit(Path(__file__).resolve().parent),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "profile": profile.name,
        "seed": seed,
        "parameters": dataclasses.asdict(profile),
        "data": {"name": data.name, "test_images": len(list_samples(data, "test", labels=False))},
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "memory_gb": round(memory / 2**30, 1) if memory else None,
            "device": str(resolved),
            "gpu": torch.cuda.get_device_name(resolved) if resolved.type == "cuda" else None,
            "torch_threads": torch.get_num_threads(),
        },
        "python": platform.python_version(),
        "libraries": libraries,
        "lock": file_digest(lock) if lock.is_file() else None,
        "stage_seconds": dict(stage_seconds or {}),
        "compute_seconds": dict(compute_seconds or {}),
    }


def save_results(
    directory: str | os.PathLike[str], per_image: pd.DataFrame, info: dict[str, object], *, kind: ResultKind
) -> Path:
    """Write a results folder of `kind`: the per-image scores, the run means if the kind has them, the provenance.

    Each file is written atomically.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = {kind.per_image: per_image, **({kind.runs: run_means(per_image)} if kind.runs else {})}
    for name, table in tables.items():
        with atomic_path(directory / name) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(directory / kind.provenance) as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str) + "\n")
    return directory


def load_results(directory: str | os.PathLike[str], *, kind: ResultKind) -> tuple[pd.DataFrame, dict[str, object]]:
    """Read a results folder written by :func:`save_results`; returns ``(per_image, provenance)``.

    Raises
    ------
    DataError
        If a file is missing or unreadable, a column is missing, or the run
        means do not agree with the per-image scores.
    """
    import pandas as pd

    directory = Path(directory)
    for name in kind.files:
        if not (directory / name).is_file():
            raise DataError(directory / name, "results file not found")
    try:
        per_image = pd.read_csv(directory / kind.per_image)
        runs = pd.read_csv(directory / kind.runs) if kind.runs else None
        info = json.loads((directory / kind.provenance).read_text())
    except (ValueError, OSError) as exc:
        raise DataError(directory, f"unreadable results: {exc}") from None
    missing = [c for c in (*kind.keys, *SCORE_COLUMNS) if c not in per_image.columns]
    if missing:
        raise DataError(directory / kind.per_image, f"missing columns {', '.join(missing)}")
    if runs is not None:
        expected = run_means(per_image)
        if list(runs.columns) != list(expected.columns) or len(runs) != len(expected) or not np.allclose(
            runs[list(SCORE_COLUMNS)].to_numpy(float), expected[list(SCORE_COLUMNS)].to_numpy(float), atol=1e-5
        ):
            raise DataError(directory / kind.runs, "does not match the means of per_image.csv")
    return per_image, info


def networks_used(results_dir: str | Path, notebooks_dir: str | Path, *,
                  reference: Mapping[str, object] | None = None) -> "pd.DataFrame":
    """Every network behind the committed results in `results_dir`, and the chapters that show them.

    One row per network: a study that names the checkpoint it scored
    (``network.sha256`` in its provenance) shares a row with every study of
    the same checkpoint; any other study trained its own, at its commit.  A
    study's chapters are the notebooks in `notebooks_dir` that load its
    :class:`ResultKind`; the book's own reference run
    (:data:`RESULTS`) is every chapter's.  `reference`, the provenance of the
    run being shown, stands for that run's committed provenance file, which
    a run executed before its results are published does not match yet.
    """
    import re

    import pandas as pd

    kinds = {name: kind for name, kind in globals().items() if isinstance(kind, ResultKind)}
    shown: dict[str, list[str]] = {}
    for notebook in sorted(Path(notebooks_dir).glob("*.py")):
        for name in sorted(set(re.findall(r"kind=([A-Z_]+)", notebook.read_text()))):
            shown.setdefault(name, []).append(notebook.stem[:2])
    rows = []
    for name, kind in kinds.items():
        path = Path(results_dir) / kind.provenance
        if kind is RESULTS and reference is not None:
            info = dict(reference)
        elif path.is_file():
            info = json.loads(path.read_text())
        else:
            continue
        network = info.get("network")
        described = isinstance(network, str) and network  # e.g. "the shipped network (...)": the tool's settings
        tool = described and ("tool" in network or "shipped" in network)
        train = (tool and info["parameters"].get("tool_train")) or info["parameters"]["train"]
        if isinstance(network, dict) and network.get("sha256"):
            trained = f"checkpoint {network['sha256'][:7]}"
        elif described and "shipped" in network:
            trained = "the shipped network"  # its own card names its commit
        else:
            trained = (network.split(",")[0].split(" (")[0] + ", " if described else "") + f"commit {str(info['commit'])[:7]}"
        rows.append({
            "network": f"U-Net width {train['width']}, {train['epochs']} epochs"
                       + (f", boundary {train['boundary_width']} px" if train.get("boundary_width") else ""),
            "profile": info["profile"],
            "trained": trained,
            "date": str(info["created"])[:10],
            "results": "the book's reference run" if kind is RESULTS else kind.per_image.removesuffix(
                "_per_image.csv"),
            "chapters": "all" if kind is RESULTS else ", ".join(shown.get(name, [])) or "–",
        })
    table = pd.DataFrame(rows)
    join = lambda values: ", ".join(sorted(dict.fromkeys(", ".join(values).split(", "))))  # noqa: E731
    return (table.groupby(["network", "profile", "trained"], sort=False)
            .agg(date=("date", "min"), results=("results", join), chapters=("chapters", join))
            .reset_index().sort_values("date", kind="stable").reset_index(drop=True))
