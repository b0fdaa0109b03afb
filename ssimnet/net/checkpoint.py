"""A trained network on disk: checkpoints (torch) with the inference settings they segment with.

A checkpoint holds everything needed to resume training
(:meth:`ssimnet.net.train.Trainer.state`) and, written by :func:`save_model`,
the network's inference settings (:class:`ssimnet.config.InferenceConfig`,
the ``inference`` entry), which :class:`ssimnet.tool.segmenter.Segmenter`
reads.  Every write is atomic; a foreign or damaged file is a one-line
:class:`ssimnet.data.DataError`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import DataError, atomic_path
from ..errors import first_line
from .onnxnet import OnnxNetwork

if TYPE_CHECKING:
    from ..config import TrainConfig
    from .train import Trainer

__all__ = ["INFERENCE_KEY", "save_checkpoint", "load_checkpoint", "load_trainer", "load_model", "save_model",
           "weights_digest"]


def save_checkpoint(path: str | os.PathLike[str], state: dict) -> None:
    """Write a training checkpoint (:meth:`ssimnet.net.train.Trainer.state`) atomically."""
    import torch

    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    Raises
    ------
    DataError
        If the file is missing or is not an ssimnet checkpoint.
    """
    import torch

    from .train import CHECKPOINT_FORMAT

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds on a foreign file
        raise DataError(path, f"not an ssimnet checkpoint ({first_line(exc, limit=120)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise DataError(path, f"not an ssimnet checkpoint (no {CHECKPOINT_FORMAT} format tag)")
    return state


def load_trainer(
    path: str | os.PathLike[str], config: TrainConfig | None = None, *, device: str | None = None
) -> Trainer:
    """A trainer rebuilt from the checkpoint at `path` (:meth:`ssimnet.net.train.Trainer.from_state`).

    Raises
    ------
    DataError
        If the file is not an ssimnet checkpoint, is incomplete, or holds a
        network other than `config` asks for.
    """
    return load_model(path, config, device=device)[0]


def load_model(
    path: str | os.PathLike[str], config: TrainConfig | None = None, *, device: str | None = None
) -> tuple[Trainer, dict[str, object]]:
    """:func:`load_trainer`, and the inference settings the checkpoint stores.

    Those are its ``inference`` entry (:func:`save_model`) over the inference
    fields that an older checkpoint's training settings held (``{}`` when it
    has neither).
    """
    from ..config import split_train_dict
    from .train import Trainer

    state = load_checkpoint(path)
    import torch

    weights = state.get("model") if isinstance(state.get("model"), dict) else {}
    if any(isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()
           for v in weights.values()):
        raise DataError(path, "the network's weights hold NaN or infinite values (a diverged training?)")
    try:
        trainer = Trainer.from_state(state, config, device=device)
        # what an older checkpoint's training settings held, under what a newer one stores
        inference = {**split_train_dict(state["config"])[1], **(state.get(INFERENCE_KEY) or {})}
    except ValueError as exc:  # another architecture than asked for
        raise DataError(path, str(exc)) from None
    except (KeyError, TypeError, RuntimeError, AttributeError) as exc:  # missing or mismatched entries
        raise DataError(path, f"damaged ssimnet checkpoint ({first_line(exc, limit=120)})") from None
    return trainer, inference


#: The checkpoint entry that holds a network's inference settings (:func:`save_model`).
INFERENCE_KEY = "inference"


def save_model(path: str | os.PathLike[str], state: dict, inference: dict[str, object]) -> None:
    """Write a checkpoint (:meth:`ssimnet.net.train.Trainer.state`) with the inference settings it segments with
    (:func:`dataclasses.asdict` of an :class:`ssimnet.config.InferenceConfig`), atomically."""
    save_checkpoint(path, {**state, INFERENCE_KEY: dict(inference)})


def weights_digest(trainer: Trainer | OnnxNetwork) -> str:
    """Hash of a network's weights: what keys its predictions (an ONNX export's: of its bytes,
    since another runtime may round otherwise)."""
    if isinstance(trainer, OnnxNetwork):
        return "onnx-" + trainer.digest
    return hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes()
                                   for v in trainer.model.state_dict().values())).hexdigest()
